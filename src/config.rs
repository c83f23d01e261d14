//! Settings: libpq's TLS options, validated once, turned into one shared rustls config.
//!
//! [`ConfigBuilder`] collects the options libpq knows (`sslmode`, `sslnegotiation`,
//! `sslrootcert`, `sslcrl`, `sslcert`/`sslkey`, `sslsni`, `ssl_min_protocol_version`,
//! `ssl_max_protocol_version`, `sslcertmode`) as typed values; [`ConfigBuilder::build`]
//! validates them with libpq's messages and produces a [`Config`]. The expensive parts —
//! parsed roots and CRLs, the loaded client key, the `Arc<rustls::ClientConfig>` — are
//! built there, once; every connection made from the `Config` reuses them.
//!
//! This module reads no files and no environment: certificates, keys and CRLs arrive as
//! bytes. The one exception is [`RootCertificates::system`] (feature `system-roots`),
//! which the caller invokes explicitly to load the platform store.

mod base;
mod extract_once;
pub(crate) use extract_once::extract_once;
mod key_exchange;
mod resumption;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::{ResolvesClientCert, Resumption};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName};
use rustls::sign::CertifiedKey;
use rustls::time_provider::TimeProvider;
use rustls::{ClientConfig, KeyLog, NamedGroup, SignatureScheme};

use crate::error::ConfigError;
use crate::verify::{self, ChainPolicy, LibpqVerifier};
use crate::wire::ALPN_POSTGRESQL;

use resumption::PortScopes;
pub use resumption::SessionResumption;

/// libpq's `sslmode`. The default is [`SslMode::Prefer`], as in libpq.
///
/// | mode | first attempt | then | chain verified | host name verified |
/// |---|---|---|---|---|
/// | `disable` | plaintext | — | — | — |
/// | `allow` | plaintext | TLS on a new connection | if roots are given | no |
/// | `prefer` | TLS | plaintext (same socket after `N`, new one otherwise) | if roots are given | no |
/// | `require` | TLS | — | if roots are given | no |
/// | `verify-ca` | TLS | — | yes | no |
/// | `verify-full` | TLS | — | yes | yes |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum SslMode {
    /// Plaintext only.
    Disable,
    /// Plaintext first; TLS on a new connection if the server rejects the plaintext startup.
    Allow,
    /// TLS first; plaintext if the server refuses TLS or the TLS attempt fails.
    #[default]
    Prefer,
    /// TLS only; the chain is verified only if root certificates are given.
    Require,
    /// TLS only; the chain must verify against the root certificates.
    VerifyCa,
    /// TLS only; the chain must verify and the certificate must name the host.
    VerifyFull,
}

impl SslMode {
    /// Every mode, weakest first.
    pub const ALL: [SslMode; 6] = [
        SslMode::Disable,
        SslMode::Allow,
        SslMode::Prefer,
        SslMode::Require,
        SslMode::VerifyCa,
        SslMode::VerifyFull,
    ];

    /// The libpq spelling (`verify-full`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether this mode refuses to run without TLS (require and stronger).
    pub fn requires_tls(self) -> bool {
        self >= SslMode::Require
    }

    /// Whether this mode needs root certificates (verify-ca and verify-full).
    pub fn requires_verification(self) -> bool {
        self >= SslMode::VerifyCa
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SslMode {
    type Err = ConfigError;

    /// Case-sensitive, as libpq: `invalid sslmode value: "<v>"` otherwise.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        SslMode::ALL
            .into_iter()
            .find(|mode| mode.as_str() == value)
            .ok_or_else(|| invalid("sslmode", value))
    }
}

/// libpq's `sslnegotiation` (PostgreSQL 17+).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SslNegotiation {
    /// Send `SSLRequest` and wait for `S`/`N` (every server version).
    #[default]
    Postgres,
    /// Send the TLS ClientHello at once (PostgreSQL 17+); ALPN `postgresql` is mandatory.
    Direct,
}

impl SslNegotiation {
    /// The libpq spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SslNegotiation::Postgres => "postgres",
            SslNegotiation::Direct => "direct",
        }
    }
}

impl fmt::Display for SslNegotiation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SslNegotiation {
    type Err = ConfigError;

    /// Case-sensitive: `invalid sslnegotiation value: "<v>"` otherwise.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "postgres" => Ok(SslNegotiation::Postgres),
            "direct" => Ok(SslNegotiation::Direct),
            _ => Err(invalid("sslnegotiation", value)),
        }
    }
}

/// libpq's `sslcertmode` (PostgreSQL 16+): whether to send a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SslCertMode {
    /// Never send a client certificate, even if one is configured.
    Disable,
    /// Send the configured certificate if the server asks for one (the default).
    #[default]
    Allow,
    /// Fail unless the server asked for a certificate:
    /// `server did not request an SSL certificate`.
    Require,
}

impl SslCertMode {
    /// The libpq spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SslCertMode::Disable => "disable",
            SslCertMode::Allow => "allow",
            SslCertMode::Require => "require",
        }
    }
}

impl fmt::Display for SslCertMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SslCertMode {
    type Err = ConfigError;

    /// Case-sensitive: `invalid sslcertmode value: "<v>"` otherwise.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "disable" => Ok(SslCertMode::Disable),
            "allow" => Ok(SslCertMode::Allow),
            "require" => Ok(SslCertMode::Require),
            _ => Err(invalid("sslcertmode", value)),
        }
    }
}

/// A TLS protocol version as libpq names them in `ssl_min_protocol_version` and
/// `ssl_max_protocol_version`.
///
/// rustls speaks only TLS 1.2 and 1.3: a minimum below 1.2 therefore means 1.2, and a
/// maximum below 1.2 leaves no version, so every TLS attempt fails with OpenSSL's
/// `no protocols available` (and `prefer` falls back to plaintext, as libpq would).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TlsVersion {
    /// `TLSv1` (TLS 1.0).
    Tls1_0,
    /// `TLSv1.1`.
    Tls1_1,
    /// `TLSv1.2` (libpq's default minimum).
    Tls1_2,
    /// `TLSv1.3`.
    Tls1_3,
}

