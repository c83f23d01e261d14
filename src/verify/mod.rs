//! Certificate verification the way libpq applies it per sslmode.
//!
//! libpq (with OpenSSL) and rustls/webpki disagree in ways users hit: webpki rejects
//! X.509 v1 certificates (which PostgreSQL's documented `openssl x509 -req` recipe
//! makes), has no CN fallback, and treats root files differently. pgtls therefore plugs
//! its own [`rustls::client::danger::ServerCertVerifier`] into rustls:
//!
//! - **no root source** (allow/prefer/require without `sslrootcert`): nothing about the
//!   chain is checked, as libpq with `SSL_VERIFY_NONE`; the handshake signature is still
//!   verified with the certificate's key ([`signature`]), so the server must hold the
//!   key of the certificate it sends.
//! - **a root source**: the chain is built and checked the way OpenSSL's
//!   `X509_verify_cert` does for libpq ([`chain`], [`crl`]): trust anchors are the
//!   self-signed certificates of the source, CRLs (root files only) are required for
//!   every certificate of the path once any loaded, and every key of the path needs
//!   OpenSSL's security level 2 ([`chain`]). `require` acts as `verify-ca`.
//! - **verify-full**: libpq's host-name rules on top ([`hostname`]).
//! - **a caller's verifier** ([`crate::ConfigBuilder::server_cert_verifier`]): replaces
//!   all of the above under verify-ca and verify-full, the modes in which libpq verifies
//!   because of the sslmode itself. Under allow/prefer/require libpq verifies only when
//!   a root file exists, so those modes keep pgtls's own behaviour (nothing, or the chain
//!   against the given roots) and never consult the caller's verifier. Its errors travel
//!   through rustls like pgtls's own and become [`crate::Error::Certificate`] or
//!   [`crate::Error::Tls`], so the sslmode policy treats them as any failed TLS attempt
//!   ([`server_verifier`]).
//!
//! Signatures go through the rustls crypto provider's algorithms, so the crate stays
//! provider-agnostic.

mod chain;
mod chain_cache;
mod client;
mod crl;
mod hostname;
mod signature;
pub(crate) mod x509;

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, ServerName, TrustAnchor, UnixTime,
};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::error::{CarriedCertificateError, CertificateProblem, ConfigError};

pub(crate) use chain::ChainError;
pub(crate) use chain::{ChainSetupError, TrustStore};
pub use chain_cache::VerifiedChainCacheStats;
pub(crate) use chain_cache::{
    VerifiedChainCache, DEFAULT_CAPACITY as DEFAULT_CHAIN_CACHE_CAPACITY,
};
#[allow(unused_imports)] // for the server side's acceptor
pub(crate) use client::{take_client_cert_failure, ClientCertFailure, PostgresClientVerifier};
pub(crate) use hostname::{parse_host_ip, sni_allowed};

/// What to check about the server's chain.
#[derive(Debug, Clone)]
pub(crate) enum ChainPolicy {
    /// Nothing (no root source): libpq's `SSL_VERIFY_NONE`.
    Nothing,
    /// Build a path to an anchor of this store.
    Store(Arc<TrustStore>),
}

