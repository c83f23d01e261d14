//! Self-test of the real-server harness (testkit/src/pg.rs): start PostgreSQL 15 and 18,
//! switch pg_hba / ssl / certificates by reloading, and check psql (libpq) outcomes.
//!
//! Skips with a notice when PostgreSQL is not installed (run scripts/install-postgres.sh).

use pgtls_testkit::pg;

use pg::*;
use std::path::PathBuf;
use std::thread;
use std::time::Instant;

fn skip() -> bool {
    if servers_available() {
        false
    } else {
        eprintln!("{SKIP_NOTICE}");
        true
    }
}

/// Print the outcome and assert it.
#[track_caller]
fn expect(
    label: &str,
    got: &Outcome,
    connected: bool,
    encrypted: Option<bool>,
    error_contains: Option<&str>,
) {
    eprintln!("  {label:<62} -> {got}");
    assert_eq!(got.connected, connected, "{label}: connected? got {got}");
    assert_eq!(got.encrypted, encrypted, "{label}: encrypted? got {got}");
    if let Some(needle) = error_contains {
        assert!(
            got.error_contains(needle),
            "{label}: expected error containing {needle:?}, got {got}"
        );
    }
}

fn write_home_file(server: &PgServer, name: &str, contents: &str) -> PathBuf {
    // A file for sslrootcert=..., outside HOME's ~/.postgresql so it is only used when named.
    let p = server.root_dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

/// A CA and a client certificate (CN=postgres) signed by it, made with the openssl CLI.
struct ClientPki {
    ca_pem: String,
    cert: PathBuf,
    key: PathBuf,
}

impl ClientPki {
    fn new(dir: &std::path::Path) -> ClientPki {
        let dir = dir.join("client-pki");
        std::fs::create_dir_all(&dir).unwrap();
        let run = |args: &[&str]| {
            let out = std::process::Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&[
            "req",
            "-new",
            "-x509",
            "-days",
            "30",
            "-nodes",
            "-subj",
            "/CN=pgtls test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ]);
        run(&[
            "req",
            "-new",
            "-nodes",
            "-subj",
            "/CN=postgres",
            "-keyout",
            "client.key",
            "-out",
            "client.csr",
        ]);
        run(&[
            "x509",
            "-req",
            "-days",
            "30",
            "-in",
            "client.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "client.crt",
        ]);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.join("client.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        ClientPki {
            ca_pem: std::fs::read_to_string(dir.join("ca.crt")).unwrap(),
            cert: dir.join("client.crt"),
            key: dir.join("client.key"),
        }
    }
}

fn scenario(install: &PgInstall) {
    let v = install.version;
    eprintln!(
        "== {v}: {} ; psql {} {:?}",
        install.server_version().unwrap(),
        install.psql.display(),
        install.psql_env
    );

    let tls = ServerTls::openssl_self_signed("localhost").expect("openssl self-signed certificate");
    let t = Instant::now();
    let server = PgServer::start(install, Some(tls.clone()), Hba::Host).expect("server start");
    eprintln!(
        "  {v}: server start (initdb + pg_ctl start + role) took {:?}, port {}",
        t.elapsed(),
        server.port
    );
    assert_eq!(server.show("ssl").unwrap(), "on");

    // --- TLS on, host (both) ---
    expect(
        "require",
        &server.connect_outcome_via_psql(&server.conninfo("sslmode=require")),
        true,
        Some(true),
        None,
    );
    expect(
        "disable",
        &server.connect_outcome_via_psql(&server.conninfo("sslmode=disable")),
        true,
        Some(false),
        None,
    );
    expect(
        "prefer",
        &server.connect_outcome_via_psql(&server.conninfo("sslmode=prefer")),
        true,
        Some(true),
        None,
    );
    // PGSSLMODE from the env argument (the process environment is not inherited).
    expect(
        "PGSSLMODE=disable via env",
        &server.connect_outcome_via_psql_env(&server.base_conninfo(), &[("PGSSLMODE", "disable")]),
        true,
        Some(false),
        None,
    );
    // HOME is the server's empty home dir: no ~/.postgresql/root.crt leaks in.
    let expected_root = format!(
        "root certificate file \"{}/.postgresql/root.crt\" does not exist",
        server.home_dir.display()
    );
    expect(
        "verify-ca, no root file in HOME",
        &server.connect_outcome_via_psql(&server.conninfo("sslmode=verify-ca")),
        false,
        None,
        Some(&expected_root),
    );

    // Timing of one psql call (sequential, then 4 in parallel).
    let n = 20;
    let t = Instant::now();
    for _ in 0..n {
        assert!(
            server
                .connect_outcome_via_psql(&server.conninfo("sslmode=require"))
                .connected
        );
    }
    let seq = t.elapsed() / n;
    let t = Instant::now();
    thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..n / 4 {
                    assert!(
                        server
                            .connect_outcome_via_psql(&server.conninfo("sslmode=require"))
                            .connected
                    );
                }
            });
        }
    });
    let par = t.elapsed() / n;
    eprintln!(
        "  {v}: psql sslmode=require: {seq:?} per call sequential, {par:?} per call with 4 threads"
    );

    // --- hostssl only ---
    let t = Instant::now();
    server.set_hba(Hba::HostSslOnly).unwrap();
    eprintln!("  {v}: set_hba (reload + wait) took {:?}", t.elapsed());
    expect(
        "hostssl-only: disable",
        &server.connect_outcome_via_psql(&server.conninfo("sslmode=disable")),
        false,
        None,
        Some("no pg_hba.conf entry"),
    );
    expect(
        "hostssl-only: require",
        &server.connect_outcome_via_psql(&server.conninfo("sslmode=require")),
        true,
        Some(true),
        None,
    );
    expect(
        "hostssl-only: allow (plaintext rejected, retries with TLS)",
        &server.connect_outcome_via_psql(&server.conninfo("sslmode=allow")),
        true,
        Some(true),
        None,
    );

    // --- hostnossl only ---
    server.set_hba(Hba::HostNoSslOnly).unwrap();
    expect(
        "hostnossl-only: require",
        &server.connect_outcome_via_psql(&server.conninfo("sslmode=require")),
        false,
        None,
        Some("no pg_hba.conf entry"),
    );
    expect(
        "hostnossl-only: prefer (TLS rejected, retries plaintext)",
        &server.connect_outcome_via_psql(&server.conninfo("sslmode=prefer")),
        true,
        Some(false),
        None,
    );

    // --- a rejected reload is reported, and the previous pg_hba stays in force ---
    let err = server
        .set_hba(Hba::Custom(
            "hostssl all all 127.0.0.1/32 no-such-method".into(),
        ))
        .expect_err("an invalid pg_hba.conf must be reported");
    eprintln!(
        "  {v}: invalid pg_hba rejected as expected: {}",
        err.to_string()
            .lines()
            .find(|l| l.contains("not reloaded"))
            .unwrap_or("?")
    );
    expect(
        "hostnossl-only still in force: require",
        &server.connect_outcome_via_psql(&server.conninfo("sslmode=require")),
        false,
        None,
        Some("no pg_hba.conf entry"),
    );

    // --- scram ---
    server.set_hba(Hba::Scram).unwrap();
    expect(
        "scram: right password, require",
        &server.connect_outcome_via_psql(&format!("host=127.0.0.1 port={} user={SCRAM_USER} dbname=postgres password={SCRAM_PASSWORD} sslmode=require", server.port)),
        true,
        Some(true),
        None,
    );
    expect(
        "scram: wrong password",
        &server.connect_outcome_via_psql(&format!("host=127.0.0.1 port={} user={SCRAM_USER} dbname=postgres password=wrong sslmode=disable", server.port)),
        false,
        None,
        Some("password authentication failed"),
    );

    // --- ssl off ---
    server.set_hba(Hba::Host).unwrap();
    let t = Instant::now();
    server.set_ssl(false).unwrap();
    eprintln!("  {v}: set_ssl(false) took {:?}", t.elapsed());
    assert_eq!(server.show("ssl").unwrap(), "off");
    expect(
        "ssl off: require",
        &server.connect_outcome_via_psql(&server.conninfo("sslmode=require")),
        false,
        None,
        Some("server does not support SSL, but SSL was required"),
    );
    expect(
        "ssl off: prefer",
        &server.connect_outcome_via_psql(&server.conninfo("sslmode=prefer")),
        true,
        Some(false),
        None,
    );
    server.set_ssl(true).unwrap();
    expect(
        "ssl back on: require",
        &server.connect_outcome_via_psql(&server.conninfo("sslmode=require")),
        true,
        Some(true),
        None,
    );

    // --- certificate swap by reload ---
    let root1 = write_home_file(&server, "root1.crt", &tls.cert_pem);
    let vf = |root: &PathBuf| {
        server.conninfo(&format!(
            "host=localhost hostaddr=127.0.0.1 sslmode=verify-full sslrootcert={}",
            root.display()
        ))
    };
    expect(
        "verify-full against cert 1",
        &server.connect_outcome_via_psql(&vf(&root1)),
        true,
        Some(true),
        None,
    );
    let other = ServerTls::openssl_self_signed("other.example").unwrap();
    server
        .set_server_cert(&other.cert_pem, &other.key_pem, None, None)
        .unwrap();
    let root2 = write_home_file(&server, "root2.crt", &other.cert_pem);
    expect(
        "after set_server_cert: verify-full, old root",
        &server.connect_outcome_via_psql(&vf(&root1)),
        false,
        None,
        Some("certificate verify failed"),
    );
    expect(
        "after set_server_cert: verify-full, new root",
        &server.connect_outcome_via_psql(&vf(&root2)),
        false,
        None,
        Some("server certificate for \"other.example\" does not match host name \"localhost\""),
    );
    let err = server
        .set_server_cert(&tls.cert_pem, "not a key", None, None)
        .expect_err("a bad key must be reported");
    eprintln!(
        "  {v}: bad key rejected as expected: {}",
        err.to_string()
            .lines()
            .find(|l| l.contains("not reloaded"))
            .unwrap_or("?")
    );
    // The server kept the previous (other.example) context.
    expect(
        "bad key: old context kept",
        &server.connect_outcome_via_psql(&vf(&root2)),
        false,
        None,
        Some("other.example"),
    );
    server
        .set_server_cert(&tls.cert_pem, &tls.key_pem, None, None)
        .unwrap();
    expect(
        "cert 1 restored",
        &server.connect_outcome_via_psql(&vf(&root1)),
        true,
        Some(true),
        None,
    );

    // --- client certificates: ServerTls::ca_pem + Hba::Cert ---
    let pki = ClientPki::new(&server.root_dir);
    server
        .set_server_cert(&tls.cert_pem, &tls.key_pem, Some(&pki.ca_pem), None)
        .unwrap();
    server.set_hba(Hba::Cert).unwrap();
    let with_cert = server.conninfo(&format!(
        "sslmode=require sslcert={} sslkey={}",
        pki.cert.display(),
        pki.key.display()
    ));
    expect(
        "hba cert: client cert CN=postgres",
        &server.connect_outcome_via_psql(&with_cert),
        true,
        Some(true),
        None,
    );
    expect(
        "hba cert: no client cert",
        &server.connect_outcome_via_psql(&server.conninfo("sslmode=require")),
        false,
        None,
        Some("connection requires a valid client certificate"),
    );
    server.set_hba(Hba::Host).unwrap();

    // --- PG18: direct TLS, and the referee choice matters ---
    if v == PgVersion::V18 {
        expect(
            "libpq 18: sslnegotiation=direct sslmode=require",
            &server.connect_outcome_via_psql(
                &server.conninfo("sslnegotiation=direct sslmode=require"),
            ),
            true,
            Some(true),
            None,
        );
        expect(
            "libpq 18: sslnegotiation=direct sslmode=prefer",
            &server
                .connect_outcome_via_psql(&server.conninfo("sslnegotiation=direct sslmode=prefer")),
            false,
            None,
            Some("weak sslmode \"prefer\" may not be used with sslnegotiation=direct"),
        );
        let pg15 = PgInstall::find(PgVersion::V15).expect("PG15 psql");
        expect(
            "libpq 15 vs PG18 server: sslnegotiation=direct",
            &server.connect_outcome_with(
                &pg15,
                &server.conninfo("sslnegotiation=direct sslmode=require"),
                &[],
            ),
            false,
            None,
            Some("invalid connection option \"sslnegotiation\""),
        );
    }

    let root_dir = server.root_dir.clone();
    let port = server.port;
    let t = Instant::now();
    drop(server);
    eprintln!("  {v}: stop + cleanup took {:?}", t.elapsed());
    assert!(
        !root_dir.exists(),
        "{} should be removed",
        root_dir.display()
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} should be closed"
    );
}

