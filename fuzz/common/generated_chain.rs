//! Structure-aware certificate chains for the verifier fuzz targets.
//!
//! The fuzz input is read as a list of small decisions (one byte each, 0 = the sane
//! default), so the all-zero input is a valid chain `root → leaf` for `db.example.com`
//! and every other input is a real, freshly signed chain with a few things changed:
//! names, AKID/SKID, basicConstraints, keyUsage, EKU, SANs, name constraints, validity,
//! serial numbers, signature algorithm labels, key types, which key signs, X.509 v1,
//! unknown extensions, which certificates the server presents and in what order, which
//! ones the root file holds, and CRLs (none, empty, revoking, stale, badly signed).
//!
//! Keys come from a small pool made once per process; only signing happens per input.
//! Times are relative to a fixed [`NOW_UNIX`] so that a replayed input gives the same
//! verdict on any day.
//!
//! Shared by `fuzz_targets/verifier.rs`, `fuzz_targets/verifier_openssl.rs` and
//! `tests/fuzz_corpus.rs` (through `#[path]`); it needs `rcgen`, `time` and
//! `rustls-pki-types`.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CidrSubnet,
    CrlDistributionPoint, CrlIssuingDistributionPoint, CrlScope, CustomExtension,
    DistinguishedName, DnType, DnValue, ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer,
    KeyIdMethod, KeyPair, KeyUsagePurpose, NameConstraints, RevocationReason, RevokedCertParams,
    SanType, SerialNumber, SigningKey as _,
};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
use time::{Duration, OffsetDateTime};

/// The verification time of every generated chain (2026-05-28T20:26:40Z).
pub const NOW_UNIX: i64 = 1_780_000_000;

/// At most this many intermediates between the root and the leaf.
const MAX_INTERMEDIATES: usize = 2;

/// A chain made from fuzz input, ready to verify.
pub struct GeneratedChain {
    /// What `sslrootcert` holds (the root, and whatever else the input chose).
    pub root_file: Vec<CertificateDer<'static>>,
    /// What `sslcrl` holds; CRL checking is on exactly when this is non-empty.
    pub crls: Vec<CertificateRevocationListDer<'static>>,
    /// The server's certificate.
    pub end_entity: CertificateDer<'static>,
    /// The rest of what the server sends, in the order it sends it.
    pub intermediates: Vec<CertificateDer<'static>>,
    /// The host name verify-full checks.
    pub host: &'static str,
    /// The verification time, seconds since the Unix epoch.
    pub now_unix: i64,
    /// A human-readable account of the decisions, for crash reports.
    pub description: String,
}

/// A cursor over fuzz input; reading past the end gives zeros (the defaults).
struct Decisions<'a> {
    data: &'a [u8],
}

impl Decisions<'_> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }
}

/// The key pool: made once, indexed by the input.
fn key_pool() -> &'static [KeyPair] {
    static POOL: OnceLock<Vec<KeyPair>> = OnceLock::new();
    POOL.get_or_init(|| {
        let p256 = || KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256 key");
        vec![
            p256(),
            p256(),
            p256(),
            p256(),
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("P-384 key"),
            KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("Ed25519 key"),
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
                .expect("RSA key"),
            p256(),
        ]
    })
}

/// Names of the key pool entries, for descriptions.
const KEY_NAMES: [&str; 8] = [
    "p256#0", "p256#1", "p256#2", "p256#3", "p384", "ed25519", "rsa2048", "p256#7",
];

/// Host names verify-full checks.
const HOSTS: [&str; 8] = [
    "db.example.com",
    "DB.Example.COM",
    "x.example.com",
    "192.0.2.1",
    "::1",
    "other.example.org",
    "example.com",
    "db.example.com.",
];

