//! The acceptor's settings: the server's TLS material ([`ServerTls`]) and the policy
//! ([`AcceptorConfig`]). Built once, shared by every connection (cloning is cheap).

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{
    ClientHello, NoServerSessionStorage, ProducesTickets, ResolvesServerCert,
    ServerSessionMemoryCache,
};
use rustls::sign::CertifiedKey;
use rustls::time_provider::TimeProvider;
use rustls::ServerConfig;

use super::credentials::{certified_key, KeyProblem, KEY_VALUES_MISMATCH};
use super::tls::RecordingResolver;
use crate::config::{default_provider, extract_once, protocol_versions};
use crate::wire::ALPN_POSTGRESQL;
use crate::{ConfigError, TlsVersion};

/// The server's TLS configuration: one `Arc<rustls::ServerConfig>` with ALPN
/// `postgresql`, built once.
///
/// Built from a certificate chain and key ([`ServerTls::new`], [`ServerTls::from_pem`],
/// [`ServerTls::builder`]) it behaves like PostgreSQL's server: ALPN `postgresql`, no
/// session resumption (no tickets, no cache; [`ServerTlsBuilder::session_tickets`] opts
/// in), TLS 1.2 and 1.3, client certificates
/// requested only when client CAs are given. [`ServerTls::from_rustls`] takes any rustls
/// configuration (SNI-based certificate selection, for instance) and only sets its ALPN
/// list to `postgresql`.
#[derive(Clone)]
pub struct ServerTls {
    pub(crate) config: Arc<ServerConfig>,
    /// The certificate, when pgtls built the configuration (it then always presents it).
    pub(crate) certified: Option<Arc<CertifiedKey>>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("single_certificate", &self.certified.is_some())
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// A server presenting `chain` (leaf first) with `key`, with the default crypto
    /// provider (aws-lc-rs, or ring) and no client certificates.
    ///
    /// # Errors
    /// The key cannot be loaded or does not match the leaf; the chain is empty.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<ServerTls, ConfigError> {
        ServerTls::builder(chain, key).build()
    }

    /// [`ServerTls::new`] from PEM: the certificate file (leaf first, then intermediates)
    /// and the key file (PKCS#8, PKCS#1 or SEC1), as PostgreSQL's `ssl_cert_file` and
    /// `ssl_key_file`.
    ///
    /// # Errors
    /// No certificate or no key in the PEM, or as [`ServerTls::new`].
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<ServerTls, ConfigError> {
        let (chain, key) = parse_pem(cert_pem, key_pem)?;
        ServerTls::new(chain, key)
    }

    /// A builder for the less common settings (client certificates, provider, clock,
    /// protocol versions).
    pub fn builder(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> ServerTlsBuilder {
        ServerTlsBuilder {
            chain,
            key,
            provider: None,
            time_provider: None,
            client_verifier: None,
            client_cas: None,
            client_crls: Vec::new(),
            client_crl_check: None,
            min_version: TlsVersion::Tls1_2,
            max_version: None,
            session_tickets: SessionTickets::disabled(),
        }
    }

    /// Any rustls server configuration; its ALPN list is replaced by `postgresql` (what
    /// PostgreSQL 17 announces; a client offering other protocols only is refused).
    ///
    /// The resolver is wrapped (once, here) so that the certificate it picks for each
    /// ClientHello is noted, and [`crate::Session::channel_binding`] hashes exactly the
    /// certificate presented. The configuration is copied once, here; nothing is cloned
    /// per connection.
    pub fn from_rustls(config: Arc<ServerConfig>) -> ServerTls {
        let mut owned = (*config).clone();
        owned.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
        owned.cert_resolver = Arc::new(RecordingResolver(owned.cert_resolver.clone()));
        ServerTls {
            config: Arc::new(owned),
            certified: None,
        }
    }

    /// The rustls configuration in use.
    pub fn rustls_config(&self) -> &Arc<ServerConfig> {
        &self.config
    }
}

