//! The chain verifier's tests: every verdict and error depth, compared with `openssl verify`
//! when the tool is installed.

use super::cert::*;
use super::errors::*;
use super::general_name::*;
use super::name::*;
use super::name_constraints::*;
use super::store::*;
use super::test_support::{der, make_v1, resign};
use crate::verify::crl::CrlSet;
use crate::verify::signature::{read_tlv, split_signed};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CidrSubnet,
    CrlDistributionPoint, CrlIssuingDistributionPoint, CrlScope, CustomExtension, DnType, DnValue,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevocationReason, RevokedCertParams, SanType, SerialNumber,
};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, TrustAnchor, UnixTime};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use x509_cert::der::Decode;
use x509_cert::spki::SubjectPublicKeyInfoOwned;

/// Verification time of every test: 2025-06-15T15:06:40Z.
const NOW: i64 = 1_750_000_000;

/// The aws-lc-rs provider's algorithms.
fn algs() -> WebPkiSupportedAlgorithms {
    rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms
}

/// Midnight UTC on a date.
fn date(year: i32, month: u8, day: u8) -> OffsetDateTime {
    rcgen::date_time_ymd(year, month, day)
}

/// A unique serial number (CRL tests revoke by serial).
fn next_serial() -> SerialNumber {
    static NEXT: AtomicU64 = AtomicU64::new(0x1000);
    SerialNumber::from(NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A fresh P-256 key.
fn key() -> KeyPair {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("keygen")
}

/// A certificate with its parameters and key.
struct Pki {
    params: CertificateParams,
    key: KeyPair,
    der: CertificateDer<'static>,
}

impl Pki {
    /// An rcgen issuer for this certificate.
    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }
}

/// Parameters valid 2020–2035 with a CN and a unique serial.
fn base(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.not_before = date(2020, 1, 1);
    p.not_after = date(2035, 1, 1);
    p.serial_number = Some(next_serial());
    p
}

/// CA parameters (keyCertSign, cRLSign).
fn ca(cn: &str) -> CertificateParams {
    let mut p = base(cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.use_authority_key_identifier_extension = true;
    p
}

/// Server leaf parameters (SAN = CN, digitalSignature, serverAuth).
fn leaf(cn: &str) -> CertificateParams {
    let mut p = base(cn);
    p.subject_alt_names = vec![SanType::DnsName(cn.try_into().expect("ia5"))];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.use_authority_key_identifier_extension = true;
    p
}

/// Self-signs `params` with a new key.
fn self_signed(params: CertificateParams) -> Pki {
    let key = key();
    let der = params.self_signed(&key).expect("self-signed").der().clone();
    Pki { params, key, der }
}

/// Issues `params` with a new key under `issuer`.
fn issue(params: CertificateParams, issuer: &Pki) -> Pki {
    let key = key();
    let der = params
        .signed_by(&key, &issuer.issuer())
        .expect("signed")
        .der()
        .clone();
    Pki { params, key, der }
}

/// A root, an intermediate and a leaf.
fn three() -> (Pki, Pki, Pki) {
    let root = self_signed(ca("Test Root"));
    let inter = issue(ca("Test Intermediate"), &root);
    let leaf = issue(leaf("db.example.com"), &inter);
    (root, inter, leaf)
}

/// A CRL by `issuer` revoking `revoked`, valid `this`..`next`.
fn crl_between(
    issuer: &Pki,
    revoked: &[&Pki],
    this: OffsetDateTime,
    next: OffsetDateTime,
) -> CertificateRevocationListDer<'static> {
    crl_with(issuer, revoked, this, next, None, None)
}

/// A CRL valid 2025-01-01..2026-01-01.
fn crl(issuer: &Pki, revoked: &[&Pki]) -> CertificateRevocationListDer<'static> {
    crl_between(issuer, revoked, date(2025, 1, 1), date(2026, 1, 1))
}

