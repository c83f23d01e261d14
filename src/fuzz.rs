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
/// round trip; the same bytes as a service file and as a password file.
pub fn conninfo(data: &[u8]) {
    use crate::libpq::passfile::{find_password, LookupKey};
    use crate::libpq::{service, ConnParams, SettingsError};

    // As a service file: the wanted group is the first `[name]` of the input (or `fuzz`).
    // A bad line is libpq's message naming the file and a line that exists; a good group
    // gives settings that survive the connection string's render/parse round trip.
    let group = data
        .iter()
        .position(|&b| b == b'[')
        .and_then(|open| {
            let name = &data[open + 1..];
            name.iter()
                .position(|&b| b == b']')
                .map(|close| &name[..close])
        })
        .map_or_else(
            || "fuzz".to_owned(),
            |name| String::from_utf8_lossy(name).into_owned(),
        );
    let mut from_service = ConnParams::new();
    match service::apply_file_text(data, "fuzz.conf", &group, &mut from_service) {
        Ok(_) => {
            let rendered = from_service.to_connection_string();
            let reparsed = ConnParams::parse(&rendered)
                .expect("a service group's settings render to a connection string that parses");
            assert_eq!(
                from_service, reparsed,
                "service settings changed in the round trip"
            );
        }
        Err(err) => {
            let (SettingsError::ServiceFileLineTooLong { path, line }
            | SettingsError::ServiceFileSyntax { path, line }
            | SettingsError::ServiceFileNestedService { path, line }) = &err
            else {
                panic!("unexpected service-file error: {err:?}");
            };
            assert_eq!(path, "fuzz.conf");
            assert!(
                *line >= 1 && *line <= data.len(),
                "line {line} of {} bytes",
                data.len()
            );
            let message = err.to_string();
            assert!(message.contains("\"fuzz.conf\"") && message.contains(&line.to_string()));
        }
    }

    // As a password file: looked up with a fixed key and with the first line's own fields
    // (split at every `:`, escapes ignored), so that matching lines are reached.
    let first_line = data.split(|&b| b == b'\n').next().unwrap_or_default();
    let fields: Vec<String> = first_line
        .splitn(5, |&b| b == b':')
        .map(|field| String::from_utf8_lossy(field).into_owned())
        .collect();
    let field = |at: usize| fields.get(at).map_or("", String::as_str);
    for (host, port, dbname, user) in [
        ("localhost", "5432", "postgres", "fuzz"),
        (field(0), field(1), field(2), field(3)),
    ] {
        let key = LookupKey {
            host,
            port,
            dbname,
            user,
        };
        if let Some(password) = find_password(data, &key) {
            assert!(!password.contains('\0'), "a password holds a NUL byte");
        }
    }

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

// ---------------------------------------------------------------------------------------------
// The whole-connection machine (`ConnectionSetup`): issue 17, "Bad input and misuse".
// ---------------------------------------------------------------------------------------------

/// The most a [`crate::ConnectionSetup`] may append to the output buffer during one
/// attempt (one transport): SSLRequest, ClientHello (twice after a HelloRetryRequest),
/// the client's Finished and a last alert come to well under 2 KiB; 16 KiB leaves room
/// for a client certificate chain.
pub const SETUP_OUTPUT_BOUND_PER_ATTEMPT: usize = 16 * 1024;

/// The `client_machine` cargo-fuzz target: a first byte with its high bit set drives the
/// whole-connection machine ([`connection_setup`]); otherwise the per-attempt
/// [`Negotiation`] ([`client_machine`], whose seeds all start below `0x80`).
pub fn client_machine_target(data: &[u8]) {
    if data.first().is_some_and(|&b| b & 0x80 != 0) {
        let _ = connection_setup(data);
    } else {
        client_machine(data);
    }
}

/// The `call_sequence` cargo-fuzz target: a first byte with its high bit set applies
/// arbitrary calls to the whole-connection machine ([`setup_call_sequence`]); otherwise
/// to [`Negotiation`] and [`Plan`] ([`call_sequence`]).
pub fn call_sequence_target(data: &[u8]) {
    if data.first().is_some_and(|&b| b & 0x80 != 0) {
        setup_call_sequence(data);
    } else {
        call_sequence(data);
    }
}

/// Randomness for the fuzz client: always the same bytes, so that the client's flights
/// are the same on every run and a recorded server flight replays (see
/// [`deterministic_provider`]). Never use it outside fuzzing.
#[derive(Debug)]
struct FixedRandom;

impl rustls::crypto::SecureRandom for FixedRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), rustls::crypto::GetRandomFailed> {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31).wrapping_add(7);
        }
        Ok(())
    }
}

