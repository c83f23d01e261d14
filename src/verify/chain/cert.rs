//! The certificate model: everything the checks need from one certificate (keys, signature
//! algorithm, names, validity, the extensions OpenSSL caches), parsed once, and OpenSSL's
//! `x509_likely_issued` / `X509_check_akid` on it.

use x509_cert::der::asn1::BitString;
use x509_cert::der::{Decode, Encode, Tag, Tagged};
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, CrlDistributionPoints, ExtendedKeyUsage,
    NameConstraints as X509NameConstraints, SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::name::Name as X509Name;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::Version;

use crate::verify::x509::Certificate;

use crate::verify::signature::split_signed;

use super::general_name::{
    first_directory_name, general_names, general_names_from_der, DistPoint, DistPointName,
    GeneralNameOwned, NameConstraints, ALL_REASONS,
};
use super::name::{normalize_integer, string_to_utf8, Name};
use super::oid;

/// Public-key type of a SubjectPublicKeyInfo (`EVP_PKEY_base_id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// rsaEncryption.
    Rsa,
    /// id-RSASSA-PSS keys.
    RsaPss,
    /// id-ecPublicKey.
    Ec,
    /// id-Ed25519.
    Ed25519,
    /// id-Ed448.
    Ed448,
    /// id-dsa.
    Dsa,
    /// Anything else.
    Other,
}

impl KeyKind {
    /// Classifies a SubjectPublicKeyInfo by its algorithm OID.
    pub(super) fn from_spki(spki: &SubjectPublicKeyInfoOwned) -> Self {
        let o = spki.algorithm.oid.as_bytes();
        match o {
            _ if o == [oid::PKCS1_ARC, &[0x01]].concat() => Self::Rsa,
            _ if o == [oid::PKCS1_ARC, &[0x0a]].concat() => Self::RsaPss,
            _ if o == [oid::X962_ARC, &[0x02, 0x01]].concat() => Self::Ec,
            _ if o == oid::ED25519 => Self::Ed25519,
            _ if o == oid::ED448 => Self::Ed448,
            _ if o == [oid::DSA_ARC, &[0x01]].concat() => Self::Dsa,
            _ => Self::Other,
        }
    }
}

/// Whether an EC SubjectPublicKeyInfo spells its curve out (a SEQUENCE) instead of naming it.
pub(super) fn has_explicit_ec_params(spki: &SubjectPublicKeyInfoOwned) -> bool {
    KeyKind::from_spki(spki) == KeyKind::Ec
        && spki
            .algorithm
            .parameters
            .as_ref()
            .is_some_and(|p| p.tag() == Tag::Sequence)
}

/// The key type a signature algorithm needs (`OBJ_find_sigid_algs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SigKind {
    /// RSA PKCS#1 v1.5 with any digest.
    RsaPkcs1,
    /// RSASSA-PSS (rsaEncryption or RSASSA-PSS keys).
    RsaPss,
    /// ECDSA with any digest.
    Ecdsa,
    /// Ed25519.
    Ed25519,
    /// Ed448.
    Ed448,
    /// DSA with any digest.
    Dsa,
}

impl SigKind {
    /// Classifies a signature algorithm OID; `None` when OpenSSL would not know it either.
    pub(super) fn from_oid(o: &[u8]) -> Option<Self> {
        if let Some(last) = o.strip_prefix(oid::PKCS1_ARC) {
            return match last {
                [0x02..=0x05] | [0x0b..=0x10] => Some(Self::RsaPkcs1),
                [0x0a] => Some(Self::RsaPss),
                _ => None,
            };
        }
        if let Some(rest) = o.strip_prefix(oid::X962_ARC) {
            return match rest {
                [0x04, 0x01] | [0x04, 0x03, 0x01..=0x04] => Some(Self::Ecdsa),
                _ => None,
            };
        }
        if let Some(last) = o.strip_prefix(oid::NIST_SIG_ARC) {
            return match last {
                [0x01 | 0x02] => Some(Self::Dsa),
                [0x09..=0x0c] => Some(Self::Ecdsa),
                [0x0d..=0x10] => Some(Self::RsaPkcs1),
                _ => None,
            };
        }
        if let Some(last) = o.strip_prefix(oid::DSA_ARC) {
            return (last == [0x03]).then_some(Self::Dsa);
        }
        match o {
            _ if o == oid::ED25519 => Some(Self::Ed25519),
            _ if o == oid::ED448 => Some(Self::Ed448),
            _ => None,
        }
    }

