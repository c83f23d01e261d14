//! `pgtls probe` (the tool of cli/) as a command-line program, against a real PostgreSQL 15
//! server on loopback: the human report, `--json`, the progress lines on stderr, the exit
//! status (0 connected, 1 failed with libpq's error on stderr, 2 usage error), and a
//! service file (`service=NAME`, `PGSERVICEFILE`) giving the same outcome as psql's.
//!
//! One test per kind of failure (wrong host name, unknown CA, expired, revoked, connection
//! refused, timeout, direct TLS against PostgreSQL 15): in both reports the verification
//! says `failed: <reason>` and never a success, and the chain the server presented is
//! listed when it was rejected.
//!
//! The binary is `target/<profile>/pgtls`, brought up to date once per run with
//! `cargo build -p pgtls-cli --bin pgtls` (a no-op when fresh): `cargo test --test probe_cli`
//! alone does not build another package's binary, and a stale one would test old code.
//!
//! Skips with a notice when PostgreSQL 15 is not installed (`scripts/install-postgres.sh`);
//! with `PGTLS_REQUIRE_SERVERS=1` it fails instead. The usage-error checks need no server.

#[path = "support/example_bin.rs"]
mod example_bin;
use pgtls_testkit::pg;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use pg::{Hba, PgServer, PgVersion, ServerTls};
use pgtls_testkit::certs::{crl_pem, Ca, Leaf, LeafSpec};
use serde_json::Value;

/// `target/<profile>/pgtls`, built (or found up to date) by cargo once per run.
fn pgtls_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(example_bin::tool_binary).clone()
}

/// Runs `pgtls probe ARGS` with a clean environment (HOME an empty directory, no PG*
/// variables).
fn run_probe(args: &[&str], home: &Path) -> Output {
    run_probe_env(args, home, &[])
}

/// [`run_probe`] with extra environment variables.
fn run_probe_env(args: &[&str], home: &Path, env: &[(&str, &str)]) -> Output {
    Command::new(pgtls_binary())
        .arg("probe")
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .env("PGCONNECT_TIMEOUT", "10")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("running pgtls probe")
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
        assert!(err.contains("usage: pgtls probe"), "{what}: stderr {err:?}");
        assert!(
            out.stdout.is_empty(),
            "{what}: stdout {:?}",
            text(&out.stdout)
        );
    }
    // --help is not an error.
    let out = run_probe(&["--help"], home.path());
    assert_exit(&out, 0, "--help");
    assert!(text(&out.stdout).contains("usage: pgtls probe"));
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

/// A PostgreSQL 15 server on loopback serving one certificate chain, and a client side
/// with `root.crt` (the CA that issued it) and an empty HOME.
struct Fixture {
    server: PgServer,
    dir: tempfile::TempDir,
    root: PathBuf,
    home: PathBuf,
}

impl Fixture {
    /// Writes `contents` into the client side's directory; returns the path as a string.
    fn client_file(&self, name: &str, contents: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path.display().to_string()
    }

    /// `host=localhost hostaddr=127.0.0.1 port=N user=postgres dbname=postgres <extra>`.
    fn conninfo(&self, extra: &str) -> String {
        format!(
            "host=localhost hostaddr=127.0.0.1 port={} user=postgres dbname=postgres {extra}",
            self.server.port
        )
    }
}

/// A PostgreSQL 15 fixture serving a certificate for `localhost` and `db.pgtls.test`
/// issued by a root.
fn fixture() -> Option<Fixture> {
    fixture_of(PgVersion::V15)
}

/// [`fixture`] on another PostgreSQL version.
fn fixture_of(version: PgVersion) -> Option<Fixture> {
    let ca = Ca::root("pgtls probe CLI test root");
    let leaf = ca.leaf(LeafSpec::server("localhost").dns("db.pgtls.test"));
    fixture_serving_on(version, &ca, &leaf)
}

