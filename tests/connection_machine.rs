//! `ConnectionSetup`, the whole-connection machine, against scripted servers in memory:
//! every sslmode against every server behaviour, startup rejections and libpq's retries,
//! multi-host rules, transport errors mid-handshake, misuse, and chunking.

use std::io;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use pgtls::error_response::ErrorResponse;
use pgtls::plan::{Method, Transport};
use pgtls::rustls::ServerConfig;
use pgtls::setup::{Action, Ready};
use pgtls::{
    ApplicationData, Config, ConfigBuilder, ConnectionSetup, Error, RootCertificates, Session,
    SslMode, SslNegotiation,
};
use proptest::prelude::*;

use pgtls_testkit::certs::{Ca, Leaf, LeafSpec};
use pgtls_testkit::fake_server::{
    backend_message, default_server_tls_config, error_response, parse_backend_messages,
    startup_message, FakeServer, Reply, ServerScript, StartupBehaviour,
};
use pgtls_testkit::pair::Sizes;

const HOST: &str = "db.example.com";

fn builder() -> ConfigBuilder {
    Config::builder()
        .host(HOST)
        .crypto_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

fn config(mode: SslMode) -> Config {
    builder().sslmode(mode).build().expect("config")
}

struct Pki {
    ca: Ca,
    server: Arc<ServerConfig>,
}

fn pki() -> Pki {
    let ca = Ca::root("connection machine root");
    let leaf: Leaf = ca.leaf(LeafSpec::server(HOST));
    let server = default_server_tls_config(leaf.chain.clone(), leaf.key.clone_key());
    Pki { ca, server }
}

fn verified_config(mode: SslMode, pki: &Pki) -> Config {
    builder()
        .sslmode(mode)
        .root_certificates(RootCertificates::Certificates(vec![pki.ca.root_der()]))
        .build()
        .expect("config")
}

/// What a connection attempt reaches: a scripted server, or nothing (connect refused).
type Network<'a> = dyn FnMut(usize, usize) -> Option<ServerScript> + 'a;

/// How to run the driver.
#[derive(Clone, Default)]
struct Knobs {
    /// Chunk sizes of the server's bytes (cycled; empty: all at once).
    chunks: Vec<usize>,
    /// Reset the transport on the n-th write of each TLS handshake (counted per connection).
    reset_in_handshake: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum End {
    /// Established: over TLS or not, on host `host`.
    Established { tls: bool, host: usize },
    /// Failed with libpq's message.
    Failed { message: String, next_host: bool },
}

#[derive(Debug)]
struct Run {
    /// `open h0 SslRequest`, `close`, `ready tls`, `ready plain`, ...
    log: Vec<String>,
    end: End,
    attempts: Vec<Option<String>>,
}

/// One driver over the machine: the loop every driver writes, plus a scripted postmaster
/// per opened transport. Bounded: a run that takes more than 100 000 steps fails.
fn run(mut setup: ConnectionSetup, network: &mut Network<'_>, knobs: &Knobs) -> Run {
    let mut log = Vec::new();
    let (mut out, mut input) = (BytesMut::new(), BytesMut::new());
    let mut server: Option<FakeServer> = None;
    let mut wire: Vec<u8> = Vec::new(); // taken from the server, not yet delivered
    let mut sizes = Sizes::new(&knobs.chunks, usize::MAX);
    let mut opened = 0;
    let mut host_now = 0;
    let mut attempts = Vec::new();
    for _ in 0..100_000 {
        match setup
            .poll_output(&mut out)
            .expect("no misuse in the driver")
        {
            Action::Open { host, method } => {
                log.push(format!("open h{host} {method:?}"));
                input.clear();
                out.clear();
                wire.clear();
                host_now = host;
                server = network(host, opened).map(FakeServer::new);
                opened += 1;
                if server.is_none() {
                    setup
                        .handle_transport_error(io::ErrorKind::ConnectionRefused.into())
                        .unwrap();
                }
            }
            Action::Transmit(n) => {
                assert_eq!(n, out.len());
                let reset = knobs.reset_in_handshake && setup.is_handshaking();
                let server = server.as_mut().expect("a transport");
                let delivered = !reset && server.handle_client_bytes(&out).is_ok();
                out.clear();
                if !delivered {
                    setup
                        .handle_transport_error(io::ErrorKind::ConnectionReset.into())
                        .unwrap();
                }
            }
            Action::Receive => {
                let server = server.as_mut().expect("a transport");
                wire.extend(server.take_output());
                if !wire.is_empty() {
                    let n = sizes.next_size().min(wire.len());
                    input.extend_from_slice(&wire[..n]);
                    wire.drain(..n);
                    let before = input.len();
                    let consumed = setup.handle_input(&mut input).unwrap();
                    assert_eq!(before - input.len(), consumed);
                } else if server.is_closed() {
                    setup.handle_eof().unwrap();
                } else {
                    setup.handle_timeout().unwrap();
                }
            }
            Action::Close => {
                log.push("close".into());
                server = None;
            }
            Action::Ready(ready) => {
                log.push(format!(
                    "ready {}",
                    if ready.is_tls() { "tls" } else { "plain" }
                ));
                let server = server.as_mut().expect("a transport");
                let reply = startup(ready, server, &mut input, &mut wire);
                match reply {
                    Ok(()) => setup.handle_startup_accepted().unwrap(),
                    Err(Some(raw)) => setup.handle_startup_rejected(&raw).unwrap(),
                    Err(None) => setup
                        .handle_transport_error(io::ErrorKind::UnexpectedEof.into())
                        .unwrap(),
                }
            }
            Action::Done => {
                attempts.extend(setup.attempts().iter().map(|a| a.error.clone()));
                let tls = log.last().is_some_and(|l| l == "ready tls");
                return Run {
                    log,
                    end: End::Established {
                        tls,
                        host: host_now,
                    },
                    attempts,
                };
            }
            Action::Failed(failed) => {
                attempts.extend(failed.attempts.iter().map(|a| a.error.clone()));
                return Run {
                    log,
                    end: End::Failed {
                        message: failed.to_string(),
                        next_host: failed.try_next_host,
                    },
                    attempts,
                };
            }
        }
    }
    panic!("the machine did not finish: {log:?}");
}

/// The driver's startup: a StartupMessage, then the server's answer up to `Z` (accepted)
/// or `E` (the raw ErrorResponse); `Err(None)` when the server closed first.
fn startup(
    ready: Ready,
    server: &mut FakeServer,
    input: &mut BytesMut,
    wire: &mut Vec<u8>,
) -> Result<(), Option<Vec<u8>>> {
    let message = startup_message("alice", "app");
    let mut session: Option<Box<Session>> = match ready {
        Ready::Tls(session) => Some(session),
        Ready::Plaintext => None,
    };
    let mut plain = BytesMut::new();
    match session.as_mut() {
        Some(session) => {
            session
                .handle_application_data_buf(&mut &message[..])
                .unwrap();
            let mut records = BytesMut::new();
            session.poll_output(&mut records).unwrap();
            server.handle_client_bytes(&records).map_err(|_| None)?;
        }
        None => {
            server.handle_client_bytes(&message).map_err(|_| None)?;
        }
    }
    for _ in 0..10_000 {
        for (tag, body) in parse_backend_messages(&plain) {
            match tag {
                b'Z' => return Ok(()),
                b'E' => return Err(Some(backend_message(b'E', &body))),
                _ => {}
            }
        }
        wire.extend(server.take_output());
        input.extend_from_slice(wire);
        wire.clear();
        match session.as_mut() {
            Some(session) => {
                session.handle_input_buf(input).map_err(|_| None)?;
                match session.poll_application_data_into(&mut plain) {
                    Ok(ApplicationData::Data(_)) => continue,
                    Ok(ApplicationData::Closed) | Err(_) => return Err(None),
                    Ok(ApplicationData::NeedInput) => {}
                }
            }
            None => {
                plain.extend_from_slice(input);
                input.clear();
            }
        }
        if server.is_closed() && !server.has_output() && input.is_empty() {
            for (tag, body) in parse_backend_messages(&plain) {
                if tag == b'E' {
                    return Err(Some(backend_message(b'E', &body)));
                }
            }
            return Err(None);
        }
    }
    Err(None)
}

fn one_host(config: &Config, script: ServerScript, knobs: &Knobs) -> Run {
    run(
        ConnectionSetup::new(config),
        &mut |_, _| Some(script.clone()),
        knobs,
    )
}

fn established(tls: bool) -> End {
    End::Established { tls, host: 0 }
}

fn failed(message: &str, next_host: bool) -> End {
    End::Failed {
        message: message.into(),
        next_host,
    }
}

const HBA_PLAIN: &str =
    "no pg_hba.conf entry for host \"127.0.0.1\", user \"alice\", database \"app\", no encryption";
const HBA_SSL: &str =
    "no pg_hba.conf entry for host \"127.0.0.1\", user \"alice\", database \"app\", SSL encryption";

// ------------------------------------------------------------------------------------------
// Every sslmode against every server behaviour

#[test]
fn every_sslmode_against_every_server() {
    let pki = pki();
    let tls = ServerScript::tls(pki.server.clone());
    let servers: [(&str, ServerScript); 5] = [
        ("tls", tls.clone()),
        ("no-ssl", ServerScript::plaintext_only()),
        (
            "hostssl",
            tls.clone().with_startup(StartupBehaviour::RejectPlaintext),
        ),
        (
            "hostnossl",
            tls.clone().with_startup(StartupBehaviour::RejectTls),
        ),
        ("E", ServerScript::replying(Reply::E)),
    ];
    let refused = "server does not support SSL, but SSL was required";
    let e = "server sent an error response during SSL exchange";
    use SslMode::*;
    #[rustfmt::skip]
    let expected: Vec<(SslMode, &str, End, &[&str])> = vec![
        (Disable, "tls", established(false), &["open h0 Plaintext", "ready plain"]),
        (Disable, "no-ssl", established(false), &["open h0 Plaintext", "ready plain"]),
        (Disable, "hostssl", failed(HBA_PLAIN, false), &["open h0 Plaintext", "ready plain", "close"]),
        (Disable, "hostnossl", established(false), &["open h0 Plaintext", "ready plain"]),
        (Disable, "E", established(false), &["open h0 Plaintext", "ready plain"]),
        (Allow, "tls", established(false), &["open h0 Plaintext", "ready plain"]),
        (Allow, "no-ssl", established(false), &["open h0 Plaintext", "ready plain"]),
        (Allow, "hostssl", established(true), &["open h0 Plaintext", "ready plain", "close", "open h0 SslRequest", "ready tls"]),
        (Allow, "hostnossl", established(false), &["open h0 Plaintext", "ready plain"]),
        (Prefer, "tls", established(true), &["open h0 SslRequest", "ready tls"]),
        (Prefer, "no-ssl", established(false), &["open h0 SslRequest", "ready plain"]),
        (Prefer, "hostssl", established(true), &["open h0 SslRequest", "ready tls"]),
        (Prefer, "hostnossl", established(false), &["open h0 SslRequest", "ready tls", "close", "open h0 Plaintext", "ready plain"]),
        (Prefer, "E", failed(e, false), &["open h0 SslRequest", "close"]),
        (Require, "tls", established(true), &["open h0 SslRequest", "ready tls"]),
        (Require, "no-ssl", failed(refused, false), &["open h0 SslRequest", "close"]),
        (Require, "hostnossl", failed(HBA_SSL, false), &["open h0 SslRequest", "ready tls", "close"]),
        (Require, "E", failed(e, false), &["open h0 SslRequest", "close"]),
        (VerifyCa, "tls", established(true), &["open h0 SslRequest", "ready tls"]),
        (VerifyFull, "tls", established(true), &["open h0 SslRequest", "ready tls"]),
        (VerifyFull, "no-ssl", failed(refused, false), &["open h0 SslRequest", "close"]),
    ];
    for (mode, server, end, log) in expected {
        let script = servers
            .iter()
            .find(|(name, _)| *name == server)
            .unwrap()
            .1
            .clone();
        let r = one_host(&verified_config(mode, &pki), script, &Knobs::default());
        assert_eq!(r.end, end, "{mode} against {server}: {:?}", r.log);
        assert_eq!(r.log, log, "{mode} against {server}");
    }
}

#[test]
fn direct_tls_and_a_pre17_server() {
    let pki = pki();
    let direct = builder()
        .sslmode(SslMode::Require)
        .negotiation(SslNegotiation::Direct)
        .build()
        .unwrap();
    let r = one_host(
        &direct,
        ServerScript::tls(pki.server.clone()),
        &Knobs::default(),
    );
    assert_eq!(r.end, established(true));
    assert_eq!(r.log, ["open h0 DirectTls", "ready tls"]);
    // A pre-17 server closes on a ClientHello: a TLS failure, no fallback under require.
    let r = one_host(
        &direct,
        ServerScript::pre17_tls(pki.server),
        &Knobs::default(),
    );
    assert_eq!(r.end, failed("SSL SYSCALL error: EOF detected", false));
}

#[test]
fn verify_full_with_a_wrong_host_fails_without_fallback() {
    let pki = pki();
    let config = builder()
        .host("other.example.com")
        .sslmode(SslMode::VerifyFull)
        .root_certificates(RootCertificates::Certificates(vec![pki.ca.root_der()]))
        .build()
        .unwrap();
    let r = one_host(&config, ServerScript::tls(pki.server), &Knobs::default());
    let End::Failed { message, next_host } = r.end else {
        panic!("{:?}", r.end)
    };
    assert!(message.contains("does not match host name"), "{message}");
    assert!(!next_host);
    assert_eq!(r.log, ["open h0 SslRequest", "close"]);
}

#[test]
fn prefer_falls_back_in_plaintext_after_a_certificate_failure() {
    let pki = pki();
    let other = Ca::root("someone else");
    let config = builder()
        .sslmode(SslMode::Prefer)
        .root_certificates(RootCertificates::Certificates(vec![other.root_der()]))
        .build()
        .unwrap();
    let script = ServerScript::tls(pki.server);
    let r = one_host(&config, script, &Knobs::default());
    assert_eq!(r.end, established(false));
    assert_eq!(
        r.log,
        [
            "open h0 SslRequest",
            "close",
            "open h0 Plaintext",
            "ready plain"
        ]
    );
    assert!(r.attempts[0]
        .as_deref()
        .unwrap()
        .starts_with("SSL error: certificate verify failed"));
}

// ------------------------------------------------------------------------------------------
// Startup rejections

#[test]
fn rejected_startups_retry_with_the_other_encryption_then_give_up() {
    let pki = pki();
    // Both methods rejected: allow tries plaintext then TLS, prefer TLS then plaintext;
    // the last rejection is reported.
    let script = ServerScript::tls(pki.server).with_startup(StartupBehaviour::Error {
        sqlstate: "28000".into(),
        message: "role \"alice\" is not permitted to log in".into(),
    });
    for (mode, methods) in [
        (SslMode::Allow, ["open h0 Plaintext", "open h0 SslRequest"]),
        (SslMode::Prefer, ["open h0 SslRequest", "open h0 Plaintext"]),
    ] {
        let r = one_host(&config(mode), script.clone(), &Knobs::default());
        assert_eq!(
            r.end,
            failed("role \"alice\" is not permitted to log in", false),
            "{mode}"
        );
        let opens: Vec<_> = r.log.iter().filter(|l| l.starts_with("open")).collect();
        assert_eq!(opens, methods, "{mode}");
        assert_eq!(r.attempts.len(), 2);
    }
}

#[test]
fn sqlstate_57p03_moves_to_the_next_host() {
    let pki = pki();
    let starting = ServerScript::tls(pki.server.clone()).with_startup(StartupBehaviour::Error {
        sqlstate: "57P03".into(),
        message: "the database system is starting up".into(),
    });
    let r = one_host(
        &config(SslMode::Prefer),
        starting.clone(),
        &Knobs::default(),
    );
    assert_eq!(r.end, failed("the database system is starting up", true));
    // With two hosts the second one is tried, with its own plan.
    let hosts = vec![
        (config(SslMode::Prefer), Transport::Tcp),
        (config(SslMode::Require), Transport::Tcp),
    ];
    let good = ServerScript::tls(pki.server);
    let r = run(
        ConnectionSetup::multi_host(hosts).unwrap(),
        &mut |host, _| {
            Some(if host == 0 {
                starting.clone()
            } else {
                good.clone()
            })
        },
        &Knobs::default(),
    );
    assert_eq!(r.end, End::Established { tls: true, host: 1 });
    assert_eq!(
        r.log,
        [
            "open h0 SslRequest",
            "ready tls",
            "close",
            "open h1 SslRequest",
            "ready tls"
        ]
    );
}

#[test]
fn error_response_decoding_drives_the_rules() {
    let raw = error_response("28000", "no pg_hba.conf entry");
    let decoded = ErrorResponse::decode(&raw).unwrap();
    assert_eq!(decoded.sqlstate.as_deref(), Some("28000"));
    assert_eq!(decoded.message, "no pg_hba.conf entry");
    // A malformed rejection still ends the attempt (no SQLSTATE: a plain rejection).
    let mut setup = ConnectionSetup::new(&config(SslMode::Allow));
    let mut out = BytesMut::new();
    assert!(matches!(
        setup.poll_output(&mut out),
        Ok(Action::Open { .. })
    ));
    assert!(matches!(
        setup.poll_output(&mut out),
        Ok(Action::Ready(Ready::Plaintext))
    ));
    setup.handle_startup_rejected(b"E\x00").unwrap();
    assert!(matches!(setup.poll_output(&mut out), Ok(Action::Close)));
    assert!(matches!(
        setup.poll_output(&mut out),
        Ok(Action::Open {
            method: Method::SslRequest,
            ..
        })
    ));
}

// ------------------------------------------------------------------------------------------
// Multi-host and transport errors

#[test]
fn connect_refused_moves_to_the_next_host_and_tls_failures_do_not() {
    let pki = pki();
    let hosts = || {
        vec![
            (config(SslMode::Require), Transport::Tcp),
            (config(SslMode::Require), Transport::Tcp),
        ]
    };
    let good = ServerScript::tls(pki.server);
    let r = run(
        ConnectionSetup::multi_host(hosts()).unwrap(),
        &mut |host, _| (host == 1).then(|| good.clone()),
        &Knobs::default(),
    );
    assert_eq!(r.end, End::Established { tls: true, host: 1 });
    assert_eq!(
        r.log,
        [
            "open h0 SslRequest",
            "close",
            "open h1 SslRequest",
            "ready tls"
        ]
    );
    assert_eq!(r.attempts[0].as_deref(), Some("connection refused"));
    // A server without SSL under require: a hard failure, the next host is not tried.
    let r = run(
        ConnectionSetup::multi_host(hosts()).unwrap(),
        &mut |_, _| Some(ServerScript::plaintext_only()),
        &Knobs::default(),
    );
    assert_eq!(
        r.end,
        failed("server does not support SSL, but SSL was required", false)
    );
    // Every host refused: the last error, and libpq would go on (there is none left).
    let r = run(
        ConnectionSetup::multi_host(hosts()).unwrap(),
        &mut |_, _| None,
        &Knobs::default(),
    );
    assert_eq!(r.end, failed("connection refused", true));
    assert_eq!(r.attempts.len(), 2);
    assert!(ConnectionSetup::multi_host(Vec::new()).is_err());
}

#[test]
fn a_reset_mid_handshake_is_a_tls_failure_prefer_falls_back() {
    let pki = pki();
    let knobs = Knobs {
        reset_in_handshake: true,
        ..Knobs::default()
    };
    let script = ServerScript::tls(pki.server);
    let r = one_host(&config(SslMode::Prefer), script.clone(), &knobs);
    assert_eq!(r.end, established(false));
    assert_eq!(
        r.log,
        [
            "open h0 SslRequest",
            "close",
            "open h0 Plaintext",
            "ready plain"
        ]
    );
    assert!(r.attempts[0]
        .as_deref()
        .unwrap()
        .starts_with("SSL SYSCALL error: "));
    // Under require it is the final error.
    let r = one_host(&config(SslMode::Require), script, &knobs);
    let End::Failed { message, next_host } = r.end else {
        panic!()
    };
    assert!(message.starts_with("SSL SYSCALL error: "), "{message}");
    assert!(!next_host);
}

#[test]
fn a_silent_server_times_out_on_the_callers_clock() {
    let r = one_host(
        &config(SslMode::Prefer),
        ServerScript::replying(Reply::Silent),
        &Knobs::default(),
    );
    assert_eq!(r.end, failed("timeout expired", true));
    assert_eq!(r.log, ["open h0 SslRequest", "close"]);
}

#[test]
fn bytes_after_n_are_left_for_the_plaintext_protocol() {
    let script = ServerScript::replying(Reply::NThenBytes(b"hello".to_vec()));
    let mut setup = ConnectionSetup::new(&config(SslMode::Prefer));
    let mut out = BytesMut::new();
    assert!(matches!(
        setup.poll_output(&mut out),
        Ok(Action::Open { .. })
    ));
    assert!(matches!(
        setup.poll_output(&mut out),
        Ok(Action::Transmit(8))
    ));
    let mut server = FakeServer::new(script);
    server.handle_client_bytes(&out).unwrap();
    assert!(matches!(setup.poll_output(&mut out), Ok(Action::Receive)));
    let mut input = BytesMut::from(&server.take_output()[..]);
    assert_eq!(setup.handle_input(&mut input).unwrap(), 1);
    assert!(matches!(
        setup.poll_output(&mut out),
        Ok(Action::Ready(Ready::Plaintext))
    ));
    assert_eq!(&input[..], b"hello");

    // Any `Buf` works, chunked ones too: only the `N` is consumed.
    let mut setup = ConnectionSetup::new(&config(SslMode::Prefer));
    assert!(matches!(
        setup.poll_output(&mut out),
        Ok(Action::Open { .. })
    ));
    assert!(matches!(
        setup.poll_output(&mut out),
        Ok(Action::Transmit(8))
    ));
    let mut chained = (&b""[..]).chain(&b"N"[..]).chain(&b"hello"[..]);
    assert_eq!(setup.handle_input(&mut chained).unwrap(), 1);
    assert_eq!(chained.remaining(), 5);
}

// ------------------------------------------------------------------------------------------
// Misuse

#[test]
fn events_in_the_wrong_order_are_typed_errors() {
    let mut setup = ConnectionSetup::new(&config(SslMode::Prefer));
    let mut out = BytesMut::new();
    let misuse = |r: Result<(), Error>| assert!(matches!(r, Err(Error::Misuse(_))), "{r:?}");
    // Before Open: no input, no startup outcome.
    misuse(setup.handle_input(&mut &b"S"[..]).map(drop));
    misuse(setup.handle_eof());
    misuse(setup.handle_startup_accepted());
    assert!(matches!(
        setup.poll_output(&mut out),
        Ok(Action::Open { .. })
    ));
    // During the negotiation: no startup outcome.
    misuse(setup.handle_startup_accepted());
    misuse(setup.handle_startup_rejected(&error_response("28000", "x")));
    assert!(matches!(
        setup.poll_output(&mut out),
        Ok(Action::Transmit(8))
    ));
    setup.handle_input(&mut &b"N"[..]).unwrap();
    assert!(matches!(setup.poll_output(&mut out), Ok(Action::Ready(_))));
    // During the startup: polling and transport input are the driver's mistake.
    assert!(matches!(setup.poll_output(&mut out), Err(Error::Misuse(_))));
    misuse(setup.handle_input(&mut &b"R"[..]).map(drop));
    setup.handle_startup_accepted().unwrap();
    assert!(matches!(setup.poll_output(&mut out), Ok(Action::Done)));
    // After the end: everything is refused, nothing spins.
    assert!(matches!(setup.poll_output(&mut out), Err(Error::Misuse(_))));
    misuse(setup.handle_timeout());
    misuse(setup.handle_startup_accepted());
    misuse(setup.handle_input(&mut &b"x"[..]).map(drop));
}

#[test]
fn input_after_failure_is_refused() {
    let mut setup = ConnectionSetup::new(&config(SslMode::Require));
    let mut out = BytesMut::new();
    assert!(matches!(
        setup.poll_output(&mut out),
        Ok(Action::Open { .. })
    ));
    assert!(matches!(
        setup.poll_output(&mut out),
        Ok(Action::Transmit(8))
    ));
    setup.handle_input(&mut &b"N"[..]).unwrap();
    assert!(matches!(setup.poll_output(&mut out), Ok(Action::Close)));
    let Ok(Action::Failed(failed)) = setup.poll_output(&mut out) else {
        panic!("failure expected")
    };
    assert_eq!(
        failed.to_string(),
        "server does not support SSL, but SSL was required"
    );
    assert!(matches!(
        setup.handle_input(&mut &b"more"[..]),
        Err(Error::Misuse(_))
    ));
    assert!(matches!(setup.handle_eof(), Err(Error::Misuse(_))));
    assert!(matches!(
        setup.handle_transport_error(io::ErrorKind::ConnectionReset.into()),
        Err(Error::Misuse(_))
    ));
    assert!(matches!(setup.poll_output(&mut out), Err(Error::Misuse(_))));
}

#[test]
fn the_machine_consumes_only_the_response_byte_before_tls() {
    // Input offered before the request went out is not consumed (and not lost).
    let mut setup = ConnectionSetup::new(&config(SslMode::Prefer));
    let mut out = BytesMut::new();
    assert!(matches!(
        setup.poll_output(&mut out),
        Ok(Action::Open { .. })
    ));
    let mut early = BytesMut::from(&b"N"[..]);
    assert_eq!(setup.handle_input(&mut early).unwrap(), 0);
    assert_eq!(early.remaining(), 1);
    assert!(matches!(
        setup.poll_output(&mut out),
        Ok(Action::Transmit(8))
    ));
    assert_eq!(setup.handle_input(&mut early).unwrap(), 1);
}

// ------------------------------------------------------------------------------------------
// Chunking

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever the chunking of the server's bytes, the outcome and the transcript are the
    /// same as with everything at once.
    #[test]
    fn chunking_never_changes_the_outcome(
        chunks in proptest::collection::vec(0usize..64, 1..6)
            .prop_filter("some chunk delivers", |c| c.iter().any(|&n| n > 0)),
        case in 0usize..4,
    ) {
        let pki = pki();
        let (mode, script) = match case {
            0 => (SslMode::Prefer, ServerScript::tls(pki.server.clone())),
            1 => (SslMode::Prefer, ServerScript::tls(pki.server.clone()).with_startup(StartupBehaviour::RejectTls)),
            2 => (SslMode::Allow, ServerScript::tls(pki.server.clone()).with_startup(StartupBehaviour::RejectPlaintext)),
            _ => (SslMode::Prefer, ServerScript::replying(Reply::NThenBytes(b"R".to_vec()))),
        };
        let config = verified_config(mode, &pki);
        let whole = one_host(&config, script.clone(), &Knobs::default());
        let chunked = one_host(&config, script, &Knobs { chunks, ..Knobs::default() });
        prop_assert_eq!(&whole.log, &chunked.log);
        prop_assert_eq!(&whole.end, &chunked.end);
        prop_assert_eq!(whole.attempts, chunked.attempts);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any sequence of events, in any order, with any bytes: no panic, every call returns,
    /// and once Done or Failed was handed out everything else is a misuse error.
    #[test]
    fn any_event_order_is_answered_without_panic(
        events in proptest::collection::vec((0u8..8, proptest::collection::vec(any::<u8>(), 0..40)), 0..60),
        mode in 0usize..4,
    ) {
        let mode = [SslMode::Disable, SslMode::Allow, SslMode::Prefer, SslMode::Require][mode];
        let mut setup = ConnectionSetup::new(&config(mode));
        let mut out = BytesMut::new();
        let mut finished = false;
        for (kind, bytes) in events {
            let result = match kind {
                0 | 1 => match setup.poll_output(&mut out) {
                    Ok(Action::Done | Action::Failed(_)) => {
                        prop_assert!(!finished);
                        finished = true;
                        Ok(())
                    }
                    Ok(_) => Ok(()),
                    Err(err) => Err(err),
                },
                2 => setup.handle_input(&mut BytesMut::from(&bytes[..])).map(drop),
                3 => setup.handle_eof(),
                4 => setup.handle_transport_error(io::ErrorKind::ConnectionReset.into()),
                5 => setup.handle_timeout(),
                6 => setup.handle_startup_rejected(&bytes),
                _ => setup.handle_startup_accepted(),
            };
            if finished {
                prop_assert!(kind <= 1 || matches!(result, Err(Error::Misuse(_))), "{kind}: {result:?}");
            }
            if let Err(err) = result {
                prop_assert!(matches!(err, Error::Misuse(_)), "{err:?}");
            }
        }
    }
}
