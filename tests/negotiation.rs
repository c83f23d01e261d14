//! The per-attempt machine against a scripted server in memory: every server behaviour of
//! BEHAVIOUR.md#sslrequest-reply and #direct-tls, TLS alerts, client certificates, the session, channel binding, misuse,
//! the last-gasp alert, version limits and cancel requests.
//!
//! No verification here (no root certificates) except where a test says so: see
//! `verification.rs` for certificates.

use std::sync::Arc;

use pgtls::blocking::connect;
use pgtls::plan::{AttemptEnd, Method, Step};
use pgtls::rustls::{AlertDescription, ProtocolVersion};
use pgtls::{
    ApplicationData, Blame, CertificateProblem, ChannelBindingError, Config, ConfigBuilder, Error,
    Negotiated, Negotiation, Output, SslCertMode, SslMode, SslNegotiation, TlsVersion,
};
use rustls::ServerConfig;
use sha2::{Digest, Sha256, Sha384};

use pgtls_testkit::certs::{Ca, KeyKind, Leaf, LeafSpec};
use pgtls_testkit::fake_server::{
    default_server_tls_config, parse_backend_messages, server_tls_config_with, startup_message,
    AfterTls, ClientAuth, Reply, ServerScript, ServerTlsOptions, SSL_REQUEST,
};
use pgtls_testkit::pair::{drive, Drive, Event, MemNetwork, ReadEnd, Transcript};

const HOST: &str = "db.example.com";

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn builder(host: &str) -> ConfigBuilder {
    Config::builder().host(host).crypto_provider(provider())
}

fn config(mode: SslMode) -> Config {
    builder(HOST).sslmode(mode).build().expect("config")
}

fn direct_config() -> Config {
    builder(HOST)
        .sslmode(SslMode::Require)
        .negotiation(SslNegotiation::Direct)
        .build()
        .expect("config")
}

fn server_leaf(spec: LeafSpec) -> Leaf {
    Ca::root("negotiation test root").leaf(spec)
}

fn tls_server(leaf: &Leaf) -> Arc<ServerConfig> {
    default_server_tls_config(leaf.chain.clone(), leaf.key.clone_key())
}

fn tls_server_with(leaf: &Leaf, opts: &ServerTlsOptions) -> Arc<ServerConfig> {
    server_tls_config_with(leaf.chain.clone(), leaf.key.clone_key(), opts)
}

/// A 17+ server with SSL, serving a fresh certificate for [`HOST`].
fn ssl_server() -> (Leaf, ServerScript) {
    let leaf = server_leaf(LeafSpec::server(HOST));
    let script = ServerScript::tls(tls_server(&leaf));
    (leaf, script)
}

fn run(config: &Config, method: Method, script: ServerScript) -> Transcript {
    drive(config, method, script, &Drive::default())
}

/// Chunkings worth trying everywhere: all at once, 1 byte, empty chunks, odd sizes.
const CHUNKINGS: [&[usize]; 5] = [&[], &[1], &[0, 1], &[0, 2, 0, 7], &[3, 0, 1000]];
const OUT_SIZES: [&[usize]; 4] = [&[], &[1], &[0, 5], &[8, 300, 17000]];

// ------------------------------------------------------------------------------------------
// `S`: TLS

#[test]
fn s_brings_tls_up_with_alpn_postgresql_and_sni_for_a_name() {
    let (leaf, script) = ssl_server();
    let t = run(&config(SslMode::Prefer), Method::SslRequest, script);
    assert_eq!(t.client_before_reply, SSL_REQUEST);
    assert_eq!(&t.client_all[..8], &SSL_REQUEST);
    // The ClientHello follows the SSLRequest: a handshake record, type client_hello.
    assert_eq!(t.client_all[8], 0x16);
    assert_eq!(t.client_all[13], 0x01);
    assert!(t.server_obs.saw_ssl_request);
    assert!(!t.server_obs.saw_direct);
    assert!(t.server_obs.handshake_complete);
    assert_eq!(t.server_obs.sni.as_deref(), Some(HOST));
    assert_eq!(t.server_obs.alpn.as_deref(), Some(&b"postgresql"[..]));
    assert_eq!(t.server_obs.tls_error, None);
    assert_eq!(t.server_obs.startups, vec![]);
    // The first input consumed is exactly the `S`.
    let first_input = t
        .events
        .iter()
        .find_map(|e| match e {
            Event::Input { consumed, .. } if *consumed > 0 => Some(*consumed),
            _ => None,
        })
        .unwrap();
    assert_eq!(first_input, 1);
    let session = t.outcome.expect_tls();
    assert_eq!(session.alpn_protocol(), Some(&b"postgresql"[..]));
    assert_eq!(session.sni(), Some(HOST));
    assert_eq!(session.protocol_version(), Some(ProtocolVersion::TLSv1_3));
    assert_eq!(session.peer_certificates(), &leaf.chain[..]);
    assert!(session.cipher_suite().is_some());
}

#[test]
fn s_works_in_every_chunking_and_output_buffer_size() {
    let (_leaf, script) = ssl_server();
    let config = config(SslMode::Require);
    for chunks in CHUNKINGS {
        for outs in OUT_SIZES {
            let opts = Drive::default().chunks(chunks).out_sizes(outs);
            let t = drive(&config, Method::SslRequest, script.clone(), &opts);
            assert_eq!(
                t.outcome.kind(),
                "tls",
                "chunks {chunks:?} outs {outs:?}: {t:?}"
            );
            assert_eq!(t.client_before_reply, SSL_REQUEST, "{chunks:?} {outs:?}");
            assert!(t.server_obs.handshake_complete);
        }
    }
}

#[test]
fn tls_1_2_server() {
    let leaf = server_leaf(LeafSpec::server(HOST));
    let opts = ServerTlsOptions {
        versions: vec![&rustls::version::TLS12],
        ..ServerTlsOptions::default()
    };
    let t = run(
        &config(SslMode::Require),
        Method::SslRequest,
        ServerScript::tls(tls_server_with(&leaf, &opts)),
    );
    assert_eq!(t.server_obs.version, Some(ProtocolVersion::TLSv1_2));
    let session = t.outcome.expect_tls();
    assert_eq!(session.protocol_version(), Some(ProtocolVersion::TLSv1_2));
    assert_eq!(session.alpn_protocol(), Some(&b"postgresql"[..]));
}

#[test]
fn sni_is_sent_for_a_name_in_every_mode_that_uses_tls() {
    let (_leaf, script) = ssl_server();
    for mode in [SslMode::Allow, SslMode::Prefer, SslMode::Require] {
        let t = run(&config(mode), Method::SslRequest, script.clone());
        assert_eq!(t.server_obs.sni.as_deref(), Some(HOST), "{mode}");
        assert_eq!(t.outcome.expect_tls().sni(), Some(HOST), "{mode}");
    }
}