/// A PostgreSQL 15 fixture whose server presents `leaf`'s chain; `root.crt` holds `ca`'s
/// root.
fn fixture_serving(ca: &Ca, leaf: &Leaf) -> Option<Fixture> {
    fixture_serving_on(PgVersion::V15, ca, leaf)
}

/// [`fixture_serving`] on any PostgreSQL version.
fn fixture_serving_on(version: PgVersion, ca: &Ca, leaf: &Leaf) -> Option<Fixture> {
    let install = pg::install_or_skip(version)?;
    if !pg::servers_available() {
        eprintln!("{}", pg::SKIP_NOTICE);
        return None;
    }
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
    .unwrap_or_else(|err| panic!("{version} server start: {err}"));
    Some(Fixture {
        server,
        dir,
        root,
        home,
    })
}

#[test]
fn probe_cli_against_postgresql_15() {
    let Some(fx) = fixture() else { return };
    let port = fx.server.port;
    let root = fx.root.display().to_string();
    let verify_full = fx.conninfo(&format!("sslmode=verify-full sslrootcert={root}"));

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
        // pgtls's P-256 key share suits PostgreSQL 15's only group (prime256v1).
        "key exchange: secp256r1",
        "CN=localhost",
        "(X.509 v3)",
        "DNS:localhost, DNS:db.pgtls.test",
        "pgtls probe CLI test root",
        "verification: chain verified against the root certificates; host name \"localhost\" verified (verify-full)",
        "ready for query",
        "pg_stat_ssl:  ssl=true",
        "server:       PostgreSQL 15",
    ] {
        assert!(
            report.contains(needle),
            "report lacks {needle:?}:\n{report}"
        );
    }
    assert!(!report.contains("failed"), "{report}");
    assert!(!report.contains("rejected"), "{report}");
    // Progress on stderr, as it happens: the connection, then each attempt's outcome.
    let stderr = text(&out.stderr);
    for needle in [
        "pgtls probe: probing",
        &format!("connecting: connection to server at \"127.0.0.1\", port {port} (connect_timeout: "),
        "connected (TLS): connection to server at",
        &format!("attempt 1: connection to server at \"127.0.0.1\", port {port} via SSLRequest -> ready for query"),
    ] {
        assert!(stderr.contains(needle), "stderr lacks {needle:?}:\n{stderr}");
    }
    // --quiet: the report alone.
    let out = run_probe(&["--quiet", &verify_full], &fx.home);
    assert_exit(&out, 0, "--quiet");
    assert!(out.stderr.is_empty(), "stderr: {}", text(&out.stderr));

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
    assert_eq!(v["key_exchange_group"].as_str(), Some("secp256r1"), "{v}");
    assert_eq!(v["error"], Value::Null);
    assert_eq!(v["hint"], Value::Null);
    assert_eq!(
        v["verification"].as_str(),
        Some("chain verified against the root certificates; host name \"localhost\" verified (verify-full)")
    );
    let attempts = v["attempts"].as_array().expect("attempts is a list");
    assert_eq!(attempts.len(), 1, "{v}");
    assert_eq!(attempts[0]["method"].as_str(), Some("SSLRequest"));
    assert_eq!(attempts[0]["error"], Value::Null);
    assert_eq!(attempts[0]["same_connection"], Value::Bool(false));
    let certs = v["certificates"]
        .as_array()
        .expect("certificates is a list");
    assert_eq!(certs.len(), 1, "{v}");
    assert!(
        certs[0]["subject"]
            .as_str()
            .unwrap()
            .contains("CN=localhost"),
        "{v}"
    );
    assert_eq!(certs[0]["version"].as_u64(), Some(3));
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
    assert_eq!(v["verification"].as_str(), Some("none (sslmode=disable)"));
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
    let out = Command::new(pgtls_binary())
        .args([
            "probe",
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

    // ssl off: require fails with libpq's message; prefer falls back to plaintext.
    fx.server.set_ssl(false).unwrap();
    let require =
        format!("host=127.0.0.1 port={port} user=postgres dbname=postgres sslmode=require");
    expect_failure(
        &require,
        &fx.home,
        &Expected {
            error: "server does not support SSL, but SSL was required",
            chain: &[],
            hint: false,
        },
    );
    // With a root file prefer would verify the chain, but the plaintext connection that
    // follows the server's `N` verified nothing, and says so.
    let prefer = format!(
        "host=127.0.0.1 port={port} user=postgres dbname=postgres sslmode=prefer sslrootcert={root}"
    );
    let out = run_probe(&["--json", &prefer], &fx.home);
    assert_exit(&out, 0, "sslmode=prefer, ssl off");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["tls"], Value::Bool(false));
    assert_eq!(
        v["verification"].as_str(),
        Some("none (plaintext connection)")
    );
    let attempts = v["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{v}");
    assert_eq!(attempts[0]["method"].as_str(), Some("SSLRequest"));
    assert_eq!(attempts[1]["method"].as_str(), Some("plaintext"));
    assert_eq!(attempts[1]["same_connection"], Value::Bool(true));
}

