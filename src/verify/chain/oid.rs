//! Object identifiers used here, as DER contents (no tag/length).

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

/// id-kp-serverAuth (1.3.6.1.5.5.7.3.1).
pub(crate) const SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
/// id-kp-clientAuth (1.3.6.1.5.5.7.3.2).
pub(crate) const CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];
/// id-ce-cRLReasons (2.5.29.21), a CRL entry's reasonCode.
pub(crate) const REASON_CODE: &[u8] = &[0x55, 0x1d, 0x15];