/// The public share of [`XorKeyExchange`]: the same on both sides and on every run.
const XOR_SHARE: [u8; 32] = [0x42; 32];

/// A key exchange that only looks like X25519: the shared secret is the XOR of the two
/// public shares. Deterministic, so a recorded TLS handshake replays; insecure by
/// design, for fuzzing only.
#[derive(Debug)]
struct XorKeyExchange;

impl rustls::crypto::SupportedKxGroup for XorKeyExchange {
    fn start(&self) -> Result<Box<dyn rustls::crypto::ActiveKeyExchange>, rustls::Error> {
        Ok(Box::new(XorKeyExchange))
    }

    fn name(&self) -> rustls::NamedGroup {
        rustls::NamedGroup::X25519
    }
}

impl rustls::crypto::ActiveKeyExchange for XorKeyExchange {
    fn complete(
        self: Box<Self>,
        peer_pub_key: &[u8],
    ) -> Result<rustls::crypto::SharedSecret, rustls::Error> {
        if peer_pub_key.len() != XOR_SHARE.len() {
            return Err(rustls::Error::General("bad key share length".into()));
        }
        let secret: Vec<u8> = peer_pub_key
            .iter()
            .zip(XOR_SHARE)
            .map(|(a, b)| a ^ b)
            .collect();
        Ok(secret.into())
    }

    fn pub_key(&self) -> &[u8] {
        &XOR_SHARE
    }

    fn group(&self) -> rustls::NamedGroup {
        rustls::NamedGroup::X25519
    }
}

/// The clock of the fuzz client: 2030-03-17, inside the fuzz certificate's validity.
#[derive(Debug)]
struct FixedTime;

impl rustls::time_provider::TimeProvider for FixedTime {
    fn current_time(&self) -> Option<rustls::pki_types::UnixTime> {
        Some(rustls::pki_types::UnixTime::since_unix_epoch(
            std::time::Duration::from_secs(1_900_000_000),
        ))
    }
}

/// The crate's crypto provider with fixed randomness and a deterministic stand-in for
/// X25519 (the only key exchange offered): a client built on it sends the same bytes on
/// every run, so a server's flight recorded once (the seeds of `client_machine`) replays
/// through a real handshake. A server recording such a flight must use it too.
/// Insecure by design: for fuzzing only.
pub fn deterministic_provider() -> Arc<rustls::crypto::CryptoProvider> {
    static DETERMINISTIC: OnceLock<Arc<rustls::crypto::CryptoProvider>> = OnceLock::new();
    DETERMINISTIC
        .get_or_init(|| {
            let mut provider = rustls::crypto::CryptoProvider::clone(provider());
            provider.kx_groups = vec![&XorKeyExchange];
            provider.secure_random = &FixedRandom;
            Arc::new(provider)
        })
        .clone()
}

/// The host name every [`setup_configs`] config connects to (the fuzz certificate's).
pub const SETUP_HOST: &str = "fuzz.example.com";