#[test]
fn pg15_harness() {
    if skip() {
        return;
    }
    scenario(&PgInstall::find(PgVersion::V15).unwrap());
}

#[test]
fn pg18_harness() {
    if skip() {
        return;
    }
    if let Some(install) = install_or_skip(PgVersion::V18) {
        scenario(&install);
    }
}

/// libpq 18 with direct TLS against PG15, which does not speak it: no fallback, a failure.
#[test]
fn direct_tls_against_pg15_fails() {
    if skip() {
        return;
    }
    let (Some(pg15), Some(pg18)) = (
        install_or_skip(PgVersion::V15),
        install_or_skip(PgVersion::V18),
    ) else {
        return;
    };
    let server = PgServer::start(
        &pg15,
        Some(ServerTls::openssl_self_signed("localhost").unwrap()),
        Hba::Host,
    )
    .unwrap();
    let got = server.connect_outcome_with(
        &pg18,
        &server.conninfo("sslnegotiation=direct sslmode=require"),
        &[],
    );
    expect("libpq 18 direct vs PG15 server", &got, false, None, None);
    let got = server.connect_outcome_with(&pg18, &server.conninfo("sslmode=require"), &[]);
    expect(
        "libpq 18 postgres-negotiation vs PG15 server",
        &got,
        true,
        Some(true),
        None,
    );
}