/// Subject / issuer names the input can pick (index 0 is "the default for the position").
fn name_choice(choice: u8) -> Option<DistinguishedName> {
    let mut dn = DistinguishedName::new();
    match choice % 16 {
        0 => return None,
        1 => dn.push(DnType::CommonName, "db.example.com"),
        2 => dn.push(DnType::CommonName, "*.example.com"),
        3 => {}
        4 => {
            dn.push(DnType::OrganizationName, "pgtls tests");
            dn.push(DnType::CommonName, "pgtls fuzz root");
        }
        5 => {
            dn.push(DnType::OrganizationName, "pgtls tests");
            dn.push(DnType::CommonName, "pgtls fuzz intermediate 1");
        }
        6 => dn.push(DnType::CommonName, "192.0.2.1"),
        7 => dn.push(DnType::CommonName, "DB.EXAMPLE.COM"),
        8 => dn.push(DnType::CommonName, "db.example.com\0.evil.org"),
        9 => {
            dn.push(DnType::CommonName, "other.example.org");
            dn.push(DnType::OrganizationName, "db.example.com");
        }
        10 => dn.push(DnType::CommonName, "other.example.org"),
        11 => dn.push(DnType::CommonName, "dé.example.com"),
        12 => dn.push(
            DnType::CommonName,
            DnValue::PrintableString("db.example.com".try_into().expect("printable")),
        ),
        13 => dn.push(
            DnType::CommonName,
            DnValue::BmpString("db.example.com".try_into().expect("bmp")),
        ),
        14 => {
            // The root's name with the attributes the other way round.
            dn.push(DnType::CommonName, "pgtls fuzz root");
            dn.push(DnType::OrganizationName, "pgtls tests");
        }
        _ => {
            dn.push(DnType::OrganizationName, "PGTLS TESTS");
            dn.push(DnType::CommonName, "pgtls fuzz root");
        }
    }
    Some(dn)
}

fn ia5(s: &str) -> rcgen::string::Ia5String {
    rcgen::string::Ia5String::try_from(s).expect("ASCII")
}

