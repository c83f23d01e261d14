//! pgtls's tokio-postgres integration against real PostgreSQL 15 and 18 servers
//! (`testkit/src/pg.rs`), with libpq (psql) as the referee: every sslmode and both
//! negotiations, SCRAM with `channel_binding=require`, verify-full's host-name rules, a
//! CN-only certificate, 200 concurrent connections.
//!
//! Skips with a notice when PostgreSQL is not installed (`scripts/install-postgres.sh`);
//! fails instead with `PGTLS_REQUIRE_SERVERS=1`.

use pgtls_testkit::pg;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use pg::*;
use pgtls::libpq::{ConnParams, Environment};
use pgtls::SslMode;
use pgtls_testkit::certs::{Ca, LeafSpec};

/// One server with TLS material from a test CA, and the CA's root file for `sslrootcert`.
struct Fixture {
    server: PgServer,
    ca: Ca,
    root_file: PathBuf,
}

impl Fixture {
    fn start(version: PgVersion, hba: Hba) -> Option<Fixture> {
        if !servers_available() {
            eprintln!("{SKIP_NOTICE}");
            return None;
        }
        let install = install_or_skip(version)?;
        let ca = Ca::root("pgtls tokio real-server root");
        let leaf = ca.leaf(LeafSpec::server("localhost"));
        let tls = ServerTls::new(leaf.chain_pem(), leaf.key_pem.clone());
        let server = PgServer::start(&install, Some(tls), hba).expect("start server");
        let root_file = server.root_dir.join("pgtls-root.crt");
        std::fs::write(&root_file, ca.cert_pem()).expect("root file");
        Some(Fixture {
            server,
            ca,
            root_file,
        })
    }

    /// `host=localhost hostaddr=127.0.0.1 port=N user=postgres dbname=postgres <extra>`.
    fn conninfo(&self, extra: &str) -> String {
        self.conninfo_for("localhost", extra)
    }

    fn conninfo_for(&self, host: &str, extra: &str) -> String {
        format!(
            "host={host} hostaddr=127.0.0.1 port={} user={SUPERUSER} dbname=postgres {extra}",
            self.server.port
        )
    }

