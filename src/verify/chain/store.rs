//! The trust store: anchors and helper certificates from a root file (or bare anchors), the
//! CRLs, and the entry point that runs a verification.

use std::collections::{HashMap, HashSet};

use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, TrustAnchor, UnixTime};
use x509_cert::der::Decode;
use x509_cert::spki::SubjectPublicKeyInfoOwned;

use crate::verify::chain_cache::{seconds, Window};
use crate::verify::crl::CrlSet;

use super::alternative::AlternativeSearch;
use super::cert::{Cert, KeyKind};
use super::errors::{ChainError, ChainFailure, ChainSetupError};
use super::extension_checks::Purpose;
use super::general_name::NameConstraints;
use super::key_strength::meets_security_level_2;
use super::name::{wrap_sequence, Name};
use super::path::Verifier;

/// A trust anchor known only by subject and key (webpki-roots' `TrustAnchor`s).
#[derive(Clone, Debug)]
pub(crate) struct BareAnchor {
    /// Canonical subject.
    pub(super) subject: Name,
    /// Complete DER SubjectPublicKeyInfo.
    pub(super) spki: Vec<u8>,
    /// Key type.
    pub(super) key_kind: KeyKind,
    /// Name constraints carried by the anchor.
    pub(super) name_constraints: Option<NameConstraints>,
}

impl BareAnchor {
    /// Converts a `TrustAnchor`; `None` if its subject, key or constraints do not parse (the
    /// anchor is then left out rather than used without its constraints).
    pub(super) fn from_trust_anchor(anchor: &TrustAnchor<'_>) -> Option<Self> {
        let subject = Name::from_contents(anchor.subject.as_ref())?;
        let spki = wrap_sequence(anchor.subject_public_key_info.as_ref());
        let key_kind = KeyKind::from_spki(&SubjectPublicKeyInfoOwned::from_der(&spki).ok()?);
        let name_constraints = match &anchor.name_constraints {
            Some(nc) => Some(NameConstraints::from_contents(nc.as_ref())?),
            None => None,
        };
        Some(Self {
            subject,
            spki,
            key_kind,
            name_constraints,
        })
    }
}

/// Trust anchors, helper certificates and CRLs, pre-extracted once from the root source.
#[derive(Clone, Debug, Default)]
pub(crate) struct TrustStore {
    /// Certificates from the root file: self-signed ones are anchors, others only help build paths.
    pub(super) certs: Vec<Cert>,
    /// `certs` indexes by canonical subject.
    pub(super) certs_by_subject: HashMap<Name, Vec<usize>>,
    /// DER of every self-signed root-file certificate (exact-match trust of a presented copy).
    pub(super) trusted_der: HashSet<Vec<u8>>,
    /// Anchors given as subject and key.
    pub(super) anchors: Vec<BareAnchor>,
    /// `anchors` indexes by canonical subject.
    pub(super) anchors_by_subject: HashMap<Name, Vec<usize>>,
    /// CRLs (root files only).
    pub(super) crls: CrlSet,
    /// Whether CRLs are required for every certificate (libpq sets the OpenSSL CRL flags only when
    /// its CRL file or directory loaded).
    pub(super) crl_check: bool,
    /// What the chain is verified for (`ssl_server` unless set).
    pub(super) purpose: Purpose,
}