/// The configs [`connection_setup`] and [`setup_call_sequence`] choose from: every valid
/// (sslmode, negotiation) pair on the [`deterministic_provider`] and a fixed clock,
/// verify-* trusting the fuzz server certificate, then one whose TLS setup failed
/// (`sslrootcert` unreadable).
pub fn setup_configs() -> &'static [Config] {
    static CONFIGS: OnceLock<Vec<Config>> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        use rustls::pki_types::pem::PemObject;
        let root = rustls::pki_types::CertificateDer::from_pem_slice(FUZZ_SERVER_CERT.as_bytes())
            .expect("the fuzz certificate parses");
        let builder = || {
            Config::builder()
                .host(SETUP_HOST)
                .crypto_provider(deterministic_provider())
                .time_provider(Arc::new(FixedTime))
        };
        let mut out = Vec::new();
        for mode in SslMode::ALL {
            for negotiation in [SslNegotiation::Postgres, SslNegotiation::Direct] {
                let roots = if mode.requires_verification() {
                    crate::RootCertificates::Certificates(vec![root.clone()])
                } else {
                    crate::RootCertificates::None
                };
                let built = builder()
                    .sslmode(mode)
                    .negotiation(negotiation)
                    .root_certificates(roots)
                    .build();
                if let Ok(config) = built {
                    out.push(config);
                }
            }
        }
        if let Ok(config) = builder()
            .sslmode(SslMode::Require)
            .tls_setup_error("could not read root certificate file \"/nonexistent\"")
            .build()
        {
            out.push(config);
        }
        out
    })
}

/// A rustls server for recording seeds of [`connection_setup`]: the fuzz certificate,
/// ALPN `postgresql`, with the key exchange of the [`deterministic_provider`] (the only
/// one the fuzz client speaks); TLS 1.2 only when `tls12_only`, else rustls's safe defaults.
pub fn recording_server_config(tls12_only: bool) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let cert = CertificateDer::from_pem_slice(FUZZ_SERVER_CERT.as_bytes()).expect("certificate");
    let key = PrivateKeyDer::from_pem_slice(FUZZ_SERVER_KEY.as_bytes()).expect("key");
    let versions: &[&'static rustls::SupportedProtocolVersion] = match tls12_only {
        true => &[&rustls::version::TLS12],
        false => rustls::DEFAULT_VERSIONS,
    };
    // The client's key exchange, but real randomness: a TLS 1.2 server's session id
    // must differ from the one the client offered.
    let mut server_provider = rustls::crypto::CryptoProvider::clone(&deterministic_provider());
    server_provider.secure_random = provider().secure_random;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(server_provider))
        .with_protocol_versions(versions)
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("server certificate");
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Arc::new(config)
}

/// The decisions of the driver in [`connection_setup`] when the machine says
/// [`crate::setup::Action::Receive`] (the op byte modulo 8). Public so that seed
/// generators write what the body reads.
pub mod receive_op {
    /// Read: a length byte, then that many server bytes, appended to the input buffer.
    pub const SHORT_CHUNK: u8 = 0;
    /// Read: a big-endian `u16` length, then that many server bytes.
    pub const LONG_CHUNK: u8 = 1;
    /// The transport reached EOF.
    pub const EOF: u8 = 2;
    /// The transport failed: the next byte chooses the `io::ErrorKind`.
    pub const TRANSPORT_ERROR: u8 = 3;
    /// `connect_timeout` expired.
    pub const TIMEOUT: u8 = 4;
    /// Bytes were waiting right after the `S` (only while handshaking; else misuse).
    pub const DATA_AFTER_SSL_RESPONSE: u8 = 5;
    /// A wake-up with nothing new: the input buffer is offered again.
    pub const NOTHING_NEW: u8 = 6;
}

/// The decisions of the driver in [`connection_setup`] at
/// [`crate::setup::Action::Ready`] (the op byte modulo 8). With no input left the
/// startup is accepted.
pub mod startup_op {
    /// The server accepted the startup.
    pub const ACCEPTED: u8 = 0;
    /// Rejected: a length byte, then that many bytes handed over as the ErrorResponse.
    pub const REJECTED_RAW: u8 = 1;
    /// Rejected with a well-formed ErrorResponse whose SQLSTATE the next byte chooses
    /// from [`super::SETUP_SQLSTATES`].
    pub const REJECTED: u8 = 2;
    /// The client side of the startup failed (never retried).
    pub const FAILED: u8 = 3;
    /// EOF during the startup.
    pub const EOF: u8 = 4;
    /// The transport failed during the startup (next byte: the kind).
    pub const TRANSPORT_ERROR: u8 = 5;
    /// `connect_timeout` expired during the startup.
    pub const TIMEOUT: u8 = 6;
    /// Rejected, reported through `handle_startup_error` (SQLSTATE as for `REJECTED`).
    pub const ERROR_DECODED: u8 = 7;
}

