//! The tokio adapter (`pgtls::tokio`) in memory: every sslmode against scripted servers,
//! both negotiations, pathological transports (1-byte reads, short writes, `Pending` on
//! every other call, EOF mid-handshake), cancellation, no busy loop, 200 concurrent
//! connections on one runtime.

use std::sync::atomic::Ordering;
use std::time::Duration;

use pgtls::plan::Method;
use pgtls::tokio::{connect, negotiate, Attempt, ConnectError, Stream};
use pgtls::{Config, SslMode, SslNegotiation};
use pgtls_testkit::certs::LeafSpec;
use pgtls_testkit::fake_server::*;
use pgtls_testkit::tokio_harness::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Every test is bounded: a hang (a lost wake-up) fails instead of blocking CI.
const LIMIT: Duration = Duration::from_secs(60);

async fn bounded<F: std::future::Future>(fut: F) -> F::Output {
    tokio::time::timeout(LIMIT, fut)
        .await
        .expect("the test hung (lost wake-up?)")
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// Negotiates `mode` over a chaos transport to an echo server and returns the TLS stream.
async fn tls_echo(pki: &Pki, opts: ChaosOpts) -> (Stream<Chaos<tokio::io::DuplexStream>>, FakeNet) {
    let net = FakeNet::with_chaos(
        ServerScript::tls(pki.server_config()).with_after_tls(AfterTls::Echo),
        move |_| opts,
    );
    let config = pki.config(SslMode::Require);
    let transport = net.open().await.unwrap();
    match negotiate(&config, Method::SslRequest, transport).await {
        Ok(Attempt::Ready(stream)) => (stream, net),
        other => panic!("unexpected {other:?}"),
    }
}

/// Writes `data` and reads the echo back concurrently (the echo server answers as it
/// receives, so writing everything first could fill both pipes).
async fn echo_round_trip<S>(stream: &mut Stream<S>, data: &[u8]) -> Vec<u8>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let write = async {
        writer.write_all(data).await.unwrap();
        writer.flush().await.unwrap();
    };
    let read = async {
        let mut back = vec![0u8; data.len()];
        reader.read_exact(&mut back).await.unwrap();
        back
    };
    let ((), back) = tokio::join!(write, read);
    back
}

#[tokio::test]
async fn tls_round_trip_and_close_notify() {
    bounded(async {
        let pki = Pki::new();
        let (mut stream, net) = tls_echo(&pki, ChaosOpts::default()).await;
        let session = stream.session().expect("TLS");
        assert_eq!(session.alpn_protocol(), Some(&b"postgresql"[..]));
        assert_eq!(session.sni(), Some("localhost"));
        assert_eq!(
            session.channel_binding().unwrap(),
            pgtls::tls_server_end_point(&pki.leaf.cert).unwrap()
        );
        let data = payload(100_000);
        assert_eq!(echo_round_trip(&mut stream, &data).await, data);
        stream.shutdown().await.unwrap();
        // The server answers our close_notify with its own: a clean EOF.
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        drop(stream);
        let servers = net.servers().await;
        assert!(servers[0].peer_sent_close_notify());
        assert_eq!(servers[0].tls_plaintext_received(), &data[..]);
    })
    .await;
}

#[tokio::test]
async fn pathological_transport_one_byte_pending_every_other_call() {
    bounded(async {
        let pki = Pki::new();
        let (mut stream, net) = tls_echo(&pki, ChaosOpts::worst()).await;
        let data = payload(20_000);
        assert_eq!(echo_round_trip(&mut stream, &data).await, data);
        stream.shutdown().await.unwrap();
        drop(stream);
        let servers = net.servers().await;
        assert!(servers[0].peer_sent_close_notify());
        assert_eq!(servers[0].tls_plaintext_received(), &data[..]);
    })
    .await;
}