#[test]
fn no_sni_for_ip_hosts_or_with_sslsni_off() {
    let (_leaf, script) = ssl_server();
    for host in ["127.0.0.1", "::1", "127.000.000.001", "192.0.2.1"] {
        let config = builder(host).sslmode(SslMode::Require).build().unwrap();
        let t = run(&config, Method::SslRequest, script.clone());
        assert_eq!(t.server_obs.sni, None, "{host}");
        let session = t.outcome.expect_tls();
        assert_eq!(session.sni(), None, "{host}");
    }
    let config = builder(HOST)
        .sslmode(SslMode::Require)
        .sni(false)
        .build()
        .unwrap();
    let t = run(&config, Method::SslRequest, script);
    assert_eq!(t.server_obs.sni, None);
    assert_eq!(t.outcome.expect_tls().sni(), None);
}

// ------------------------------------------------------------------------------------------
// `N`

#[test]
fn n_refuses_consuming_exactly_one_byte_and_leaves_the_rest() {
    let after = b"R\0\0\0\x08\0\0\0\0Z".to_vec();
    let script = ServerScript::plaintext_only().with_reply(Reply::NThenBytes(after.clone()));
    for chunks in CHUNKINGS {
        let opts = Drive::default().chunks(chunks);
        let t = drive(
            &config(SslMode::Prefer),
            Method::SslRequest,
            script.clone(),
            &opts,
        );
        assert_eq!(t.outcome.kind(), "refused", "{chunks:?}: {t:?}");
        assert_eq!(t.consumed, 1, "{chunks:?}");
        assert_eq!(t.leftover, after, "{chunks:?}");
        assert_eq!(t.client_all, SSL_REQUEST, "{chunks:?}");
    }
}

#[test]
fn n_through_the_api_directly() {
    let mut neg = Negotiation::new(&config(SslMode::Prefer), Method::SslRequest).unwrap();
    // Output is appended to the caller's BytesMut (after what it already holds).
    let mut out = bytes::BytesMut::from(&b"held"[..]);
    assert_eq!(neg.poll_output(&mut out).unwrap(), Output::Transmit(8));
    assert_eq!(out[..4], *b"held");
    assert_eq!(out[4..], SSL_REQUEST);
    out.clear();
    assert_eq!(neg.poll_output(&mut out).unwrap(), Output::Receive);
    assert!(out.is_empty());
    assert_eq!(neg.handle_input(&[]).unwrap(), 0);
    assert_eq!(neg.handle_input(b"Nxyz").unwrap(), 1);
    assert!(neg.is_done());
    // Nothing after `N` is consumed: it belongs to the plaintext protocol.
    assert_eq!(neg.handle_input(b"xyz").unwrap(), 0);
    assert_eq!(neg.poll_output(&mut out).unwrap(), Output::Done);
    assert_eq!(neg.poll_output(&mut out).unwrap(), Output::Done);
    assert!(out.is_empty());
    assert!(matches!(
        neg.into_negotiated().unwrap(),
        Negotiated::SslRefused
    ));
}

#[test]
fn n_under_require_fails_in_the_plan_and_continues_in_plaintext_under_prefer() {
    let mut plan = config(SslMode::Require).plan();
    assert_eq!(plan.poll_step(), Step::Connect(Method::SslRequest));
    plan.handle_attempt_end(AttemptEnd::SslRefused);
    match plan.poll_step() {
        Step::Fail(err) => assert_eq!(
            err.to_string(),
            "server does not support SSL, but SSL was required"
        ),
        other => panic!("{other:?}"),
    }
    let mut plan = config(SslMode::Prefer).plan();
    plan.handle_attempt_end(AttemptEnd::SslRefused);
    assert_eq!(plan.poll_step(), Step::Continue(Method::Plaintext));
}

// ------------------------------------------------------------------------------------------
// `E`, invalid bytes, bytes glued to `S`, EOF

#[test]
fn e_fails_in_every_mode_without_reading_the_message() {
    let script = ServerScript::plaintext_only().with_reply(Reply::E);
    for mode in [SslMode::Allow, SslMode::Prefer, SslMode::Require] {
        for chunks in CHUNKINGS {
            let opts = Drive::default().chunks(chunks);
            let t = drive(&config(mode), Method::SslRequest, script.clone(), &opts);
            assert_eq!(t.consumed, 0, "{mode} {chunks:?}");
            assert_eq!(t.client_all, SSL_REQUEST);
            assert!(t.last_gasp.is_empty());
            // The whole ErrorResponse is still there, unread.
            assert_eq!(t.leftover[0], b'E');
            assert!(parse_backend_messages(&t.leftover)
                .iter()
                .any(|(tag, _)| *tag == b'E'));
            let err = t.outcome.expect_err();
            assert!(
                matches!(err, Error::ServerErrorDuringSslExchange),
                "{err:?}"
            );
            assert_eq!(
                err.to_string(),
                "server sent an error response during SSL exchange"
            );
            assert!(!format!("{err:?}").contains("too many clients"));
            assert_eq!(err.blame(), Blame::Peer);
            assert!(!err.allows_fallback());
            let mut plan = config(mode).plan();
            if mode == SslMode::Allow {
                // allow's TLS attempt comes after a rejected plaintext startup.
                plan.handle_attempt_end(AttemptEnd::StartupRejected {
                    sqlstate: Some("28000".into()),
                    message: "no".into(),
                });
            }
            plan.handle_attempt_end(AttemptEnd::Failed(err));
            assert_eq!(
                plan.poll_step(),
                Step::Fail(Error::ServerErrorDuringSslExchange),
                "{mode}"
            );
        }
    }
}

#[test]
fn e_error_repeats_and_nothing_more_is_consumed() {
    let mut neg = Negotiation::new(&config(SslMode::Prefer), Method::SslRequest).unwrap();
    let mut out = [0u8; 16];
    assert_eq!(
        neg.poll_output_slice(&mut out).unwrap(),
        Output::Transmit(8)
    );
    let error =
        pgtls_testkit::fake_server::error_response("53300", "sorry, too many clients already");
    let err = neg.handle_input(&error).unwrap_err();
    assert!(matches!(err, Error::ServerErrorDuringSslExchange));
    let again = neg.handle_input(&error[1..]).unwrap_err();
    assert!(matches!(again, Error::ServerErrorDuringSslExchange));
    assert!(matches!(
        neg.handle_eof().unwrap_err(),
        Error::ServerErrorDuringSslExchange
    ));
    assert!(matches!(
        neg.poll_output_slice(&mut out).unwrap_err(),
        Error::ServerErrorDuringSslExchange
    ));
    assert!(neg.is_done());
    assert!(matches!(
        neg.into_negotiated().unwrap_err(),
        Error::ServerErrorDuringSslExchange
    ));
}