impl TlsVersion {
    /// The libpq spelling (`TLSv1.2`).
    pub fn as_str(self) -> &'static str {
        match self {
            TlsVersion::Tls1_0 => "TLSv1",
            TlsVersion::Tls1_1 => "TLSv1.1",
            TlsVersion::Tls1_2 => "TLSv1.2",
            TlsVersion::Tls1_3 => "TLSv1.3",
        }
    }

    /// Parses a version for `keyword` (case-insensitive, as libpq).
    ///
    /// # Errors
    /// `invalid <keyword> value: "<v>"`.
    pub fn parse_for(keyword: &'static str, value: &str) -> Result<Self, ConfigError> {
        [
            TlsVersion::Tls1_0,
            TlsVersion::Tls1_1,
            TlsVersion::Tls1_2,
            TlsVersion::Tls1_3,
        ]
        .into_iter()
        .find(|v| v.as_str().eq_ignore_ascii_case(value))
        .ok_or_else(|| invalid(keyword, value))
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn invalid(keyword: &'static str, value: &str) -> ConfigError {
    ConfigError::InvalidValue {
        keyword,
        value: value.to_owned(),
    }
}

/// Where trust comes from (libpq's `sslrootcert`).
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum RootCertificates {
    /// No root source: allow/prefer/require verify nothing about the chain (as libpq
    /// without `root.crt`); verify-ca/verify-full refuse to build.
    #[default]
    None,
    /// The certificates of a root file (`sslrootcert=<file>`). Anchors are its self-signed
    /// certificates; the others only help to build paths. CRLs apply only to this source.
    Certificates(Vec<CertificateDer<'static>>),
    /// The platform store (`sslrootcert=system`): makes `verify-full` the default and
    /// refuses weaker modes. Build it with [`RootCertificates::system`].
    System(Vec<CertificateDer<'static>>),
    /// Mozilla's roots from webpki-roots: a pgtls addition for embedded defaults, only
    /// when asked for. Treated like a root file without CRLs (no change to sslmode rules).
    #[cfg(feature = "webpki-roots")]
    WebPki,
}

impl fmt::Debug for RootCertificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RootCertificates::None => f.write_str("None"),
            RootCertificates::Certificates(c) => {
                write!(f, "Certificates({} certificates)", c.len())
            }
            RootCertificates::System(c) => write!(f, "System({} certificates)", c.len()),
            #[cfg(feature = "webpki-roots")]
            RootCertificates::WebPki => f.write_str("WebPki"),
        }
    }
}

impl RootCertificates {
    /// Every certificate of a PEM bundle (`-----BEGIN CERTIFICATE-----` blocks, in any
    /// order; other blocks are skipped).
    ///
    /// # Errors
    /// A malformed PEM section, or no certificate at all.
    pub fn from_pem(pem: &[u8]) -> Result<Self, ConfigError> {
        Ok(RootCertificates::Certificates(certificates_from_pem(
            pem,
            "root certificate",
        )?))
    }

    /// The platform's trust store, honouring `SSL_CERT_FILE` and `SSL_CERT_DIR` (through
    /// rustls-native-certs). This reads files: call it once and keep the result.
    ///
    /// # Errors
    /// The store could not be read or held no certificate.
    #[cfg(feature = "system-roots")]
    pub fn system() -> Result<Self, ConfigError> {
        let loaded = rustls_native_certs::load_native_certs();
        if loaded.certs.is_empty() {
            let reason = loaded
                .errors
                .first()
                .map(|e| e.to_string())
                .unwrap_or_else(|| "no certificates found".to_owned());
            return Err(ConfigError::SystemRoots(reason));
        }
        Ok(RootCertificates::System(loaded.certs))
    }

    fn is_system(&self) -> bool {
        matches!(self, RootCertificates::System(_))
    }

    fn is_none(&self) -> bool {
        matches!(self, RootCertificates::None)
    }
}

/// Parses every `CERTIFICATE` block of a PEM buffer.
pub(crate) fn certificates_from_pem(
    pem: &[u8],
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError::BadCredential {
            what,
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(ConfigError::BadCredential {
            what,
            reason: "no certificate found in PEM data".into(),
        });
    }
    Ok(certs)
}

/// Builds a [`Config`]. Every option has libpq's default.
///
/// ```
/// use pgtls::{Config, SslMode, RootCertificates};
/// # fn main() -> Result<(), pgtls::ConfigError> {
/// let config = Config::builder()
///     .sslmode(SslMode::Require)
///     .host("db.example.com")
///     .build()?;
/// assert_eq!(config.sslmode(), SslMode::Require);
/// # Ok(()) }
/// ```
///
/// Bringing your own rustls pieces, with libpq's sslmode flow kept:
/// [`Self::server_cert_verifier`] (your verifier decides trust under verify-ca and
/// verify-full; pgtls still decides fallbacks), [`Self::rustls_client_config`] (start from
/// an existing `rustls::ClientConfig`: what is kept and what is replaced),
/// [`Self::crypto_provider`] and [`Self::key_exchange_groups`] (the key-share order; the
/// group a session used is [`crate::Session::key_exchange_group`]).
///
/// ```
/// use std::sync::Arc;
/// use pgtls::rustls::{self, NamedGroup};
/// use pgtls::{Config, SslMode};
/// # fn main() -> Result<(), pgtls::ConfigError> {
/// # #[cfg(feature = "aws-lc-rs")] {
/// let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
/// let mut existing = rustls::ClientConfig::builder_with_provider(provider)
///     .with_safe_default_protocol_versions()?
///     .with_root_certificates(rustls::RootCertStore::empty())
///     .with_no_client_auth();
/// existing.resumption = rustls::client::Resumption::disabled();
/// let config = Config::builder()
///     .sslmode(SslMode::Require)
///     .host("db.example.com")
///     .rustls_client_config(existing)
///     .key_exchange_groups(&[NamedGroup::secp256r1, NamedGroup::X25519])
///     .build()?;
/// let tls = config.rustls_config().unwrap();
/// assert_eq!(tls.alpn_protocols, [b"postgresql".to_vec()]);
/// assert_eq!(tls.crypto_provider().kx_groups[0].name(), NamedGroup::secp256r1);
/// # }
/// # Ok(()) }
/// ```
pub struct ConfigBuilder {
    sslmode: Option<SslMode>,
    negotiation: SslNegotiation,
    host: String,
    roots: RootCertificates,
    crls: Vec<CertificateRevocationListDer<'static>>,
    crl_check: Option<bool>,
    client_cert: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    sni: bool,
    min_version: TlsVersion,
    max_version: Option<TlsVersion>,
    certmode: SslCertMode,
    provider: Option<Arc<CryptoProvider>>,
    time_provider: Option<Arc<dyn TimeProvider>>,
    key_log: Option<Arc<dyn KeyLog>>,
    tls_setup_error: Option<Arc<str>>,
    base: Option<Arc<ClientConfig>>,
    server_cert_verifier: Option<Arc<dyn ServerCertVerifier>>,
    key_exchange_groups: Option<Vec<NamedGroup>>,
    port: Option<u16>,
    session_resumption: SessionResumption,
    verified_chain_cache: usize,
}

impl Default for ConfigBuilder {
    fn default() -> Self {
        ConfigBuilder {
            sslmode: None,
            negotiation: SslNegotiation::Postgres,
            host: String::new(),
            roots: RootCertificates::None,
            crls: Vec::new(),
            crl_check: None,
            client_cert: None,
            sni: true,
            min_version: TlsVersion::Tls1_2,
            max_version: None,
            certmode: SslCertMode::Allow,
            provider: None,
            time_provider: None,
            key_log: None,
            tls_setup_error: None,
            base: None,
            server_cert_verifier: None,
            key_exchange_groups: None,
            port: None,
            session_resumption: SessionResumption::disabled(),
            verified_chain_cache: verify::DEFAULT_CHAIN_CACHE_CAPACITY,
        }
    }
}