/// The SQLSTATEs a fuzzed startup rejection chooses from: cannot connect now (next
/// host), invalid authorization, bad password, protocol violation, no such database.
pub const SETUP_SQLSTATES: [&str; 5] = ["57P03", "28000", "28P01", "08P01", "3D000"];

fn fuzz_io_error(choice: u8) -> std::io::Error {
    use std::io::ErrorKind;
    const KINDS: [ErrorKind; 8] = [
        ErrorKind::ConnectionReset,
        ErrorKind::ConnectionRefused,
        ErrorKind::UnexpectedEof,
        ErrorKind::BrokenPipe,
        ErrorKind::TimedOut,
        ErrorKind::WouldBlock,
        ErrorKind::ConnectionAborted,
        ErrorKind::Other,
    ];
    KINDS[usize::from(choice) % KINDS.len()].into()
}

/// A well-formed ErrorResponse (`E`, length, `S`/`C`/`M` fields).
fn error_response_bytes(sqlstate: &str, message: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for (field, value) in [(b'S', "FATAL"), (b'C', sqlstate), (b'M', message)] {
        body.push(field);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = vec![b'E'];
    msg.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    msg.extend_from_slice(&body);
    msg
}

/// What one run of [`connection_setup`] reached, for tests that check seeds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetupRun {
    /// Transports opened.
    pub opens: usize,
    /// `Action::Ready` over TLS.
    pub ready_tls: usize,
    /// `Action::Ready` in plaintext.
    pub ready_plaintext: usize,
    /// `Action::Done` was reached.
    pub done: bool,
    /// `Action::Failed` was reached, with this message.
    pub failed: Option<String>,
    /// The host of the last transport opened.
    pub last_host: usize,
    /// The most output of one attempt.
    pub max_attempt_output: usize,
    /// How each attempt ended (`None`: established), as recorded by the machine.
    pub attempt_errors: Vec<Option<String>>,
}

/// How many consecutive polls may make no progress (no input consumed, no fuzz byte
/// read, no other action) before the fuzz body calls it a spin.
const MAX_IDLE_POLLS: usize = 4;