/// subjectAltName entries the input can pick.
fn san_choice(choice: u8) -> SanType {
    match choice % 16 {
        0 => SanType::DnsName(ia5("db.example.com")),
        1 => SanType::DnsName(ia5("*.example.com")),
        2 => SanType::DnsName(ia5("DB.EXAMPLE.COM")),
        3 => SanType::DnsName(ia5("*.*.com")),
        4 => SanType::DnsName(ia5("d*.example.com")),
        5 => SanType::DnsName(ia5("other.example.org")),
        6 => SanType::DnsName(ia5("192.0.2.1")),
        7 => SanType::IpAddress(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
        8 => SanType::IpAddress(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        9 => SanType::Rfc822Name(ia5("db@example.com")),
        10 => SanType::URI(ia5("https://db.example.com/")),
        11 => SanType::DnsName(ia5("")),
        12 => SanType::DnsName(ia5("example.com")),
        13 => SanType::DnsName(ia5(".example.com")),
        14 => SanType::DnsName(ia5("db.example.com.")),
        _ => SanType::DnsName(ia5("*.example.org")),
    }
}

/// Name-constraint subtrees the input can pick: (permitted?, subtree).
fn subtree_choice(choice: u8) -> (bool, GeneralSubtree) {
    let permitted = choice & 0x80 == 0;
    let subtree = match choice % 10 {
        0 => GeneralSubtree::DnsName("example.com".into()),
        1 => GeneralSubtree::DnsName(".example.com".into()),
        2 => GeneralSubtree::DnsName("db.example.com".into()),
        3 => GeneralSubtree::DnsName("example.org".into()),
        4 => GeneralSubtree::IpAddress(CidrSubnet::V4([192, 0, 2, 0], [255, 255, 255, 0])),
        5 => GeneralSubtree::IpAddress(CidrSubnet::V4([192, 0, 2, 1], [255, 255, 255, 255])),
        6 => {
            let mut dn = DistinguishedName::new();
            dn.push(DnType::OrganizationName, "pgtls tests");
            GeneralSubtree::DirectoryName(dn)
        }
        7 => GeneralSubtree::Rfc822Name("example.com".into()),
        8 => GeneralSubtree::IpAddress(CidrSubnet::V6([0; 16], [0; 16])),
        _ => GeneralSubtree::DnsName("".into()),
    };
    (permitted, subtree)
}

/// DER AlgorithmIdentifiers a signature can be relabelled with.
const SIGNATURE_LABELS: [(&str, &[u8]); 8] = [
    (
        "ecdsa-with-SHA256",
        &[
            0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
        ],
    ),
    (
        "ecdsa-with-SHA384",
        &[
            0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
        ],
    ),
    (
        "sha256WithRSAEncryption",
        &[
            0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05,
            0x00,
        ],
    ),
    (
        "sha256WithRSAEncryption, no NULL",
        &[
            0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b,
        ],
    ),
    (
        "sha1WithRSAEncryption",
        &[
            0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05, 0x05,
            0x00,
        ],
    ),
    ("ed25519", &[0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70]),
    (
        "ecdsa-with-SHA1",
        &[
            0x30, 0x09, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01,
        ],
    ),
    (
        "ecdsa-with-SHA256, NULL params",
        &[
            0x30, 0x0c, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02, 0x05, 0x00,
        ],
    ),
];

/// What to do to one certificate (every field 0 = default).
#[derive(Debug, Default, Clone, Copy)]
struct CertChoices {
    key: u8,
    signer: u8,
    version: u8,
    subject: u8,
    issuer_name: u8,
    akid: u8,
    skid: u8,
    basic_constraints: u8,
    key_usage: u8,
    eku: u8,
    san_count: u8,
    sans: [u8; 3],
    name_constraints: u8,
    subtrees: [u8; 2],
    validity: u8,
    serial: u8,
    relabel: u8,
    extra_extension: u8,
}

impl CertChoices {
    fn read(d: &mut Decisions<'_>) -> Self {
        CertChoices {
            key: d.byte(),
            signer: d.byte(),
            version: d.byte(),
            subject: d.byte(),
            issuer_name: d.byte(),
            akid: d.byte(),
            skid: d.byte(),
            basic_constraints: d.byte(),
            key_usage: d.byte(),
            eku: d.byte(),
            san_count: d.byte(),
            sans: [d.byte(), d.byte(), d.byte()],
            name_constraints: d.byte(),
            subtrees: [d.byte(), d.byte()],
            validity: d.byte(),
            serial: d.byte(),
            relabel: d.byte(),
            extra_extension: d.byte(),
        }
    }
}

/// One generated certificate and what its children need to chain to it.
struct Made {
    params: CertificateParams,
    key: &'static KeyPair,
    skid: Vec<u8>,
    der: CertificateDer<'static>,
    serial: Vec<u8>,
}

fn pick_key(choice: u8, default: usize) -> &'static KeyPair {
    let pool = key_pool();
    match choice {
        0 => &pool[default],
        k => &pool[usize::from(k - 1) % pool.len()],
    }
}

fn key_name(key: &KeyPair) -> &'static str {
    key_pool()
        .iter()
        .position(|k| std::ptr::eq(k, key))
        .map_or("?", |i| KEY_NAMES[i])
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(NOW_UNIX).expect("a valid time")
}

/// (notBefore, notAfter) for a validity choice.
fn validity(choice: u8, is_ca: bool) -> (OffsetDateTime, OffsetDateTime) {
    let now = now();
    let default_end = if is_ca {
        Duration::days(3650)
    } else {
        Duration::days(365)
    };
    match choice % 9 {
        0 => (now - Duration::days(1), now + default_end),
        1 => (now - Duration::days(30), now - Duration::days(1)),
        2 => (now + Duration::days(1), now + Duration::days(30)),
        3 => (now + Duration::days(1), now - Duration::days(1)),
        4 => (
            now - Duration::days(1),
            rcgen::date_time_ymd(2100, 1, 1), // GeneralizedTime
        ),
        5 => (now, now + Duration::days(1)),
        6 => (now - Duration::days(1), now),
        7 => (rcgen::date_time_ymd(1950, 1, 1), now + Duration::days(1)),
        _ => (now - Duration::seconds(1), now + Duration::seconds(1)),
    }
}