#[tokio::test]
async fn short_writes_beyond_the_outgoing_limit() {
    bounded(async {
        let pki = Pki::new();
        let opts = ChaosOpts {
            max_write: 7,
            max_read: 5,
            ..ChaosOpts::default()
        };
        let (mut stream, net) = tls_echo(&pki, opts).await;
        // More than OUTGOING_LIMIT (64 KiB): poll_write must wait for the transport.
        let data = payload(300_000);
        assert_eq!(echo_round_trip(&mut stream, &data).await, data);
        drop(stream);
        assert_eq!(net.servers().await[0].tls_plaintext_received(), &data[..]);
    })
    .await;
}

#[tokio::test]
async fn one_poll_write_with_pending_transport_keeps_records() {
    bounded(async {
        let pki = Pki::new();
        let opts = ChaosOpts {
            max_write: 3,
            pending_every_other: true,
            ..ChaosOpts::default()
        };
        let (mut stream, net) = tls_echo(&pki, opts).await;
        // `write` takes the bytes even if the transport is not ready; `flush` delivers.
        let n = stream.write(b"hello").await.unwrap();
        assert_eq!(n, 5);
        stream.flush().await.unwrap();
        let mut back = [0u8; 5];
        stream.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"hello");
        drop(stream);
        assert_eq!(net.servers().await[0].tls_plaintext_received(), b"hello");
    })
    .await;
}

#[tokio::test]
async fn decrypted_data_is_handed_out_before_the_transport_is_polled() {
    bounded(async {
        let pki = Pki::new();
        let greeting = payload(12_000);
        let net = FakeNet::new(
            ServerScript::tls(pki.server_config())
                .with_after_tls(AfterTls::Greet(greeting.clone())),
        );
        let config = pki.config(SslMode::Require);
        let transport = net.open().await.unwrap();
        let calls = transport.calls.clone();
        let Ok(Attempt::Ready(mut stream)) =
            negotiate(&config, Method::SslRequest, transport).await
        else {
            panic!("negotiation failed");
        };
        let before = calls.reads();
        let mut got = Vec::new();
        let mut one = [0u8; 1];
        while got.len() < greeting.len() {
            let n = stream.read(&mut one).await.unwrap();
            assert_eq!(n, 1);
            got.push(one[0]);
        }
        assert_eq!(got, greeting);
        // 12 000 one-byte reads, served from decrypted data: the transport was read only
        // a handful of times (once per TLS flight, not once per byte).
        let transport_reads = calls.reads() - before;
        assert!(transport_reads < 20, "{transport_reads} transport reads");
    })
    .await;
}

#[tokio::test]
async fn idle_read_does_not_busy_loop() {
    let pki = Pki::new();
    // A postmaster waiting for the startup: after the handshake it sends nothing.
    let net = FakeNet::new(ServerScript::tls(pki.server_config()));
    let config = pki.config(SslMode::Require);
    let transport = net.open().await.unwrap();
    let calls = transport.calls.clone();
    let Ok(Attempt::Ready(mut stream)) = negotiate(&config, Method::SslRequest, transport).await
    else {
        panic!("negotiation failed");
    };
    let before = calls.reads() + calls.writes();
    let mut buf = [0u8; 64];
    let idle = tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buf)).await;
    assert!(idle.is_err(), "nothing should arrive");
    let polls = calls.reads() + calls.writes() - before;
    assert!(polls <= 4, "{polls} transport polls while idle: busy loop");
}

#[tokio::test]
async fn read_is_cancellation_safe() {
    bounded(async {
        let pki = Pki::new();
        let opts = ChaosOpts {
            max_read: 3,
            pending_every_other: true,
            ..ChaosOpts::default()
        };
        let (mut stream, _net) = tls_echo(&pki, opts).await;
        let data = payload(30_000);
        stream.write_all(&data).await.unwrap();
        stream.flush().await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 700];
        let mut cancelled = 0;
        while got.len() < data.len() {
            tokio::select! {
                biased;
                _ = tokio::task::yield_now() => cancelled += 1,
                read = stream.read(&mut buf) => got.extend_from_slice(&buf[..read.unwrap()]),
            }
            tokio::select! {
                biased;
                read = stream.read(&mut buf) => got.extend_from_slice(&buf[..read.unwrap()]),
                _ = tokio::task::yield_now() => cancelled += 1,
            }
        }
        assert_eq!(got, data);
        assert!(cancelled > 0);
    })
    .await;
}