/// A CRL with optional reason code and issuing distribution point.
fn crl_with(
    issuer: &Pki,
    revoked: &[&Pki],
    this: OffsetDateTime,
    next: OffsetDateTime,
    reason: Option<RevocationReason>,
    idp: Option<CrlIssuingDistributionPoint>,
) -> CertificateRevocationListDer<'static> {
    let params = CertificateRevocationListParams {
        this_update: this,
        next_update: next,
        crl_number: next_serial(),
        issuing_distribution_point: idp,
        revoked_certs: revoked
            .iter()
            .map(|p| RevokedCertParams {
                serial_number: p.params.serial_number.clone().expect("serial"),
                revocation_time: date(2024, 6, 1),
                reason_code: reason,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    params
        .signed_by(&issuer.issuer())
        .expect("crl")
        .der()
        .clone()
}

/// One verification case, run by pgtls and (when available) by `openssl verify`.
#[derive(Default)]
struct Case {
    roots: Vec<CertificateDer<'static>>,
    crls: Vec<CertificateRevocationListDer<'static>>,
    crl_check: Option<bool>,
    presented: Vec<CertificateDer<'static>>,
    leaf: Option<CertificateDer<'static>>,
    /// Verification time (default [`NOW`]).
    at: Option<i64>,
}

/// Expected outcome: Ok, or the error and its depth.
type Outcome = Result<(), (ChainError, usize)>;

impl Case {
    /// A case with these roots, presented intermediates and leaf.
    fn new(roots: &[&Pki], presented: &[&Pki], leaf: &Pki) -> Self {
        Self {
            roots: roots.iter().map(|p| p.der.clone()).collect(),
            presented: presented.iter().map(|p| p.der.clone()).collect(),
            leaf: Some(leaf.der.clone()),
            ..Self::default()
        }
    }

    /// Adds CRLs (which switches CRL checking on).
    fn crls(mut self, crls: Vec<CertificateRevocationListDer<'static>>) -> Self {
        self.crls = crls;
        self
    }

    /// pgtls' verdict.
    fn ours(&self) -> Outcome {
        let mut store = TrustStore::from_root_certs(&self.roots, &self.crls).expect("store");
        if let Some(on) = self.crl_check {
            store = store.with_crl_check(on);
        }
        let leaf = self.leaf.clone().expect("leaf");
        let at = self.at.unwrap_or(NOW) as u64;
        let now = UnixTime::since_unix_epoch(Duration::from_secs(at));
        store
            .verify_chain_detailed(&leaf, &self.presented, now, &algs())
            .map_err(|f| (f.error, f.depth))
    }

    /// Asserts pgtls' verdict, and OpenSSL's when its command-line tool is installed.
    fn expect(&self, expected: Outcome) {
        assert_eq!(self.ours(), expected, "pgtls");
        self.expect_openssl(expected);
    }

    /// Asserts only OpenSSL's verdict (for documented divergences).
    fn expect_openssl(&self, expected: Outcome) {
        if let Some(theirs) = openssl::verify(self) {
            let expected = expected.map_err(|(e, d)| (e.to_string(), d));
            assert_eq!(theirs, expected, "openssl verify");
        }
    }
}

/// `openssl verify` as an oracle: libpq's settings are `-purpose sslserver`, the root file as
/// `-CAfile` (certificates and CRLs land in the same store) and `-crl_check_all`.
mod openssl {
    use super::{Case, NOW};
    use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Base64 with padding.
    fn base64(data: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    /// PEM armour.
    pub(super) fn pem(label: &str, der: &[u8]) -> String {
        let b64 = base64(der);
        let mut out = format!("-----BEGIN {label}-----\n");
        for line in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(line).expect("ascii"));
            out.push('\n');
        }
        out.push_str(&format!("-----END {label}-----\n"));
        out
    }

    /// A fresh scratch directory.
    pub(super) fn scratch() -> PathBuf {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pgtls-chain-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    /// Whether the `openssl` tool can be run.
    pub(super) fn available() -> bool {
        Command::new("openssl").arg("version").output().is_ok()
    }

    /// Writes certificates and CRLs as one PEM file.
    fn write(path: &Path, certs: &[CertificateDer<'_>], crls: &[CertificateRevocationListDer<'_>]) {
        let mut text = String::new();
        for c in certs {
            text.push_str(&pem("CERTIFICATE", c.as_ref()));
        }
        for c in crls {
            text.push_str(&pem("X509 CRL", c.as_ref()));
        }
        std::fs::write(path, text).expect("write pem");
    }

    /// OpenSSL's verdict: the first error it reports (libpq stops at the first).
    pub(super) fn verify(case: &Case) -> Option<Result<(), (String, usize)>> {
        if !available() || case.roots.is_empty() {
            return None;
        }
        let at = case.at.unwrap_or(NOW).to_string();
        let dir = scratch();
        let ca = dir.join("ca.pem");
        let leaf = dir.join("leaf.pem");
        write(&ca, &case.roots, &case.crls);
        write(&leaf, &[case.leaf.clone().expect("leaf")], &[]);
        let mut cmd = Command::new("openssl");
        cmd.arg("verify")
            .args(["-attime", &at, "-purpose", "sslserver"])
            // libpq's SSL passes its security level (2 on Debian's OpenSSL 3).
            .args(["-auth_level", "2"])
            .arg("-CAfile")
            .arg(&ca);
        if !case.presented.is_empty() {
            let untrusted = dir.join("untrusted.pem");
            write(&untrusted, &case.presented, &[]);
            cmd.arg("-untrusted").arg(&untrusted);
        }
        if case.crl_check.unwrap_or(!case.crls.is_empty()) {
            cmd.arg("-crl_check_all");
        }
        let out = cmd.arg(&leaf).output().expect("run openssl");
        let _ = std::fs::remove_dir_all(&dir);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        let first_error = text.lines().find_map(parse_error_line);
        Some(match first_error {
            None if out.status.success() => Ok(()),
            None => panic!("openssl failed without a verify error: {text}"),
            Some(e) => Err(e),
        })
    }

    /// Parses `error N at D depth lookup: MESSAGE`.
    fn parse_error_line(line: &str) -> Option<(String, usize)> {
        let rest = line.strip_prefix("error ")?;
        let (_, rest) = rest.split_once(" at ")?;
        let (depth, rest) = rest.split_once(" depth lookup: ")?;
        Some((rest.trim().to_string(), depth.parse().ok()?))
    }
}

// --- path building -------------------------------------------------------------------

#[test]
fn chain_with_presented_intermediate_verifies() {
    let (root, inter, leaf) = three();
    Case::new(&[&root], &[&inter], &leaf).expect(Ok(()));
}

#[test]
fn intermediate_from_root_file_need_not_be_presented() {
    let (root, inter, leaf) = three();
    Case::new(&[&inter, &root], &[], &leaf).expect(Ok(()));
}

#[test]
fn intermediate_alone_is_not_an_anchor() {
    let (_root, inter, leaf) = three();
    let err = Err((ChainError::UnableToGetIssuerCert, 1));
    Case::new(&[&inter], &[], &leaf).expect(err);
    Case::new(&[&inter], &[&inter], &leaf).expect(err);
}

#[test]
fn missing_issuer_is_unable_to_get_local_issuer() {
    let (_root, inter, leaf) = three();
    let other = self_signed(ca("Other Root"));
    Case::new(&[&other], &[&inter], &leaf)
        .expect(Err((ChainError::UnableToGetIssuerCertLocally, 1)));
    Case::new(&[&other], &[], &leaf).expect(Err((ChainError::UnableToGetIssuerCertLocally, 0)));
}

#[test]
fn self_signed_leaf_in_root_file_verifies() {
    let me = self_signed(leaf("db.example.com"));
    Case::new(&[&me], &[], &me).expect(Ok(()));
    Case::new(&[&me], &[&me], &me).expect(Ok(()));
}

#[test]
fn self_signed_leaf_not_in_root_file() {
    let me = self_signed(leaf("db.example.com"));
    let root = self_signed(ca("Test Root"));
    Case::new(&[&root], &[], &me).expect(Err((ChainError::DepthZeroSelfSignedCert, 0)));
    // Same name as the leaf, different key: a mimic is not trusted.
    let mimic = self_signed(leaf("db.example.com"));
    Case::new(&[&mimic], &[], &me).expect(Err((ChainError::DepthZeroSelfSignedCert, 0)));
}

#[test]
fn chain_ending_at_unknown_self_signed_root() {
    let (root, inter, leaf) = three();
    let other = self_signed(ca("Other Root"));
    Case::new(&[&other], &[&inter, &root], &leaf)
        .expect(Err((ChainError::SelfSignedCertInChain, 2)));
}

#[test]
fn issuer_names_compare_canonically() {
    // The leaf's issuer field is spelled "  TEST   intermediate " in a UTF8String while the
    // intermediate's subject is a PrintableString: X509_NAME_cmp sees the same name.
    let root = self_signed(ca("Test Root"));
    let mut inter_params = ca("x");
    inter_params.distinguished_name = rcgen::DistinguishedName::new();
    inter_params.distinguished_name.push(
        DnType::CommonName,
        DnValue::PrintableString("Test Intermediate".try_into().expect("printable")),
    );
    let inter = issue(inter_params, &root);
    let mut spelled = inter.params.clone();
    spelled.distinguished_name = rcgen::DistinguishedName::new();
    spelled.distinguished_name.push(
        DnType::CommonName,
        DnValue::Utf8String("  TEST   intermediate ".to_string()),
    );
    let key = key();
    let der = leaf("db.example.com")
        .signed_by(&key, &Issuer::from_params(&spelled, &inter.key))
        .expect("signed")
        .der()
        .clone();
    let odd = Pki {
        params: leaf("db.example.com"),
        key,
        der,
    };
    Case::new(&[&root], &[&inter], &odd).expect(Ok(()));
}

// --- validity ---------------------------------------------------------------------------

#[test]
fn expired_and_not_yet_valid() {
    let root = self_signed(ca("Test Root"));
    let inter = issue(ca("Test Intermediate"), &root);
    let mut p = leaf("db.example.com");
    p.not_after = date(2024, 1, 1);
    let expired = issue(p, &inter);
    Case::new(&[&root], &[&inter], &expired).expect(Err((ChainError::CertHasExpired, 0)));
    let mut p = leaf("db.example.com");
    p.not_before = date(2026, 1, 1);
    let future = issue(p, &inter);
    Case::new(&[&root], &[&inter], &future).expect(Err((ChainError::CertNotYetValid, 0)));
}

#[test]
fn expired_intermediate_and_expired_root() {
    let root = self_signed(ca("Test Root"));
    let mut p = ca("Test Intermediate");
    p.not_after = date(2024, 1, 1);
    let inter = issue(p, &root);
    let leaf_cert = issue(leaf("db.example.com"), &inter);
    Case::new(&[&root], &[&inter], &leaf_cert).expect(Err((ChainError::CertHasExpired, 1)));

    let mut p = ca("Old Root");
    p.not_after = date(2024, 1, 1);
    let old_root = self_signed(p);
    let inter = issue(ca("Test Intermediate"), &old_root);
    let leaf_cert = issue(leaf("db.example.com"), &inter);
    Case::new(&[&old_root], &[&inter], &leaf_cert).expect(Err((ChainError::CertHasExpired, 2)));
}

#[test]
fn validity_boundaries_follow_openssl_3_0() {
    let root = self_signed(ca("Test Root"));
    let at_now = OffsetDateTime::from_unix_timestamp(NOW).expect("time");
    let mut p = leaf("db.example.com");
    p.not_after = at_now;
    let ends_now = issue(p, &root);
    Case::new(&[&root], &[], &ends_now).expect(Err((ChainError::CertHasExpired, 0)));
    let mut p = leaf("db.example.com");
    p.not_before = at_now;
    let starts_now = issue(p, &root);
    Case::new(&[&root], &[], &starts_now).expect(Ok(()));
    let l = issue(leaf("db.example.com"), &root);
    let crl_ends_now = crl_between(&root, &[], date(2025, 1, 1), at_now);
    Case::new(&[&root], &[], &l)
        .crls(vec![crl_ends_now])
        .expect(Err((ChainError::CrlHasExpired, 0)));
    let crl_starts_now = crl_between(&root, &[], at_now, date(2026, 1, 1));
    Case::new(&[&root], &[], &l)
        .crls(vec![crl_starts_now])
        .expect(Ok(()));
}

// --- CA-ness, purpose, path length, critical extensions ----------------------------------

#[test]
fn non_ca_intermediates_are_invalid_ca() {
    let root = self_signed(ca("Test Root"));
    for is_ca in [IsCa::NoCa, IsCa::ExplicitNoCa] {
        let mut p = ca("Test Intermediate");
        p.is_ca = is_ca;
        p.key_usages.clear();
        let inter = issue(p, &root);
        let l = issue(leaf("db.example.com"), &inter);
        Case::new(&[&root], &[&inter], &l).expect(Err((ChainError::InvalidCa, 1)));
    }
    let mut p = ca("Test Intermediate");
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let inter = issue(p, &root);
    let l = issue(leaf("db.example.com"), &inter);
    Case::new(&[&root], &[&inter], &l).expect(Err((ChainError::InvalidCa, 1)));
}

#[test]
fn root_must_be_a_ca_too() {
    // A v3 root without basicConstraints or keyUsage is not a CA (only v1 roots are).
    let mut p = ca("Bare Root");
    p.is_ca = IsCa::NoCa;
    p.key_usages.clear();
    let bare = self_signed(p);
    let l = issue(leaf("db.example.com"), &bare);
    Case::new(&[&bare], &[], &l).expect(Err((ChainError::InvalidCa, 1)));
    // keyUsage with keyCertSign but no basicConstraints is enough for the top.
    let mut p = ca("KeyUsage Root");
    p.is_ca = IsCa::NoCa;
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ku_root = self_signed(p);
    let l = issue(leaf("db.example.com"), &ku_root);
    Case::new(&[&ku_root], &[], &l).expect(Ok(()));
    // A root whose EKU excludes TLS servers.
    let mut p = ca("Client Root");
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_root = self_signed(p);
    let l = issue(leaf("db.example.com"), &client_root);
    Case::new(&[&client_root], &[], &l).expect(Err((ChainError::InvalidPurpose, 1)));
}

#[test]
fn malformed_or_repeated_known_extensions_make_a_certificate_unusable() {
    let root = self_signed(ca("Test Root"));
    let mut p = leaf("db.example.com");
    p.subject_alt_names.clear();
    p.custom_extensions.push(CustomExtension::from_oid_content(
        &[2, 5, 29, 17],
        vec![0x04, 0x00],
    ));
    let bad_san = issue(p, &root);
    Case::new(&[&root], &[], &bad_san).expect(Err((ChainError::UnableToGetIssuerCertLocally, 0)));
    let mut p = leaf("db.example.com");
    // keyUsage digitalSignature, a second time.
    let ku = vec![0x03, 0x02, 0x07, 0x80];
    p.custom_extensions
        .push(CustomExtension::from_oid_content(&[2, 5, 29, 15], ku));
    let twice = issue(p, &root);
    Case::new(&[&root], &[], &twice).expect(Err((ChainError::UnableToGetIssuerCertLocally, 0)));
    // A malformed extension OpenSSL does not cache is harmless.
    let mut p = leaf("db.example.com");
    p.custom_extensions.push(CustomExtension::from_oid_content(
        &[2, 5, 29, 32],
        vec![0x04, 0x00],
    ));
    let odd_policy = issue(p, &root);
    Case::new(&[&root], &[], &odd_policy).expect(Ok(()));
}

#[test]
fn alt_names_are_read_without_alphabet_checks() {
    // OpenSSL keeps a dNSName whatever its bytes and an x400Address it does not look at; the
    // certificate stays usable (x509-cert's GeneralName would refuse both).
    let root = self_signed(ca("Test Root"));
    let mut p = leaf("db.example.com");
    p.subject_alt_names.clear();
    let names = [
        der(0x82, b"db.example.com"),
        der(0x82, b"\xffdb.example.com"),
        der(0xa3, &[]),
    ]
    .concat();
    p.custom_extensions.push(CustomExtension::from_oid_content(
        &[2, 5, 29, 17],
        der(0x30, &names),
    ));
    let odd_names = issue(p, &root);
    Case::new(&[&root], &[], &odd_names).expect(Ok(()));
    let parsed = Cert::parse(&odd_names.der).expect("parses");
    assert_eq!(parsed.ext.san.len(), 3);
    assert!(!parsed.ext.invalid);
}

#[test]
fn times_before_1970_are_read_like_openssl() {
    // x509-cert's times start in 1970; a UTCTime of 1950 is read as OpenSSL reads it.
    let root = self_signed(ca("Test Root"));
    let mut p = leaf("db.example.com");
    p.not_before = date(1950, 1, 1);
    let old = issue(p, &root);
    assert_eq!(
        Cert::parse(&old.der).expect("parses").not_before,
        -631_152_000
    );
    Case::new(&[&root], &[], &old).expect(Ok(()));
    let mut p = leaf("db.example.com");
    p.not_before = date(1965, 1, 1);
    p.not_after = date(1969, 12, 31);
    let expired = issue(p, &root);
    Case::new(&[&root], &[], &expired).expect(Err((ChainError::CertHasExpired, 0)));
}

#[test]
fn leaf_signed_by_wrong_ca() {
    let root = self_signed(ca("Test Root"));
    let impostor = self_signed(ca("Test Root"));
    let mut p = leaf("db.example.com");
    p.use_authority_key_identifier_extension = false;
    let forged = issue(p, &impostor);
    Case::new(&[&root], &[], &forged).expect(Err((ChainError::CertSignatureFailure, 0)));
    // With an AKID, the impostor's key id does not match: no issuer at all.
    let forged = issue(leaf("db.example.com"), &impostor);
    Case::new(&[&root], &[], &forged).expect(Err((ChainError::UnableToGetIssuerCertLocally, 0)));
}

#[test]
fn purpose_must_allow_tls_server() {
    let root = self_signed(ca("Test Root"));
    let cases = [
        vec![ExtendedKeyUsagePurpose::ClientAuth],
        vec![ExtendedKeyUsagePurpose::Any],
    ];
    for ekus in cases {
        let mut p = leaf("db.example.com");
        p.extended_key_usages = ekus;
        let l = issue(p, &root);
        Case::new(&[&root], &[], &l).expect(Err((ChainError::InvalidPurpose, 0)));
    }
    let mut p = leaf("db.example.com");
    p.key_usages = vec![KeyUsagePurpose::ContentCommitment];
    let l = issue(p, &root);
    Case::new(&[&root], &[], &l).expect(Err((ChainError::InvalidPurpose, 0)));
    let mut p = leaf("db.example.com");
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ClientAuth,
        ExtendedKeyUsagePurpose::ServerAuth,
    ];
    let l = issue(p, &root);
    Case::new(&[&root], &[], &l).expect(Ok(()));
    let mut p = leaf("db.example.com");
    p.extended_key_usages.clear();
    p.key_usages.clear();
    let l = issue(p, &root);
    Case::new(&[&root], &[], &l).expect(Ok(()));
}

#[test]
fn intermediate_eku_restricts_purpose() {
    let root = self_signed(ca("Test Root"));
    let mut p = ca("Test Intermediate");
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let inter = issue(p, &root);
    let l = issue(leaf("db.example.com"), &inter);
    Case::new(&[&root], &[&inter], &l).expect(Err((ChainError::InvalidPurpose, 1)));
}

#[test]
fn path_length_constraint() {
    let root = self_signed(ca("Test Root"));
    let mut p = ca("Intermediate One");
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let one = issue(p, &root);
    let two = issue(ca("Intermediate Two"), &one);
    let l = issue(leaf("db.example.com"), &two);
    Case::new(&[&root], &[&one, &two], &l).expect(Err((ChainError::PathLengthExceeded, 2)));
    let mut p = ca("Intermediate One");
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    let one = issue(p, &root);
    let two = issue(ca("Intermediate Two"), &one);
    let l = issue(leaf("db.example.com"), &two);
    Case::new(&[&root], &[&one, &two], &l).expect(Ok(()));
}

#[test]
fn unknown_critical_extension() {
    let root = self_signed(ca("Test Root"));
    let mut p = leaf("db.example.com");
    let mut ext = CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 99999, 1], vec![5, 0]);
    ext.set_criticality(true);
    p.custom_extensions.push(ext);
    let l = issue(p, &root);
    Case::new(&[&root], &[], &l).expect(Err((ChainError::UnhandledCriticalExtension, 0)));
    // The same extension, not critical, is ignored.
    let mut p = leaf("db.example.com");
    let ext = CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 99999, 1], vec![5, 0]);
    p.custom_extensions.push(ext);
    let l = issue(p, &root);
    Case::new(&[&root], &[], &l).expect(Ok(()));
}