fn default_name(position: usize, leaf: bool) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    if leaf {
        dn.push(DnType::CommonName, "db.example.com");
    } else if position == 0 {
        dn.push(DnType::OrganizationName, "pgtls tests");
        dn.push(DnType::CommonName, "pgtls fuzz root");
    } else {
        dn.push(DnType::OrganizationName, "pgtls tests");
        dn.push(
            DnType::CommonName,
            format!("pgtls fuzz intermediate {position}"),
        );
    }
    dn
}

const KEY_USAGES: [KeyUsagePurpose; 8] = [
    KeyUsagePurpose::DigitalSignature,
    KeyUsagePurpose::ContentCommitment,
    KeyUsagePurpose::KeyEncipherment,
    KeyUsagePurpose::DataEncipherment,
    KeyUsagePurpose::KeyAgreement,
    KeyUsagePurpose::KeyCertSign,
    KeyUsagePurpose::CrlSign,
    KeyUsagePurpose::EncipherOnly,
];

fn ekus(mask: u8) -> Vec<ExtendedKeyUsagePurpose> {
    let all = [
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
        ExtendedKeyUsagePurpose::CodeSigning,
        ExtendedKeyUsagePurpose::Any,
        ExtendedKeyUsagePurpose::EmailProtection,
        ExtendedKeyUsagePurpose::OcspSigning,
        // Netscape Server Gated Crypto (OpenSSL's ssl_server purpose accepts it).
        ExtendedKeyUsagePurpose::Other(vec![2, 16, 840, 1, 113_730, 4, 1]),
        ExtendedKeyUsagePurpose::TimeStamping,
    ];
    all.into_iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, e)| e)
        .collect()
}