/// The whole-connection machine ([`crate::ConnectionSetup`]) under a well-behaved
/// driver, with everything the network and the server do chosen by the input: one host
/// or two (each any of [`setup_configs`], over TCP or a Unix socket), server bytes in
/// chunks, EOFs, transport errors, timeouts, the startup's outcome (accepted, rejected
/// with any bytes as the ErrorResponse, failed).
///
/// Layout: `[selector, config of host 0, flags (bit 0: two hosts, bit 1: host 0 on a
/// Unix socket, bit 2: host 1 on one), config of host 1 (two hosts only)]`, then one op
/// per decision: [`receive_op`] at `Receive`, [`startup_op`] at `Ready`.
///
/// Asserts: no panic; no spin (every poll consumes input or moves on, and with the
/// input used up the driver feeds EOF, which must end the attempt within
/// four polls); output per attempt under
/// [`SETUP_OUTPUT_BOUND_PER_ATTEMPT`], handed out whole by `Transmit`; actions follow the
/// transport's life (`Open` only after `Close`, nothing but `Open` without a transport,
/// `Failed` after `Close`, `Done` with the transport open); hosts opened in order; at most three transports and three attempt records per host; after `Done` or
/// `Failed` every call is [`crate::Error::Misuse`] and changes nothing.
pub fn connection_setup(data: &[u8]) -> SetupRun {
    use crate::setup::{Action, Ready};
    use bytes::BytesMut;

    let mut input = Input { data };
    let _selector = input.byte();
    let configs = setup_configs();
    let transport = |unix: bool| match unix {
        true => Transport::UnixSocket,
        false => Transport::Tcp,
    };
    let first = configs[usize::from(input.byte()) % configs.len()].clone();
    let flags = input.byte();
    let mut hosts = vec![(first, transport(flags & 2 != 0))];
    if flags & 1 != 0 {
        let second = configs[usize::from(input.byte()) % configs.len()].clone();
        hosts.push((second, transport(flags & 4 != 0)));
    }
    let host_count = hosts.len();
    let Ok(mut setup) = crate::ConnectionSetup::multi_host(hosts) else {
        unreachable!("a non-empty host list");
    };

    let mut run = SetupRun::default();
    let mut out = BytesMut::new();
    let mut pending = BytesMut::new();
    let mut attempt_output = 0usize;
    let mut idle = 0usize;
    let mut finished = false;
    // Whether the driver has a transport open (Open .. Close).
    let mut transport_open = false;
    // Every poll consumes a fuzz byte, consumes input, or is one of the few actions of
    // an attempt (at most 3 per host, 2 hosts); idle polls are capped separately.
    for _ in 0..data.len() + 1_000 {
        let remaining = input.data.len();
        let action = match setup.poll_output(&mut out) {
            Ok(action) => action,
            Err(err) => panic!("poll_output refused a well-behaved driver: {err}"),
        };
        let mut progress = !matches!(action, Action::Receive);
        if matches!(
            action,
            Action::Transmit(_) | Action::Receive | Action::Ready(_)
        ) {
            assert!(transport_open, "{action:?} without a transport");
        }
        match action {
            Action::Open { host, method } => {
                assert!(!transport_open, "Open before the last transport was closed");
                transport_open = true;
                assert!(host < host_count, "host {host} of {host_count}");
                assert!(
                    host >= run.last_host,
                    "hosts go back: {host} after {}",
                    run.last_host
                );
                assert_eq!(host, setup.host());
                let _ = method;
                run.last_host = host;
                run.opens += 1;
                assert!(
                    run.opens <= 3 * host_count,
                    "{} transports for {host_count} hosts",
                    run.opens
                );
                out.clear();
                pending.clear();
                attempt_output = 0;
            }
            Action::Transmit(n) => {
                assert!(n > 0, "an empty Transmit");
                assert_eq!(n, out.len(), "Transmit must count what was appended");
                attempt_output += n;
                run.max_attempt_output = run.max_attempt_output.max(attempt_output);
                assert!(
                    attempt_output <= SETUP_OUTPUT_BOUND_PER_ATTEMPT,
                    "{attempt_output} bytes of output in one attempt"
                );
                out.clear();
            }
            Action::Receive => {
                if input.is_empty() {
                    // A driver whose transport has nothing more reads EOF.
                    if let Err(err) = setup.handle_eof() {
                        panic!("EOF refused while asked to receive: {err}");
                    }
                } else {
                    let before = pending.len();
                    setup_receive(&mut setup, &mut input, &mut pending);
                    progress |= pending.len() < before;
                }
            }
            Action::Close => {
                assert!(transport_open, "Close without a transport");
                transport_open = false;
                // Send what is left (a last alert), then close; input is stale.
                attempt_output += out.len();
                assert!(attempt_output <= SETUP_OUTPUT_BOUND_PER_ATTEMPT);
                out.clear();
                pending.clear();
            }
            Action::Ready(ready) => {
                match ready {
                    Ready::Tls(session) => {
                        run.ready_tls += 1;
                        assert_eq!(
                            session.alpn_protocol().is_some(),
                            session.alpn_protocol() == Some(&b"postgresql"[..])
                        );
                        let _ = session.channel_binding();
                        let _ = (
                            session.protocol_version(),
                            session.peer_certificates().len(),
                        );
                    }
                    Ready::Plaintext => run.ready_plaintext += 1,
                }
                // The bytes left belong to the driver's startup.
                pending.clear();
                setup_startup(&mut setup, &mut input);
            }
            Action::Done => {
                assert!(transport_open, "Done without the transport");
                run.done = true;
                assert!(setup.attempts().len() <= 3 * host_count);
                run.attempt_errors = setup.attempts().iter().map(|a| a.error.clone()).collect();
                finished = true;
            }
            Action::Failed(failed) => {
                assert!(!transport_open, "Failed before the transport was closed");
                // The message may be empty only when it is the driver's or the
                // server's (an empty startup failure, an ErrorResponse without `M`).
                let message = failed.to_string();
                assert!(
                    failed.attempts.len() <= 3 * host_count,
                    "{} attempts for {host_count} hosts",
                    failed.attempts.len()
                );
                run.failed = Some(message);
                run.attempt_errors = failed.attempts.iter().map(|a| a.error.clone()).collect();
                finished = true;
            }
        }
        assert!(
            setup.attempts().len() <= 3 * (setup.host() + 1),
            "{} attempt records by host {}",
            setup.attempts().len(),
            setup.host()
        );
        if finished {
            assert_refuses_everything(&mut setup);
            return run;
        }
        progress |= input.data.len() < remaining;
        idle = if progress { 0 } else { idle + 1 };
        assert!(
            idle <= MAX_IDLE_POLLS,
            "the machine asks to receive without taking input or moving on"
        );
    }
    panic!("the connection setup did not finish within its budget: {setup:?}");
}

