//! The "Resumption and the chain cache" tables of `benches/connections.rs` (issue 12, item 5):
//! client cost per verify-full connection on three routes to the same PostgreSQL 15, each
//! client on each route in the same run:
//!
//! - **direct** to PostgreSQL 15 (which never resumes: no tickets), where only the
//!   verified-chain cache can save work;
//! - through **`pgtls proxy --tickets`** (the tool's proxy library, in a thread of this
//!   process) in front of the same server;
//! - through **pgbouncer 1.18** with client TLS (`testkit/src/pgbouncer.rs`; OpenSSL issues
//!   TLS 1.3 tickets).
//!
//! Clients: libpq (`pgbench -C`: never resumes), tokio-postgres + tokio-postgres-rustls
//! (rustls's default `ClientConfig` resumes; the example counts it), and `connbench` (pgtls
//! blocking) with resumption and the chain cache off and on (`PGTLS_BENCH_RESUMPTION`,
//! `PGTLS_BENCH_CHAIN_CACHE`). Figures: client CPU per connection (wait4 user + sys of the
//! client process, marginal: (CPU(N) − CPU(1)) / (N − 1), median of the rounds) and
//! user-space instructions per connection under callgrind ((I(21) − I(1)) / 20: with
//! resumption the first connection makes the session and the 20 measured ones resume).
//! Only the client process is measured: the proxy and pgbouncer are other processes or
//! threads.
//!
//! Run alone with `cargo bench --bench connections -- N resumption`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use pgtls_cli::proxy::{Logger, Options, Proxy};
use pgtls_testkit::pg::PgServer;
use pgtls_testkit::pgbouncer::{self, BouncerTls, PgBouncer};

use crate::common::{self, Material};
use crate::{
    example, instructions_per_connection, median_of, ms, profile_connbench, run_client, Client,
    Run, ROUNDS,
};

/// The pgtls rows: (name, `PGTLS_BENCH_RESUMPTION`, `PGTLS_BENCH_CHAIN_CACHE`,
/// `PGTLS_BENCH_X25519_FIRST`, `PGTLS_BENCH_SHA256_FIRST`).
const PGTLS_VARIANTS: [(&str, &str, &str, &str, &str); 6] = [
    ("pgtls: no resumption, no chain cache", "0", "0", "0", "0"),
    ("pgtls: chain cache", "0", "1", "0", "0"),
    ("pgtls: resumption", "1", "0", "0", "0"),
    ("pgtls: resumption + chain cache", "1", "1", "0", "0"),
    (X25519_ROW, "1", "1", "1", "0"),
    (SHA256_ROW, "1", "1", "1", "1"),
];

/// The row with X25519 offered first.
const X25519_ROW: &str = "pgtls: resumption + chain cache, X25519 first";
/// The row with X25519 and `TLS13_AES_128_GCM_SHA256` offered first.
const SHA256_ROW: &str = "pgtls: resumption + chain cache, X25519 + AES-128-GCM-SHA256 first";

/// The libpq row's name in [`crate::clients`].
const LIBPQ: &str = "libpq (pgbench -C, OpenSSL 3)";
/// The tokio-postgres-rustls row's name in [`crate::clients`].
const TOKIO_POSTGRES_RUSTLS: &str = "tokio-postgres + tokio-postgres-rustls";

/// One way to the server.
struct Route {
    name: String,
    /// verify-full, by host name `localhost` at 127.0.0.1.
    conninfo: String,
    /// Whether the server end issues session tickets.
    tickets: bool,
}

/// One client on one route.
#[derive(Default)]
struct Cell {
    runs: Vec<Run>,
    instructions: Option<u64>,
}

/// Targets of issue 12.
const TARGET_POOLER_CPU: f64 = 8.0;
const TARGET_POOLER_INSTRUCTIONS: f64 = 15.0;
const TARGET_DIRECT_CPU: f64 = 4.0;
const TARGET_DIRECT_FLOOR: f64 = 1.15;

