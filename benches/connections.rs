//! Client CPU per real connection, side by side: starts a PostgreSQL 15 on loopback (TLS 1.3
//! only, the bench certificate, `max_connections = 1100`), then runs, in turn and `ROUNDS`
//! times, each client as its own process for N connections (`connbench`-style: connect over
//! TLS with verify-full, `SELECT 1`, close):
//!
//! - libpq: `pgbench -n -C -t N -f select1.sql` (OpenSSL 3),
//! - tokio-postgres + tokio-postgres-rustls (`examples/connbench_tokio_postgres_rustls.rs`),
//! - pgtls blocking (`examples/connbench.rs`),
//! - pgtls tokio (`examples/connbench_tokio.rs`, when built),
//!
//! and the same clients without TLS as the floor. Client CPU is the child's user + sys time
//! from `wait4` (whole process, as the figures), divided by N; each client keeps its
//! median round. Then the memory-per-connection and scale figures against the same server
//! (`common/realserver.rs`), a callgrind profile of `connbench`, and the "Resumption and the
//! chain cache" tables (`common/resumption.rs`: direct, through `pgtls proxy --tickets` and
//! through pgbouncer, with pgtls's resumption and chain cache off and on).
//!
//! `cargo bench --bench connections [-- N]` (default 300); `-- N resumption` runs only the
//! resumption tables; `-- serve` only starts the server,
//! prints the connection string and waits until stdin closes (for profiling by hand). The example binaries must be built
//! first with the same profile: `cargo build --profile bench --examples` (scripts/bench.sh
//! does both).

#[path = "common/alloc.rs"]
mod alloc;
#[path = "common/mod.rs"]
mod common;
use pgtls_testkit::pg;
#[path = "common/pgwire.rs"]
mod pgwire;
#[path = "common/realserver.rs"]
mod realserver;
#[path = "common/resumption.rs"]
mod resumption;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Material;

#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;

const ROUNDS: usize = 3;

/// Builds a client's command line from the conninfo and N.
type CommandFor = Box<dyn Fn(&str, usize) -> Command>;

/// One client under test.
struct Client {
    name: &'static str,
    /// The command line, given the conninfo and N.
    command: CommandFor,
    tls: bool,
}

/// One run's figures: a client for `n` connections, and the same client for 1 connection
/// (process start-up, library initialisation, RNG seeding: what the marginal cost leaves out).
#[derive(Clone, Copy, Debug)]
struct Run {
    n: usize,
    /// Whole-process CPU (user + sys) from wait4.
    cpu: Duration,
    /// Of which sys.
    sys: Duration,
    /// Whole-process CPU of the one-connection run.
    cpu_one: Duration,
    /// CPU the client measured around its loop (connbench examples only).
    self_cpu: Option<Duration>,
    /// Connections that resumed a TLS session, as the client counted them (connbench
    /// examples only: `resumed=K`).
    resumed: Option<usize>,
    wall: Duration,
}

impl Run {
    /// Whole-process CPU per connection (the figure).
    fn per_conn(&self) -> Duration {
        self.cpu / self.n as u32
    }

    fn sys_per_conn(&self) -> Duration {
        self.sys / self.n as u32
    }

    /// What one more connection costs: (CPU(n) − CPU(1)) / (n − 1).
    fn marginal(&self) -> Duration {
        self.cpu.saturating_sub(self.cpu_one) / (self.n.max(2) - 1) as u32
    }