/// One fuzz-chosen event while the machine asks to receive.
fn setup_receive(
    setup: &mut crate::ConnectionSetup,
    input: &mut Input<'_>,
    pending: &mut bytes::BytesMut,
) {
    let result = match input.byte() % 8 {
        receive_op::EOF => setup.handle_eof(),
        receive_op::TRANSPORT_ERROR => setup.handle_transport_error(fuzz_io_error(input.byte())),
        receive_op::TIMEOUT => setup.handle_timeout(),
        receive_op::DATA_AFTER_SSL_RESPONSE => {
            let handshaking = setup.is_handshaking();
            let result = setup.handle_data_after_ssl_response();
            assert_eq!(result.is_ok(), handshaking);
            Ok(())
        }
        op => {
            let n = match op {
                receive_op::LONG_CHUNK => {
                    usize::from(u16::from_be_bytes([input.byte(), input.byte()]))
                }
                receive_op::NOTHING_NEW => 0,
                _ => usize::from(input.byte()),
            };
            pending.extend_from_slice(input.take(n));
            let before = pending.len();
            match setup.handle_input(pending) {
                Ok(consumed) => {
                    assert_eq!(before - pending.len(), consumed, "consumed != advanced");
                    Ok(())
                }
                Err(err) => Err(err),
            }
        }
    };
    if let Err(err) = result {
        panic!("a well-behaved driver's event was refused while receiving: {err}");
    }
}

/// The fuzz-chosen outcome of the driver's startup.
fn setup_startup(setup: &mut crate::ConnectionSetup, input: &mut Input<'_>) {
    let sqlstate =
        |input: &mut Input<'_>| SETUP_SQLSTATES[usize::from(input.byte()) % SETUP_SQLSTATES.len()];
    let op = if input.is_empty() {
        startup_op::ACCEPTED
    } else {
        input.byte() % 8
    };
    let result = match op {
        startup_op::ACCEPTED => setup.handle_startup_accepted(),
        startup_op::REJECTED_RAW => {
            let n = usize::from(input.byte());
            setup.handle_startup_rejected(input.take(n))
        }
        startup_op::REJECTED => {
            let raw = error_response_bytes(sqlstate(input), "fuzzed rejection");
            setup.handle_startup_rejected(&raw)
        }
        startup_op::FAILED => {
            let n = usize::from(input.byte());
            setup.handle_startup_failed(String::from_utf8_lossy(input.take(n)))
        }
        startup_op::EOF => setup.handle_eof(),
        startup_op::TRANSPORT_ERROR => setup.handle_transport_error(fuzz_io_error(input.byte())),
        startup_op::TIMEOUT => setup.handle_timeout(),
        _ => setup.handle_startup_error(crate::error_response::ErrorResponse {
            severity: Some("FATAL".into()),
            sqlstate: Some(sqlstate(input).into()),
            message: "fuzzed rejection".into(),
        }),
    };
    if let Err(err) = result {
        panic!("the startup's outcome was refused: {err}");
    }
}