    /// Whether a key of `kind` can have made this signature (`check_sig_alg_match`).
    pub(super) fn matches_key(self, kind: KeyKind) -> bool {
        matches!(
            (self, kind),
            (Self::RsaPkcs1, KeyKind::Rsa)
                | (Self::RsaPss, KeyKind::Rsa | KeyKind::RsaPss)
                | (Self::Ecdsa, KeyKind::Ec)
                | (Self::Ed25519, KeyKind::Ed25519)
                | (Self::Ed448, KeyKind::Ed448)
                | (Self::Dsa, KeyKind::Dsa)
        )
    }
}

/// An Authority Key Identifier.
#[derive(Clone, Debug, Default)]
pub(crate) struct Akid {
    /// keyIdentifier.
    pub(crate) key_id: Option<Vec<u8>>,
    /// The first directoryName of authorityCertIssuer.
    pub(crate) issuer: Option<Name>,
    /// authorityCertSerialNumber (normalised).
    pub(crate) serial: Option<Vec<u8>>,
}

impl Akid {
    /// Decodes an authorityKeyIdentifier extension's value; `None` when it is malformed or
    /// the issuer name cannot be canonicalised.
    pub(crate) fn from_der(der: &[u8]) -> Option<Self> {
        let akid = AuthorityKeyIdentifier::from_der(der).ok()?;
        let issuer_names = match &akid.authority_cert_issuer {
            Some(names) => general_names(names)?,
            None => Vec::new(),
        };
        Some(Self {
            key_id: akid.key_identifier.as_ref().map(|k| k.as_bytes().to_vec()),
            issuer: first_directory_name(&issuer_names).cloned(),
            serial: akid
                .authority_cert_serial_number
                .as_ref()
                .map(|s| normalize_integer(s.as_bytes())),
        })
    }
}

/// Netscape certificate type bits OpenSSL looks at.
#[derive(Clone, Copy, Debug)]
pub(super) struct NsCertType {
    /// SSL server.
    pub(super) ssl_server: bool,
    /// SSL client.
    pub(super) ssl_client: bool,
    /// Any CA bit (SSL CA, S/MIME CA, object-signing CA).
    pub(super) any_ca: bool,
    /// SSL CA.
    pub(super) ssl_ca: bool,
}

/// What the verifier uses from a certificate's extensions (OpenSSL's cached `ex_*` fields).
#[derive(Clone, Debug, Default)]
pub(crate) struct Extensions {
    /// A cached extension was malformed or repeated (`EXFLAG_INVALID`).
    pub(super) invalid: bool,
    /// A critical extension OpenSSL does not support (`EXFLAG_CRITICAL`).
    pub(super) unhandled_critical: bool,
    /// An RFC 3820 proxyCertInfo extension (`EXFLAG_PROXY`).
    pub(super) proxy: bool,
    /// basicConstraints: (cA, pathLenConstraint).
    pub(super) basic_constraints: Option<(bool, Option<u32>)>,
    /// keyUsage bits (bit n = KeyUsage bit n).
    pub(crate) key_usage: Option<u16>,
    /// Whether an extendedKeyUsage is present, and if so whether it allows TLS servers.
    pub(super) server_eku: Option<bool>,
    /// Whether an extendedKeyUsage is present, and if so whether it allows TLS clients
    /// (clientAuth; anyExtendedKeyUsage does not count).
    pub(super) client_eku: Option<bool>,
    /// Netscape certificate type.
    pub(super) ns_cert_type: Option<NsCertType>,
    /// subjectKeyIdentifier.
    pub(crate) skid: Option<Vec<u8>>,
    /// authorityKeyIdentifier.
    pub(crate) akid: Option<Akid>,
    /// subjectAltName entries.
    pub(super) san: Vec<GeneralNameOwned>,
    /// nameConstraints.
    pub(super) name_constraints: Option<NameConstraints>,
    /// cRLDistributionPoints.
    pub(crate) crl_dps: Vec<DistPoint>,
}