/// Several servers started at once (as cargo's test threads do) get distinct ports and dirs.
#[test]
fn parallel_starts() {
    if skip() {
        return;
    }
    let install = PgInstall::find(PgVersion::V15).unwrap();
    let t = Instant::now();
    let servers: Vec<PgServer> = thread::scope(|s| {
        let hs: Vec<_> = (0..3)
            .map(|_| s.spawn(|| PgServer::start(&install, None, Hba::Host).unwrap()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    eprintln!("  3 servers started in parallel in {:?}", t.elapsed());
    let mut ports: Vec<u16> = servers.iter().map(|s| s.port).collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 3);
    for s in &servers {
        expect(
            "ssl off server: prefer",
            &s.connect_outcome_via_psql(&s.conninfo("sslmode=prefer")),
            true,
            Some(false),
            None,
        );
        assert!(
            s.set_ssl(true).is_err(),
            "set_ssl(true) without a certificate must fail"
        );
    }
}

/// A server that cannot start reports why, with its log.
#[test]
fn start_failure_reports_log() {
    if skip() {
        return;
    }
    let install = PgInstall::find(PgVersion::V15).unwrap();
    let good = ServerTls::openssl_self_signed("localhost").unwrap();
    let err = PgServer::start(
        &install,
        Some(ServerTls::new(good.cert_pem, "garbage")),
        Hba::Host,
    )
    .expect_err("a server with a garbage key must not start");
    let msg = err.to_string();
    eprintln!(
        "  start with a garbage key failed as expected: {}",
        msg.lines()
            .find(|l| l.contains("private key"))
            .unwrap_or("?")
    );
    assert!(msg.contains("could not load private key file"), "{msg}");
}