impl Clone for ConfigBuilder {
    fn clone(&self) -> Self {
        ConfigBuilder {
            sslmode: self.sslmode,
            negotiation: self.negotiation,
            host: self.host.clone(),
            roots: self.roots.clone(),
            crls: self.crls.clone(),
            crl_check: self.crl_check,
            client_cert: self
                .client_cert
                .as_ref()
                .map(|(chain, key)| (chain.clone(), key.clone_key())),
            sni: self.sni,
            min_version: self.min_version,
            max_version: self.max_version,
            certmode: self.certmode,
            provider: self.provider.clone(),
            time_provider: self.time_provider.clone(),
            key_log: self.key_log.clone(),
            tls_setup_error: self.tls_setup_error.clone(),
            base: self.base.clone(),
            server_cert_verifier: self.server_cert_verifier.clone(),
            key_exchange_groups: self.key_exchange_groups.clone(),
            port: self.port,
            session_resumption: self.session_resumption,
            verified_chain_cache: self.verified_chain_cache,
        }
    }
}

impl fmt::Debug for ConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigBuilder")
            .field("sslmode", &self.sslmode)
            .field("negotiation", &self.negotiation)
            .field("host", &self.host)
            .field("roots", &self.roots)
            .field("crls", &self.crls.len())
            .field("client_cert", &self.client_cert.is_some())
            .field("sni", &self.sni)
            .field("min_version", &self.min_version)
            .field("max_version", &self.max_version)
            .field("certmode", &self.certmode)
            .field("rustls_client_config", &self.base.is_some())
            .field("server_cert_verifier", &self.server_cert_verifier)
            .field("key_exchange_groups", &self.key_exchange_groups)
            .field("port", &self.port)
            .field("session_resumption", &self.session_resumption)
            .field("verified_chain_cache", &self.verified_chain_cache)
            .finish_non_exhaustive()
    }
}

impl ConfigBuilder {
    /// `sslmode`. Unset means `prefer`, or `verify-full` with `sslrootcert=system`.
    pub fn sslmode(mut self, mode: SslMode) -> Self {
        self.sslmode = Some(mode);
        self
    }

    /// `sslnegotiation`.
    pub fn negotiation(mut self, negotiation: SslNegotiation) -> Self {
        self.negotiation = negotiation;
        self
    }

