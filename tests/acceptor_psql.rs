//! psql (libpq 15 and libpq 18) through `examples/tls_proxy.rs` in front of a real
//! PostgreSQL 15 that speaks plaintext only.
//!
//! The proxy runs in-process (the example's code is included as a module), and once more
//! as the built example binary when it sits next to this test (`cargo test` builds the
//! examples). Skips with a notice when PostgreSQL is not installed; fails instead with
//! `PGTLS_REQUIRE_SERVERS=1`.

#[path = "support/certs.rs"]
mod certs;
#[path = "support/pg.rs"]
mod pg;
#[allow(dead_code)]
#[path = "../examples/tls_proxy.rs"]
mod tls_proxy;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use certs::{Ca, LeafSpec};
use pg::{install_or_skip, run_psql, servers_available, Hba, PgInstall, PgServer, PgVersion};

/// PostgreSQL 15 (plaintext, trust), the proxy's certificate files, and the logs.
struct Setup {
    server: PgServer,
    dir: tempfile::TempDir,
    root: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn setup() -> Option<Setup> {
    if !servers_available() {
        eprintln!("{}", pg::SKIP_NOTICE);
        return None;
    }
    let pg15 = install_or_skip(PgVersion::V15)?;
    let server = PgServer::start(&pg15, None, Hba::HostNoSslOnly).expect("start PostgreSQL 15");
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::root("pgtls proxy test CA");
    let leaf = ca.leaf(LeafSpec::server("localhost"));
    let root = dir.path().join("root.crt");
    let cert = dir.path().join("server.crt");
    let key = dir.path().join("server.key");
    std::fs::write(&root, ca.root_pem()).unwrap();
    std::fs::write(&cert, leaf.chain_pem()).unwrap();
    certs::write_private_file(&key, leaf.key_pkcs8_pem().as_bytes()).unwrap();
    Some(Setup {
        server,
        dir,
        root,
        cert,
        key,
    })
}

impl Setup {
    fn options(&self, allow_plaintext: bool) -> tls_proxy::Options {
        tls_proxy::Options {
            listen: "127.0.0.1:0".into(),
            upstream: format!("127.0.0.1:{}", self.server.port),
            cert: self.cert.clone(),
            key: self.key.clone(),
            allow_plaintext,
            direct: true,
        }
    }

    /// Starts the example's proxy in this process; returns its port and its log.
    fn start_proxy(&self, allow_plaintext: bool) -> (u16, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let log: tls_proxy::Logger = Arc::new(move |line| {
            eprintln!("  proxy: {line}");
            sink.lock().unwrap().push(line);
        });
        let proxy = tls_proxy::Proxy::bind(&self.options(allow_plaintext), log).unwrap();
        let port = proxy.local_addr().unwrap().port();
        std::thread::spawn(move || proxy.serve());
        (port, lines)
    }