    /// The extra keywords for `mode`, with the root file for the verifying modes.
    fn mode(&self, mode: SslMode) -> String {
        if mode.requires_verification() {
            format!("sslmode={mode} sslrootcert={}", self.root_file.display())
        } else {
            format!("sslmode={mode}")
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Connects with pgtls + tokio-postgres as the settings say (no inherited `PG*` variables,
/// `HOME` the server's empty directory, like the harness's psql) and reads `pg_stat_ssl`.
async fn ours(server: &PgServer, conninfo: &str) -> Outcome {
    let env = Environment::empty().with_home(Some(server.home_dir.clone()));
    let settings = match ConnParams::parse(conninfo).and_then(|p| p.resolve(&env)) {
        Ok(settings) => settings,
        Err(err) => return failed(err.to_string()),
    };
    let (client, connection) = match pgtls::tokio_postgres::connect_settings(&settings).await {
        Ok(pair) => pair,
        Err(err) => return failed(err.to_string()),
    };
    let connection = tokio::spawn(connection);
    let outcome = match client.query_one(SSL_QUERY, &[]).await {
        Ok(row) => Outcome {
            connected: true,
            encrypted: Some(row.get(0)),
            error: None,
        },
        Err(err) => failed(err.to_string()),
    };
    drop(client);
    let _ = connection.await;
    outcome
}

/// The same through tokio-postgres's own `Config::connect` with pgtls's connector
/// (`MakeTlsConnector::from_libpq`): tokio-postgres does the `SSLRequest`, pgtls the TLS.
async fn via_connector(server: &PgServer, conninfo: &str) -> Outcome {
    let env = Environment::empty().with_home(Some(server.home_dir.clone()));
    let settings = match ConnParams::parse(conninfo).and_then(|p| p.resolve(&env)) {
        Ok(settings) => settings,
        Err(err) => return failed(err.to_string()),
    };
    let (connector, pg) = match pgtls::tokio_postgres::MakeTlsConnector::from_libpq(&settings) {
        Ok(pair) => pair,
        Err(err) => return failed(err.to_string()),
    };
    let (client, connection) = match pg.connect(connector).await {
        Ok(pair) => pair,
        Err(err) => return failed(chain(&err)),
    };
    let connection = tokio::spawn(connection);
    let outcome = match client.query_one(SSL_QUERY, &[]).await {
        Ok(row) => Outcome {
            connected: true,
            encrypted: Some(row.get(0)),
            error: None,
        },
        Err(err) => failed(err.to_string()),
    };
    drop(client);
    let _ = connection.await;
    outcome
}

/// An error with its sources, for the messages tokio-postgres wraps.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(err) = source {
        out.push_str(": ");
        out.push_str(&err.to_string());
        source = err.source();
    }
    out
}

fn failed(error: String) -> Outcome {
    Outcome {
        connected: false,
        encrypted: None,
        error: Some(error),
    }
}

/// Whether pgtls's outcome is libpq's: same connection and encryption; on failure, pgtls's
/// message appears in libpq's (which adds `connection to server at ... failed:` and, for
/// several attempts, each attempt's message).
fn agrees(ours: &Outcome, libpq: &Outcome) -> bool {
    if ours.connected != libpq.connected || ours.encrypted != libpq.encrypted {
        return false;
    }
    match (&ours.error, &libpq.error) {
        (Some(mine), Some(theirs)) => mine
            .lines()
            .next()
            .is_some_and(|first| theirs.contains(first.trim())),
        _ => true,
    }
}

#[test]
fn every_sslmode_matches_libpq() {
    for version in PgVersion::ALL {
        let Some(fx) = Fixture::start(version, Hba::Host) else {
            continue;
        };
        let rt = runtime();
        let mut report = Vec::new();
        let mut mismatches = 0;
        let setups: [(&str, Hba, bool); 4] = [
            ("host", Hba::Host, true),
            ("hostssl", Hba::HostSslOnly, true),
            ("hostnossl", Hba::HostNoSslOnly, true),
            ("ssl=off", Hba::Host, false),
        ];
        for (label, hba, ssl) in setups {
            fx.server.set_hba(hba).expect("hba");
            fx.server.set_ssl(ssl).expect("ssl");
            for mode in SslMode::ALL {
                let conninfo = fx.conninfo(&fx.mode(mode));
                let mine = rt.block_on(ours(&fx.server, &conninfo));
                let libpq = fx.server.connect_outcome_via_psql(&conninfo);
                let ok = agrees(&mine, &libpq);
                mismatches += usize::from(!ok);
                report.push(format!(
                    "{version} {label:<9} {mode:<11} {} pgtls: {mine} | libpq: {libpq}",
                    if ok { "ok  " } else { "DIFF" }
                ));
            }
        }
        eprintln!("{}", report.join("\n"));
        assert_eq!(
            mismatches,
            0,
            "pgtls and libpq disagree:\n{}",
            report.join("\n")
        );
    }
}

#[test]
fn direct_negotiation_matches_libpq_18() {
    // libpq 18 (the PG18 install's) is the referee for sslnegotiation=direct on both servers.
    let referee = PgInstall::find(PgVersion::V18);
    for version in PgVersion::ALL {
        let Some(fx) = Fixture::start(version, Hba::Host) else {
            continue;
        };
        let rt = runtime();
        for mode in [SslMode::Require, SslMode::VerifyFull] {
            let conninfo = fx.conninfo(&format!("{} sslnegotiation=direct", fx.mode(mode)));
            let mine = rt.block_on(ours(&fx.server, &conninfo));
            eprintln!("{version} direct {mode}: pgtls: {mine}");
            match version {
                // PostgreSQL 17+ accepts direct TLS (ALPN `postgresql`).
                PgVersion::V18 => assert_eq!((mine.connected, mine.encrypted), (true, Some(true))),
                // Earlier servers close the connection: no fallback.
                _ => assert!(!mine.connected),
            }
            if let Some(referee) = &referee {
                let libpq = fx.server.connect_outcome_with(referee, &conninfo, &[]);
                eprintln!("{version} direct {mode}: libpq 18: {libpq}");
                assert_eq!(mine.connected, libpq.connected, "{version} {mode}");
                assert_eq!(mine.encrypted, libpq.encrypted, "{version} {mode}");
            }
        }
        // A weak mode with direct is refused before connecting, in libpq's words.
        let conninfo = fx.conninfo("sslmode=prefer sslnegotiation=direct");
        let mine = rt.block_on(ours(&fx.server, &conninfo));
        assert!(mine
            .error
            .as_deref()
            .is_some_and(|e| e
                .contains("weak sslmode \"prefer\" may not be used with sslnegotiation=direct")));
    }
}

#[test]
fn scram_with_channel_binding_required_over_tls() {
    for version in PgVersion::ALL {
        let Some(fx) = Fixture::start(version, Hba::Scram) else {
            continue;
        };
        let rt = runtime();
        let creds = format!("user={SCRAM_USER} password={SCRAM_PASSWORD}");
        // Over TLS: SCRAM-SHA-256-PLUS with tls-server-end-point from pgtls's session.
        for mode in [SslMode::Require, SslMode::VerifyFull] {
            let conninfo = fx.conninfo(&format!(
                "{} {creds} channel_binding=require",
                fx.mode(mode)
            ));
            let mine = rt.block_on(ours(&fx.server, &conninfo));
            eprintln!("{version} scram {mode} channel_binding=require: {mine}");
            assert_eq!(
                (mine.connected, mine.encrypted),
                (true, Some(true)),
                "{mine}"
            );
            let libpq = fx.server.connect_outcome_via_psql(&conninfo);
            assert!(agrees(&mine, &libpq), "pgtls: {mine} | libpq: {libpq}");
            // And through tokio-postgres's own connect with the pgtls connector.
            let connector = rt.block_on(via_connector(&fx.server, &conninfo));
            eprintln!("{version} scram {mode} channel_binding=require, connector: {connector}");
            assert_eq!(
                (connector.connected, connector.encrypted),
                (true, Some(true))
            );
        }
        // Without TLS there is nothing to bind to: refused on the client side, as libpq.
        let conninfo = fx.conninfo(&format!("sslmode=disable {creds} channel_binding=require"));
        let mine = rt.block_on(ours(&fx.server, &conninfo));
        eprintln!("{version} scram disable channel_binding=require: {mine}");
        assert!(!mine.connected);
        assert!(!fx.server.connect_outcome_via_psql(&conninfo).connected);
    }
}

#[test]
fn verify_full_host_names() {
    for version in PgVersion::ALL {
        let Some(fx) = Fixture::start(version, Hba::Host) else {
            continue;
        };
        let rt = runtime();
        let verify_full = fx.mode(SslMode::VerifyFull);

        // A host the certificate does not name: libpq's message, no fallback.
        let conninfo = fx.conninfo_for("wrong.example.com", &verify_full);
        let mine = rt.block_on(ours(&fx.server, &conninfo));
        let libpq = fx.server.connect_outcome_via_psql(&conninfo);
        eprintln!("{version} verify-full wrong host: pgtls: {mine} | libpq: {libpq}");
        let message =
            "server certificate for \"localhost\" does not match host name \"wrong.example.com\"";
        assert_eq!(mine.error.as_deref(), Some(message));
        assert!(libpq.error_contains(message), "{libpq}");
        let connector = rt.block_on(via_connector(&fx.server, &conninfo));
        assert!(connector.error_contains(message), "{connector}");

        // A certificate whose only name is its CN (no SAN): libpq accepts it.
        let leaf = fx.ca.leaf(LeafSpec::cn_only("localhost"));
        fx.server
            .set_server_cert(&leaf.chain_pem(), &leaf.key_pem, None, None)
            .expect("cn-only certificate");
        let conninfo = fx.conninfo(&verify_full);
        let mine = rt.block_on(ours(&fx.server, &conninfo));
        let libpq = fx.server.connect_outcome_via_psql(&conninfo);
        eprintln!("{version} verify-full CN-only: pgtls: {mine} | libpq: {libpq}");
        assert_eq!(
            (mine.connected, mine.encrypted),
            (true, Some(true)),
            "{mine}"
        );
        assert!(agrees(&mine, &libpq));
        let connector = rt.block_on(via_connector(&fx.server, &conninfo));
        assert_eq!(
            (connector.connected, connector.encrypted),
            (true, Some(true))
        );
    }
}

#[test]
fn connector_under_tokio_postgres_sslmodes() {
    // What tokio-postgres's own negotiation gives with the pgtls connector, per the table
    // of `pgtls::tokio_postgres`: prefer/require/verify-* as libpq where the server has SSL.
    for version in PgVersion::ALL {
        let Some(fx) = Fixture::start(version, Hba::Host) else {
            continue;
        };
        let rt = runtime();
        for mode in SslMode::ALL {
            let conninfo = fx.conninfo(&fx.mode(mode));
            let got = rt.block_on(via_connector(&fx.server, &conninfo));
            eprintln!("{version} connector {mode}: {got}");
            let tls = mode != SslMode::Disable; // allow acts as prefer through the connector
            assert_eq!(
                (got.connected, got.encrypted),
                (true, Some(tls)),
                "{mode}: {got}"
            );
        }
        // Direct negotiation through tokio-postgres's SslNegotiation::Direct (PG17+).
        if version >= PgVersion::V18 {
            let conninfo = fx.conninfo(&format!(
                "{} sslnegotiation=direct",
                fx.mode(SslMode::VerifyFull)
            ));
            let got = rt.block_on(via_connector(&fx.server, &conninfo));
            assert_eq!((got.connected, got.encrypted), (true, Some(true)), "{got}");
        }
    }
}

/// Restarts `server` with a higher `max_connections` (the harness starts with 60; the
/// setting needs a restart, which the harness does not offer).
fn restart_with_max_connections(server: &PgServer, max: u32) {
    let pg_ctl = server.install.bin("pg_ctl");
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let mut cmd = if is_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&pg_ctl);
        c
    } else {
        Command::new(&pg_ctl)
    };
    cmd.env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("LC_ALL", "C");
    if let Some(lib) = &server.install.lib_dir {
        cmd.env("LD_LIBRARY_PATH", lib);
    }
    cmd.current_dir(&server.root_dir)
        .arg("-D")
        .arg(&server.data_dir)
        .arg("-l")
        .arg(&server.log_file)
        .args(["-w", "-t", "60", "-o"])
        .arg(format!("-c max_connections={max}"))
        .arg("restart");
    let out = cmd.output().expect("pg_ctl restart");
    assert!(
        out.status.success(),
        "pg_ctl restart: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn two_hundred_concurrent_connections() {
    for version in PgVersion::ALL {
        let Some(fx) = Fixture::start(version, Hba::Host) else {
            continue;
        };
        restart_with_max_connections(&fx.server, 230);
        let rt = runtime();
        let conninfo = fx.conninfo(&fx.mode(SslMode::VerifyFull));
        let env = Environment::empty().with_home(Some(fx.server.home_dir.clone()));
        let settings = ConnParams::parse(&conninfo)
            .and_then(|p| p.resolve(&env))
            .expect("settings");
        rt.block_on(async {
            let mut tasks = Vec::new();
            for _ in 0..200 {
                let settings = settings.clone();
                tasks.push(tokio::spawn(async move {
                    let (client, connection) =
                        pgtls::tokio_postgres::connect_settings(&settings).await?;
                    let connection = tokio::spawn(connection);
                    Ok::<_, pgtls::tokio_postgres::Error>((client, connection))
                }));
            }
            let mut clients = Vec::new();
            for task in tasks {
                clients.push(task.await.expect("task").expect("connect"));
            }
            // All 200 are open at once, each over TLS.
            let (probe, _) = &clients[0];
            let open: i64 = tokio::time::timeout(
                Duration::from_secs(30),
                probe.query_one("SELECT count(*) FROM pg_stat_ssl WHERE ssl", &[]),
            )
            .await
            .expect("query timeout")
            .expect("query")
            .get(0);
            eprintln!("{version}: {open} TLS sessions open");
            assert!(open >= 200, "{open}");
            for (client, _) in &clients {
                let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
                assert_eq!(one, 1);
            }
            for (client, connection) in clients {
                drop(client);
                let _ = connection.await;
            }
        });
    }
}

/// `cancel_query` for a client made by `pgtls::tokio_postgres::connect_settings`: the
/// `CancelRequest` goes over a new connection negotiated with the same settings
/// (verify-full: TLS or nothing), and the running query fails with SQLSTATE 57014.
#[test]
fn cancel_query_over_tls_stops_a_running_query() {
    for version in PgVersion::ALL {
        let Some(fx) = Fixture::start(version, Hba::HostSslOnly) else {
            continue;
        };
        let rt = runtime();
        let conninfo = fx.conninfo(&fx.mode(SslMode::VerifyFull));
        let env = Environment::empty().with_home(Some(fx.server.home_dir.clone()));
        let settings = ConnParams::parse(&conninfo)
            .and_then(|p| p.resolve(&env))
            .expect("settings");
        rt.block_on(async {
            let (client, connection) = pgtls::tokio_postgres::connect_settings(&settings)
                .await
                .expect("connect");
            let connection = tokio::spawn(connection);
            let token = client.cancel_token();
            let started = std::time::Instant::now();
            let query = tokio::spawn(async move {
                let result = client.simple_query("SELECT pg_sleep(30)").await;
                drop(client);
                result
            });
            tokio::time::sleep(Duration::from_millis(500)).await;
            pgtls::tokio_postgres::cancel_query_settings(&settings, &token)
                .await
                .unwrap_or_else(|err| panic!("{version}: the cancel request failed: {err}"));
            let err = query
                .await
                .expect("query task")
                .expect_err("the query was not cancelled");
            assert_eq!(
                err.code(),
                Some(&tokio_postgres::error::SqlState::QUERY_CANCELED),
                "{version}: {err}"
            );
            assert!(started.elapsed() < Duration::from_secs(10), "{version}");
            let _ = connection.await;
        });
    }
}
