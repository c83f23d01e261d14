//! Shared pieces of the bench binaries: one set of certificates on disk (so every run and every
//! process uses the same server key), the client configurations being compared, an in-memory
//! rustls server, and small measuring helpers.
//!
//! Include with `#[path = "common/mod.rs"] mod common;`.
#![allow(dead_code)]

pub use pgtls_testkit::certs;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pgtls::plan::Method;
use pgtls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use pgtls::rustls::crypto::{aws_lc_rs, CryptoProvider, WebPkiSupportedAlgorithms};
use pgtls::rustls::pki_types::pem::PemObject;
use pgtls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use pgtls::rustls::{
    self, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, ServerConfig,
    ServerConnection, SignatureScheme,
};
use pgtls::{Config, Negotiated, Negotiation, Output, RootCertificates, Session, SslMode};

/// The host name the server certificate is issued for (plus the IP SAN 127.0.0.1).
pub const HOST: &str = "localhost";

/// The certificate material every benchmark uses: a P-256 root CA and a P-256 leaf for
/// `localhost` / `127.0.0.1` issued by it.
pub struct Material {
    pub dir: PathBuf,
    pub ca_pem: Vec<u8>,
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Material {
    /// Loads `dir/{ca.pem,server.crt,server.key}`, generating them first if missing, so that
    /// separate processes (one per callgrind run) share one server key.
    pub fn load_or_generate(dir: &Path) -> Material {
        let (ca, crt, key) = (
            dir.join("ca.pem"),
            dir.join("server.crt"),
            dir.join("server.key"),
        );
        if !(ca.exists() && crt.exists() && key.exists()) {
            fs::create_dir_all(dir).expect("certificate directory");
            let root = certs::Ca::root("pgtls bench root");
            let leaf =
                root.leaf(certs::LeafSpec::server(HOST).ip(std::net::Ipv4Addr::LOCALHOST.into()));
            fs::write(&ca, root.root_pem()).expect("write ca.pem");
            fs::write(&crt, leaf.chain_pem()).expect("write server.crt");
            certs::write_private_file(&key, leaf.key_pem.as_bytes()).expect("write server.key");
        }
        let ca_pem = fs::read(&ca).expect("read ca.pem");
        let chain = CertificateDer::pem_slice_iter(&fs::read(&crt).expect("read server.crt"))
            .collect::<Result<Vec<_>, _>>()
            .expect("server.crt");
        let key = PrivateKeyDer::from_pem_slice(&fs::read(&key).expect("read server.key"))
            .expect("server.key");
        Material {
            dir: dir.to_owned(),
            ca_pem,
            chain,
            key,
        }
    }

    /// The default directory: `$PGTLS_BENCH_CERTS` or `target/bench/certs`.
    pub fn default_dir() -> PathBuf {
        std::env::var_os("PGTLS_BENCH_CERTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| target_dir().join("bench").join("certs"))
    }

    pub fn root_der(&self) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(&self.ca_pem).expect("ca.pem")
    }

    /// The in-memory server: rustls with the same provider, no ALPN (like PostgreSQL before 17),
    /// no session tickets (PostgreSQL disables them), TLS 1.3 and 1.2.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .expect("server certificate");
        config.send_tls13_tickets = 0;
        Arc::new(config)
    }

    /// pgtls without a root source (`sslmode=require`): chain not checked, handshake
    /// signature verified.
    pub fn pgtls_no_roots(&self) -> Config {
        Config::builder()
            .sslmode(SslMode::Require)
            .host(HOST)
            .crypto_provider(provider())
            .key_exchange_groups(&rustls_group_order())
            .build()
            .expect("pgtls config")
    }

    /// pgtls with `sslmode=verify-full` and the bench root.
    pub fn pgtls_verify_full(&self) -> Config {
        Config::builder()
            .sslmode(SslMode::VerifyFull)
            .host(HOST)
            .root_certificates(RootCertificates::from_pem(&self.ca_pem).expect("roots"))
            .crypto_provider(provider())
            .key_exchange_groups(&rustls_group_order())
            .build()
            .expect("pgtls config")
    }