/// keyUsage bit for cRLSign.
pub(crate) const KU_CRL_SIGN: u16 = 1 << 6;

impl Extensions {
    /// Extracts the extensions; `issuer` resolves relative CRL distribution point names.
    pub(super) fn parse(extensions: &[Extension], issuer: &Name) -> Self {
        let mut out = Self::default();
        let mut seen: Vec<&[u8]> = Vec::new();
        for ext in extensions {
            let id = ext.extn_id.as_bytes();
            if ext.critical && !oid::SUPPORTED_CRITICAL.contains(&id) {
                out.unhandled_critical = true;
            }
            if id == oid::PROXY_CERT_INFO {
                out.proxy = true;
            }
            if oid::CACHED.contains(&id) {
                if seen.contains(&id) {
                    out.invalid = true;
                }
                seen.push(id);
                if out.absorb(id, ext.extn_value.as_bytes(), issuer).is_none() {
                    out.invalid = true;
                }
            }
        }
        out
    }

    /// Decodes and records one cached extension (`id`, DER `value`); `None` when it is
    /// malformed.
    pub(super) fn absorb(&mut self, id: &[u8], value: &[u8], issuer: &Name) -> Option<()> {
        match id {
            oid::BASIC_CONSTRAINTS => {
                let bc = BasicConstraints::from_der(value).ok()?;
                self.basic_constraints = Some((bc.ca, bc.path_len_constraint.map(u32::from)));
            }
            oid::KEY_USAGE => self.key_usage = Some(bit_flags(value)?),
            oid::EXT_KEY_USAGE => {
                let eku = ExtendedKeyUsage::from_der(value).ok()?;
                let has = |wanted: &[u8]| eku.0.iter().any(|o| o.as_bytes() == wanted);
                self.server_eku =
                    Some(has(oid::SERVER_AUTH) || has(oid::MS_SGC) || has(oid::NS_SGC));
                self.client_eku = Some(has(oid::CLIENT_AUTH));
            }
            oid::NETSCAPE_CERT_TYPE => {
                let bits = bit_flags(value)?;
                let bit = |n: u16| bits & (1 << n) != 0;
                self.ns_cert_type = Some(NsCertType {
                    ssl_server: bit(1),
                    ssl_client: bit(0),
                    any_ca: bit(5) || bit(6) || bit(7),
                    ssl_ca: bit(5),
                });
            }
            oid::SUBJECT_KEY_ID => {
                let skid = SubjectKeyIdentifier::from_der(value).ok()?;
                self.skid = Some(skid.0.as_bytes().to_vec());
            }
            oid::AUTHORITY_KEY_ID => self.akid = Some(Akid::from_der(value)?),
            oid::SUBJECT_ALT_NAME => self.san = general_names_from_der(value)?,
            oid::NAME_CONSTRAINTS => {
                let nc = X509NameConstraints::from_der(value).ok()?;
                self.name_constraints = Some(NameConstraints::from_x509(&nc)?);
            }
            oid::CRL_DISTRIBUTION_POINTS => {
                self.crl_dps = CrlDistributionPoints::from_der(value)
                    .ok()?
                    .0
                    .iter()
                    .map(|dp| dist_point(dp, issuer))
                    .collect::<Option<_>>()?;
            }
            _ => {}
        }
        Some(())
    }
}

/// A BIT STRING's first 16 named bits as flags, bit n of the string at `1 << n` (keyUsage,
/// Netscape certificate type, CRL reasons).
pub(crate) fn bit_flags(der: &[u8]) -> Option<u16> {
    let bits = BitString::from_der(der).ok()?;
    Some(
        bits.bits()
            .take(16)
            .enumerate()
            .filter(|(_, set)| *set)
            .fold(0, |flags, (n, _)| flags | (1 << n)),
    )
}

