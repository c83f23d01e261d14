//! TEMPORARY stub on main until the chain branch lands.
#![allow(dead_code)]
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, TrustAnchor, UnixTime};
#[derive(Debug)]
pub(crate) struct TrustStore;
#[derive(Debug)]
pub(crate) struct ChainError;
impl std::fmt::Display for ChainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stub")
    }
}
impl TrustStore {
    pub(crate) fn from_root_certs(
        _c: &[CertificateDer<'_>],
        _r: &[CertificateRevocationListDer<'_>],
    ) -> Result<Self, ChainError> {
        Ok(TrustStore)
    }
    pub(crate) fn from_trust_anchors(_a: &[TrustAnchor<'_>]) -> Self {
        TrustStore
    }
    pub(crate) fn verify_chain(
        &self,
        _e: &CertificateDer<'_>,
        _i: &[CertificateDer<'_>],
        _n: UnixTime,
        _a: &WebPkiSupportedAlgorithms,
    ) -> Result<(), ChainError> {
        Err(ChainError)
    }
}