/// What a [`crate::ConnectionSetup`] shows of its state: equal before and after a call
/// that changed nothing.
fn setup_snapshot(setup: &crate::ConnectionSetup) -> (String, usize, usize, bool) {
    (
        format!("{setup:?}"),
        setup.host(),
        setup.attempts().len(),
        setup.is_handshaking(),
    )
}

/// After `Done` or `Failed`: every call is misuse and changes nothing.
fn assert_refuses_everything(setup: &mut crate::ConnectionSetup) {
    use crate::Error;
    let before = setup_snapshot(setup);
    let mut out = bytes::BytesMut::new();
    let is_misuse = |r: Result<(), Error>| matches!(r, Err(Error::Misuse(_)));
    assert!(matches!(setup.poll_output(&mut out), Err(Error::Misuse(_))));
    assert!(out.is_empty());
    let mut bytes: &[u8] = b"S\x16\x03\x03";
    assert!(matches!(
        setup.handle_input(&mut bytes),
        Err(Error::Misuse(_))
    ));
    assert_eq!(bytes.len(), 4, "input consumed after the end");
    assert!(is_misuse(setup.handle_eof()));
    assert!(is_misuse(setup.handle_transport_error(
        std::io::ErrorKind::ConnectionReset.into()
    )));
    assert!(is_misuse(
        setup.handle_transport_error(std::io::ErrorKind::TimedOut.into())
    ));
    assert!(is_misuse(setup.handle_timeout()));
    assert!(is_misuse(setup.handle_data_after_ssl_response()));
    assert!(is_misuse(setup.handle_startup_accepted()));
    assert!(is_misuse(
        setup.handle_startup_rejected(&error_response_bytes("57P03", "x"))
    ));
    assert!(is_misuse(setup.handle_startup_failed("x")));
    assert!(is_misuse(setup.handle_startup_error(Default::default())));
    assert_eq!(
        before,
        setup_snapshot(setup),
        "a refused call changed the state"
    );
}

/// The calls of [`setup_call_sequence`] (the op byte modulo 14). Public so that seed
/// generators write what the body reads.
pub mod call_op {
    /// `poll_output` (1 does the same).
    pub const POLL_OUTPUT: u8 = 0;
    /// `handle_input`: a length byte (modulo 64), then that many bytes.
    pub const HANDLE_INPUT: u8 = 2;
    /// `handle_eof`.
    pub const EOF: u8 = 3;
    /// `handle_transport_error`: the next byte chooses the kind.
    pub const TRANSPORT_ERROR: u8 = 4;
    /// `handle_timeout`.
    pub const TIMEOUT: u8 = 5;
    /// `handle_data_after_ssl_response`.
    pub const DATA_AFTER_SSL_RESPONSE: u8 = 6;
    /// `handle_startup_accepted`.
    pub const STARTUP_ACCEPTED: u8 = 7;
    /// `handle_startup_rejected`: a length byte (modulo 64), then that many bytes.
    pub const STARTUP_REJECTED_RAW: u8 = 8;
    /// `handle_startup_rejected` with a well-formed ErrorResponse (next byte: SQLSTATE).
    pub const STARTUP_REJECTED: u8 = 9;
    /// `handle_startup_failed`.
    pub const STARTUP_FAILED: u8 = 10;
    /// `handle_startup_error` with an empty ErrorResponse.
    pub const STARTUP_ERROR: u8 = 11;
    /// The driver clears its output buffer (sent).
    pub const CLEAR_OUTPUT: u8 = 12;
    /// The getters (`host`, `config`, `attempts`, `is_handshaking`).
    pub const GETTERS: u8 = 13;
}