    /// The server's host name as the user wrote it (libpq's `host`, never `hostaddr`):
    /// used for SNI and, under verify-full, for host-name verification. The address the
    /// caller actually connects to is the caller's business.
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }

    /// `sslrootcert`.
    pub fn root_certificates(mut self, roots: RootCertificates) -> Self {
        self.roots = roots;
        self
    }

    /// CRLs (`sslcrl` / `sslcrldir`), DER. Used only with a root file, as libpq does.
    pub fn crls(mut self, crls: Vec<CertificateRevocationListDer<'static>>) -> Self {
        self.crls = crls;
        self
    }

    /// Forces CRL checking on or off. By default it is on exactly when CRLs were given
    /// (libpq: when the CRL file loaded). libpq also turns it on for an `sslcrldir` that
    /// exists but holds no CRL — every certificate then fails with
    /// `unable to get certificate CRL` — which the settings layer expresses with `true`.
    pub fn crl_check(mut self, enabled: bool) -> Self {
        self.crl_check = Some(enabled);
        self
    }

    /// The client certificate chain (leaf first) and its private key (`sslcert`/`sslkey`).
    pub fn client_certificate(
        mut self,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Self {
        self.client_cert = Some((chain, key));
        self
    }

    /// `sslsni` (default on). SNI is sent only when the host is a name, per libpq's rule.
    pub fn sni(mut self, enabled: bool) -> Self {
        self.sni = enabled;
        self
    }

    /// `ssl_min_protocol_version` (default TLSv1.2).
    pub fn min_protocol_version(mut self, version: TlsVersion) -> Self {
        self.min_version = version;
        self
    }

    /// `ssl_max_protocol_version` (default: none, the highest rustls has).
    pub fn max_protocol_version(mut self, version: Option<TlsVersion>) -> Self {
        self.max_version = version;
        self
    }

    /// `sslcertmode`.
    pub fn certmode(mut self, mode: SslCertMode) -> Self {
        self.certmode = mode;
        self
    }

    /// The rustls crypto provider. Default: the provider of
    /// [`Self::rustls_client_config`] if one is given, else aws-lc-rs if that feature is
    /// on, else ring. Randomness reaches rustls only through it.
    ///
    /// Whichever provider is used, its key-exchange groups are reordered with P-256 first,
    /// so that the ClientHello's one key share suits PostgreSQL ≤ 17's only group
    /// (`ssl_ecdh_curve = prime256v1`) and 18's `ssl_groups = X25519:prime256v1`: no
    /// HelloRetryRequest against either default. The groups offered stay the provider's;
    /// [`Self::key_exchange_groups`] sets another order.
    pub fn crypto_provider(mut self, provider: Arc<CryptoProvider>) -> Self {
        self.provider = Some(provider);
        self
    }

    /// The clock used for certificate validity and CRLs (default: the system clock).
    pub fn time_provider(mut self, time: Arc<dyn TimeProvider>) -> Self {
        self.time_provider = Some(time);
        self
    }

    /// Where to log TLS secrets (libpq 18's `sslkeylogfile`; e.g. `rustls::KeyLogFile`).
    pub fn key_log(mut self, key_log: Arc<dyn KeyLog>) -> Self {
        self.key_log = Some(key_log);
        self
    }

    /// Makes every TLS attempt fail with `message`, as libpq's attempts fail when its TLS
    /// files cannot be used (an unreadable key, a wrong `sslpassword`): libpq reads them
    /// only when a TLS attempt starts, so under `prefer` such a failure falls back to
    /// plaintext and under `allow` it matters only if plaintext is refused. The settings
    /// layer uses this for allow/prefer; stronger modes fail when settings are built.
    pub fn tls_setup_error(mut self, message: impl Into<String>) -> Self {
        self.tls_setup_error = Some(Arc::from(message.into()));
        self
    }

    /// The key-exchange groups to offer, most preferred first: the first one gets the
    /// ClientHello's key share. Each must be implemented by the crypto provider (for
    /// pgtls's default provider, any group the compiled provider implements, such as
    /// aws-lc-rs's `secp256r1MLKEM768`, which it does not offer by default).
    ///
    /// The default — the provider's groups with P-256 first — costs no HelloRetryRequest
    /// against PostgreSQL 15 or 18 defaults. A list starting with another group costs one
    /// against a server that lacks it (e.g. `X25519` against PostgreSQL ≤ 17), and a list
    /// without any group the server has fails the handshake: that is how to *require* a
    /// group, e.g. `&[NamedGroup::X25519MLKEM768]` for a post-quantum hybrid (PostgreSQL
    /// 18 with `ssl_groups` including it and an OpenSSL that has it). The group a session
    /// used is [`crate::Session::key_exchange_group`].
    ///
    /// [`Self::build`] fails with [`ConfigError::UnsupportedKeyExchangeGroup`] for a group
    /// the provider lacks and [`ConfigError::NoKeyExchangeGroups`] for an empty list.
    pub fn key_exchange_groups(mut self, groups: &[NamedGroup]) -> Self {
        self.key_exchange_groups = Some(groups.to_vec());
        self
    }

    /// How many verified server chains to remember (default 64; 0 turns the cache off).
    ///
    /// PostgreSQL never resumes TLS sessions, so every connection sends the same chain
    /// again. With the cache, a chain whose exact bytes verified before against this
    /// config's roots and CRLs skips path building and the chain's signatures, as long as
    /// the clock is still inside the window in which that verdict holds: no notBefore or
    /// notAfter of any certificate involved, nor any CRL's thisUpdate or nextUpdate, lies
    /// between the two connections (a clock that jumps either way verifies in full). The
    /// verdict is therefore the one a full verification gives, which is why the cache is on
    /// by default. Failures are never cached (their messages are libpq's, every time); the
    /// host name (verify-full) and the server's handshake signature (proof that it holds
    /// the key) are checked on every connection. The cache is shared by the connections of
    /// this config and of its [`Config::with_host`] copies, and a full cache forgets the
    /// least recently used chain. It only serves pgtls's own verification, not a
    /// [`Self::server_cert_verifier`]. See [`Config::verified_chain_cache_stats`].
    pub fn verified_chain_cache(mut self, capacity: usize) -> Self {
        self.verified_chain_cache = capacity;
        self
    }

    /// Decides trust with the caller's verifier (rustls-platform-verifier, certificate
    /// pinning, ...) instead of pgtls's libpq checks, where libpq verifies by sslmode:
    /// under `verify-ca` and `verify-full` it replaces the chain and host-name checks
    /// (and the handshake-signature checks: rustls asks the verifier for those too), and
    /// no root certificates are needed. It receives the host as rustls's `ServerName`
    /// (an address for an IP host; the unspecified address for a host rustls cannot name);
    /// under `verify-ca` it is the verifier's choice whether to look at it.
    ///
    /// Under `allow`, `prefer` and `require` libpq does not verify the server unless a
    /// root file is given, and pgtls keeps that: the verifier is not consulted there (a
    /// rejection under `prefer` would only make libpq's policy fall back to plaintext).
    /// With root certificates as well, those modes check the chain against them, as libpq
    /// does with `root.crt`.
    ///
    /// pgtls still decides what happens after a rejection: the verifier's error becomes an
    /// [`crate::Error::Certificate`] (a `rustls::Error::InvalidCertificate`; message
    /// `SSL error: certificate verify failed: <reason>`) or an [`crate::Error::Tls`] (any
    /// other rustls error), both [`crate::Blame::Tls`], and libpq's policy treats it as
    /// any failed TLS attempt (next host; never plaintext under verify-ca/verify-full).
    pub fn server_cert_verifier(mut self, verifier: Arc<dyn ServerCertVerifier>) -> Self {
        self.server_cert_verifier = Some(verifier);
        self
    }

    /// Starts from an existing rustls `ClientConfig`: pgtls keeps what is the caller's
    /// business and replaces what libpq decides. Options given to this builder win over the
    /// config's.
    ///
    /// | what | pgtls |
    /// |---|---|
    /// | crypto provider (cipher suites, signature algorithms, randomness, key loading) | **kept** (unless [`Self::crypto_provider`] is given); its key-exchange groups get P-256 first, or [`Self::key_exchange_groups`] |
    /// | `time_provider` | **kept** (unless [`Self::time_provider`] is given) |
    /// | `resumption` (store, TLS 1.2 mode) | **kept** (pgtls alone never resumes, as libpq), unless [`Self::session_resumption`] is on: then pgtls's per-port stores |
    /// | `key_log` | **kept** (unless [`Self::key_log`] is given) |
    /// | `client_auth_cert_resolver` | **kept** unless [`Self::client_certificate`] is given; `sslcertmode` applies to it |
    /// | `max_fragment_size`, `enable_secret_extraction`, `require_ems`, certificate compression | **kept** |
    /// | protocol versions | **replaced**: `ssl_min_protocol_version` / `ssl_max_protocol_version` |
    /// | certificate verifier | **replaced** per sslmode (rustls cannot hand it back: pass yours with [`Self::server_cert_verifier`]) |
    /// | `alpn_protocols` | **replaced**: `postgresql` on every TLS connection (mandatory for direct TLS) |
    /// | `enable_sni` | **replaced**: libpq's `sslsni` rule (host names only, never addresses) |
    /// | `enable_early_data` | **off**: pgtls sends nothing before the handshake completes |
    /// | ECH, `send_ticket_request`, settings rustls adds later | **not kept** (rustls's defaults) |
    ///
    /// Resumption: rustls's default config resumes; libpq never does (use
    /// `Resumption::disabled()` for its behaviour). Keeping the store is safe: rustls
    /// resumes a session only with the very verifier and client-certificate resolver
    /// objects that made it, and pgtls makes both per [`Config`] and host, so a session
    /// made under `require` is never resumed under `verify-full`. A resumed TLS 1.3 session
    /// is not verified again (it was when it was made); `sslcertmode=require` never resumes.
    pub fn rustls_client_config(mut self, config: impl Into<Arc<ClientConfig>>) -> Self {
        self.base = Some(config.into());
        self
    }

    /// The server's TCP port. pgtls connects nothing itself; the port only scopes
    /// resumed sessions ([`Self::session_resumption`]): a session is offered again only to
    /// the port it was made with. [`Config::with_port`] sets it per connection target
    /// (`libpq::Settings::to_configs` and `tokio_postgres::connect` do; the other
    /// adapters open the caller's transport and use the config as given). A connector
    /// that is never told the port — tokio-postgres's `MakeTlsConnect` gets the host
    /// name only — uses this one for every connection: with resumption on, give such a
    /// connector a config per port.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Session resumption, a pgtls extension: off by default, as libpq (which never
    /// resumes). With [`SessionResumption::in_memory`], a TLS 1.3 ticket or TLS 1.2
    /// session the server gave is offered on the next connection made from the same
    /// [`Config`] (or its clones) to the same port, and a server that accepts it skips
    /// the certificate exchange: less CPU on both sides (a pooler such as pgbouncer
    /// issues tickets; PostgreSQL itself never does, so against it nothing changes).
    ///
    /// ```
    /// use pgtls::{Config, SessionResumption, SslMode};
    /// # fn main() -> Result<(), pgtls::ConfigError> {
    /// let config = Config::builder()
    ///     .sslmode(SslMode::Require)
    ///     .host("pooler.example.com")
    ///     .port(6432)
    ///     .session_resumption(SessionResumption::in_memory())
    ///     .build()?;
    /// assert!(config.resumes_sessions());
    /// # Ok(()) }
    /// ```
    ///
    /// # Where a session is offered
    /// Only to the endpoint it was made with, after a full verification under the same
    /// rules: the same [`Config`] host (name and SNI), port, sslmode, roots, CRLs, verifier
    /// and client certificate. Sessions live in the [`Config`] built here (shared by its
    /// clones and by [`Config::with_port`]); [`Config::with_host`] and every other
    /// [`Self::build`] start empty, so a session made under `require` is never offered
    /// under `verify-ca` or `verify-full`. A [`Config`] without a port ([`Self::port`],
    /// [`Config::with_port`]) never resumes. `sslcertmode=require` never resumes either
    /// (it must see the server's certificate request, which a resumed handshake lacks).
    /// Memory is bounded: [`SessionResumption::max_ports`] ports per host, each with at
    /// most [`SessionResumption::TICKETS_PER_PORT`] tickets and one TLS 1.2 session.
    ///
    /// # What a resumed session skips
    /// The server does not send its certificate again, so nothing is verified again:
    /// the chain, the CRLs, the validity dates and (verify-full) the host name were
    /// checked when the session was made, and the resumption proves the server still
    /// holds that session's secret. A CRL published since, or a certificate the server
    /// replaced while keeping its ticket keys, is not seen until the next full handshake
    /// (the ticket lifetime the server chose, at most 7 days, bounds this). A ticket the
    /// server rejects, or one past its lifetime on this config's clock, means a full
    /// handshake, verified exactly as without resumption.
    /// [`crate::Session::resumed`] tells which kind a connection had.
    ///
    /// With [`Self::rustls_client_config`], enabling this replaces that config's session
    /// store by pgtls's per-port stores.
    pub fn session_resumption(mut self, resumption: SessionResumption) -> Self {
        self.session_resumption = resumption;
        self
    }

    /// Validates the settings with libpq's rules and builds the shared rustls config.
    ///
    /// # Errors
    /// - `weak sslmode "<v>" may not be used with sslnegotiation=direct (...)`
    /// - `weak sslmode "<v>" may not be used with sslrootcert=system (use "verify-full")`
    /// - `invalid SSL protocol version range`
    /// - verify-ca / verify-full without root certificates
    /// - verify-full without a host name
    /// - a certificate, key or CRL that cannot be used
    pub fn build(mut self) -> Result<Config, ConfigError> {
        let sslmode = self.effective_sslmode()?;
        if self.negotiation == SslNegotiation::Direct && !sslmode.requires_tls() {
            return Err(ConfigError::WeakModeWithDirect(sslmode.as_str().to_owned()));
        }
        if let Some(max) = self.max_version {
            if self.min_version > max {
                return Err(ConfigError::InvalidVersionRange);
            }
        }
        if sslmode.requires_verification()
            && self.roots.is_none()
            && self.tls_setup_error.is_none()
            && self.server_cert_verifier.is_none()
        {
            return Err(ConfigError::NoRootCertificates { path: None });
        }
        let host = std::mem::take(&mut self.host);
        let negotiation = self.negotiation;
        let certmode = self.certmode;
        let sni = self.sni;
        let tls_setup_error = self.tls_setup_error.clone();
        let port = self.port;
        let session_resumption = self.session_resumption;
        let shared = if sslmode == SslMode::Disable || tls_setup_error.is_some() {
            if self.key_exchange_groups.is_some() {
                // The same answer for a group the provider lacks, whether or not TLS is used.
                self.key_exchange_provider()?;
            }
            None
        } else {
            Some(Arc::new(self.build_shared()?))
        };
        let config = Config {
            sslmode,
            negotiation,
            certmode,
            sni,
            shared,
            host: Arc::from(""),
            port,
            session_resumption,
            tls: None,
            port_scopes: None,
            tls_setup_error,
        };
        config.with_host(&host)
    }

    fn effective_sslmode(&self) -> Result<SslMode, ConfigError> {
        match (self.sslmode, self.roots.is_system()) {
            (None, true) => Ok(SslMode::VerifyFull),
            (None, false) => Ok(SslMode::Prefer),
            (Some(mode), true) if mode != SslMode::VerifyFull => Err(
                ConfigError::WeakModeWithSystemRoots(mode.as_str().to_owned()),
            ),
            (Some(mode), _) => Ok(mode),
        }
    }

    /// The provider: the caller's, else the base config's, else the compiled one; with the
    /// caller's group preference or P-256 first, and TLS 1.3's extracts computed once
    /// ([`extract_once`]).
    fn key_exchange_provider(&self) -> Result<Arc<CryptoProvider>, ConfigError> {
        let (provider, extra_groups) = match (&self.provider, &self.base) {
            (Some(provider), _) => (provider.clone(), &[][..]),
            (None, Some(base)) => (base.crypto_provider().clone(), &[][..]),
            (None, None) => (
                default_provider()?,
                key_exchange::compiled_provider_groups(),
            ),
        };
        let provider = extract_once::extract_once(CryptoProvider::clone(&provider));
        Ok(Arc::new(match &self.key_exchange_groups {
            Some(groups) => key_exchange::with_preference(provider, groups, extra_groups)?,
            None => key_exchange::postgres_key_share_first(provider),
        }))
    }

    fn build_shared(self) -> Result<SharedTls, ConfigError> {
        let provider = self.key_exchange_provider()?;
        let chain = match &self.roots {
            RootCertificates::None => ChainPolicy::Nothing,
            RootCertificates::Certificates(certs) => ChainPolicy::Store(Arc::new(
                verify::store_from_root_file(certs, &self.crls, self.crl_check)?,
            )),
            // libpq never applies CRLs to sslrootcert=system.
            RootCertificates::System(certs) => {
                ChainPolicy::Store(Arc::new(verify::store_from_root_file(certs, &[], None)?))
            }
            #[cfg(feature = "webpki-roots")]
            RootCertificates::WebPki => ChainPolicy::Store(Arc::new(verify::store_from_anchors(
                webpki_roots::TLS_SERVER_ROOTS,
            ))),
        };
        let chain_cache = match &chain {
            ChainPolicy::Store(_) => verify::VerifiedChainCache::new(self.verified_chain_cache),
            ChainPolicy::Nothing => None,
        }
        .map(Arc::new);
        let client_key = match self.client_cert {
            Some((chain, key)) if self.certmode != SslCertMode::Disable => {
                Some(Arc::new(load_client_key(chain, key, &provider)?))
            }
            _ => None,
        };
        let versions = protocol_versions(self.min_version, self.max_version);
        let base_resolver = match &self.base {
            Some(base) if self.certmode != SslCertMode::Disable => {
                Some(base.client_auth_cert_resolver.clone())
            }
            _ => None,
        };
        let time_provider = self
            .time_provider
            .or_else(|| self.base.as_ref().map(|base| base.time_provider.clone()));
        Ok(SharedTls {
            provider,
            chain,
            chain_cache,
            client_key,
            base_resolver,
            versions,
            time_provider,
            key_log: self.key_log,
            server_cert_verifier: self.server_cert_verifier,
            base: self.base,
        })
    }
}