/// What a failed probe must report.
struct Expected<'a> {
    /// The error in libpq's words: on stderr, in `error` and in the `failed: <reason>`
    /// verification outcome.
    error: &'a str,
    /// The subjects (a part of each) of the chain the server presented, in order, when
    /// it was rejected; empty when none was.
    chain: &'a [&'a str],
    /// Whether the direct-TLS hint is expected.
    hint: bool,
}

/// Runs the probe with `conninfo` for the human report and for `--json` and checks both
/// against `expected`; returns (human report, JSON report).
#[track_caller]
fn expect_failure(conninfo: &str, home: &Path, expected: &Expected<'_>) -> (String, Value) {
    let hint = "the server may be older than PostgreSQL 17, which does not support direct TLS; try sslnegotiation=postgres";

    // --- the human report ---
    let out = run_probe(&[conninfo], home);
    assert_exit(&out, 1, conninfo);
    let report = text(&out.stdout);
    let stderr = text(&out.stderr);
    eprintln!("===== human report (probe '{conninfo}') =====\n{report}{stderr}===== end =====");
    assert!(stderr.contains(expected.error), "stderr: {stderr}");
    let verification = report
        .lines()
        .find_map(|l| l.strip_prefix("verification: "))
        .unwrap_or_else(|| panic!("no verification line:\n{report}"));
    assert!(
        verification.starts_with("failed: ") && verification.contains(expected.error),
        "verification: {verification:?}"
    );
    assert!(
        !report.contains("verified"),
        "a failed probe claims a verification:\n{report}"
    );
    assert!(
        report.contains("result:       FAILED: ") && report.contains(expected.error),
        "{report}"
    );
    if expected.chain.is_empty() {
        assert!(!report.contains("certificate 0:"), "{report}");
        assert!(!report.contains("rejected chain"), "{report}");
    } else {
        assert!(
            report.contains("rejected chain, as the server presented it:"),
            "{report}"
        );
        for (i, subject) in expected.chain.iter().enumerate() {
            let entry = report
                .lines()
                .find(|l| l.starts_with(&format!("certificate {i}: ")))
                .unwrap_or_else(|| panic!("no certificate {i}:\n{report}"));
            assert!(
                entry.contains(subject) && entry.ends_with("(X.509 v3)"),
                "{entry}"
            );
        }
        assert!(
            !report.contains(&format!("certificate {}: ", expected.chain.len())),
            "{report}"
        );
        assert_eq!(
            report.matches("    issuer:   ").count(),
            expected.chain.len(),
            "{report}"
        );
        assert_eq!(
            report.matches("    validity: ").count(),
            expected.chain.len(),
            "{report}"
        );
        assert!(report.contains("    SANs:     DNS:localhost"), "{report}");
    }
    assert_eq!(
        report.contains(&format!("hint:         {hint}")),
        expected.hint,
        "{report}"
    );
    assert_eq!(
        stderr.contains(&format!("probe: hint: {hint}")),
        expected.hint,
        "{stderr}"
    );

    // --- --json ---
    let out = run_probe(&["--json", conninfo], home);
    assert_exit(&out, 1, conninfo);
    let json = text(&out.stdout);
    eprintln!("===== --json report =====\n{json}===== end =====");
    let v: Value = serde_json::from_str(&json).expect("--json prints JSON");
    assert_eq!(v["ok"], Value::Bool(false), "{v}");
    assert_eq!(v["tls"], Value::Null, "{v}");
    assert!(v["error"].as_str().unwrap().contains(expected.error), "{v}");
    assert_eq!(
        v["verification"].as_str(),
        Some(format!("failed: {}", error_alone(&v)).as_str()),
        "{v}"
    );
    assert!(
        v["verification"].as_str().unwrap().contains(expected.error),
        "{v}"
    );
    assert!(!json.contains("verified"), "{json}");
    let certs = v["certificates"]
        .as_array()
        .expect("certificates is a list");
    assert_eq!(certs.len(), expected.chain.len(), "{v}");
    for (cert, subject) in certs.iter().zip(expected.chain) {
        assert!(cert["subject"].as_str().unwrap().contains(subject), "{v}");
        assert!(!cert["issuer"].as_str().unwrap().is_empty(), "{v}");
        assert!(!cert["not_before"].as_str().unwrap().is_empty(), "{v}");
        assert!(!cert["not_after"].as_str().unwrap().is_empty(), "{v}");
        assert_eq!(cert["version"].as_u64(), Some(3), "{v}");
    }
    if let Some(leaf) = certs.first() {
        assert!(
            leaf["sans"]
                .as_array()
                .unwrap()
                .contains(&Value::from("DNS:localhost")),
            "{v}"
        );
    }
    let attempts = v["attempts"].as_array().expect("attempts is a list");
    assert!(!attempts.is_empty(), "{v}");
    assert!(
        attempts.last().unwrap()["error"]
            .as_str()
            .unwrap()
            .contains(expected.error),
        "{v}"
    );
    if expected.hint {
        assert_eq!(v["hint"].as_str(), Some(hint), "{v}");
    } else {
        assert_eq!(v["hint"], Value::Null, "{v}");
    }
    (report, v)
}