/// Arbitrary calls, in any order, on [`crate::ConnectionSetup`] (one host or two, as in
/// [`connection_setup`]): each call either works or returns [`crate::Error::Misuse`]
/// and changes nothing (no input consumed, no output appended, same state); once
/// `Done` or `Failed` was handed out every call is misuse; nothing panics.
pub fn setup_call_sequence(data: &[u8]) {
    use crate::setup::Action;
    use crate::Error;

    let mut input = Input { data };
    let _selector = input.byte();
    let configs = setup_configs();
    let transport = |unix: bool| match unix {
        true => Transport::UnixSocket,
        false => Transport::Tcp,
    };
    let first = configs[usize::from(input.byte()) % configs.len()].clone();
    let flags = input.byte();
    let mut hosts = vec![(first, transport(flags & 2 != 0))];
    if flags & 1 != 0 {
        let second = configs[usize::from(input.byte()) % configs.len()].clone();
        hosts.push((second, transport(flags & 4 != 0)));
    }
    let Ok(mut setup) = crate::ConnectionSetup::multi_host(hosts) else {
        unreachable!("a non-empty host list");
    };
    let mut out = bytes::BytesMut::new();
    let mut ended = false;
    for _ in 0..4096 {
        if input.is_empty() {
            break;
        }
        let before = setup_snapshot(&setup);
        let out_before = out.len();
        let op = input.byte() % 14;
        let result: Result<(), Error> = match op {
            call_op::POLL_OUTPUT | 1 => match setup.poll_output(&mut out) {
                Ok(action) => {
                    assert!(!ended, "poll_output worked after the end");
                    match action {
                        Action::Transmit(n) => assert_eq!(out.len() - out_before, n),
                        Action::Done | Action::Failed(_) => ended = true,
                        _ => assert_eq!(out.len(), out_before),
                    }
                    Ok(())
                }
                Err(err) => Err(err),
            },
            call_op::HANDLE_INPUT => {
                let n = usize::from(input.byte() % 64);
                let chunk = input.take(n);
                let mut buf: &[u8] = chunk;
                let result = setup.handle_input(&mut buf);
                match &result {
                    Ok(consumed) => assert_eq!(chunk.len() - buf.len(), *consumed),
                    Err(_) => assert_eq!(buf.len(), chunk.len(), "input taken by a refused call"),
                }
                result.map(|_| ())
            }
            call_op::EOF => setup.handle_eof(),
            call_op::TRANSPORT_ERROR => setup.handle_transport_error(fuzz_io_error(input.byte())),
            call_op::TIMEOUT => setup.handle_timeout(),
            call_op::DATA_AFTER_SSL_RESPONSE => setup.handle_data_after_ssl_response(),
            call_op::STARTUP_ACCEPTED => setup.handle_startup_accepted(),
            call_op::STARTUP_REJECTED_RAW => {
                let n = usize::from(input.byte() % 64);
                setup.handle_startup_rejected(input.take(n))
            }
            call_op::STARTUP_REJECTED => setup.handle_startup_rejected(&error_response_bytes(
                SETUP_SQLSTATES[usize::from(input.byte()) % SETUP_SQLSTATES.len()],
                "fuzzed rejection",
            )),
            call_op::STARTUP_FAILED => setup.handle_startup_failed("fuzzed startup failure"),
            call_op::STARTUP_ERROR => setup.handle_startup_error(Default::default()),
            call_op::CLEAR_OUTPUT => {
                out.clear();
                Ok(())
            }
            _ => {
                let _ = (
                    setup.host(),
                    setup.config().sslmode(),
                    setup.is_handshaking(),
                );
                let _ = setup.attempts().len();
                Ok(())
            }
        };
        match result {
            Ok(()) => assert!(
                !ended || op <= 1 || op >= call_op::CLEAR_OUTPUT,
                "a call worked after the end"
            ),
            Err(Error::Misuse(_)) => {
                assert_eq!(
                    before,
                    setup_snapshot(&setup),
                    "a refused call changed the state"
                );
                assert_eq!(out.len(), out_before, "a refused call appended output");
            }
            Err(err) => panic!("a call failed with something other than misuse: {err}"),
        }
    }
}