/// The provider chosen by cargo features when the caller passes none, with
/// [`key_exchange::postgres_key_share_first`] applied (a rustls server follows the
/// client's group order, so the server side of pgtls is unaffected by it).
pub(crate) fn default_provider() -> Result<Arc<CryptoProvider>, ConfigError> {
    #[cfg(feature = "aws-lc-rs")]
    {
        Ok(Arc::new(key_exchange::postgres_key_share_first(
            rustls::crypto::aws_lc_rs::default_provider(),
        )))
    }
    #[cfg(all(not(feature = "aws-lc-rs"), feature = "ring"))]
    {
        // rustls 0.23.48 deprecates ring's default provider (it has no post-quantum key
        // exchange); ring stays the provider of the `ring` feature and of wasm32, where
        // aws-lc-rs does not build. The lockfile has 0.23.46; the MSRV build resolves newer.
        #[allow(deprecated)]
        let ring = rustls::crypto::ring::default_provider();
        Ok(Arc::new(key_exchange::postgres_key_share_first(ring)))
    }
    #[cfg(not(any(feature = "aws-lc-rs", feature = "ring")))]
    {
        Err(ConfigError::NoCryptoProvider)
    }
}

/// The TLS versions rustls may use between libpq's min and max.
pub(crate) fn protocol_versions(
    min: TlsVersion,
    max: Option<TlsVersion>,
) -> Vec<&'static rustls::SupportedProtocolVersion> {
    let max = max.unwrap_or(TlsVersion::Tls1_3);
    let mut versions = Vec::with_capacity(2);
    if max >= TlsVersion::Tls1_3 {
        versions.push(&rustls::version::TLS13);
    }
    if min <= TlsVersion::Tls1_2 && max >= TlsVersion::Tls1_2 {
        versions.push(&rustls::version::TLS12);
    }
    versions
}

