//! Bringing your own rustls pieces: a caller's `ServerCertVerifier` (it decides trust under
//! verify-ca/verify-full, pgtls still decides what happens after a rejection), a caller's
//! `rustls::ClientConfig` as the starting point, the key-exchange group preference and the
//! group a session used.
//!
//! In memory against a scripted server first; then against real PostgreSQL 15 and 18 with
//! their default group settings, counting the ClientHellos pgtls sends (a second one means
//! the server answered with a HelloRetryRequest). Skips the real-server part with a notice
//! when PostgreSQL is not installed; fails instead with `PGTLS_REQUIRE_SERVERS=1`.

mod support;

use pgtls_testkit::pg;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pgtls::blocking::{connect, Deadline, StartupError, Stream};
use pgtls::plan::Method;
use pgtls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use pgtls::rustls::crypto::{aws_lc_rs, CryptoProvider, SupportedKxGroup};
use pgtls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use pgtls::rustls::{
    self, CertificateError, ClientConfig, DigitallySignedStruct, NamedGroup, OtherError,
    ServerConfig, SignatureScheme,
};
use pgtls::{
    Blame, CertificateProblem, Config, ConfigBuilder, ConfigError, Error, RootCertificates, SslMode,
};

use pgtls_testkit::certs::{Ca, Leaf, LeafSpec};
use pgtls_testkit::fake_server::{
    default_server_tls_config, server_tls_config_with, ClientAuth, ServerScript, ServerTlsOptions,
};
use pgtls_testkit::pair::{drive, Drive, MemNetwork};

const HOST: &str = "db.example.com";

// ------------------------------------------------------------------------------------------
// Verifiers

/// What a test verifier saw.
#[derive(Debug, Default)]
struct Seen {
    calls: AtomicUsize,
    end_entity: Mutex<Option<CertificateDer<'static>>>,
    server_name: Mutex<Option<String>>,
}

/// A caller's verifier: rejects with `reject` (when set) or accepts any chain; handshake
/// signatures are checked with the provider's algorithms either way.
#[derive(Debug)]
struct TestVerifier {
    reject: Option<fn() -> rustls::Error>,
    seen: Arc<Seen>,
    provider: Arc<CryptoProvider>,
}

impl TestVerifier {
    fn accepting() -> (Arc<Self>, Arc<Seen>) {
        Self::new(None)
    }

    fn rejecting(reject: fn() -> rustls::Error) -> (Arc<Self>, Arc<Seen>) {
        Self::new(Some(reject))
    }

    fn new(reject: Option<fn() -> rustls::Error>) -> (Arc<Self>, Arc<Seen>) {
        let seen = Arc::new(Seen::default());
        let verifier = TestVerifier {
            reject,
            seen: seen.clone(),
            provider: Arc::new(aws_lc_rs::default_provider()),
        };
        (Arc::new(verifier), seen)
    }
}

impl ServerCertVerifier for TestVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.seen.calls.fetch_add(1, Ordering::SeqCst);
        *self.seen.end_entity.lock().unwrap() = Some(end_entity.clone().into_owned());
        *self.seen.server_name.lock().unwrap() = Some(server_name.to_str().into_owned());
        match self.reject {
            Some(reject) => Err(reject()),
            None => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A pinning failure, as a caller's verifier would report it.
#[derive(Debug)]
struct PinMismatch;

impl std::fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("public key is not the pinned one")
    }
}

impl std::error::Error for PinMismatch {}

fn pin_mismatch() -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(PinMismatch))))
}

// ------------------------------------------------------------------------------------------
// Fixtures

fn server_leaf(host: &str) -> Leaf {
    Ca::root("bring-your-own test root").leaf(LeafSpec::server(host))
}

fn tls_script(leaf: &Leaf) -> ServerScript {
    ServerScript::tls(default_server_tls_config(
        leaf.chain.clone(),
        leaf.key.clone_key(),
    ))
}

fn builder() -> ConfigBuilder {
    Config::builder().host(HOST)
}

/// Runs libpq's whole plan against a fresh in-memory server per connection.
fn connect_in_memory(
    config: &Config,
    script: ServerScript,
) -> (Result<bool, Box<pgtls::blocking::Failed>>, Vec<String>) {
    let net = MemNetwork::same(script);
    let result = connect(
        config,
        None,
        |t| net.open(t),
        |s| net.startup(s, "alice", "app"),
    )
    .map(|connected| connected.stream.is_tls());
    (result, net.events())
}

