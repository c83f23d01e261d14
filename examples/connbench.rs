//! Connection benchmark over the blocking adapter: N connections one after another, each
//! negotiated by libpq's plan (`pgtls::blocking::connect`), a StartupMessage (trust or
//! cleartext/MD5-free servers only: no password exchange), `SELECT 1`, Terminate,
//! close_notify, close.
//!
//! ```text
//! cargo run --release --example connbench -- 'host=localhost hostaddr=127.0.0.1 port=5432 \
//!     user=postgres dbname=postgres sslmode=verify-full sslrootcert=root.crt' 300
//! ```
//!
//! The connection string is parsed and the [`pgtls::Config`] (roots parsed, rustls config
//! built) made **once**, as the crate docs ask; every connection reuses it. Prints
//! connections per second and the client's CPU time (user + sys, `getrusage(RUSAGE_SELF)`)
//! per connection, measured around the loop only (after the crypto provider's random
//! generator is seeded: a once-per-process cost), and a `connbench:` line for scripts.
//!
//! pgtls's extensions beyond libpq come from the environment (`benches/common/bench_options.rs`):
//! `PGTLS_BENCH_RESUMPTION=1` turns on client TLS session resumption, `PGTLS_BENCH_CHAIN_CACHE=0|1`
//! the verified-chain cache; the `connbench:` line then counts the connections that resumed
//! (`resumed=K`).
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use pgtls::blocking::{self, StartupError, Stream};
use pgtls::libpq::{ConnParams, Environment};

#[path = "../benches/common/bench_options.rs"]
mod bench_options;
use bench_options::BenchOptions;

