//! Errors, grouped by who is to blame, with libpq's wording wherever libpq has one.
//!
//! Two types:
//! - [`ConfigError`]: the settings are unusable. Raised when settings are built, before any
//!   connection, so nothing on the network can cause one.
//! - [`Error`]: something went wrong on a connection. [`Error::blame`] says whose fault it
//!   was; [`Error::allows_fallback`] says whether libpq's policy may try another
//!   encryption method after it (the planner asks this, see [`crate::plan`]).
//!
//! Messages are libpq's where libpq has a message for the situation, so they can be
//! searched for. The wrapped rustls error is kept as [`std::error::Error::source`].

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;

/// Who is responsible for an [`Error`] (the grouping rustls uses, extended for PostgreSQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Blame {
    /// The server broke the protocol: an invalid response byte, bytes glued to `S`, an
    /// error response during the SSL exchange, or the connection ending too early.
    Peer,
    /// The server's choice conflicts with the configured policy (it refused TLS under
    /// `require`, chose no or the wrong ALPN protocol, never asked for a certificate
    /// under `sslcertmode=require`).
    Policy,
    /// The TLS handshake or certificate verification failed.
    Tls,
    /// The peer tried to make pgtls hold more than its stated limits.
    Limit,
    /// The caller used the API out of order. Never caused by bytes from the network.
    Misuse,
    /// The server rejected the startup or authentication (reported by the driver).
    Server,
}

/// What went wrong with a certificate the server presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CertificateProblem {
    /// The chain did not verify against the root certificates (unknown CA, expired,
    /// revoked, missing CRL, ...).
    Chain,
    /// The chain verified but the certificate does not name the host (verify-full).
    HostName,
    /// The handshake signature made with the certificate's key was invalid.
    Signature,
    /// The certificate could not be parsed.
    Malformed,
}

