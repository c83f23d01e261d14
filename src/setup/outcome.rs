//! What a finished connection setup reports, shared by the machine and every adapter:
//! the error in libpq's words ([`ConnectError`]), the attempts made ([`AttemptRecord`])
//! and whether libpq would try the next host ([`Failed`]); and the two types every IO
//! adapter's `connect` speaks, defined once here and re-exported by each adapter: how the
//! driver's startup callback failed ([`StartupError`]) and what a successful run hands
//! back ([`Connected`]).

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

/// How a driver's startup callback (given to an adapter's `connect`) failed.
#[derive(Debug)]
pub enum StartupError {
    /// The server sent an ErrorResponse (pg_hba rejection, wrong password, ...): the
    /// plan may retry with another method on a new connection, as libpq does (SQLSTATE
    /// `28000` for `allow`/`prefer`, `57P03` for the next host).
    Rejected {
        /// SQLSTATE (`C` field), if known.
        sqlstate: Option<String>,
        /// The server's message.
        message: String,
    },
    /// A transport error: ends the connection attempt.
    Io(io::Error),
    /// A client-side failure (e.g. channel binding required but unavailable): never
    /// retried, as in libpq. Its `Display` text becomes the connection's error. A
    /// message converts with `.into()`: `StartupError::Fatal("no password".into())`.
    Fatal(Box<dyn std::error::Error + Send + Sync>),
}

impl From<io::Error> for StartupError {
    fn from(err: io::Error) -> Self {
        StartupError::Io(err)
    }
}

/// A connection an adapter's `connect` established.
///
/// `S` is the established stream for adapters whose startup callback borrows it (the
/// blocking adapter: its `Stream`; `pgtls::blocking::Connected<S, T>` names this type);
/// it is `()` for the async adapters, whose callback takes the stream by value and returns
/// what it wants to keep as `startup`.
#[derive(Debug)]
pub struct Connected<T, S = ()> {
    /// The stream, TLS or plaintext (`()` for the async adapters).
    pub stream: S,
    /// What the startup callback returned.
    pub startup: T,
    /// The method of the successful attempt.
    pub method: Method,
    /// Every attempt, in order (the last one succeeded).
    pub attempts: Vec<AttemptRecord>,
}

#[cfg(any(feature = "blocking", feature = "tokio"))]
impl<T, S> Connected<T, S> {
    /// The connection made by the last of `attempts`.
    pub(crate) fn new(stream: S, startup: T, attempts: Vec<AttemptRecord>) -> Self {
        let method = attempts.last().map_or(Method::Plaintext, |a| a.method);
        Connected {
            stream,
            startup,
            method,
            attempts,
        }
    }
}