/// Builds a [`ServerTls`]; see [`ServerTls::builder`].
pub struct ServerTlsBuilder {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: Option<Arc<CryptoProvider>>,
    time_provider: Option<Arc<dyn TimeProvider>>,
    client_verifier: Option<Arc<dyn ClientCertVerifier>>,
    client_cas: Option<Vec<CertificateDer<'static>>>,
    client_crls: Vec<CertificateRevocationListDer<'static>>,
    /// Forces CRL checking on (a CRL directory that held no CRL) or off.
    client_crl_check: Option<bool>,
    min_version: TlsVersion,
    max_version: Option<TlsVersion>,
    session_tickets: SessionTickets,
}

impl std::fmt::Debug for ServerTlsBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTlsBuilder")
            .field("chain_len", &self.chain.len())
            .field("min_version", &self.min_version)
            .field("max_version", &self.max_version)
            .field("session_tickets", &self.session_tickets)
            .finish_non_exhaustive()
    }
}

impl ServerTlsBuilder {
    /// The rustls crypto provider. Default: aws-lc-rs if that feature is on, else ring.
    pub fn crypto_provider(mut self, provider: Arc<CryptoProvider>) -> Self {
        self.provider = Some(provider);
        self
    }

    /// The clock rustls uses (certificate validity of client certificates).
    pub fn time_provider(mut self, time: Arc<dyn TimeProvider>) -> Self {
        self.time_provider = Some(time);
        self
    }

    /// Request client certificates and verify them against these CAs, as PostgreSQL's
    /// `ssl_ca_file`: a client without a certificate is still accepted (pg_hba's `cert`
    /// method, or the caller, decides), one with a certificate that does not verify is
    /// refused in the handshake. The chain is then in [`crate::Session::peer_certificates`].
    pub fn client_ca_certificates(mut self, cas: Vec<CertificateDer<'static>>) -> Self {
        self.client_cas = Some(cas);
        self
    }

    /// Certificate revocation lists for the client CAs, as PostgreSQL's `ssl_crl_file`
    /// and `ssl_crl_dir`: a revoked client certificate is refused with the alert
    /// `certificate_revoked`, and once any CRL is given every certificate of a client's
    /// chain must be covered by one. Only used with
    /// [`Self::client_ca_certificates`].
    pub fn client_crls(mut self, crls: Vec<CertificateRevocationListDer<'static>>) -> Self {
        self.client_crls = crls;
        self
    }

    /// CRL checking forced on or off; `None` (the default) checks when any CRL was given.
    /// PostgreSQL turns it on whenever `ssl_crl_file` or `ssl_crl_dir` loaded, even when
    /// they held no CRL (every client certificate then fails: `unable to get certificate
    /// CRL`).
    pub fn client_crl_check(mut self, check: Option<bool>) -> Self {
        self.client_crl_check = check;
        self
    }

    /// Any rustls client-certificate verifier (overrides
    /// [`Self::client_ca_certificates`]).
    pub fn client_cert_verifier(mut self, verifier: Arc<dyn ClientCertVerifier>) -> Self {
        self.client_verifier = Some(verifier);
        self
    }

    /// PostgreSQL's `ssl_min_protocol_version` (default TLSv1.2; rustls has no older one).
    pub fn min_protocol_version(mut self, version: TlsVersion) -> Self {
        self.min_version = version;
        self
    }

    /// PostgreSQL's `ssl_max_protocol_version` (default: none, i.e. TLSv1.3).
    pub fn max_protocol_version(mut self, version: Option<TlsVersion>) -> Self {
        self.max_version = version;
        self
    }

    /// Session resumption for clients, a pgtls extension: off by default, as in
    /// PostgreSQL (no tickets, no session cache). See [`SessionTickets`] for what is
    /// sent, how keys rotate and how much memory it takes.
    pub fn session_tickets(mut self, tickets: SessionTickets) -> Self {
        self.session_tickets = tickets;
        self
    }

