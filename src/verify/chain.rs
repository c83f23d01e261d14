//! Certificate path building and validation with the semantics libpq gets from OpenSSL.
//!
//! libpq loads `sslrootcert` with `SSL_CTX_load_verify_locations`, optionally loads CRLs into the
//! same `X509_STORE` with `X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL`, and keeps OpenSSL's
//! verdict (`verify_cb` returns `ok` unchanged). The server chain is therefore judged by
//! `X509_verify_cert` with the `ssl_server` purpose, default depth 100, no partial chains and no
//! policy checking. This module reproduces that:
//!
//! 0. **The leaf's key** (before anything else, as `X509_verify_cert`): under security level 2
//!    it fails as "EE certificate key too weak" (`key_strength.rs`).
//! 1. **Path building** (`build_chain` in OpenSSL's `x509_vfy.c`), trusted-first: at each step an
//!    issuer is first looked up in the store, then among the presented certificates. A candidate
//!    issuer must have a subject equal to the certificate's issuer (compared like `X509_NAME_cmp`,
//!    on a canonical form), agree with its Authority Key Identifier, and have a key type matching
//!    the signature algorithm (`x509_likely_issued`); certificates with a malformed or repeated
//!    basicConstraints/keyUsage/EKU/SKID/AKID/SAN/nameConstraints/CRLDP extension are never
//!    issuers nor issued (`EXFLAG_INVALID`). Among several, the first one valid now wins, else the
//!    one expiring last. Signatures are *not* checked while building. Once a store certificate is
//!    in the chain, only the store is searched. The chain is trusted when its top is a self-signed
//!    store certificate; a self-signed presented certificate is replaced by its exact
//!    (byte-identical) copy from the store, so a self-signed leaf that is in the root file
//!    verifies. Failures: "self-signed certificate" (lone self-signed leaf), "self-signed
//!    certificate in certificate chain", "unable to get issuer certificate" (the chain reached a
//!    non-self-signed store certificate, e.g. a root file holding only an intermediate), "unable to
//!    get local issuer certificate", "certificate chain too long" (depth 100).
//! 2. **Extension checks** (`check_extensions`), from the leaf up: unhandled critical extensions,
//!    proxy certificates, CA-ness of every issuer (intermediates need basicConstraints cA:TRUE and
//!    keyCertSign if keyUsage is present; the top may also be a v1 self-signed root or a
//!    keyUsage-only CA), explicit EC parameters, the `ssl_server` purpose (EKU, if present, must
//!    list serverAuth or SGC on every certificate; anyExtendedKeyUsage does not count; the leaf's
//!    keyUsage, if present, needs digitalSignature, keyEncipherment or keyAgreement), path length
//!    constraints. Then every key above the leaf, the anchor's included (`check_auth_level`):
//!    "CA certificate key too weak".
//! 3. **Revocation** (`check_revocation`), only when CRL checking is on: every certificate needs a
//!    usable CRL from its issuer, the self-signed anchor included (see `crl.rs`).
//! 4. **Signatures and validity** (`internal_verify`), from the anchor down: each signature with the
//!    issuer's key (the anchor's own self-signature is not checked), then notBefore/notAfter of each
//!    certificate, the anchor included.
//! 5. **Name constraints** (`check_name_constraints`): dNSName, rfc822Name, URI, iPAddress and
//!    directoryName subtrees of every certificate (or bare anchor) above, applied to the subject,
//!    its emailAddress attributes, the SANs and, for a leaf without DNS SAN, host-name-like CNs.
//!
//! The first failure is reported, with OpenSSL's `X509_verify_cert_error_string` text, because
//! libpq's callback never overrides an error. The reference is OpenSSL 3.0 (the LTS most libpq
//! builds use); the tests compare every verdict and error depth with `openssl verify` when the
//! tool is installed.
//!
//! Deviations from OpenSSL, and why:
//!
//! * **Alternative paths (accepting more).** When the OpenSSL-like chain fails, a bounded
//!   depth-first search over the other candidate issuers looks for a path that passes every check
//!   above; if one exists the chain is accepted, otherwise the OpenSSL-like error is reported.
//!   OpenSSL only tries one chain (its "alternative chains" logic is inert with trusted-first), so
//!   this only turns a failure into a success when a fully valid path to a trust anchor exists
//!   (e.g. two intermediates with the same name where the first presented one does not verify).
//! * **Signature algorithms** are the rustls provider's (the crate stays provider-agnostic): what
//!   it lacks (SHA-1, MD5, DSA, Ed448, RSA keys under 2048 bits, RSA-PSS with a non-standard salt
//!   length) fails, as "certificate signature algorithm not supported by the crypto provider" or
//!   "certificate signature failure". OpenSSL's security-level-2 key sizes are checked
//!   (`key_strength.rs`: "EE certificate key too weak", "CA certificate key too weak"); its
//!   digest check ("CA signature digest algorithm too weak") is not reproduced, the provider's
//!   algorithm set stands in.
//! * **Parsing** is x509-parser's: a certificate it rejects fails as "certificate could not be
//!   parsed" (OpenSSL would fail while decoding the handshake message, or accept it).
//! * **Bare trust anchors** (`from_trust_anchors`) have no OpenSSL equivalent: a certificate whose
//!   issuer name and key type match an anchor is checked against its key; the anchor has no
//!   validity, extensions or AKID serial to check; its name constraints are enforced.
//! * **Name constraints**: x509-parser drops subtree minimum/maximum (OpenSSL rejects them) and
//!   SmtpUTF8Mailbox otherNames are not matched against rfc822Name subtrees (RFC 8398).
//! * **Version-dependent details follow OpenSSL 3.0–3.5**: a certificate is expired from its
//!   notAfter second on, the self-signed anchor needs a CRL too, the leaf's CN is constrained
//!   when it has no DNS SAN, and "certificate is not yet valid" is printed without the "or the
//!   system clock is incorrect" suffix of newer releases.

use std::collections::{HashMap, HashSet};
use std::fmt;

use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, TrustAnchor, UnixTime};
use x509_parser::extensions::{
    DistributionPointName, GeneralName, NameConstraints as X509NameConstraints, ParsedExtension,
    X509Extension,
};
use x509_parser::prelude::FromDer;
use x509_parser::x509::{RelativeDistinguishedName, SubjectPublicKeyInfo, X509Name};

use super::crl::{check_certificate_crl, CrlSet};
use super::key_strength::meets_security_level_2;
use super::signature::{split_signed, verify_signed_data, SignedDataError, TAG_SEQUENCE};

/// OpenSSL's default verification depth (`X509_VERIFY_PARAM` depth 100): chains may grow to
/// `MAX_VERIFY_DEPTH + 2` certificates before "certificate chain too long".
const MAX_VERIFY_DEPTH: usize = 100;
/// Longest path the alternative-path search explores (leaf and anchor included).
const MAX_ALTERNATIVE_PATH_LEN: usize = 10;
/// Upper bound on nodes visited by the alternative-path search.
const MAX_ALTERNATIVE_STEPS: usize = 256;
/// Upper bound on signature checks the alternative-path search may spend pruning candidates.
const MAX_ALTERNATIVE_SIGNATURES: usize = 64;
/// Upper bound on complete candidate paths the alternative-path search fully validates.
const MAX_ALTERNATIVE_VALIDATIONS: usize = 8;
/// OpenSSL's `NAME_CHECK_MAX`: names × constraints above this fail as unspecified.
const NAME_CHECK_MAX: usize = 1 << 20;

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a server certificate chain was rejected.
///
/// `Display` prints OpenSSL 3's `X509_verify_cert_error_string` text for the corresponding
/// `X509_V_ERR_*` code, which is what libpq users see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChainError {
    /// `X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY`: no issuer for a presented certificate.
    UnableToGetIssuerCertLocally,
    /// `X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT`: no issuer for a (non self-signed) store certificate.
    UnableToGetIssuerCert,
    /// `X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT`: a self-signed leaf that is not in the store.
    DepthZeroSelfSignedCert,
    /// `X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN`: the chain ends at a self-signed certificate that is
    /// not in the store.
    SelfSignedCertInChain,
    /// `X509_V_ERR_CERT_CHAIN_TOO_LONG`: more than the default depth of 100.
    CertChainTooLong,
    /// `X509_V_ERR_CERT_SIGNATURE_FAILURE`: a signature does not verify with the issuer's key.
    CertSignatureFailure,
    /// The provider has no algorithm for a certificate's signature (OpenSSL would try it itself;
    /// pgtls only uses the rustls provider's algorithms).
    UnsupportedSignatureAlgorithm,
    /// `X509_V_ERR_CERT_NOT_YET_VALID`.
    CertNotYetValid,
    /// `X509_V_ERR_CERT_HAS_EXPIRED`.
    CertHasExpired,
    /// `X509_V_ERR_INVALID_CA`: an issuer that is not a CA.
    InvalidCa,
    /// `X509_V_ERR_PATH_LENGTH_EXCEEDED`.
    PathLengthExceeded,
    /// `X509_V_ERR_INVALID_PURPOSE`: not usable for a TLS server (`ssl_server` purpose).
    InvalidPurpose,
    /// `X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION`.
    UnhandledCriticalExtension,
    /// `X509_V_ERR_PROXY_CERTIFICATES_NOT_ALLOWED`: an RFC 3820 proxy certificate.
    ProxyCertificatesNotAllowed,
    /// `X509_V_ERR_EC_KEY_EXPLICIT_PARAMS`: an EC key with explicit curve parameters.
    EcKeyExplicitParams,
    /// `X509_V_ERR_EE_KEY_TOO_SMALL`: the leaf's key is under security level 2 (112 bits).
    EeKeyTooSmall,
    /// `X509_V_ERR_CA_KEY_TOO_SMALL`: a key above the leaf (anchor included) is under security
    /// level 2.
    CaKeyTooSmall,
    /// `X509_V_ERR_CERT_REVOKED`.
    CertRevoked,
    /// `X509_V_ERR_UNABLE_TO_GET_CRL`: CRL checking is on and no usable CRL covers a certificate.
    UnableToGetCrl,
    /// `X509_V_ERR_CRL_HAS_EXPIRED`: the CRL's nextUpdate is in the past.
    CrlHasExpired,
    /// `X509_V_ERR_CRL_NOT_YET_VALID`: the CRL's thisUpdate is in the future.
    CrlNotYetValid,
    /// `X509_V_ERR_CRL_SIGNATURE_FAILURE`.
    CrlSignatureFailure,
    /// `X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION`.
    UnhandledCriticalCrlExtension,
    /// `X509_V_ERR_KEYUSAGE_NO_CRL_SIGN`: the CRL issuer's keyUsage lacks cRLSign.
    KeyUsageNoCrlSign,
    /// `X509_V_ERR_DIFFERENT_CRL_SCOPE`: the CRL's issuing distribution point does not cover it.
    DifferentCrlScope,
    /// `X509_V_ERR_PERMITTED_VIOLATION`: a name outside a permitted subtree.
    PermittedViolation,
    /// `X509_V_ERR_EXCLUDED_VIOLATION`: a name inside an excluded subtree.
    ExcludedViolation,
    /// `X509_V_ERR_UNSUPPORTED_CONSTRAINT_TYPE`.
    UnsupportedConstraintType,
    /// `X509_V_ERR_UNSUPPORTED_NAME_SYNTAX`.
    UnsupportedNameSyntax,
    /// `X509_V_ERR_UNSPECIFIED` (OpenSSL uses it for oversized name-constraint checks).
    Unspecified,
    /// A presented certificate is not valid DER X.509 (OpenSSL fails the handshake while decoding
    /// the Certificate message, before verification).
    UnparsableCertificate,
}

