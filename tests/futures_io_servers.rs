//! pgtls's futures-io adapter under smol against real PostgreSQL 15 and 18 servers
//! (`testkit/src/pg.rs`), with libpq (psql) as the referee: every sslmode, direct TLS,
//! verify-full with a wrong host name, and a cancel request over TLS.
//!
//! Skips with a notice when PostgreSQL is not installed (`scripts/install-postgres.sh`);
//! fails instead with `PGTLS_REQUIRE_SERVERS=1`.

use pgtls_testkit::pg;
mod support;

use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use pg::*;
use pgtls::futures_io::{cancel, connect, StartupError, Stream};
use pgtls::libpq::{ConnParams, Environment};
use pgtls::{Config, SslMode};
use pgtls_testkit::certs::{Ca, LeafSpec};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpStream;
use smol::Timer;
use support::startup::{error_fields, startup_message, ChannelBindingMode, StartupParams};

/// One server with TLS material from a test CA, and the CA's root file for `sslrootcert`.
struct Fixture {
    server: PgServer,
    root_file: PathBuf,
}

impl Fixture {
    fn start(version: PgVersion, hba: Hba) -> Option<Fixture> {
        if !servers_available() {
            eprintln!("{SKIP_NOTICE}");
            return None;
        }
        let install = install_or_skip(version)?;
        let ca = Ca::root("pgtls futures-io real-server root");
        let leaf = ca.leaf(LeafSpec::server("localhost"));
        let tls = ServerTls::new(leaf.chain_pem(), leaf.key_pem.clone());
        let server = PgServer::start(&install, Some(tls), hba).expect("start server");
        let root_file = server.root_dir.join("pgtls-root.crt");
        std::fs::write(&root_file, ca.cert_pem()).expect("root file");
        Some(Fixture { server, root_file })
    }

    /// `host=<host> hostaddr=127.0.0.1 port=N user=postgres dbname=postgres sslmode=...`.
    fn conninfo(&self, host: &str, mode: SslMode, extra: &str) -> String {
        let root = if mode.requires_verification() {
            format!("sslrootcert={}", self.root_file.display())
        } else {
            String::new()
        };
        format!(
            "host={host} hostaddr=127.0.0.1 port={} user={SUPERUSER} dbname=postgres sslmode={mode} {root} {extra}",
            self.server.port
        )
    }

    /// pgtls's config for `conninfo` (no `PG*` variables, `HOME` the server's directory).
    fn config(&self, conninfo: &str) -> Result<Config, String> {
        let env = Environment::empty().with_home(Some(self.server.home_dir.clone()));
        let settings = ConnParams::parse(conninfo)
            .and_then(|p| p.resolve(&env))
            .map_err(|e| e.to_string())?;
        let mut configs = settings.to_configs().map_err(|e| e.to_string())?;
        Ok(configs.remove(0).1)
    }
}

/// A backend's cancel key: process id and secret key.
type BackendKey = (u32, Vec<u8>);

/// StartupMessage for the superuser (trust), then messages up to ReadyForQuery.
async fn startup(
    mut stream: Stream<TcpStream>,
) -> Result<(Stream<TcpStream>, BackendKey), StartupError> {
    let params = StartupParams {
        user: SUPERUSER.into(),
        database: "postgres".into(),
        password: None,
        application_name: Some("pgtls-futures-io-test".into()),
        channel_binding: ChannelBindingMode::Disable,
    };
    stream.write_all(&startup_message(&params)).await?;
    stream.flush().await?;
    let mut key = None;
    loop {
        let (tag, body) = read_message(&mut stream).await?;
        match tag {
            b'R' if body.get(..4) == Some(&[0, 0, 0, 0]) => {}
            b'R' => return Err(StartupError::Fatal("authentication not supported".into())),
            b'K' if body.len() >= 8 => {
                let pid = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                key = Some((pid, body[4..].to_vec()));
            }
            b'E' => {
                let fields = error_fields(&body);
                let field = |code| {
                    fields
                        .iter()
                        .find(|(c, _)| *c == code)
                        .map(|(_, v)| v.clone())
                };
                return Err(StartupError::Rejected {
                    sqlstate: field(b'C'),
                    message: format!(
                        "{}:  {}",
                        field(b'S').unwrap_or_default(),
                        field(b'M').unwrap_or_default()
                    ),
                });
            }
            b'Z' => {
                let key = key.ok_or_else(|| StartupError::Fatal("no BackendKeyData".into()))?;
                return Ok((stream, key));
            }
            _ => {}
        }
    }
}

async fn read_message(stream: &mut Stream<TcpStream>) -> io::Result<(u8, Vec<u8>)> {
    let mut header = [0u8; 5];
    stream.read_exact(&mut header).await?;
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if !(4..=1 << 20).contains(&len) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "message length"));
    }
    let mut body = vec![0u8; len - 4];
    stream.read_exact(&mut body).await?;
    Ok((header[0], body))
}

