//! Fuzz bodies (feature `fuzzing`): each takes arbitrary bytes and must never panic,
//! hang or grow without bound. The cargo-fuzz targets in `fuzz/` call these, and
//! `tests/fuzz_corpus.rs` replays the committed corpus through them on stable Rust.
//!
//! Expensive setup (providers, configs) is built once per process.

use std::sync::{Arc, OnceLock};

use crate::plan::{AttemptEnd, Method, Plan, Transport};
use crate::{ApplicationData, Config, Negotiated, Negotiation, Output, SslMode, SslNegotiation};

/// A cursor over fuzz input that hands out small decisions.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// One config per (sslmode, negotiation, sni) built once: no roots, so every TLS mode
/// but verify-* is reachable; verify-* use a root set with no certificates.
fn configs() -> &'static Vec<Config> {
    static CONFIGS: OnceLock<Vec<Config>> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let mut out = Vec::new();
        for mode in SslMode::ALL {
            for negotiation in [SslNegotiation::Postgres, SslNegotiation::Direct] {
                let roots = if mode.requires_verification() {
                    crate::RootCertificates::Certificates(Vec::new())
                } else {
                    crate::RootCertificates::None
                };
                let built = Config::builder()
                    .sslmode(mode)
                    .negotiation(negotiation)
                    .host("db.example.com")
                    .root_certificates(roots)
                    .build();
                if let Ok(config) = built {
                    out.push(config);
                }
            }
        }
        out
    })
}

/// The SSLRequest response decoder on every byte of the input.
pub fn response_byte(data: &[u8]) {
    for &b in data {
        let _ = crate::wire::decode_ssl_response(b);
    }
}

/// The whole client machine fed arbitrary server bytes with fuzz-chosen chunking and
/// output buffer sizes, for every sslmode and negotiation.
pub fn client_machine(data: &[u8]) {
    let mut input = Input { data };
    let configs = configs();
    let config = &configs[usize::from(input.byte()) % configs.len()];
    let mut plan = config.plan();
    let method = match plan.poll_step() {
        crate::plan::Step::Connect(m) => m,
        _ => return,
    };
    let Ok(mut attempt) = Negotiation::new(config, method) else {
        return;
    };
    let mut out = vec![0u8; 20 * 1024];
    let mut steps = 0usize;
    let mut failed = None;
    while steps < 10_000 {
        steps += 1;
        let out_len = (usize::from(input.byte()) * 67) % out.len();
        match attempt.poll_output_slice(&mut out[..out_len]) {
            Ok(Output::Transmit(n)) => assert!(n <= out_len, "transmit beyond the buffer"),
            // An empty buffer while output waits: refused, nothing lost.
            Err(crate::Error::Misuse(_)) if out_len == 0 => {}
            Ok(Output::Done) => break,
            Ok(Output::Receive) => {
                if input.is_empty() {
                    failed = attempt.handle_eof().err();
                    if failed.is_some() {
                        break;
                    }
                    continue;
                }
                let chunk_len = usize::from(input.byte());
                let chunk = input.take(chunk_len);
                match attempt.handle_input(chunk) {
                    Ok(consumed) => assert!(consumed <= chunk.len()),
                    Err(err) => {
                        failed = Some(err);
                        break;
                    }
                }
            }
            Err(err) => {
                failed = Some(err);
                break;
            }
        }
    }
    if let Some(err) = failed {
        // The last gasp is bounded; then the error comes back.
        for _ in 0..64 {
            match attempt.poll_output_slice(&mut out) {
                Ok(Output::Transmit(_)) => continue,
                _ => break,
            }
        }
        let _ = err.to_string();
        plan.handle_attempt_end(AttemptEnd::Failed(err));
        let _ = plan.poll_step();
        return;
    }
    match attempt.into_negotiated() {
        Ok(Negotiated::Tls(mut session)) => drive_session(&mut session, &mut input, &mut out),
        Ok(Negotiated::SslRefused) => {
            plan.handle_attempt_end(AttemptEnd::SslRefused);
            let _ = plan.poll_step();
        }
        Ok(Negotiated::Plaintext) => {}
        Err(err) => {
            let _ = err.to_string();
        }
    }
}

fn drive_session(session: &mut crate::Session, input: &mut Input<'_>, out: &mut [u8]) {
    let _ = session.channel_binding();
    for _ in 0..10_000 {
        if input.is_empty() {
            let _ = session.handle_eof();
            let _ = session.poll_application_data(out);
            return;
        }
        match input.byte() % 4 {
            0 => {
                let n = usize::from(input.byte());
                let chunk = input.take(n);
                if session.handle_input(chunk).is_err() {
                    let _ = session.poll_output_slice(out);
                    return;
                }
            }
            1 => {
                let _ = session.poll_application_data(out);
            }
            2 => {
                let n = usize::from(input.byte());
                let _ = session.handle_application_data(input.take(n));
                let _ = session.poll_output_slice(out);
            }
            _ => session.close(),
        }
    }
}

