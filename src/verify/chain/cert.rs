//! The certificate model: everything the checks need from one certificate (keys, signature
//! algorithm, names, validity, the extensions OpenSSL caches), parsed once, and OpenSSL's
//! `x509_likely_issued` / `X509_check_akid` on it.

use x509_parser::extensions::{ParsedExtension, X509Extension};
use x509_parser::x509::{SubjectPublicKeyInfo, X509Name};

use crate::verify::signature::split_signed;

use super::general_name::{
    first_directory_name, general_names, DistPoint, DistPointName, GeneralNameOwned,
    NameConstraints, ALL_REASONS,
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
    pub(super) fn from_spki(spki: &SubjectPublicKeyInfo<'_>) -> Self {
        let o = spki.algorithm.algorithm.as_bytes();
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
pub(super) fn has_explicit_ec_params(spki: &SubjectPublicKeyInfo<'_>) -> bool {
    KeyKind::from_spki(spki) == KeyKind::Ec
        && spki
            .algorithm
            .parameters
            .as_ref()
            .is_some_and(|p| p.tag().0 == 16)
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
    /// Converts x509-parser's form; `None` when the issuer name cannot be canonicalised.
    pub(crate) fn from_x509(
        akid: &x509_parser::extensions::AuthorityKeyIdentifier<'_>,
    ) -> Option<Self> {
        let issuer_names = match &akid.authority_cert_issuer {
            Some(names) => general_names(names)?,
            None => Vec::new(),
        };
        Some(Self {
            key_id: akid.key_identifier.as_ref().map(|k| k.0.to_vec()),
            issuer: first_directory_name(&issuer_names).cloned(),
            serial: akid.authority_cert_serial.map(normalize_integer),
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
    pub(super) fn parse(extensions: &[X509Extension<'_>], issuer: &Name) -> Self {
        let mut out = Self::default();
        let mut seen: Vec<&[u8]> = Vec::new();
        for ext in extensions {
            let id = ext.oid.as_bytes();
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
            }
            let malformed = out.absorb(ext.parsed_extension(), issuer).is_none();
            if malformed && oid::CACHED.contains(&id) {
                out.invalid = true;
            }
        }
        out
    }

    /// Records one parsed extension; `None` when it is malformed.
    pub(super) fn absorb(&mut self, parsed: &ParsedExtension<'_>, issuer: &Name) -> Option<()> {
        match parsed {
            ParsedExtension::BasicConstraints(bc) => {
                self.basic_constraints = Some((bc.ca, bc.path_len_constraint));
            }
            ParsedExtension::KeyUsage(ku) => self.key_usage = Some(ku.flags),
            ParsedExtension::ExtendedKeyUsage(eku) => {
                let sgc = eku
                    .other
                    .iter()
                    .any(|o| o.as_bytes() == oid::MS_SGC || o.as_bytes() == oid::NS_SGC);
                self.server_eku = Some(eku.server_auth || sgc);
                self.client_eku = Some(eku.client_auth);
            }
            ParsedExtension::NSCertType(ns) => {
                self.ns_cert_type = Some(NsCertType {
                    ssl_server: ns.ssl_server(),
                    ssl_client: ns.ssl_client(),
                    any_ca: ns.ssl_ca() || ns.smime_ca() || ns.object_signing_ca(),
                    ssl_ca: ns.ssl_ca(),
                });
            }
            ParsedExtension::SubjectKeyIdentifier(k) => self.skid = Some(k.0.to_vec()),
            ParsedExtension::AuthorityKeyIdentifier(a) => self.akid = Some(Akid::from_x509(a)?),
            ParsedExtension::SubjectAlternativeName(san) => {
                self.san = general_names(&san.general_names)?;
            }
            ParsedExtension::NameConstraints(nc) => {
                self.name_constraints = Some(NameConstraints::from_x509(nc)?);
            }
            ParsedExtension::CRLDistributionPoints(dps) => {
                self.crl_dps = dps
                    .points
                    .iter()
                    .map(|dp| dist_point(dp, issuer))
                    .collect::<Option<_>>()?;
            }
            ParsedExtension::ParseError { .. } => return None,
            _ => {}
        }
        Some(())
    }
}

/// Converts one distribution point like OpenSSL's `setup_dp`: it needs a name or a CRL issuer,
/// its reasons default to all, and a relative name is made absolute against the first
/// directoryName of `cRLIssuer`, else the certificate's issuer.
pub(super) fn dist_point(
    dp: &x509_parser::extensions::CRLDistributionPoint<'_>,
    issuer: &Name,
) -> Option<DistPoint> {
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
            .map_or(ALL_REASONS, |r| r.flags & ALL_REASONS),
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
    pub(super) fn from_x509(name: &X509Name<'_>) -> Self {
        let mut out = Self::default();
        for attribute in name.iter_attributes() {
            let id = attribute.attr_type().as_bytes();
            let value = attribute.attr_value();
            if id == oid::EMAIL_ADDRESS {
                let ia5 = value.tag().0 == 22;
                out.emails.push(ia5.then(|| value.data.to_vec()));
            } else if id == oid::COMMON_NAME {
                match cn_to_dns_id(value.tag().0, value.data) {
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
        let (rest, x509) = x509_parser::parse_x509_certificate(der).ok()?;
        if !rest.is_empty() {
            return None;
        }
        let tbs = &x509.tbs_certificate;
        let subject = Name::from_x509(tbs.subject())?;
        let issuer = Name::from_x509(tbs.issuer())?;
        let ext = Extensions::parse(tbs.extensions(), &issuer);
        let mut cert = Self {
            der: der.to_vec(),
            tbs: parts.tbs.to_vec(),
            signature_alg: parts.signature_alg.to_vec(),
            signature: parts.signature.to_vec(),
            signature_algs_match: parts.signature_algs_match(),
            spki: tbs.public_key().raw.to_vec(),
            key_kind: KeyKind::from_spki(tbs.public_key()),
            ec_explicit_params: has_explicit_ec_params(tbs.public_key()),
            signed_with: SigKind::from_oid(tbs.signature.algorithm.as_bytes()),
            self_issued: subject == issuer,
            subject,
            issuer,
            serial: normalize_integer(tbs.raw_serial()),
            not_before: tbs.validity().not_before.timestamp(),
            not_after: tbs.validity().not_after.timestamp(),
            is_v1: tbs.version().0 == 0,
            ext,
            subject_names: SubjectNames::from_x509(tbs.subject()),
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