/// Connects with the futures-io adapter: connected, encrypted, or libpq's message.
fn ours(fx: &Fixture, conninfo: &str) -> Outcome {
    let config = match fx.config(conninfo) {
        Ok(config) => config,
        Err(err) => return failed(err),
    };
    let port = fx.server.port;
    smol::block_on(async {
        let open = || TcpStream::connect(("127.0.0.1", port));
        let timer = Some(Timer::after(Duration::from_secs(20)));
        match connect(&config, timer, open, startup).await {
            Ok(connected) => Outcome {
                connected: true,
                encrypted: Some(connected.startup.0.is_tls()),
                error: None,
            },
            Err(failed) => self::failed(failed.to_string()),
        }
    })
}

fn failed(error: String) -> Outcome {
    Outcome {
        connected: false,
        encrypted: None,
        error: Some(error),
    }
}

/// Same connection and encryption; on failure pgtls's first line appears in libpq's.
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
                let conninfo = fx.conninfo("localhost", mode, "");
                let mine = ours(&fx, &conninfo);
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
fn direct_tls_matches_libpq_18() {
    let referee = PgInstall::find(PgVersion::V18);
    for version in PgVersion::ALL {
        let Some(fx) = Fixture::start(version, Hba::Host) else {
            continue;
        };
        for mode in [SslMode::Require, SslMode::VerifyFull] {
            let conninfo = fx.conninfo("localhost", mode, "sslnegotiation=direct");
            let mine = ours(&fx, &conninfo);
            eprintln!("{version} direct {mode}: pgtls: {mine}");
            match version {
                PgVersion::V18 => assert_eq!((mine.connected, mine.encrypted), (true, Some(true))),
                _ => assert!(!mine.connected, "{version} {mode}"),
            }
            if let Some(referee) = &referee {
                let libpq = fx.server.connect_outcome_with(referee, &conninfo, &[]);
                assert_eq!(mine.connected, libpq.connected, "{version} {mode}: {libpq}");
                assert_eq!(mine.encrypted, libpq.encrypted, "{version} {mode}: {libpq}");
            }
        }
    }
}

#[test]
fn verify_full_with_a_wrong_host_fails_with_libpqs_message() {
    for version in PgVersion::ALL {
        let Some(fx) = Fixture::start(version, Hba::Host) else {
            continue;
        };
        let conninfo = fx.conninfo("db.example.com", SslMode::VerifyFull, "");
        let mine = ours(&fx, &conninfo);
        let libpq = fx.server.connect_outcome_via_psql(&conninfo);
        let want =
            "server certificate for \"localhost\" does not match host name \"db.example.com\"";
        assert_eq!(mine.error.as_deref(), Some(want), "{version}");
        assert!(libpq.error_contains(want), "{version}: libpq says {libpq}");
    }
}

#[test]
fn cancel_over_tls_stops_a_running_query() {
    for version in PgVersion::ALL {
        let Some(fx) = Fixture::start(version, Hba::HostSslOnly) else {
            continue;
        };
        // verify-full: the session and the cancel connection are TLS or nothing.
        let config = fx
            .config(&fx.conninfo("localhost", SslMode::VerifyFull, ""))
            .expect("config");
        let port = fx.server.port;
        let open = move || TcpStream::connect(("127.0.0.1", port));
        smol::block_on(async {
            let timer = Some(Timer::after(Duration::from_secs(20)));
            let connected = connect(&config, timer, open, startup)
                .await
                .expect("connect");
            let (mut stream, (pid, key)) = connected.startup;
            assert!(stream.is_tls());
            let mut query = b"Q".to_vec();
            let sql = b"SELECT pg_sleep(30)\0";
            query.extend_from_slice(&((sql.len() + 4) as u32).to_be_bytes());
            query.extend_from_slice(sql);
            stream.write_all(&query).await.expect("query");
            stream.flush().await.expect("flush");
            let started = Instant::now();
            let canceller = smol::spawn({
                let config = config.clone();
                async move {
                    Timer::after(Duration::from_millis(500)).await;
                    let timer = Some(Timer::after(Duration::from_secs(10)));
                    cancel(&config, timer, open, pid, &key).await
                }
            });
            let sqlstate = loop {
                let (tag, body) = read_message(&mut stream).await.expect("reply");
                if tag == b'E' {
                    let fields = error_fields(&body);
                    break fields.into_iter().find(|(c, _)| *c == b'C').map(|(_, v)| v);
                }
                assert_ne!(tag, b'Z', "{version}: the query finished uncancelled");
            };
            canceller
                .await
                .unwrap_or_else(|err| panic!("{version}: cancel failed: {err}"));
            assert_eq!(sqlstate.as_deref(), Some("57014"), "{version}");
            assert!(started.elapsed() < Duration::from_secs(10), "{version}");
        });
    }
}

#[test]
fn cancel_keys_are_checked() {
    let config = Config::builder().sslmode(SslMode::Disable).build().unwrap();
    let never = || async { Err::<TcpStream, _>(io::Error::other("no connection may be opened")) };
    let err = smol::block_on(cancel(&config, None::<Timer>, never, 1, &[1, 2, 3])).unwrap_err();
    assert!(err.to_string().contains("cancel key"), "{err}");
}