fn main() {
    // Errors in their Display form (libpq's words), not Debug.
    if let Err(err) = run() {
        eprintln!("connbench: {err}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(conninfo), Some(n)) = (args.first(), args.get(1)) else {
        eprintln!("usage: connbench 'CONNINFO' N");
        std::process::exit(2);
    };
    let n: usize = n.parse()?;
    let options = BenchOptions::from_env()?;
    let settings = ConnParams::parse(conninfo)?.resolve(&Environment::from_process_env())?;
    let (target, config) = settings
        .to_configs_with(|builder| options.customize(builder))?
        .into_iter()
        .next()
        .ok_or("no host in the connection string")?;
    let config = options.for_port(config, target.port());
    let addr = (target.connect_host().to_owned(), target.port());
    let startup = startup_message(settings.user(), settings.dbname());
    // aws-lc seeds its random generator on first use, once per process (jitterentropy:
    // 50-100 ms of CPU on this machine). Do it before the clock starts, so that the figure
    // below is the steady-state cost of a connection; the whole-process CPU still has it.
    if let Some(tls) = config.rustls_config() {
        tls.crypto_provider()
            .secure_random
            .fill(&mut [0u8; 1])
            .map_err(|_| "no randomness")?;
    }

    let (cpu0, wall0) = (cpu_time(), Instant::now());
    let counts = run_connections(&config, &settings, &addr, &startup, n)?;
    let (cpu, wall) = (cpu_time() - cpu0, wall0.elapsed());
    let cache = bench_options::chain_cache_field(&config);
    report(n, counts, &cache, wall, cpu);
    Ok(())
}

/// The measured loop (its own function so that a profiler can collect just this).
#[inline(never)]
fn run_connections(
    config: &pgtls::Config,
    settings: &pgtls::libpq::Settings,
    addr: &(String, u16),
    startup: &[u8],
    n: usize,
) -> Result<Counts, Box<dyn std::error::Error>> {
    let mut counts = Counts {
        tls: 0,
        resumed: Some(0),
    };
    for _ in 0..n {
        let connected = blocking::connect(
            config,
            settings.connect_timeout(),
            |timeout| open(addr, timeout),
            |stream| run_startup(stream, startup),
        )
        .map_err(|e| e.to_string())?;
        let mut stream = connected.stream;
        counts.tls += usize::from(stream.is_tls());
        if let Some(k) = &mut counts.resumed {
            *k += usize::from(bench_options::resumed(stream.session()));
        }
        select_1(&mut stream)?;
        stream.write_all(&[b'X', 0, 0, 0, 4])?; // Terminate
        if let Stream::Tls(tls) = &mut stream {
            tls.close()?;
        }
        stream.flush()?;
    }
    Ok(counts)
}

/// What the connections were.
#[derive(Clone, Copy, Debug)]
struct Counts {
    /// Over TLS.
    tls: usize,
    /// Resumed an earlier TLS session (`None`: this build of pgtls cannot tell).
    resumed: Option<usize>,
}

fn open(addr: &(String, u16), timeout: Option<Duration>) -> io::Result<TcpStream> {
    let stream = match timeout {
        Some(t) => {
            let sock = std::net::ToSocketAddrs::to_socket_addrs(&(addr.0.as_str(), addr.1))?
                .next()
                .ok_or_else(|| io::Error::other("no address"))?;
            TcpStream::connect_timeout(&sock, t)?
        }
        None => TcpStream::connect((addr.0.as_str(), addr.1))?,
    };
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn startup_message(user: &str, dbname: &str) -> Vec<u8> {
    let mut body = 196_608u32.to_be_bytes().to_vec(); // protocol 3.0
    for (k, v) in [("user", user), ("database", dbname)] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    msg.extend_from_slice(&body);
    msg
}

/// One backend message: (type, body).
fn read_message<S: Read>(stream: &mut S) -> io::Result<(u8, Vec<u8>)> {
    let mut header = [0u8; 5];
    stream.read_exact(&mut header)?;
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    let mut body = vec![0u8; len.saturating_sub(4)];
    stream.read_exact(&mut body)?;
    Ok((header[0], body))
}

fn error_text(body: &[u8]) -> String {
    body.split(|b| *b == 0)
        .find(|f| f.first() == Some(&b'M'))
        .map(|f| String::from_utf8_lossy(&f[1..]).into_owned())
        .unwrap_or_else(|| "server error".into())
}

fn run_startup(stream: &mut Stream<TcpStream>, startup: &[u8]) -> Result<(), StartupError> {
    stream.write_all(startup)?;
    stream.flush()?;
    loop {
        match read_message(stream)? {
            (b'R', body) if body.starts_with(&[0, 0, 0, 0]) => {} // AuthenticationOk
            (b'R', _) => {
                return Err(StartupError::Fatal(
                    "connbench supports trust authentication only".into(),
                ))
            }
            (b'E', body) => {
                return Err(StartupError::Rejected {
                    sqlstate: None,
                    message: error_text(&body),
                })
            }
            (b'Z', _) => return Ok(()),
            _ => {} // ParameterStatus, BackendKeyData, NoticeResponse
        }
    }
}

fn select_1(stream: &mut Stream<TcpStream>) -> io::Result<()> {
    let sql = b"SELECT 1\0";
    let mut query = vec![b'Q'];
    query.extend_from_slice(&((sql.len() + 4) as u32).to_be_bytes());
    query.extend_from_slice(sql);
    stream.write_all(&query)?;
    stream.flush()?;
    let mut rows = 0;
    loop {
        match read_message(stream)? {
            (b'D', _) => rows += 1,
            (b'E', body) => return Err(io::Error::other(error_text(&body))),
            (b'Z', _) if rows == 1 => return Ok(()),
            (b'Z', _) => return Err(io::Error::other("SELECT 1 returned no row")),
            _ => {}
        }
    }
}

/// User + system CPU time of this process.
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct we own.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Prints the figures; `extra` goes at the end of the `connbench:` fields.
fn report(n: usize, counts: Counts, extra: &str, wall: Duration, cpu: Duration) {
    let per = cpu.as_secs_f64() * 1000.0 / n as f64;
    let tls = counts.tls;
    let resumed = counts
        .resumed
        .map_or(String::new(), |k| format!(" resumed={k}"));
    println!("connections: {n} ({tls} over TLS)");
    println!("connections/s: {:.0}", n as f64 / wall.as_secs_f64());
    println!("client CPU per connection: {per:.3} ms (user + sys)");
    println!(
        "connbench: n={n} tls={tls}{resumed}{extra} wall_s={:.6} cpu_s={:.6}",
        wall.as_secs_f64(),
        cpu.as_secs_f64()
    );
}