/// Loads the client key with the provider and checks that it matches the certificate.
///
/// rustls's own `CertifiedKey::from_der` parses the certificate with webpki, which
/// rejects X.509 v1 client certificates; the comparison is done on the SPKI instead.
fn load_client_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, ConfigError> {
    if chain.is_empty() {
        return Err(ConfigError::BadCredential {
            what: "client certificate",
            reason: "the certificate chain is empty".into(),
        });
    }
    let signing_key =
        provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| ConfigError::BadCredential {
                what: "private key",
                reason: e.to_string(),
            })?;
    if let Some(key_spki) = signing_key.public_key() {
        let cert_spki = verify::subject_public_key_info(&chain[0]).map_err(|reason| {
            ConfigError::BadCredential {
                what: "client certificate",
                reason,
            }
        })?;
        if key_spki.as_ref() != cert_spki.as_slice() {
            return Err(ConfigError::BadCredential {
                what: "private key",
                reason: "certificate does not match private key".into(),
            });
        }
    }
    Ok(CertifiedKey::new(chain, signing_key))
}

/// What every connection of every host shares: built once per [`ConfigBuilder::build`].
struct SharedTls {
    provider: Arc<CryptoProvider>,
    chain: ChainPolicy,
    /// Successful verifications against `chain`'s store.
    chain_cache: Option<Arc<verify::VerifiedChainCache>>,
    client_key: Option<Arc<CertifiedKey>>,
    /// The base config's client-certificate resolver, used when no client key is set.
    base_resolver: Option<Arc<dyn ResolvesClientCert>>,
    versions: Vec<&'static rustls::SupportedProtocolVersion>,
    time_provider: Option<Arc<dyn TimeProvider>>,
    key_log: Option<Arc<dyn KeyLog>>,
    server_cert_verifier: Option<Arc<dyn ServerCertVerifier>>,
    /// The caller's rustls config this one starts from.
    base: Option<Arc<ClientConfig>>,
}

impl SharedTls {
    fn client_cert_resolver(&self) -> ClientCertResolver {
        let fallback = match &self.client_key {
            Some(_) => None,
            None => self.base_resolver.clone(),
        };
        ClientCertResolver::new(self.client_key.clone(), fallback)
    }
}