impl ChainError {
    /// The message OpenSSL 3 prints for this error (`X509_verify_cert_error_string`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::UnableToGetIssuerCertLocally => "unable to get local issuer certificate",
            Self::UnableToGetIssuerCert => "unable to get issuer certificate",
            Self::DepthZeroSelfSignedCert => "self-signed certificate",
            Self::SelfSignedCertInChain => "self-signed certificate in certificate chain",
            Self::CertChainTooLong => "certificate chain too long",
            Self::CertSignatureFailure => "certificate signature failure",
            Self::UnsupportedSignatureAlgorithm => {
                "certificate signature algorithm not supported by the crypto provider"
            }
            Self::CertNotYetValid => "certificate is not yet valid",
            Self::CertHasExpired => "certificate has expired",
            Self::InvalidCa => "invalid CA certificate",
            Self::PathLengthExceeded => "path length constraint exceeded",
            Self::InvalidPurpose => "unsuitable certificate purpose",
            Self::UnhandledCriticalExtension => "unhandled critical extension",
            Self::ProxyCertificatesNotAllowed => {
                "proxy certificates not allowed, please set the appropriate flag"
            }
            Self::EcKeyExplicitParams => "Certificate public key has explicit ECC parameters",
            Self::EeKeyTooSmall => "EE certificate key too weak",
            Self::CaKeyTooSmall => "CA certificate key too weak",
            Self::CertRevoked => "certificate revoked",
            Self::UnableToGetCrl => "unable to get certificate CRL",
            Self::CrlHasExpired => "CRL has expired",
            Self::CrlNotYetValid => "CRL is not yet valid",
            Self::CrlSignatureFailure => "CRL signature failure",
            Self::UnhandledCriticalCrlExtension => "unhandled critical CRL extension",
            Self::KeyUsageNoCrlSign => "key usage does not include CRL signing",
            Self::DifferentCrlScope => "different CRL scope",
            Self::PermittedViolation => "permitted subtree violation",
            Self::ExcludedViolation => "excluded subtree violation",
            Self::UnsupportedConstraintType => "unsupported name constraint type",
            Self::UnsupportedNameSyntax => "unsupported or invalid name syntax",
            Self::Unspecified => "unspecified certificate verification error",
            Self::UnparsableCertificate => "certificate could not be parsed",
        }
    }
}

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for ChainError {}

/// A [`ChainError`] with the depth of the certificate it concerns (0 = leaf), like
/// `X509_STORE_CTX_get_error_depth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChainFailure {
    /// What went wrong.
    pub(crate) error: ChainError,
    /// Depth in the built chain of the certificate concerned (0 = leaf).
    pub(crate) depth: usize,
}

impl ChainFailure {
    /// Shorthand constructor.
    fn at(error: ChainError, depth: usize) -> Self {
        Self { error, depth }
    }
}

impl fmt::Display for ChainFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (depth {})", self.error, self.depth)
    }
}

impl std::error::Error for ChainFailure {}

/// Why a trust store could not be built from a root file's contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChainSetupError {
    /// Certificate number `index` (0-based) is not valid DER X.509. libpq fails the same way
    /// ("could not read root certificate file").
    UnparsableCertificate {
        /// Position in the slice passed in.
        index: usize,
    },
    /// CRL number `index` (0-based) is not a valid DER X.509 CRL. libpq silently ignores a CRL
    /// *file* that does not load (and then checks no CRLs at all): the integrator should drop the
    /// CRLs that came from that file and build the store again.
    UnparsableCrl {
        /// Position in the slice passed in.
        index: usize,
    },
}

impl fmt::Display for ChainSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnparsableCertificate { index } => {
                write!(f, "root certificate #{} could not be parsed", index + 1)
            }
            Self::UnparsableCrl { index } => write!(f, "CRL #{} could not be parsed", index + 1),
        }
    }
}

impl std::error::Error for ChainSetupError {}

// ---------------------------------------------------------------------------------------------
// Object identifiers (DER contents)
// ---------------------------------------------------------------------------------------------

/// Object identifiers used here, as DER contents (no tag/length).
pub(crate) mod oid {
    /// id-ce-subjectKeyIdentifier (2.5.29.14).
    pub(crate) const SUBJECT_KEY_ID: &[u8] = &[0x55, 0x1d, 0x0e];
    /// id-ce-keyUsage (2.5.29.15).
    pub(crate) const KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
    /// id-ce-subjectAltName (2.5.29.17).
    pub(crate) const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
    /// id-ce-basicConstraints (2.5.29.19).
    pub(crate) const BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
    /// id-ce-deltaCRLIndicator (2.5.29.27).
    pub(crate) const DELTA_CRL_INDICATOR: &[u8] = &[0x55, 0x1d, 0x1b];
    /// id-ce-issuingDistributionPoint (2.5.29.28).
    pub(crate) const ISSUING_DISTRIBUTION_POINT: &[u8] = &[0x55, 0x1d, 0x1c];
    /// id-ce-certificateIssuer (2.5.29.29).
    pub(crate) const CERTIFICATE_ISSUER: &[u8] = &[0x55, 0x1d, 0x1d];
    /// id-ce-nameConstraints (2.5.29.30).
    pub(crate) const NAME_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x1e];
    /// id-ce-cRLDistributionPoints (2.5.29.31).
    pub(crate) const CRL_DISTRIBUTION_POINTS: &[u8] = &[0x55, 0x1d, 0x1f];
    /// id-ce-certificatePolicies (2.5.29.32).
    pub(crate) const CERTIFICATE_POLICIES: &[u8] = &[0x55, 0x1d, 0x20];
    /// id-ce-policyMappings (2.5.29.33).
    pub(crate) const POLICY_MAPPINGS: &[u8] = &[0x55, 0x1d, 0x21];
    /// id-ce-authorityKeyIdentifier (2.5.29.35).
    pub(crate) const AUTHORITY_KEY_ID: &[u8] = &[0x55, 0x1d, 0x23];
    /// id-ce-policyConstraints (2.5.29.36).
    pub(crate) const POLICY_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x24];
    /// id-ce-extKeyUsage (2.5.29.37).
    pub(crate) const EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
    /// id-ce-inhibitAnyPolicy (2.5.29.54).
    pub(crate) const INHIBIT_ANY_POLICY: &[u8] = &[0x55, 0x1d, 0x36];
    /// Netscape certificate type (2.16.840.1.113730.1.1).
    pub(crate) const NETSCAPE_CERT_TYPE: &[u8] =
        &[0x60, 0x86, 0x48, 0x01, 0x86, 0xf8, 0x42, 0x01, 0x01];
    /// id-pe-ipAddrBlocks (1.3.6.1.5.5.7.1.7), RFC 3779.
    pub(crate) const IP_ADDR_BLOCKS: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x07];
    /// id-pe-autonomousSysIds (1.3.6.1.5.5.7.1.8), RFC 3779.
    pub(crate) const AS_IDS: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x08];
    /// id-pe-proxyCertInfo (1.3.6.1.5.5.7.1.14), RFC 3820.
    pub(crate) const PROXY_CERT_INFO: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x0e];
    /// id-pkix-ocsp-nocheck (1.3.6.1.5.5.7.48.1.5).
    pub(crate) const OCSP_NO_CHECK: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x05];
    /// Microsoft Server Gated Crypto (1.3.6.1.4.1.311.10.3.3), accepted like serverAuth.
    pub(crate) const MS_SGC: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x0a, 0x03, 0x03];
    /// Netscape Server Gated Crypto (2.16.840.1.113730.4.1), accepted like serverAuth.
    pub(crate) const NS_SGC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x86, 0xf8, 0x42, 0x04, 0x01];
    /// id-at-commonName (2.5.4.3).
    pub(crate) const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
    /// pkcs-9 emailAddress (1.2.840.113549.1.9.1).
    pub(crate) const EMAIL_ADDRESS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01];

    /// PKCS#1 arc 1.2.840.113549.1.1 (followed by one more byte).
    pub(crate) const PKCS1_ARC: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
    /// ANSI X9.62 arc 1.2.840.10045 (followed by more bytes).
    pub(crate) const X962_ARC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d];
    /// NIST signature algorithm arc 2.16.840.1.101.3.4.3 (followed by one more byte).
    pub(crate) const NIST_SIG_ARC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03];
    /// DSA arc 1.2.840.10040.4 (followed by one more byte).
    pub(crate) const DSA_ARC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04];
    /// id-Ed25519 (1.3.101.112).
    pub(crate) const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
    /// id-Ed448 (1.3.101.113).
    pub(crate) const ED448: &[u8] = &[0x2b, 0x65, 0x71];

    /// Extensions OpenSSL understands well enough to accept as critical
    /// (`X509_supported_extension`); any other critical extension fails verification.
    pub(crate) const SUPPORTED_CRITICAL: [&[u8]; 15] = [
        NETSCAPE_CERT_TYPE,
        KEY_USAGE,
        SUBJECT_ALT_NAME,
        BASIC_CONSTRAINTS,
        CERTIFICATE_POLICIES,
        CRL_DISTRIBUTION_POINTS,
        EXT_KEY_USAGE,
        IP_ADDR_BLOCKS,
        AS_IDS,
        OCSP_NO_CHECK,
        POLICY_CONSTRAINTS,
        PROXY_CERT_INFO,
        NAME_CONSTRAINTS,
        POLICY_MAPPINGS,
        INHIBIT_ANY_POLICY,
    ];

    /// Extensions OpenSSL decodes into its certificate cache (`x509v3_cache_extensions`): a
    /// malformed or repeated one marks the certificate invalid.
    pub(crate) const CACHED: [&[u8]; 9] = [
        BASIC_CONSTRAINTS,
        KEY_USAGE,
        EXT_KEY_USAGE,
        NETSCAPE_CERT_TYPE,
        SUBJECT_KEY_ID,
        AUTHORITY_KEY_ID,
        SUBJECT_ALT_NAME,
        NAME_CONSTRAINTS,
        CRL_DISTRIBUTION_POINTS,
    ];
}

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