/// The report's error without libpq's `connection to server at ... failed: ` prefix.
fn error_alone(v: &Value) -> &str {
    let error = v["error"].as_str().unwrap();
    error
        .split_once(" failed: ")
        .map_or(error, |(_, rest)| rest)
}

#[test]
fn wrong_host_name_fails_verification_and_lists_the_chain() {
    let Some(fx) = fixture() else { return };
    let root = fx.root.display().to_string();
    let port = fx.server.port;
    let wrong_host = format!(
        "host=wrong.pgtls.test hostaddr=127.0.0.1 port={port} user=postgres dbname=postgres sslmode=verify-full sslrootcert={root}"
    );
    let expected = "server certificate for \"localhost\" (and 1 other name) does not match host name \"wrong.pgtls.test\"";
    let (_, v) = expect_failure(
        &wrong_host,
        &fx.home,
        &Expected {
            error: expected,
            chain: &["CN=localhost"],
            hint: false,
        },
    );
    assert_eq!(
        v["verification"].as_str(),
        Some(format!("failed: {expected}").as_str())
    );
    assert_eq!(
        v["error"].as_str(),
        Some(
            format!("connection to server at \"127.0.0.1\", port {port} failed: {expected}")
                .as_str()
        )
    );
    assert_eq!(
        v["certificates"][0]["sans"],
        serde_json::json!(["DNS:localhost", "DNS:db.pgtls.test"])
    );
    assert!(v["certificates"][0]["issuer"]
        .as_str()
        .unwrap()
        .contains("pgtls probe CLI test root"));
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
}