#[tokio::test]
async fn eof_mid_handshake() {
    bounded(async {
        let pki = Pki::new();
        // `S` and 40 bytes of the ServerHello, then EOF.
        let opts = ChaosOpts {
            eof_after_read: Some(41),
            ..ChaosOpts::default()
        };
        let net = FakeNet::with_chaos(ServerScript::tls(pki.server_config()), move |_| opts);
        let config = pki.config(SslMode::Require);
        let err = negotiate(&config, Method::SslRequest, net.open().await.unwrap())
            .await
            .unwrap_err();
        assert!(
            matches!(err, ConnectError::Tls(pgtls::Error::ClosedDuringHandshake)),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "SSL SYSCALL error: EOF detected");

        // Under prefer the plan reconnects in plaintext (libpq).
        let net = FakeNet::with_chaos(ServerScript::tls(pki.server_config()), move |i| {
            if i == 0 {
                opts
            } else {
                ChaosOpts::default()
            }
        });
        let config = pki.config(SslMode::Prefer);
        let connected = connect(&config, None, || net.open(), fake_startup)
            .await
            .unwrap();
        assert!(!connected.startup.is_tls());
        assert_eq!(connected.attempts.len(), 2);
        assert_eq!(
            connected.attempts[0].error.as_deref(),
            Some("SSL SYSCALL error: EOF detected")
        );
        assert_eq!(connected.method, Method::Plaintext);
    })
    .await;
}

#[tokio::test]
async fn unclean_eof_after_handshake_is_an_error() {
    bounded(async {
        let pki = Pki::new();
        let net =
            FakeNet::new(ServerScript::tls(pki.server_config()).with_after_tls(AfterTls::Close));
        let config = pki.config(SslMode::Require);
        let Ok(Attempt::Ready(mut stream)) =
            negotiate(&config, Method::SslRequest, net.open().await.unwrap()).await
        else {
            panic!("negotiation failed");
        };
        let mut buf = [0u8; 16];
        let err = stream.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);

        // With close_notify: a clean EOF.
        let net = FakeNet::new(
            ServerScript::tls(pki.server_config()).with_after_tls(AfterTls::CloseNotify),
        );
        let Ok(Attempt::Ready(mut stream)) =
            negotiate(&config, Method::SslRequest, net.open().await.unwrap()).await
        else {
            panic!("negotiation failed");
        };
        assert_eq!(stream.read(&mut buf).await.unwrap(), 0);
    })
    .await;
}

#[tokio::test]
async fn garbage_after_handshake_is_an_error_not_data() {
    bounded(async {
        let pki = Pki::new();
        let net = FakeNet::new(
            ServerScript::tls(pki.server_config())
                .with_after_tls(AfterTls::Garbage(b"HTTP/1.1 200 OK\r\n".to_vec())),
        );
        let config = pki.config(SslMode::Require);
        let Ok(Attempt::Ready(mut stream)) =
            negotiate(&config, Method::SslRequest, net.open().await.unwrap()).await
        else {
            panic!("negotiation failed");
        };
        let mut buf = [0u8; 64];
        let err = stream.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert!(err.get_ref().unwrap().is::<pgtls::Error>());
    })
    .await;
}

