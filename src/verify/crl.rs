//! Certificate revocation lists, checked the way OpenSSL does with
//! `X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL` (libpq's setting when its CRL file or
//! directory loads), without extended CRL support and without delta CRLs.
//!
//! For every certificate of the path (`check_cert` in OpenSSL 3.0's `x509_vfy.c`), the self-signed
//! anchor included: OpenSSL 3.0–3.5 want a CRL the anchor issued itself (openssl/openssl#8439;
//! later releases skip self-signed certificates):
//!
//! * Candidates are the CRLs whose issuer name equals the certificate's issuer name. Indirect CRLs
//!   and CRLs limited to some reasons are never used (they need
//!   `X509_V_FLAG_EXTENDED_CRL_SUPPORT`, which libpq does not set). Delta CRLs are never used
//!   either, as in current OpenSSL (libpq does not set `X509_V_FLAG_USE_DELTAS`); OpenSSL 3.0's
//!   scoring only skips them with extended CRL support, so it may take a lone delta CRL for a
//!   complete one — a corner case not reproduced.
//! * The CRL's signer must be on the path: the certificate's issuer, or a certificate higher up
//!   with the same name, in both cases agreeing with the CRL's Authority Key Identifier.
//! * Each candidate is scored like `get_crl_score` (no unhandled critical extension, in time,
//!   in scope of the issuing distribution point); the best wins, the newer on a tie. None at all
//!   means "unable to get certificate CRL".
//! * The chosen CRL is then checked (`check_crl`): issuer keyUsage allows cRLSign, scope, times
//!   ("CRL is not yet valid", "CRL has expired"), signature ("CRL signature failure"); and the
//!   certificate is looked up (`cert_crl`): unhandled critical CRL extension, then "certificate
//!   revoked" unless the entry's reason is removeFromCRL.
//! * Distribution points covering only some reasons need further CRLs until all reasons are
//!   covered, otherwise "unable to get certificate CRL".

use std::collections::HashMap;

use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls_pki_types::CertificateRevocationListDer;
use x509_cert::crl::CertificateList;
use x509_cert::der::asn1::Any;
use x509_cert::der::Decode;
use x509_cert::ext::pkix::crl::IssuingDistributionPoint as X509IssuingDistPoint;
use x509_cert::ext::pkix::CrlReason;

use super::chain::{
    akid_matches, normalize_integer, oid, Akid, Cert, ChainError, DistPoint, DistPointName,
    GeneralNameOwned, Link, Name, ALL_REASONS, KU_CRL_SIGN,
};
use super::signature::{split_signed, verify_signed_data, SignedDataError};
use super::x509::{decode_crl_prefix, time_to_unix};

/// `CRL_SCORE_NOCRITICAL`: no unhandled critical extension.
const SCORE_NOCRITICAL: u32 = 0x100;
/// `CRL_SCORE_SCOPE`: the certificate is within the CRL's scope.
const SCORE_SCOPE: u32 = 0x080;
/// `CRL_SCORE_TIME`: thisUpdate/nextUpdate include the verification time.
const SCORE_TIME: u32 = 0x040;
/// `CRL_SCORE_ISSUER_NAME`: the CRL issuer name is the certificate's issuer name.
const SCORE_ISSUER_NAME: u32 = 0x020;
/// `CRL_SCORE_ISSUER_CERT`: signed by the certificate's issuer.
const SCORE_ISSUER_CERT: u32 = 0x018;
/// `CRL_SCORE_SAME_PATH`: signed by a certificate of the path.
const SCORE_SAME_PATH: u32 = 0x008;
/// `CRL_SCORE_AKID`: the signer agrees with the CRL's AKID.
const SCORE_AKID: u32 = 0x004;
/// Reason code `removeFromCRL`.
const REASON_REMOVE_FROM_CRL: u8 = 8;

/// The issuing distribution point extension of a CRL.
#[derive(Clone, Debug, Default)]
struct IssuingDistPoint {
    /// distributionPoint, made absolute.
    name: Option<DistPointName>,
    /// onlyContainsUserCerts.
    only_user: bool,
    /// onlyContainsCACerts.
    only_ca: bool,
    /// onlyContainsAttributeCerts.
    only_attr: bool,
    /// indirectCRL.
    indirect: bool,
    /// onlySomeReasons present.
    some_reasons: bool,
}