#[test]
fn unknown_ca_fails_verification_and_lists_the_chain() {
    // The server presents leaf + intermediate of one root; the client trusts another.
    let ca = Ca::root("pgtls probe CLI server root");
    let intermediate = ca.intermediate("pgtls probe CLI intermediate");
    let leaf = intermediate.leaf(LeafSpec::server("localhost"));
    let Some(fx) = fixture_serving(&ca, &leaf) else {
        return;
    };
    let other = fx.client_file(
        "other-root.crt",
        &Ca::root("pgtls probe CLI other root").root_pem(),
    );
    let (report, v) = expect_failure(
        &fx.conninfo(&format!("sslmode=verify-ca sslrootcert={other}")),
        &fx.home,
        &Expected {
            error: "SSL error: certificate verify failed: unable to get local issuer certificate",
            chain: &["CN=localhost", "CN=pgtls probe CLI intermediate"],
            hint: false,
        },
    );
    assert!(v["certificates"][0]["issuer"]
        .as_str()
        .unwrap()
        .contains("pgtls probe CLI intermediate"));
    assert!(v["certificates"][1]["issuer"]
        .as_str()
        .unwrap()
        .contains("pgtls probe CLI server root"));
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("    issuer:") && l.contains("CN=pgtls probe CLI server root")),
        "{report}"
    );
}

#[test]
fn expired_certificate_fails_verification_and_lists_the_chain() {
    let ca = Ca::root("pgtls probe CLI test root");
    let leaf = ca.leaf(LeafSpec::server("localhost").expired());
    let Some(fx) = fixture_serving(&ca, &leaf) else {
        return;
    };
    let root = fx.root.display().to_string();
    let (_, v) = expect_failure(
        &fx.conninfo(&format!("sslmode=verify-full sslrootcert={root}")),
        &fx.home,
        &Expected {
            error: "SSL error: certificate verify failed: certificate has expired",
            chain: &["CN=localhost"],
            hint: false,
        },
    );
    // The validity shown is the certificate's: it ended in the past.
    let not_after = v["certificates"][0]["not_after"].as_str().unwrap();
    let year: i32 = not_after
        .split_whitespace()
        .find_map(|w| w.parse().ok().filter(|y| *y > 2000))
        .unwrap_or_else(|| panic!("no year in {not_after:?}"));
    let this_year: i32 = time::OffsetDateTime::now_utc().year();
    assert!(year <= this_year, "{not_after}");
}

#[test]
fn revoked_certificate_fails_verification_and_lists_the_chain() {
    let ca = Ca::root("pgtls probe CLI test root");
    let leaf = ca.leaf(LeafSpec::server("localhost"));
    let Some(fx) = fixture_serving(&ca, &leaf) else {
        return;
    };
    let root = fx.root.display().to_string();
    let crl = fx.client_file("root.crl", &crl_pem(&ca.crl_now(&[&leaf])));
    expect_failure(
        &fx.conninfo(&format!(
            "sslmode=verify-full sslrootcert={root} sslcrl={crl}"
        )),
        &fx.home,
        &Expected {
            error: "SSL error: certificate verify failed: certificate revoked",
            chain: &["CN=localhost"],
            hint: false,
        },
    );
    // The same settings with a CRL that revokes nothing connect.
    let clean = fx.client_file("clean.crl", &crl_pem(&ca.crl_now(&[])));
    let out = run_probe(
        &[&fx.conninfo(&format!(
            "sslmode=verify-full sslrootcert={root} sslcrl={clean}"
        ))],
        &fx.home,
    );
    assert_exit(&out, 0, "a CRL that revokes nothing");
}

