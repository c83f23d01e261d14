//! The server's own certificate and key: parsed, paired and checked without webpki.
//!
//! A server never validates its own certificate (OpenSSL does not, and PostgreSQL serves
//! the X.509 v1 certificates its documented `openssl x509 -req` recipe makes), so the
//! only check is OpenSSL's `SSL_CTX_check_private_key`: the key's public half must be the
//! leaf's `SubjectPublicKeyInfo`. rustls's `CertifiedKey::from_der` would instead parse
//! the leaf with webpki, which refuses v1 certificates.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use x509_cert::der::Encode;

/// Why the certificate and key cannot be served, in OpenSSL's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyProblem {
    /// The leaf certificate does not parse.
    Certificate(String),
    /// The provider cannot load the key.
    Key(String),
    /// The key is not the leaf's (OpenSSL: `key values mismatch`).
    Mismatch,
}

/// OpenSSL's reason for a key that is not the certificate's.
pub(crate) const KEY_VALUES_MISMATCH: &str = "key values mismatch";

/// Pairs `chain` (leaf first) with `key`, checking that they belong together.
pub(crate) fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, KeyProblem> {
    let leaf = chain
        .first()
        .ok_or_else(|| KeyProblem::Certificate("no certificate given".into()))?;
    let (parsed, _) = crate::verify::x509::decode_certificate_prefix(leaf.as_ref())
        .map_err(KeyProblem::Certificate)?;
    let leaf_spki = parsed
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|err| KeyProblem::Certificate(err.to_string()))?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|err| KeyProblem::Key(err.to_string()))?;
    // A provider that cannot tell its key's public half leaves the check to the
    // handshake (the client verifies the signature against the certificate).
    if let Some(key_spki) = signing.public_key() {
        if key_spki.as_ref() != leaf_spki.as_slice() {
            return Err(KeyProblem::Mismatch);
        }
    }
    Ok(Arc::new(CertifiedKey::new(chain, signing)))
}

/// An I/O error the way OpenSSL reports a system error: the C library's text, without
/// Rust's `(os error N)` suffix.
pub(crate) fn io_reason(err: &std::io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// OpenSSL's reason when a PEM file holds no object of the wanted kind.
pub(crate) const NO_START_LINE: &str = "no start line";
