//! Why a chain was rejected: OpenSSL's `X509_V_ERR_*` reasons and their texts.

use std::fmt;

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
    pub(super) fn at(error: ChainError, depth: usize) -> Self {
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