// --- CRLs -----------------------------------------------------------------------------------

#[test]
fn crl_revoked_and_not_revoked() {
    let (root, inter, l) = three();
    Case::new(&[&root], &[&inter], &l)
        .crls(vec![crl(&root, &[]), crl(&inter, &[&l])])
        .expect(Err((ChainError::CertRevoked, 0)));
    Case::new(&[&root], &[&inter], &l)
        .crls(vec![crl(&root, &[]), crl(&inter, &[])])
        .expect(Ok(()));
    Case::new(&[&root], &[&inter], &l)
        .crls(vec![crl(&root, &[&inter]), crl(&inter, &[])])
        .expect(Err((ChainError::CertRevoked, 1)));
}

#[test]
fn crl_times() {
    let (root, inter, l) = three();
    let expired = crl_between(&inter, &[], date(2024, 1, 1), date(2025, 1, 1));
    Case::new(&[&root], &[&inter], &l)
        .crls(vec![crl(&root, &[]), expired])
        .expect(Err((ChainError::CrlHasExpired, 0)));
    let future = crl_between(&inter, &[], date(2026, 1, 1), date(2027, 1, 1));
    Case::new(&[&root], &[&inter], &l)
        .crls(vec![crl(&root, &[]), future])
        .expect(Err((ChainError::CrlNotYetValid, 0)));
}

