//! The tokio-postgres integration (`pgtls::tokio_postgres`) in memory and over loopback TCP,
//! against the scripted fake postmaster: the connector under tokio-postgres's own
//! `SSLRequest` handling, and `connect` running libpq's whole plan.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pgtls::tokio_postgres::{connect, pg_ssl_mode, MakeTlsConnector, TlsConnector};
use pgtls::{Config, SslMode, SslNegotiation};
use pgtls_testkit::certs::LeafSpec;
use pgtls_testkit::fake_server::*;
use pgtls_testkit::tokio_harness::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_postgres::config::{SslMode as PgSslMode, SslNegotiation as PgSslNegotiation};
use tokio_postgres::tls::MakeTlsConnect;

const LIMIT: Duration = Duration::from_secs(60);

async fn bounded<F: std::future::Future>(fut: F) -> F::Output {
    tokio::time::timeout(LIMIT, fut)
        .await
        .expect("the test hung (lost wake-up?)")
}

fn pg_config() -> tokio_postgres::Config {
    let mut pg = tokio_postgres::Config::new();
    pg.user("alice").dbname("app");
    pg
}

/// The whole error chain, for messages wrapped by tokio-postgres.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(err) = source {
        out.push_str(" | ");
        out.push_str(&err.to_string());
        source = err.source();
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The connector under tokio-postgres's own negotiation (connect_raw over a pipe)

async fn connect_raw_with(
    script: ServerScript,
    pg: &tokio_postgres::Config,
    connector: TlsConnector,
) -> (Result<(), String>, FakeServer) {
    let (client_io, server) = pipe(script);
    let result = pg
        .connect_raw(client_io, connector)
        .await
        .map(drop)
        .map_err(|e| chain(&e));
    (result, server.await.unwrap())
}

#[tokio::test]
async fn connector_with_from_settings() {
    bounded(async {
        let pki = Pki::new();
        for mode in [SslMode::Require, SslMode::VerifyCa, SslMode::VerifyFull] {
            let mut pg = pg_config();
            let mut make = MakeTlsConnector::from_settings(pki.config(mode), &mut pg);
            assert_eq!(pg.get_ssl_mode(), PgSslMode::Require);
            assert_eq!(pg.get_hosts().len(), 1, "the host comes from the settings");
            let connector =
                MakeTlsConnect::<tokio::io::DuplexStream>::make_tls_connect(&mut make, "localhost")
                    .unwrap();
            let (result, server) =
                connect_raw_with(ServerScript::tls(pki.server_config()), &pg, connector).await;
            assert_eq!(result, Ok(()), "{mode}");
            let startup = &server.startups()[0];
            assert!(startup.over_tls, "{mode}");
            assert_eq!(startup.param("user"), Some("alice"));
            assert_eq!(server.sni().as_deref(), Some("localhost"));
            assert_eq!(server.alpn().as_deref(), Some(&b"postgresql"[..]));
        }
    })
    .await;
}

#[tokio::test]
async fn connector_sslmode_mapping() {
    use SslMode::*;
    let want = [
        (Disable, PgSslMode::Disable),
        (Allow, PgSslMode::Prefer),
        (Prefer, PgSslMode::Prefer),
        (Require, PgSslMode::Require),
        (VerifyCa, PgSslMode::Require),
        (VerifyFull, PgSslMode::Require),
    ];
    for (ours, theirs) in want {
        assert_eq!(pg_ssl_mode(ours), theirs, "{ours}");
    }
    let pki = Pki::new();
    let config = Config::builder()
        .sslmode(Require)
        .negotiation(SslNegotiation::Direct)
        .host("localhost")
        .build()
        .unwrap();
    let mut pg = pg_config();
    MakeTlsConnector::from_settings(config, &mut pg);
    assert_eq!(pg.get_ssl_negotiation(), PgSslNegotiation::Direct);
    drop(pki);
}

#[tokio::test]
async fn connector_prefer_and_require_against_a_server_without_ssl() {
    bounded(async {
        let pki = Pki::new();
        let mut pg = pg_config();
        let make = MakeTlsConnector::from_settings(pki.config(SslMode::Prefer), &mut pg);
        let connector = make.connector_for("localhost").unwrap();
        let (result, server) =
            connect_raw_with(ServerScript::plaintext_only(), &pg, connector).await;
        assert_eq!(result, Ok(()));
        assert!(!server.startups()[0].over_tls);

        let make = MakeTlsConnector::from_settings(pki.config(SslMode::Require), &mut pg);
        let connector = make.connector_for("localhost").unwrap();
        let (result, _) = connect_raw_with(ServerScript::plaintext_only(), &pg, connector).await;
        assert!(result.unwrap_err().contains("server does not support TLS"));
    })
    .await;
}