    /// Bare rustls with what pgtls sets (ALPN `postgresql`, no resumption, TLS 1.3 + 1.2)
    /// and a verifier that accepts any certificate but checks the handshake signature.
    pub fn rustls_no_roots(&self) -> Arc<ClientConfig> {
        let provider = provider();
        let verifier = Arc::new(AnyCertCheckSignature(
            provider.signature_verification_algorithms,
        ));
        let config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .expect("versions")
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Arc::new(like_pgtls(config))
    }

    /// Bare rustls with its own `WebPkiServerVerifier` and the bench root.
    pub fn rustls_webpki(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.root_der()).expect("root");
        let config = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(like_pgtls(config))
    }
}

fn like_pgtls(mut config: ClientConfig) -> ClientConfig {
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    config
}

/// The provider's own key-exchange order (X25519 first), which bare rustls uses. pgtls
/// defaults to P-256 first (no HelloRetryRequest from PostgreSQL <= 17; "Key exchange" in
/// BENCHMARKS.md), so its in-memory configs are given rustls's order: both clients then do
/// the same key exchange and the comparison measures what pgtls adds.
pub fn rustls_group_order() -> Vec<rustls::NamedGroup> {
    provider()
        .kx_groups
        .iter()
        .map(|group| group.name())
        .collect()
}

/// The crypto provider both sides of every comparison use.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(aws_lc_rs::default_provider())
}