/// A distinguished name in OpenSSL's canonical form (`x509_name_canon`), so that equality is
/// `X509_NAME_cmp() == 0`.
///
/// Each attribute value of a string type (UTF8, BMP, Universal, Printable, T61, IA5, Visible) is
/// converted to UTF-8, leading and trailing whitespace is removed, inner whitespace runs become
/// one space and ASCII letters are lowered; other values are kept as they are with their tag.
/// Attributes of a multi-valued RDN are sorted. Every RDN is encoded self-delimiting, so a
/// byte-prefix of the encoding is an RDN-prefix (used by directoryName constraints).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub(crate) struct Name {
    /// Concatenated canonical RDN encodings.
    canonical: Vec<u8>,
    /// Number of attribute-value pairs (`X509_NAME_entry_count`).
    entries: usize,
}

impl Name {
    /// Canonicalises a parsed name; `None` when a string value cannot be converted (OpenSSL then
    /// fails to decode the certificate).
    pub(crate) fn from_x509(name: &X509Name<'_>) -> Option<Self> {
        let mut out = Self::default();
        for rdn in name.iter_rdn() {
            out.push_rdn(rdn)?;
        }
        Some(out)
    }

    /// Canonicalises the *contents* of a Name SEQUENCE (as in a `TrustAnchor`'s subject).
    pub(crate) fn from_contents(contents: &[u8]) -> Option<Self> {
        let der = wrap_sequence(contents);
        match X509Name::from_der(&der) {
            Ok(([], name)) => Self::from_x509(&name),
            _ => None,
        }
    }

    /// This name with one more RDN appended (a `nameRelativeToCRLIssuer` made absolute).
    pub(crate) fn with_rdn(&self, rdn: &RelativeDistinguishedName<'_>) -> Option<Self> {
        let mut out = self.clone();
        out.push_rdn(rdn)?;
        Some(out)
    }

    /// Appends one RDN's canonical, self-delimiting encoding.
    fn push_rdn(&mut self, rdn: &RelativeDistinguishedName<'_>) -> Option<()> {
        let mut attributes = Vec::new();
        for attribute in rdn.iter() {
            let value = canonical_value(attribute.attr_value())?;
            let mut encoded = Vec::new();
            push_len_prefixed(&mut encoded, attribute.attr_type().as_bytes());
            push_len_prefixed(&mut encoded, &value);
            attributes.push(encoded);
        }
        attributes.sort();
        self.entries += attributes.len();
        let mut rdn_bytes = Vec::new();
        for attribute in &attributes {
            push_len_prefixed(&mut rdn_bytes, attribute);
        }
        push_len_prefixed(&mut self.canonical, &rdn_bytes);
        Some(())
    }

    /// Number of attribute-value pairs.
    pub(crate) fn entry_count(&self) -> usize {
        self.entries
    }

    /// Whether this name's RDNs are a leading subsequence of `other`'s (`nc_dn`).
    fn is_prefix_of(&self, other: &Name) -> bool {
        other.canonical.starts_with(&self.canonical)
    }
}

/// Appends `bytes` preceded by its length as four big-endian octets.
fn push_len_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Wraps `contents` in a DER SEQUENCE header.
fn wrap_sequence(contents: &[u8]) -> Vec<u8> {
    let mut out = vec![TAG_SEQUENCE];
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(contents);
    out
}

/// Universal tags whose values OpenSSL canonicalises (`ASN1_MASK_CANON`).
const CANON_STRING_TAGS: [u32; 7] = [12, 30, 28, 19, 20, 22, 26];

/// Encodes one attribute value canonically: `0x0c` + canonical UTF-8 for string types, or the
/// class, constructed bit, tag number and raw contents for anything else.
fn canonical_value(value: &x509_parser::der_parser::asn1_rs::Any<'_>) -> Option<Vec<u8>> {
    let tag = value.tag().0;
    let universal = matches!(
        value.class(),
        x509_parser::der_parser::asn1_rs::Class::Universal
    );
    if universal && CANON_STRING_TAGS.contains(&tag) {
        let utf8 = string_to_utf8(tag, value.data)?;
        let mut out = vec![0x0c];
        out.extend_from_slice(&canonicalize_text(&utf8));
        return Some(out);
    }
    let mut out = vec![
        0xff,
        value.class() as u8,
        u8::from(value.header.constructed()),
    ];
    out.extend_from_slice(&tag.to_be_bytes());
    out.extend_from_slice(value.data);
    Some(out)
}

/// Converts an ASN.1 string's contents to UTF-8 like `ASN1_STRING_to_UTF8`: UTF8String is
/// validated, BMPString is 2 bytes per character, UniversalString 4, and the one-byte types
/// (Printable, T61, IA5, Visible) are read as Latin-1.
pub(crate) fn string_to_utf8(tag: u32, data: &[u8]) -> Option<Vec<u8>> {
    match tag {
        12 => std::str::from_utf8(data)
            .ok()
            .map(|s| s.as_bytes().to_vec()),
        30 => code_points_to_utf8(data, 2),
        28 => code_points_to_utf8(data, 4),
        _ => Some(latin1_to_utf8(data)),
    }
}

/// Decodes fixed-width big-endian code points and encodes them as UTF-8.
fn code_points_to_utf8(data: &[u8], width: usize) -> Option<Vec<u8>> {
    if data.len() % width != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(data.len());
    for chunk in data.chunks(width) {
        let cp = chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
        push_utf8(&mut out, cp)?;
    }
    Some(out)
}

/// Reads each byte as a Latin-1 character and encodes it as UTF-8.
fn latin1_to_utf8(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    for b in data {
        // Latin-1 code points are always valid.
        let _ = push_utf8(&mut out, u32::from(*b));
    }
    out
}

/// UTF-8-encodes one code point (surrogates included, as OpenSSL does); `None` above U+10FFFF.
fn push_utf8(out: &mut Vec<u8>, cp: u32) -> Option<()> {
    match cp {
        0..=0x7f => out.push(cp as u8),
        0x80..=0x7ff => out.extend_from_slice(&[0xc0 | (cp >> 6) as u8, 0x80 | (cp & 0x3f) as u8]),
        0x800..=0xffff => out.extend_from_slice(&[
            0xe0 | (cp >> 12) as u8,
            0x80 | ((cp >> 6) & 0x3f) as u8,
            0x80 | (cp & 0x3f) as u8,
        ]),
        0x1_0000..=0x10_ffff => out.extend_from_slice(&[
            0xf0 | (cp >> 18) as u8,
            0x80 | ((cp >> 12) & 0x3f) as u8,
            0x80 | ((cp >> 6) & 0x3f) as u8,
            0x80 | (cp & 0x3f) as u8,
        ]),
        _ => return None,
    }
    Some(())
}