impl IssuingDistPoint {
    /// More than one of the "only" flags makes the extension invalid (`IDP_INVALID`).
    fn is_invalid(&self) -> bool {
        usize::from(self.only_user) + usize::from(self.only_ca) + usize::from(self.only_attr) > 1
    }
}

/// One revoked-certificate entry.
#[derive(Clone, Debug)]
struct Revocation {
    /// reasonCode, if present.
    reason: Option<u8>,
    /// certificateIssuer names in force for this entry (they carry over to later entries).
    issuers: Option<Vec<Name>>,
}

/// A CRL, pre-extracted into owned data.
#[derive(Clone, Debug)]
pub(crate) struct Crl {
    /// Canonical issuer name.
    issuer: Name,
    /// thisUpdate, seconds since the Unix epoch.
    this_update: i64,
    /// nextUpdate, if present.
    next_update: Option<i64>,
    /// The signed TBSCertList.
    tbs: Vec<u8>,
    /// Outer signatureAlgorithm contents.
    signature_alg: Vec<u8>,
    /// Signature bits.
    signature: Vec<u8>,
    /// authorityKeyIdentifier.
    akid: Option<Akid>,
    /// issuingDistributionPoint.
    idp: Option<IssuingDistPoint>,
    /// A deltaCRLIndicator is present.
    is_delta: bool,
    /// A critical CRL or entry extension OpenSSL does not handle (`EXFLAG_CRITICAL`).
    unhandled_critical: bool,
    /// Revoked entries by normalised serial number.
    revoked: HashMap<Vec<u8>, Vec<Revocation>>,
}

impl Crl {
    /// Parses one DER CRL; `None` if it is not a valid X.509 CRL.
    fn parse(der: &[u8]) -> Option<Self> {
        let parts = split_signed(der)?;
        let (crl, rest) = decode_crl_prefix(der).ok()?;
        if rest != 0 {
            return None;
        }
        let tbs = &crl.tbs_cert_list;
        let issuer = Name::from_x509(&tbs.issuer)?;
        let mut out = Self {
            this_update: time_to_unix(tbs.this_update),
            next_update: tbs.next_update.map(time_to_unix),
            tbs: parts.tbs.to_vec(),
            signature_alg: parts.signature_alg.to_vec(),
            signature: parts.signature.to_vec(),
            akid: None,
            idp: None,
            is_delta: false,
            unhandled_critical: false,
            revoked: HashMap::new(),
            issuer,
        };
        out.read_extensions(&crl)?;
        out.read_entries(&crl)?;
        Some(out)
    }

    /// Reads the CRL extensions (`crl_cb`): IDP, AKID and delta CRLs are understood; any other
    /// critical extension is unhandled.
    fn read_extensions(&mut self, crl: &CertificateList) -> Option<()> {
        for ext in crl.tbs_cert_list.crl_extensions.iter().flatten() {
            let id = ext.extn_id.as_bytes();
            let value = ext.extn_value.as_bytes();
            let handled = [
                oid::ISSUING_DISTRIBUTION_POINT,
                oid::AUTHORITY_KEY_ID,
                oid::DELTA_CRL_INDICATOR,
            ]
            .contains(&id);
            if ext.critical && !handled {
                self.unhandled_critical = true;
            }
            match id {
                oid::DELTA_CRL_INDICATOR => self.is_delta = true,
                oid::AUTHORITY_KEY_ID => self.akid = Some(Akid::from_der(value)?),
                oid::ISSUING_DISTRIBUTION_POINT => {
                    let idp = X509IssuingDistPoint::from_der(value).ok()?;
                    let name = match &idp.distribution_point {
                        Some(n) => Some(DistPointName::from_x509(n, &self.issuer)?),
                        None => None,
                    };
                    self.idp = Some(IssuingDistPoint {
                        name,
                        only_user: idp.only_contains_user_certs,
                        only_ca: idp.only_contains_ca_certs,
                        only_attr: idp.only_contains_attribute_certs,
                        indirect: idp.indirect_crl,
                        some_reasons: idp.only_some_reasons.is_some(),
                    });
                }
                _ => {}
            }
        }
        Some(())
    }