#[test]
fn invalid_response_byte() {
    for (byte, shown) in [(b'X', "X"), (b'H', "H"), (b's', "s"), (0x16, "\\x16")] {
        let script = ServerScript::replying(Reply::Byte(byte));
        let t = run(&config(SslMode::Prefer), Method::SslRequest, script);
        assert_eq!(t.consumed, 0);
        assert_eq!(t.client_all, SSL_REQUEST);
        let err = t.outcome.expect_err();
        assert!(matches!(err, Error::InvalidSslResponse(b) if b == byte));
        assert_eq!(
            err.to_string(),
            format!("received invalid response to SSL negotiation: {shown}")
        );
        assert!(!err.allows_fallback());
    }
}

#[test]
fn bytes_glued_to_s_are_refused_and_never_reach_tls() {
    let (_leaf, script) = ssl_server();
    // A plausible TLS record as the glued bytes: it must not be fed to rustls.
    let glued = vec![0x16, 0x03, 0x03, 0x00, 0x02, 0x02, 0x00];
    let script = script.with_reply(Reply::SThenBytes(glued.clone()));
    // Every chunking where `S` arrives together with at least one more byte.
    for chunks in [&[][..], &[2], &[0, 2], &[5, 1], &[0, 0, 100]] {
        let opts = Drive::default().chunks(chunks);
        let t = drive(
            &config(SslMode::Prefer),
            Method::SslRequest,
            script.clone(),
            &opts,
        );
        assert_eq!(t.consumed, 0, "{chunks:?}");
        // No ClientHello was sent: nothing after the SSLRequest, no alert.
        assert_eq!(t.client_all, SSL_REQUEST, "{chunks:?}");
        assert!(!t.server_obs.handshake_complete);
        let mut expected_leftover = vec![b'S'];
        expected_leftover.extend_from_slice(&glued);
        assert_eq!(t.leftover, expected_leftover);
        let err = t.outcome.expect_err();
        assert!(matches!(err, Error::UnencryptedDataAfterSslResponse));
        assert_eq!(
            err.to_string(),
            "received unencrypted data after SSL response"
        );
        assert_eq!(err.blame(), Blame::Peer);
        assert!(!err.allows_fallback());
    }
}

#[test]
fn close_after_ssl_request() {
    let script = ServerScript::replying(Reply::CloseAfterRequest);
    let t = run(&config(SslMode::Prefer), Method::SslRequest, script);
    assert!(t.events.contains(&Event::Eof));
    let err = t.outcome.expect_err();
    assert!(matches!(err, Error::ClosedBeforeSslResponse));
    assert_eq!(
        err.to_string(),
        "server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally\n\tbefore or while processing the request."
    );
    assert!(!err.allows_fallback());
}

#[test]
fn a_silent_server_leaves_the_client_waiting_without_spinning() {
    let script = ServerScript::replying(Reply::Silent);
    let t = run(&config(SslMode::Prefer), Method::SslRequest, script);
    assert_eq!(t.outcome.kind(), "stalled");
    assert_eq!(t.client_all, SSL_REQUEST);
    assert!(t.steps < 10, "{t:?}");
}

// ------------------------------------------------------------------------------------------
// TLS alerts and versions

#[test]
fn tls_1_2_server_requiring_a_client_certificate_we_do_not_have() {
    let client_ca = Ca::root("client ca");
    let leaf = server_leaf(LeafSpec::server(HOST));
    let opts = ServerTlsOptions {
        versions: vec![&rustls::version::TLS12],
        client_auth: ClientAuth::Required(vec![client_ca.root_der()]),
        ..ServerTlsOptions::default()
    };
    let t = run(
        &config(SslMode::Require),
        Method::SslRequest,
        ServerScript::tls(tls_server_with(&leaf, &opts)),
    );
    assert_eq!(
        t.server_obs.tls_error,
        Some(rustls::Error::NoCertificatesPresented)
    );
    let err = t.outcome.expect_err();
    assert_eq!(
        err.to_string(),
        "SSL error: received fatal alert: CertificateRequired"
    );
    assert!(matches!(
        err,
        Error::Tls(rustls::Error::AlertReceived(
            AlertDescription::CertificateRequired
        ))
    ));
    assert_eq!(err.blame(), Blame::Tls);
    assert!(err.allows_fallback());
}

#[test]
fn no_common_protocol_version() {
    let leaf = server_leaf(LeafSpec::server(HOST));
    let tls13_only = ServerTlsOptions {
        versions: vec![&rustls::version::TLS13],
        ..ServerTlsOptions::default()
    };
    let config = builder(HOST)
        .sslmode(SslMode::Require)
        .max_protocol_version(Some(TlsVersion::Tls1_2))
        .build()
        .unwrap();
    let t = run(
        &config,
        Method::SslRequest,
        ServerScript::tls(tls_server_with(&leaf, &tls13_only)),
    );
    let err = t.outcome.expect_err();
    assert_eq!(
        err.to_string(),
        "SSL error: received fatal alert: ProtocolVersion"
    );
    assert!(err.allows_fallback());

    let tls12_only = ServerTlsOptions {
        versions: vec![&rustls::version::TLS12],
        ..ServerTlsOptions::default()
    };
    let config = builder(HOST)
        .sslmode(SslMode::Require)
        .min_protocol_version(TlsVersion::Tls1_3)
        .build()
        .unwrap();
    let t = run(
        &config,
        Method::SslRequest,
        ServerScript::tls(tls_server_with(&leaf, &tls12_only)),
    );
    let err = t.outcome.expect_err();
    assert_eq!(
        err.to_string(),
        "SSL error: received fatal alert: ProtocolVersion"
    );
}

#[test]
fn max_protocol_version_below_tls_1_2_fails_under_require() {
    for max in [TlsVersion::Tls1_0, TlsVersion::Tls1_1] {
        let config = builder(HOST)
            .sslmode(SslMode::Require)
            .min_protocol_version(TlsVersion::Tls1_0)
            .max_protocol_version(Some(max))
            .build()
            .unwrap();
        let (_leaf, script) = ssl_server();
        let t = run(&config, Method::SslRequest, script);
        // The SSLRequest goes out; after `S` there is nothing to speak.
        assert_eq!(t.client_all, SSL_REQUEST);
        assert_eq!(t.consumed, 0);
        let err = t.outcome.expect_err();
        assert!(matches!(err, Error::NoProtocolsAvailable));
        assert_eq!(err.to_string(), "SSL error: no protocols available");
        let mut plan = config.plan();
        plan.handle_attempt_end(AttemptEnd::Failed(err));
        assert_eq!(plan.poll_step(), Step::Fail(Error::NoProtocolsAvailable));
    }
}