#[test]
fn crl_required_for_every_certificate() {
    let (root, inter, l) = three();
    Case::new(&[&root], &[&inter], &l)
        .crls(vec![crl(&inter, &[])])
        .expect(Err((ChainError::UnableToGetCrl, 1)));
    Case::new(&[&root], &[&inter], &l)
        .crls(vec![crl(&root, &[])])
        .expect(Err((ChainError::UnableToGetCrl, 0)));
    let mut case = Case::new(&[&root], &[&inter], &l);
    case.crl_check = Some(true);
    case.expect(Err((ChainError::UnableToGetCrl, 0)));
    // Without CRLs there is no checking at all.
    Case::new(&[&root], &[&inter], &l).expect(Ok(()));
}

#[test]
fn crls_in_the_store_are_ignored_without_crl_checking() {
    // libpq: CRL blocks in the root file but no loadable sslcrl file.
    let (root, inter, l) = three();
    let mut case = Case::new(&[&root], &[&inter], &l).crls(vec![crl(&inter, &[&l])]);
    case.crl_check = Some(false);
    case.expect(Ok(()));
}

#[test]
fn crl_needed_even_for_self_signed_certificates() {
    // OpenSSL 3.0–3.5 also look for a CRL covering the self-signed anchor (issued by itself).
    let mut p = leaf("db.example.com");
    p.key_usages.clear();
    let me = self_signed(p);
    let other = self_signed(ca("Other Root"));
    Case::new(&[&me, &other], &[], &me)
        .crls(vec![crl(&other, &[])])
        .expect(Err((ChainError::UnableToGetCrl, 0)));
    Case::new(&[&me, &other], &[], &me)
        .crls(vec![crl(&me, &[])])
        .expect(Ok(()));
    Case::new(&[&me], &[], &me)
        .crls(vec![crl(&me, &[&me])])
        .expect(Err((ChainError::CertRevoked, 0)));
    // A root listed in its own CRL is revoked too.
    let (root, inter, l) = three();
    Case::new(&[&root], &[&inter], &l)
        .crls(vec![crl(&root, &[&root]), crl(&inter, &[])])
        .expect(Err((ChainError::CertRevoked, 2)));
}

#[test]
fn crl_with_bad_signature() {
    let (root, inter, l) = three();
    let good = crl(&inter, &[]);
    let mut bytes = good.as_ref().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    Case::new(&[&root], &[&inter], &l)
        .crls(vec![
            crl(&root, &[]),
            CertificateRevocationListDer::from(bytes),
        ])
        .expect(Err((ChainError::CrlSignatureFailure, 0)));
}

#[test]
fn crl_issuer_without_crl_sign() {
    let root = self_signed(ca("Test Root"));
    let mut p = ca("Test Intermediate");
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let inter = issue(p, &root);
    let l = issue(leaf("db.example.com"), &inter);
    let mut signer_params = inter.params.clone();
    signer_params.key_usages.push(KeyUsagePurpose::CrlSign);
    let signer = Pki {
        params: signer_params,
        key: KeyPair::from_pem(&inter.key.serialize_pem()).expect("key"),
        der: inter.der.clone(),
    };
    Case::new(&[&root], &[&inter], &l)
        .crls(vec![crl(&root, &[]), crl(&signer, &[])])
        .expect(Err((ChainError::KeyUsageNoCrlSign, 0)));
}

#[test]
fn crl_remove_from_crl_is_not_revoked() {
    let (root, inter, l) = three();
    let removed = crl_with(
        &inter,
        &[&l],
        date(2025, 1, 1),
        date(2026, 1, 1),
        Some(RevocationReason::RemoveFromCrl),
        None,
    );
    Case::new(&[&root], &[&inter], &l)
        .crls(vec![crl(&root, &[]), removed])
        .expect(Ok(()));
}

#[test]
fn newest_crl_wins() {
    let (root, inter, l) = three();
    let old = crl_between(&inter, &[], date(2025, 1, 1), date(2026, 1, 1));
    let new = crl_between(&inter, &[&l], date(2025, 5, 1), date(2026, 1, 1));
    Case::new(&[&root], &[&inter], &l)
        .crls(vec![crl(&root, &[]), old.clone(), new.clone()])
        .expect(Err((ChainError::CertRevoked, 0)));
    Case::new(&[&root], &[&inter], &l)
        .crls(vec![crl(&root, &[]), new, old])
        .expect(Err((ChainError::CertRevoked, 0)));
}

#[test]
fn crl_issuing_distribution_point_scope() {
    let root = self_signed(ca("Test Root"));
    let inter = issue(ca("Test Intermediate"), &root);
    let uri = "http://crl.example.com/inter.crl".to_string();
    let idp = |scope| CrlIssuingDistributionPoint {
        distribution_point: CrlDistributionPoint {
            uris: vec![uri.clone()],
        },
        scope,
    };
    let scoped = |scope| {
        crl_with(
            &inter,
            &[],
            date(2025, 1, 1),
            date(2026, 1, 1),
            None,
            Some(idp(scope)),
        )
    };
    // Leaf without a matching CRL distribution point: out of scope.
    let plain = issue(leaf("db.example.com"), &inter);
    Case::new(&[&root], &[&inter], &plain)
        .crls(vec![crl(&root, &[]), scoped(None)])
        .expect(Err((ChainError::DifferentCrlScope, 0)));
    // Leaf pointing at the CRL: in scope, unless the CRL covers only CA certificates.
    let mut p = leaf("db.example.com");
    p.crl_distribution_points = vec![CrlDistributionPoint {
        uris: vec![uri.clone()],
    }];
    let pointed = issue(p, &inter);
    Case::new(&[&root], &[&inter], &pointed)
        .crls(vec![crl(&root, &[]), scoped(Some(CrlScope::UserCertsOnly))])
        .expect(Ok(()));
    Case::new(&[&root], &[&inter], &pointed)
        .crls(vec![crl(&root, &[]), scoped(Some(CrlScope::CaCertsOnly))])
        .expect(Err((ChainError::DifferentCrlScope, 0)));
}