    /// Reads the revoked entries (`crl_set_issuers`): reason codes, certificateIssuer names
    /// (which stay in force for the following entries), unhandled critical entry extensions.
    fn read_entries(&mut self, crl: &CertificateList) -> Option<()> {
        let mut issuers: Option<Vec<Name>> = None;
        for entry in crl.tbs_cert_list.revoked_certificates.iter().flatten() {
            let mut reason = None;
            for ext in entry.crl_entry_extensions.iter().flatten() {
                let id = ext.extn_id.as_bytes();
                let value = ext.extn_value.as_bytes();
                if ext.critical && id != oid::CERTIFICATE_ISSUER {
                    self.unhandled_critical = true;
                }
                match id {
                    // A reasonCode that does not decode is ignored, as x509-parser did.
                    oid::REASON_CODE => {
                        reason = CrlReason::from_der(value).ok().map(|r| r as u8);
                    }
                    oid::CERTIFICATE_ISSUER => issuers = Some(certificate_issuer_names(value)?),
                    _ => {}
                }
            }
            self.revoked
                .entry(normalize_integer(entry.serial_number.as_bytes()))
                .or_default()
                .push(Revocation {
                    reason,
                    issuers: issuers.clone(),
                });
        }
        Some(())
    }

    /// thisUpdate ≤ now < nextUpdate (nextUpdate optional), as OpenSSL 3.0 compares times.
    fn time_ok(&self, now: i64) -> bool {
        now >= self.this_update && self.next_update.is_none_or(|next| now < next)
    }

    /// The name of the IDP's distribution point, if any.
    fn idp_name(&self) -> Option<&DistPointName> {
        self.idp.as_ref().and_then(|i| i.name.as_ref())
    }
}

/// Decodes a certificateIssuer entry extension (GeneralNames) into its directory names.
fn certificate_issuer_names(value: &[u8]) -> Option<Vec<Name>> {
    let entries = Vec::<Any>::from_der(value).ok()?;
    let mut names = Vec::new();
    for general in &entries {
        if let Some(GeneralNameOwned::Directory(name)) = GeneralNameOwned::from_any(general) {
            names.push(name);
        }
    }
    Some(names)
}

/// The CRLs of a trust store, indexed by issuer name.
#[derive(Clone, Debug, Default)]
pub(crate) struct CrlSet {
    /// Parsed CRLs in the order given.
    crls: Vec<Crl>,
    /// `crls` indexes by canonical issuer name.
    by_issuer: HashMap<Name, Vec<usize>>,
}

impl CrlSet {
    /// Parses every CRL; on failure returns the index of the first one that does not parse.
    pub(crate) fn parse(ders: &[CertificateRevocationListDer<'_>]) -> Result<Self, usize> {
        let mut set = Self::default();
        for (index, der) in ders.iter().enumerate() {
            let crl = Crl::parse(der.as_ref()).ok_or(index)?;
            set.by_issuer
                .entry(crl.issuer.clone())
                .or_default()
                .push(set.crls.len());
            set.crls.push(crl);
        }
        Ok(set)
    }

    /// thisUpdate and nextUpdate of every CRL: the instants at which a CRL's validity, and
    /// so its score and checks, can change (for the verified-chain cache's windows).
    pub(crate) fn time_boundaries(&self) -> impl Iterator<Item = i64> + '_ {
        self.crls
            .iter()
            .flat_map(|crl| std::iter::once(crl.this_update).chain(crl.next_update))
    }

    /// CRLs issued under `name`.
    fn for_issuer<'s>(&'s self, name: &Name) -> impl Iterator<Item = &'s Crl> + 's {
        self.by_issuer
            .get(name)
            .into_iter()
            .flatten()
            .filter_map(|&i| self.crls.get(i))
    }
}

/// A scored CRL for one certificate.
#[derive(Clone, Copy)]
struct Candidate<'a> {
    /// The CRL.
    crl: &'a Crl,
    /// `get_crl_score` bits.
    score: u32,
    /// Path index of the CRL's signer.
    signer: usize,
    /// Reasons covered after using this CRL.
    reasons: u16,
}