#[test]
fn connection_refused_fails_without_a_chain() {
    let home = tempfile::tempdir().unwrap();
    // Nothing listens on port 1 of the loopback interface.
    let (report, _) = expect_failure(
        "host=127.0.0.1 port=1 user=postgres dbname=postgres sslmode=require",
        home.path(),
        &Expected {
            error: "Connection refused",
            chain: &[],
            hint: false,
        },
    );
    assert!(
        report.contains("connection to server at \"127.0.0.1\", port 1 failed: "),
        "{report}"
    );
}

#[test]
fn connect_timeout_against_a_silent_listener_fails_without_a_chain() {
    let home = tempfile::tempdir().unwrap();
    // The kernel accepts the connection; nobody ever reads or answers the SSLRequest.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let conninfo = format!(
        "host=127.0.0.1 port={port} user=postgres dbname=postgres sslmode=require connect_timeout=2"
    );
    let (_, v) = expect_failure(
        &conninfo,
        home.path(),
        &Expected {
            error: "timeout expired",
            chain: &[],
            hint: false,
        },
    );
    assert_eq!(v["verification"].as_str(), Some("failed: timeout expired"));
    drop(listener);
}

#[test]
fn direct_tls_against_postgresql_15_fails_with_a_hint() {
    let Some(fx) = fixture() else { return };
    let root = fx.root.display().to_string();
    // PostgreSQL 15 takes the ClientHello for a startup packet and hangs up.
    let (_, v) = expect_failure(
        &fx.conninfo(&format!(
            "sslmode=verify-full sslrootcert={root} sslnegotiation=direct"
        )),
        &fx.home,
        &Expected {
            error: "SSL SYSCALL error: EOF detected",
            chain: &[],
            hint: true,
        },
    );
    let attempts = v["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{v}");
    assert_eq!(attempts[0]["method"].as_str(), Some("direct TLS"));
    // The same server with the SSLRequest connects.
    let out = run_probe(
        &[&fx.conninfo(&format!(
            "sslmode=verify-full sslrootcert={root} sslnegotiation=postgres"
        ))],
        &fx.home,
    );
    assert_exit(&out, 0, "sslnegotiation=postgres");
}

#[test]
fn direct_tls_against_postgresql_18_connects_without_a_hint() {
    let Some(fx) = fixture_of(PgVersion::V18) else {
        return;
    };
    let root = fx.root.display().to_string();
    let direct = fx.conninfo(&format!(
        "sslmode=verify-full sslrootcert={root} sslnegotiation=direct"
    ));
    let out = run_probe(&["--json", &direct], &fx.home);
    assert_exit(&out, 0, "direct TLS against PostgreSQL 18");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["alpn"].as_str(), Some("postgresql"), "{v}");
    assert_eq!(
        v["attempts"][0]["method"].as_str(),
        Some("direct TLS"),
        "{v}"
    );
    assert_eq!(v["hint"], Value::Null, "{v}");
    assert!(
        v["verification"]
            .as_str()
            .is_some_and(|s| s.ends_with("host name \"localhost\" verified (verify-full)")),
        "{v}"
    );
    let out = run_probe(&[&direct], &fx.home);
    assert_exit(&out, 0, "direct TLS against PostgreSQL 18 (text)");
    let report = text(&out.stdout);
    assert!(!report.contains("hint:"), "{report}");
    assert!(report.contains("ALPN:         postgresql"), "{report}");
}

