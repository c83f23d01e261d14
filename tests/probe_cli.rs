//! The probe example (`examples/probe.rs`) as a command-line program, against a real
//! PostgreSQL 15 server on loopback: the human report, `--json`, and the exit status
//! (0 connected, 1 failed with libpq's error on stderr, 2 usage error).
//!
//! The binary is the one cargo builds next to this test (`target/<profile>/examples/probe`;
//! `cargo test` builds examples first). When it is missing it is built with
//! `cargo build --example probe`, and the test says so.
//!
//! Skips with a notice when PostgreSQL 15 is not installed (`scripts/install-postgres.sh`);
//! with `PGTLS_REQUIRE_SERVERS=1` it fails instead. The usage-error checks need no server.

#[path = "support/pg.rs"]
mod pg;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use pg::{Hba, PgServer, PgVersion, ServerTls};
use serde_json::Value;
use support::certs::{Ca, LeafSpec};

/// `target/<profile>/examples/probe`, built if missing.
fn probe_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("current_exe");
        // target/<profile>/deps/probe_cli-<hash> → target/<profile>/examples/probe
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test executable under target/<profile>/deps")
            .to_path_buf();
        let bin = profile_dir.join("examples").join("probe");
        if !bin.is_file() {
            eprintln!(
                "probe_cli: {} is missing; building it with `cargo build --example probe`",
                bin.display()
            );
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args(["build", "--example", "probe"])
                .current_dir(env!("CARGO_MANIFEST_DIR"));
            // Build into the same target directory as this test.
            if let Some(target) = profile_dir.parent() {
                cmd.env("CARGO_TARGET_DIR", target);
            }
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                cmd.arg("--release");
            }
            let status = cmd.status().expect("running cargo build --example probe");
            assert!(status.success(), "cargo build --example probe failed");
        }
        assert!(bin.is_file(), "no probe binary at {}", bin.display());
        bin
    })
    .clone()
}

/// Runs the probe with a clean environment (HOME an empty directory, no PG* variables).
fn run_probe(args: &[&str], home: &Path) -> Output {
    Command::new(probe_binary())
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::null())
        .output()
        .expect("running the probe")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[track_caller]