#[test]
fn max_protocol_version_below_tls_1_2_falls_back_to_plaintext_under_prefer() {
    let (_leaf, script) = ssl_server();
    let config = builder(HOST)
        .sslmode(SslMode::Prefer)
        .min_protocol_version(TlsVersion::Tls1_0)
        .max_protocol_version(Some(TlsVersion::Tls1_1))
        .build()
        .unwrap();
    let net = MemNetwork::same(script);
    let connected = connect(
        &config,
        None,
        |t| net.open(t),
        |s| net.startup(s, "alice", "app"),
    )
    .expect("prefer falls back to plaintext");
    assert!(!connected.stream.is_tls());
    assert_eq!(
        net.events(),
        [
            "connect",
            "sslrequest",
            "S",
            "tls-fail",
            "reconnect",
            "startup-plaintext",
            "authok"
        ]
    );
    let attempts: Vec<_> = connected
        .attempts
        .iter()
        .map(|a| (a.method, a.error.clone()))
        .collect();
    assert_eq!(
        attempts,
        [
            (
                Method::SslRequest,
                Some("SSL error: no protocols available".to_owned())
            ),
            (Method::Plaintext, None)
        ]
    );
    let obs = net.observations();
    assert_eq!(obs.len(), 2);
    assert!(!obs[1].startups[0].over_tls);
}

// ------------------------------------------------------------------------------------------
// Direct TLS and ALPN

#[test]
fn direct_tls_with_alpn() {
    let (_leaf, script) = ssl_server();
    for chunks in CHUNKINGS {
        let opts = Drive::default().chunks(chunks);
        let t = drive(&direct_config(), Method::DirectTls, script.clone(), &opts);
        // The ClientHello is the first byte on the wire.
        assert_eq!(t.client_all[0], 0x16, "{chunks:?}");
        assert_eq!(t.client_all[5], 0x01);
        assert!(t.server_obs.saw_direct);
        assert!(!t.server_obs.saw_ssl_request);
        assert_eq!(t.server_obs.alpn.as_deref(), Some(&b"postgresql"[..]));
        assert_eq!(t.server_obs.sni.as_deref(), Some(HOST));
        let session = t.outcome.expect_tls();
        assert_eq!(session.alpn_protocol(), Some(&b"postgresql"[..]));
    }
}

#[test]
fn direct_tls_without_alpn_fails() {
    let leaf = server_leaf(LeafSpec::server(HOST));
    let no_alpn = ServerTlsOptions {
        alpn: vec![],
        ..ServerTlsOptions::default()
    };
    let t = run(
        &direct_config(),
        Method::DirectTls,
        ServerScript::tls(tls_server_with(&leaf, &no_alpn)),
    );
    let err = t.outcome.expect_err();
    assert!(matches!(err, Error::AlpnNotNegotiated));
    assert_eq!(
        err.to_string(),
        "direct SSL connection was established without ALPN protocol negotiation extension"
    );
    assert_eq!(err.blame(), Blame::Policy);
}

#[test]
fn no_alpn_is_fine_after_sslrequest() {
    // A server before 17 selects no ALPN: libpq accepts that after SSLRequest.
    let leaf = server_leaf(LeafSpec::server(HOST));
    let no_alpn = ServerTlsOptions {
        alpn: vec![],
        ..ServerTlsOptions::default()
    };
    let t = run(
        &config(SslMode::Require),
        Method::SslRequest,
        ServerScript::pre17_tls(tls_server_with(&leaf, &no_alpn)),
    );
    assert_eq!(t.server_obs.alpn, None);
    assert_eq!(t.outcome.expect_tls().alpn_protocol(), None);
}

#[test]
fn a_server_with_another_alpn_protocol_refuses_the_handshake() {
    // rustls's server refuses a client whose ALPN list shares nothing with its own
    // (no_application_protocol), in both negotiations; a server selecting an unoffered
    // protocol would be refused by rustls's client before pgtls's own ALPN check.
    let leaf = server_leaf(LeafSpec::server(HOST));
    let h2 = ServerTlsOptions {
        alpn: vec![b"h2".to_vec()],
        ..ServerTlsOptions::default()
    };
    for (config, method) in [
        (config(SslMode::Require), Method::SslRequest),
        (direct_config(), Method::DirectTls),
    ] {
        let t = run(
            &config,
            method,
            ServerScript::tls(tls_server_with(&leaf, &h2)),
        );
        let err = t.outcome.expect_err();
        assert_eq!(
            err.to_string(),
            "SSL error: received fatal alert: NoApplicationProtocol",
            "{method:?}"
        );
    }
}

#[test]
fn unexpected_alpn_message() {
    // The message pgtls reports should a server select another protocol.
    assert_eq!(
        Error::UnexpectedAlpn(b"h2".to_vec()).to_string(),
        "SSL connection was established with unexpected ALPN protocol"
    );
}

#[test]
fn pre_17_server_closes_on_direct_tls() {
    let leaf = server_leaf(LeafSpec::server(HOST));
    let t = run(
        &direct_config(),
        Method::DirectTls,
        ServerScript::pre17_tls(tls_server(&leaf)),
    );
    assert!(t.server_obs.saw_direct);
    assert!(t.events.contains(&Event::Eof));
    let err = t.outcome.expect_err();
    assert!(matches!(err, Error::ClosedDuringHandshake));
    assert_eq!(err.to_string(), "SSL SYSCALL error: EOF detected");
    // No fallback from direct: require has nothing else to try.
    let mut plan = direct_config().plan();
    assert_eq!(plan.poll_step(), Step::Connect(Method::DirectTls));
    plan.handle_attempt_end(AttemptEnd::Failed(err));
    assert_eq!(plan.poll_step(), Step::Fail(Error::ClosedDuringHandshake));
}

#[test]
fn direct_with_a_weak_mode_is_a_config_error() {
    for mode in [SslMode::Disable, SslMode::Allow, SslMode::Prefer] {
        let err = builder(HOST)
            .sslmode(mode)
            .negotiation(SslNegotiation::Direct)
            .build()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("weak sslmode \"{mode}\" may not be used with sslnegotiation=direct (use \"require\", \"verify-ca\", or \"verify-full\")")
        );
    }
}

// ------------------------------------------------------------------------------------------
// Client certificates

fn client_cert_setup() -> (Ca, Leaf) {
    let client_ca = Ca::root("client ca");
    let client = client_ca.leaf(LeafSpec::client("alice"));
    (client_ca, client)
}

fn server_asking(client_ca: &Ca, required: bool) -> ServerScript {
    let leaf = server_leaf(LeafSpec::server(HOST));
    let roots = vec![client_ca.root_der()];
    let opts = ServerTlsOptions {
        client_auth: if required {
            ClientAuth::Required(roots)
        } else {
            ClientAuth::Optional(roots)
        },
        ..ServerTlsOptions::default()
    };
    ServerScript::tls(tls_server_with(&leaf, &opts))
}