#[test]
fn distribution_point_with_some_reasons_needs_more_crls() {
    // The leaf's CRL distribution point covers keyCompromise only: one CRL covers only that
    // reason, so OpenSSL keeps looking for the other reasons and gives up.
    let (root, inter, _) = three();
    let uri = b"http://crl.example.com/inter.crl";
    let dp_name = der(0xa0, &der(0xa0, &der(0x86, uri)));
    let reasons = [0x81, 0x02, 0x06, 0x40];
    let dps = der(0x30, &der(0x30, &[dp_name, reasons.to_vec()].concat()));
    let mut p = leaf("db.example.com");
    p.custom_extensions
        .push(CustomExtension::from_oid_content(&[2, 5, 29, 31], dps));
    let l = issue(p, &inter);
    Case::new(&[&root], &[&inter], &l)
        .crls(vec![crl(&root, &[]), crl(&inter, &[])])
        .expect(Err((ChainError::UnableToGetCrl, 0)));
}

#[test]
fn crl_from_another_key_with_the_same_name_is_unusable() {
    let (root, inter, l) = three();
    let impostor = Pki {
        params: inter.params.clone(),
        key: key(),
        der: inter.der.clone(),
    };
    Case::new(&[&root], &[&inter], &l)
        .crls(vec![crl(&root, &[]), crl(&impostor, &[])])
        .expect(Err((ChainError::UnableToGetCrl, 0)));
}

// --- X.509 v1 ------------------------------------------------------------------------------

#[test]
fn v1_leaf_under_v3_root() {
    let root = self_signed(ca("Test Root"));
    let v3 = issue(leaf("db.example.com"), &root);
    let v1 = Pki {
        der: make_v1(&v3.der, &root.key),
        ..v3
    };
    let (_, parsed) = x509_parser::parse_x509_certificate(&v1.der).expect("v1 parses");
    assert_eq!(parsed.version().0, 0);
    Case::new(&[&root], &[], &v1).expect(Ok(()));
}

#[test]
fn v1_root_and_v1_leaf() {
    let root_v3 = self_signed(ca("Test Root"));
    let root = Pki {
        der: make_v1(&root_v3.der, &root_v3.key),
        ..root_v3
    };
    let leaf_v3 = issue(leaf("db.example.com"), &root);
    let l = Pki {
        der: make_v1(&leaf_v3.der, &root.key),
        ..leaf_v3
    };
    Case::new(&[&root], &[], &l).expect(Ok(()));
    // A v1 root that is not in the root file is just a self-signed certificate in the chain.
    let other = self_signed(ca("Other Root"));
    Case::new(&[&other], &[&root], &l).expect(Err((ChainError::SelfSignedCertInChain, 1)));
}

#[test]
fn v1_intermediate_is_not_a_ca() {
    let root = self_signed(ca("Test Root"));
    let inter_v3 = issue(ca("Test Intermediate"), &root);
    let inter = Pki {
        der: make_v1(&inter_v3.der, &root.key),
        ..inter_v3
    };
    let l = issue(leaf("db.example.com"), &inter);
    Case::new(&[&root], &[&inter], &l).expect(Err((ChainError::InvalidCa, 1)));
}

#[test]
fn postgresql_documented_openssl_recipe() {
    // The commands from PostgreSQL's "Creating Certificates" section: a v3 root made with
    // `openssl x509 -req -extensions v3_ca`, a server certificate made without extensions
    // (X.509 v1).
    if !openssl::available() {
        return;
    }
    let dir = openssl::scratch();
    let run = |args: &[&str]| {
        let status = std::process::Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("openssl");
        assert!(status.status.success(), "{args:?}: {status:?}");
    };
    let ext = dir.join("v3.cnf");
    std::fs::write(&ext, "[v3_ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n")
        .expect("write cnf");
    run(&[
        "req",
        "-new",
        "-nodes",
        "-out",
        "root.csr",
        "-keyout",
        "root.key",
        "-subj",
        "/CN=root.yourdomain.com",
        "-newkey",
        "rsa:2048",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "root.csr",
        "-days",
        "3650",
        "-extfile",
        "v3.cnf",
        "-extensions",
        "v3_ca",
        "-signkey",
        "root.key",
        "-out",
        "root.crt",
    ]);
    run(&[
        "req",
        "-new",
        "-nodes",
        "-out",
        "server.csr",
        "-keyout",
        "server.key",
        "-subj",
        "/CN=dbhost.yourdomain.com",
        "-newkey",
        "rsa:2048",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-days",
        "365",
        "-CA",
        "root.crt",
        "-CAkey",
        "root.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
    ]);
    let read = |name: &str| CertificateDer::from_pem_file(dir.join(name)).expect("pem certificate");
    let (root, server) = (read("root.crt"), read("server.crt"));
    let _ = std::fs::remove_dir_all(&dir);
    let (_, parsed) = x509_parser::parse_x509_certificate(&server).expect("parses");
    assert_eq!(
        parsed.version().0,
        0,
        "the recipe makes a v1 server certificate"
    );
    let store = TrustStore::from_root_certs(&[root], &[]).expect("store");
    assert_eq!(
        store.verify_chain(&server, &[], UnixTime::now(), &algs()),
        Ok(())
    );
    let expired = UnixTime::since_unix_epoch(Duration::from_secs(
        (NOW as u64).max(UnixTime::now().as_secs()) + 400 * 86_400,
    ));
    assert_eq!(
        store.verify_chain(&server, &[], expired, &algs()),
        Err(ChainError::CertHasExpired)
    );
}

/// Runs `openssl` with `args` in `dir`, asserting success.
fn openssl_in(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(out.status.success(), "{args:?}: {out:?}");
}