/// Makes one certificate. `position` 0 is the root, the last one the leaf; `parent` is
/// the issuing CA (`None` for the root, which signs itself).
fn make_cert(
    c: &CertChoices,
    position: usize,
    leaf: bool,
    parent: Option<&Made>,
    description: &mut String,
) -> Option<Made> {
    let is_root = parent.is_none();
    let key = pick_key(c.key, if leaf { 3 } else { position });
    let mut params = CertificateParams::default();
    params.distinguished_name =
        name_choice(c.subject).unwrap_or_else(|| default_name(position, leaf));
    params.is_ca = match c.basic_constraints % 8 {
        0 if leaf => IsCa::NoCa,
        0 | 3 => IsCa::Ca(BasicConstraints::Unconstrained),
        1 => IsCa::NoCa,
        2 => IsCa::ExplicitNoCa,
        n => IsCa::Ca(BasicConstraints::Constrained(n - 4)),
    };
    params.key_usages = match c.key_usage {
        0 if leaf => vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ],
        0 => vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ],
        k => KEY_USAGES
            .iter()
            .enumerate()
            .filter(|(i, _)| (k - 1) & (1 << i) != 0)
            .map(|(_, u)| *u)
            .collect(),
    };
    params.extended_key_usages = match c.eku {
        0 if leaf => vec![ExtendedKeyUsagePurpose::ServerAuth],
        0 => Vec::new(),
        k => ekus(k - 1),
    };
    params.subject_alt_names = match c.san_count % 5 {
        0 if leaf => vec![san_choice(0)],
        0 => Vec::new(),
        n => c.sans[..usize::from(n - 1).min(3)]
            .iter()
            .map(|&s| san_choice(s))
            .collect(),
    };
    if c.name_constraints % 3 != 0 {
        let mut nc = NameConstraints {
            permitted_subtrees: Vec::new(),
            excluded_subtrees: Vec::new(),
        };
        for &s in &c.subtrees[..usize::from(c.name_constraints % 3)] {
            let (permitted, subtree) = subtree_choice(s);
            if permitted {
                nc.permitted_subtrees.push(subtree);
            } else {
                nc.excluded_subtrees.push(subtree);
            }
        }
        params.name_constraints = Some(nc);
    }
    let (not_before, not_after) = validity(c.validity, !leaf);
    params.not_before = not_before;
    params.not_after = not_after;
    params.serial_number = match c.serial % 6 {
        0 => None,
        1 => Some(SerialNumber::from_slice(&[1])),
        2 => Some(SerialNumber::from_slice(&[2])),
        3 => Some(SerialNumber::from_slice(&[0x80, 0x01])),
        4 => Some(SerialNumber::from_slice(&[0x7f; 20])),
        _ => Some(SerialNumber::from_slice(&[0])),
    };
    let own_skid = params.key_identifier(key);
    let skid = match c.skid % 4 {
        0 => own_skid,
        1 => vec![0x5a; 20],
        2 => params.key_identifier(&key_pool()[0]),
        _ => Vec::new(),
    };
    params.key_identifier_method = KeyIdMethod::PreSpecified(skid.clone());
    params.use_authority_key_identifier_extension = c.akid % 3 != 1;
    match c.extra_extension % 5 {
        1 => params.custom_extensions.push({
            let mut ext =
                CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 55_555, 1], vec![0x05, 0x00]);
            ext.set_criticality(true);
            ext
        }),
        2 => params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 55_555, 2],
                vec![0x05, 0x00],
            )),
        3 => {
            // A second subjectAltName extension: duplicate extensions.
            let san = encode(0x30, &encode(0x82, b"other.example.org"));
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(&[2, 5, 29, 17], san));
        }
        4 => params.crl_distribution_points.push(CrlDistributionPoint {
            uris: vec!["http://crl.example.com/root.crl".into()],
        }),
        _ => {}
    }

    // The issuer as the certificate names it: the parent's name and key identifier,
    // unless the input overrides them; the signing key likewise.
    let (issuer_params, default_signer) = match parent {
        Some(p) => (p.params.clone(), p.key),
        None => (params.clone(), key),
    };
    let mut issuer_params = issuer_params;
    if let Some(dn) = name_choice(c.issuer_name) {
        issuer_params.distinguished_name = dn;
    }
    let parent_skid = parent.map_or_else(|| skid.clone(), |p| p.skid.clone());
    issuer_params.key_identifier_method = KeyIdMethod::PreSpecified(match c.akid % 3 {
        2 => vec![0xa5; 20],
        _ => parent_skid,
    });
    let signer = match c.signer {
        0 => default_signer,
        k => pick_key(k, 0),
    };
    let issuer = Issuer::new(issuer_params, signer);
    let v3 = params.signed_by(key, &issuer).ok()?.der().clone();
    let v1 = c.version % 2 == 1;
    let relabel = c.relabel % 4;
    let label = SIGNATURE_LABELS[usize::from(c.relabel / 4) % SIGNATURE_LABELS.len()];
    let der = if v1 || relabel != 0 {
        rewrite(&v3, v1, relabel, label.1, signer)?
    } else {
        v3
    };
    let serial = serial_of(&der)?;
    let _ = write!(
        description,
        "\n  [{position}{}] key={} signer={} {}{:?}",
        if leaf {
            " leaf"
        } else if is_root {
            " root"
        } else {
            ""
        },
        key_name(key),
        key_name(signer),
        if v1 { "v1 " } else { "" },
        c,
    );
    if relabel != 0 {
        let _ = write!(description, " relabel={relabel}:{}", label.0);
    }
    Some(Made {
        params,
        key,
        skid,
        der,
        serial,
    })
}

// ---- minimal DER handling for v1 conversion and signature relabelling ----

/// One DER element split off the front of a buffer: (tag, whole element, contents, rest).
type Tlv<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);