#[test]
fn client_certificate_is_presented_when_asked() {
    let (client_ca, client) = client_cert_setup();
    for certmode in [SslCertMode::Allow, SslCertMode::Require] {
        let config = builder(HOST)
            .sslmode(SslMode::Require)
            .client_certificate(client.chain.clone(), client.key.clone_key())
            .certmode(certmode)
            .build()
            .unwrap();
        let t = run(&config, Method::SslRequest, server_asking(&client_ca, true));
        assert_eq!(t.server_obs.client_certs, client.chain, "{certmode}");
        assert_eq!(t.outcome.kind(), "tls", "{certmode}");
    }
}

#[test]
fn sslcertmode_disable_never_sends_the_certificate() {
    let (client_ca, client) = client_cert_setup();
    let config = builder(HOST)
        .sslmode(SslMode::Require)
        .client_certificate(client.chain.clone(), client.key.clone_key())
        .certmode(SslCertMode::Disable)
        .build()
        .unwrap();
    let t = run(
        &config,
        Method::SslRequest,
        server_asking(&client_ca, false),
    );
    assert_eq!(t.server_obs.client_certs, vec![]);
    assert_eq!(t.outcome.kind(), "tls");
}

#[test]
fn sslcertmode_require_with_a_server_that_does_not_ask() {
    let (_client_ca, client) = client_cert_setup();
    let (_leaf, script) = ssl_server();
    for with_cert in [true, false] {
        let mut b = builder(HOST)
            .sslmode(SslMode::Require)
            .certmode(SslCertMode::Require);
        if with_cert {
            b = b.client_certificate(client.chain.clone(), client.key.clone_key());
        }
        let t = run(&b.build().unwrap(), Method::SslRequest, script.clone());
        let err = t.outcome.expect_err();
        assert!(matches!(err, Error::CertificateNotRequested));
        assert_eq!(err.to_string(), "server did not request an SSL certificate");
        assert!(!err.allows_fallback());
    }
}

#[test]
fn tls13_client_certificate_rejection_surfaces_on_the_first_read() {
    let (client_ca, _client) = client_cert_setup();
    let config = config(SslMode::Require);
    let t = run(&config, Method::SslRequest, server_asking(&client_ca, true));
    // In TLS 1.3 the client finishes its handshake before the server looks at its
    // (empty) certificate: the negotiation succeeds.
    assert_eq!(t.server_obs.version, Some(ProtocolVersion::TLSv1_3));
    assert_eq!(
        t.server_obs.tls_error,
        Some(rustls::Error::NoCertificatesPresented)
    );
    let mut pair = t.into_session();
    let (data, end) = pair.receive();
    assert_eq!(data, b"");
    assert_eq!(
        end.message().as_deref(),
        Some("SSL error: received fatal alert: CertificateRequired")
    );
    let ReadEnd::Failed(err) = end else {
        unreachable!()
    };
    assert!(matches!(
        err,
        Error::Tls(rustls::Error::AlertReceived(
            AlertDescription::CertificateRequired
        ))
    ));
    // The failure sticks.
    assert_eq!(
        pair.session.handle_input(&[]).unwrap_err().to_string(),
        "SSL error: received fatal alert: CertificateRequired"
    );
    assert_eq!(
        pair.session
            .handle_application_data(b"x")
            .unwrap_err()
            .to_string(),
        "SSL error: received fatal alert: CertificateRequired"
    );
}

// ------------------------------------------------------------------------------------------
// The session

#[test]
fn application_data_both_ways() {
    let (_leaf, script) = ssl_server();
    let script = script.with_after_tls(AfterTls::Echo);
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    for chunks in [&[][..], &[1], &[0, 3, 1000], &[17_000]] {
        let opts = Drive::default()
            .chunks(chunks)
            .out_sizes(&[1000, 17_000, 5])
            .max_steps(1_000_000);
        let t = drive(
            &config(SslMode::Require),
            Method::SslRequest,
            script.clone(),
            &opts,
        );
        let mut pair = t.into_session();
        pair.send(&data).unwrap();
        let (received, end) = pair.receive();
        assert_eq!(end.kind(), "idle", "{chunks:?}: {:?}", end.message());
        assert_eq!(received.len(), data.len(), "{chunks:?}");
        assert!(received == data, "{chunks:?}");
        assert_eq!(pair.server.tls_plaintext_received(), &data[..]);
    }
}

#[test]
fn startup_over_the_session() {
    let (_leaf, script) = ssl_server();
    let t = run(&config(SslMode::Require), Method::SslRequest, script);
    let mut pair = t.into_session();
    pair.send(&startup_message("alice", "app")).unwrap();
    let (received, end) = pair.receive();
    assert_eq!(end.kind(), "idle");
    let tags: Vec<u8> = parse_backend_messages(&received)
        .iter()
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(tags, b"RZ");
    let startups = pair.server.startups();
    assert_eq!(startups.len(), 1);
    assert!(startups[0].over_tls);
    assert_eq!(startups[0].param("user"), Some("alice"));
}

#[test]
fn clean_close_notify_from_the_server() {
    let (_leaf, script) = ssl_server();
    let script = script.with_after_tls(AfterTls::CloseNotify);
    let t = run(&config(SslMode::Require), Method::SslRequest, script);
    let mut pair = t.into_session();
    let (data, end) = pair.receive();
    assert_eq!(data, b"");
    assert_eq!(end.kind(), "closed", "{:?}", end.message());
    let mut buf = [0u8; 16];
    assert_eq!(
        pair.session.poll_application_data(&mut buf).unwrap(),
        ApplicationData::Closed
    );
}

#[test]
fn unclean_eof_in_the_session() {
    let (_leaf, script) = ssl_server();
    let script = script.with_after_tls(AfterTls::Close);
    let t = run(&config(SslMode::Require), Method::SslRequest, script);
    let mut pair = t.into_session();
    let (data, end) = pair.receive();
    assert_eq!(data, b"");
    let ReadEnd::Failed(err) = end else {
        panic!("expected a failure, got {}", end.kind())
    };
    assert!(matches!(err, Error::UncleanEof));
    assert_eq!(
        err.to_string(),
        "SSL connection has been closed unexpectedly (no close_notify)"
    );
    assert_eq!(err.blame(), Blame::Peer);
}

#[test]
fn data_then_unclean_eof_delivers_the_data_first() {
    let (_leaf, script) = ssl_server();
    let script = script.with_after_tls(AfterTls::Greet(b"hello".to_vec()));
    let t = run(&config(SslMode::Require), Method::SslRequest, script);
    let mut pair = t.into_session();
    pair.server.close();
    let (data, end) = pair.receive();
    assert_eq!(data, b"hello");
    assert_eq!(
        end.message().as_deref(),
        Some("SSL connection has been closed unexpectedly (no close_notify)")
    );
}