/// Converts one distribution point like OpenSSL's `setup_dp`: it needs a name or a CRL issuer,
/// its reasons default to all, and a relative name is made absolute against the first
/// directoryName of `cRLIssuer`, else the certificate's issuer.
pub(super) fn dist_point(dp: &DistributionPoint, issuer: &Name) -> Option<DistPoint> {
    let crl_issuer = match &dp.crl_issuer {
        Some(names) => Some(general_names(names)?),
        None => None,
    };
    if dp.distribution_point.is_none() && crl_issuer.as_ref().is_none_or(Vec::is_empty) {
        return None;
    }
    let base = crl_issuer
        .as_deref()
        .and_then(first_directory_name)
        .unwrap_or(issuer);
    let name = match &dp.distribution_point {
        Some(n) => Some(DistPointName::from_x509(n, base)?),
        None => None,
    };
    Some(DistPoint {
        name,
        crl_issuer,
        reasons: dp
            .reasons
            .as_ref()
            .map_or(ALL_REASONS, |r| r.bits() & ALL_REASONS),
    })
}

/// Subject attributes that name constraints look at.
#[derive(Clone, Debug, Default)]
pub(super) struct SubjectNames {
    /// emailAddress values; `None` for one that is not an IA5String (invalid syntax).
    pub(super) emails: Vec<Option<Vec<u8>>>,
    /// commonName values that look like DNS names (`cn2dnsid`).
    pub(super) dns_like_cns: Vec<Vec<u8>>,
    /// A commonName could not be converted or has an embedded NUL.
    pub(super) cn_syntax_error: bool,
}

impl SubjectNames {
    /// Extracts the emailAddress and commonName attributes of a subject.
    pub(super) fn from_x509(name: &X509Name) -> Self {
        let mut out = Self::default();
        for attribute in name.0.iter().flat_map(|rdn| rdn.0.iter()) {
            let id = attribute.oid.as_bytes();
            let value = &attribute.value;
            if id == oid::EMAIL_ADDRESS {
                let ia5 = value.tag() == Tag::Ia5String;
                out.emails.push(ia5.then(|| value.value().to_vec()));
            } else if id == oid::COMMON_NAME {
                let tag = u32::from(value.tag().number().value());
                match cn_to_dns_id(tag, value.value()) {
                    Ok(Some(id)) => out.dns_like_cns.push(id),
                    Ok(None) => {}
                    Err(()) => out.cn_syntax_error = true,
                }
            }
        }
        out
    }
}

/// OpenSSL's `cn2dnsid`: the CN as UTF-8 without trailing NULs if it looks like a host name with
/// at least two labels; `Ok(None)` otherwise; `Err` for embedded NULs or unconvertible strings.
pub(super) fn cn_to_dns_id(tag: u32, data: &[u8]) -> Result<Option<Vec<u8>>, ()> {
    let mut utf8 = string_to_utf8(tag, data).ok_or(())?;
    while utf8.last() == Some(&0) {
        utf8.pop();
    }
    if utf8.contains(&0) {
        return Err(());
    }
    let len = utf8.len();
    let mut is_dns = false;
    for (i, &c) in utf8.iter().enumerate() {
        if c.is_ascii_alphanumeric() || c == b'_' {
            continue;
        }
        if i > 0 && i + 1 < len {
            if c == b'-' {
                continue;
            }
            let next = utf8[i + 1];
            let prev = utf8[i - 1];
            if c == b'.' && next != b'.' && prev != b'-' && next != b'-' {
                is_dns = true;
                continue;
            }
        }
        is_dns = false;
        break;
    }
    Ok(is_dns.then_some(utf8))
}

/// Everything the verifier needs from one certificate, extracted once into owned data.
#[derive(Clone, Debug)]
pub(crate) struct Cert {
    /// The complete DER (exact-match identity, like `X509_cmp`).
    pub(super) der: Vec<u8>,
    /// The signed TBSCertificate bytes.
    pub(super) tbs: Vec<u8>,
    /// Outer signatureAlgorithm contents (what the signature is verified with).
    pub(super) signature_alg: Vec<u8>,
    /// The signature bits.
    pub(super) signature: Vec<u8>,
    /// The TBS `signature` AlgorithmIdentifier equals the outer one (else OpenSSL's
    /// `X509_verify` fails: "certificate signature failure").
    pub(super) signature_algs_match: bool,
    /// The complete DER SubjectPublicKeyInfo.
    pub(crate) spki: Vec<u8>,
    /// Type of the subject public key.
    pub(super) key_kind: KeyKind,
    /// An EC key with explicit curve parameters instead of a named curve.
    pub(super) ec_explicit_params: bool,
    /// Key type needed by the TBS `signature` algorithm (`None`: unknown algorithm).
    pub(super) signed_with: Option<SigKind>,
    /// Canonical subject.
    pub(crate) subject: Name,
    /// Canonical issuer.
    pub(crate) issuer: Name,
    /// Serial number (normalised INTEGER contents).
    pub(crate) serial: Vec<u8>,
    /// notBefore, seconds since the Unix epoch.
    pub(super) not_before: i64,
    /// notAfter, seconds since the Unix epoch.
    pub(super) not_after: i64,
    /// X.509 v1 (`EXFLAG_V1`).
    pub(super) is_v1: bool,
    /// Extensions.
    pub(crate) ext: Extensions,
    /// Subject attributes for name constraints.
    pub(super) subject_names: SubjectNames,
    /// Subject equals issuer (`EXFLAG_SI`).
    pub(super) self_issued: bool,
    /// Self-issued, AKID consistent with itself and key type matching its signature algorithm
    /// (`EXFLAG_SS`; the signature itself is not checked, as in OpenSSL).
    pub(crate) self_signed: bool,
}

