//! What a finished connection setup reports, shared by the machine and every adapter:
//! the error in libpq's words ([`ConnectError`]), the attempts made ([`AttemptRecord`])
//! and whether libpq would try the next host ([`Failed`]).

use std::fmt;
use std::io;

use crate::error::Error;
use crate::plan::Method;

/// Why an attempt or a whole connection failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectError {
    /// The transport failed (connect refused, reset, ...).
    Io(io::Error),
    /// The negotiation, TLS or the policy failed (libpq's messages).
    Tls(Error),
    /// `connect_timeout` expired.
    Timeout,
    /// The driver's startup failed in a way that must not be retried.
    Startup(String),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Io(err) if err.kind() == io::ErrorKind::UnexpectedEof => f.write_str(
                "server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally\n\tbefore or while processing the request.",
            ),
            ConnectError::Io(err) => f.write_str(&crate::os_error::os_error_text(err)),
            ConnectError::Tls(err) => write!(f, "{err}"),
            ConnectError::Timeout => f.write_str("timeout expired"),
            ConnectError::Startup(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectError::Io(err) => Some(err),
            ConnectError::Tls(err) => Some(err),
            _ => None,
        }
    }
}

impl From<Error> for ConnectError {
    fn from(err: Error) -> Self {
        ConnectError::Tls(err)
    }
}

/// One attempt of a connection setup, for reports such as the probe's.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// The method tried.
    pub method: Method,
    /// Whether this attempt reused the previous connection (plaintext after `N`).
    pub same_connection: bool,
    /// How it ended: `None` for success, else the error in libpq's words.
    pub error: Option<String>,
}

/// A failed connection setup, with the attempts made.
#[derive(Debug)]
pub struct Failed {
    /// The error in libpq's words.
    pub error: ConnectError,
    /// Every attempt, in order.
    pub attempts: Vec<AttemptRecord>,
    /// Whether libpq would move on to the next host (SQLSTATE 57P03, a transport error
    /// before the startup, a timeout).
    pub try_next_host: bool,
}

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for Failed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}