#[tokio::test]
async fn connector_refuses_bytes_glued_to_s() {
    bounded(async {
        let pki = Pki::new();
        let mut pg = pg_config();
        let make = MakeTlsConnector::from_settings(pki.config(SslMode::Require), &mut pg);
        let connector = make.connector_for("localhost").unwrap();
        let script =
            ServerScript::tls(pki.server_config()).with_reply(Reply::SThenBytes(b"junk".to_vec()));
        let (result, server) = connect_raw_with(script, &pg, connector).await;
        let err = result.unwrap_err();
        assert!(
            err.contains("received unencrypted data after SSL response"),
            "{err}"
        );
        assert!(!server.is_handshake_complete());
    })
    .await;
}

#[tokio::test]
async fn connector_verify_full_wrong_host_and_cn_only() {
    bounded(async {
        let pki = Pki::new();
        let mut pg = pg_config();
        let make = MakeTlsConnector::from_settings(pki.config(SslMode::VerifyFull), &mut pg);
        // tokio-postgres passes its host name; the certificate names `localhost`.
        let connector = make.connector_for("db.example.com").unwrap();
        let (result, _) =
            connect_raw_with(ServerScript::tls(pki.server_config()), &pg, connector).await;
        let err = result.unwrap_err();
        assert!(
            err.contains(
                "server certificate for \"localhost\" does not match host name \"db.example.com\""
            ),
            "{err}"
        );

        // A certificate whose only name is its CN: libpq accepts it under verify-full.
        let leaf = pki.ca.leaf(LeafSpec::cn_only("localhost"));
        let server = default_server_tls_config(leaf.chain.clone(), leaf.key.clone_key());
        let connector = make.connector_for("localhost").unwrap();
        let (result, _) = connect_raw_with(ServerScript::tls(server), &pg, connector).await;
        assert_eq!(result, Ok(()));
    })
    .await;
}

#[tokio::test]
async fn connector_direct_negotiation() {
    bounded(async {
        let pki = Pki::new();
        let config = Config::builder()
            .sslmode(SslMode::VerifyFull)
            .negotiation(SslNegotiation::Direct)
            .host("localhost")
            .root_certificates(pki.roots())
            .build()
            .unwrap();
        let mut pg = pg_config();
        let make = MakeTlsConnector::from_settings(config, &mut pg);
        let connector = make.connector_for("localhost").unwrap();
        let (result, server) =
            connect_raw_with(ServerScript::tls(pki.server_config()), &pg, connector).await;
        assert_eq!(result, Ok(()));
        assert!(server.saw_direct_client_hello());
        assert!(!server.saw_ssl_request());

        // Without ALPN the direct connection is refused (libpq's message).
        let no_alpn =
            server_tls_config(pki.leaf.chain.clone(), pki.leaf.key.clone_key(), None, None);
        let connector = make.connector_for("localhost").unwrap();
        let (result, _) = connect_raw_with(ServerScript::tls(no_alpn), &pg, connector).await;
        let err = result.unwrap_err();
        assert!(
            err.contains(
                "direct SSL connection was established without ALPN protocol negotiation extension"
            ),
            "{err}"
        );
    })
    .await;
}

