//! Why an [`crate::server::Acceptor`] refused a client, in PostgreSQL's server wording.

use std::error::Error as StdError;
use std::fmt;

use crate::error::Blame;
use crate::Error;

/// An error while accepting one client connection.
///
/// `#[non_exhaustive]`: match on [`AcceptError::blame`] or the variants you care about.
/// Messages are the PostgreSQL server's (`postmaster` / `be-secure-openssl.c`) where it has
/// one, so they can be searched for. Cloning is cheap.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AcceptError {
    // --- Blame::Peer (the client) ---
    /// Bytes arrived after `SSLRequest` before the server's `S` was handed out: they were
    /// sent before the client could know TLS would start, so they are not protected and may
    /// have been injected (CVE-2021-23214). PostgreSQL: `received unencrypted data after SSL
    /// request`.
    UnencryptedDataAfterSslRequest,
    /// The first packet announced a length outside 8..=10004 bytes (PostgreSQL's limit
    /// of 10000 counts from after the length word), or its first byte is neither 0 nor a
    /// TLS record. PostgreSQL: `invalid length of startup packet`.
    InvalidStartupPacketLength,
    /// A `CancelRequest` whose key is not 4..=256 bytes long. PostgreSQL: `invalid length of
    /// cancel request packet`.
    InvalidCancelRequestLength,
    /// A protocol version other than 3.x (a second `SSLRequest` or `GSSENCRequest` counts,
    /// as in PostgreSQL). PostgreSQL: `unsupported frontend protocol <major>.<minor>: server
    /// supports 3.0 to 3.2`.
    UnsupportedProtocol {
        /// The major version the client sent (1234 for a repeated negotiation request).
        major: u16,
        /// The minor version.
        minor: u16,
    },
    /// The StartupMessage's parameters are not `name\0value\0 ... \0`. PostgreSQL: `invalid
    /// startup packet layout: expected terminator as last byte`.
    InvalidStartupPacketLayout,
    /// The client closed the connection before its first packet was complete. PostgreSQL:
    /// `incomplete startup packet`.
    IncompleteStartupPacket,
    /// The client closed the connection in the middle of the TLS handshake. PostgreSQL:
    /// `could not accept SSL connection: EOF detected`.
    ClosedDuringHandshake,

    // --- Blame::Policy ---
    /// A plaintext StartupMessage while TLS is required. The client was sent a FATAL
    /// ErrorResponse (SQLSTATE 28000) saying to use `sslmode=require`
    /// ([`crate::server::PLAINTEXT_REFUSED_MESSAGE`]).
    PlaintextRefused,
    /// A direct TLS ClientHello (PostgreSQL 17+ `sslnegotiation=direct`) while direct TLS is
    /// refused or TLS is not configured; the connection is closed without an answer, as a
    /// server before 17 does.
    DirectTlsRefused,
    /// Direct TLS without the ALPN extension: refused with a `no_application_protocol`
    /// alert (PostgreSQL 17 closes after the handshake). PostgreSQL: `received direct SSL
    /// connection request without ALPN protocol negotiation extension`.
    DirectTlsWithoutAlpn,
    /// The client offered ALPN protocols, none of them `postgresql` (an empty list
    /// included): refused with a `no_application_protocol` alert, as PostgreSQL 17 does.
    NoApplicationProtocol,

    // --- Blame::Tls ---
    /// The TLS handshake failed (the rustls error is inside: [`Error::rustls_error`]); an
    /// alert for the client may wait in `poll_output`. Shown as PostgreSQL logs it:
    /// `could not accept SSL connection: <OpenSSL's reason>`, e.g. `certificate verify
    /// failed` for a client certificate that does not verify or is revoked (PostgreSQL 17+
    /// adds a detail line naming the certificate; this message is the same in 15 and 18).
    Tls(Error),

    /// The client's certificate did not verify against the CA file and CRLs (rustls's
    /// error inside; the alert OpenSSL would send waits in `poll_output`). PostgreSQL:
    /// `could not accept SSL connection: certificate verify failed`, with (17+) the
    /// detail [`AcceptError::detail`].
    ClientCertificateRejected {
        /// The handshake error.
        error: Error,
        /// `Client certificate verification failed at depth <n>: <OpenSSL's reason>.`
        detail: String,
    },

    // --- Blame::Limit ---
    /// The client tried to make the acceptor hold more than its stated limits.
    LimitExceeded(&'static str),

    // --- Blame::Misuse ---
    /// The API was called out of order. Never caused by bytes from the network.
    Misuse(&'static str),
}

impl AcceptError {
    /// Who is to blame. [`Blame::Peer`] means the client here.
    pub fn blame(&self) -> Blame {
        match self {
            AcceptError::UnencryptedDataAfterSslRequest
            | AcceptError::InvalidStartupPacketLength
            | AcceptError::InvalidCancelRequestLength
            | AcceptError::UnsupportedProtocol { .. }
            | AcceptError::InvalidStartupPacketLayout
            | AcceptError::IncompleteStartupPacket
            | AcceptError::ClosedDuringHandshake => Blame::Peer,
            AcceptError::PlaintextRefused
            | AcceptError::DirectTlsRefused
            | AcceptError::DirectTlsWithoutAlpn
            | AcceptError::NoApplicationProtocol => Blame::Policy,
            AcceptError::Tls(err) | AcceptError::ClientCertificateRejected { error: err, .. } => {
                err.blame()
            }
            AcceptError::LimitExceeded(_) => Blame::Limit,
            AcceptError::Misuse(_) => Blame::Misuse,
        }
    }

    /// The detail line PostgreSQL 17 and later log under the message, when there is one:
    /// for a rejected client certificate, `Client certificate verification failed at
    /// depth <n>: <reason>.` (e.g. `certificate revoked`).
    pub fn detail(&self) -> Option<&str> {
        match self {
            AcceptError::ClientCertificateRejected { detail, .. } => Some(detail),
            _ => None,
        }
    }

    /// The SQLSTATE PostgreSQL reports for this failure.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            AcceptError::PlaintextRefused => "28000",
            AcceptError::UnsupportedProtocol { .. } => "0A000",
            AcceptError::Tls(_)
            | AcceptError::ClientCertificateRejected { .. }
            | AcceptError::ClosedDuringHandshake => "08006",
            AcceptError::LimitExceeded(_) => "54000",
            AcceptError::Misuse(_) => "XX000",
            _ => "08P01",
        }
    }
}