#[tokio::test]
async fn bytes_after_n_are_the_plaintext_conversation() {
    bounded(async {
        let net = FakeNet::new(ServerScript::replying(Reply::NThenBytes(b"hello".to_vec())));
        let config = Config::builder().host("localhost").build().unwrap();
        let Ok(Attempt::Refused(mut plain)) =
            negotiate(&config, Method::SslRequest, net.open().await.unwrap()).await
        else {
            panic!("expected N");
        };
        let mut buf = [0u8; 5];
        plain.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello");
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Every sslmode against scripted servers, through the whole plan

#[derive(Clone, Copy, Debug)]
enum Server {
    /// SSL on, every startup accepted.
    Tls,
    /// No SSL: answers `N`.
    Plain,
    /// pg_hba `hostssl` only.
    HostSsl,
    /// pg_hba `hostnossl` only.
    HostNoSsl,
    /// Answers `SSLRequest` with an ErrorResponse.
    ErrorReply,
    /// `S` with bytes glued to it.
    SThenBytes,
    /// TLS that fails in the handshake (no common ALPN protocol).
    BrokenTls,
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Connected: encrypted?, number of attempts, how many new connections.
    Ok {
        tls: bool,
        attempts: usize,
        connections: usize,
    },
    /// Failed with this message.
    Err(String),
}

fn script(pki: &Pki, server: Server) -> ServerScript {
    let tls = ServerScript::tls(pki.server_config());
    match server {
        Server::Tls => tls,
        Server::Plain => ServerScript::plaintext_only(),
        Server::HostSsl => tls.with_startup(StartupBehaviour::RejectPlaintext),
        Server::HostNoSsl => tls.with_startup(StartupBehaviour::RejectTls),
        Server::ErrorReply => ServerScript::replying(Reply::E),
        Server::SThenBytes => tls.with_reply(Reply::SThenBytes(b"junk".to_vec())),
        Server::BrokenTls => ServerScript::tls(server_tls_config(
            pki.leaf.chain.clone(),
            pki.leaf.key.clone_key(),
            Some(b"not-postgresql"),
            None,
        )),
    }
}

async fn run(pki: &Pki, mode: SslMode, server: Server, opts: ChaosOpts) -> Outcome {
    let net = FakeNet::with_chaos(script(pki, server), move |_| opts);
    let config = pki.config(mode);
    let result = connect(
        &config,
        Some(Duration::from_secs(30)),
        || net.open(),
        fake_startup,
    )
    .await;
    let outcome = match result {
        Ok(connected) => {
            let tls = connected.startup.is_tls();
            let attempts = connected.attempts.len();
            drop(connected);
            let connections = net.servers().await.len();
            return Outcome::Ok {
                tls,
                attempts,
                connections,
            };
        }
        Err(failed) => Outcome::Err(failed.to_string()),
    };
    drop(net.servers().await);
    outcome
}

const HBA_NO_ENCRYPTION: &str =
    "no pg_hba.conf entry for host \"127.0.0.1\", user \"alice\", database \"app\", no encryption";
const HBA_SSL: &str =
    "no pg_hba.conf entry for host \"127.0.0.1\", user \"alice\", database \"app\", SSL encryption";

fn ok(tls: bool, attempts: usize, connections: usize) -> Outcome {
    Outcome::Ok {
        tls,
        attempts,
        connections,
    }
}

fn err(message: &str) -> Outcome {
    Outcome::Err(message.to_owned())
}

/// libpq's behaviour (BEHAVIOUR.md#sslmode, #fallbacks), written out per mode and server.
fn expected(mode: SslMode, server: Server) -> Outcome {
    use Server::*;
    use SslMode::*;
    let refused = "server does not support SSL, but SSL was required";
    let e_reply = "server sent an error response during SSL exchange";
    let after_s = "received unencrypted data after SSL response";
    let alpn_fail = "SSL error: received fatal alert: NoApplicationProtocol";
    match (mode, server) {
        (Disable, HostSsl) => err(HBA_NO_ENCRYPTION),
        (Disable, _) => ok(false, 1, 1),
        (Allow, HostSsl) => ok(true, 2, 2),
        (Allow, _) => ok(false, 1, 1),
        (Prefer, Tls | HostSsl) => ok(true, 1, 1),
        (Prefer, Plain) => ok(false, 2, 1),
        (Prefer, HostNoSsl | BrokenTls) => ok(false, 2, 2),
        (Prefer, ErrorReply) => err(e_reply),
        (Prefer, SThenBytes) => err(after_s),
        (_, Tls | HostSsl) => ok(true, 1, 1),
        (_, Plain) => err(refused),
        (_, HostNoSsl) => err(HBA_SSL),
        (_, ErrorReply) => err(e_reply),
        (_, SThenBytes) => err(after_s),
        (_, BrokenTls) => err(alpn_fail),
    }
}

const SERVERS: [Server; 7] = [
    Server::Tls,
    Server::Plain,
    Server::HostSsl,
    Server::HostNoSsl,
    Server::ErrorReply,
    Server::SThenBytes,
    Server::BrokenTls,
];

#[tokio::test]
async fn every_sslmode_against_scripted_servers() {
    bounded(async {
        let pki = Pki::new();
        let mut failures = Vec::new();
        for mode in SslMode::ALL {
            for server in SERVERS {
                let got = run(&pki, mode, server, ChaosOpts::default()).await;
                let want = expected(mode, server);
                if got != want {
                    failures.push(format!("{mode} × {server:?}: got {got:?}, want {want:?}"));
                }
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    })
    .await;
}

/// What changes when the transport hands out one byte at a time with spurious `Pending`s:
/// bytes glued to `S` are not there yet when the handshake starts, so they reach TLS as a
/// broken record — what libpq sees too when they arrive in a later segment.
fn expected_worst(mode: SslMode, server: Server) -> Outcome {
    match (mode, server) {
        (SslMode::Prefer, Server::SThenBytes) => ok(false, 2, 2),
        (m, Server::SThenBytes) if m.requires_tls() => {
            err("SSL error: received corrupt message of type InvalidContentType")
        }
        _ => expected(mode, server),
    }
}

#[tokio::test]
async fn every_sslmode_over_the_worst_transport() {
    bounded(async {
        let pki = Pki::new();
        let mut failures = Vec::new();
        for mode in SslMode::ALL {
            for server in SERVERS {
                let got = run(&pki, mode, server, ChaosOpts::worst()).await;
                let want = expected_worst(mode, server);
                if got != want {
                    failures.push(format!("{mode} × {server:?}: got {got:?}, want {want:?}"));
                }
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    })
    .await;
}

#[tokio::test]
async fn bytes_glued_to_s_are_refused_even_when_read_one_at_a_time() {
    bounded(async {
        let pki = Pki::new();
        let opts = ChaosOpts {
            max_read: 1,
            ..ChaosOpts::default()
        };
        for mode in [SslMode::Prefer, SslMode::Require] {
            let got = run(&pki, mode, Server::SThenBytes, opts).await;
            assert_eq!(
                got,
                err("received unencrypted data after SSL response"),
                "{mode}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn a_write_failure_mid_handshake_reports_the_servers_alert() {
    bounded(async {
        // The server rejects the handshake and closes; the client, reading one byte at a
        // time, tries to write its next flight into the closed pipe first.
        let pki = Pki::new();
        let opts = ChaosOpts {
            max_read: 1,
            ..ChaosOpts::default()
        };
        let got = run(&pki, SslMode::Require, Server::BrokenTls, opts).await;
        assert_eq!(got, expected(SslMode::Require, Server::BrokenTls));
        let got = run(&pki, SslMode::Prefer, Server::BrokenTls, opts).await;
        assert_eq!(got, ok(false, 2, 2));
    })
    .await;
}

#[tokio::test]
async fn verify_full_refuses_a_wrong_host_with_libpqs_message() {
    bounded(async {
        let pki = Pki::new();
        let net = FakeNet::new(ServerScript::tls(pki.server_config()));
        let config = Config::builder()
            .sslmode(SslMode::VerifyFull)
            .host("db.example.com")
            .root_certificates(pki.roots())
            .build()
            .unwrap();
        let failed = connect(&config, None, || net.open(), fake_startup)
            .await
            .unwrap_err();
        assert_eq!(
            failed.to_string(),
            "server certificate for \"localhost\" does not match host name \"db.example.com\""
        );
        // verify-ca does not look at the name.
        let config = Config::builder()
            .sslmode(SslMode::VerifyCa)
            .host("db.example.com")
            .root_certificates(pki.roots())
            .build()
            .unwrap();
        assert!(connect(&config, None, || net.open(), fake_startup)
            .await
            .is_ok());
    })
    .await;
}

#[tokio::test]
async fn verify_full_accepts_a_cn_only_certificate() {
    bounded(async {
        let pki = Pki::new();
        let leaf = pki.ca.leaf(LeafSpec::cn_only("localhost"));
        let server = default_server_tls_config(leaf.chain.clone(), leaf.key.clone_key());
        let net = FakeNet::new(ServerScript::tls(server));
        let config = pki.config(SslMode::VerifyFull);
        let connected = connect(&config, None, || net.open(), fake_startup)
            .await
            .unwrap();
        assert!(connected.startup.is_tls());
    })
    .await;
}

#[tokio::test]
async fn direct_negotiation() {
    bounded(async {
        let pki = Pki::new();
        let config = Config::builder()
            .sslmode(SslMode::Require)
            .negotiation(SslNegotiation::Direct)
            .host("localhost")
            .build()
            .unwrap();
        // A PostgreSQL 17+ server: ALPN `postgresql`, no SSLRequest on the wire.
        let net = FakeNet::new(ServerScript::tls(pki.server_config()));
        let connected = connect(&config, None, || net.open(), fake_startup)
            .await
            .unwrap();
        assert!(connected.startup.is_tls());
        assert_eq!(connected.method, Method::DirectTls);
        drop(connected);
        let servers = net.servers().await;
        assert!(servers[0].saw_direct_client_hello());
        assert!(!servers[0].saw_ssl_request());

        // A server before 17 closes the connection: no fallback.
        let net = FakeNet::new(ServerScript::pre17_tls(pki.server_config()));
        let failed = connect(&config, None, || net.open(), fake_startup)
            .await
            .unwrap_err();
        assert_eq!(failed.attempts.len(), 1);

        // A server that does not select ALPN.
        let no_alpn =
            server_tls_config(pki.leaf.chain.clone(), pki.leaf.key.clone_key(), None, None);
        let net = FakeNet::new(ServerScript::tls(no_alpn));
        let failed = connect(&config, None, || net.open(), fake_startup)
            .await
            .unwrap_err();
        assert_eq!(
            failed.to_string(),
            "direct SSL connection was established without ALPN protocol negotiation extension"
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn connect_timeout_bounds_the_whole_plan() {
    let net = FakeNet::new(ServerScript::replying(Reply::Silent));
    let config = Config::builder().host("localhost").build().unwrap();
    let failed = connect(
        &config,
        Some(Duration::from_secs(2)),
        || net.open(),
        fake_startup,
    )
    .await
    .unwrap_err();
    assert!(matches!(failed.error, ConnectError::Timeout));
    assert_eq!(failed.to_string(), "timeout expired");
    assert!(failed.try_next_host);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_connections() {
    bounded(async {
        let pki = Pki::new();
        let config = pki.config(SslMode::VerifyFull);
        let net =
            FakeNet::new(ServerScript::tls(pki.server_config()).with_after_tls(AfterTls::Echo));
        let mut tasks = Vec::new();
        for i in 0..200u32 {
            let (config, net) = (config.clone(), net.clone());
            tasks.push(tokio::spawn(async move {
                let transport = net.open().await.unwrap();
                let Attempt::Ready(mut stream) =
                    negotiate(&config, Method::SslRequest, transport).await?
                else {
                    panic!("refused");
                };
                let data = i.to_be_bytes().repeat(256);
                let back = echo_round_trip(&mut stream, &data).await;
                assert_eq!(back, data);
                stream.shutdown().await.map_err(ConnectError::Io)?;
                Ok::<bool, ConnectError>(stream.is_tls())
            }));
        }
        let mut tls = 0;
        for task in tasks {
            if task.await.unwrap().unwrap() {
                tls += 1;
            }
        }
        assert_eq!(tls, 200);
        let servers = net.servers().await;
        assert_eq!(servers.len(), 200);
        assert!(servers.iter().all(|s| s.peer_sent_close_notify()));
    })
    .await;
}

#[test]
fn calls_counter_is_shared() {
    // Sanity of the harness itself.
    let calls = std::sync::Arc::new(Calls::default());
    calls.reads.fetch_add(2, Ordering::Relaxed);
    assert_eq!(calls.reads(), 2);
}