/// Validated settings for one server host, with the shared rustls config.
///
/// Cheap to clone. Build one per host (see [`Config::with_host`]) and start every
/// connection to that host from it: roots, CRLs and keys are parsed only once.
#[derive(Clone)]
pub struct Config {
    sslmode: SslMode,
    negotiation: SslNegotiation,
    certmode: SslCertMode,
    sni: bool,
    host: Arc<str>,
    /// Scopes resumed sessions only ([`ConfigBuilder::port`]).
    port: Option<u16>,
    session_resumption: SessionResumption,
    shared: Option<Arc<SharedTls>>,
    /// `None` for `disable`, when no TLS version is usable, or after a setup error.
    /// With resumption and a port: that port's config (its own session store).
    tls: Option<Arc<ClientConfig>>,
    /// The host's per-port configs, when resumption is on (shared by clones).
    port_scopes: Option<Arc<PortScopes>>,
    /// Why TLS attempts fail before they start (see [`ConfigBuilder::tls_setup_error`]).
    tls_setup_error: Option<Arc<str>>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("sslmode", &self.sslmode)
            .field("negotiation", &self.negotiation)
            .field("certmode", &self.certmode)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("session_resumption", &self.session_resumption)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Config {
    /// A builder with libpq's defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// The same settings for another host (a multi-host connection string): reuses the
    /// parsed roots, CRLs and client key; builds a new rustls config bound to `host`.
    ///
    /// # Errors
    /// verify-full with an empty host:
    /// `host name must be specified for a verified SSL connection`.
    pub fn with_host(&self, host: &str) -> Result<Config, ConfigError> {
        if self.sslmode == SslMode::VerifyFull && host.is_empty() {
            return Err(ConfigError::MissingHostName);
        }
        let host_tls = match &self.shared {
            Some(shared) if !shared.versions.is_empty() => {
                Some(Arc::new(self.client_config(shared, host)?))
            }
            _ => None,
        };
        let port_scopes = host_tls
            .as_ref()
            .and_then(|tls| PortScopes::new(tls.clone(), self.session_resumption))
            .map(Arc::new);
        let config = Config {
            host: Arc::from(host),
            tls: host_tls,
            port_scopes,
            ..self.clone()
        };
        Ok(match config.port {
            Some(port) => config.with_port(port),
            None => config,
        })
    }

    /// The same settings and host for another port. With
    /// [`ConfigBuilder::session_resumption`], sessions are kept per port: this config
    /// offers only the sessions made on `port` (by any config sharing this one's host
    /// config: its clones and their `with_port`s).
    pub fn with_port(&self, port: u16) -> Config {
        let tls = match &self.port_scopes {
            Some(scopes) => Some(scopes.config_for_port(port)),
            None => self.tls.clone(),
        };
        Config {
            port: Some(port),
            tls,
            ..self.clone()
        }
    }

    /// The port given by [`ConfigBuilder::port`] or [`Config::with_port`].
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Whether connections from this config may resume sessions: resumption is on
    /// ([`ConfigBuilder::session_resumption`]), a port is set and TLS can be used.
    /// (A caller's [`ConfigBuilder::rustls_client_config`] may bring its own store.)
    pub fn resumes_sessions(&self) -> bool {
        self.port.is_some() && self.port_scopes.is_some()
    }

    fn client_config(&self, shared: &SharedTls, host: &str) -> Result<ClientConfig, ConfigError> {
        let verifier = verify::server_verifier(
            self.sslmode,
            shared.server_cert_verifier.as_ref(),
            LibpqVerifier::new(
                shared.chain.clone(),
                (self.sslmode == SslMode::VerifyFull).then(|| host.to_owned()),
                shared.provider.signature_verification_algorithms,
            )
            .with_chain_cache(shared.chain_cache.clone()),
        );
        let builder = match &shared.time_provider {
            Some(time) => ClientConfig::builder_with_details(shared.provider.clone(), time.clone()),
            None => ClientConfig::builder_with_provider(shared.provider.clone()),
        };
        let mut config = builder
            .with_protocol_versions(&shared.versions)?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_cert_resolver(Arc::new(shared.client_cert_resolver()));
        config.resumption = Resumption::disabled();
        if let Some(base_config) = &shared.base {
            base::inherit(base_config, &mut config);
        }
        if self.session_resumption.is_enabled() {
            // pgtls's per-port stores replace the caller's (see PortScopes); a config
            // without a port resumes nothing.
            config.resumption = Resumption::disabled();
        }
        config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
        config.enable_sni = sends_sni(self.sni, host);
        if let Some(key_log) = &shared.key_log {
            config.key_log = key_log.clone();
        }
        Ok(config)
    }

    /// What the verified-chain cache ([`ConfigBuilder::verified_chain_cache`]) has done for
    /// the connections of this config and of its [`Self::with_host`] copies; `None` when
    /// there is no cache (turned off, or no root certificates to verify against).
    pub fn verified_chain_cache_stats(&self) -> Option<verify::VerifiedChainCacheStats> {
        let cache = self.shared.as_ref()?.chain_cache.as_ref()?;
        Some(cache.stats())
    }

    /// The effective sslmode (after `sslrootcert=system`'s default).
    pub fn sslmode(&self) -> SslMode {
        self.sslmode
    }

    /// The negotiation.
    pub fn negotiation(&self) -> SslNegotiation {
        self.negotiation
    }

    /// `sslcertmode`.
    pub fn certmode(&self) -> SslCertMode {
        self.certmode
    }

    /// The host name used for SNI and verification.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether SNI will be sent: `sslsni` is on, the host is a name (libpq's rule) and
    /// rustls can carry it (a valid DNS name).
    pub fn sends_sni(&self) -> bool {
        sends_sni(self.sni, &self.host)
    }

    /// Whether the server's chain is verified on TLS attempts: a root source is set, or
    /// the caller's verifier ([`ConfigBuilder::server_cert_verifier`]) decides under
    /// verify-ca / verify-full.
    pub fn verifies_chain(&self) -> bool {
        self.shared.as_ref().is_some_and(|s| {
            !matches!(s.chain, ChainPolicy::Nothing)
                || (s.server_cert_verifier.is_some() && self.sslmode.requires_verification())
        })
    }

    /// The shared rustls config, `None` under `disable` or when the version range leaves
    /// rustls nothing to speak.
    pub fn rustls_config(&self) -> Option<&Arc<ClientConfig>> {
        self.tls.as_ref()
    }

    /// Why a TLS attempt cannot start with this config.
    pub(crate) fn tls_unavailable(&self) -> crate::Error {
        match &self.tls_setup_error {
            Some(message) => crate::Error::TlsSetup(message.to_string()),
            None => crate::Error::NoProtocolsAvailable,
        }
    }

    /// The rustls config and server name for one new TLS connection, plus the resolver
    /// that records whether the server asked for a client certificate.
    ///
    /// Under `sslcertmode=require` the config is cloned per connection (cheap: no
    /// parsing) so that the record belongs to that connection alone.
    pub(crate) fn tls_for_connection(&self) -> Option<TlsStart> {
        let shared_config = self.tls.as_ref()?;
        let shared = self.shared.as_ref()?;
        let (config, recorder) = if self.certmode == SslCertMode::Require {
            let resolver = Arc::new(shared.client_cert_resolver());
            let mut config = ClientConfig::clone(shared_config);
            config.client_auth_cert_resolver = resolver.clone();
            (Arc::new(config), Some(resolver))
        } else {
            (shared_config.clone(), None)
        };
        Some(TlsStart {
            config,
            server_name: server_name_for(&self.host),
            cert_request_recorder: recorder,
        })
    }
}

/// What a TLS attempt starts from.
pub(crate) struct TlsStart {
    pub(crate) config: Arc<ClientConfig>,
    pub(crate) server_name: ServerName<'static>,
    pub(crate) cert_request_recorder: Option<Arc<ClientCertResolver>>,
}

/// libpq's SNI rule, limited to what rustls can put in SNI.
fn sends_sni(enabled: bool, host: &str) -> bool {
    enabled && verify::sni_allowed(host) && matches!(server_name_for(host), ServerName::DnsName(_))
}

/// The rustls `ServerName` for a libpq host.
///
/// rustls sends SNI only for DNS names; libpq's "is it an IP" test (inet_aton forms) is
/// applied first so that `192.000.002.001` is an address, not a name. A host rustls
/// cannot express as a DNS name (empty, or characters DNS forbids) becomes the
/// unspecified address, which suppresses SNI; pgtls's verifier never reads the
/// `ServerName` (host-name checks use the host string itself).
fn server_name_for(host: &str) -> ServerName<'static> {
    if let Some(ip) = verify::parse_host_ip(host) {
        return ServerName::IpAddress(ip.into());
    }
    match ServerName::try_from(host.to_owned()) {
        Ok(name) => name,
        Err(_) => ServerName::IpAddress(std::net::IpAddr::from([0u8, 0, 0, 0]).into()),
    }
}

/// Hands out the configured client certificate when the server asks, and remembers
/// that it asked (for `sslcertmode=require`).
#[derive(Debug)]
pub(crate) struct ClientCertResolver {
    key: Option<Arc<CertifiedKey>>,
    /// The resolver of the caller's rustls config, asked when `key` is `None`.
    fallback: Option<Arc<dyn ResolvesClientCert>>,
    requested: std::sync::atomic::AtomicBool,
    sent: std::sync::atomic::AtomicBool,
}