/// An error on one connection attempt.
///
/// `#[non_exhaustive]`: match on [`Error::blame`] or the variants you care about, with a
/// catch-all arm. Cloning is cheap (sources are reference counted).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
    // --- Blame::Peer ---
    /// The response to `SSLRequest` was none of `S`, `N`, `E`.
    /// libpq: `received invalid response to SSL negotiation: <c>`.
    InvalidSslResponse(u8),
    /// The server sent bytes after `S` before our ClientHello (CVE-2021-23222).
    /// libpq: `received unencrypted data after SSL response`.
    UnencryptedDataAfterSslResponse,
    /// The server answered `SSLRequest` with `E` (CVE-2024-10977): the text is not read.
    /// libpq: `server sent an error response during SSL exchange`.
    ServerErrorDuringSslExchange,
    /// The server closed the connection before answering `SSLRequest`.
    ClosedBeforeSslResponse,
    /// The server closed the connection in the middle of the TLS handshake
    /// (OpenSSL/libpq: `SSL SYSCALL error: EOF detected`). A TLS failure for the policy.
    ClosedDuringHandshake,
    /// The TLS session ended without close_notify (possible truncation).
    UncleanEof,
    /// The transport failed in the middle of the TLS handshake (reset, broken pipe).
    /// Reported by adapters; a TLS failure for the policy, as libpq's
    /// `SSL SYSCALL error: ...`.
    HandshakeTransport(String),

    // --- Blame::Policy ---
    /// `N` under require, verify-ca or verify-full.
    /// libpq: `server does not support SSL, but SSL was required`.
    ServerRefusedSsl,
    /// Direct TLS completed but the server selected no ALPN protocol.
    /// libpq: `direct SSL connection was established without ALPN protocol negotiation extension`.
    AlpnNotNegotiated,
    /// The server selected an ALPN protocol other than `postgresql`.
    /// libpq: `SSL connection was established with unexpected ALPN protocol`.
    UnexpectedAlpn(Vec<u8>),
    /// `sslcertmode=require` and the server never asked for a client certificate.
    /// libpq: `server did not request an SSL certificate`.
    CertificateNotRequested,
    /// `sslcertmode=require`: the server asked for a client certificate but none was sent
    /// (none configured, or its key cannot sign with any scheme the server accepts).
    /// libpq: `server accepted connection without a valid SSL certificate`.
    CertificateNotSent,

    // --- Blame::Tls ---
    /// The server's certificate was rejected. The message is libpq's (host-name rules) or
    /// `SSL error: certificate verify failed: <OpenSSL's reason>` for chain failures.
    Certificate {
        /// Which check failed.
        problem: CertificateProblem,
        /// The message, in libpq's words.
        message: String,
        /// The rustls error that carried it (the alert pgtls sent is derived from it).
        source: rustls::Error,
    },
    /// Any other TLS failure (alert from the server, protocol violation, no common
    /// version or cipher suite, bad record). Displayed as `SSL error: <rustls's message>`.
    Tls(rustls::Error),
    /// No TLS version is left between the configured minimum and maximum that rustls can
    /// speak (rustls has TLS 1.2 and 1.3). OpenSSL: `no protocols available`.
    NoProtocolsAvailable,
    /// The client's TLS material could not be used (libpq fails the TLS attempt when it
    /// cannot read its key or certificate files); see
    /// [`crate::ConfigBuilder::tls_setup_error`]. A TLS failure for the policy.
    TlsSetup(String),

    // --- Blame::Limit ---
    /// The peer sent more than pgtls is willing to buffer.
    LimitExceeded(&'static str),

    // --- Blame::Misuse ---
    /// The API was called out of order or with an invalid argument.
    Misuse(&'static str),

    // --- Blame::Server ---
    /// The server rejected the startup or authentication; reported by the driver to the
    /// planner, which hands it back when no other method remains.
    StartupRejected {
        /// The SQLSTATE, if the driver had one (`28000`, `28P01`, `57P03`, ...).
        sqlstate: Option<String>,
        /// The server's message as the driver reports it.
        message: String,
    },
}

impl Error {
    /// Who is to blame for this error.
    pub fn blame(&self) -> Blame {
        match self {
            Error::InvalidSslResponse(_)
            | Error::UnencryptedDataAfterSslResponse
            | Error::ServerErrorDuringSslExchange
            | Error::ClosedBeforeSslResponse
            | Error::ClosedDuringHandshake
            | Error::UncleanEof
            | Error::HandshakeTransport(_) => Blame::Peer,
            Error::ServerRefusedSsl
            | Error::AlpnNotNegotiated
            | Error::UnexpectedAlpn(_)
            | Error::CertificateNotRequested
            | Error::CertificateNotSent => Blame::Policy,
            Error::Certificate { .. }
            | Error::Tls(_)
            | Error::NoProtocolsAvailable
            | Error::TlsSetup(_) => Blame::Tls,
            Error::LimitExceeded(_) => Blame::Limit,
            Error::Misuse(_) => Blame::Misuse,
            Error::StartupRejected { .. } => Blame::Server,
        }
    }

    /// Whether libpq treats this as a failed TLS attempt after which another encryption
    /// method may be tried (on a new connection): handshake and certificate failures, an
    /// EOF mid-handshake, a wrong ALPN protocol, a server that rejected the startup.
    ///
    /// Protocol violations before TLS (`E`, invalid byte, bytes after `S`, EOF before the
    /// answer) and client-side policy failures never fall back, as in libpq.
    pub fn allows_fallback(&self) -> bool {
        matches!(
            self,
            Error::ClosedDuringHandshake
                | Error::HandshakeTransport(_)
                | Error::AlpnNotNegotiated
                | Error::UnexpectedAlpn(_)
                | Error::Certificate { .. }
                | Error::Tls(_)
                | Error::NoProtocolsAvailable
                | Error::TlsSetup(_)
                | Error::StartupRejected { .. }
                | Error::LimitExceeded(_)
        )
    }

    /// The rustls error behind a TLS failure, if any.
    pub fn rustls_error(&self) -> Option<&rustls::Error> {
        match self {
            Error::Certificate { source, .. } => Some(source),
            Error::Tls(err) => Some(err),
            _ => None,
        }
    }

    /// The certificates the server presented, end entity first, when pgtls's verifier
    /// rejected them (an [`Error::Certificate`] for the chain or the host name), so a tool
    /// can show what was rejected as `openssl s_client` does. Empty for every other error,
    /// and for certificates rejected by rustls itself (e.g. a bad handshake signature).
    pub fn rejected_chain(&self) -> &[CertificateDer<'static>] {
        let Error::Certificate {
            source: rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)),
            ..
        } = self
        else {
            return &[];
        };
        other
            .0
            .downcast_ref::<CarriedCertificateError>()
            .map_or(&[], |carried| carried.presented.as_slice())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidSslResponse(byte) => write!(
                f,
                "received invalid response to SSL negotiation: {}",
                printable(*byte)
            ),
            Error::UnencryptedDataAfterSslResponse => {
                f.write_str("received unencrypted data after SSL response")
            }
            Error::ServerErrorDuringSslExchange => {
                f.write_str("server sent an error response during SSL exchange")
            }
            Error::ClosedBeforeSslResponse => f.write_str(
                "server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally\n\tbefore or while processing the request.",
            ),
            Error::ClosedDuringHandshake => f.write_str("SSL SYSCALL error: EOF detected"),
            Error::HandshakeTransport(io) => write!(f, "SSL SYSCALL error: {io}"),
            Error::UncleanEof => {
                f.write_str("SSL connection has been closed unexpectedly (no close_notify)")
            }
            Error::ServerRefusedSsl => {
                f.write_str("server does not support SSL, but SSL was required")
            }
            Error::AlpnNotNegotiated => f.write_str(
                "direct SSL connection was established without ALPN protocol negotiation extension",
            ),
            Error::UnexpectedAlpn(_) => {
                f.write_str("SSL connection was established with unexpected ALPN protocol")
            }
            Error::CertificateNotRequested => {
                f.write_str("server did not request an SSL certificate")
            }
            Error::CertificateNotSent => {
                f.write_str("server accepted connection without a valid SSL certificate")
            }
            Error::Certificate { message, .. } => f.write_str(message),
            Error::Tls(err) => write!(f, "SSL error: {err}"),
            Error::NoProtocolsAvailable => f.write_str("SSL error: no protocols available"),
            Error::TlsSetup(message) => f.write_str(message),
            Error::LimitExceeded(what) => write!(f, "limit exceeded: {what}"),
            Error::Misuse(what) => write!(f, "pgtls API misuse: {what}"),
            Error::StartupRejected { message, .. } => f.write_str(message),
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Error::Certificate { source, .. } => Some(source),
            Error::Tls(err) => Some(err),
            _ => None,
        }
    }
}