/// Arbitrary call sequences on the public API: misuse gives typed errors, never panics.
pub fn call_sequence(data: &[u8]) {
    let mut input = Input { data };
    let configs = configs();
    let config = &configs[usize::from(input.byte()) % configs.len()];
    let method = match input.byte() % 3 {
        0 => Method::Plaintext,
        1 => Method::SslRequest,
        _ => Method::DirectTls,
    };
    let mut plan = Plan::new(
        config.sslmode(),
        config.negotiation(),
        if input.byte() % 2 == 0 {
            Transport::Tcp
        } else {
            Transport::UnixSocket
        },
    );
    let Ok(mut attempt) = Negotiation::new(config, method) else {
        return;
    };
    let mut out = [0u8; 512];
    for _ in 0..512 {
        if input.is_empty() {
            break;
        }
        match input.byte() % 8 {
            0 => {
                let n = usize::from(input.byte() % 32);
                let _ = attempt.handle_input(input.take(n));
            }
            1 => {
                let _ = attempt.handle_eof();
            }
            2 => {
                let n = usize::from(input.byte()) % out.len();
                let _ = attempt.poll_output_slice(&mut out[..n]);
            }
            3 => {
                let _ = attempt.is_done();
            }
            4 => plan.handle_attempt_end(AttemptEnd::SslRefused),
            5 => plan.handle_attempt_end(AttemptEnd::StartupRejected {
                sqlstate: Some(
                    if input.byte() % 2 == 0 {
                        "57P03"
                    } else {
                        "28000"
                    }
                    .into(),
                ),
                message: String::new(),
            }),
            6 => plan.handle_attempt_end(AttemptEnd::Established),
            _ => {
                let _ = plan.poll_step();
            }
        }
    }
    if let Ok(Negotiated::Tls(mut session)) = attempt.into_negotiated() {
        let mut buf = [0u8; 64];
        let _ = session.poll_application_data(&mut buf);
        if let Ok(ApplicationData::Data(n)) = session.poll_application_data(&mut buf) {
            assert!(n <= buf.len());
        }
    }
}

/// libpq's host-name rules on arbitrary certificate DER and host strings.
pub fn host_name(data: &[u8]) {
    let mut input = Input { data };
    let host_len = usize::from(input.byte());
    let host = String::from_utf8_lossy(input.take(host_len)).into_owned();
    let der = input.data;
    let _ = crate::verify::fuzz_check_host_name(der, &host);
    let _ = crate::verify::parse_host_ip(&host);
    let _ = crate::verify::sni_allowed(&host);
}

/// Channel-binding computation on arbitrary DER.
pub fn channel_binding(data: &[u8]) {
    let _ = crate::tls_server_end_point(data);
}

/// PEM/DER certificate, CRL and key loading, and trust-store construction.
pub fn credentials(data: &[u8]) {
    use rustls::pki_types::{CertificateDer, CertificateRevocationListDer};
    let _ = crate::RootCertificates::from_pem(data);
    let cert = CertificateDer::from(data.to_vec());
    let crl = CertificateRevocationListDer::from(data.to_vec());
    let _ = crate::verify::store_from_root_file(std::slice::from_ref(&cert), &[crl], None);
    let _ = crate::verify::subject_public_key_info(&cert);
    let provider = provider();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(data.to_vec().into());
    let _ = provider.key_provider.load_private_key(key);
}

fn provider() -> &'static Arc<rustls::crypto::CryptoProvider> {
    static PROVIDER: OnceLock<Arc<rustls::crypto::CryptoProvider>> = OnceLock::new();
    PROVIDER.get_or_init(|| {
        configs()
            .iter()
            .find_map(|c| c.rustls_config().map(|r| r.crypto_provider().clone()))
            .expect("a TLS config exists")
    })
}

/// Connection-string and URI parsing, environment resolution, and the render/parse
/// round trip.
pub fn conninfo(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(params) = crate::libpq::ConnParams::parse(text) else {
        return;
    };
    let rendered = params.to_connection_string();
    let reparsed =
        crate::libpq::ConnParams::parse(&rendered).expect("a rendered connection string parses");
    assert_eq!(
        params, reparsed,
        "render/parse round trip changed the settings"
    );
    let env = crate::libpq::Environment::empty().with_os_user("fuzz");
    if let Ok(settings) = params.resolve(&env) {
        let _ = settings.hosts();
    }
}