    fn conns_per_s(&self) -> f64 {
        self.n as f64 / self.wall.as_secs_f64()
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let serve = args.first().is_some_and(|a| a == "serve");
    let only_resumption = args.iter().any(|a| a == "resumption");
    let n: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(300);
    let Some(install) = pg::PgInstall::find(pg::PgVersion::V15) else {
        eprintln!("{}", pg::SKIP_NOTICE);
        std::process::exit(1);
    };
    let material = Material::load_or_generate(&Material::default_dir());
    let chain_pem = std::fs::read_to_string(material.dir.join("server.crt")).expect("server.crt");
    let key_pem = std::fs::read_to_string(material.dir.join("server.key")).expect("server.key");
    let server = pg::PgServer::start(
        &install,
        Some(pg::ServerTls::new(chain_pem, key_pem)),
        pg::Hba::Host,
    )
    .expect("start PostgreSQL 15");
    configure(&server);
    let ca = material.dir.join("ca.pem");
    let base = format!(
        "host={} hostaddr=127.0.0.1 port={} user=postgres dbname=postgres",
        common::HOST,
        server.port
    );
    let tls_conninfo = format!("{base} sslmode=verify-full sslrootcert={}", ca.display());
    let plain_conninfo = format!("{base} sslmode=disable");
    let work = server.root_dir.join("bench");
    std::fs::create_dir_all(&work).expect("work dir");
    std::fs::write(work.join("select1.sql"), "SELECT 1;\n").expect("select1.sql");
    if serve {
        // For profiling by hand: the server stays up until stdin closes.
        println!("{tls_conninfo}");
        println!("select1.sql: {}", work.join("select1.sql").display());
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
        return;
    }

    let clients = clients(&install, &work);
    if only_resumption {
        resumption::run(&server, &material, &clients, &tls_conninfo, n);
        return;
    }
    let mut runs: BTreeMap<(&'static str, bool), Vec<Run>> = BTreeMap::new();
    for round in 0..ROUNDS {
        for client in &clients {
            for tls in [true, false] {
                if !tls && !client.tls {
                    continue;
                }
                let conninfo = if tls { &tls_conninfo } else { &plain_conninfo };
                let one = run_client(client, conninfo, 1);
                let mut run = run_client(client, conninfo, n);
                run.cpu_one = one.cpu;
                eprintln!(
                    "round {round}: {} {}: {:.3} ms CPU/conn whole process, {:.3} ms marginal, {:.0} conn/s",
                    client.name,
                    if tls { "TLS" } else { "plain" },
                    ms(run.per_conn()),
                    ms(run.marginal()),
                    run.conns_per_s()
                );
                runs.entry((client.name, tls)).or_default().push(run);
            }
        }
    }
    print_table(&clients, &runs, n);
    instructions(&clients, &tls_conninfo);
    realserver::run(common::HOST, server.port, &ca.display().to_string());
    profile(&clients, &tls_conninfo);
    resumption::run(&server, &material, &clients, &tls_conninfo, n);
    drop(server);
}

/// TLS 1.3 only and room for the scale test (restart: max_connections needs one).
fn configure(server: &pg::PgServer) {
    // The reload reports that max_connections needs a restart; the file is written.
    let _ = server.set_conf(&[
        ("ssl_min_protocol_version", "TLSv1.3"),
        ("max_connections", "1100"),
        ("shared_buffers", "128MB"),
    ]);
    let mut ctl = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"])
            .arg(server.install.bin("pg_ctl"));
        c
    } else {
        Command::new(server.install.bin("pg_ctl"))
    };
    ctl.arg("-D")
        .arg(&server.data_dir)
        .arg("-l")
        .arg(&server.log_file)
        .args(["-w", "-t", "60", "restart", "-m", "fast"])
        .current_dir(&server.root_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(lib) = &server.install.lib_dir {
        ctl.env("LD_LIBRARY_PATH", lib);
    }
    let ok = ctl.status().map(|s| s.success()).unwrap_or(false);
    assert!(ok, "pg_ctl restart failed:\n{}", server.log());
    assert_eq!(server.show("max_connections").expect("SHOW"), "1100");
    assert_eq!(
        server.show("ssl_min_protocol_version").expect("SHOW"),
        "TLSv1.3"
    );
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn example(name: &str) -> PathBuf {
    common::target_dir()
        .join("release")
        .join("examples")
        .join(name)
}

fn clients(install: &pg::PgInstall, work: &Path) -> Vec<Client> {
    let mut clients = Vec::new();
    let pgbench = install.bin("pgbench");
    let pgbench = if pgbench.exists() {
        pgbench
    } else {
        PathBuf::from("pgbench")
    };
    let work = work.to_owned();
    clients.push(Client {
        name: "libpq (pgbench -C, OpenSSL 3)",
        tls: true,
        command: Box::new(move |conninfo, n| {
            let mut c = Command::new(&pgbench);
            c.args(["-n", "-C", "-t", &n.to_string(), "-f"])
                .arg(work.join("select1.sql"))
                .arg(conninfo)
                .env("HOME", &work)
                .env("PGSYSCONFDIR", &work);
            c
        }),
    });
    for (name, bin) in [
        (
            "tokio-postgres + tokio-postgres-rustls",
            "connbench_tokio_postgres_rustls",
        ),
        ("pgtls blocking (connbench)", "connbench"),
        ("pgtls tokio adapter (connbench_tokio)", "connbench_tokio"),
        (
            "tokio-postgres + pgtls connector (connbench_tokio --tokio-postgres)",
            "connbench_tokio",
        ),
    ] {
        let path = example(bin);
        if !path.exists() {
            eprintln!("skipping {name}: {} not built", path.display());
            continue;
        }
        let connector = name.contains("--tokio-postgres");
        clients.push(Client {
            name,
            tls: true,
            command: Box::new(move |conninfo, n| {
                let mut c = Command::new(&path);
                if connector {
                    c.arg("--tokio-postgres");
                }
                c.arg(conninfo).arg(n.to_string());
                c
            }),
        });
    }
    clients
}

fn run_client(client: &Client, conninfo: &str, n: usize) -> Run {
    let mut command = (client.command)(conninfo, n);
    command
        .env_remove("PGSSLMODE")
        .env_remove("PGSSLROOTCERT")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", client.name));
    let pid = child.id() as libc::pid_t;
    // Reap with wait4 for the child's own rusage; read its output first.
    let output = {
        use std::io::Read;
        let mut child = child;
        let mut stdout = String::new();
        let mut stderr = String::new();
        child
            .stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut stdout)
            .ok();
        child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut stderr)
            .ok();
        std::mem::forget(child);
        (stdout, stderr)
    };
    let mut status = 0;
    // SAFETY: wait4 writes into the status and rusage we own; pid is our child.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        let r = libc::wait4(pid, &mut status, 0, &mut usage);
        assert_eq!(r, pid, "wait4");
        usage
    };
    let wall = start.elapsed();
    let exited_ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    assert!(
        exited_ok,
        "{} failed ({status}):\n{}\n{}",
        client.name, output.0, output.1
    );
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    let (user, sys) = (tv(usage.ru_utime), tv(usage.ru_stime));
    let field = |name: &str| {
        output
            .0
            .lines()
            .find_map(|l| l.strip_prefix("connbench: "))
            .and_then(|l| {
                l.split_whitespace()
                    .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                    .map(str::to_owned)
            })
    };
    let self_cpu = field("cpu_s")
        .and_then(|v| v.parse::<f64>().ok())
        .map(Duration::from_secs_f64);
    Run {
        n,
        cpu: user + sys,
        sys,
        cpu_one: Duration::ZERO,
        self_cpu,
        resumed: field("resumed").and_then(|v| v.parse().ok()),
        wall,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median_run(runs: &[Run]) -> Run {
    let mut sorted = runs.to_vec();
    sorted.sort_by_key(|r| r.cpu);
    sorted[sorted.len() / 2]
}

fn median_of(runs: &[Run], f: impl Fn(&Run) -> Duration) -> Duration {
    let mut v: Vec<Duration> = runs.iter().map(f).collect();
    v.sort();
    v[v.len() / 2]
}

fn print_table(clients: &[Client], runs: &BTreeMap<(&'static str, bool), Vec<Run>>, n: usize) {
    let get = |name: &'static str, tls: bool| runs.get(&(name, tls));
    let libpq = get(clients[0].name, true).expect("libpq run");
    let tpr = get("tokio-postgres + tokio-postgres-rustls", true);
    let ratio = |a: Duration, b: Duration| b.as_secs_f64() / a.as_secs_f64();
    println!("### Client CPU per connection, real PostgreSQL 15 on loopback (TLS 1.3, verify-full, `SELECT 1`; {n} connections per run; medians of {ROUNDS} rounds)\n");
    println!("Whole process: the client process's user + sys time (wait4) / {n}, as in the issue. Marginal: (CPU({n}) − CPU(1)) / {}, i.e. without process start-up, library initialisation and aws-lc's once-per-process RNG seeding. In-process: what the example measured around its loop (after seeding).\n", n - 1);
    println!("| client | whole process | of which sys | marginal | in-process | marginal without TLS | TLS share (marginal) | conn/s | whole: libpq ÷ this | marginal: libpq ÷ this | marginal: this ÷ tokio-postgres-rustls |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|");
    for client in clients {
        let Some(runs) = get(client.name, true) else {
            continue;
        };
        let whole = median_of(runs, Run::per_conn);
        let marginal = median_of(runs, Run::marginal);
        let sys = median_of(runs, Run::sys_per_conn);
        let in_process = runs
            .iter()
            .all(|r| r.self_cpu.is_some())
            .then(|| median_of(runs, |r| r.self_cpu.unwrap_or_default() / r.n as u32));
        let plain = get(client.name, false).map(|p| median_of(p, Run::marginal));
        let rate = median_run(runs).conns_per_s();
        let pgtls = client.name.starts_with("pgtls") || client.name.contains("pgtls connector");
        let target = |t: &str| {
            if pgtls {
                format!(" (target {t})")
            } else {
                String::new()
            }
        };
        println!(
            "| {} | {:.3} ms | {:.3} ms | {:.3} ms | {} | {} | {} | {rate:.0} | {:.1} ×{} | {:.1} ×{} | {} |",
            client.name,
            ms(whole),
            ms(sys),
            ms(marginal),
            in_process.map_or("—".into(), |d| format!("{:.3} ms", ms(d))),
            plain.map_or("—".into(), |p| format!("{:.3} ms", ms(p))),
            plain.map_or("—".into(), |p| format!("{:.3} ms", ms(marginal.saturating_sub(p)))),
            ratio(whole, median_of(libpq, Run::per_conn)),
            target("≥ 10"),
            ratio(marginal, median_of(libpq, Run::marginal)),
            target("≥ 10"),
            tpr.map_or("—".into(), |t| format!(
                "{:.2} ×{}",
                1.0 / ratio(marginal, median_of(t, Run::marginal)),
                target("≤ 0.5")
            )),
        );
    }
    println!();
}

/// User-space instructions per connection for every client (callgrind, whole process):
/// (instructions(1 + K connections) − instructions(1 connection)) / K. Deterministic where
/// the CPU times above are not; the kernel's share is not in it.
fn instructions(clients: &[Client], conninfo: &str) {
    let rows: Vec<_> = clients
        .iter()
        .filter_map(|client| Some((client.name, instructions_per_connection(client, conninfo)?)))
        .collect();
    let Some(&(_, libpq)) = rows.first() else {
        return;
    };
    let tpr = rows
        .iter()
        .find(|(name, _)| *name == "tokio-postgres + tokio-postgres-rustls")
        .map(|r| r.1);
    println!("### Client instructions per connection, real PostgreSQL 15 (callgrind, user space, whole process: (I(1 + {K}) − I(1)) / {K})\n");
    println!(
        "| client | instructions per connection | libpq ÷ this | this ÷ tokio-postgres-rustls |"
    );
    println!("|---|---:|---|---|");
    for (name, ir) in &rows {
        println!(
            "| {name} | {} | {:.1} × | {} |",
            common::thousands(*ir),
            libpq as f64 / *ir as f64,
            tpr.map_or("—".into(), |t| format!("{:.2} ×", *ir as f64 / t as f64))
        );
    }
    println!();
}

/// Connections after the first in the callgrind runs of [`instructions_per_connection`].
const K: usize = 20;

/// A client's user-space instructions per connection, whole process, under callgrind:
/// (I(1 + K) − I(1)) / K. `None` when a run failed.
fn instructions_per_connection(client: &Client, conninfo: &str) -> Option<u64> {
    let dir = common::target_dir().join("bench").join("callgrind");
    std::fs::create_dir_all(&dir).expect("callgrind dir");
    let mut totals = [0u64; 2];
    for (i, n) in [1, 1 + K].into_iter().enumerate() {
        let out = dir.join(format!("client-{i}.out"));
        let inner = (client.command)(conninfo, n);
        let mut command = Command::new("valgrind");
        command
            .arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}", out.display()))
            .arg(inner.get_program())
            .args(inner.get_args())
            .envs(inner.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let ok = command.status().map(|s| s.success()).unwrap_or(false);
        if !ok {
            eprintln!("callgrind run of {} failed; skipped", client.name);
            return None;
        }
        totals[i] = callgrind_total(&out);
    }
    (totals[1] > totals[0]).then(|| (totals[1] - totals[0]) / K as u64)
}

/// The instruction count of a callgrind output file.
fn callgrind_total(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| {
                    l.strip_prefix("summary:")
                        .or_else(|| l.strip_prefix("totals:"))
                })
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// A callgrind profile of `connbench` (a few connections): instructions by component.
fn profile(clients: &[Client], conninfo: &str) {
    if !clients.iter().any(|c| c.name.starts_with("pgtls blocking")) {
        return;
    }
    profile_connbench(
        "`connbench`, 20 TLS connections",
        "connbench",
        conninfo,
        &[],
    );
}

/// A callgrind profile of `connbench`'s loop of 20 connections (its first one is a full
/// handshake even with resumption) with `env`, grouped by component; the output goes to
/// `callgrind/<file>.out`.
fn profile_connbench(what: &str, file: &str, conninfo: &str, env: &[(&str, &str)]) {
    let path = example("connbench");
    if !path.exists() {
        return;
    }
    let dir = common::target_dir().join("bench").join("callgrind");
    std::fs::create_dir_all(&dir).expect("callgrind dir");
    let out = dir.join(format!("{file}.out"));
    let conns = 20;
    let status = Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--collect-atstart=no",
            "--toggle-collect=*run_connections*",
        ])
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(&path)
        .arg(conninfo)
        .arg(conns.to_string())
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !status.map(|s| s.success()).unwrap_or(false) {
        eprintln!("callgrind profile of connbench failed; skipped");
        return;
    }
    let annotate = Command::new("callgrind_annotate")
        .args(["--threshold=100", "--auto=no"])
        .arg(&out)
        .output()
        .expect("callgrind_annotate");
    let text = String::from_utf8_lossy(&annotate.stdout);
    let mut groups: BTreeMap<&str, u64> = BTreeMap::new();
    let mut total = 0u64;
    // callgrind_annotate lists functions by instruction count, highest first.
    let mut top: Vec<(u64, &str)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        let Some((count, rest)) = line.split_once(' ') else {
            continue;
        };
        let Ok(count) = count.replace(',', "").parse::<u64>() else {
            continue;
        };
        if rest.contains("PROGRAM TOTALS") {
            continue;
        }
        total += count;
        *groups.entry(component(rest)).or_default() += count;
        if top.len() < 8 {
            top.push((count, function_name(rest)));
        }
    }
    let mut groups: Vec<_> = groups.into_iter().collect();
    groups.sort_by_key(|g| std::cmp::Reverse(g.1));
    println!("### Where pgtls's client instructions go (callgrind, {what}, user space only)\n");
    println!("| component | instructions per connection | share |");
    println!("|---|---:|---:|");
    for (name, count) in groups {
        println!(
            "| {name} | {} | {:.1} % |",
            common::thousands(count / conns),
            count as f64 * 100.0 / total as f64
        );
    }
    println!("| total | {} | 100 % |\n", common::thousands(total / conns));
    let top: Vec<String> = top
        .iter()
        .map(|(count, name)| format!("`{name}` {}", common::thousands(count / conns)))
        .collect();
    println!(
        "Top functions (instructions per connection): {}.\n",
        top.join(", ")
    );
    println!("Profile: `callgrind_annotate {}`.\n", out.display());
}