/// Splits one TLV off the front.
fn tlv(data: &[u8]) -> Option<Tlv<'_>> {
    let tag = *data.first()?;
    let first = *data.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 3 {
            return None;
        }
        let mut len = 0usize;
        for &b in data.get(2..2 + n)? {
            len = (len << 8) | usize::from(b);
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    let whole = data.get(..end)?;
    Some((tag, whole, &whole[header..], &data[end..]))
}

fn encode(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend([0x81, len as u8]);
    } else if len < 0x1_0000 {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    } else {
        out.extend([0x83, (len >> 16) as u8, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(contents);
    out
}

/// Rebuilds a certificate: drops version and extensions (v1) and/or replaces the
/// signature AlgorithmIdentifier (relabel 1: both, 2: outer only, 3: inner only), then
/// signs the TBSCertificate again with `signer`.
fn rewrite(
    cert: &[u8],
    v1: bool,
    relabel: u8,
    label: &[u8],
    signer: &KeyPair,
) -> Option<CertificateDer<'static>> {
    let (_, _, outer, _) = tlv(cert)?;
    let (_, _, tbs, rest) = tlv(outer)?;
    let (_, outer_alg, _, _) = tlv(rest)?;
    let mut fields = Vec::new();
    let mut cursor = tbs;
    while !cursor.is_empty() {
        let (tag, whole, _, rest) = tlv(cursor)?;
        fields.push((tag, whole));
        cursor = rest;
    }
    let mut new_tbs = Vec::new();
    let mut seen_alg = false;
    for (tag, whole) in fields {
        match tag {
            0xa0 | 0xa3 if v1 => {}
            0x30 if !seen_alg => {
                seen_alg = true;
                if relabel == 1 || relabel == 3 {
                    new_tbs.extend_from_slice(label);
                } else {
                    new_tbs.extend_from_slice(whole);
                }
            }
            _ => new_tbs.extend_from_slice(whole),
        }
    }
    let new_tbs = encode(0x30, &new_tbs);
    let signature = signer.sign(&new_tbs).ok()?;
    let mut bits = vec![0u8];
    bits.extend_from_slice(&signature);
    let mut body = new_tbs;
    if relabel == 1 || relabel == 2 {
        body.extend_from_slice(label);
    } else {
        body.extend_from_slice(outer_alg);
    }
    body.extend(encode(0x03, &bits));
    Some(CertificateDer::from(encode(0x30, &body)))
}

/// The serial number's contents octets.
fn serial_of(cert: &[u8]) -> Option<Vec<u8>> {
    let (_, _, outer, _) = tlv(cert)?;
    let (_, _, tbs, _) = tlv(outer)?;
    let (tag, _, _, rest) = tlv(tbs)?;
    let rest = if tag == 0xa0 { rest } else { tbs };
    let (_, _, serial, _) = tlv(rest)?;
    Some(serial.to_vec())
}

/// The DER element at `index` of a TBSCertificate after the optional version
/// (0 serial, 1 signature, 2 issuer, 3 validity, 4 subject).
fn tbs_field(cert: &[u8], index: usize) -> Option<Vec<u8>> {
    let (_, _, outer, _) = tlv(cert)?;
    let (_, _, tbs, _) = tlv(outer)?;
    let (tag, _, _, rest) = tlv(tbs)?;
    let mut cursor = if tag == 0xa0 { rest } else { tbs };
    for _ in 0..index {
        cursor = tlv(cursor)?.3;
    }
    Some(tlv(cursor)?.1.to_vec())
}

/// The DER subject Name of a certificate.
pub fn subject_of(cert: &[u8]) -> Option<Vec<u8>> {
    tbs_field(cert, 4)
}

/// True when a certificate names itself as its issuer (byte for byte).
pub fn is_self_issued(cert: &[u8]) -> bool {
    matches!((tbs_field(cert, 2), tbs_field(cert, 4)), (Some(i), Some(s)) if i == s)
}

/// True when a certificate's TBSCertificate `signature` AlgorithmIdentifier differs
/// from its outer `signatureAlgorithm` (RFC 5280 §4.1.1.2 requires them equal).
pub fn signature_algorithms_differ(cert: &[u8]) -> bool {
    let inner_and_outer = || {
        let (_, _, outer, _) = tlv(cert)?;
        let (_, _, tbs, rest) = tlv(outer)?;
        let (_, outer_alg, _, _) = tlv(rest)?;
        let (tag, _, _, after_version) = tlv(tbs)?;
        let cursor = if tag == 0xa0 { after_version } else { tbs };
        let (_, _, _, after_serial) = tlv(cursor)?;
        let (_, inner_alg, _, _) = tlv(after_serial)?;
        Some(inner_alg != outer_alg)
    };
    inner_and_outer().unwrap_or(false)
}

/// One CRL for `issuer` (0 = none).
fn make_crl(
    choice: u8,
    issuer: &Made,
    child_serial: &[u8],
    description: &mut String,
) -> Option<CertificateRevocationListDer<'static>> {
    let now = now();
    let (this_update, next_update) = match choice % 9 {
        0 => return None,
        4 => (now - Duration::days(30), now - Duration::days(1)),
        5 => (now + Duration::days(1), now + Duration::days(30)),
        _ => (now - Duration::hours(1), now + Duration::days(30)),
    };
    let revoked = match choice % 9 {
        1 | 6 | 7 | 8 => Vec::new(),
        _ => vec![RevokedCertParams {
            serial_number: SerialNumber::from_slice(child_serial),
            revocation_time: now - Duration::hours(2),
            reason_code: Some(RevocationReason::KeyCompromise),
            invalidity_date: None,
        }],
    };
    let issuing_distribution_point = match choice % 9 {
        3 => Some(CrlIssuingDistributionPoint {
            distribution_point: CrlDistributionPoint {
                uris: vec!["http://crl.example.com/root.crl".into()],
            },
            scope: Some(CrlScope::UserCertsOnly),
        }),
        7 => Some(CrlIssuingDistributionPoint {
            distribution_point: CrlDistributionPoint {
                uris: vec!["http://crl.example.com/other.crl".into()],
            },
            scope: Some(CrlScope::CaCertsOnly),
        }),
        _ => None,
    };
    let mut issuer_params = issuer.params.clone();
    // rcgen refuses to sign a CRL for a CA without cRLSign; the verifiers must judge that.
    if !issuer_params.key_usages.is_empty()
        && !issuer_params.key_usages.contains(&KeyUsagePurpose::CrlSign)
    {
        issuer_params.key_usages.push(KeyUsagePurpose::CrlSign);
    }
    issuer_params.key_identifier_method = KeyIdMethod::PreSpecified(issuer.skid.clone());
    let signer = if choice % 9 == 6 {
        &key_pool()[7]
    } else {
        issuer.key
    };
    if choice % 9 == 8 {
        issuer_params.distinguished_name = name_choice(10).expect("a name");
    }
    let params = CertificateRevocationListParams {
        this_update,
        next_update,
        crl_number: SerialNumber::from_slice(&[choice | 1]),
        issuing_distribution_point,
        revoked_certs: revoked,
        key_identifier_method: KeyIdMethod::PreSpecified(issuer.skid.clone()),
    };
    let crl = params.signed_by(&Issuer::new(issuer_params, signer)).ok()?;
    let _ = write!(description, "\n  crl choice {} ", choice % 9);
    Some(crl.der().clone())
}