/// The TLS error a failed plan ended with.
#[track_caller]
fn tls_error(failed: &pgtls::blocking::Failed) -> &Error {
    match &failed.error {
        pgtls::blocking::ConnectError::Tls(err) => err,
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

// ------------------------------------------------------------------------------------------
// A caller's verifier

#[test]
fn a_rejecting_verifier_fails_verify_full_with_its_error_and_policy_as_pgtls_own() {
    let leaf = server_leaf(HOST);
    let (verifier, seen) = TestVerifier::rejecting(pin_mismatch);
    // No root certificates: the caller's verifier is the trust source.
    let config = builder()
        .sslmode(SslMode::VerifyFull)
        .server_cert_verifier(verifier)
        .build()
        .expect("verify-full with a verifier needs no roots");
    let err = drive(
        &config,
        Method::SslRequest,
        tls_script(&leaf),
        &Drive::default(),
    )
    .outcome
    .expect_err();
    assert_eq!(seen.calls.load(Ordering::SeqCst), 1);
    assert!(
        matches!(
            err,
            Error::Certificate {
                problem: CertificateProblem::Chain,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "SSL error: certificate verify failed: public key is not the pinned one"
    );
    assert_eq!(err.blame(), Blame::Tls);
    assert!(err.allows_fallback());
    assert_eq!(
        seen.end_entity.lock().unwrap().as_ref(),
        Some(&leaf.chain[0])
    );
    assert_eq!(seen.server_name.lock().unwrap().as_deref(), Some(HOST));

    // The whole plan: the same events as when pgtls's own verifier rejects the chain.
    let (own, own_events) = connect_in_memory(
        &builder()
            .sslmode(SslMode::VerifyFull)
            .root_certificates(RootCertificates::Certificates(vec![Ca::root(
                "another root",
            )
            .cert_der()]))
            .build()
            .unwrap(),
        tls_script(&leaf),
    );
    let (custom, custom_events) = connect_in_memory(&config, tls_script(&leaf));
    let own = own.expect_err("pgtls's own verifier rejects");
    let custom = custom.expect_err("the caller's verifier rejects");
    assert_eq!(custom_events, own_events);
    assert!(
        !custom_events.iter().any(|e| e.contains("plaintext")),
        "verify-full never falls back to plaintext: {custom_events:?}"
    );
    let (own, custom) = (tls_error(&own), tls_error(&custom));
    assert_eq!(own.blame(), custom.blame());
    assert_eq!(own.allows_fallback(), custom.allows_fallback());
    assert_eq!(custom.to_string(), err.to_string());
    assert_eq!(seen.calls.load(Ordering::SeqCst), 2);
}

#[test]
fn weak_modes_keep_libpq_semantics_and_never_consult_the_verifier() {
    let leaf = server_leaf(HOST);
    for mode in [SslMode::Allow, SslMode::Prefer, SslMode::Require] {
        let (verifier, seen) = TestVerifier::rejecting(pin_mismatch);
        let config = builder()
            .sslmode(mode)
            .server_cert_verifier(verifier)
            .build()
            .unwrap();
        assert!(!config.verifies_chain(), "{mode}");
        let (result, events) = connect_in_memory(&config, tls_script(&leaf));
        // allow: plaintext first, which the scripted server accepts (as libpq).
        let tls = result.unwrap_or_else(|f| panic!("{mode}: {}", f.error));
        assert_eq!(tls, mode != SslMode::Allow, "{mode}: {events:?}");
        assert_eq!(seen.calls.load(Ordering::SeqCst), 0, "{mode}");
    }
    // prefer with root certificates checks the chain against them, as libpq with root.crt:
    // a failure falls back to plaintext on a new connection; the verifier is still unused.
    let (verifier, seen) = TestVerifier::rejecting(pin_mismatch);
    let config = builder()
        .sslmode(SslMode::Prefer)
        .root_certificates(RootCertificates::Certificates(vec![Ca::root(
            "another root",
        )
        .cert_der()]))
        .server_cert_verifier(verifier)
        .build()
        .unwrap();
    let (result, events) = connect_in_memory(&config, tls_script(&leaf));
    assert!(!result.expect("prefer falls back"), "{events:?}");
    assert!(
        events.contains(&"startup-plaintext".to_owned()),
        "{events:?}"
    );
    assert_eq!(seen.calls.load(Ordering::SeqCst), 0);
}

#[test]
fn an_accepting_verifier_accepts_what_pgtls_rejects() {
    // A certificate for another name, from a CA nobody configured.
    let leaf = server_leaf("other.example.org");
    let own = builder()
        .sslmode(SslMode::VerifyFull)
        .root_certificates(RootCertificates::Certificates(vec![Ca::root(
            "another root",
        )
        .cert_der()]))
        .build()
        .unwrap();
    let err = drive(
        &own,
        Method::SslRequest,
        tls_script(&leaf),
        &Drive::default(),
    )
    .outcome
    .expect_err();
    assert_eq!(err.blame(), Blame::Tls, "{err}");

    for mode in [SslMode::VerifyCa, SslMode::VerifyFull] {
        let (verifier, seen) = TestVerifier::accepting();
        let config = builder()
            .sslmode(mode)
            .server_cert_verifier(verifier)
            .build()
            .unwrap();
        let session = drive(
            &config,
            Method::SslRequest,
            tls_script(&leaf),
            &Drive::default(),
        )
        .outcome
        .expect_tls();
        assert_eq!(session.peer_certificates(), leaf.chain.as_slice(), "{mode}");
        assert_eq!(seen.calls.load(Ordering::SeqCst), 1, "{mode}");
    }
}

#[test]
fn a_verifiers_name_mismatch_is_a_host_name_failure() {
    let leaf = server_leaf(HOST);
    let (verifier, _) = TestVerifier::rejecting(|| {
        rustls::Error::InvalidCertificate(CertificateError::NotValidForName)
    });
    let config = builder()
        .sslmode(SslMode::VerifyFull)
        .server_cert_verifier(verifier)
        .build()
        .unwrap();
    assert!(config.verifies_chain());
    let err = drive(
        &config,
        Method::SslRequest,
        tls_script(&leaf),
        &Drive::default(),
    )
    .outcome
    .expect_err();
    assert!(
        matches!(
            err,
            Error::Certificate {
                problem: CertificateProblem::HostName,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("SSL error: certificate verify failed: "),
        "{err}"
    );
}

#[test]
fn verify_ca_without_roots_needs_a_verifier() {
    let err = builder().sslmode(SslMode::VerifyCa).build().unwrap_err();
    assert!(
        matches!(err, ConfigError::NoRootCertificates { .. }),
        "{err}"
    );
    let (verifier, _) = TestVerifier::accepting();
    builder()
        .sslmode(SslMode::VerifyCa)
        .server_cert_verifier(verifier)
        .build()
        .expect("the verifier is the trust source");
}

// ------------------------------------------------------------------------------------------
// Starting from a rustls ClientConfig

/// A key log that counts the secrets it is given.
#[derive(Debug, Default)]
struct CountingKeyLog(AtomicUsize);

impl rustls::KeyLog for CountingKeyLog {
    fn log(&self, _label: &str, _client_random: &[u8], _secret: &[u8]) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// aws-lc-rs with one TLS 1.3 cipher suite and the groups in an order that would cost a
/// HelloRetryRequest against PostgreSQL ≤ 17 (post-quantum hybrid first, P-256 last).
fn custom_provider() -> CryptoProvider {
    let mut provider = aws_lc_rs::default_provider();
    provider.cipher_suites = vec![aws_lc_rs::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256];
    provider.kx_groups = vec![
        aws_lc_rs::kx_group::X25519MLKEM768,
        aws_lc_rs::kx_group::X25519,
        aws_lc_rs::kx_group::SECP384R1,
        aws_lc_rs::kx_group::SECP256R1,
    ];
    provider
}

fn group_names(config: &ClientConfig) -> Vec<NamedGroup> {
    config
        .crypto_provider()
        .kx_groups
        .iter()
        .map(|g| g.name())
        .collect()
}

#[test]
fn starting_from_a_client_config_keeps_its_provider_and_replaces_what_libpq_decides() {
    let key_log = Arc::new(CountingKeyLog::default());
    let mut base = ClientConfig::builder_with_provider(Arc::new(custom_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    base.alpn_protocols = vec![b"h2".to_vec()];
    base.enable_sni = false;
    base.key_log = key_log.clone();
    base.enable_early_data = true;

    let config = builder()
        .sslmode(SslMode::Require)
        .rustls_client_config(base)
        .build()
        .unwrap();
    let tls = config.rustls_config().unwrap();
    assert_eq!(
        tls.crypto_provider().cipher_suites,
        vec![aws_lc_rs::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256],
        "the provider is kept"
    );
    assert_eq!(
        group_names(tls),
        [
            NamedGroup::secp256r1,
            NamedGroup::X25519MLKEM768,
            NamedGroup::X25519,
            NamedGroup::secp384r1
        ],
        "same groups, P-256 first"
    );
    assert_eq!(tls.alpn_protocols, vec![b"postgresql".to_vec()]);
    assert!(tls.enable_sni, "libpq's sslsni rule: on for a host name");
    assert!(!tls.enable_early_data);

    let leaf = server_leaf(HOST);
    let transcript = drive(
        &config,
        Method::SslRequest,
        tls_script(&leaf),
        &Drive::default(),
    );
    assert_eq!(transcript.server_obs.sni.as_deref(), Some(HOST));
    let session = transcript.outcome.expect_tls();
    assert_eq!(
        session.cipher_suite().map(|s| s.suite()),
        Some(rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256)
    );
    assert_eq!(session.key_exchange_group(), Some(NamedGroup::secp256r1));
    assert!(
        key_log.0.load(Ordering::SeqCst) > 0,
        "the base config's key log is kept"
    );

    // Options given to the builder win over the base config's; versions are pgtls's.
    let mut base = ClientConfig::builder_with_provider(Arc::new(custom_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    base.key_log = key_log.clone();
    let config = builder()
        .sslmode(SslMode::Require)
        .rustls_client_config(base)
        .crypto_provider(Arc::new(aws_lc_rs::default_provider()))
        .max_protocol_version(Some(pgtls::TlsVersion::Tls1_2))
        .build()
        .unwrap();
    let session = drive(
        &config,
        Method::SslRequest,
        tls_script(&leaf),
        &Drive::default(),
    )
    .outcome
    .expect_tls();
    assert_eq!(
        session.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    assert_eq!(session.key_exchange_group(), Some(NamedGroup::secp256r1));
}

#[test]
fn a_kept_resumption_store_resumes_only_under_the_config_that_made_the_session() {
    let leaf = server_leaf(HOST);
    // One server config for every connection: its session cache makes TLS 1.3 tickets.
    let server = default_server_tls_config(leaf.chain.clone(), leaf.key.clone_key());
    let handshake = |config: &Config| {
        let transcript = drive(
            config,
            Method::SslRequest,
            ServerScript::tls(server.clone()),
            &Drive::default(),
        );
        let mut driver = transcript.into_session();
        let _ = driver.receive(); // takes the tickets in
        driver
            .session
            .into_rustls()
            .handshake_kind()
            .expect("handshake done")
    };
    // libpq never resumes, and neither does pgtls on its own.
    let own = builder().sslmode(SslMode::Require).build().unwrap();
    assert_eq!(handshake(&own), rustls::HandshakeKind::Full);
    assert_eq!(handshake(&own), rustls::HandshakeKind::Full);

    let mut base = ClientConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    base.resumption = rustls::client::Resumption::in_memory_sessions(16);
    let base = Arc::new(base);
    let require = builder()
        .sslmode(SslMode::Require)
        .rustls_client_config(base.clone())
        .build()
        .unwrap();
    let (verifier, seen) = TestVerifier::accepting();
    let verify_full = builder()
        .sslmode(SslMode::VerifyFull)
        .rustls_client_config(base)
        .server_cert_verifier(verifier)
        .build()
        .unwrap();
    assert_eq!(handshake(&require), rustls::HandshakeKind::Full);
    assert_eq!(
        handshake(&require),
        rustls::HandshakeKind::Resumed,
        "the caller's store is kept"
    );
    assert_eq!(
        handshake(&verify_full),
        rustls::HandshakeKind::Full,
        "a session made under require is never resumed under verify-full"
    );
    assert_eq!(seen.calls.load(Ordering::SeqCst), 1);
}

#[test]
fn the_base_configs_client_certificate_is_sent_and_sslcertmode_still_applies() {
    let client_ca = Ca::root("bring-your-own client root");
    let client = client_ca.leaf(LeafSpec::client("alice"));
    let leaf = server_leaf(HOST);
    let server = ServerTlsOptions {
        client_auth: ClientAuth::Optional(vec![client_ca.cert_der()]),
        ..ServerTlsOptions::default()
    };
    let script = || {
        ServerScript::tls(server_tls_config_with(
            leaf.chain.clone(),
            leaf.key.clone_key(),
            &server,
        ))
    };
    let base = Arc::new(
        ClientConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_client_auth_cert(client.chain.clone(), client.key.clone_key())
            .unwrap(),
    );
    for (certmode, sent) in [
        (pgtls::SslCertMode::Allow, true),
        (pgtls::SslCertMode::Require, true),
        (pgtls::SslCertMode::Disable, false),
    ] {
        let config = builder()
            .sslmode(SslMode::Require)
            .certmode(certmode)
            .rustls_client_config(base.clone())
            .build()
            .unwrap();
        let transcript = drive(&config, Method::SslRequest, script(), &Drive::default());
        assert_eq!(
            transcript.server_obs.client_certs.first(),
            sent.then_some(&client.chain[0]),
            "{certmode}: {transcript:?}"
        );
        transcript.outcome.expect_tls();
    }
}

// ------------------------------------------------------------------------------------------
// Key-exchange groups

/// How many ClientHellos the client sent: after the 8-byte SSLRequest, every plaintext
/// handshake record that holds a whole ClientHello (a second one answers a
/// HelloRetryRequest). Stops at the first application-data record.
fn client_hellos(client_bytes: &[u8]) -> usize {
    let mut rest = client_bytes.get(8..).unwrap_or_default();
    let mut hellos = 0;
    while rest.len() >= 5 {
        let content_type = rest[0];
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        let Some(body) = rest.get(5..5 + len) else {
            break;
        };
        if content_type == 0x17 {
            break;
        }
        if content_type == 0x16 && body.len() >= 4 && body[0] == 0x01 {
            let msg_len = u32::from_be_bytes([0, body[1], body[2], body[3]]) as usize;
            if msg_len + 4 == body.len() {
                hellos += 1;
            }
        }
        rest = &rest[5 + len..];
    }
    hellos
}

/// A rustls server (aws-lc-rs) offering only `groups`, like PostgreSQL's `ssl_groups`.
fn server_with_groups(leaf: &Leaf, groups: &[&'static dyn SupportedKxGroup]) -> ServerScript {
    let mut provider = aws_lc_rs::default_provider();
    provider.kx_groups = groups.to_vec();
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(leaf.chain.clone(), leaf.key.clone_key())
        .unwrap();
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    ServerScript::tls(Arc::new(config))
}

#[test]
fn default_order_sends_one_client_hello_to_a_p256_only_server_and_reports_the_group() {
    let leaf = server_leaf(HOST);
    let p256_only = || server_with_groups(&leaf, &[aws_lc_rs::kx_group::SECP256R1]);
    let cases: [(&str, ConfigBuilder, usize); 4] = [
        ("default provider", builder(), 1),
        (
            "caller's provider, P-256 last",
            builder().crypto_provider(Arc::new(custom_provider())),
            1,
        ),
        (
            "explicit X25519 first",
            builder().key_exchange_groups(&[NamedGroup::X25519, NamedGroup::secp256r1]),
            2,
        ),
        (
            "explicit hybrid first",
            builder().key_exchange_groups(&[NamedGroup::X25519MLKEM768, NamedGroup::secp256r1]),
            2,
        ),
    ];
    for (what, builder, hellos) in cases {
        let config = builder.sslmode(SslMode::Require).build().unwrap();
        let transcript = drive(&config, Method::SslRequest, p256_only(), &Drive::default());
        assert_eq!(client_hellos(&transcript.client_all), hellos, "{what}");
        let session = transcript.outcome.expect_tls();
        assert_eq!(
            session.key_exchange_group(),
            Some(NamedGroup::secp256r1),
            "{what}"
        );
    }
}

#[test]
fn a_required_post_quantum_group_is_used_or_the_handshake_fails() {
    let leaf = server_leaf(HOST);
    let config = builder()
        .sslmode(SslMode::Require)
        .key_exchange_groups(&[NamedGroup::X25519MLKEM768])
        .build()
        .unwrap();
    let transcript = drive(
        &config,
        Method::SslRequest,
        server_with_groups(
            &leaf,
            &[
                aws_lc_rs::kx_group::X25519,
                aws_lc_rs::kx_group::X25519MLKEM768,
            ],
        ),
        &Drive::default(),
    );
    assert_eq!(client_hellos(&transcript.client_all), 1);
    let session = transcript.outcome.expect_tls();
    assert_eq!(
        session.key_exchange_group(),
        Some(NamedGroup::X25519MLKEM768)
    );

    // A server without it: the TLS attempt fails (and falls back like any TLS failure).
    let err = drive(
        &config,
        Method::SslRequest,
        server_with_groups(&leaf, &[aws_lc_rs::kx_group::SECP256R1]),
        &Drive::default(),
    )
    .outcome
    .expect_err();
    assert_eq!(err.blame(), Blame::Tls, "{err}");
    assert!(err.allows_fallback());
}

#[test]
fn a_group_the_provider_lacks_is_a_clear_config_error() {
    let mut provider = aws_lc_rs::default_provider();
    provider.kx_groups = vec![aws_lc_rs::kx_group::SECP256R1, aws_lc_rs::kx_group::X25519];
    let err = builder()
        .crypto_provider(Arc::new(provider))
        .key_exchange_groups(&[NamedGroup::X25519MLKEM768])
        .build()
        .unwrap_err();
    assert!(
        matches!(
            &err,
            ConfigError::UnsupportedKeyExchangeGroup { group, available }
                if *group == NamedGroup::X25519MLKEM768
                    && available == &[NamedGroup::secp256r1, NamedGroup::X25519]
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "key exchange group \"X25519MLKEM768\" is not supported by the crypto provider (it has: secp256r1, X25519)"
    );
    // The same under sslmode=disable, where no TLS is ever used.
    let mut provider = aws_lc_rs::default_provider();
    provider.kx_groups = vec![aws_lc_rs::kx_group::SECP256R1];
    let err = builder()
        .sslmode(SslMode::Disable)
        .crypto_provider(Arc::new(provider))
        .key_exchange_groups(&[NamedGroup::X25519])
        .build()
        .unwrap_err();
    assert!(
        matches!(err, ConfigError::UnsupportedKeyExchangeGroup { .. }),
        "{err}"
    );
    let err = builder().key_exchange_groups(&[]).build().unwrap_err();
    assert!(matches!(err, ConfigError::NoKeyExchangeGroups), "{err}");
}

// ------------------------------------------------------------------------------------------
// Real servers: PostgreSQL 15 and 18 with their default groups

/// A TCP stream that keeps a copy of everything the client writes.
struct Recording {
    stream: TcpStream,
    sent: Arc<Mutex<Vec<u8>>>,
}

impl Read for Recording {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf)
    }
}

impl Write for Recording {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.stream.write(buf)?;
        self.sent.lock().unwrap().extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

impl Deadline for Recording {
    fn set_io_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream.set_io_timeout(timeout)
    }
}

/// One measured connection: ClientHellos sent, the group used, the server's view of it.
#[derive(Debug)]
struct Measured {
    hellos: usize,
    group: Option<NamedGroup>,
}

fn measure(server: &pg::PgServer, builder: ConfigBuilder) -> Measured {
    let config = builder
        .host("localhost")
        .sslmode(SslMode::Require)
        .build()
        .unwrap();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let port = server.port;
    let params = support::startup::StartupParams {
        user: pg::SUPERUSER.to_owned(),
        database: "postgres".to_owned(),
        password: None,
        application_name: Some("pgtls-bring-your-own".to_owned()),
        channel_binding: support::startup::ChannelBindingMode::Disable,
    };
    let connected = connect(
        &config,
        Some(Duration::from_secs(10)),
        |_| {
            sent.lock().unwrap().clear();
            Ok(Recording {
                stream: TcpStream::connect(("127.0.0.1", port))?,
                sent: sent.clone(),
            })
        },
        |stream: &mut Stream<Recording>| {
            let facts = support::startup::TlsFacts {
                tls: stream.is_tls(),
                channel_binding: None,
            };
            support::startup::run_startup(stream, &params, &facts)
                .map_err(|err| StartupError::Fatal(err.to_string().into()))
        },
    )
    .unwrap_or_else(|failed| panic!("{}: {}", server.version(), failed.error));
    let group = connected
        .stream
        .session()
        .expect("a TLS session")
        .key_exchange_group();
    let hellos = client_hellos(&sent.lock().unwrap());
    Measured { hellos, group }
}

#[test]
fn key_share_order_against_postgresql_15_and_18_defaults() {
    if !pg::servers_available() {
        eprintln!("{}", pg::SKIP_NOTICE);
        return;
    }
    for version in pg::PgVersion::ALL {
        let Some(install) = pg::install_or_skip(version) else {
            continue;
        };
        let leaf = Ca::root("bring-your-own real-server root").leaf(LeafSpec::server("localhost"));
        let server = pg::PgServer::start(
            &install,
            Some(pg::ServerTls::new(leaf.chain_pem(), leaf.key_pem.clone())),
            pg::Hba::HostSslOnly,
        )
        .expect("start server");
        // The servers run with their defaults.
        let (setting, default) = match version {
            pg::PgVersion::V15 => ("ssl_ecdh_curve", "prime256v1"),
            _ => ("ssl_groups", "X25519:prime256v1"),
        };
        assert_eq!(server.show(setting).unwrap().trim(), default, "{version}");

        #[cfg_attr(not(feature = "ring"), allow(unused_mut))]
        let mut cases: Vec<(&str, ConfigBuilder)> = vec![
            ("default provider", Config::builder()),
            (
                "caller's provider (hybrid first, P-256 last)",
                Config::builder().crypto_provider(Arc::new(custom_provider())),
            ),
            (
                "caller's rustls ClientConfig with that provider",
                Config::builder().rustls_client_config(
                    ClientConfig::builder_with_provider(Arc::new(custom_provider()))
                        .with_protocol_versions(&[&rustls::version::TLS13])
                        .unwrap()
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth(),
                ),
            ),
        ];
        #[cfg(feature = "ring")]
        cases.push((
            "ring",
            Config::builder().crypto_provider(Arc::new(rustls::crypto::ring::default_provider())),
        ));
        for (what, builder) in cases {
            let measured = measure(&server, builder);
            eprintln!("{version} {what}: {measured:?}");
            assert_eq!(measured.hellos, 1, "{version} {what}: a HelloRetryRequest");
            assert_eq!(
                measured.group,
                Some(NamedGroup::secp256r1),
                "{version} {what}"
            );
        }

        // rustls's own order (X25519 first) and a hybrid first: what P-256 first avoids.
        let x25519_first = measure(
            &server,
            Config::builder().key_exchange_groups(&[
                NamedGroup::X25519,
                NamedGroup::secp256r1,
                NamedGroup::secp384r1,
            ]),
        );
        eprintln!("{version} X25519 first: {x25519_first:?}");
        let hybrid_first = measure(
            &server,
            Config::builder().key_exchange_groups(&[
                NamedGroup::X25519MLKEM768,
                NamedGroup::X25519,
                NamedGroup::secp256r1,
            ]),
        );
        eprintln!("{version} X25519MLKEM768 first: {hybrid_first:?}");
        match version {
            pg::PgVersion::V15 => {
                assert_eq!(x25519_first.hellos, 2, "PostgreSQL 15 has only P-256");
                assert_eq!(x25519_first.group, Some(NamedGroup::secp256r1));
                assert_eq!(hybrid_first.hellos, 2);
                assert_eq!(hybrid_first.group, Some(NamedGroup::secp256r1));
            }
            _ => {
                assert_eq!(x25519_first.hellos, 1, "PostgreSQL 18 prefers X25519");
                assert_eq!(x25519_first.group, Some(NamedGroup::X25519));
                // The hybrid's X25519 half is sent as a second key share.
                assert_eq!(hybrid_first.hellos, 1);
                assert_eq!(hybrid_first.group, Some(NamedGroup::X25519));
            }
        }
    }
}