    /// Builds the configuration (the key is parsed and checked against the leaf here,
    /// once).
    ///
    /// # Errors
    /// An empty chain, a key the provider cannot load or that does not match the leaf,
    /// unusable client CAs, an empty version range.
    pub fn build(self) -> Result<ServerTls, ConfigError> {
        if self.chain.is_empty() {
            return Err(ConfigError::BadCredential {
                what: "server certificate",
                reason: "no certificate given".into(),
            });
        }
        if self.max_version.is_some_and(|max| max < self.min_version) {
            return Err(ConfigError::InvalidVersionRange);
        }
        let versions = protocol_versions(self.min_version, self.max_version);
        if versions.is_empty() {
            return Err(ConfigError::Rustls(rustls::Error::General(
                "no TLS protocol version left between the minimum and the maximum".into(),
            )));
        }
        let provider = match self.provider {
            Some(provider) => provider,
            None => default_provider()?,
        };
        // TLS 1.3's extracts computed once, as on the client side (the same key schedule).
        let provider = Arc::new(extract_once(CryptoProvider::clone(&provider)));
        // No webpki checks on our own certificate (X.509 v1 is served, as by OpenSSL):
        // only that the key is the leaf's.
        let certified =
            certified_key(self.chain, self.key, &provider).map_err(|problem| match problem {
                KeyProblem::Certificate(reason) => ConfigError::BadCredential {
                    what: "server certificate",
                    reason,
                },
                KeyProblem::Key(reason) => ConfigError::BadCredential {
                    what: "private key",
                    reason,
                },
                KeyProblem::Mismatch => ConfigError::BadCredential {
                    what: "private key",
                    reason: format!("check of private key failed: {KEY_VALUES_MISMATCH}"),
                },
            })?;
        let verifier = match (self.client_verifier, self.client_cas) {
            (Some(verifier), _) => Some(verifier),
            (None, Some(cas)) => Some(client_verifier(
                &cas,
                &self.client_crls,
                self.client_crl_check,
                &provider,
            )?),
            (None, None) => None,
        };
        let builder = match self.time_provider {
            Some(time) => ServerConfig::builder_with_details(provider, time),
            None => ServerConfig::builder_with_provider(provider),
        }
        .with_protocol_versions(&versions)?;
        let builder = match verifier {
            Some(verifier) => builder.with_client_cert_verifier(verifier),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(Arc::new(FixedCert(certified.clone())));
        config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
        // PostgreSQL's server disables resumption (no tickets, no session cache); tickets
        // are a pgtls extension, only when asked for.
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
        if self.session_tickets.is_enabled() {
            config.ticketer = rotating_ticketer()?;
            config.send_tls13_tickets = self.session_tickets.tickets_per_handshake;
            if self.session_tickets.tls12_sessions > 0 {
                config.session_storage =
                    ServerSessionMemoryCache::new(self.session_tickets.tls12_sessions);
            }
        }
        Ok(ServerTls {
            config: Arc::new(config),
            certified: Some(certified),
        })
    }
}

/// Session resumption offered by the acceptor ([`ServerTlsBuilder::session_tickets`]): a
/// pgtls extension. PostgreSQL issues no tickets and keeps no session cache, and neither
/// does pgtls by default ([`SessionTickets::disabled`]).
///
/// With [`SessionTickets::rotating`]:
/// - TLS 1.3: after each full handshake the server sends
///   [`SessionTickets::tickets_per_handshake`] stateless tickets (default 2), encrypted
///   with rustls's rotating ticketer (AES-256 and HMAC-SHA256 from the compiled crypto
///   library: aws-lc-rs, else ring): a new random key every 6 hours, the previous one
///   still accepted, so a ticket lives at most 12 hours; keys live only in memory and a
///   restart invalidates every ticket (clients then make a full handshake). Stateless
///   tickets take no server memory.
/// - TLS 1.2: sessions by ID in a cache of at most [`SessionTickets::tls12_sessions`]
///   entries (default 1024, a few hundred bytes each), and RFC 5077 tickets from the same
///   ticketer.
///
/// A resumed client is not asked for its certificate again: the client certificate
/// verified when the session was made is the session's
/// ([`crate::Session::peer_certificates`]).
///
/// ```
/// use pgtls::server::{ServerTls, SessionTickets};
/// # fn demo(chain: Vec<pgtls::rustls::pki_types::CertificateDer<'static>>,
/// #         key: pgtls::rustls::pki_types::PrivateKeyDer<'static>) -> Result<(), pgtls::ConfigError> {
/// let tls = ServerTls::builder(chain, key)
///     .session_tickets(SessionTickets::rotating().with_tickets_per_handshake(4))
///     .build()?;
/// assert_eq!(tls.rustls_config().send_tls13_tickets, 4);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionTickets {
    tickets_per_handshake: usize,
    tls12_sessions: usize,
}