/// An unrelated self-signed root (same name as the real one, another key).
fn impostor_root() -> &'static Made {
    static ROOT: OnceLock<Made> = OnceLock::new();
    ROOT.get_or_init(|| {
        let mut description = String::new();
        let choices = CertChoices {
            key: 8, // p256#7
            ..CertChoices::default()
        };
        make_cert(&choices, 0, false, None, &mut description).expect("impostor root")
    })
}

/// Reads a chain from fuzz input. `None` when rcgen refuses the combination.
pub fn generate(data: &[u8]) -> Option<GeneratedChain> {
    let mut d = Decisions { data };
    let intermediates = usize::from(d.byte()) % (MAX_INTERMEDIATES + 1);
    let presented = d.byte();
    let root_file_choice = d.byte();
    let host = HOSTS[usize::from(d.byte()) % HOSTS.len()];
    let crl_choices = [d.byte(), d.byte(), d.byte()];
    let mut description = format!(
        "{intermediates} intermediates, presented={presented:#04x}, root file={root_file_choice:#04x}, host={host}, crls={crl_choices:?}"
    );

    let count = intermediates + 2;
    let mut made: Vec<Made> = Vec::with_capacity(count);
    for position in 0..count {
        let choices = CertChoices::read(&mut d);
        let leaf = position == count - 1;
        let cert = make_cert(&choices, position, leaf, made.last(), &mut description)?;
        made.push(cert);
    }

    // CRLs: one per CA, revoking (for some choices) the certificate it issued.
    let mut crls = Vec::new();
    for (i, &choice) in crl_choices.iter().enumerate().take(count - 1) {
        if let Some(crl) = make_crl(choice, &made[i], &made[i + 1].serial, &mut description) {
            crls.push(crl);
        }
    }

    // The root file: bit 0..3 pick root, intermediates, leaf; bit 4 adds the impostor root;
    // 0 means "just the root".
    let mut root_file = Vec::new();
    if root_file_choice == 0 {
        root_file.push(made[0].der.clone());
    } else {
        for (i, m) in made.iter().enumerate() {
            if root_file_choice & (1 << i.min(3)) != 0 {
                root_file.push(m.der.clone());
            }
        }
        if root_file_choice & 0x10 != 0 {
            root_file.push(impostor_root().der.clone());
        }
    }

    // What the server sends after its certificate: by default the intermediates from the
    // leaf's issuer upwards. Bit 0: reverse; bit 1: add the root; bit 2: send the first
    // one twice; bit 3: drop the first one; bit 4: send the leaf again; bit 5: the
    // impostor root first.
    let mut sent: Vec<CertificateDer<'static>> = made[1..count - 1]
        .iter()
        .rev()
        .map(|m| m.der.clone())
        .collect();
    if presented & 0x02 != 0 {
        sent.push(made[0].der.clone());
    }
    if presented & 0x01 != 0 {
        sent.reverse();
    }
    if presented & 0x04 != 0 {
        if let Some(first) = sent.first().cloned() {
            sent.push(first);
        }
    }
    if presented & 0x08 != 0 && !sent.is_empty() {
        sent.remove(0);
    }
    if presented & 0x10 != 0 {
        sent.push(made[count - 1].der.clone());
    }
    if presented & 0x20 != 0 {
        sent.insert(0, impostor_root().der.clone());
    }

    Some(GeneratedChain {
        root_file,
        crls,
        end_entity: made[count - 1].der.clone(),
        intermediates: sent,
        host,
        now_unix: NOW_UNIX,
        description,
    })
}

impl GeneratedChain {
    /// The chain as pgtls's fuzz entry point takes it.
    pub fn input(&self) -> pgtls::fuzz::ChainInput<'_> {
        pgtls::fuzz::ChainInput {
            root_file: &self.root_file,
            crls: &self.crls,
            end_entity: &self.end_entity,
            intermediates: &self.intermediates,
            host: self.host,
            now_unix: u64::try_from(self.now_unix).expect("a time after 1970"),
        }
    }
}

/// The `verifier` fuzz body: generates a chain and verifies it in every sslmode that
/// checks chains (the invariants between modes are asserted by
/// [`pgtls::fuzz::verify_chain`]).
pub fn verifier_body(data: &[u8]) {
    if let Some(chain) = generate(data) {
        let _ = pgtls::fuzz::verify_chain(&chain.input());
    }
}
