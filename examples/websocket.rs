//! libpq's whole connection over a WebSocket: TLS runs inside the WebSocket, from this
//! client to PostgreSQL, through a bridge that sees only ciphertext
//! (`examples/ws_bridge.rs`).
//!
//! ```text
//! cargo run --example ws_bridge -- --listen 127.0.0.1:8080 --upstream localhost:5432 &
//! cargo run --example websocket -- ws://127.0.0.1:8080/ \
//!     'host=localhost user=postgres sslmode=verify-full sslrootcert=root.crt'
//! cargo run --release --example websocket -- --bench 200 ws://127.0.0.1:8080/ 'CONNINFO'
//! ```
//! Settings come from the connection string, `PG*` variables and `~/.postgresql/`, as
//! libpq takes them; the host name is the one verified (the bridge decides where the
//! bytes go). Each attempt opens a new WebSocket, so libpq's fallbacks that need a new
//! connection (`allow`, `prefer`) work. The startup handles trust, password and SCRAM
//! authentication, then runs `SELECT 1`. Exit status: 0 connected, 1 failed (libpq's
//! message on stderr), 2 usage error.
//!
//! `--bench N` makes N connections through the WebSocket and N over direct TCP to the
//! same server (three rounds, after a warm-up connection on each), and prints the
//! client's CPU time (user + system, `getrusage`) for each: the median round.

#[path = "../tests/support/ws_connect.rs"]
mod ws_connect;

use std::time::{Duration, Instant};

use pgtls::libpq::Environment;
// ws_connect's startup client (`super::startup`), from the tool's library (cli/).
use pgtls_cli::startup;
use ws_connect::{connect, Route};

const USAGE: &str = "usage: websocket [--bench N] ws://BRIDGE/ 'CONNINFO or URI'";

fn main() {
    let mut bench = None;
    let mut positional = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bench" => match args.next().and_then(|n| n.parse::<u32>().ok()) {
                Some(n) if n > 0 => bench = Some(n),
                _ => usage_error("--bench needs a positive number"),
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            s if s.starts_with("--") => usage_error(&format!("unknown option {s}")),
            s => positional.push(s.to_owned()),
        }
    }
    let [url, conninfo] = positional.as_slice() else {
        usage_error("a ws:// URL and a connection string are required")
    };
    if !url.starts_with("ws://") {
        usage_error("the bridge URL must start with ws://");
    }
    let env = Environment::from_process_env();
    let route = Route::WebSocket(url.clone());
    if let Some(n) = bench {
        run_bench(n, conninfo, &env, &route);
        return;
    }
    match connect(conninfo, &env, &route) {
        Ok(connected) => {
            for attempt in &connected.attempts {
                println!(
                    "attempt {:?}: {}",
                    attempt.method,
                    attempt.error.as_deref().unwrap_or("ok")
                );
            }
            println!(
                "connected through {url} over {} WebSocket(s), {}, auth {}; SELECT 1 returned {}",
                connected.transports_opened,
                connected
                    .tls_version
                    .as_deref()
                    .map_or("without encryption".to_owned(), |v| format!("TLS {v}")),
                connected.auth,
                connected.select_one.as_deref().unwrap_or("NULL"),
            );
        }
        Err(failed) => {
            for attempt in &failed.attempts {
                println!(
                    "attempt {:?}: {}",
                    attempt.method,
                    attempt.error.as_deref().unwrap_or("ok")
                );
            }
            eprintln!("websocket: error: {failed}");
            std::process::exit(1);
        }
    }
}

/// Rounds of the bench; the median round is reported.
const BENCH_ROUNDS: usize = 3;

/// After one warm-up connection on each route: [`BENCH_ROUNDS`] rounds of N connections
/// through the WebSocket, then N over direct TCP; the client's CPU time (median round)
/// for each.
fn run_bench(n: u32, conninfo: &str, env: &Environment, ws: &Route) {
    let routes = [("WebSocket", ws), ("TCP", &Route::Direct)];
    let connect_or_exit = |name: &str, route: &Route| {
        if let Err(err) = connect(conninfo, env, route) {
            eprintln!("websocket: error ({name}): {err}");
            std::process::exit(1);
        }
    };
    for (name, route) in routes {
        connect_or_exit(name, route);
    }
    let mut samples: [Vec<(Duration, Duration)>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..BENCH_ROUNDS {
        for (i, (name, route)) in routes.iter().enumerate() {
            let (cpu_before, wall_before) = (cpu_time(), Instant::now());
            for _ in 0..n {
                connect_or_exit(name, route);
            }
            samples[i].push((cpu_time().saturating_sub(cpu_before), wall_before.elapsed()));
        }
    }
    println!(
        "{n} connections per route and round (handshake, startup, SELECT 1, close); \
         client CPU (user + system), median of {BENCH_ROUNDS} rounds:"
    );
    for ((name, _), mut rounds) in routes.iter().zip(samples) {
        rounds.sort();
        let (cpu, wall) = rounds[rounds.len() / 2];
        println!(
            "  {name:<9}  {:>8.1} ms CPU total  {:>6.0} us CPU per connection  {:>6.2} s wall",
            cpu.as_secs_f64() * 1e3,
            cpu.as_secs_f64() * 1e6 / f64::from(n),
            wall.as_secs_f64()
        );
    }
}

/// The process's user + system CPU time.
fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct we own.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn usage_error(message: &str) -> ! {
    eprintln!("websocket: {message}\n\n{USAGE}");
    std::process::exit(2);
}
