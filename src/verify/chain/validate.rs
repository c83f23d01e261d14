//! The checks a complete path goes through, in `verify_chain`'s order, and the revocation
//! step (CRL_CHECK_ALL; the CRL rules themselves are in `crl.rs`).

use crate::verify::crl::check_certificate_crl;

use super::errors::ChainFailure;
use super::extension_checks::check_extensions;
use super::key_strength::check_ca_key_strength;
use super::name_constraints::check_name_constraints;
use super::path::{Link, Verifier};

impl<'a> Verifier<'a> {
    /// Runs every check on a complete path, in `verify_chain`'s order.
    pub(super) fn validate(&self, path: &[Link<'a>]) -> Result<(), ChainFailure> {
        check_extensions(path, self.store.purpose)?;
        check_ca_key_strength(path)?;
        if self.store.crl_check {
            self.check_revocation(path)?;
        }
        self.check_signatures_and_times(path)?;
        check_name_constraints(path)
    }

    /// `check_revocation` with CRL_CHECK_ALL: every certificate of the path, the self-signed
    /// anchor included (its CRL is one it issued itself). This is OpenSSL 3.0–3.5
    /// (openssl/openssl#8439); later releases skip self-signed certificates.
    pub(super) fn check_revocation(&self, path: &[Link<'a>]) -> Result<(), ChainFailure> {
        for (depth, link) in path.iter().enumerate() {
            if link.cert().is_none() {
                continue;
            }
            check_certificate_crl(&self.store.crls, path, depth, self.now, self.algs)
                .map_err(|e| ChainFailure::at(e, depth))?;
        }
        Ok(())
    }
}