#[test]
fn openssl_generated_algorithms() {
    // Certificates signed by OpenSSL itself: RSA-PSS (salt = digest length), RSA PKCS#1,
    // ECDSA P-384 and Ed25519. RSA-PSS with OpenSSL's default maximal salt is not one of the
    // provider's encodings (webpki rejects it too), unlike OpenSSL.
    if !openssl::available() {
        return;
    }
    let dir = openssl::scratch();
    let ca_ext = [
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=keyCertSign,cRLSign",
    ];
    let roots: [(&str, &[&str]); 4] = [
        (
            "pss",
            &[
                "-newkey",
                "rsa:2048",
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:digest",
                "-sha256",
            ],
        ),
        (
            "pssmax",
            &[
                "-newkey",
                "rsa:2048",
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sha256",
            ],
        ),
        ("pkcs1", &["-newkey", "rsa:3072", "-sha384"]),
        ("ed25519", &["-newkey", "ed25519"]),
    ];
    for (name, key_args) in roots {
        let mut args = vec!["req", "-x509", "-nodes", "-days", "30", "-subj"];
        let subject = format!("/CN={name} root");
        args.push(&subject);
        let (key, crt) = (format!("{name}.key"), format!("{name}.crt"));
        args.extend(["-keyout", &key, "-out", &crt]);
        args.extend(key_args);
        args.extend(ca_ext);
        openssl_in(&dir, &args);
    }
    openssl_in(
        &dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
            "-nodes",
            "-keyout",
            "srv.key",
            "-out",
            "srv.csr",
            "-subj",
            "/CN=db.example.com",
        ],
    );
    let sign = |ca: &str, extra: &[&str]| {
        let (crt, key, out) = (
            format!("{ca}.crt"),
            format!("{ca}.key"),
            format!("srv-{ca}.crt"),
        );
        let mut args = vec![
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-days",
            "10",
            "-set_serial",
            "7",
            "-CA",
            &crt,
            "-CAkey",
            &key,
            "-out",
            &out,
        ];
        args.extend(extra);
        openssl_in(&dir, &args);
    };
    sign(
        "pss",
        &[
            "-sha256",
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:digest",
        ],
    );
    sign("pssmax", &["-sha256", "-sigopt", "rsa_padding_mode:pss"]);
    sign("pkcs1", &["-sha512"]);
    sign("ed25519", &[]);
    let read = |name: &str| CertificateDer::from_pem_file(dir.join(name)).expect("pem");
    let now = UnixTime::now();
    for (ca, expected) in [
        ("pss", Ok(())),
        ("pssmax", Err(ChainError::UnsupportedSignatureAlgorithm)),
        ("pkcs1", Ok(())),
        ("ed25519", Ok(())),
    ] {
        let store = TrustStore::from_root_certs(&[read(&format!("{ca}.crt"))], &[]).expect("store");
        let leaf = read(&format!("srv-{ca}.crt"));
        assert_eq!(
            store.verify_chain(&leaf, &[], now, &algs()),
            expected,
            "{ca}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// --- name constraints -------------------------------------------------------------------------

/// A root, an intermediate with these constraints, and leaves issued by it.
fn constrained(permitted: Vec<GeneralSubtree>, excluded: Vec<GeneralSubtree>) -> (Pki, Pki) {
    let root = self_signed(ca("Test Root"));
    let mut p = ca("Constrained Intermediate");
    p.name_constraints = Some(rcgen::NameConstraints {
        permitted_subtrees: permitted,
        excluded_subtrees: excluded,
    });
    let inter = issue(p, &root);
    (root, inter)
}

#[test]
fn dns_name_constraints() {
    let (root, inter) = constrained(
        vec![GeneralSubtree::DnsName("example.com".into())],
        vec![GeneralSubtree::DnsName("bad.example.com".into())],
    );
    let ok = issue(leaf("db.example.com"), &inter);
    Case::new(&[&root], &[&inter], &ok).expect(Ok(()));
    let outside = issue(leaf("db.example.org"), &inter);
    Case::new(&[&root], &[&inter], &outside).expect(Err((ChainError::PermittedViolation, 0)));
    let excluded = issue(leaf("x.bad.example.com"), &inter);
    Case::new(&[&root], &[&inter], &excluded).expect(Err((ChainError::ExcludedViolation, 0)));
    // Suffix matches stop at label boundaries.
    let lookalike = issue(leaf("db.notexample.com"), &inter);
    Case::new(&[&root], &[&inter], &lookalike).expect(Err((ChainError::PermittedViolation, 0)));
}

#[test]
fn common_name_is_constrained_without_dns_san() {
    let (root, inter) = constrained(vec![GeneralSubtree::DnsName("example.com".into())], vec![]);
    let mut p = leaf("db.example.org");
    p.subject_alt_names.clear();
    let cn_only = issue(p, &inter);
    Case::new(&[&root], &[&inter], &cn_only).expect(Err((ChainError::PermittedViolation, 0)));
    let mut p = leaf("localhost");
    p.subject_alt_names.clear();
    let single_label = issue(p, &inter);
    Case::new(&[&root], &[&inter], &single_label).expect(Ok(()));
}

#[test]
fn ip_name_constraints() {
    let (root, inter) = constrained(
        vec![GeneralSubtree::IpAddress(CidrSubnet::from_v4_prefix(
            [10, 0, 0, 0],
            8,
        ))],
        vec![],
    );
    let ip_leaf = |ip: Ipv4Addr| {
        let mut p = leaf("db");
        p.subject_alt_names = vec![SanType::IpAddress(IpAddr::V4(ip))];
        issue(p, &inter)
    };
    Case::new(&[&root], &[&inter], &ip_leaf(Ipv4Addr::new(10, 1, 2, 3))).expect(Ok(()));
    Case::new(&[&root], &[&inter], &ip_leaf(Ipv4Addr::new(192, 168, 1, 1)))
        .expect(Err((ChainError::PermittedViolation, 0)));
}

#[test]
fn directory_name_constraints() {
    let mut allowed = rcgen::DistinguishedName::new();
    allowed.push(DnType::OrganizationName, "Example");
    let (root, inter) = constrained(vec![GeneralSubtree::DirectoryName(allowed)], vec![]);
    let with_org = |org: &str| {
        let mut p = leaf("db.example.com");
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::OrganizationName, org);
        p.distinguished_name
            .push(DnType::CommonName, "db.example.com");
        issue(p, &inter)
    };
    Case::new(&[&root], &[&inter], &with_org("EXAMPLE")).expect(Ok(()));
    Case::new(&[&root], &[&inter], &with_org("Elsewhere"))
        .expect(Err((ChainError::PermittedViolation, 0)));
}

// --- trust anchors given as subject + key ------------------------------------------------------

/// A `TrustAnchor` for a certificate, optionally with name constraints (DER contents).
fn anchor_of(cert: &CertificateDer<'_>, nc: Option<Vec<u8>>) -> TrustAnchor<'static> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).expect("parse");
    let contents = |raw: &[u8]| read_tlv(raw).expect("tlv").0.value.to_vec();
    TrustAnchor {
        subject: contents(parsed.subject().as_raw()).into(),
        subject_public_key_info: contents(parsed.public_key().raw).into(),
        name_constraints: nc.map(Into::into),
    }
}

#[test]
fn bare_trust_anchors() {
    let (root, inter, l) = three();
    let now = UnixTime::since_unix_epoch(Duration::from_secs(NOW as u64));
    let store = TrustStore::from_trust_anchors(&[anchor_of(&root.der, None)]);
    assert_eq!(
        store.verify_chain(&l.der, std::slice::from_ref(&inter.der), now, &algs()),
        Ok(())
    );
    assert_eq!(
        store.verify_chain(&l.der, &[], now, &algs()),
        Err(ChainError::UnableToGetIssuerCertLocally)
    );
    let other = self_signed(ca("Test Root"));
    let wrong = TrustStore::from_trust_anchors(&[anchor_of(&other.der, None)]);
    assert_eq!(
        wrong.verify_chain(&l.der, std::slice::from_ref(&inter.der), now, &algs()),
        Err(ChainError::CertSignatureFailure)
    );
    // webpki-roots style constraints: permitted dNSName ".org" only.
    let nc = der(0xa0, &der(0x30, &der(0x82, b".org")));
    let constrained = TrustStore::from_trust_anchors(&[anchor_of(&root.der, Some(nc))]);
    assert_eq!(
        constrained
            .verify_chain_detailed(&l.der, std::slice::from_ref(&inter.der), now, &algs())
            .map_err(|f| (f.error, f.depth)),
        Err((ChainError::PermittedViolation, 0))
    );
    // An anchor that does not parse is left out.
    let broken = TrustAnchor {
        subject: vec![0xff].into(),
        subject_public_key_info: vec![].into(),
        name_constraints: None,
    };
    let empty = TrustStore::from_trust_anchors(&[broken]);
    assert_eq!(
        empty.verify_chain(&l.der, std::slice::from_ref(&inter.der), now, &algs()),
        Err(ChainError::UnableToGetIssuerCertLocally)
    );
}

// --- alternative paths and hostile input -------------------------------------------------------