impl fmt::Display for AcceptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcceptError::UnencryptedDataAfterSslRequest => {
                f.write_str("received unencrypted data after SSL request")
            }
            AcceptError::InvalidStartupPacketLength => {
                f.write_str("invalid length of startup packet")
            }
            AcceptError::InvalidCancelRequestLength => {
                f.write_str("invalid length of cancel request packet")
            }
            AcceptError::UnsupportedProtocol { major, minor } => write!(
                f,
                "unsupported frontend protocol {major}.{minor}: server supports 3.0 to 3.2"
            ),
            AcceptError::InvalidStartupPacketLayout => {
                f.write_str("invalid startup packet layout: expected terminator as last byte")
            }
            AcceptError::IncompleteStartupPacket => f.write_str("incomplete startup packet"),
            AcceptError::ClosedDuringHandshake => {
                f.write_str("could not accept SSL connection: EOF detected")
            }
            AcceptError::PlaintextRefused => f.write_str(super::PLAINTEXT_REFUSED_MESSAGE),
            AcceptError::DirectTlsRefused => f.write_str(
                "direct SSL connection refused: this server accepts TLS only after an SSLRequest",
            ),
            AcceptError::DirectTlsWithoutAlpn => f.write_str(
                "received direct SSL connection request without ALPN protocol negotiation extension",
            ),
            AcceptError::NoApplicationProtocol => {
                f.write_str("could not accept SSL connection: no application protocol")
            }
            AcceptError::Tls(err) => match err.rustls_error() {
                Some(tls) => write!(f, "could not accept SSL connection: {}", openssl_reason(tls)),
                None => write!(f, "{err}"),
            },
            AcceptError::ClientCertificateRejected { .. } => {
                f.write_str("could not accept SSL connection: certificate verify failed")
            }
            AcceptError::LimitExceeded(what) => write!(f, "limit exceeded: {what}"),
            AcceptError::Misuse(what) => write!(f, "pgtls API misuse: {what}"),
        }
    }
}