/// Runs the tables against `server` (already started and configured by the caller);
/// `clients` is the caller's list (libpq and tokio-postgres-rustls are taken from it),
/// `direct` the verify-full conninfo to the server itself.
pub fn run(server: &PgServer, material: &Material, clients: &[Client], direct: &str, n: usize) {
    let mut routes = vec![Route {
        name: "direct to PostgreSQL 15".into(),
        conninfo: direct.to_owned(),
        tickets: false,
    }];
    let ca = material.dir.join("ca.pem");
    let conninfo = |port: u16| {
        format!(
            "host={} hostaddr=127.0.0.1 port={port} user=postgres dbname=postgres sslmode=verify-full sslrootcert={}",
            common::HOST,
            ca.display()
        )
    };
    match start_proxy(&material.dir, server.port) {
        Ok((port, tickets)) => routes.push(Route {
            name: if tickets {
                "pgtls proxy --tickets".into()
            } else {
                "pgtls proxy (this build has no --tickets)".into()
            },
            conninfo: conninfo(port),
            tickets,
        }),
        Err(err) => eprintln!("resumption: skipping the proxy route: {err}"),
    }
    let bouncer = start_pgbouncer(material, server);
    if let Some(bouncer) = &bouncer {
        routes.push(Route {
            name: "pgbouncer 1.18 (client TLS, OpenSSL 3)".into(),
            conninfo: conninfo(bouncer.port),
            tickets: true,
        });
    }

    let variants = pgtls_variants();
    let clients: Vec<&Client> = [LIBPQ, TOKIO_POSTGRES_RUSTLS]
        .iter()
        .filter_map(|name| clients.iter().find(|c| c.name == *name))
        .chain(variants.iter())
        .collect();
    let mut cells: BTreeMap<(usize, &'static str), Cell> = BTreeMap::new();
    for round in 0..ROUNDS {
        for (r, route) in routes.iter().enumerate() {
            for client in clients.iter().copied() {
                let one = run_client(client, &route.conninfo, 1);
                let mut run = run_client(client, &route.conninfo, n);
                run.cpu_one = one.cpu;
                eprintln!(
                    "round {round}: {} / {}: {:.3} ms marginal CPU per connection{}",
                    route.name,
                    client.name,
                    ms(run.marginal()),
                    run.resumed
                        .map_or(String::new(), |k| format!(", {k} of {n} resumed"))
                );
                cells.entry((r, client.name)).or_default().runs.push(run);
            }
        }
    }
    for (r, route) in routes.iter().enumerate() {
        for client in clients.iter().copied() {
            let instructions = instructions_per_connection(client, &route.conninfo);
            cells.entry((r, client.name)).or_default().instructions = instructions;
        }
    }
    let floors = Floors::from_handshake_bench();
    print_table(&routes, &clients, &cells, n, floors.as_ref());
    print_targets(&routes, &cells, floors.as_ref());
    if let Some(route) = routes.iter().rev().find(|r| r.tickets) {
        profile_connbench(
            &format!(
                "`connbench` with resumption through {}, 20 connections",
                route.name
            ),
            "connbench-resumption",
            &route.conninfo,
            &[
                ("PGTLS_BENCH_RESUMPTION", "1"),
                ("PGTLS_BENCH_CHAIN_CACHE", "1"),
            ],
        );
        profile_connbench(
            &format!(
                "`connbench` with resumption, X25519 and AES-128-GCM-SHA256 first through {}, 20 connections",
                route.name
            ),
            "connbench-resumption-x25519-sha256",
            &route.conninfo,
            &[
                ("PGTLS_BENCH_RESUMPTION", "1"),
                ("PGTLS_BENCH_CHAIN_CACHE", "1"),
                ("PGTLS_BENCH_X25519_FIRST", "1"),
                ("PGTLS_BENCH_SHA256_FIRST", "1"),
            ],
        );
    }
    profile_connbench(
        "`connbench` with the chain cache, direct to PostgreSQL 15, 20 connections",
        "connbench-chain-cache",
        direct,
        &[
            ("PGTLS_BENCH_RESUMPTION", "0"),
            ("PGTLS_BENCH_CHAIN_CACHE", "1"),
        ],
    );
    drop(bouncer);
}

/// `connbench` once per [`PGTLS_VARIANTS`] row (none when it is not built).
fn pgtls_variants() -> Vec<Client> {
    let path = example("connbench");
    if !path.exists() {
        eprintln!("resumption: {} not built; no pgtls rows", path.display());
        return Vec::new();
    }
    PGTLS_VARIANTS
        .iter()
        .map(|&(name, resumption, chain_cache, x25519, sha256)| {
            let path = path.clone();
            Client {
                name,
                tls: true,
                command: Box::new(move |conninfo, n| {
                    let mut c = Command::new(&path);
                    c.arg(conninfo)
                        .arg(n.to_string())
                        .env("PGTLS_BENCH_RESUMPTION", resumption)
                        .env("PGTLS_BENCH_CHAIN_CACHE", chain_cache)
                        .env("PGTLS_BENCH_X25519_FIRST", x25519)
                        .env("PGTLS_BENCH_SHA256_FIRST", sha256);
                    c
                }),
            }
        })
        .collect()
}

/// `pgtls proxy --tickets` (the tool's library) in a thread of this process, on a free port
/// in front of the server's plaintext port, with the benchmark's certificate. Returns the
/// port and whether the proxy issues tickets (a build without `--tickets` runs without).
fn start_proxy(certs: &Path, upstream: u16) -> Result<(u16, bool), String> {
    let args = |tickets: bool| {
        let mut args: Vec<String> = [
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &format!("127.0.0.1:{upstream}"),
            "--cert",
            &certs.join("server.crt").display().to_string(),
            "--key",
            &certs.join("server.key").display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if tickets {
            args.push("--tickets".into());
        }
        args
    };
    let (options, tickets) = match Options::parse(args(true)) {
        Ok(options) => (options, true),
        Err(err) if err.contains("--tickets") => {
            eprintln!("resumption: pgtls proxy has no --tickets in this build: {err}");
            (Options::parse(args(false))?, false)
        }
        Err(err) => return Err(err),
    };
    // One log line per client would flood the output: the proxy stays quiet.
    let log: Logger = Arc::new(|_line| {});
    let proxy = Proxy::bind(&options, log)?;
    let port = proxy.local_addr().map_err(|e| e.to_string())?.port();
    std::thread::spawn(move || proxy.serve());
    Ok((port, tickets))
}

/// pgbouncer with client TLS (the benchmark's certificate) in front of the server; `None`
/// (and a notice) when pgbouncer is not installed or does not start.
fn start_pgbouncer(material: &Material, server: &PgServer) -> Option<PgBouncer> {
    let Some(binary) = pgbouncer::pgbouncer_path() else {
        eprintln!(
            "resumption: skipping the pgbouncer route: pgbouncer not installed (apt-get install pgbouncer, or $PGTLS_PGBOUNCER)"
        );
        return None;
    };
    let read = |name: &str| std::fs::read_to_string(material.dir.join(name)).expect(name);
    let tls = BouncerTls::new(read("server.crt"), read("server.key"));
    match PgBouncer::start(&binary, server, &tls) {
        Ok(bouncer) => Some(bouncer),
        Err(err) => {
            eprintln!("resumption: skipping the pgbouncer route: {err}");
            None
        }
    }
}

/// The handshake's crypto floors from `cargo bench --bench handshake`'s callgrind files
/// (`callgrind/handshake-crypto-*.out`, 20 measured handshakes each).
struct Floors {
    /// PostgreSQL 15's defaults: P-256 keygen + ECDH and two ECDSA P-256 verifies (the
    /// handshake signature and the leaf's signature by the root).
    pg: u64,
    /// The same with one verify (the handshake signature): what is left when the chain's
    /// signature is not checked again, `pg − (full − none)`.
    pg_one_verify: u64,
}

impl Floors {
    /// Handshakes each callgrind file of the handshake bench measures (its `MEASURED`).
    const HANDSHAKES: u64 = 20;

    fn from_handshake_bench() -> Option<Floors> {
        let dir = common::target_dir().join("bench").join("callgrind");
        let read = |variant: &str| {
            let total = crate::callgrind_total(&dir.join(format!("handshake-{variant}.out")));
            (total > 0).then_some(total / Self::HANDSHAKES)
        };
        let (pg, full, none) = (read("crypto-pg"), read("crypto-full"), read("crypto-none"));
        let Some((pg, full, none)) = pg.zip(full).zip(none).map(|((a, b), c)| (a, b, c)) else {
            eprintln!("resumption: no crypto floors (run `cargo bench --bench handshake` first)");
            return None;
        };
        Some(Floors {
            pg,
            pg_one_verify: pg.saturating_sub(full.saturating_sub(none)),
        })
    }
}

impl Cell {
    fn marginal(&self) -> Option<Duration> {
        (!self.runs.is_empty()).then(|| median_of(&self.runs, Run::marginal))
    }

    fn resumed(&self) -> Option<usize> {
        self.runs.first().and_then(|r| r.resumed)
    }
}

fn print_table(
    routes: &[Route],
    clients: &[&Client],
    cells: &BTreeMap<(usize, &'static str), Cell>,
    n: usize,
    floors: Option<&Floors>,
) {
    println!("### Resumption and the chain cache: client cost per verify-full connection on three routes to PostgreSQL 15 (TLS 1.3, `SELECT 1`; {n} connections per run, marginal CPU = (CPU({n}) − CPU(1)) / {}, median of {ROUNDS} rounds; instructions: callgrind, user space, whole process, (I(1 + 20) − I(1)) / 20)\n", n - 1);
    println!("| route | client | resumed (of {n}) | marginal CPU | libpq ÷ this | instructions | libpq ÷ this |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for (r, route) in routes.iter().enumerate() {
        let libpq = cells.get(&(r, LIBPQ));
        for client in clients {
            let Some(cell) = cells.get(&(r, client.name)) else {
                continue;
            };
            let Some(marginal) = cell.marginal() else {
                continue;
            };
            let resumed = match (client.name, cell.resumed()) {
                (LIBPQ, _) => "never".to_owned(),
                (_, Some(k)) => k.to_string(),
                (_, None) => "—".to_owned(),
            };
            let cpu_ratio = libpq
                .and_then(Cell::marginal)
                .map_or("—".into(), |l| format!("{:.1} ×", ratio(l, marginal)));
            let instructions = cell.instructions.map_or("—".into(), common::thousands);
            let ir_ratio = libpq
                .and_then(|l| l.instructions)
                .zip(cell.instructions)
                .map_or("—".into(), |(l, c)| {
                    format!("{:.1} ×", l as f64 / c as f64)
                });
            println!(
                "| {} | {} | {resumed} | {:.3} ms | {cpu_ratio} | {instructions} | {ir_ratio} |",
                route.name,
                client.name,
                ms(marginal)
            );
        }
    }
    println!();
    if let Some(f) = floors {
        println!(
            "Crypto floor beside \"direct\" (`cargo bench --bench handshake`, in memory): PostgreSQL 15's defaults impose P-256 keygen + ECDH and two ECDSA P-256 verifies = {} instructions per handshake; with the chain's signature not checked again (chain cache), one verify = {}.\n",
            common::thousands(f.pg),
            common::thousands(f.pg_one_verify)
        );
    }
}

fn print_targets(
    routes: &[Route],
    cells: &BTreeMap<(usize, &'static str), Cell>,
    floors: Option<&Floors>,
) {
    let figures = |r: usize, name: &str| -> Option<(f64, Option<f64>, Option<u64>)> {
        let libpq = cells.get(&(r, LIBPQ))?;
        let cell = cells.get(&(r, name))?;
        let cpu = ratio(libpq.marginal()?, cell.marginal()?);
        let ir = libpq
            .instructions
            .zip(cell.instructions)
            .map(|(l, c)| l as f64 / c as f64);
        Some((cpu, ir, cell.instructions))
    };
    let verdict = |ok: bool| if ok { "met" } else { "not met" };
    println!("Targets (issue 12):\n");
    for (r, route) in routes.iter().enumerate() {
        if route.tickets {
            for name in [
                "pgtls: resumption",
                "pgtls: resumption + chain cache",
                X25519_ROW,
                SHA256_ROW,
            ] {
                let Some((cpu, ir, _)) = figures(r, name) else {
                    continue;
                };
                println!(
                    "- {} / {name}: {cpu:.1} × less marginal CPU than libpq (target ≥ {TARGET_POOLER_CPU} ×: {}); {} fewer instructions (target ≥ {TARGET_POOLER_INSTRUCTIONS} ×: {})",
                    route.name,
                    verdict(cpu >= TARGET_POOLER_CPU),
                    ir.map_or("—".into(), |x| format!("{x:.1} ×")),
                    ir.map_or("not measured", |x| verdict(x >= TARGET_POOLER_INSTRUCTIONS)),
                );
            }
        } else if r == 0 {
            for name in ["pgtls: no resumption, no chain cache", "pgtls: chain cache"] {
                let Some((cpu, _, ir)) = figures(r, name) else {
                    continue;
                };
                let floor = floors.zip(ir).map(|(f, ir)| ir as f64 / f.pg as f64);
                println!(
                    "- {} / {name}: {cpu:.1} × less marginal CPU than libpq (target ≥ {TARGET_DIRECT_CPU} ×: {}); instructions {} × PostgreSQL's crypto floor (target ≤ {TARGET_DIRECT_FLOOR} ×: {})",
                    route.name,
                    verdict(cpu >= TARGET_DIRECT_CPU),
                    floor.map_or("—".into(), |x| format!("{x:.2}")),
                    floor.map_or("not measured", |x| verdict(x <= TARGET_DIRECT_FLOOR)),
                );
            }
        }
    }
    println!();
}

/// How many times `b` is `a` (a ÷ b for durations: libpq's cost over this one's).
fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}