/// The function of a callgrind_annotate `(share) file:function [object]` line.
fn function_name(line: &str) -> &str {
    let line = line.split(" [").next().unwrap_or(line).trim();
    // After the file's last '/', the first ':' not part of a '::' ends the file name.
    let start = line.rfind('/').map_or(0, |i| i + 1);
    let rest = &line[start..];
    let bytes = rest.as_bytes();
    (0..bytes.len())
        .find(|&i| {
            bytes[i] == b':' && (i == 0 || bytes[i - 1] != b':') && bytes.get(i + 1) != Some(&b':')
        })
        .map_or(rest, |i| &rest[i + 1..])
}

/// Which part of the stack a callgrind_annotate `file:function [object]` line belongs to.
fn component(line: &str) -> &'static str {
    let line = line.split(" [").next().unwrap_or(line);
    // The first ':' that is not part of a '::' separates the file from the function.
    let bytes = line.as_bytes();
    let split = (0..bytes.len()).find(|&i| {
        bytes[i] == b':' && (i == 0 || bytes[i - 1] != b':') && bytes.get(i + 1) != Some(&b':')
    });
    let (file, function) = match split {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => ("", line),
    };
    let has = |needles: &[&str]| needles.iter().any(|n| function.contains(n));
    if file.contains("jitterentropy") || function.starts_with("jent_") {
        "aws-lc: RNG seeding (jitterentropy, once per process)"
    } else if file.contains("aws-lc") || function.starts_with("aws_lc_") {
        let f = function.to_ascii_lowercase();
        if f.contains("sha") || f.contains("hmac") || f.contains("hkdf") || f.contains("keccak") {
            "aws-lc: hashing (transcript, HKDF, HMAC)"
        } else if f.contains("25519") {
            "aws-lc: X25519"
        } else if f.contains("p256")
            || f.contains("nistz256")
            || f.contains("ecdsa")
            || f.contains("bn_")
            || f.contains("mont")
            || f.contains("ec_")
        {
            "aws-lc: P-256 (ECDH key exchange, 2 ECDSA verifies)"
        } else if f.contains("aes") || f.contains("gcm") || f.contains("ghash") {
            "aws-lc: AES-GCM records"
        } else {
            "aws-lc: other (RNG, DRBG, glue)"
        }
    } else if has(&["x509_cert", "der::", "spki::", "const_oid"]) {
        "x509-cert and der (pgtls verifier)"
    } else if has(&["webpki"]) {
        "webpki"
    } else if has(&["rustls"]) {
        "rustls"
    } else if has(&["pgtls"]) {
        "pgtls"
    } else if has(&["connbench"]) {
        "connbench (startup, query)"
    } else if file.starts_with("./") || file.contains("glibc") || file.contains("sysdeps") {
        "libc (malloc, memcpy, memset, syscall wrappers)"
    } else {
        "other (std, core, alloc, …)"
    }
}