/// A fixed self-signed P-256 server certificate and key (CN and SAN `fuzz.example.com`,
/// valid for a century) for the acceptor target: a public test key, never use it elsewhere.
const FUZZ_SERVER_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBqTCCAVCgAwIBAgIUIOXYBb6e62Y4KUTVfKjaXX+zWkAwCgYIKoZIzj0EAwIw
GzEZMBcGA1UEAwwQZnV6ei5leGFtcGxlLmNvbTAgFw0yNjExMjYxMDI3MjNaGA8y
MTI2MTEwMjEwMjcyM1owGzEZMBcGA1UEAwwQZnV6ei5leGFtcGxlLmNvbTBZMBMG
ByqGSM49AgEGCCqGSM49AwEHA0IABKG+8AzyJhAcPq/H7ThMudDDATin5HX2u/ER
WFE26/XCAHF6cvZ4iTUTneXKKf20hPtmWYV7wQ4zb9nAmSPktiajcDBuMB0GA1Ud
DgQWBBR+UOE/GFcAQ0+1QnHmE3KhyCorzjAfBgNVHSMEGDAWgBR+UOE/GFcAQ0+1
QnHmE3KhyCorzjAPBgNVHRMBAf8EBTADAQH/MBsGA1UdEQQUMBKCEGZ1enouZXhh
bXBsZS5jb20wCgYIKoZIzj0EAwIDRwAwRAIgAr2YYPIsWSNAW0/sLZCFqF4dyiMY
oSgPIWlbw8V6JcsCIH+qpWLcddCN0E55zFSLuZzX9fqAkiaOAS4/rkFd4f3o
-----END CERTIFICATE-----
";
const FUZZ_SERVER_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg+317dZETZstisaFE
Fd2Z9AqNZA6GUSYZEN//GW194yihRANCAAShvvAM8iYQHD6vx+04TLnQwwE4p+R1
9rvxEVhRNuv1wgBxenL2eIk1E53lyin9tIT7ZlmFe8EOM2/ZwJkj5LYm
-----END PRIVATE KEY-----
";

/// Every acceptor policy: no TLS, require (with and without direct), allow (with and
/// without direct).
fn acceptor_configs() -> &'static Vec<crate::server::AcceptorConfig> {
    use crate::server::{AcceptorConfig, ServerTls};
    static CONFIGS: OnceLock<Vec<AcceptorConfig>> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let tls = ServerTls::from_pem(FUZZ_SERVER_CERT.as_bytes(), FUZZ_SERVER_KEY.as_bytes())
            .expect("the fuzz certificate loads");
        vec![
            AcceptorConfig::plaintext_only(),
            AcceptorConfig::require_tls(tls.clone()),
            AcceptorConfig::require_tls(tls.clone()).with_direct_tls(false),
            AcceptorConfig::allow_plaintext(tls.clone()),
            AcceptorConfig::allow_plaintext(tls).with_direct_tls(false),
        ]
    })
}

