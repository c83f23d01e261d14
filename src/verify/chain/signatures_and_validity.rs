//! `internal_verify`: signatures from the anchor down, and validity periods.

use crate::verify::signature::{verify_signed_data, SignedDataError};

use super::cert::Cert;
use super::errors::{ChainError, ChainFailure};
use super::path::{Link, Verifier};

impl<'a> Verifier<'a> {
    /// `internal_verify`: from the top down, each signature with its issuer's key (not the
    /// anchor's self-signature), then the validity period of each certificate (anchor included;
    /// a bare anchor has none).
    pub(super) fn check_signatures_and_times(&self, path: &[Link<'a>]) -> Result<(), ChainFailure> {
        let top = path.len() - 1;
        if let Some(cert) = path[top].cert() {
            self.check_time(cert, top)?;
        }
        for depth in (0..top).rev() {
            let Some(cert) = path[depth].cert() else {
                continue;
            };
            let issuer = path[depth + 1];
            self.check_signature(cert, issuer.spki())
                .map_err(|e| ChainFailure::at(e, depth))?;
            self.check_time(cert, depth)?;
        }
        Ok(())
    }

    /// Verifies `cert`'s signature with `issuer_spki` through the provider, after checking, as
    /// `X509_verify` does first, that the TBS `signature` field names the outer algorithm.
    pub(super) fn check_signature(
        &self,
        cert: &Cert,
        issuer_spki: &[u8],
    ) -> Result<(), ChainError> {
        if !cert.signature_algs_match {
            return Err(ChainError::CertSignatureFailure);
        }
        verify_signed_data(
            self.algs,
            issuer_spki,
            &cert.signature_alg,
            &cert.tbs,
            &cert.signature,
        )
        .map_err(|e| match e {
            SignedDataError::BadSignature | SignedDataError::BadIssuerKey => {
                ChainError::CertSignatureFailure
            }
            SignedDataError::UnsupportedAlgorithm | SignedDataError::UnsupportedForPublicKey => {
                ChainError::UnsupportedSignatureAlgorithm
            }
        })
    }

    /// `ossl_x509_check_cert_time` (OpenSSL 3.0): not yet valid while now < notBefore, expired
    /// from notAfter on.
    pub(super) fn check_time(&self, cert: &Cert, depth: usize) -> Result<(), ChainFailure> {
        if self.now < cert.not_before {
            return Err(ChainFailure::at(ChainError::CertNotYetValid, depth));
        }
        if self.now >= cert.not_after {
            return Err(ChainFailure::at(ChainError::CertHasExpired, depth));
        }
        Ok(())
    }
}