/// OpenSSL's `asn1_string_canon` text step: trim ASCII whitespace, collapse inner runs to one
/// space, lower ASCII letters, copy non-ASCII bytes unchanged.
fn canonicalize_text(text: &[u8]) -> Vec<u8> {
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let start = text.iter().position(|b| !is_space(b)).unwrap_or(text.len());
    let end = text
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |p| p + 1);
    let mut out = Vec::with_capacity(end - start);
    let mut in_space = false;
    for b in &text[start..end] {
        if is_space(b) {
            if !in_space {
                out.push(b' ');
            }
            in_space = true;
        } else {
            out.push(b.to_ascii_lowercase());
            in_space = false;
        }
    }
    out
}

/// Strips redundant leading sign octets from an INTEGER's contents so that equal values compare
/// equal (`ASN1_INTEGER_cmp`).
pub(crate) fn normalize_integer(raw: &[u8]) -> Vec<u8> {
    let mut s = raw;
    while s.len() > 1 && ((s[0] == 0x00 && s[1] & 0x80 == 0) || (s[0] == 0xff && s[1] & 0x80 != 0))
    {
        s = &s[1..];
    }
    s.to_vec()
}

// ---------------------------------------------------------------------------------------------
// General names
// ---------------------------------------------------------------------------------------------

/// An owned GeneralName, keeping OpenSSL's `GEN_*` type number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum GeneralNameOwned {
    /// rfc822Name (`GEN_EMAIL`, 1), raw IA5 bytes.
    Email(Vec<u8>),
    /// dNSName (`GEN_DNS`, 2), raw IA5 bytes.
    Dns(Vec<u8>),
    /// directoryName (`GEN_DIRNAME`, 4).
    Directory(Name),
    /// uniformResourceIdentifier (`GEN_URI`, 6), raw IA5 bytes.
    Uri(Vec<u8>),
    /// iPAddress (`GEN_IPADD`, 7): 4 or 16 bytes, or 8/32 (address and mask) in constraints.
    Ip(Vec<u8>),
    /// otherName (`GEN_OTHERNAME`, 0): type-id OID and raw value.
    OtherName {
        /// The type-id OID (DER contents).
        oid: Vec<u8>,
        /// The explicitly tagged value, raw.
        value: Vec<u8>,
    },
    /// Any other type (x400Address 3, ediPartyName 5, registeredID 8) with its contents,
    /// compared only by type and bytes.
    Other(u8, Vec<u8>),
}

impl GeneralNameOwned {
    /// Converts x509-parser's form; `None` when a directoryName cannot be canonicalised.
    pub(crate) fn from_x509(name: &GeneralName<'_>) -> Option<Self> {
        Some(match name {
            GeneralName::RFC822Name(s) => Self::Email(s.as_bytes().to_vec()),
            GeneralName::DNSName(s) => Self::Dns(s.as_bytes().to_vec()),
            GeneralName::URI(s) => Self::Uri(s.as_bytes().to_vec()),
            GeneralName::IPAddress(b) => Self::Ip(b.to_vec()),
            GeneralName::DirectoryName(n) => Self::Directory(Name::from_x509(n)?),
            GeneralName::OtherName(o, data) => Self::OtherName {
                oid: o.as_bytes().to_vec(),
                value: data.to_vec(),
            },
            GeneralName::X400Address(any) => Self::Other(3, any.data.to_vec()),
            GeneralName::EDIPartyName(any) => Self::Other(5, any.data.to_vec()),
            GeneralName::RegisteredID(o) => Self::Other(8, o.as_bytes().to_vec()),
            GeneralName::Invalid(tag, data) => match tag.0 {
                1 => Self::Email(data.to_vec()),
                2 => Self::Dns(data.to_vec()),
                6 => Self::Uri(data.to_vec()),
                7 => Self::Ip(data.to_vec()),
                n => Self::Other(u8::try_from(n).unwrap_or(u8::MAX), data.to_vec()),
            },
        })
    }

    /// OpenSSL's `GEN_*` number for this name.
    fn type_id(&self) -> u8 {
        match self {
            Self::Email(_) => 1,
            Self::Dns(_) => 2,
            Self::Directory(_) => 4,
            Self::Uri(_) => 6,
            Self::Ip(_) => 7,
            Self::OtherName { .. } => 0,
            Self::Other(t, _) => *t,
        }
    }

    /// Whether a constraint `base` applies to this name (`nc_match`): same type, and for
    /// otherNames the same type-id.
    fn constrained_by(&self, base: &Self) -> bool {
        match (self, base) {
            (Self::OtherName { oid: a, .. }, Self::OtherName { oid: b, .. }) => a == b,
            _ => self.type_id() == base.type_id(),
        }
    }
}

/// Converts a list of GeneralNames; `None` if any directoryName cannot be canonicalised.
fn general_names(names: &[GeneralName<'_>]) -> Option<Vec<GeneralNameOwned>> {
    names.iter().map(GeneralNameOwned::from_x509).collect()
}

/// The first directoryName of a list, as OpenSSL takes it for AKID issuers and CRL issuers.
pub(crate) fn first_directory_name(names: &[GeneralNameOwned]) -> Option<&Name> {
    names.iter().find_map(|n| match n {
        GeneralNameOwned::Directory(name) => Some(name),
        _ => None,
    })
}

/// A distribution point name with a relative name already made absolute (`DIST_POINT_set_dpname`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DistPointName {
    /// `fullName`.
    Full(Vec<GeneralNameOwned>),
    /// `nameRelativeToCRLIssuer`, appended to the CRL issuer's name.
    Relative(Name),
}

impl DistPointName {
    /// Converts x509-parser's form; relative names are resolved against `base`.
    pub(crate) fn from_x509(name: &DistributionPointName<'_>, base: &Name) -> Option<Self> {
        Some(match name {
            DistributionPointName::FullName(names) => Self::Full(general_names(names)?),
            DistributionPointName::NameRelativeToCRLIssuer(rdn) => {
                Self::Relative(base.with_rdn(rdn)?)
            }
        })
    }
}

/// All CRL reasons (`CRLDP_ALL_REASONS`), in x509-parser's bit order (bit n = reason n).
pub(crate) const ALL_REASONS: u16 = 0x01fe;

/// One entry of a certificate's CRL distribution points extension.
#[derive(Clone, Debug)]
pub(crate) struct DistPoint {
    /// The distribution point name.
    pub(crate) name: Option<DistPointName>,
    /// The `cRLIssuer` names, if present.
    pub(crate) crl_issuer: Option<Vec<GeneralNameOwned>>,
    /// The covered reasons (all when absent).
    pub(crate) reasons: u16,
}

// ---------------------------------------------------------------------------------------------
// Name constraints
// ---------------------------------------------------------------------------------------------

/// A NameConstraints extension (minimum/maximum are not represented: x509-parser drops them).
#[derive(Clone, Debug, Default)]
pub(crate) struct NameConstraints {
    /// Permitted subtrees.
    permitted: Vec<GeneralNameOwned>,
    /// Excluded subtrees.
    excluded: Vec<GeneralNameOwned>,
}

impl NameConstraints {
    /// Converts x509-parser's form.
    fn from_x509(nc: &X509NameConstraints<'_>) -> Option<Self> {
        let convert = |subtrees: &Option<Vec<x509_parser::extensions::GeneralSubtree<'_>>>| {
            subtrees
                .iter()
                .flatten()
                .map(|s| GeneralNameOwned::from_x509(&s.base))
                .collect::<Option<Vec<_>>>()
        };
        Some(Self {
            permitted: convert(&nc.permitted_subtrees)?,
            excluded: convert(&nc.excluded_subtrees)?,
        })
    }

    /// Parses the contents of a NameConstraints SEQUENCE (a `TrustAnchor`'s constraints).
    fn from_contents(contents: &[u8]) -> Option<Self> {
        let der = wrap_sequence(contents);
        match X509NameConstraints::from_der(&der) {
            Ok(([], nc)) => Self::from_x509(&nc),
            _ => None,
        }
    }

    /// Number of subtrees.
    fn len(&self) -> usize {
        self.permitted.len() + self.excluded.len()
    }
}