/// libpq prints the invalid byte with `%c`; keep non-printable bytes readable.
fn printable(byte: u8) -> String {
    if byte.is_ascii_graphic() || byte == b' ' {
        char::from(byte).to_string()
    } else {
        format!("\\x{byte:02x}")
    }
}

/// The settings cannot be used. Raised when settings are built, never by network input.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ConfigError {
    /// An enumerated setting has a value libpq does not know.
    /// libpq: `invalid <keyword> value: "<value>"`.
    InvalidValue {
        /// The libpq keyword (`sslmode`, `sslnegotiation`, `sslcertmode`, ...).
        keyword: &'static str,
        /// The rejected value.
        value: String,
    },
    /// `sslnegotiation=direct` with a mode that may fall back to plaintext.
    /// libpq: `weak sslmode "<v>" may not be used with sslnegotiation=direct (use "require", "verify-ca", or "verify-full")`.
    WeakModeWithDirect(String),
    /// `sslrootcert=system` with a mode weaker than verify-full.
    /// libpq: `weak sslmode "<v>" may not be used with sslrootcert=system (use "verify-full")`.
    WeakModeWithSystemRoots(String),
    /// Minimum protocol version above the maximum. libpq: `invalid SSL protocol version range`.
    InvalidVersionRange,
    /// verify-ca / verify-full without any root certificates.
    NoRootCertificates {
        /// The file libpq would have read, when the settings came from files.
        path: Option<String>,
    },
    /// verify-full without a host name. libpq: `host name must be specified for a verified SSL connection`.
    MissingHostName,
    /// A certificate, key or CRL could not be used.
    BadCredential {
        /// What it was (`root certificate`, `client certificate`, `private key`, `CRL`, ...).
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The platform's trust store could not be loaded, or holds nothing.
    SystemRoots(String),
    /// A root source that this build was compiled without (a cargo feature is off).
    FeatureDisabled(&'static str),
    /// No rustls crypto provider: enable the `aws-lc-rs` or `ring` feature or pass one.
    NoCryptoProvider,
    /// rustls rejected the configuration.
    Rustls(rustls::Error),
    /// GSSAPI encryption was required; pgtls does not implement it.
    GssEncryptionUnsupported,
    /// A key-exchange group asked for with [`crate::ConfigBuilder::key_exchange_groups`]
    /// that the crypto provider does not implement.
    UnsupportedKeyExchangeGroup {
        /// The group asked for.
        group: rustls::NamedGroup,
        /// The groups the provider has.
        available: Vec<rustls::NamedGroup>,
    },
    /// [`crate::ConfigBuilder::key_exchange_groups`] was given an empty list.
    NoKeyExchangeGroups,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::InvalidValue { keyword, value } => {
                write!(f, "invalid {keyword} value: \"{value}\"")
            }
            ConfigError::WeakModeWithDirect(mode) => write!(
                f,
                "weak sslmode \"{mode}\" may not be used with sslnegotiation=direct (use \"require\", \"verify-ca\", or \"verify-full\")"
            ),
            ConfigError::WeakModeWithSystemRoots(mode) => write!(
                f,
                "weak sslmode \"{mode}\" may not be used with sslrootcert=system (use \"verify-full\")"
            ),
            ConfigError::InvalidVersionRange => f.write_str("invalid SSL protocol version range"),
            ConfigError::NoRootCertificates { path: Some(path) } => write!(
                f,
                "root certificate file \"{path}\" does not exist\nEither provide the file, use the system's trusted roots with sslrootcert=system, or change sslmode to disable server certificate verification."
            ),
            ConfigError::NoRootCertificates { path: None } => f.write_str(
                "no root certificates were given, but server certificate verification was required\nEither provide root certificates, use the system's trusted roots with sslrootcert=system, or change sslmode to disable server certificate verification.",
            ),
            ConfigError::MissingHostName => {
                f.write_str("host name must be specified for a verified SSL connection")
            }
            ConfigError::BadCredential { what, reason } => write!(f, "could not load {what}: {reason}"),
            ConfigError::SystemRoots(reason) => {
                write!(f, "could not load the system's root certificates: {reason}")
            }
            ConfigError::FeatureDisabled(feature) => write!(
                f,
                "this build of pgtls lacks the cargo feature \"{feature}\" that this setting needs"
            ),
            ConfigError::NoCryptoProvider => f.write_str(
                "no rustls crypto provider: enable the \"aws-lc-rs\" or \"ring\" feature of pgtls, or pass a provider",
            ),
            ConfigError::Rustls(err) => write!(f, "invalid TLS configuration: {err}"),
            ConfigError::GssEncryptionUnsupported => f.write_str(
                "GSSAPI encryption is not supported by pgtls (gssencmode=require); use gssencmode=disable or prefer",
            ),
            ConfigError::UnsupportedKeyExchangeGroup { group, available } => {
                write!(
                    f,
                    "key exchange group \"{group:?}\" is not supported by the crypto provider (it has: "
                )?;
                for (i, name) in available.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{name:?}")?;
                }
                f.write_str(")")
            }
            ConfigError::NoKeyExchangeGroups => {
                f.write_str("no key exchange groups were given: at least one is needed")
            }
        }
    }
}