#[test]
fn client_close_sends_close_notify() {
    let (_leaf, script) = ssl_server();
    let t = run(&config(SslMode::Require), Method::SslRequest, script);
    let mut pair = t.into_session();
    pair.session.close();
    assert!(pair.session.wants_output());
    assert!(pair.flush() > 0);
    assert!(pair.server.peer_sent_close_notify());
    // The server answers with its own close_notify: a clean close.
    let (_, end) = pair.receive();
    assert_eq!(end.kind(), "closed");
}

#[test]
fn garbage_after_the_handshake_is_a_tls_error_not_data() {
    let (_leaf, script) = ssl_server();
    let script = script.with_after_tls(AfterTls::Garbage(b"plain text!".to_vec()));
    let t = run(&config(SslMode::Require), Method::SslRequest, script);
    let mut pair = t.into_session();
    let (data, end) = pair.receive();
    assert_eq!(data, b"");
    assert_eq!(end.kind(), "failed");
    let message = end.message().unwrap();
    assert!(message.starts_with("SSL error: "), "{message}");
}

// ------------------------------------------------------------------------------------------
// Channel binding

#[test]
fn channel_binding_is_the_hash_of_the_leaf_der() {
    for (kind, expected) in [
        (KeyKind::EcdsaP256, "sha256"),
        (KeyKind::EcdsaP384, "sha384"),
    ] {
        // The leaf is signed by a CA with the same key kind, so its signature hash matches.
        let ca = Ca::root_with("cb root", kind);
        let leaf = ca.leaf(LeafSpec::server(HOST).key(kind));
        let t = run(
            &config(SslMode::Require),
            Method::SslRequest,
            ServerScript::tls(tls_server(&leaf)),
        );
        let session = t.outcome.expect_tls();
        let binding = session.channel_binding().expect("channel binding");
        let want = match expected {
            "sha256" => Sha256::digest(&leaf.cert).to_vec(),
            _ => Sha384::digest(&leaf.cert).to_vec(),
        };
        assert_eq!(binding, want, "{kind:?}");
    }
}

#[test]
fn channel_binding_is_unavailable_for_ed25519() {
    let ca = Ca::root_with("cb root", KeyKind::Ed25519);
    let leaf = ca.leaf(LeafSpec::server(HOST).key(KeyKind::Ed25519));
    let t = run(
        &config(SslMode::Require),
        Method::SslRequest,
        ServerScript::tls(tls_server(&leaf)),
    );
    let session = t.outcome.expect_tls();
    assert!(matches!(
        session.channel_binding(),
        Err(ChannelBindingError::UnsupportedSignatureAlgorithm { .. })
    ));
}

// ------------------------------------------------------------------------------------------
// Misuse and the last gasp

#[test]
fn into_negotiated_before_done_is_misuse() {
    let neg = Negotiation::new(&config(SslMode::Prefer), Method::SslRequest).unwrap();
    let err = neg.into_negotiated().unwrap_err();
    assert!(matches!(err, Error::Misuse(_)));
    assert_eq!(err.blame(), Blame::Misuse);
    assert_eq!(
        err.to_string(),
        "pgtls API misuse: the negotiation has not finished"
    );

    // Mid-handshake too.
    let (_leaf, script) = ssl_server();
    let mut server = pgtls_testkit::fake_server::FakeServer::new(script);
    let mut neg = Negotiation::new(&config(SslMode::Prefer), Method::SslRequest).unwrap();
    let mut out = vec![0u8; 17 * 1024];
    let Output::Transmit(n) = neg.poll_output_slice(&mut out).unwrap() else {
        panic!()
    };
    server.handle_client_bytes(&out[..n]).unwrap();
    assert_eq!(neg.handle_input(&server.take_output()).unwrap(), 1);
    let Output::Transmit(_) = neg.poll_output_slice(&mut out).unwrap() else {
        panic!("ClientHello expected")
    };
    assert_eq!(neg.poll_output_slice(&mut out).unwrap(), Output::Receive);
    assert!(!neg.is_done());
    assert!(matches!(neg.into_negotiated(), Err(Error::Misuse(_))));
}

#[test]
fn wrong_methods_are_misuse() {
    let err = Negotiation::new(&config(SslMode::Prefer), Method::DirectTls).unwrap_err();
    assert!(matches!(err, Error::Misuse(_)));
    let err = Negotiation::new(&direct_config(), Method::SslRequest).unwrap_err();
    assert!(matches!(err, Error::Misuse(_)));
    let err = Negotiation::new(&config(SslMode::Disable), Method::SslRequest).unwrap_err();
    assert!(matches!(err, Error::Misuse(_)));
    assert_eq!(
        err.to_string(),
        "pgtls API misuse: TLS attempt under sslmode=disable"
    );
}

#[test]
fn extra_calls_are_harmless() {
    let mut neg = Negotiation::new(&config(SslMode::Prefer), Method::SslRequest).unwrap();
    // An empty buffer while output waits is refused as misuse, and nothing is lost.
    let mut empty = [0u8; 0];
    assert!(matches!(
        neg.poll_output_slice(&mut empty),
        Err(Error::Misuse(_))
    ));
    let mut three = [0u8; 3];
    assert_eq!(
        neg.poll_output_slice(&mut three).unwrap(),
        Output::Transmit(3)
    );
    assert_eq!(three, SSL_REQUEST[..3]);
    assert!(matches!(
        neg.poll_output_slice(&mut empty),
        Err(Error::Misuse(_))
    ));
    let mut rest = [0u8; 100];
    assert_eq!(
        neg.poll_output_slice(&mut rest).unwrap(),
        Output::Transmit(5)
    );
    assert_eq!(rest[..5], SSL_REQUEST[3..]);
    for _ in 0..3 {
        assert_eq!(neg.poll_output_slice(&mut rest).unwrap(), Output::Receive);
        assert_eq!(neg.handle_input(&[]).unwrap(), 0);
    }
    assert!(!neg.is_done());

    // A plaintext attempt is done at once, however often asked.
    let mut plain = Negotiation::new(&config(SslMode::Prefer), Method::Plaintext).unwrap();
    for _ in 0..3 {
        assert_eq!(plain.poll_output_slice(&mut rest).unwrap(), Output::Done);
        assert_eq!(plain.handle_input(b"xyz").unwrap(), 0);
        plain.handle_eof().unwrap();
    }
    assert!(plain.is_done());
    assert!(matches!(
        plain.into_negotiated().unwrap(),
        Negotiated::Plaintext
    ));

    // After TLS is up, the negotiation consumes nothing more.
    let (_leaf, script) = ssl_server();
    let t = run(&config(SslMode::Prefer), Method::SslRequest, script);
    assert_eq!(t.outcome.kind(), "tls");
    let done = t.events.iter().filter(|e| **e == Event::Done).count();
    assert_eq!(done, 1);
}