/// The done-when: `pgtls probe 'service=NAME'` against a real server, with the same
/// outcome as `psql 'service=NAME'`, for a good service and a wrong-host one (both
/// `sslmode=verify-full`), the service file named by `PGSERVICEFILE`.
#[test]
fn service_file_outcomes_match_psql() {
    let Some(fx) = fixture() else { return };
    let port = fx.server.port;
    let root = fx.root.display().to_string();
    let service_file = fx.client_file(
        "pg_service.conf",
        &format!(
            "# pgtls probe CLI test services\n\
             [good]\nhost=localhost\nhostaddr=127.0.0.1\nport={port}\nuser=postgres\n\
             dbname=postgres\nsslmode=verify-full\nsslrootcert={root}\n\n\
             [wronghost]\nhost=wrong.pgtls.test\nhostaddr=127.0.0.1\nport={port}\n\
             user=postgres\ndbname=postgres\nsslmode=verify-full\nsslrootcert={root}\n"
        ),
    );
    let env = [("PGSERVICEFILE", service_file.as_str())];

    // The good service: both connect, over TLS, verified.
    let out = run_probe_env(&["--json", "service=good"], &fx.home, &env);
    assert_exit(&out, 0, "service=good");
    let v: Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    assert_eq!(v["ok"], Value::Bool(true), "{v}");
    assert_eq!(v["tls"], Value::Bool(true), "{v}");
    assert_eq!(
        v["verification"].as_str(),
        Some("chain verified against the root certificates; host name \"localhost\" verified (verify-full)")
    );
    let psql = fx.server.psql_env("service=good", pg::SSL_QUERY, &env);
    assert!(psql.success(), "psql 'service=good': {}", psql.stderr);
    assert_eq!(psql.stdout.trim(), "t", "psql's session is encrypted");

    // The wrong-host service: both fail, with libpq's message word for word.
    let out = run_probe_env(&["service=wronghost"], &fx.home, &env);
    assert_exit(&out, 1, "service=wronghost");
    let expected = format!(
        "connection to server at \"127.0.0.1\", port {port} failed: server certificate for \
         \"localhost\" (and 1 other name) does not match host name \"wrong.pgtls.test\""
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("pgtls probe: error: {expected}\n")),
        "pgtls probe: {stderr}"
    );
    let psql = fx.server.psql_env("service=wronghost", "SELECT 1", &env);
    assert!(!psql.success(), "psql 'service=wronghost' connected");
    assert_eq!(psql.error_message().as_deref(), Some(expected.as_str()));

    // A service the file does not have: libpq's words from both.
    let out = run_probe_env(&["service=missing"], &fx.home, &env);
    assert_exit(&out, 1, "service=missing");
    let psql = fx.server.psql_env("service=missing", "SELECT 1", &env);
    assert!(!psql.success());
    let psql_error = psql.error_message().unwrap_or_default();
    assert!(
        text(&out.stderr).contains(&format!("pgtls probe: error: {psql_error}")),
        "pgtls probe: {}\npsql: {psql_error}",
        text(&out.stderr)
    );
}

#[test]
fn resume_against_postgresql_15_reports_the_second_connection_not_resumed() {
    let Some(fx) = fixture() else { return };
    let root = fx.root.display().to_string();
    let verify_full = fx.conninfo(&format!("sslmode=verify-full sslrootcert={root}"));
    let out = run_probe(&["--quiet", "--resume", &verify_full], &fx.home);
    assert_exit(&out, 0, "--resume");
    let report = text(&out.stdout);
    for needle in [
        "connection:   the second of two with one session store (--resume)",
        // PostgreSQL issues no session tickets.
        "resumed:      no (full handshake: the server issued no ticket or refused it)",
        "ready for query",
    ] {
        assert!(
            report.contains(needle),
            "report lacks {needle:?}:\n{report}"
        );
    }
    // Without --resume: one connection, a plain verdict.
    let out = run_probe(&["--quiet", &verify_full], &fx.home);
    assert!(text(&out.stdout).contains("resumed:      no (full handshake)\n"));
    let out = run_probe(&["--json", "--quiet", "--resume", &verify_full], &fx.home);
    assert_exit(&out, 0, "--resume --json");
    let v: Value = serde_json::from_str(&text(&out.stdout)).expect("one JSON object");
    assert_eq!(v["resumed"], Value::Bool(false));
    assert_eq!(v["second_connection"], Value::Bool(true));
    // The help names the option.
    let out = run_probe(&["--help"], &fx.home);
    assert!(text(&out.stdout).contains("--resume   connect twice"));
}