#[tokio::test]
async fn connector_stream_reports_channel_binding() {
    bounded(async {
        let pki = Pki::new();
        let (mut io, _server) = pipe(ServerScript::tls(pki.server_config()));
        // What tokio-postgres does before calling the connector.
        io.write_all(&SSL_REQUEST).await.unwrap();
        let mut answer = [0u8; 1];
        io.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"S");
        let connector = TlsConnector::new(pki.config(SslMode::VerifyFull));
        let stream = tokio_postgres::tls::TlsConnect::connect(connector, io)
            .await
            .unwrap();
        let expected = pgtls::tls_server_end_point(&pki.leaf.cert).unwrap();
        assert_eq!(stream.session().channel_binding().unwrap(), expected);
        // The trait method tokio-postgres calls for SCRAM-SHA-256-PLUS.
        let _binding = tokio_postgres::tls::TlsStream::channel_binding(&stream);
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// `connect`: libpq's plan over loopback TCP

/// A loopback listener serving every connection with a fake server following `script`.
struct Listener {
    port: u16,
    servers: Arc<Mutex<Vec<JoinHandle<FakeServer>>>>,
    accept: JoinHandle<()>,
}

impl Listener {
    async fn start(script: ServerScript) -> Listener {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let servers = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let servers = servers.clone();
            tokio::spawn(async move {
                while let Ok((socket, _)) = listener.accept().await {
                    let handle = tokio::spawn(serve(socket, FakeServer::new(script.clone())));
                    servers.lock().unwrap().push(handle);
                }
            })
        };
        Listener {
            port,
            servers,
            accept,
        }
    }

    /// tokio-postgres settings for this listener: host `localhost` (verified, SNI),
    /// hostaddr 127.0.0.1.
    fn pg(&self) -> tokio_postgres::Config {
        let mut pg = pg_config();
        pg.host("localhost")
            .hostaddr(IpAddr::V4(Ipv4Addr::LOCALHOST))
            .port(self.port)
            .connect_timeout(Duration::from_secs(20));
        pg
    }

    /// Every connection's server, once the connections ended.
    async fn servers(self) -> Vec<FakeServer> {
        self.accept.abort();
        let handles: Vec<_> = std::mem::take(&mut *self.servers.lock().unwrap());
        let mut out = Vec::new();
        for handle in handles {
            out.push(handle.await.unwrap());
        }
        out
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Connected; the startup that succeeded was over TLS?; connections opened.
    Ok {
        tls: bool,
        connections: usize,
    },
    Err(String),
}

async fn run(script: ServerScript, tls: &Config) -> Outcome {
    let listener = Listener::start(script).await;
    let result = connect(&listener.pg(), tls).await;
    let outcome = match result {
        Ok((client, connection)) => {
            drop((client, connection));
            let servers = listener.servers().await;
            let last = servers.last().unwrap();
            return Outcome::Ok {
                tls: last.startups().last().unwrap().over_tls,
                connections: servers.len(),
            };
        }
        Err(err) => Outcome::Err(err.to_string()),
    };
    drop(listener.servers().await);
    outcome
}

#[tokio::test]
async fn connect_runs_libpqs_plan() {
    bounded(async {
        let pki = Pki::new();
        let tls = || ServerScript::tls(pki.server_config());
        let hba_ssl =
            "FATAL:  no pg_hba.conf entry for host \"127.0.0.1\", user \"alice\", database \"app\", SSL encryption";
        let cases = [
            (SslMode::Disable, tls(), Outcome::Ok { tls: false, connections: 1 }),
            (
                SslMode::Allow,
                tls().with_startup(StartupBehaviour::RejectPlaintext),
                Outcome::Ok { tls: true, connections: 2 },
            ),
            (SslMode::Prefer, tls(), Outcome::Ok { tls: true, connections: 1 }),
            (
                SslMode::Prefer,
                ServerScript::plaintext_only(),
                Outcome::Ok { tls: false, connections: 1 },
            ),
            (
                SslMode::Prefer,
                tls().with_startup(StartupBehaviour::RejectTls),
                Outcome::Ok { tls: false, connections: 2 },
            ),
            (
                SslMode::Prefer,
                ServerScript::replying(Reply::E),
                Outcome::Err("server sent an error response during SSL exchange".into()),
            ),
            (
                SslMode::Require,
                ServerScript::plaintext_only(),
                Outcome::Err("server does not support SSL, but SSL was required".into()),
            ),
            (
                SslMode::Require,
                tls().with_startup(StartupBehaviour::RejectTls),
                Outcome::Err(hba_ssl.into()),
            ),
            (SslMode::VerifyFull, tls(), Outcome::Ok { tls: true, connections: 1 }),
        ];
        let mut failures = Vec::new();
        for (mode, script, want) in cases {
            let got = run(script, &pki.config(mode)).await;
            if got != want {
                failures.push(format!("{mode}: got {got:?}, want {want:?}"));
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    })
    .await;
}

#[tokio::test]
async fn connect_verify_full_wrong_host() {
    bounded(async {
        let pki = Pki::new();
        let listener = Listener::start(ServerScript::tls(pki.server_config())).await;
        let mut pg = pg_config();
        pg.host("db.example.com")
            .hostaddr(IpAddr::V4(Ipv4Addr::LOCALHOST))
            .port(listener.port);
        let Err(err) = connect(&pg, &pki.config(SslMode::VerifyFull)).await else {
            panic!("connected");
        };
        assert_eq!(
            err.to_string(),
            "server certificate for \"localhost\" does not match host name \"db.example.com\""
        );
        assert!(matches!(
            err.pgtls_error(),
            Some(pgtls::Error::Certificate { .. })
        ));
        drop(listener.servers().await);
    })
    .await;
}

#[tokio::test]
async fn connect_direct_negotiation() {
    bounded(async {
        let pki = Pki::new();
        let listener = Listener::start(ServerScript::tls(pki.server_config())).await;
        let config = Config::builder()
            .sslmode(SslMode::VerifyFull)
            .negotiation(SslNegotiation::Direct)
            .host("localhost")
            .root_certificates(pki.roots())
            .build()
            .unwrap();
        let (client, connection) = connect(&listener.pg(), &config).await.unwrap();
        drop((client, connection));
        let servers = listener.servers().await;
        assert_eq!(servers.len(), 1);
        assert!(servers[0].saw_direct_client_hello());
        assert!(servers[0].startups()[0].over_tls);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_two_hundred_concurrent() {
    bounded(async {
        let pki = Pki::new();
        let listener = Listener::start(ServerScript::tls(pki.server_config())).await;
        let config = pki.config(SslMode::VerifyFull);
        let pg = listener.pg();
        let mut tasks = Vec::new();
        for _ in 0..200 {
            let (pg, config) = (pg.clone(), config.clone());
            tasks.push(tokio::spawn(async move {
                connect(&pg, &config)
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let servers = listener.servers().await;
        assert_eq!(servers.len(), 200);
        assert!(servers.iter().all(|s| s.startups()[0].over_tls));
    })
    .await;
}