#[test]
fn handle_input_after_a_failure_returns_the_error_again() {
    let script = ServerScript::replying(Reply::Byte(b'X'));
    let mut server = pgtls_testkit::fake_server::FakeServer::new(script);
    let mut neg = Negotiation::new(&config(SslMode::Prefer), Method::SslRequest).unwrap();
    let mut out = [0u8; 8];
    assert_eq!(
        neg.poll_output_slice(&mut out).unwrap(),
        Output::Transmit(8)
    );
    server.handle_client_bytes(&out).unwrap();
    let reply = server.take_output();
    let first = neg.handle_input(&reply).unwrap_err();
    for _ in 0..3 {
        let again = neg.handle_input(b"S").unwrap_err();
        assert_eq!(again.to_string(), first.to_string());
        assert_eq!(
            neg.poll_output_slice(&mut out).unwrap_err().to_string(),
            first.to_string()
        );
    }
    assert!(neg.is_done());
}

#[test]
fn the_last_gasp_alert_is_handed_out_after_an_error() {
    // The server signs with a key that is not its certificate's: the client's signature
    // check fails, rustls queues an alert, and the alert still reaches the server.
    let ca = Ca::root("last gasp root");
    let cert = ca.leaf(LeafSpec::server(HOST));
    let other = ca.leaf(LeafSpec::server(HOST));
    let mismatched = pgtls_testkit::fake_server::server_tls_config_with(
        cert.chain.clone(),
        other.key.clone_key(),
        &ServerTlsOptions::default(),
    );
    for outs in [&[][..], &[1], &[0, 3]] {
        let opts = Drive::default().out_sizes(outs);
        let t = drive(
            &config(SslMode::Prefer),
            Method::SslRequest,
            ServerScript::tls(mismatched.clone()),
            &opts,
        );
        // What rustls had queued: the compatibility ChangeCipherSpec, then the alert in an
        // encrypted TLS 1.3 record (content type application_data).
        assert_eq!(record_types(&t.last_gasp), [0x14, 0x17], "{outs:?}: {t:?}");
        assert_eq!(
            t.server_obs.tls_error,
            Some(rustls::Error::AlertReceived(AlertDescription::DecryptError)),
            "{outs:?}"
        );
        // Error, then the alert, then the error again and again.
        let failed = t
            .events
            .iter()
            .position(|e| matches!(e, Event::Failed(_)))
            .unwrap();
        assert!(t.events[failed + 1..]
            .iter()
            .all(|e| matches!(e, Event::LastGasp(_))));
        let err = t.outcome.expect_err();
        assert!(
            matches!(
                err,
                Error::Certificate {
                    problem: CertificateProblem::Signature,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.blame(), Blame::Tls);
        assert!(err.allows_fallback());
    }
}

/// The content types of the TLS records in `bytes` (which must be whole records).
fn record_types(mut bytes: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    while bytes.len() >= 5 {
        let len = usize::from(u16::from_be_bytes([bytes[3], bytes[4]]));
        types.push(bytes[0]);
        bytes = &bytes[(5 + len).min(bytes.len())..];
    }
    assert!(bytes.is_empty(), "a partial record");
    types
}

// ------------------------------------------------------------------------------------------
// Cancel requests

#[test]
fn cancel_request_bytes_and_a_cancel_connection_over_tls() {
    let packet = pgtls::wire::cancel_request(4242, &[1, 2, 3, 4]).unwrap();
    assert_eq!(
        packet,
        [0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0x10, 0x92, 1, 2, 3, 4]
    );
    let long_key = [0xA5u8; 32];
    let long = pgtls::wire::cancel_request(7, &long_key).unwrap();
    assert_eq!(
        &long[..12],
        &[0, 0, 0, 44, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0, 7]
    );
    assert_eq!(&long[12..], &long_key);
    assert_eq!(
        pgtls::wire::cancel_request(7, &[1, 2, 3])
            .unwrap_err()
            .to_string(),
        "pgtls API misuse: a cancel key must be between 4 and 256 bytes long"
    );

    // libpq 17+ sends the cancel over a connection negotiated with the same settings.
    let (_leaf, script) = ssl_server();
    let config = config(SslMode::Require);
    let t = run(&config, Method::SslRequest, script);
    assert_eq!(t.client_before_reply, SSL_REQUEST);
    let mut pair = t.into_session();
    pair.send(&long).unwrap();
    assert_eq!(pair.server.tls_plaintext_received(), &long[..]);
}

// ------------------------------------------------------------------------------------------
// Edge cases of the contract

#[test]
fn a_reply_offered_before_the_ssl_request_is_out_does_not_truncate_it() {
    // A caller that reads while writing (a select loop) may offer a byte before the whole
    // SSLRequest was handed out. The request must still go out whole, before any TLS byte:
    // the byte is either kept for later (0 consumed) or acted on only after the request.
    let mut neg = Negotiation::new(&config(SslMode::Require), Method::SslRequest).unwrap();
    let mut three = [0u8; 3];
    assert_eq!(
        neg.poll_output_slice(&mut three).unwrap(),
        Output::Transmit(3)
    );
    let mut wire = three.to_vec();
    let early = neg.handle_input(b"S").unwrap();
    let mut out = vec![0u8; 17 * 1024];
    let mut polls = Vec::new();
    for _ in 0..4 {
        let poll = neg.poll_output_slice(&mut out).unwrap();
        polls.push(poll);
        match poll {
            Output::Transmit(n) => wire.extend_from_slice(&out[..n]),
            _ => break,
        }
    }
    assert_eq!(&wire[..8], &SSL_REQUEST, "the SSLRequest was cut short");
    if early == 0 {
        // Kept: the request is out, now the byte is taken and TLS starts.
        assert_eq!(wire, SSL_REQUEST, "{polls:?}");
        assert_eq!(neg.handle_input(b"S").unwrap(), 1);
        let Output::Transmit(n) = neg.poll_output_slice(&mut out).unwrap() else {
            panic!("a ClientHello was expected");
        };
        assert_eq!((out[0], out[5], n > 100), (0x16, 0x01, true));
    } else {
        assert_eq!((wire[8], wire[13]), (0x16, 0x01));
    }
}

#[test]
fn no_application_data_after_close() {
    let (_leaf, script) = ssl_server();
    let script = script.with_after_tls(AfterTls::Echo);
    let t = run(&config(SslMode::Require), Method::SslRequest, script);
    let mut pair = t.into_session();
    pair.session.close();
    pair.flush();
    assert!(pair.server.peer_sent_close_notify());
    // Nothing may follow close_notify: the session refuses more plaintext.
    let late = pair.session.handle_application_data(b"late data");
    assert!(
        matches!(late, Err(Error::Misuse(_)) | Ok(0)),
        "plaintext accepted after close_notify: {late:?}"
    );
    assert_eq!(pair.flush(), 0, "records sent after close_notify");
}

#[test]
fn sslcertmode_require_without_a_certificate_when_the_server_asks() {
    // libpq (fe-auth.c, check_expected_areq): under sslcertmode=require the server must
    // have asked *and* a certificate must have been sent, else
    // "server accepted connection without a valid SSL certificate" (no fallback).
    let (client_ca, _client) = client_cert_setup();
    let config = builder(HOST)
        .sslmode(SslMode::Require)
        .certmode(SslCertMode::Require)
        .build()
        .unwrap();
    let t = run(
        &config,
        Method::SslRequest,
        server_asking(&client_ca, false),
    );
    let err = t.outcome.expect_err();
    assert!(matches!(err, Error::CertificateNotSent), "{err:?}");
    assert_eq!(
        err.to_string(),
        "server accepted connection without a valid SSL certificate"
    );
    assert!(!err.allows_fallback());
}

#[test]
fn another_host_from_the_same_config_sends_its_own_sni() {
    let (_leaf, script) = ssl_server();
    let first = config(SslMode::Require);
    let second = first.with_host("replica.example.com").unwrap();
    let t = run(&second, Method::SslRequest, script.clone());
    assert_eq!(t.server_obs.sni.as_deref(), Some("replica.example.com"));
    assert_eq!(t.outcome.expect_tls().sni(), Some("replica.example.com"));
    let t = run(&first, Method::SslRequest, script);
    assert_eq!(t.server_obs.sni.as_deref(), Some(HOST));
}

// ------------------------------------------------------------------------------------------
// The blocking adapter over the in-memory transport

mod blocking_adapter {
    use std::io::{Read, Write};

    use pgtls::blocking::{negotiate, Attempt, ConnectError, Stream};

    use super::*;
    use pgtls_testkit::fake_server::FakeServer;
    use pgtls_testkit::pair::MemTransport;

    #[test]
    fn bytes_after_n_come_first_from_the_plain_stream() {
        let script =
            ServerScript::plaintext_only().with_reply(Reply::NThenBytes(b"hello".to_vec()));
        for reads in [&[][..], &[1], &[3, 1]] {
            let transport = MemTransport::new(FakeServer::new(script.clone()), reads);
            let conn = transport.conn();
            let Ok(Attempt::Refused(mut plain)) =
                negotiate(&config(SslMode::Prefer), Method::SslRequest, transport)
            else {
                panic!("N expected");
            };
            let mut got = Vec::new();
            let mut buf = [0u8; 2];
            while got.len() < 5 {
                let n = plain.read(&mut buf).unwrap();
                assert!(n > 0);
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(got, b"hello", "{reads:?}");
            assert_eq!(conn.borrow().written, SSL_REQUEST);
        }
    }

    #[test]
    fn bytes_glued_to_s_never_reach_the_stream() {
        let (_leaf, script) = ssl_server();
        let script = script.with_reply(Reply::SThenBytes(b"hello".to_vec()));
        let transport = MemTransport::new(FakeServer::new(script), &[]);
        let conn = transport.conn();
        let err = match negotiate(&config(SslMode::Prefer), Method::SslRequest, transport) {
            Err(ConnectError::Tls(err)) => err,
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("a stream came out of S + glued bytes"),
        };
        assert!(matches!(err, Error::UnencryptedDataAfterSslResponse));
        assert_eq!(conn.borrow().written, SSL_REQUEST);
    }

    #[test]
    fn a_silent_server_times_out_instead_of_hanging() {
        let net = MemNetwork::same(ServerScript::replying(Reply::Silent));
        let failed = connect(
            &config(SslMode::Prefer),
            None,
            |t| net.open(t),
            |s| net.startup(s, "alice", "app"),
        )
        .unwrap_err();
        assert_eq!(failed.error.to_string(), "timeout expired");
        assert!(failed.try_next_host);
        assert_eq!(net.events(), ["connect", "sslrequest", "timeout"]);
    }

    #[test]
    fn a_large_echo_through_the_blocking_tls_stream() {
        let (_leaf, script) = ssl_server();
        let script = script.with_after_tls(AfterTls::Echo);
        let transport = MemTransport::new(FakeServer::new(script), &[1000, 7, 17_000]);
        let Ok(Attempt::Ready(mut stream)) =
            negotiate(&config(SslMode::Require), Method::SslRequest, transport)
        else {
            panic!("TLS expected");
        };
        assert!(stream.is_tls());
        // More than the session's outgoing limit in one write_all.
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        stream.write_all(&data).unwrap();
        stream.flush().unwrap();
        let mut got = vec![0u8; data.len()];
        stream.read_exact(&mut got).unwrap();
        assert!(got == data);
        let Stream::Tls(tls) = &stream else {
            unreachable!()
        };
        assert_eq!(
            tls.get_ref()
                .conn()
                .borrow()
                .server
                .tls_plaintext_received()
                .len(),
            200_000
        );
    }
}

/// A transport that answers `S` and then fails with a reset, as a dying server would.
struct ResetAfterS {
    answered: bool,
}

impl std::io::Read for ResetAfterS {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.answered {
            return Err(std::io::ErrorKind::ConnectionReset.into());
        }
        self.answered = true;
        buf[0] = b'S';
        Ok(1)
    }
}

impl std::io::Write for ResetAfterS {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl pgtls::blocking::Deadline for ResetAfterS {
    fn set_io_timeout(&mut self, _: Option<std::time::Duration>) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_transport_failure_mid_handshake_is_a_tls_failure_for_the_plan() {
    // libpq: "SSL SYSCALL error: ..." is a failed TLS attempt; prefer goes on in plaintext.
    let config = config(SslMode::Prefer);
    let err = match pgtls::blocking::negotiate(
        &config,
        Method::SslRequest,
        ResetAfterS { answered: false },
    ) {
        Err(pgtls::blocking::ConnectError::Tls(err)) => err,
        Err(other) => panic!("expected a TLS failure, got {other}"),
        Ok(_) => panic!("the handshake cannot succeed"),
    };
    assert!(matches!(err, Error::HandshakeTransport(_)), "{err:?}");
    assert!(err.to_string().starts_with("SSL SYSCALL error: "), "{err}");
    assert!(err.allows_fallback());
    let mut plan = config.plan();
    plan.handle_attempt_end(pgtls::plan::AttemptEnd::Failed(err));
    assert_eq!(
        plan.poll_step(),
        pgtls::plan::Step::Connect(Method::Plaintext)
    );
}