// ---------------------------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------------------------

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
    fn from_spki(spki: &SubjectPublicKeyInfo<'_>) -> Self {
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
fn has_explicit_ec_params(spki: &SubjectPublicKeyInfo<'_>) -> bool {
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
    fn from_oid(o: &[u8]) -> Option<Self> {
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
    fn matches_key(self, kind: KeyKind) -> bool {
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
struct NsCertType {
    /// SSL server.
    ssl_server: bool,
    /// SSL client.
    ssl_client: bool,
    /// Any CA bit (SSL CA, S/MIME CA, object-signing CA).
    any_ca: bool,
    /// SSL CA.
    ssl_ca: bool,
}

/// What the verifier uses from a certificate's extensions (OpenSSL's cached `ex_*` fields).
#[derive(Clone, Debug, Default)]
pub(crate) struct Extensions {
    /// A cached extension was malformed or repeated (`EXFLAG_INVALID`).
    invalid: bool,
    /// A critical extension OpenSSL does not support (`EXFLAG_CRITICAL`).
    unhandled_critical: bool,
    /// An RFC 3820 proxyCertInfo extension (`EXFLAG_PROXY`).
    proxy: bool,
    /// basicConstraints: (cA, pathLenConstraint).
    basic_constraints: Option<(bool, Option<u32>)>,
    /// keyUsage bits (bit n = KeyUsage bit n).
    pub(crate) key_usage: Option<u16>,
    /// Whether an extendedKeyUsage is present, and if so whether it allows TLS servers.
    server_eku: Option<bool>,
    /// Whether an extendedKeyUsage is present, and if so whether it allows TLS clients
    /// (clientAuth; anyExtendedKeyUsage does not count).
    client_eku: Option<bool>,
    /// Netscape certificate type.
    ns_cert_type: Option<NsCertType>,
    /// subjectKeyIdentifier.
    pub(crate) skid: Option<Vec<u8>>,
    /// authorityKeyIdentifier.
    pub(crate) akid: Option<Akid>,
    /// subjectAltName entries.
    san: Vec<GeneralNameOwned>,
    /// nameConstraints.
    name_constraints: Option<NameConstraints>,
    /// cRLDistributionPoints.
    pub(crate) crl_dps: Vec<DistPoint>,
}

/// keyUsage bit for keyCertSign.
const KU_KEY_CERT_SIGN: u16 = 1 << 5;
/// keyUsage bit for cRLSign.
pub(crate) const KU_CRL_SIGN: u16 = 1 << 6;
/// keyUsage bits a TLS server key needs one of (`KU_TLS`): digitalSignature, keyEncipherment,
/// keyAgreement.
const KU_TLS: u16 = 1 | (1 << 2) | (1 << 4);
/// keyUsage bits a TLS client key needs one of: digitalSignature, keyAgreement.
const KU_TLS_CLIENT: u16 = 1 | (1 << 4);

/// The purpose a chain is verified for (`X509_PURPOSE`): what libpq checks of a server, or
/// what the PostgreSQL server checks of a client certificate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// `ssl_server`: libpq verifying the server.
    #[default]
    SslServer,
    /// `ssl_client`: the PostgreSQL server verifying a client certificate.
    SslClient,
}

impl Extensions {
    /// Extracts the extensions; `issuer` resolves relative CRL distribution point names.
    fn parse(extensions: &[X509Extension<'_>], issuer: &Name) -> Self {
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
    fn absorb(&mut self, parsed: &ParsedExtension<'_>, issuer: &Name) -> Option<()> {
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
fn dist_point(
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
struct SubjectNames {
    /// emailAddress values; `None` for one that is not an IA5String (invalid syntax).
    emails: Vec<Option<Vec<u8>>>,
    /// commonName values that look like DNS names (`cn2dnsid`).
    dns_like_cns: Vec<Vec<u8>>,
    /// A commonName could not be converted or has an embedded NUL.
    cn_syntax_error: bool,
}

impl SubjectNames {
    /// Extracts the emailAddress and commonName attributes of a subject.
    fn from_x509(name: &X509Name<'_>) -> Self {
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
fn cn_to_dns_id(tag: u32, data: &[u8]) -> Result<Option<Vec<u8>>, ()> {
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
    der: Vec<u8>,
    /// The signed TBSCertificate bytes.
    tbs: Vec<u8>,
    /// Outer signatureAlgorithm contents (what the signature is verified with).
    signature_alg: Vec<u8>,
    /// The signature bits.
    signature: Vec<u8>,
    /// The complete DER SubjectPublicKeyInfo.
    pub(crate) spki: Vec<u8>,
    /// Type of the subject public key.
    key_kind: KeyKind,
    /// An EC key with explicit curve parameters instead of a named curve.
    ec_explicit_params: bool,
    /// Key type needed by the TBS `signature` algorithm (`None`: unknown algorithm).
    signed_with: Option<SigKind>,
    /// Canonical subject.
    pub(crate) subject: Name,
    /// Canonical issuer.
    pub(crate) issuer: Name,
    /// Serial number (normalised INTEGER contents).
    pub(crate) serial: Vec<u8>,
    /// notBefore, seconds since the Unix epoch.
    not_before: i64,
    /// notAfter, seconds since the Unix epoch.
    not_after: i64,
    /// X.509 v1 (`EXFLAG_V1`).
    is_v1: bool,
    /// Extensions.
    pub(crate) ext: Extensions,
    /// Subject attributes for name constraints.
    subject_names: SubjectNames,
    /// Subject equals issuer (`EXFLAG_SI`).
    self_issued: bool,
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
    fn time_valid(&self, now: i64) -> bool {
        self.not_before <= now && now < self.not_after
    }

    /// OpenSSL's `check_ca`: 0 not a CA, 1 a CA by basicConstraints, 3 a v1 self-signed root,
    /// 4 no basicConstraints but keyUsage with keyCertSign, 5 a Netscape CA type.
    fn ca_kind(&self) -> u8 {
        if self
            .ext
            .key_usage
            .is_some_and(|ku| ku & KU_KEY_CERT_SIGN == 0)
        {
            return 0;
        }
        if let Some((ca, _)) = self.ext.basic_constraints {
            return u8::from(ca);
        }
        if self.is_v1 && self.self_signed {
            3
        } else if self.ext.key_usage.is_some() {
            4
        } else if self.ext.ns_cert_type.is_some_and(|ns| ns.any_ca) {
            5
        } else {
            0
        }
    }

    /// The `ssl_server` purpose for the leaf (`check_purpose_ssl_server`, not a CA): EKU (if
    /// any) has serverAuth or SGC, Netscape type (if any) has SSL server, keyUsage (if any) has
    /// digitalSignature, keyEncipherment or keyAgreement. anyExtendedKeyUsage does not count.
    fn is_tls_server_leaf(&self) -> bool {
        self.ext.server_eku != Some(false)
            && self.ext.ns_cert_type.is_none_or(|ns| ns.ssl_server)
            && self.ext.key_usage.is_none_or(|ku| ku & KU_TLS != 0)
    }

    /// The `ssl_server` purpose for a CA (`check_ssl_ca`): the EKU (if any) allows TLS servers,
    /// and a CA known only by its Netscape type must be an SSL CA.
    fn is_tls_server_ca(&self) -> bool {
        self.ext.server_eku != Some(false) && self.is_ssl_ca()
    }

    /// The `ssl_client` purpose for the leaf (`check_purpose_ssl_client`): EKU (if any) has
    /// clientAuth, keyUsage (if any) has digitalSignature or keyAgreement, Netscape type (if
    /// any) has SSL client.
    fn is_tls_client_leaf(&self) -> bool {
        self.ext.client_eku != Some(false)
            && self.ext.key_usage.is_none_or(|ku| ku & KU_TLS_CLIENT != 0)
            && self.ext.ns_cert_type.is_none_or(|ns| ns.ssl_client)
    }

    /// The `ssl_client` purpose for a CA: the EKU (if any) allows TLS clients, and
    /// `check_ssl_ca`.
    fn is_tls_client_ca(&self) -> bool {
        self.ext.client_eku != Some(false) && self.is_ssl_ca()
    }

    /// `check_ssl_ca`'s Netscape part: a CA known only by its Netscape type must be an SSL CA.
    fn is_ssl_ca(&self) -> bool {
        self.ca_kind() != 5 || self.ext.ns_cert_type.is_some_and(|ns| ns.ssl_ca)
    }

    /// Whether the certificate at this place of a path (leaf or above) fits `purpose`.
    fn fits_purpose(&self, purpose: Purpose, is_leaf: bool) -> bool {
        match (purpose, is_leaf) {
            (Purpose::SslServer, true) => self.is_tls_server_leaf(),
            (Purpose::SslServer, false) => self.is_tls_server_ca(),
            (Purpose::SslClient, true) => self.is_tls_client_leaf(),
            (Purpose::SslClient, false) => self.is_tls_client_ca(),
        }
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
fn likely_issued(issuer: &Cert, subject: &Cert) -> bool {
    !issuer.ext.invalid
        && !subject.ext.invalid
        && issuer.subject == subject.issuer
        && akid_matches(issuer, subject.ext.akid.as_ref())
        && subject
            .signed_with
            .is_some_and(|s| s.matches_key(issuer.key_kind))
}

// ---------------------------------------------------------------------------------------------
// Trust store
// ---------------------------------------------------------------------------------------------

/// A trust anchor known only by subject and key (webpki-roots' `TrustAnchor`s).
#[derive(Clone, Debug)]
pub(crate) struct BareAnchor {
    /// Canonical subject.
    subject: Name,
    /// Complete DER SubjectPublicKeyInfo.
    spki: Vec<u8>,
    /// Key type.
    key_kind: KeyKind,
    /// Name constraints carried by the anchor.
    name_constraints: Option<NameConstraints>,
}

impl BareAnchor {
    /// Converts a `TrustAnchor`; `None` if its subject, key or constraints do not parse (the
    /// anchor is then left out rather than used without its constraints).
    fn from_trust_anchor(anchor: &TrustAnchor<'_>) -> Option<Self> {
        let subject = Name::from_contents(anchor.subject.as_ref())?;
        let spki = wrap_sequence(anchor.subject_public_key_info.as_ref());
        let key_kind = match SubjectPublicKeyInfo::from_der(&spki) {
            Ok(([], parsed)) => KeyKind::from_spki(&parsed),
            _ => return None,
        };
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
    certs: Vec<Cert>,
    /// `certs` indexes by canonical subject.
    certs_by_subject: HashMap<Name, Vec<usize>>,
    /// DER of every self-signed root-file certificate (exact-match trust of a presented copy).
    trusted_der: HashSet<Vec<u8>>,
    /// Anchors given as subject and key.
    anchors: Vec<BareAnchor>,
    /// `anchors` indexes by canonical subject.
    anchors_by_subject: HashMap<Name, Vec<usize>>,
    /// CRLs (root files only).
    crls: CrlSet,
    /// Whether CRLs are required for every certificate (libpq sets the OpenSSL CRL flags only when
    /// its CRL file or directory loaded).
    crl_check: bool,
    /// What the chain is verified for (`ssl_server` unless set).
    purpose: Purpose,
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
    fn add_cert(&mut self, cert: Cert) {
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
            now: i64::try_from(now.as_secs()).unwrap_or(i64::MAX),
            algs,
        };
        let primary = verifier.build(&leaf);
        let failure = match &primary {
            Ok(path) => match verifier.validate(path) {
                Ok(()) => return Ok(()),
                Err(failure) => failure,
            },
            Err(failure) => *failure,
        };
        let mut search = AlternativeSearch::new(primary.ok());
        if search.run(&verifier, &leaf) {
            Ok(())
        } else {
            Err(failure)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------------

/// One element of a path: a certificate (with whether it is a trust anchor), or a bare anchor,
/// which can only be the top.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Link<'a> {
    /// A certificate; `trusted` for a self-signed root-file certificate (or an exact copy of one).
    Cert {
        /// The certificate.
        cert: &'a Cert,
        /// Whether it ends the path as a trust anchor.
        trusted: bool,
    },
    /// A subject + key trust anchor.
    Anchor(&'a BareAnchor),
}

impl<'a> Link<'a> {
    /// The certificate, unless this is a bare anchor.
    pub(crate) fn cert(&self) -> Option<&'a Cert> {
        match self {
            Self::Cert { cert, .. } => Some(cert),
            Self::Anchor(_) => None,
        }
    }

    /// Whether the path may end here.
    fn is_trusted(&self) -> bool {
        match self {
            Self::Cert { trusted, .. } => *trusted,
            Self::Anchor(_) => true,
        }
    }

    /// The DER SubjectPublicKeyInfo.
    fn spki(&self) -> &'a [u8] {
        match self {
            Self::Cert { cert, .. } => &cert.spki,
            Self::Anchor(a) => &a.spki,
        }
    }

    /// Name constraints imposed on everything below.
    fn name_constraints(&self) -> Option<&'a NameConstraints> {
        match self {
            Self::Cert { cert, .. } => cert.ext.name_constraints.as_ref(),
            Self::Anchor(a) => a.name_constraints.as_ref(),
        }
    }

    /// Identity for loop detection and path comparison.
    fn id(&self) -> *const u8 {
        match self {
            Self::Cert { cert, .. } => cert.der.as_ptr(),
            Self::Anchor(a) => a.spki.as_ptr(),
        }
    }
}

/// One verification: the store, the presented certificates, the time and the algorithms.
struct Verifier<'a> {
    /// The trust store.
    store: &'a TrustStore,
    /// Parsed presented intermediates, in the order received.
    presented: &'a [Cert],
    /// Verification time, seconds since the Unix epoch.
    now: i64,
    /// The provider's signature algorithms.
    algs: &'a WebPkiSupportedAlgorithms,
}

/// The issuer found in the store for a certificate.
#[derive(Clone, Copy)]
enum StoreIssuer<'a> {
    /// A root-file certificate.
    Cert(&'a Cert),
    /// A bare anchor.
    Anchor(&'a BareAnchor),
}

impl<'a> Verifier<'a> {
    /// Whether `cert` is a trust anchor: self-signed and byte-identical to a root-file certificate.
    fn is_trusted(&self, cert: &Cert) -> bool {
        cert.self_signed && self.store.trusted_der.contains(&cert.der)
    }

    /// A path link for `cert`.
    fn link(&self, cert: &'a Cert) -> Link<'a> {
        Link::Cert {
            cert,
            trusted: self.is_trusted(cert),
        }
    }

    /// Picks among likely issuers like `get0_best_issuer_sk`: the first valid now, otherwise the
    /// one expiring last (the first of those on a tie).
    fn best_issuer(&self, candidates: impl Iterator<Item = &'a Cert>) -> Option<&'a Cert> {
        let mut best: Option<&'a Cert> = None;
        for candidate in candidates {
            if candidate.time_valid(self.now) {
                return Some(candidate);
            }
            if best.is_none_or(|b| candidate.not_after > b.not_after) {
                best = Some(candidate);
            }
        }
        best
    }

    /// Issuer lookup in the store (`X509_STORE_CTX_get1_issuer`), then among bare anchors whose
    /// key type fits.
    fn store_issuer(&self, cert: &Cert) -> Option<StoreIssuer<'a>> {
        let store = self.store;
        let certs = store
            .certs_by_subject
            .get(&cert.issuer)
            .into_iter()
            .flatten()
            .map(|&i| &store.certs[i])
            .filter(|c| likely_issued(c, cert));
        if let Some(found) = self.best_issuer(certs) {
            return Some(StoreIssuer::Cert(found));
        }
        store
            .anchors_by_subject
            .get(&cert.issuer)
            .into_iter()
            .flatten()
            .map(|&i| &store.anchors[i])
            .find(|a| {
                !cert.ext.invalid && cert.signed_with.is_some_and(|s| s.matches_key(a.key_kind))
            })
            .map(StoreIssuer::Anchor)
    }

    /// OpenSSL's `build_chain` with trusted-first and no partial chains.
    fn build(&self, leaf: &'a Cert) -> Result<Vec<Link<'a>>, ChainFailure> {
        let mut chain = vec![Link::Cert {
            cert: leaf,
            trusted: false,
        }];
        let mut num_untrusted = 1;
        let mut pool: Vec<&'a Cert> = self.presented.iter().collect();
        let mut search_untrusted = true;
        while let Some(current) = chain.last().and_then(Link::cert) {
            let too_long = chain.len() > MAX_VERIFY_DEPTH + 1;
            match (!too_long).then(|| self.store_issuer(current)).flatten() {
                // A self-signed certificate is trusted only through an exact copy in the store;
                // anything else with its name is a mimic and ignored.
                Some(StoreIssuer::Cert(issuer))
                    if current.self_signed && issuer.der == current.der && issuer.self_signed =>
                {
                    chain.pop();
                    chain.push(self.link(issuer));
                    return Ok(chain);
                }
                Some(StoreIssuer::Cert(_)) if current.self_signed => {}
                Some(StoreIssuer::Cert(issuer)) => {
                    let link = self.link(issuer);
                    chain.push(link);
                    search_untrusted = false;
                    if link.is_trusted() {
                        return Ok(chain);
                    }
                    continue;
                }
                Some(StoreIssuer::Anchor(anchor)) => {
                    chain.push(Link::Anchor(anchor));
                    return Ok(chain);
                }
                None => {}
            }
            if !search_untrusted {
                break;
            }
            let next = if current.self_signed || too_long {
                None
            } else {
                self.untrusted_issuer(&pool, current, &chain)
            };
            match next {
                Some(issuer) => {
                    pool.retain(|c| !std::ptr::eq(*c, issuer));
                    chain.push(Link::Cert {
                        cert: issuer,
                        trusted: false,
                    });
                    num_untrusted += 1;
                }
                None => search_untrusted = false,
            }
        }
        Err(self.build_failure(&chain, num_untrusted))
    }

    /// Issuer among the remaining presented certificates (`get0_best_issuer_sk` with `no_dup`).
    fn untrusted_issuer(
        &self,
        pool: &[&'a Cert],
        current: &Cert,
        chain: &[Link<'a>],
    ) -> Option<&'a Cert> {
        let allow_dup = current.self_issued && chain.len() == 1;
        let in_chain = |c: &Cert| chain.iter().filter_map(Link::cert).any(|x| x.der == c.der);
        self.best_issuer(
            pool.iter()
                .copied()
                .filter(|c| allow_dup || !in_chain(c))
                .filter(|c| likely_issued(c, current)),
        )
    }

    /// The error `build_chain` reports for an untrusted chain, at the top certificate's depth.
    fn build_failure(&self, chain: &[Link<'a>], num_untrusted: usize) -> ChainFailure {
        let depth = chain.len() - 1;
        let error = if chain.len() > MAX_VERIFY_DEPTH + 1 {
            ChainError::CertChainTooLong
        } else if chain
            .last()
            .and_then(Link::cert)
            .is_some_and(|c| c.self_signed)
        {
            if chain.len() == 1 {
                ChainError::DepthZeroSelfSignedCert
            } else {
                ChainError::SelfSignedCertInChain
            }
        } else if num_untrusted < chain.len() {
            ChainError::UnableToGetIssuerCert
        } else {
            ChainError::UnableToGetIssuerCertLocally
        };
        ChainFailure::at(error, depth)
    }

    /// Runs every check on a complete path, in `verify_chain`'s order.
    fn validate(&self, path: &[Link<'a>]) -> Result<(), ChainFailure> {
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
    fn check_revocation(&self, path: &[Link<'a>]) -> Result<(), ChainFailure> {
        for (depth, link) in path.iter().enumerate() {
            if link.cert().is_none() {
                continue;
            }
            check_certificate_crl(&self.store.crls, path, depth, self.now, self.algs)
                .map_err(|e| ChainFailure::at(e, depth))?;
        }
        Ok(())
    }

    /// `internal_verify`: from the top down, each signature with its issuer's key (not the
    /// anchor's self-signature), then the validity period of each certificate (anchor included;
    /// a bare anchor has none).
    fn check_signatures_and_times(&self, path: &[Link<'a>]) -> Result<(), ChainFailure> {
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

    /// Verifies `cert`'s signature with `issuer_spki` through the provider.
    fn check_signature(&self, cert: &Cert, issuer_spki: &[u8]) -> Result<(), ChainError> {
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
    fn check_time(&self, cert: &Cert, depth: usize) -> Result<(), ChainFailure> {
        if self.now < cert.not_before {
            return Err(ChainFailure::at(ChainError::CertNotYetValid, depth));
        }
        if self.now >= cert.not_after {
            return Err(ChainFailure::at(ChainError::CertHasExpired, depth));
        }
        Ok(())
    }
}

/// `check_extensions` for `purpose` (`ssl_server` or `ssl_client`): per certificate from the leaf up, unhandled
/// critical extensions, proxy certificates, CA-ness of issuers (`X509_check_ca`: intermediates
/// need basicConstraints cA; the top may also be a v1 self-signed root, a keyUsage-only or a
/// Netscape CA), explicit EC parameters (chains longer than one), the purpose, and path length
/// constraints (self-issued intermediates not counted).
fn check_extensions(path: &[Link<'_>], purpose: Purpose) -> Result<(), ChainFailure> {
    let num = path.len();
    let mut plen: u64 = 0;
    for (i, link) in path.iter().enumerate() {
        let Some(cert) = link.cert() else { continue };
        let fail = |error| Err(ChainFailure::at(error, i));
        if cert.ext.unhandled_critical {
            return fail(ChainError::UnhandledCriticalExtension);
        }
        if cert.ext.proxy {
            return fail(ChainError::ProxyCertificatesNotAllowed);
        }
        if i > 0 {
            let kind = cert.ca_kind();
            if kind == 0 || (i + 1 < num && kind != 1) {
                return fail(ChainError::InvalidCa);
            }
        }
        if num > 1 && cert.ec_explicit_params {
            return fail(ChainError::EcKeyExplicitParams);
        }
        if !cert.fits_purpose(purpose, i == 0) {
            return fail(ChainError::InvalidPurpose);
        }
        if let Some((_, Some(max))) = cert.ext.basic_constraints {
            if i > 1 && plen > u64::from(max) {
                return fail(ChainError::PathLengthExceeded);
            }
        }
        if i > 0 && !cert.self_issued {
            plen += 1;
        }
    }
    Ok(())
}

/// `check_auth_level` at security level 2: every key above the leaf, the trust anchor's (or bare
/// anchor's) included (the leaf's was checked before the chain was built).
fn check_ca_key_strength(path: &[Link<'_>]) -> Result<(), ChainFailure> {
    match path
        .iter()
        .enumerate()
        .skip(1)
        .find(|(_, link)| !meets_security_level_2(link.spki()))
    {
        Some((depth, _)) => Err(ChainFailure::at(ChainError::CaKeyTooSmall, depth)),
        None => Ok(()),
    }
}

/// `check_name_constraints`: from the top down, every certificate (except self-issued
/// intermediates) against the constraints of every certificate or anchor above it.
fn check_name_constraints(path: &[Link<'_>]) -> Result<(), ChainFailure> {
    let num = path.len();
    for i in (0..num).rev() {
        let Some(cert) = path[i].cert() else { continue };
        if i != 0 && cert.self_issued {
            continue;
        }
        for j in ((i + 1)..num).rev() {
            if let Some(nc) = path[j].name_constraints() {
                check_names_against(cert, nc, i == 0).map_err(|e| ChainFailure::at(e, i))?;
            }
        }
    }
    Ok(())
}

/// `NAME_CONSTRAINTS_check` (+ `NAME_CONSTRAINTS_check_CN` for a leaf without DNS SANs, as in
/// OpenSSL 3.0–3.4): the subject as a directoryName, its emailAddress attributes, every SAN, and
/// host-name-like commonNames.
fn check_names_against(cert: &Cert, nc: &NameConstraints, is_leaf: bool) -> Result<(), ChainError> {
    let names = cert.subject.entry_count() + cert.ext.san.len();
    if names > 0 && nc.len() > NAME_CHECK_MAX / names {
        return Err(ChainError::Unspecified);
    }
    if cert.subject.entry_count() > 0 {
        nc_match(&GeneralNameOwned::Directory(cert.subject.clone()), nc)?;
        for email in &cert.subject_names.emails {
            let email = email.as_ref().ok_or(ChainError::UnsupportedNameSyntax)?;
            nc_match(&GeneralNameOwned::Email(email.clone()), nc)?;
        }
    }
    for name in &cert.ext.san {
        nc_match(name, nc)?;
    }
    let has_dns_san = cert
        .ext
        .san
        .iter()
        .any(|n| matches!(n, GeneralNameOwned::Dns(_)));
    if is_leaf && !has_dns_san {
        if cert.subject_names.cn_syntax_error {
            return Err(ChainError::UnsupportedNameSyntax);
        }
        for cn in &cert.subject_names.dns_like_cns {
            nc_match(&GeneralNameOwned::Dns(cn.clone()), nc)?;
        }
    }
    Ok(())
}

/// `nc_match`: if any permitted subtree has the name's type one must match; no excluded subtree
/// of that type may match.
fn nc_match(name: &GeneralNameOwned, nc: &NameConstraints) -> Result<(), ChainError> {
    let mut permitted_of_type = false;
    let mut permitted_match = false;
    for base in nc.permitted.iter().filter(|b| name.constrained_by(b)) {
        permitted_of_type = true;
        if permitted_match {
            continue;
        }
        match nc_match_single(name, base) {
            Ok(()) => permitted_match = true,
            Err(ChainError::PermittedViolation) => {}
            Err(e) => return Err(e),
        }
    }
    if permitted_of_type && !permitted_match {
        return Err(ChainError::PermittedViolation);
    }
    for base in nc.excluded.iter().filter(|b| name.constrained_by(b)) {
        match nc_match_single(name, base) {
            Ok(()) => return Err(ChainError::ExcludedViolation),
            Err(ChainError::PermittedViolation) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `nc_match_single`: one name against one subtree of the same type.
fn nc_match_single(name: &GeneralNameOwned, base: &GeneralNameOwned) -> Result<(), ChainError> {
    use GeneralNameOwned as G;
    let ok = |b: bool| {
        if b {
            Ok(())
        } else {
            Err(ChainError::PermittedViolation)
        }
    };
    match (name, base) {
        (G::Directory(n), G::Directory(b)) => ok(b.is_prefix_of(n)),
        (G::Dns(n), G::Dns(b)) => ok(nc_dns(n, b)),
        (G::Email(n), G::Email(b)) => nc_email(n, b),
        (G::Uri(n), G::Uri(b)) => nc_uri(n, b),
        (G::Ip(n), G::Ip(b)) => nc_ip(n, b),
        _ => Err(ChainError::UnsupportedConstraintType),
    }
}

/// ASCII case-insensitive equality.
fn eq_ignore_case(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// `nc_dns`: empty base matches all; otherwise a suffix match on a label boundary.
fn nc_dns(dns: &[u8], base: &[u8]) -> bool {
    if base.is_empty() {
        return true;
    }
    if dns.len() < base.len() {
        return false;
    }
    let offset = dns.len() - base.len();
    if offset > 0 && base[0] != b'.' && dns[offset - 1] != b'.' {
        return false;
    }
    eq_ignore_case(&dns[offset..], base)
}

/// `nc_email`: `.domain` matches subdomains, `local@host` is exact (local part case-sensitive),
/// `host` matches the host part.
fn nc_email(email: &[u8], base: &[u8]) -> Result<(), ChainError> {
    let email_at = email
        .iter()
        .rposition(|b| *b == b'@')
        .ok_or(ChainError::UnsupportedNameSyntax)?;
    let base_at = base.iter().rposition(|b| *b == b'@');
    if base_at.is_none() && base.first() == Some(&b'.') {
        let matched =
            email.len() > base.len() && eq_ignore_case(&email[email.len() - base.len()..], base);
        return if matched {
            Ok(())
        } else {
            Err(ChainError::PermittedViolation)
        };
    }
    let mut base_host = base;
    if let Some(at) = base_at {
        if at != 0 {
            let (base_local, email_local) = (&base[..at], &email[..email_at]);
            if base_local.len() != email_local.len() {
                return Err(ChainError::PermittedViolation);
            }
            if base_local.contains(&0) || email_local.contains(&0) {
                return Err(ChainError::UnsupportedNameSyntax);
            }
            if base_local != email_local {
                return Err(ChainError::PermittedViolation);
            }
        }
        base_host = &base[at + 1..];
    }
    let email_host = &email[email_at + 1..];
    if base_host.len() == email_host.len() && eq_ignore_case(base_host, email_host) {
        Ok(())
    } else {
        Err(ChainError::PermittedViolation)
    }
}

/// `nc_uri`: the host part of `scheme://host[:port][/…]` against a host or `.domain`.
fn nc_uri(uri: &[u8], base: &[u8]) -> Result<(), ChainError> {
    let colon = uri
        .iter()
        .position(|b| *b == b':')
        .ok_or(ChainError::UnsupportedNameSyntax)?;
    if uri.len() < colon + 3 || uri[colon + 1] != b'/' || uri[colon + 2] != b'/' {
        return Err(ChainError::UnsupportedNameSyntax);
    }
    let host_and_rest = &uri[colon + 3..];
    let host_end = host_and_rest
        .iter()
        .position(|b| *b == b':')
        .or_else(|| host_and_rest.iter().position(|b| *b == b'/'))
        .unwrap_or(host_and_rest.len());
    let host = &host_and_rest[..host_end];
    if host.is_empty() {
        return Err(ChainError::UnsupportedNameSyntax);
    }
    let matched = if base.first() == Some(&b'.') {
        host.len() > base.len() && eq_ignore_case(&host[host.len() - base.len()..], base)
    } else {
        eq_ignore_case(host, base)
    };
    if matched {
        Ok(())
    } else {
        Err(ChainError::PermittedViolation)
    }
}

/// `nc_ip`: address and mask; IPv4 never matches IPv6.
fn nc_ip(ip: &[u8], base: &[u8]) -> Result<(), ChainError> {
    if !matches!(ip.len(), 4 | 16) || !matches!(base.len(), 8 | 32) {
        return Err(ChainError::UnsupportedNameSyntax);
    }
    if ip.len() * 2 != base.len() {
        return Err(ChainError::PermittedViolation);
    }
    let (addr, mask) = base.split_at(ip.len());
    let matched = ip
        .iter()
        .zip(addr)
        .zip(mask)
        .all(|((h, a), m)| h & m == a & m);
    if matched {
        Ok(())
    } else {
        Err(ChainError::PermittedViolation)
    }
}

// ---------------------------------------------------------------------------------------------
// Alternative paths
// ---------------------------------------------------------------------------------------------

/// Bounded depth-first search for another valid path when the OpenSSL-like one fails.
struct AlternativeSearch<'a> {
    /// The OpenSSL-like path (already validated; skipped).
    primary: Option<Vec<*const u8>>,
    /// Remaining node visits.
    steps: usize,
    /// Remaining pruning signature checks.
    signatures: usize,
    /// Remaining full validations.
    validations: usize,
    /// The path under construction.
    path: Vec<Link<'a>>,
}

impl<'a> AlternativeSearch<'a> {
    /// A search that skips `primary`.
    fn new(primary: Option<Vec<Link<'a>>>) -> Self {
        Self {
            primary: primary.map(|p| p.iter().map(Link::id).collect()),
            steps: MAX_ALTERNATIVE_STEPS,
            signatures: MAX_ALTERNATIVE_SIGNATURES,
            validations: MAX_ALTERNATIVE_VALIDATIONS,
            path: Vec::new(),
        }
    }

    /// Whether some path from `leaf` passes every check.
    fn run(&mut self, verifier: &Verifier<'a>, leaf: &'a Cert) -> bool {
        self.path.push(verifier.link(leaf));
        self.extend(verifier)
    }

    /// Explores issuers of the path's top.
    fn extend(&mut self, verifier: &Verifier<'a>) -> bool {
        if self.steps == 0 {
            return false;
        }
        self.steps -= 1;
        let Some(top) = self.path.last().copied() else {
            return false;
        };
        if top.is_trusted() {
            return self.try_validate(verifier);
        }
        let Some(current) = top.cert() else {
            return false;
        };
        if current.self_signed || self.path.len() >= MAX_ALTERNATIVE_PATH_LEN {
            return false;
        }
        for candidate in self.candidates(verifier, current) {
            if self.path.iter().any(|l| l.id() == candidate.id()) {
                continue;
            }
            if !self.signature_plausible(verifier, current, candidate) {
                continue;
            }
            self.path.push(candidate);
            if self.extend(verifier) {
                return true;
            }
            self.path.pop();
        }
        false
    }

    /// Possible issuers: anchors and root-file certificates first, then presented certificates.
    fn candidates(&self, verifier: &Verifier<'a>, current: &Cert) -> Vec<Link<'a>> {
        let store = verifier.store;
        let mut out: Vec<Link<'a>> = store
            .anchors_by_subject
            .get(&current.issuer)
            .into_iter()
            .flatten()
            .map(|&i| Link::Anchor(&store.anchors[i]))
            .collect();
        let from_store = store
            .certs_by_subject
            .get(&current.issuer)
            .into_iter()
            .flatten()
            .map(|&i| &store.certs[i]);
        let mut certs: Vec<Link<'a>> = from_store
            .chain(verifier.presented.iter())
            .filter(|c| likely_issued(c, current))
            .map(|c| verifier.link(c))
            .collect();
        certs.sort_by_key(|l| !l.is_trusted());
        out.extend(certs);
        out
    }

    /// Prunes with a signature check while the budget lasts (afterwards, validation decides).
    fn signature_plausible(
        &mut self,
        verifier: &Verifier<'a>,
        cert: &Cert,
        issuer: Link<'a>,
    ) -> bool {
        if self.signatures == 0 {
            return true;
        }
        self.signatures -= 1;
        verifier.check_signature(cert, issuer.spki()).is_ok()
    }

    /// Fully validates the current path unless it is the primary one or the budget is spent.
    fn try_validate(&mut self, verifier: &Verifier<'a>) -> bool {
        let ids: Vec<*const u8> = self.path.iter().map(Link::id).collect();
        if self.primary.as_ref() == Some(&ids) || self.validations == 0 {
            return false;
        }
        self.validations -= 1;
        verifier.validate(&self.path).is_ok()
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Certificate factories shared by the verification tests.

    use super::super::signature::{read_tlv, split_signed, TAG_BIT_STRING, TAG_SEQUENCE};
    use rcgen::{KeyPair, SigningKey};
    use rustls::SignatureScheme;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

    /// DER-encodes `contents` under `tag`.
    pub(crate) fn der(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = contents.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
        out.extend_from_slice(contents);
        out
    }

    /// Re-encodes `v3` as an X.509 v1 certificate (no version, no extensions) and signs it with
    /// `signer`, which must be the key of `v3`'s issuer (its TBS signature algorithm is kept).
    pub(crate) fn make_v1(v3: &[u8], signer: &KeyPair) -> CertificateDer<'static> {
        let parts = split_signed(v3).expect("signed structure");
        let (tbs, _) = read_tlv(parts.tbs).expect("tbs");
        let mut fields = Vec::new();
        let mut rest = tbs.value;
        while let Some((field, next)) = read_tlv(rest) {
            // Drop [0] version and [3] extensions.
            if field.tag != 0xa0 && field.tag != 0xa3 {
                fields.extend_from_slice(field.raw);
            }
            rest = next;
        }
        let new_tbs = der(TAG_SEQUENCE, &fields);
        resign(&new_tbs, parts.signature_alg, signer)
    }

    /// Assembles a certificate from a TBS, signing it with `signer` under `signature_alg`.
    pub(crate) fn resign(
        tbs: &[u8],
        signature_alg: &[u8],
        signer: &KeyPair,
    ) -> CertificateDer<'static> {
        let signature = signer.sign(tbs).expect("sign");
        let mut bits = vec![0u8];
        bits.extend_from_slice(&signature);
        let mut body = tbs.to_vec();
        body.extend(der(TAG_SEQUENCE, signature_alg));
        body.extend(der(TAG_BIT_STRING, &bits));
        CertificateDer::from(der(TAG_SEQUENCE, &body))
    }

    /// Signs a TLS handshake message with `key` under `scheme`, through the rustls provider.
    pub(crate) fn sign_with(key: &KeyPair, scheme: SignatureScheme, message: &[u8]) -> Vec<u8> {
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signing_key =
            rustls::crypto::aws_lc_rs::sign::any_supported_type(&der).expect("supported key");
        let signer = signing_key
            .choose_scheme(&[scheme])
            .expect("scheme offered");
        signer.sign(message).expect("signature")
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{der, make_v1, resign};
    use super::*;
    use crate::verify::signature::{read_tlv, split_signed};
    use rcgen::{
        BasicConstraints, CertificateParams, CertificateRevocationListParams, CidrSubnet,
        CrlDistributionPoint, CrlIssuingDistributionPoint, CrlScope, CustomExtension, DnType,
        DnValue, ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyIdMethod, KeyPair,
        KeyUsagePurpose, RevocationReason, RevokedCertParams, SanType, SerialNumber,
    };
    use rustls_pki_types::pem::PemObject;
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};
    use time::OffsetDateTime;

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
        fn write(
            path: &Path,
            certs: &[CertificateDer<'_>],
            crls: &[CertificateRevocationListDer<'_>],
        ) {
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
        Case::new(&[&root], &[], &bad_san)
            .expect(Err((ChainError::UnableToGetIssuerCertLocally, 0)));
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
    fn leaf_signed_by_wrong_ca() {
        let root = self_signed(ca("Test Root"));
        let impostor = self_signed(ca("Test Root"));
        let mut p = leaf("db.example.com");
        p.use_authority_key_identifier_extension = false;
        let forged = issue(p, &impostor);
        Case::new(&[&root], &[], &forged).expect(Err((ChainError::CertSignatureFailure, 0)));
        // With an AKID, the impostor's key id does not match: no issuer at all.
        let forged = issue(leaf("db.example.com"), &impostor);
        Case::new(&[&root], &[], &forged)
            .expect(Err((ChainError::UnableToGetIssuerCertLocally, 0)));
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
        let read =
            |name: &str| CertificateDer::from_pem_file(dir.join(name)).expect("pem certificate");
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
            let store =
                TrustStore::from_root_certs(&[read(&format!("{ca}.crt"))], &[]).expect("store");
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
        let (root, inter) =
            constrained(vec![GeneralSubtree::DnsName("example.com".into())], vec![]);
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
        let store =
            TrustStore::from_root_certs(std::slice::from_ref(&root.der), &[]).expect("store");
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
            TrustStore::from_root_certs(
                std::slice::from_ref(&root.der),
                &[crl(&root, &[]), bad_crl]
            )
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
        let store =
            TrustStore::from_root_certs(std::slice::from_ref(&root.der), &[]).expect("store");
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
        weak_key_case(&["weak-root"], &[], "leaf-rsa1024")
            .expect(Err((ChainError::EeKeyTooSmall, 0)));
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
            let (_, parsed) = SubjectPublicKeyInfo::from_der(&bytes).expect("spki");
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
}