/// `target/` of this crate (`CARGO_TARGET_DIR` respected).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// Accepts any certificate (libpq without roots) but verifies the handshake signature with the
/// certificate's key, through rustls's own helpers.
#[derive(Debug)]
pub struct AnyCertCheckSignature(pub WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertCheckSignature {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

// ---------------------------------------------------------------------------------------------
// In-memory server side
// ---------------------------------------------------------------------------------------------

/// Feeds `input` to the server and returns everything it wants to send.
pub fn server_exchange(server: &mut ServerConnection, mut input: &[u8], out: &mut Vec<u8>) {
    while !input.is_empty() {
        let n = server.read_tls(&mut input).expect("server read_tls");
        if n == 0 {
            break;
        }
        server.process_new_packets().expect("server process");
    }
    while server.wants_write() {
        server.write_tls(out).expect("server write_tls");
    }
}

/// The client side of a handshake, abstracted so that one driver runs pgtls and bare rustls.
pub trait Client {
    /// Produces output into `buf`; `None` when the client waits for input; `Some(0)` never.
    fn output(&mut self, buf: &mut [u8]) -> Option<usize>;
    /// Feeds server bytes; all of them must be consumed during a handshake.
    fn input(&mut self, bytes: &[u8]);
    /// Whether the handshake finished and nothing is left to send.
    fn done(&self) -> bool;
}

/// pgtls's negotiation (SSLRequest first, then TLS).
pub struct PgtlsClient {
    pub negotiation: Negotiation,
    done: bool,
}

impl PgtlsClient {
    pub fn new(config: &Config) -> PgtlsClient {
        PgtlsClient {
            negotiation: Negotiation::new(config, Method::SslRequest).expect("negotiation"),
            done: false,
        }
    }

    pub fn into_session(self) -> Session {
        match self.negotiation.into_negotiated().expect("negotiated") {
            Negotiated::Tls(session) => *session,
            other => panic!("not TLS: {other:?}"),
        }
    }
}

impl Client for PgtlsClient {
    fn output(&mut self, buf: &mut [u8]) -> Option<usize> {
        match self
            .negotiation
            .poll_output_slice(buf)
            .expect("poll_output")
        {
            Output::Transmit(n) => Some(n),
            Output::Receive => None,
            Output::Done => {
                self.done = true;
                None
            }
        }
    }

    fn input(&mut self, bytes: &[u8]) {
        let n = self.negotiation.handle_input(bytes).expect("handle_input");
        assert_eq!(n, bytes.len(), "pgtls left handshake bytes");
    }

    fn done(&self) -> bool {
        self.done
    }
}

/// A bare rustls `ClientConnection`, driven from slices the same way.
pub struct RustlsClient {
    pub conn: ClientConnection,
}

impl RustlsClient {
    pub fn new(config: &Arc<ClientConfig>) -> RustlsClient {
        let name = ServerName::try_from(HOST).expect("name");
        RustlsClient {
            conn: ClientConnection::new(config.clone(), name).expect("client connection"),
        }
    }
}

impl Client for RustlsClient {
    fn output(&mut self, mut buf: &mut [u8]) -> Option<usize> {
        let mut n = 0;
        while self.conn.wants_write() && !buf.is_empty() {
            n += self.conn.write_tls(&mut buf).expect("write_tls");
        }
        (n > 0).then_some(n)
    }

    fn input(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let n = self.conn.read_tls(&mut bytes).expect("read_tls");
            assert!(n > 0, "rustls refused handshake bytes");
            self.conn
                .process_new_packets()
                .expect("process_new_packets");
        }
    }

    fn done(&self) -> bool {
        !self.conn.is_handshaking() && !self.conn.wants_write()
    }
}

/// Scratch buffers the driver (the caller) owns; allocated once, outside any measurement.
pub struct Buffers {
    pub client_out: Vec<u8>,
    pub server_out: Vec<u8>,
}

impl Default for Buffers {
    fn default() -> Self {
        Buffers {
            client_out: vec![0; 17 * 1024],
            server_out: Vec::with_capacity(64 * 1024),
        }
    }
}

/// The PostgreSQL side before TLS: takes the 8-byte SSLRequest, answers `S`.
pub const SSL_RESPONSE: &[u8] = b"S";

/// Runs one handshake between `client` and a new server connection (returned). Every client call goes
/// through `on_client` (so a profiler can collect exactly the client's share); the server's
/// work runs outside it. `pgtls_prefix`: the client starts with an SSLRequest.
pub fn handshake<C: Client>(
    client: &mut C,
    server_config: &Arc<ServerConfig>,
    bufs: &mut Buffers,
    pgtls_prefix: bool,
    on_client: &mut dyn FnMut(&mut dyn FnMut()),
) -> ServerConnection {
    let mut server = ServerConnection::new(server_config.clone()).expect("server");
    let mut ssl_request_answered = !pgtls_prefix;
    for _ in 0..100 {
        let mut produced = None;
        on_client(&mut || produced = client.output(&mut bufs.client_out));
        if let Some(n) = produced {
            bufs.server_out.clear();
            if !ssl_request_answered {
                assert_eq!(n, 8, "SSLRequest");
                ssl_request_answered = true;
                bufs.server_out.extend_from_slice(SSL_RESPONSE);
            } else {
                server_exchange(&mut server, &bufs.client_out[..n], &mut bufs.server_out);
            }
            if !bufs.server_out.is_empty() {
                let reply = std::mem::take(&mut bufs.server_out);
                on_client(&mut || client.input(&reply));
                bufs.server_out = reply;
            }
            continue;
        }
        let mut done = false;
        on_client(&mut || done = client.done());
        if done {
            assert!(!server.is_handshaking(), "server still handshaking");
            return server;
        }
        panic!("client waits for input the server does not send");
    }
    panic!("handshake did not finish");
}

// ---------------------------------------------------------------------------------------------
// Measuring helpers
// ---------------------------------------------------------------------------------------------

/// CPU time of the calling thread.
pub fn thread_cpu() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Median of a small sample.
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Formats an integer with thousands separators.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

/// A short description of this machine for the results header.
pub fn machine() -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!("{cpu}, {cores} cores")
}

/// Runs client calls directly (no profiler toggling).
pub fn direct(f: &mut dyn FnMut()) {
    f()
}

/// An established pgtls session and its in-memory server.
pub fn pgtls_pair(config: &Config, server: &Arc<ServerConfig>) -> (Session, ServerConnection) {
    let mut client = PgtlsClient::new(config);
    let server = handshake(
        &mut client,
        server,
        &mut Buffers::default(),
        true,
        &mut direct,
    );
    (client.into_session(), server)
}

/// An established bare rustls connection and its in-memory server.
pub fn rustls_pair(
    config: &Arc<ClientConfig>,
    server: &Arc<ServerConfig>,
) -> (ClientConnection, ServerConnection) {
    let mut client = RustlsClient::new(config);
    let server = handshake(
        &mut client,
        server,
        &mut Buffers::default(),
        false,
        &mut direct,
    );
    (client.conn, server)
}