/// OpenSSL's reason string (`ERR_reason_error_string`) for the handshake failures a
/// server sees most, so that logs read as PostgreSQL's; rustls's own text otherwise.
fn openssl_reason(err: &rustls::Error) -> String {
    use rustls::{AlertDescription as Alert, Error as E, PeerIncompatible as P};
    match err {
        E::InvalidCertificate(_) => "certificate verify failed".into(),
        E::NoCertificatesPresented => "peer did not return a certificate".into(),
        E::PeerIncompatible(
            P::NoCipherSuitesInCommon | P::NoKxGroupsInCommon | P::NoSignatureSchemesInCommon,
        ) => "no shared cipher".into(),
        E::PeerIncompatible(P::Tls12NotOffered | P::Tls12NotOfferedOrEnabled)
        | E::PeerIncompatible(P::SupportedVersionsExtensionRequired) => {
            "unsupported protocol".into()
        }
        E::AlertReceived(alert) => {
            let name = match alert {
                Alert::UnknownCA => "unknown ca",
                Alert::BadCertificate => "bad certificate",
                Alert::CertificateRevoked => "certificate revoked",
                Alert::CertificateExpired => "certificate expired",
                Alert::CertificateUnknown => "certificate unknown",
                Alert::HandshakeFailure => "handshake failure",
                Alert::DecryptError => "decrypt error",
                Alert::ProtocolVersion => "protocol version",
                Alert::InternalError => "internal error",
                other => return format!("tlsv1 alert {other:?}"),
            };
            let prefix = match alert {
                Alert::BadCertificate
                | Alert::CertificateRevoked
                | Alert::CertificateExpired
                | Alert::CertificateUnknown
                | Alert::HandshakeFailure => "sslv3",
                _ => "tlsv1",
            };
            format!("{prefix} alert {name}")
        }
        other => other.to_string(),
    }
}

impl StdError for AcceptError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            AcceptError::Tls(err) | AcceptError::ClientCertificateRejected { error: err, .. } => {
                Some(err)
            }
            _ => None,
        }
    }
}

impl From<rustls::Error> for AcceptError {
    /// Called right after the rustls call that failed, on the same thread, so a client
    /// certificate rejected by the verifier is matched with the reason it recorded.
    fn from(err: rustls::Error) -> Self {
        let failure = match &err {
            rustls::Error::InvalidCertificate(_) => crate::verify::take_client_cert_failure(),
            _ => None,
        };
        let error = crate::error::from_rustls(err);
        match failure {
            Some(failure) => AcceptError::ClientCertificateRejected {
                error,
                detail: failure.server_log_detail(),
            },
            None => AcceptError::Tls(error),
        }
    }
}

/// Why [`crate::server::ServerTlsFiles::load`] could not build the server's TLS
/// configuration, in PostgreSQL's words (`be-secure-openssl.c: be_tls_init`), naming the
/// file at fault. The reasons are OpenSSL's where it has one (`no start line`,
/// `key values mismatch`, the C library's text for I/O errors).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum LoadError {
    /// `could not load server certificate file "<path>": <reason>`.
    CertificateFile {
        /// The certificate file (`ssl_cert_file`).
        path: String,
        /// Why.
        reason: String,
    },
    /// `could not load private key file "<path>": <reason>`.
    PrivateKeyFile {
        /// The key file (`ssl_key_file`).
        path: String,
        /// Why.
        reason: String,
    },
    /// `check of private key failed: key values mismatch`: the key is not the
    /// certificate's.
    KeyMismatch {
        /// The key file.
        key_file: String,
        /// The certificate file.
        cert_file: String,
    },
    /// `could not load root certificate file "<path>": <reason>` (`ssl_ca_file`).
    RootCertificateFile {
        /// The CA file.
        path: String,
        /// Why.
        reason: String,
    },
    /// `could not load SSL certificate revocation list file "<path>": <reason>`.
    CrlFile {
        /// The CRL file (`ssl_crl_file`).
        path: String,
        /// Why.
        reason: String,
    },
    /// `could not load SSL certificate revocation list directory "<path>": <reason>`.
    CrlDirectory {
        /// The CRL directory (`ssl_crl_dir`).
        path: String,
        /// Why.
        reason: String,
    },
    /// The files loaded, but the configuration could not be built.
    Config(crate::ConfigError),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::CertificateFile { path, reason } => {
                write!(
                    f,
                    "could not load server certificate file \"{path}\": {reason}"
                )
            }
            LoadError::PrivateKeyFile { path, reason } => {
                write!(f, "could not load private key file \"{path}\": {reason}")
            }
            LoadError::KeyMismatch { .. } => write!(
                f,
                "check of private key failed: {}",
                super::credentials::KEY_VALUES_MISMATCH
            ),
            LoadError::RootCertificateFile { path, reason } => {
                write!(
                    f,
                    "could not load root certificate file \"{path}\": {reason}"
                )
            }
            LoadError::CrlFile { path, reason } => write!(
                f,
                "could not load SSL certificate revocation list file \"{path}\": {reason}"
            ),
            LoadError::CrlDirectory { path, reason } => write!(
                f,
                "could not load SSL certificate revocation list directory \"{path}\": {reason}"
            ),
            LoadError::Config(err) => write!(f, "{err}"),
        }
    }
}

impl StdError for LoadError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            LoadError::Config(err) => Some(err),
            _ => None,
        }
    }
}

impl From<crate::ConfigError> for LoadError {
    fn from(err: crate::ConfigError) -> Self {
        LoadError::Config(err)
    }
}