impl ClientCertResolver {
    fn new(key: Option<Arc<CertifiedKey>>, fallback: Option<Arc<dyn ResolvesClientCert>>) -> Self {
        ClientCertResolver {
            key,
            fallback,
            requested: std::sync::atomic::AtomicBool::new(false),
            sent: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether the server sent a CertificateRequest on this connection.
    pub(crate) fn was_requested(&self) -> bool {
        self.requested.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether a client certificate was handed to rustls for this connection.
    pub(crate) fn was_sent(&self) -> bool {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl ResolvesClientCert for ClientCertResolver {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.requested
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let key = match (&self.key, &self.fallback) {
            (Some(key), _) => key.clone(),
            (None, Some(fallback)) => fallback.resolve(root_hint_subjects, sigschemes)?,
            (None, None) => return None,
        };
        // Offer the certificate only if its key can sign with a scheme the server accepts.
        key.key.choose_scheme(sigschemes)?;
        self.sent.store(true, std::sync::atomic::Ordering::Relaxed);
        Some(key)
    }

    fn has_certs(&self) -> bool {
        self.key.is_some() || self.fallback.as_ref().is_some_and(|f| f.has_certs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_provider_sends_a_p256_key_share_first() {
        let provider = default_provider().unwrap();
        let names: Vec<_> = provider.kx_groups.iter().map(|g| g.name()).collect();
        assert_eq!(names.first(), Some(&rustls::NamedGroup::secp256r1));
        assert!(names.contains(&rustls::NamedGroup::X25519));
        #[cfg(feature = "aws-lc-rs")]
        assert_eq!(
            names.len(),
            rustls::crypto::aws_lc_rs::default_provider()
                .kx_groups
                .len()
        );
    }

    #[test]
    fn sslmode_parsing_is_case_sensitive_with_libpq_message() {
        for mode in SslMode::ALL {
            assert_eq!(mode.as_str().parse::<SslMode>().unwrap(), mode);
        }
        let err = "Require".parse::<SslMode>().unwrap_err();
        assert_eq!(err.to_string(), "invalid sslmode value: \"Require\"");
        assert_eq!(SslMode::default(), SslMode::Prefer);
    }

    #[test]
    fn negotiation_and_certmode_parsing() {
        assert_eq!(
            "direct".parse::<SslNegotiation>().unwrap(),
            SslNegotiation::Direct
        );
        assert_eq!(
            "Direct".parse::<SslNegotiation>().unwrap_err().to_string(),
            "invalid sslnegotiation value: \"Direct\""
        );
        assert_eq!(
            "require".parse::<SslCertMode>().unwrap(),
            SslCertMode::Require
        );
        assert_eq!(
            "x".parse::<SslCertMode>().unwrap_err().to_string(),
            "invalid sslcertmode value: \"x\""
        );
    }

    #[test]
    fn versions_parse_case_insensitively() {
        assert_eq!(
            TlsVersion::parse_for("ssl_min_protocol_version", "tlsv1.3").unwrap(),
            TlsVersion::Tls1_3
        );
        assert_eq!(
            TlsVersion::parse_for("ssl_max_protocol_version", "TLSv1.4")
                .unwrap_err()
                .to_string(),
            "invalid ssl_max_protocol_version value: \"TLSv1.4\""
        );
    }

    #[test]
    fn direct_needs_a_strong_mode() {
        for mode in SslMode::ALL {
            let result = Config::builder()
                .sslmode(mode)
                .negotiation(SslNegotiation::Direct)
                .host("localhost")
                .root_certificates(RootCertificates::Certificates(Vec::new()))
                .build();
            match mode {
                SslMode::Disable | SslMode::Allow | SslMode::Prefer => assert_eq!(
                    result.unwrap_err().to_string(),
                    format!("weak sslmode \"{mode}\" may not be used with sslnegotiation=direct (use \"require\", \"verify-ca\", or \"verify-full\")")
                ),
                _ => assert!(result.is_ok(), "{mode}: {:?}", result.err()),
            }
        }
    }

    #[test]
    fn system_roots_default_to_verify_full_and_refuse_weaker_modes() {
        let system = RootCertificates::System(Vec::new());
        let config = Config::builder()
            .root_certificates(system.clone())
            .host("db.example.com")
            .build()
            .unwrap();
        assert_eq!(config.sslmode(), SslMode::VerifyFull);
        for mode in [
            SslMode::Disable,
            SslMode::Allow,
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
        ] {
            let err = Config::builder()
                .sslmode(mode)
                .root_certificates(system.clone())
                .build()
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("weak sslmode \"{mode}\" may not be used with sslrootcert=system (use \"verify-full\")")
            );
        }
    }

    #[test]
    fn version_range_and_missing_roots_and_host() {
        let err = Config::builder()
            .min_protocol_version(TlsVersion::Tls1_3)
            .max_protocol_version(Some(TlsVersion::Tls1_2))
            .build()
            .unwrap_err();
        assert_eq!(err.to_string(), "invalid SSL protocol version range");
        assert!(matches!(
            Config::builder()
                .sslmode(SslMode::VerifyCa)
                .build()
                .unwrap_err(),
            ConfigError::NoRootCertificates { .. }
        ));
        assert_eq!(
            Config::builder()
                .sslmode(SslMode::VerifyFull)
                .root_certificates(RootCertificates::Certificates(Vec::new()))
                .build()
                .unwrap_err()
                .to_string(),
            "host name must be specified for a verified SSL connection"
        );
    }

    #[test]
    fn no_usable_version_leaves_no_rustls_config() {
        let config = Config::builder()
            .min_protocol_version(TlsVersion::Tls1_0)
            .max_protocol_version(Some(TlsVersion::Tls1_1))
            .build()
            .unwrap();
        assert!(config.rustls_config().is_none());
        let config = Config::builder().sslmode(SslMode::Disable).build().unwrap();
        assert!(config.rustls_config().is_none());
    }

    #[test]
    fn one_shared_rustls_config_with_libpq_settings() {
        let config = Config::builder().host("db.example.com").build().unwrap();
        let tls = config.rustls_config().unwrap();
        assert_eq!(tls.alpn_protocols, vec![b"postgresql".to_vec()]);
        assert!(tls.enable_sni);
        let a = config.tls_for_connection().unwrap();
        let b = config.tls_for_connection().unwrap();
        assert!(Arc::ptr_eq(&a.config, &b.config));
        let ip = config.with_host("127.0.0.1").unwrap();
        assert!(!ip.rustls_config().unwrap().enable_sni);
        assert!(!ip.sends_sni());
        assert!(matches!(
            ip.tls_for_connection().unwrap().server_name,
            ServerName::IpAddress(_)
        ));
    }
}