    /// psql through the proxy on `port`: `-c sql` with `extra` conninfo keywords.
    fn psql(&self, install: &PgInstall, port: u16, extra: &str, sql: &str) -> pg::PsqlOutcome {
        let conninfo = format!(
            "host=localhost port={port} user={} dbname=postgres sslrootcert={} {extra}",
            pg::SUPERUSER,
            self.root.display()
        );
        let out = run_psql(install, self.dir.path(), &conninfo, sql, &[]);
        let shown: String = sql.chars().take(70).collect();
        eprintln!(
            "  psql ({}) {extra:?} {shown:?} -> status {:?}, stdout {:?}, stderr {:?}",
            install.version,
            out.status,
            out.stdout.trim(),
            out.stderr.trim()
        );
        out
    }
}

#[track_caller]
fn expect_rows(out: &pg::PsqlOutcome, rows: &str) {
    assert!(out.success(), "psql failed: {:?}", out.error_message());
    assert_eq!(out.stdout.trim(), rows);
}

/// Waits until the log has a line containing every needle (the proxy logs before it
/// forwards, so this is quick).
fn logged(lines: &Mutex<Vec<String>>, needles: &[&str]) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| needles.iter().all(|n| l.contains(n)))
        {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn psql_15_and_18_through_the_proxy() {
    let Some(setup) = setup() else { return };
    let pg15 = install_or_skip(PgVersion::V15).unwrap();
    let (port, log) = setup.start_proxy(false);

    // libpq 15: SSLRequest, verify-full against the proxy's CA and host name, no ALPN.
    let out = setup.psql(&pg15, port, "sslmode=verify-full", "SELECT 1");
    expect_rows(&out, "1");
    assert!(
        logged(
            &log,
            &[
                "sslrequest",
                "tls=TLSv1.3",
                "sni=localhost",
                "alpn=-",
                "user=postgres"
            ]
        ),
        "{:?}",
        log.lock().unwrap()
    );
    // The upstream really is plaintext: TLS ends at the proxy.
    let out = setup.psql(
        &pg15,
        port,
        "sslmode=verify-full",
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    );
    expect_rows(&out, "f");
    // More than one TLS record each way.
    let out = setup.psql(
        &pg15,
        port,
        "sslmode=verify-full",
        &format!(
            "SELECT length('{}' || repeat('y', 200000))",
            "x".repeat(40_000)
        ),
    );
    expect_rows(&out, "240000");
    // libpq's default (prefer) goes TLS too.
    expect_rows(&setup.psql(&pg15, port, "", "SELECT 2"), "2");
    // A plaintext client is refused with a FATAL error naming sslmode=require.
    let out = setup.psql(&pg15, port, "sslmode=disable", "SELECT 1");
    assert!(!out.success());
    let err = out.error_message().unwrap_or_default();
    assert!(err.contains("FATAL:  connection is insecure"), "{err}");
    assert!(err.contains("sslmode=require"), "{err}");
    assert!(logged(&log, &["refused: connection is insecure"]));
    // allow: plaintext refused by the proxy, then libpq retries with TLS.
    expect_rows(&setup.psql(&pg15, port, "sslmode=allow", "SELECT 3"), "3");

    // libpq 18: SSLRequest with ALPN, then direct TLS.
    let Some(pg18) = install_or_skip(PgVersion::V18) else {
        return;
    };
    let out = setup.psql(&pg18, port, "sslmode=verify-full", "SELECT 18");
    expect_rows(&out, "18");
    assert!(logged(
        &log,
        &["sslrequest", "alpn=postgresql", "sni=localhost"]
    ));
    let out = setup.psql(
        &pg18,
        port,
        "sslmode=verify-full sslnegotiation=direct",
        "SELECT 'direct'",
    );
    expect_rows(&out, "direct");
    assert!(
        logged(
            &log,
            &["direct", "tls=TLSv1.3", "sni=localhost", "alpn=postgresql"]
        ),
        "{:?}",
        log.lock().unwrap()
    );
    let out = setup.psql(
        &pg18,
        port,
        "sslmode=require sslnegotiation=direct",
        "SELECT count(*) FROM generate_series(1, 50000)",
    );
    expect_rows(&out, "50000");
    let out = setup.psql(&pg18, port, "sslmode=disable", "SELECT 1");
    assert!(out
        .error_message()
        .unwrap_or_default()
        .contains("sslmode=require"));
}

#[test]
fn plaintext_clients_pass_with_allow_plaintext() {
    let Some(setup) = setup() else { return };
    let pg15 = install_or_skip(PgVersion::V15).unwrap();
    let (port, log) = setup.start_proxy(true);
    expect_rows(&setup.psql(&pg15, port, "sslmode=disable", "SELECT 1"), "1");
    assert!(logged(&log, &["plaintext startup user=postgres"]));
    expect_rows(
        &setup.psql(&pg15, port, "sslmode=verify-full", "SELECT 2"),
        "2",
    );
}

/// The example binary, built by `cargo test` next to the test executables.
fn example_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let debug_dir = exe.parent()?.parent()?;
    let bin = debug_dir.join("examples").join("tls_proxy");
    bin.is_file().then_some(bin)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Spawned(Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_binary(bin: &Path, setup: &Setup, port: u16, extra: &[&str]) -> Spawned {
    let mut child = Command::new(bin)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--upstream")
        .arg(format!("127.0.0.1:{}", setup.server.port))
        .arg("--cert")
        .arg(&setup.cert)
        .arg("--key")
        .arg(&setup.key)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the tls_proxy example");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    assert!(first.contains("listening on"), "tls_proxy said {first:?}");
    // Keep draining its log so it never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            eprintln!("  tls_proxy binary: {line}");
        }
    });
    Spawned(child)
}

#[test]
fn the_example_binary_serves_psql() {
    let Some(setup) = setup() else { return };
    let Some(bin) = example_binary() else {
        eprintln!("skipping: examples/tls_proxy not built next to this test (run cargo test)");
        return;
    };
    let pg15 = install_or_skip(PgVersion::V15).unwrap();
    let port = free_port();
    let _proxy = spawn_binary(&bin, &setup, port, &[]);
    expect_rows(
        &setup.psql(&pg15, port, "sslmode=verify-full", "SELECT 'binary'"),
        "binary",
    );
    let out = setup.psql(&pg15, port, "sslmode=disable", "SELECT 1");
    assert!(out
        .error_message()
        .unwrap_or_default()
        .contains("sslmode=require"));
    if let Some(pg18) = install_or_skip(PgVersion::V18) {
        expect_rows(
            &setup.psql(
                &pg18,
                port,
                "sslmode=verify-full sslnegotiation=direct",
                "SELECT 'binary direct'",
            ),
            "binary direct",
        );
    }
    // Bad command lines are refused with the usage.
    let out = Command::new(&bin).arg("--listen").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen needs a value"));
    let out = Command::new(&bin).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: tls_proxy"));
}