/// Checks the certificate at `depth` of `path` against the CRLs (`check_cert`).
pub(crate) fn check_certificate_crl(
    set: &CrlSet,
    path: &[Link<'_>],
    depth: usize,
    now: i64,
    algs: &WebPkiSupportedAlgorithms,
) -> Result<(), ChainError> {
    let Some(cert) = path.get(depth).and_then(Link::cert) else {
        return Ok(());
    };
    let mut reasons = 0u16;
    while reasons != ALL_REASONS {
        let last = reasons;
        let chosen =
            best_crl(set, path, depth, cert, now, reasons).ok_or(ChainError::UnableToGetCrl)?;
        reasons = chosen.reasons;
        check_crl(&chosen, path, now, algs)?;
        check_entry(chosen.crl, cert)?;
        if reasons == last {
            return Err(ChainError::UnableToGetCrl);
        }
    }
    Ok(())
}

/// `get_crl_sk`: the highest-scoring CRL, the newer (by thisUpdate) on a tie.
fn best_crl<'a>(
    set: &'a CrlSet,
    path: &[Link<'_>],
    depth: usize,
    cert: &Cert,
    now: i64,
    reasons: u16,
) -> Option<Candidate<'a>> {
    let mut best: Option<Candidate<'a>> = None;
    for crl in set.for_issuer(&cert.issuer) {
        let Some(candidate) = score(crl, path, depth, cert, now, reasons) else {
            continue;
        };
        let better = match best {
            None => true,
            Some(b) if candidate.score > b.score => true,
            Some(b) => candidate.score == b.score && candidate.crl.this_update > b.crl.this_update,
        };
        if better {
            best = Some(candidate);
        }
    }
    best
}

/// `get_crl_score`; `None` for a score of zero (unusable CRL).
fn score<'a>(
    crl: &'a Crl,
    path: &[Link<'_>],
    depth: usize,
    cert: &Cert,
    now: i64,
    reasons: u16,
) -> Option<Candidate<'a>> {
    if crl.is_delta {
        return None;
    }
    if let Some(idp) = &crl.idp {
        if idp.is_invalid() || idp.indirect || idp.some_reasons {
            return None;
        }
    }
    if crl.issuer != cert.issuer {
        return None;
    }
    let mut score = SCORE_ISSUER_NAME;
    if !crl.unhandled_critical {
        score |= SCORE_NOCRITICAL;
    }
    if crl.time_ok(now) {
        score |= SCORE_TIME;
    }
    let (signer, signer_bits) = crl_signer(crl, path, depth)?;
    score |= signer_bits;
    let mut covered = reasons;
    if let Some(crl_reasons) = scope_reasons(crl, cert, score) {
        if crl_reasons & !reasons == 0 {
            return None;
        }
        covered |= crl_reasons;
        score |= SCORE_SCOPE;
    }
    Some(Candidate {
        crl,
        score,
        signer,
        reasons: covered,
    })
}