impl Default for SessionTickets {
    fn default() -> Self {
        SessionTickets::disabled()
    }
}

impl SessionTickets {
    /// No tickets, no session cache: PostgreSQL's behaviour and the default.
    pub const fn disabled() -> Self {
        SessionTickets {
            tickets_per_handshake: 0,
            tls12_sessions: 0,
        }
    }

    /// Rotating ticket keys, 2 tickets per TLS 1.3 handshake, a TLS 1.2 cache of 1024
    /// sessions.
    pub const fn rotating() -> Self {
        SessionTickets {
            tickets_per_handshake: 2,
            tls12_sessions: 1024,
        }
    }

    /// How many TLS 1.3 tickets each full handshake sends (0 sends none: TLS 1.3 clients
    /// cannot resume).
    pub const fn with_tickets_per_handshake(mut self, tickets: usize) -> Self {
        self.tickets_per_handshake = tickets;
        self
    }

    /// The bound of the TLS 1.2 session-ID cache (0: no cache; TLS 1.2 tickets still
    /// resume when tickets are on).
    pub const fn with_tls12_sessions(mut self, sessions: usize) -> Self {
        self.tls12_sessions = sessions;
        self
    }

    /// TLS 1.3 tickets per full handshake.
    pub const fn tickets_per_handshake(self) -> usize {
        self.tickets_per_handshake
    }

    /// The TLS 1.2 session cache's bound.
    pub const fn tls12_sessions(self) -> usize {
        self.tls12_sessions
    }

    /// Whether the server lets clients resume at all.
    pub const fn is_enabled(self) -> bool {
        self.tickets_per_handshake > 0 || self.tls12_sessions > 0
    }
}

/// rustls's rotating ticketer from the compiled crypto library (6-hour keys).
fn rotating_ticketer() -> Result<Arc<dyn ProducesTickets>, ConfigError> {
    #[cfg(feature = "aws-lc-rs")]
    {
        Ok(rustls::crypto::aws_lc_rs::Ticketer::new()?)
    }
    #[cfg(all(not(feature = "aws-lc-rs"), feature = "ring"))]
    {
        Ok(rustls::crypto::ring::Ticketer::new()?)
    }
    #[cfg(not(any(feature = "aws-lc-rs", feature = "ring")))]
    {
        Err(ConfigError::NoCryptoProvider)
    }
}