#[test]
fn alternative_path_when_first_candidate_fails() {
    // Two intermediates share a name; the first presented one has another key. OpenSSL picks
    // it and fails; pgtls finds the path through the second one (documented deviation).
    let root = self_signed(ca("Test Root"));
    let mut p = ca("Test Intermediate");
    p.use_authority_key_identifier_extension = false;
    let decoy = issue(p.clone(), &root);
    let real = issue(p, &root);
    let mut lp = leaf("db.example.com");
    lp.use_authority_key_identifier_extension = false;
    let l = issue(lp, &real);
    let case = Case::new(&[&root], &[&decoy, &real], &l);
    assert_eq!(case.ours(), Ok(()));
    case.expect_openssl(Err((ChainError::CertSignatureFailure, 0)));
}

#[test]
fn issuer_loops_terminate() {
    let root = self_signed(ca("Test Root"));
    let a_key = key();
    let b_key = key();
    let mut a = ca("Loop A");
    a.use_authority_key_identifier_extension = false;
    let mut b = ca("Loop B");
    b.use_authority_key_identifier_extension = false;
    let a_cert = a
        .signed_by(&a_key, &Issuer::from_params(&b, &b_key))
        .expect("a")
        .der()
        .clone();
    let b_cert = b
        .signed_by(&b_key, &Issuer::from_params(&a, &a_key))
        .expect("b")
        .der()
        .clone();
    let a_pki = Pki {
        params: a,
        key: a_key,
        der: a_cert,
    };
    let b_pki = Pki {
        params: b,
        key: b_key,
        der: b_cert,
    };
    let l = issue(leaf("db.example.com"), &a_pki);
    Case::new(&[&root], &[&a_pki, &b_pki], &l)
        .expect(Err((ChainError::UnableToGetIssuerCertLocally, 2)));
}

#[test]
fn many_cross_signed_certificates_stay_bounded() {
    // 2 × 150 intermediates "Evil A"/"Evil B" issuing each other with one key: every
    // signature verifies, nothing reaches an anchor. OpenSSL stops at its depth limit.
    let root = self_signed(ca("Test Root"));
    let evil = key();
    let mut a = ca("Evil A");
    a.use_authority_key_identifier_extension = false;
    let mut b = ca("Evil B");
    b.use_authority_key_identifier_extension = false;
    let mut presented = Vec::new();
    for _ in 0..150 {
        for (subject, issuer) in [(&a, &b), (&b, &a)] {
            let mut p = subject.clone();
            p.serial_number = Some(next_serial());
            let cert = p
                .signed_by(&evil, &Issuer::from_params(issuer, &evil))
                .expect("evil");
            presented.push(cert.der().clone());
        }
    }
    let mut lp = leaf("db.example.com");
    lp.use_authority_key_identifier_extension = false;
    let l = lp
        .signed_by(&key(), &Issuer::from_params(&a, &evil))
        .expect("leaf");
    let case = Case {
        roots: vec![root.der.clone()],
        presented,
        leaf: Some(l.der().clone()),
        ..Case::default()
    };
    let started = Instant::now();
    assert_eq!(case.ours(), Err((ChainError::CertChainTooLong, 101)));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    case.expect_openssl(Err((ChainError::CertChainTooLong, 101)));
}

#[test]
fn garbage_never_panics() {
    let (root, inter, l) = three();
    let store = TrustStore::from_root_certs(std::slice::from_ref(&root.der), &[]).expect("store");
    let now = UnixTime::since_unix_epoch(Duration::from_secs(NOW as u64));
    let garbage = CertificateDer::from(vec![0x30, 0x82, 0xff, 0xff, 0x00]);
    assert_eq!(
        store
            .verify_chain_detailed(&garbage, &[], now, &algs())
            .map_err(|f| (f.error, f.depth)),
        Err((ChainError::UnparsableCertificate, 0))
    );
    assert_eq!(
        store
            .verify_chain_detailed(&l.der, &[inter.der.clone(), garbage.clone()], now, &algs())
            .map_err(|f| (f.error, f.depth)),
        Err((ChainError::UnparsableCertificate, 2))
    );
    // Every truncation of a valid certificate is rejected without panicking.
    for cut in 0..l.der.len() {
        let truncated = CertificateDer::from(l.der[..cut].to_vec());
        assert!(store
            .verify_chain(&truncated, std::slice::from_ref(&inter.der), now, &algs())
            .is_err());
    }
    // Flipping any single byte never panics either.
    for i in 0..l.der.len() {
        let mut bytes = l.der.to_vec();
        bytes[i] ^= 0x5a;
        let _ = store.verify_chain(
            &CertificateDer::from(bytes),
            std::slice::from_ref(&inter.der),
            now,
            &algs(),
        );
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
        let _ = Cert::parse(&bytes);
        let _ = Name::from_contents(&bytes);
        let _ = NameConstraints::from_contents(&bytes);
        let _ = CrlSet::parse(&[CertificateRevocationListDer::from(bytes.clone())]);
        let anchor = TrustAnchor {
            subject: bytes.clone().into(),
            subject_public_key_info: bytes.clone().into(),
            name_constraints: Some(bytes.clone().into()),
        };
        let store = TrustStore::from_trust_anchors(&[anchor]);
        let now = UnixTime::since_unix_epoch(Duration::from_secs(NOW as u64));
        let cert = CertificateDer::from(bytes);
        proptest::prop_assert!(store.verify_chain(&cert, std::slice::from_ref(&cert), now, &algs()).is_err());
    }
}

#[test]
fn setup_errors_name_the_bad_input() {
    let root = self_signed(ca("Test Root"));
    let bad = CertificateDer::from(vec![0x30, 0x00]);
    assert_eq!(
        TrustStore::from_root_certs(&[root.der.clone(), bad], &[]).unwrap_err(),
        ChainSetupError::UnparsableCertificate { index: 1 }
    );
    let bad_crl = CertificateRevocationListDer::from(vec![0x30, 0x00]);
    assert_eq!(
        TrustStore::from_root_certs(std::slice::from_ref(&root.der), &[crl(&root, &[]), bad_crl])
            .unwrap_err(),
        ChainSetupError::UnparsableCrl { index: 1 }
    );
}

#[test]
fn unsupported_signature_algorithm_is_reported() {
    // Re-sign the leaf's TBS claiming ecdsa-with-SHA1, which the provider does not offer.
    let (root, _inter, _l) = three();
    let l = issue(leaf("db.example.com"), &root);
    let parts = split_signed(&l.der).expect("split");
    let (tbs, _) = read_tlv(parts.tbs).expect("tbs");
    let sha1 = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
    let mut fields = Vec::new();
    let mut rest = tbs.value;
    while let Some((field, next)) = read_tlv(rest) {
        if field.tag == 0x30
            && field
                .value
                .starts_with(&[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce])
        {
            fields.extend(der(0x30, &sha1));
        } else {
            fields.extend_from_slice(field.raw);
        }
        rest = next;
    }
    let resigned = resign(&der(0x30, &fields), &sha1, &root.key);
    let store = TrustStore::from_root_certs(std::slice::from_ref(&root.der), &[]).expect("store");
    let now = UnixTime::since_unix_epoch(Duration::from_secs(NOW as u64));
    assert_eq!(
        store.verify_chain(&resigned, &[], now, &algs()),
        Err(ChainError::UnsupportedSignatureAlgorithm)
    );
}

// --- key strength (security level 2) --------------------------------------------------

/// A committed certificate of `tests/fixtures/weak_keys` (made by the openssl tool: rcgen
/// cannot make RSA-1024 or P-192 keys).
fn weak_key_fixture(name: &str) -> CertificateDer<'static> {
    let path = format!(
        "{}/tests/fixtures/weak_keys/{name}.pem",
        env!("CARGO_MANIFEST_DIR")
    );
    CertificateDer::from_pem_file(path).expect("fixture")
}

/// When the weak-key fixtures are valid (2096).
const WEAK_KEY_FIXTURES_VALID: i64 = 4_000_000_000;

/// A case over the weak-key fixtures, at a time when they are valid.
fn weak_key_case(roots: &[&str], presented: &[&str], leaf: &str) -> Case {
    Case {
        roots: roots.iter().map(|n| weak_key_fixture(n)).collect(),
        presented: presented.iter().map(|n| weak_key_fixture(n)).collect(),
        leaf: Some(weak_key_fixture(leaf)),
        at: Some(WEAK_KEY_FIXTURES_VALID),
        ..Case::default()
    }
}