/// The server-side acceptor, two ways (the first byte's low bit chooses):
///
/// - **raw**: arbitrary client bytes with fuzz-chosen chunking and output buffer sizes,
///   for every policy (seed it with SSLRequests, startups, cancels and recorded
///   ClientHellos);
/// - **live**: a real pgtls client negotiates TLS with the acceptor, then sends arbitrary
///   bytes inside TLS as its first packet (the parsing behind the handshake).
///
/// Never panics, never stalls (no progress on offered input is a crash), output stays
/// within the buffers given, and an accepted StartupMessage parses again.
pub fn acceptor(data: &[u8]) {
    let mut input = Input { data };
    let selector = input.byte();
    let configs = acceptor_configs();
    let config = &configs[usize::from(selector >> 1) % configs.len()];
    let mut acceptor = crate::server::Acceptor::new(config);
    let mut out = vec![0u8; 20 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    if selector & 1 == 1 && !live_client_prefix(&mut acceptor, &mut input, &mut pending, &mut out) {
        return;
    }
    let mut failed = false;
    for _ in 0..10_000 {
        // Once the input is used up, full buffers (so that the run ends).
        let out_len = match input.is_empty() {
            true => out.len(),
            false => (usize::from(input.byte()) * 67) % out.len(),
        };
        match acceptor.poll_output_slice(&mut out[..out_len]) {
            Ok(Output::Transmit(n)) => assert!(n <= out_len, "transmit beyond the buffer"),
            // An empty buffer while output waits: refused, nothing lost.
            Err(crate::server::AcceptError::Misuse(_)) if out_len == 0 => {}
            Ok(Output::Done) => break,
            Ok(Output::Receive) => {
                if pending.is_empty() {
                    if input.is_empty() {
                        if acceptor.handle_eof().is_err() {
                            failed = true;
                            break;
                        }
                        continue;
                    }
                    let n = usize::from(input.byte());
                    pending.extend_from_slice(input.take(n));
                }
                match acceptor.handle_input(&pending) {
                    Ok(n) => {
                        assert!(n <= pending.len());
                        assert!(n > 0 || pending.is_empty(), "the acceptor stalled");
                        pending.drain(..n);
                    }
                    Err(_) => failed = true,
                }
            }
            Err(err) => {
                let _ = (err.to_string(), err.blame(), err.sqlstate());
                failed = true;
                break;
            }
        }
    }
    if failed {
        // The last words are bounded; then the error comes back.
        for _ in 0..64 {
            match acceptor.poll_output_slice(&mut out) {
                Ok(Output::Transmit(_)) => continue,
                _ => break,
            }
        }
    }
    let Ok(accepted) = acceptor.into_accepted() else {
        return;
    };
    match &accepted.packet {
        crate::server::FirstPacket::Startup(startup) => {
            let reparsed = crate::server::StartupMessage::parse(startup.as_bytes())
                .expect("an accepted StartupMessage parses again");
            assert_eq!(&reparsed, startup);
            let _ = (
                startup.parameters().count(),
                startup.user(),
                startup.database(),
            );
        }
        crate::server::FirstPacket::Cancel(cancel) => {
            assert_eq!(cancel.to_bytes().len(), 12 + cancel.secret_key().len());
        }
    }
    if let Some(mut session) = accepted.session {
        assert!(session.is_server());
        if let Some(sni) = session.sni() {
            let _ = crate::server::endpoint_from_sni(sni, "example.com");
        }
        drive_session(&mut session, &mut input, &mut out);
    }
}

/// Runs a real client (sslmode=require, no roots) through the TLS handshake with the
/// acceptor; then queues the fuzz input's next bytes, encrypted, as the client's first
/// packet. Returns false when the policy refused the client before that.
fn live_client_prefix(
    acceptor: &mut crate::server::Acceptor,
    input: &mut Input<'_>,
    pending: &mut Vec<u8>,
    out: &mut [u8],
) -> bool {
    let direct = input.byte() & 1 == 1;
    let (negotiation, method) = if direct {
        (SslNegotiation::Direct, Method::DirectTls)
    } else {
        (SslNegotiation::Postgres, Method::SslRequest)
    };
    let Some(config) = configs()
        .iter()
        .find(|c| c.sslmode() == SslMode::Require && c.negotiation() == negotiation)
    else {
        return false;
    };
    let Ok(mut client) = Negotiation::new(config, method) else {
        return false;
    };
    let mut c2s: Vec<u8> = Vec::new();
    let mut s2c: Vec<u8> = Vec::new();
    for _ in 0..1_000 {
        let mut progress = false;
        match client.poll_output_slice(out) {
            Ok(Output::Transmit(n)) => {
                c2s.extend_from_slice(&out[..n]);
                progress = true;
            }
            Ok(Output::Done) => break,
            Ok(_) => {}
            Err(_) => return false,
        }
        match acceptor.poll_output_slice(out) {
            Ok(Output::Transmit(n)) => {
                s2c.extend_from_slice(&out[..n]);
                progress = true;
            }
            Ok(_) => {}
            Err(_) => return false,
        }
        if !c2s.is_empty() {
            match acceptor.handle_input(&c2s) {
                Ok(n) => {
                    progress |= n > 0;
                    c2s.drain(..n);
                }
                Err(_) => return false,
            }
        }
        if !s2c.is_empty() {
            match client.handle_input(&s2c) {
                Ok(n) => {
                    progress |= n > 0;
                    s2c.drain(..n);
                }
                Err(_) => return false,
            }
        }
        if !progress {
            return false;
        }
    }
    let Ok(Negotiated::Tls(mut session)) = client.into_negotiated() else {
        return false;
    };
    // The client's Finished (and anything else) first, then the fuzz bytes as data.
    pending.extend_from_slice(&c2s);
    let n = usize::from(input.byte()) * 8;
    let first = input.take(n);
    let _ = session.handle_application_data(first);
    while let Ok(Output::Transmit(n)) = session.poll_output_slice(out) {
        pending.extend_from_slice(&out[..n]);
    }
    true
}

/// A server's chain and the client's trust material, as DER: what the verifier fuzz
/// targets (`fuzz/fuzz_targets/verifier*.rs`) generate and hand to [`verify_chain`].
#[derive(Debug, Clone, Copy)]
pub struct ChainInput<'a> {
    /// The certificates of the root file (`sslrootcert`).
    pub root_file: &'a [rustls::pki_types::CertificateDer<'static>],
    /// The CRLs (`sslcrl`); CRL checking is on when any parses, as in libpq.
    pub crls: &'a [rustls::pki_types::CertificateRevocationListDer<'static>],
    /// The server's certificate.
    pub end_entity: &'a rustls::pki_types::CertificateDer<'static>,
    /// The rest of what the server sends, in its order.
    pub intermediates: &'a [rustls::pki_types::CertificateDer<'static>],
    /// The host name verify-full checks.
    pub host: &'a str,
    /// The verification time, seconds since the Unix epoch.
    pub now_unix: u64,
}