/// Checks client certificates against `cas` and `crls` as PostgreSQL's server does
/// (`ssl_ca_file`, `ssl_crl_file`, `ssl_crl_dir`): a client without a certificate is let
/// through (pg_hba decides), one whose chain does not verify or is revoked is refused in
/// the handshake (`certificate verify failed`; alert `certificate_revoked` for a revoked
/// one). With CRLs, every certificate of the chain needs one (OpenSSL's
/// `X509_V_FLAG_CRL_CHECK_ALL`, which PostgreSQL sets).
///
/// The chain is judged by `crate::verify` with OpenSSL's `ssl_client` purpose (X.509 v1
/// accepted, security level 2 key sizes), not by webpki.
fn client_verifier(
    cas: &[CertificateDer<'static>],
    crls: &[CertificateRevocationListDer<'static>],
    crl_check: Option<bool>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, ConfigError> {
    crate::verify::client_verifier_with_crl_check(cas, crls, crl_check, provider)
}

/// Always presents the same certificate.
#[derive(Debug)]
pub(crate) struct FixedCert(pub(crate) Arc<CertifiedKey>);

impl ResolvesServerCert for FixedCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// Parses a PEM certificate chain and the first private key of a PEM key file.
fn parse_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), ConfigError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| ConfigError::BadCredential {
            what: "server certificate",
            reason: err.to_string(),
        })?;
    if chain.is_empty() {
        return Err(ConfigError::BadCredential {
            what: "server certificate",
            reason: "no PEM certificate found".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|err| ConfigError::BadCredential {
        what: "private key",
        reason: err.to_string(),
    })?;
    Ok((chain, key))
}

/// What the acceptor does with each kind of client. Built once, cloned cheaply.
///
/// | constructor | `SSLRequest` | plaintext startup | direct TLS (PG 17+) |
/// |---|---|---|---|
/// | [`AcceptorConfig::require_tls`] | `S` | FATAL 28000 "use sslmode=require" | accepted (ALPN `postgresql` required) |
/// | [`AcceptorConfig::allow_plaintext`] | `S` | accepted | accepted (ALPN `postgresql` required) |
/// | [`AcceptorConfig::plaintext_only`] | `N` | accepted | refused (closed, as before 17) |
///
/// [`AcceptorConfig::with_direct_tls`]`(false)` refuses direct TLS in the first two.
/// `GSSENCRequest` is always answered `N`; `CancelRequest` is always handed over, in
/// plaintext or inside TLS (libpq before 17 sends cancels in plaintext whatever the
/// sslmode, and cancels are not authenticated by TLS anyway).
#[derive(Debug, Clone)]
pub struct AcceptorConfig {
    pub(crate) tls: Option<ServerTls>,
    pub(crate) plaintext: bool,
    pub(crate) direct: bool,
}

impl AcceptorConfig {
    /// TLS required: plaintext startups get a FATAL ErrorResponse (SQLSTATE 28000) telling
    /// the user to connect with `sslmode=require`; direct TLS accepted.
    pub fn require_tls(tls: ServerTls) -> AcceptorConfig {
        AcceptorConfig {
            tls: Some(tls),
            plaintext: false,
            direct: true,
        }
    }

    /// TLS offered (`S`, direct TLS) and plaintext startups accepted too.
    pub fn allow_plaintext(tls: ServerTls) -> AcceptorConfig {
        AcceptorConfig {
            tls: Some(tls),
            plaintext: true,
            direct: true,
        }
    }

    /// No TLS at all: `SSLRequest` is answered `N`, direct TLS is refused.
    pub fn plaintext_only() -> AcceptorConfig {
        AcceptorConfig {
            tls: None,
            plaintext: true,
            direct: false,
        }
    }

    /// Whether direct TLS (a ClientHello as the first bytes, PostgreSQL 17+) is accepted.
    /// Ignored without TLS.
    pub fn with_direct_tls(mut self, accept: bool) -> AcceptorConfig {
        self.direct = accept && self.tls.is_some();
        self
    }

    /// The TLS configuration, if any.
    pub fn tls(&self) -> Option<&ServerTls> {
        self.tls.as_ref()
    }

    /// Whether plaintext startups are refused.
    pub fn requires_tls(&self) -> bool {
        !self.plaintext
    }

    /// Whether direct TLS is accepted.
    pub fn accepts_direct_tls(&self) -> bool {
        self.direct
    }
}