/// `crl_akid_check`: the CRL signer is the certificate's issuer (next on the path; the anchor
/// itself for the anchor) or a certificate higher up, with the CRL's issuer name and agreeing
/// with its AKID.
fn crl_signer(crl: &Crl, path: &[Link<'_>], depth: usize) -> Option<(usize, u32)> {
    let matches = |index: usize| {
        path.get(index)
            .and_then(Link::cert)
            .is_some_and(|c| c.subject == crl.issuer && akid_matches(c, crl.akid.as_ref()))
    };
    let last = path.len().saturating_sub(1);
    let first = if depth == last { depth } else { depth + 1 };
    if matches(first) {
        return Some((first, SCORE_AKID | SCORE_ISSUER_CERT));
    }
    ((first + 1)..path.len())
        .find(|&i| matches(i))
        .map(|i| (i, SCORE_AKID | SCORE_SAME_PATH))
}

/// `crl_crldp_check`: `Some(reasons)` when the certificate is within the CRL's scope.
fn scope_reasons(crl: &Crl, cert: &Cert, score: u32) -> Option<u16> {
    if let Some(idp) = &crl.idp {
        if idp.only_attr || (cert.is_ca_flagged() && idp.only_user) {
            return None;
        }
        if !cert.is_ca_flagged() && idp.only_ca {
            return None;
        }
    }
    for dp in &cert.ext.crl_dps {
        if dp_crl_issuer_matches(dp, crl, score)
            && dist_point_names_match(dp.name.as_ref(), crl.idp_name())
        {
            return Some(ALL_REASONS & dp.reasons);
        }
    }
    (crl.idp_name().is_none() && score & SCORE_ISSUER_NAME != 0).then_some(ALL_REASONS)
}

/// `crldp_check_crlissuer`: without cRLIssuer the CRL must be from the certificate's issuer;
/// otherwise one of its directory names must be the CRL's issuer.
fn dp_crl_issuer_matches(dp: &DistPoint, crl: &Crl, score: u32) -> bool {
    match &dp.crl_issuer {
        None => score & SCORE_ISSUER_NAME != 0,
        Some(names) => names
            .iter()
            .any(|n| matches!(n, GeneralNameOwned::Directory(d) if *d == crl.issuer)),
    }
}

/// `idp_check_dp`: an absent name matches; relative names compare as names; a relative and a
/// full name match through a directoryName; two full names share an entry.
fn dist_point_names_match(a: Option<&DistPointName>, b: Option<&DistPointName>) -> bool {
    match (a, b) {
        (None, _) | (_, None) => true,
        (Some(DistPointName::Relative(x)), Some(DistPointName::Relative(y))) => x == y,
        (Some(DistPointName::Relative(x)), Some(DistPointName::Full(names)))
        | (Some(DistPointName::Full(names)), Some(DistPointName::Relative(x))) => names
            .iter()
            .any(|n| matches!(n, GeneralNameOwned::Directory(d) if d == x)),
        (Some(DistPointName::Full(a)), Some(DistPointName::Full(b))) => {
            a.iter().any(|n| b.contains(n))
        }
    }
}

/// `check_crl`: signer keyUsage, scope, times, signature.
fn check_crl(
    chosen: &Candidate<'_>,
    path: &[Link<'_>],
    now: i64,
    algs: &WebPkiSupportedAlgorithms,
) -> Result<(), ChainError> {
    let crl = chosen.crl;
    let signer = path
        .get(chosen.signer)
        .and_then(Link::cert)
        .ok_or(ChainError::UnableToGetCrl)?;
    if signer.ext.key_usage.is_some_and(|ku| ku & KU_CRL_SIGN == 0) {
        return Err(ChainError::KeyUsageNoCrlSign);
    }
    if chosen.score & SCORE_SCOPE == 0 {
        return Err(ChainError::DifferentCrlScope);
    }
    if chosen.score & SCORE_TIME == 0 {
        if now < crl.this_update {
            return Err(ChainError::CrlNotYetValid);
        }
        if crl.next_update.is_some_and(|next| now >= next) {
            return Err(ChainError::CrlHasExpired);
        }
    }
    verify_signed_data(
        algs,
        &signer.spki,
        &crl.signature_alg,
        &crl.tbs,
        &crl.signature,
    )
    .map_err(|e| match e {
        SignedDataError::UnsupportedAlgorithm | SignedDataError::UnsupportedForPublicKey => {
            ChainError::UnsupportedSignatureAlgorithm
        }
        SignedDataError::BadSignature | SignedDataError::BadIssuerKey => {
            ChainError::CrlSignatureFailure
        }
    })
}

/// `cert_crl`: unhandled critical extensions make the CRL unusable; a matching entry revokes
/// unless its reason is removeFromCRL.
fn check_entry(crl: &Crl, cert: &Cert) -> Result<(), ChainError> {
    if crl.unhandled_critical {
        return Err(ChainError::UnhandledCriticalCrlExtension);
    }
    let entries = crl
        .revoked
        .get(&cert.serial)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let applies = |e: &&Revocation| match &e.issuers {
        None => cert.issuer == crl.issuer,
        Some(names) => names.contains(&cert.issuer),
    };
    match entries.iter().find(applies) {
        Some(e) if e.reason != Some(REASON_REMOVE_FROM_CRL) => Err(ChainError::CertRevoked),
        _ => Ok(()),
    }
}