/// pgtls's verdicts on one chain in every sslmode that checks the chain (`Err` holds
/// the message the connection would fail with).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainVerdicts {
    /// `require` with a root file (libpq then verifies as verify-ca does).
    pub require: Result<(), String>,
    /// `verify-ca`.
    pub verify_ca: Result<(), String>,
    /// `verify-full` against [`ChainInput::host`].
    pub verify_full: Result<(), String>,
}

/// The prefix of every chain error (OpenSSL's wording, as libpq reports it).
pub const CHAIN_ERROR_PREFIX: &str = "SSL error: certificate verify failed: ";

/// Verifies a chain the way a connection would in require (with roots), verify-ca and
/// verify-full, through the verifier's `verify_server_cert`, and checks what must hold
/// between the modes: require and verify-ca agree, verify-full accepts only what
/// verify-ca accepts, and chain errors carry OpenSSL's wording.
///
/// # Errors
/// The root file or CRLs were refused when the trust store was built (the connection
/// fails before any handshake): the configuration error's message.
pub fn verify_chain(input: &ChainInput<'_>) -> Result<ChainVerdicts, String> {
    use crate::verify::{store_from_root_file, ChainPolicy, LibpqVerifier};
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{ServerName, UnixTime};

    let store =
        store_from_root_file(input.root_file, input.crls, None).map_err(|err| err.to_string())?;
    let chain = ChainPolicy::Store(Arc::new(store));
    let algorithms = provider().signature_verification_algorithms;
    let server_name = ServerName::try_from(input.host.to_owned())
        .unwrap_or_else(|_| ServerName::try_from("db.example.com").expect("a valid name"));
    let now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(input.now_unix));
    // The same verifier settings the Config builder makes for each mode (config.rs):
    // a root file makes require verify the chain; only verify-full checks the host.
    let verdict = |host: Option<String>| {
        LibpqVerifier::new(chain.clone(), host, algorithms)
            .verify_server_cert(
                input.end_entity,
                input.intermediates,
                &server_name,
                &[],
                now,
            )
            .map(|_| ())
            .map_err(|err| crate::error::from_rustls(err).to_string())
    };
    let verdicts = ChainVerdicts {
        require: verdict(None),
        verify_ca: verdict(None),
        verify_full: verdict(Some(input.host.to_owned())),
    };
    assert_eq!(
        verdicts.require, verdicts.verify_ca,
        "require with a root file must verify exactly as verify-ca"
    );
    if verdicts.verify_full.is_ok() {
        assert!(
            verdicts.verify_ca.is_ok(),
            "verify-full accepted a chain verify-ca rejects: {verdicts:?}"
        );
    }
    if let Err(message) = &verdicts.verify_ca {
        assert!(
            message.starts_with(CHAIN_ERROR_PREFIX),
            "a chain error without OpenSSL's prefix: {message}"
        );
    }
    if let (Ok(()), Err(message)) = (&verdicts.verify_ca, &verdicts.verify_full) {
        assert!(
            !message.contains(CHAIN_ERROR_PREFIX) && !message.is_empty(),
            "verify-full failed on the chain verify-ca accepted: {message}"
        );
    }
    Ok(verdicts)
}

/// The reason part of a chain error (after [`CHAIN_ERROR_PREFIX`]), for comparing with
/// OpenSSL's `X509_verify_cert_error_string`.
pub fn chain_error_reason(message: &str) -> &str {
    match message.find(CHAIN_ERROR_PREFIX) {
        Some(at) => &message[at + CHAIN_ERROR_PREFIX.len()..],
        None => message,
    }
}