impl StdError for ConfigError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            ConfigError::Rustls(err) => Some(err),
            _ => None,
        }
    }
}

impl From<rustls::Error> for ConfigError {
    fn from(err: rustls::Error) -> Self {
        ConfigError::Rustls(err)
    }
}

/// A pgtls-specific error carried through rustls inside
/// `rustls::Error::InvalidCertificate(CertificateError::Other(..))`, so that the
/// negotiation can turn it back into a typed [`Error::Certificate`].
pub(crate) struct CarriedCertificateError {
    pub(crate) problem: CertificateProblem,
    pub(crate) message: String,
    /// The chain the server presented, end entity first (empty when not at hand);
    /// see [`Error::rejected_chain`].
    pub(crate) presented: Vec<CertificateDer<'static>>,
}

impl fmt::Debug for CarriedCertificateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The certificates' bytes would drown the message: count them.
        f.debug_struct("CarriedCertificateError")
            .field("problem", &self.problem)
            .field("message", &self.message)
            .field("presented_certificates", &self.presented.len())
            .finish()
    }
}

impl fmt::Display for CarriedCertificateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for CarriedCertificateError {}

impl CarriedCertificateError {
    /// Wraps a certificate failure for the trip through rustls, without the chain.
    #[cfg(test)]
    pub(crate) fn into_rustls(problem: CertificateProblem, message: String) -> rustls::Error {
        Self::into_rustls_with_chain(problem, message, Vec::new())
    }

    /// Wraps a certificate failure for the trip through rustls, keeping the chain the
    /// server presented (end entity first) for [`Error::rejected_chain`].
    pub(crate) fn into_rustls_with_chain(
        problem: CertificateProblem,
        message: String,
        presented: Vec<CertificateDer<'static>>,
    ) -> rustls::Error {
        let carried: Arc<dyn StdError + Send + Sync> = Arc::new(CarriedCertificateError {
            problem,
            message,
            presented,
        });
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
            carried,
        )))
    }
}