fn assert_exit(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: exit status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn usage_errors_exit_2() {
    let home = tempfile::tempdir().unwrap();
    for (what, args) in [
        ("no arguments", &[][..]),
        ("unknown flag", &["--frobnicate", "host=localhost"][..]),
        ("only --json", &["--json"][..]),
        ("two connection strings", &["host=a", "host=b"][..]),
    ] {
        let out = run_probe(args, home.path());
        assert_exit(&out, 2, what);
        let err = text(&out.stderr);
        assert!(err.contains("usage: probe"), "{what}: stderr {err:?}");
        assert!(
            out.stdout.is_empty(),
            "{what}: stdout {:?}",
            text(&out.stdout)
        );
    }
    // --help is not an error.
    let out = run_probe(&["--help"], home.path());
    assert_exit(&out, 0, "--help");
    assert!(text(&out.stdout).contains("usage: probe"));
}

#[test]
fn bad_connection_strings_exit_1_with_libpq_words() {
    let home = tempfile::tempdir().unwrap();
    for (conninfo, message) in [
        (
            "host=localhost sslmode=bogus",
            "invalid sslmode value: \"bogus\"",
        ),
        (
            "host=localhost frob=1",
            "invalid connection option \"frob\"",
        ),
        (
            "host=localhost sslmode=prefer sslnegotiation=direct",
            "weak sslmode \"prefer\" may not be used with sslnegotiation=direct",
        ),
    ] {
        let out = run_probe(&[conninfo], home.path());
        assert_exit(&out, 1, conninfo);
        let err = text(&out.stderr);
        assert!(err.contains(message), "{conninfo}: stderr {err:?}");

        let out = run_probe(&["--json", conninfo], home.path());
        assert_exit(&out, 1, conninfo);
        let v: Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
        assert_eq!(v["ok"], Value::Bool(false));
        assert_eq!(v["tls"], Value::Null);
        assert!(v["error"].as_str().unwrap().contains(message), "{v}");
    }
}

struct Fixture {
    server: PgServer,
    _dir: tempfile::TempDir,
    root: PathBuf,
    home: PathBuf,
}

fn fixture() -> Option<Fixture> {
    let install = pg::install_or_skip(PgVersion::V15)?;
    if !pg::servers_available() {
        eprintln!("{}", pg::SKIP_NOTICE);
        return None;
    }
    let ca = Ca::root("pgtls probe CLI test root");
    let leaf = ca.leaf(LeafSpec::server("localhost").dns("db.pgtls.test"));
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root.crt");
    std::fs::write(&root, ca.root_pem()).unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let server = PgServer::start(
        &install,
        Some(ServerTls::new(leaf.chain_pem(), leaf.key_pem.clone())),
        Hba::Host,
    )
    .expect("PG15 server start");
    Some(Fixture {
        server,
        _dir: dir,
        root,
        home,
    })
}

#[test]
fn probe_cli_against_postgresql_15() {
    let Some(fx) = fixture() else { return };
    let port = fx.server.port;
    let root = fx.root.display().to_string();
    let verify_full = format!(
        "host=localhost hostaddr=127.0.0.1 port={port} user=postgres dbname=postgres sslmode=verify-full sslrootcert={root}"
    );

    // --- the human report ---
    let out = run_probe(&[&verify_full], &fx.home);
    assert_exit(&out, 0, "human report");
    let report = text(&out.stdout);
    eprintln!("===== sample human report (probe '{verify_full}') =====\n{report}===== end =====");
    for needle in [
        "TLS:",
        "TLSv1.3",
        // PostgreSQL 15 ignores ALPN (17+ selects "postgresql").
        "ALPN:         (none)",
        "SNI sent:     localhost",
        "CN=localhost",
        "DNS:localhost, DNS:db.pgtls.test",
        "pgtls probe CLI test root",
        "host name \"localhost\" verified (verify-full)",
        "ready for query",
        "pg_stat_ssl:  ssl=true",
        "server:       PostgreSQL 15",
    ] {
        assert!(
            report.contains(needle),
            "report lacks {needle:?}:\n{report}"
        );
    }
    assert!(
        text(&out.stderr).contains("probing"),
        "stderr: {}",
        text(&out.stderr)
    );

    // --- --json ---
    let out = run_probe(&["--json", &verify_full], &fx.home);
    assert_exit(&out, 0, "--json report");
    let json = text(&out.stdout);
    eprintln!("===== sample --json report =====\n{json}===== end =====");
    let v: Value = serde_json::from_str(&json).expect("one JSON object");
    assert_eq!(json.trim().lines().count(), 1, "one line of JSON");
    assert_eq!(v["ok"], Value::Bool(true));
    assert_eq!(v["tls"], Value::Bool(true));
    assert_eq!(v["protocol"].as_str(), Some("TLSv1.3"));
    assert!(
        v["cipher"]
            .as_str()
            .is_some_and(|c| c.starts_with("TLS13_")),
        "{v}"
    );
    assert_eq!(
        v["alpn"],
        Value::Null,
        "PostgreSQL 15 selects no ALPN protocol"
    );
    assert_eq!(v["error"], Value::Null);
    let attempts = v["attempts"].as_array().expect("attempts is a list");
    assert_eq!(attempts.len(), 1, "{v}");
    assert_eq!(attempts[0]["method"].as_str(), Some("SSLRequest"));
    assert_eq!(attempts[0]["error"], Value::Null);
    assert_eq!(attempts[0]["same_connection"], Value::Bool(false));
    let certs = v["certificates"]
        .as_array()
        .expect("certificates is a list");
    assert!(
        certs[0]["subject"]
            .as_str()
            .unwrap()
            .contains("CN=localhost"),
        "{v}"
    );
    assert_eq!(v["server_view"]["ssl"].as_str(), Some("true"));

    // --- plaintext (sslmode=disable): tls false, protocol/cipher/alpn null ---
    let disable =
        format!("host=127.0.0.1 port={port} user=postgres dbname=postgres sslmode=disable");
    let out = run_probe(&["--json", &disable], &fx.home);
    assert_exit(&out, 0, "sslmode=disable");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], Value::Bool(true));
    assert_eq!(v["tls"], Value::Bool(false));
    for key in ["protocol", "cipher", "alpn", "error"] {
        assert_eq!(v[key], Value::Null, "{key} in {v}");
    }
    assert_eq!(v["attempts"][0]["method"].as_str(), Some("plaintext"));
    let out = run_probe(&[&disable], &fx.home);
    assert_exit(&out, 0, "sslmode=disable (text)");
    assert!(text(&out.stdout).contains("TLS:          no (plaintext connection)"));

    // --- a URI, and settings from the environment ---
    let uri = format!(
        "postgresql://postgres@localhost:{port}/postgres?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={root}"
    );
    let out = run_probe(&["--json", &uri], &fx.home);
    assert_exit(&out, 0, "URI");
    let out = Command::new(probe_binary())
        .args([
            "--json",
            "host=localhost hostaddr=127.0.0.1 user=postgres dbname=postgres",
        ])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &fx.home)
        .env("PGPORT", port.to_string())
        .env("PGSSLMODE", "verify-full")
        .env("PGSSLROOTCERT", &root)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_exit(&out, 0, "PGSSLMODE/PGSSLROOTCERT/PGPORT");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["tls"], Value::Bool(true));

    // --- failures: exit 1, libpq's error on stderr ---
    let wrong_host = format!(
        "host=wrong.pgtls.test hostaddr=127.0.0.1 port={port} user=postgres dbname=postgres sslmode=verify-full sslrootcert={root}"
    );
    let out = run_probe(&[&wrong_host], &fx.home);
    assert_exit(&out, 1, "verify-full, wrong host name");
    let err = text(&out.stderr);
    let expected = "server certificate for \"localhost\" (and 1 other name) does not match host name \"wrong.pgtls.test\"";
    assert!(err.contains(expected), "stderr: {err}");
    assert!(
        err.contains(&format!(
            "connection to server at \"127.0.0.1\", port {port} failed: "
        )),
        "stderr: {err}"
    );
    // libpq agrees, word for word.
    let psql = fx.server.psql(&wrong_host, "SELECT 1");
    assert!(!psql.success());
    assert!(psql.stderr.contains(expected), "psql: {}", psql.stderr);
    assert!(
        psql.stderr.contains(&format!(
            "connection to server at \"127.0.0.1\", port {port} failed: "
        )),
        "psql: {}",
        psql.stderr
    );

    let out = run_probe(&["--json", &wrong_host], &fx.home);
    assert_exit(&out, 1, "verify-full, wrong host name (--json)");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], Value::Bool(false));
    assert_eq!(v["tls"], Value::Null);
    assert!(v["error"].as_str().unwrap().contains(expected), "{v}");
    assert_eq!(v["attempts"].as_array().unwrap().len(), 1);
    assert!(v["attempts"][0]["error"]
        .as_str()
        .unwrap()
        .contains(expected));
    assert!(text(&out.stderr).contains(expected));

    // ssl off: require fails with libpq's message; prefer falls back to plaintext.
    fx.server.set_ssl(false).unwrap();
    let require =
        format!("host=127.0.0.1 port={port} user=postgres dbname=postgres sslmode=require");
    let out = run_probe(&[&require], &fx.home);
    assert_exit(&out, 1, "sslmode=require, ssl off");
    assert!(
        text(&out.stderr).contains("server does not support SSL, but SSL was required"),
        "stderr: {}",
        text(&out.stderr)
    );
    let prefer = format!("host=127.0.0.1 port={port} user=postgres dbname=postgres sslmode=prefer");
    let out = run_probe(&["--json", &prefer], &fx.home);
    assert_exit(&out, 0, "sslmode=prefer, ssl off");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["tls"], Value::Bool(false));
    let attempts = v["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{v}");
    assert_eq!(attempts[0]["method"].as_str(), Some("SSLRequest"));
    assert_eq!(attempts[1]["method"].as_str(), Some("plaintext"));
    assert_eq!(attempts[1]["same_connection"], Value::Bool(true));

    // Nothing listening: exit 1 with the connect error.
    let dead = "host=127.0.0.1 port=1 user=postgres dbname=postgres sslmode=prefer";
    let out = run_probe(&[dead], &fx.home);
    assert_exit(&out, 1, "connection refused");
    assert!(
        text(&out.stderr).contains("Connection refused"),
        "stderr: {}",
        text(&out.stderr)
    );
}