impl Cert {
    /// Parses and pre-extracts one DER certificate; `None` if it is not valid X.509.
    pub(crate) fn parse(der: &[u8]) -> Option<Self> {
        let parts = split_signed(der)?;
        let x509 = Certificate::from_der(der).ok()?;
        let tbs = &x509.tbs_certificate;
        let subject = Name::from_x509(&tbs.subject)?;
        let issuer = Name::from_x509(&tbs.issuer)?;
        let ext = Extensions::parse(tbs.extensions.as_deref().unwrap_or_default(), &issuer);
        let spki = &tbs.subject_public_key_info;
        let (not_before, not_after) = tbs.validity.to_unix()?;
        let mut cert = Self {
            der: der.to_vec(),
            tbs: parts.tbs.to_vec(),
            signature_alg: parts.signature_alg.to_vec(),
            signature: parts.signature.to_vec(),
            signature_algs_match: parts.signature_algs_match(),
            spki: spki.to_der().ok()?,
            key_kind: KeyKind::from_spki(spki),
            ec_explicit_params: has_explicit_ec_params(spki),
            signed_with: SigKind::from_oid(tbs.signature.oid.as_bytes()),
            self_issued: subject == issuer,
            subject,
            issuer,
            serial: normalize_integer(tbs.serial_number.as_bytes()),
            not_before,
            not_after,
            is_v1: tbs.version == Version::V1,
            ext,
            subject_names: SubjectNames::from_x509(&tbs.subject),
            self_signed: false,
        };
        cert.self_signed = cert.self_issued && likely_issued(&cert, &cert);
        Some(cert)
    }

    /// basicConstraints cA is TRUE (`EXFLAG_CA`).
    pub(crate) fn is_ca_flagged(&self) -> bool {
        matches!(self.ext.basic_constraints, Some((true, _)))
    }

    /// Valid at `now` like OpenSSL 3.0's `X509_cmp_time`: notBefore ≤ now < notAfter (a
    /// certificate is already expired at its notAfter second).
    pub(super) fn time_valid(&self, now: i64) -> bool {
        self.not_before <= now && now < self.not_after
    }
}

/// OpenSSL's `X509_check_akid`: every AKID field present must match the issuer.
pub(crate) fn akid_matches(issuer: &Cert, akid: Option<&Akid>) -> bool {
    let Some(akid) = akid else {
        return true;
    };
    if let (Some(k), Some(s)) = (&akid.key_id, &issuer.ext.skid) {
        if k != s {
            return false;
        }
    }
    if akid.serial.as_ref().is_some_and(|s| *s != issuer.serial) {
        return false;
    }
    if akid.issuer.as_ref().is_some_and(|n| *n != issuer.issuer) {
        return false;
    }
    true
}

/// OpenSSL's `x509_likely_issued`: names chain, AKID agrees, key type fits the signature
/// algorithm, and neither certificate is invalid. The signature is not checked.
pub(super) fn likely_issued(issuer: &Cert, subject: &Cert) -> bool {
    !issuer.ext.invalid
        && !subject.ext.invalid
        && issuer.subject == subject.issuer
        && akid_matches(issuer, subject.ext.akid.as_ref())
        && subject
            .signed_with
            .is_some_and(|s| s.matches_key(issuer.key_kind))
}