/// Builds the store for a root file (or the platform store), with CRLs.
///
/// A CRL that does not parse is dropped, as libpq silently ignores a CRL it cannot
/// load (the settings layer drops whole files). `crl_check` forces CRL checking on or
/// off; `None` means "on when any CRL loaded" (libpq's rule).
pub(crate) fn store_from_root_file(
    certs: &[CertificateDer<'static>],
    crls: &[CertificateRevocationListDer<'static>],
    crl_check: Option<bool>,
) -> Result<TrustStore, ConfigError> {
    let mut crls = crls.to_vec();
    loop {
        match TrustStore::from_root_certs(certs, &crls) {
            Ok(store) => {
                return Ok(match crl_check {
                    Some(enabled) => store.with_crl_check(enabled),
                    None => store,
                })
            }
            Err(ChainSetupError::UnparsableCrl { index }) if index < crls.len() => {
                crls.remove(index);
            }
            Err(err) => {
                return Err(ConfigError::BadCredential {
                    what: "root certificate",
                    reason: err.to_string(),
                })
            }
        }
    }
}

/// The PostgreSQL server's client-certificate verifier, for a rustls `ServerConfig`.
///
/// `ca_certs` is `ssl_ca_file` (self-signed certificates are the anchors; all subjects are
/// sent as hints), `crls` the CRLs of `ssl_crl_file` and `ssl_crl_dir` (CRLs that do not
/// parse are dropped; CRL checking is on for every certificate when any CRL is given). Client
/// certificates are requested, not required. Chains are judged with OpenSSL's `ssl_client`
/// purpose and alerts; see [`client`] for the alerts and [`take_client_cert_failure`] for the
/// reason PostgreSQL logs.
///
/// `crl_check` forces CRL checking on or off: `Some(true)` for an `ssl_crl_dir` that loaded
/// without holding any CRL (PostgreSQL then sets the CRL flags anyway, so every client
/// certificate fails with "unable to get certificate CRL"); `None` is "on when any CRL is
/// given".
pub(crate) fn client_verifier_with_crl_check(
    ca_certs: &[CertificateDer<'static>],
    crls: &[CertificateRevocationListDer<'static>],
    crl_check: Option<bool>,
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, ConfigError> {
    Ok(Arc::new(client::build(
        ca_certs, crls, crl_check, provider,
    )?))
}

/// Builds the store for anchors given as subject + SPKI (webpki-roots).
#[cfg_attr(not(feature = "webpki-roots"), allow(dead_code))]
pub(crate) fn store_from_anchors(anchors: &[TrustAnchor<'_>]) -> TrustStore {
    TrustStore::from_trust_anchors(anchors)
}

/// The DER SubjectPublicKeyInfo of a certificate (v1 certificates included).
pub(crate) fn subject_public_key_info(cert: &CertificateDer<'_>) -> Result<Vec<u8>, String> {
    use x509_cert::der::Encode;
    let parsed = x509::decode_certificate(cert.as_ref())
        .map_err(|e| format!("could not parse certificate: {e}"))?;
    parsed
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| format!("could not parse certificate: {e}"))
}

/// libpq's host-name check, for the fuzz bodies.
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_check_host_name(end_entity_der: &[u8], host: &str) -> bool {
    hostname::check_host_name(end_entity_der, host).is_ok()
}

/// The verifier of one host's rustls config: the caller's under verify-ca and
/// verify-full when one was given, else pgtls's own (`libpq`).
pub(crate) fn server_verifier(
    sslmode: crate::SslMode,
    custom: Option<&Arc<dyn ServerCertVerifier>>,
    libpq: LibpqVerifier,
) -> Arc<dyn ServerCertVerifier> {
    match custom {
        // The caller's object itself, not a wrapper: its identity is what rustls compares
        // before resuming a session, and its errors need no translation.
        Some(custom) if sslmode.requires_verification() => custom.clone(),
        _ => Arc::new(libpq),
    }
}

/// pgtls's verifier: libpq's checks per sslmode (see the module docs).
#[derive(Debug)]
pub(crate) struct LibpqVerifier {
    chain: ChainPolicy,
    /// The host to match under verify-full, `None` otherwise.
    host: Option<String>,
    algorithms: WebPkiSupportedAlgorithms,
    /// Chains of `chain`'s store that verified before ([`chain_cache`]).
    cache: Option<Arc<VerifiedChainCache>>,
}

impl LibpqVerifier {
    /// A verifier for one host's config.
    pub(crate) fn new(
        chain: ChainPolicy,
        host: Option<String>,
        algorithms: WebPkiSupportedAlgorithms,
    ) -> Self {
        LibpqVerifier {
            chain,
            host,
            algorithms,
            cache: None,
        }
    }

    /// Remembers successful chain verifications in `cache`, which must belong to this
    /// verifier's trust store (a cache is created with the store it serves).
    pub(crate) fn with_chain_cache(mut self, cache: Option<Arc<VerifiedChainCache>>) -> Self {
        self.cache = cache;
        self
    }

    /// The store's verdict on the chain: from the cache when the same chain verified before
    /// within a window holding `now`, else in full (and cached on success).
    fn verify_chain(
        &self,
        store: &TrustStore,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), ChainError> {
        let Some(cache) = &self.cache else {
            return store.verify_chain(end_entity, intermediates, now, &self.algorithms);
        };
        let key = chain_cache::chain_key(end_entity, intermediates);
        if cache.lookup(&key, chain_cache::seconds(now)) {
            return Ok(());
        }
        let window =
            store.verify_chain_with_window(end_entity, intermediates, now, &self.algorithms)?;
        cache.insert(key, window);
        Ok(())
    }
}

impl ServerCertVerifier for LibpqVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // Kept in the error so reports can show what was rejected (Error::rejected_chain).
        let presented = || {
            std::iter::once(end_entity)
                .chain(intermediates)
                .map(|cert| cert.clone().into_owned())
                .collect()
        };
        if let ChainPolicy::Store(store) = &self.chain {
            self.verify_chain(store, end_entity, intermediates, now)
                .map_err(|err| {
                    CarriedCertificateError::into_rustls_with_chain(
                        CertificateProblem::Chain,
                        format!("SSL error: certificate verify failed: {err}"),
                        presented(),
                    )
                })?;
        }
        if let Some(host) = &self.host {
            hostname::check_host_name(end_entity.as_ref(), host).map_err(|err| {
                CarriedCertificateError::into_rustls_with_chain(
                    CertificateProblem::HostName,
                    err.to_string(),
                    presented(),
                )
            })?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        signature::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        signature::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