/// Turns a rustls error from the handshake into a pgtls [`Error`], recovering errors that
/// pgtls's own verifier sent through rustls.
pub(crate) fn from_rustls(err: rustls::Error) -> Error {
    if let rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) = &err {
        if let Some(carried) = other.0.downcast_ref::<CarriedCertificateError>() {
            return Error::Certificate {
                problem: carried.problem,
                message: carried.message.clone(),
                source: err.clone(),
            };
        }
    }
    if let rustls::Error::InvalidCertificate(cert_err) = &err {
        // What OpenSSL (and so libpq) reports for the same failures.
        let (problem, message) = match cert_err {
            rustls::CertificateError::BadSignature => (
                CertificateProblem::Signature,
                "SSL error: bad signature".to_owned(),
            ),
            rustls::CertificateError::BadEncoding => (
                CertificateProblem::Malformed,
                "SSL error: certificate verify failed: certificate could not be parsed".to_owned(),
            ),
            // A caller's verifier (ConfigBuilder::server_cert_verifier): its own words.
            rustls::CertificateError::Other(other) => (
                CertificateProblem::Chain,
                format!("SSL error: certificate verify failed: {}", other.0),
            ),
            rustls::CertificateError::NotValidForName
            | rustls::CertificateError::NotValidForNameContext { .. } => (
                CertificateProblem::HostName,
                format!("SSL error: certificate verify failed: {cert_err}"),
            ),
            other => (
                CertificateProblem::Chain,
                format!("SSL error: certificate verify failed: {other}"),
            ),
        };
        return Error::Certificate {
            problem,
            message,
            source: err.clone(),
        };
    }
    Error::Tls(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_libpq() {
        assert_eq!(
            Error::UnencryptedDataAfterSslResponse.to_string(),
            "received unencrypted data after SSL response"
        );
        assert_eq!(
            Error::ServerErrorDuringSslExchange.to_string(),
            "server sent an error response during SSL exchange"
        );
        assert_eq!(
            Error::ServerRefusedSsl.to_string(),
            "server does not support SSL, but SSL was required"
        );
        assert_eq!(
            Error::InvalidSslResponse(0).to_string(),
            "received invalid response to SSL negotiation: \\x00"
        );
        assert_eq!(
            ConfigError::WeakModeWithDirect("prefer".into()).to_string(),
            "weak sslmode \"prefer\" may not be used with sslnegotiation=direct (use \"require\", \"verify-ca\", or \"verify-full\")"
        );
        assert_eq!(
            ConfigError::InvalidValue {
                keyword: "sslmode",
                value: "Require".into()
            }
            .to_string(),
            "invalid sslmode value: \"Require\""
        );
    }

    #[test]
    fn carried_certificate_errors_come_back_typed() {
        let rustls_err = CarriedCertificateError::into_rustls(
            CertificateProblem::HostName,
            "server certificate for \"a\" does not match host name \"b\"".into(),
        );
        let err = from_rustls(rustls_err);
        assert!(matches!(
            err,
            Error::Certificate {
                problem: CertificateProblem::HostName,
                ..
            }
        ));
        assert_eq!(
            err.to_string(),
            "server certificate for \"a\" does not match host name \"b\""
        );
        assert!(err.allows_fallback());
        assert_eq!(err.blame(), Blame::Tls);
        assert!(StdError::source(&err).is_some());
        assert!(err.rejected_chain().is_empty());
    }

    #[test]
    fn rejected_chain_comes_back_with_the_carried_error() {
        let presented = vec![
            CertificateDer::from(vec![0x30, 0x01, 0x01]),
            CertificateDer::from(vec![0x30, 0x01, 0x02]),
        ];
        let err = from_rustls(CarriedCertificateError::into_rustls_with_chain(
            CertificateProblem::Chain,
            "SSL error: certificate verify failed: certificate has expired".into(),
            presented.clone(),
        ));
        assert_eq!(err.rejected_chain(), presented.as_slice());
        assert!(!format!("{err:?}").contains("[48, 1, 1]"));
        // Errors rustls raised on its own carry no chain.
        let err = from_rustls(rustls::Error::InvalidCertificate(
            rustls::CertificateError::Expired,
        ));
        assert!(err.rejected_chain().is_empty());
        assert!(Error::ServerRefusedSsl.rejected_chain().is_empty());
    }

    #[test]
    fn protocol_violations_never_fall_back() {
        for err in [
            Error::InvalidSslResponse(b'x'),
            Error::UnencryptedDataAfterSslResponse,
            Error::ServerErrorDuringSslExchange,
            Error::ClosedBeforeSslResponse,
            Error::ServerRefusedSsl,
            Error::CertificateNotRequested,
            Error::CertificateNotSent,
            Error::Misuse("x"),
        ] {
            assert!(!err.allows_fallback(), "{err}");
        }
    }
}