impl TrustStore {
    /// From a root *file*: trust anchors are the self-signed certificates in it; others only help
    /// build paths (they are untrusted intermediates), as with `SSL_CTX_load_verify_locations`.
    ///
    /// `crls` are the CRLs libpq would have in its `X509_STORE` (from `sslcrl`/`sslcrldir`, plus
    /// any in the root file). CRL checking (`X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL`) is
    /// switched on when `crls` is not empty; see [`TrustStore::with_crl_check`] for the case where
    /// the CRL source loaded but holds no CRL.
    ///
    /// Any certificate or CRL that does not parse is an error naming its index: libpq fails on a
    /// bad root file but silently ignores a CRL file that does not load, so for
    /// [`ChainSetupError::UnparsableCrl`] the integrator should drop the CRLs of that file (and,
    /// if none remain, leave CRL checking off) and call again.
    pub(crate) fn from_root_certs(
        certs: &[CertificateDer<'_>],
        crls: &[CertificateRevocationListDer<'_>],
    ) -> Result<Self, ChainSetupError> {
        let mut store = Self::default();
        let mut seen = HashSet::new();
        for (index, der) in certs.iter().enumerate() {
            let cert = Cert::parse(der.as_ref())
                .ok_or(ChainSetupError::UnparsableCertificate { index })?;
            if seen.insert(der.as_ref().to_vec()) {
                store.add_cert(cert);
            }
        }
        store.crls =
            CrlSet::parse(crls).map_err(|index| ChainSetupError::UnparsableCrl { index })?;
        store.crl_check = !crls.is_empty();
        Ok(store)
    }

    /// From anchors given as subject + SPKI (webpki-roots' `TrustAnchor`s or platform roots): no
    /// CRLs, no validity or extension checks on the anchor itself (there is nothing to check);
    /// anchor name constraints are enforced. Anchors whose fields do not parse are skipped.
    ///
    /// Platform roots that are available as whole certificates are better passed to
    /// [`TrustStore::from_root_certs`], which is what OpenSSL does with `sslrootcert=system`.
    pub(crate) fn from_trust_anchors(anchors: &[TrustAnchor<'_>]) -> Self {
        let mut store = Self::default();
        for anchor in anchors.iter().filter_map(BareAnchor::from_trust_anchor) {
            let index = store.anchors.len();
            store
                .anchors_by_subject
                .entry(anchor.subject.clone())
                .or_default()
                .push(index);
            store.anchors.push(anchor);
        }
        store
    }

    /// Forces CRL checking on or off. Use `true` when libpq's CRL source loaded without holding
    /// any CRL (an `sslcrldir` that exists but is empty): every certificate then fails with
    /// "unable to get certificate CRL", as in libpq.
    pub(crate) fn with_crl_check(mut self, enabled: bool) -> Self {
        self.crl_check = enabled;
        self
    }

    /// Sets the purpose chains are verified for (`ssl_server` by default).
    pub(crate) fn with_purpose(mut self, purpose: Purpose) -> Self {
        self.purpose = purpose;
        self
    }

    /// Adds a root-file certificate (the caller drops duplicates, like `X509_STORE_add_cert`).
    pub(super) fn add_cert(&mut self, cert: Cert) {
        if cert.self_signed {
            self.trusted_der.insert(cert.der.clone());
        }
        let index = self.certs.len();
        self.certs_by_subject
            .entry(cert.subject.clone())
            .or_default()
            .push(index);
        self.certs.push(cert);
    }

    /// Verify the presented chain; the time comes from the caller.
    pub(crate) fn verify_chain(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
        algs: &WebPkiSupportedAlgorithms,
    ) -> Result<(), ChainError> {
        self.verify_chain_detailed(end_entity, intermediates, now, algs)
            .map_err(|f| f.error)
    }

    /// Like [`TrustStore::verify_chain`], also reporting the depth of the failing certificate.
    pub(crate) fn verify_chain_detailed(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
        algs: &WebPkiSupportedAlgorithms,
    ) -> Result<(), ChainFailure> {
        self.verify_then(end_entity, intermediates, now, algs, |_, _| ())
    }

    /// Like [`TrustStore::verify_chain`]; on success, the window of times in which the same
    /// chain gets the same verdict from this store (see `chain_cache`): no notBefore/notAfter
    /// of a presented or store certificate, and no thisUpdate/nextUpdate of a CRL, falls
    /// inside it.
    pub(crate) fn verify_chain_with_window(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
        algs: &WebPkiSupportedAlgorithms,
    ) -> Result<Window, ChainError> {
        self.verify_then(end_entity, intermediates, now, algs, |leaf, presented| {
            let certs = std::iter::once(leaf).chain(presented).chain(&self.certs);
            let instants = certs
                .flat_map(|cert| [cert.not_before, cert.not_after])
                .chain(self.crls.time_boundaries());
            Window::around(seconds(now), instants)
        })
        .map_err(|f| f.error)
    }

    /// Verifies the presented chain and, on success, returns `on_success` of the parsed leaf
    /// and presented intermediates.
    fn verify_then<T>(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
        algs: &WebPkiSupportedAlgorithms,
        on_success: impl FnOnce(&Cert, &[Cert]) -> T,
    ) -> Result<T, ChainFailure> {
        let leaf = Cert::parse(end_entity.as_ref())
            .ok_or(ChainFailure::at(ChainError::UnparsableCertificate, 0))?;
        // X509_verify_cert checks the leaf's key before building anything.
        if !meets_security_level_2(&leaf.spki) {
            return Err(ChainFailure::at(ChainError::EeKeyTooSmall, 0));
        }
        let presented = intermediates
            .iter()
            .enumerate()
            .map(|(i, der)| {
                Cert::parse(der.as_ref())
                    .ok_or(ChainFailure::at(ChainError::UnparsableCertificate, i + 1))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let verifier = Verifier {
            store: self,
            presented: &presented,
            now: seconds(now),
            algs,
        };
        let primary = verifier.build(&leaf);
        let failure = match &primary {
            Ok(path) => match verifier.validate(path) {
                Ok(()) => return Ok(on_success(&leaf, &presented)),
                Err(failure) => failure,
            },
            Err(failure) => *failure,
        };
        let mut search = AlternativeSearch::new(primary.ok());
        if search.run(&verifier, &leaf) {
            Ok(on_success(&leaf, &presented))
        } else {
            Err(failure)
        }
    }
}