#[test]
fn weak_leaf_keys_fail_at_depth_zero() {
    for leaf in ["leaf-rsa1024", "leaf-rsa1962", "leaf-p192"] {
        weak_key_case(&["root"], &[], leaf).expect(Err((ChainError::EeKeyTooSmall, 0)));
    }
}

#[test]
fn the_leaf_key_is_checked_before_the_chain_is_built() {
    // No issuer anywhere, and not yet valid: the key is still what OpenSSL reports.
    weak_key_case(&["weak-root"], &[], "leaf-rsa1024").expect(Err((ChainError::EeKeyTooSmall, 0)));
    let mut case = weak_key_case(&["root"], &[], "leaf-p192");
    case.at = Some(NOW);
    case.expect(Err((ChainError::EeKeyTooSmall, 0)));
}

#[test]
fn weak_intermediate_and_anchor_keys_fail_at_their_depth() {
    weak_key_case(&["root"], &["int-rsa1024"], "leaf-under-weak-int")
        .expect(Err((ChainError::CaKeyTooSmall, 1)));
    weak_key_case(&["int-rsa1024", "root"], &[], "leaf-under-weak-int")
        .expect(Err((ChainError::CaKeyTooSmall, 1)));
    weak_key_case(&["weak-root"], &[], "leaf-under-weak-root")
        .expect(Err((ChainError::CaKeyTooSmall, 1)));
}

#[test]
fn keys_of_112_bits_and_more_pass() {
    for leaf in ["leaf-rsa1963", "leaf-rsa2048", "leaf-p224", "leaf-p256"] {
        weak_key_case(&["root"], &[], leaf).expect(Ok(()));
    }
}

#[test]
fn a_weak_bare_anchor_fails_too() {
    let anchor = anchor_of(&weak_key_fixture("weak-root"), None);
    let store = TrustStore::from_trust_anchors(&[anchor]);
    let now = UnixTime::since_unix_epoch(Duration::from_secs(WEAK_KEY_FIXTURES_VALID as u64));
    let failure = store
        .verify_chain_detailed(&weak_key_fixture("leaf-under-weak-root"), &[], now, &algs())
        .expect_err("weak anchor");
    assert_eq!(failure, ChainFailure::at(ChainError::CaKeyTooSmall, 1));
}

#[test]
fn error_strings_are_openssl_3() {
    assert_eq!(
        ChainError::EeKeyTooSmall.to_string(),
        "EE certificate key too weak"
    );
    assert_eq!(
        ChainError::CaKeyTooSmall.to_string(),
        "CA certificate key too weak"
    );
    assert_eq!(
        ChainError::UnableToGetIssuerCertLocally.to_string(),
        "unable to get local issuer certificate"
    );
    assert_eq!(
        ChainError::DepthZeroSelfSignedCert.to_string(),
        "self-signed certificate"
    );
    assert_eq!(
        ChainError::SelfSignedCertInChain.to_string(),
        "self-signed certificate in certificate chain"
    );
    assert_eq!(
        ChainError::CertNotYetValid.to_string(),
        "certificate is not yet valid"
    );
    assert_eq!(
        ChainError::InvalidPurpose.to_string(),
        "unsuitable certificate purpose"
    );
    assert_eq!(
        ChainError::UnableToGetCrl.to_string(),
        "unable to get certificate CRL"
    );
    let failure = ChainFailure::at(ChainError::CertRevoked, 1);
    assert_eq!(failure.to_string(), "certificate revoked (depth 1)");
}

#[test]
fn canonical_text_rules() {
    assert_eq!(canonicalize_text(b"  Foo \t Bar  "), b"foo bar");
    assert_eq!(canonicalize_text(b""), b"");
    assert_eq!(canonicalize_text(b"   "), b"");
    assert_eq!(canonicalize_text("ÄB".as_bytes()), "Äb".as_bytes());
    assert_eq!(
        string_to_utf8(30, &[0x00, 0x41, 0x00, 0xe9]),
        Some("Aé".as_bytes().to_vec())
    );
    assert_eq!(string_to_utf8(30, &[0x00]), None);
    assert_eq!(string_to_utf8(28, &[0, 0, 0, 0x41]), Some(b"A".to_vec()));
    assert_eq!(string_to_utf8(19, &[0xe9]), Some("é".as_bytes().to_vec()));
    assert_eq!(normalize_integer(&[0x00, 0x01]), vec![0x01]);
    assert_eq!(normalize_integer(&[0x00, 0x80]), vec![0x00, 0x80]);
    assert_eq!(normalize_integer(&[0xff, 0xff, 0x80]), vec![0x80]);
    assert_eq!(normalize_integer(&[0xff, 0x7f]), vec![0xff, 0x7f]);
}

#[test]
fn explicit_ec_parameters_are_detected() {
    let ec_public_key = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    let named = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let explicit = der(0x30, &[0x02, 0x01, 0x01]);
    let spki = |params: &[u8]| {
        let alg = der(0x30, &[&ec_public_key[..], params].concat());
        der(0x30, &[alg, der(0x03, &[0x00, 0x04, 0x01, 0x02])].concat())
    };
    for (params, expected) in [(&named[..], false), (&explicit[..], true)] {
        let bytes = spki(params);
        let parsed = SubjectPublicKeyInfoOwned::from_der(&bytes).expect("spki");
        assert_eq!(has_explicit_ec_params(&parsed), expected);
    }
}

#[test]
fn name_constraint_matchers() {
    assert!(nc_dns(b"a.example.com", b"example.com"));
    assert!(nc_dns(b"example.com", b"EXAMPLE.com"));
    assert!(!nc_dns(b"badexample.com", b"example.com"));
    assert!(nc_dns(b"a.example.com", b".example.com"));
    assert!(!nc_dns(b"example.com", b".example.com"));
    assert!(nc_dns(b"anything", b""));
    assert_eq!(nc_email(b"joe@example.com", b"example.com"), Ok(()));
    assert_eq!(nc_email(b"joe@a.example.com", b".example.com"), Ok(()));
    assert_eq!(
        nc_email(b"joe@example.com", b"Joe@example.com"),
        Err(ChainError::PermittedViolation)
    );
    assert_eq!(
        nc_email(b"nobody", b"example.com"),
        Err(ChainError::UnsupportedNameSyntax)
    );
    assert_eq!(
        nc_uri(b"https://db.example.com:5432/x", b".example.com"),
        Ok(())
    );
    assert_eq!(nc_uri(b"https://example.com/", b"example.com"), Ok(()));
    assert_eq!(
        nc_uri(b"mailto:x", b"example.com"),
        Err(ChainError::UnsupportedNameSyntax)
    );
    assert_eq!(nc_ip(&[10, 0, 0, 1], &[10, 0, 0, 0, 255, 0, 0, 0]), Ok(()));
    assert_eq!(
        nc_ip(&[11, 0, 0, 1], &[10, 0, 0, 0, 255, 0, 0, 0]),
        Err(ChainError::PermittedViolation)
    );
    assert_eq!(
        nc_ip(&[10, 0, 0], &[10, 0, 0, 0, 255, 0, 0, 0]),
        Err(ChainError::UnsupportedNameSyntax)
    );
    assert_eq!(
        cn_to_dns_id(12, b"db.example.com"),
        Ok(Some(b"db.example.com".to_vec()))
    );
    assert_eq!(cn_to_dns_id(12, b"localhost"), Ok(None));
    assert_eq!(cn_to_dns_id(12, b"a..b"), Ok(None));
    assert_eq!(cn_to_dns_id(12, b"a\0.b"), Err(()));
    assert_eq!(cn_to_dns_id(12, b"a.b\0"), Ok(Some(b"a.b".to_vec())));
}

mod findings;
