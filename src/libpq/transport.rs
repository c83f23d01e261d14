//! libpq's words for transport failures: a `connect()` that failed and a host name that
//! did not resolve.
//!
//! Rust's `io::Error` text adds ` (os error 111)` to the operating system's words and
//! prefixes resolver failures with `failed to lookup address information:`; libpq
//! prints `strerror`'s and `gai_strerror`'s text alone, and after a failed `connect()`
//! adds a hint line (`connectFailureMessage` in libpq's `fe-connect.c`):
//!
//! ```text
//! connection to server at "db.example.com" (192.0.2.7), port 5432 failed: Connection refused
//!     Is the server running on that host and accepting TCP/IP connections?
//! could not translate host name "nosuch.example" to address: Name or service not known
//! ```

use std::io;

/// The hint libpq adds after a failed TCP `connect()`.
pub const TCP_CONNECT_HINT: &str =
    "Is the server running on that host and accepting TCP/IP connections?";

/// The hint libpq adds after a failed `connect()` on a Unix-domain socket.
pub const SOCKET_CONNECT_HINT: &str =
    "Is the server running locally and accepting connections on that socket?";

/// The operating system's words for `err`, as `strerror` (or `gai_strerror`) gives them:
/// without Rust's ` (os error N)` suffix and its `failed to lookup address information: `
/// prefix.
///
/// ```
/// use std::io;
/// let err = io::Error::from_raw_os_error(111);
/// assert_eq!(pgtls::libpq::os_error_text(&err), "Connection refused");
/// ```
pub fn os_error_text(err: &io::Error) -> String {
    crate::os_error::os_error_text(err)
}

/// What follows `connection to server at … failed: ` when `connect()` itself failed:
/// the OS's words, a newline, a tab and libpq's hint (the Unix-socket one when
/// `unix_socket`).
///
/// ```
/// use std::io;
/// let text = pgtls::libpq::connect_failure_text(&io::Error::from_raw_os_error(111), false);
/// assert_eq!(
///     text,
///     "Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?"
/// );
/// ```
pub fn connect_failure_text(err: &io::Error, unix_socket: bool) -> String {
    let hint = if unix_socket {
        SOCKET_CONNECT_HINT
    } else {
        TCP_CONNECT_HINT
    };
    format!("{}\n\t{hint}", os_error_text(err))
}

/// libpq's message when `host` does not resolve:
/// `could not translate host name "host" to address: <gai_strerror's words>`.
///
/// ```
/// use std::net::ToSocketAddrs;
/// let err = ("nosuch.invalid", 5432).to_socket_addrs().unwrap_err();
/// let text = pgtls::libpq::host_lookup_failure_text("nosuch.invalid", &err);
/// assert!(text.starts_with("could not translate host name \"nosuch.invalid\" to address: "));
/// assert!(!text.contains("failed to lookup"));
/// ```
pub fn host_lookup_failure_text(host: &str, err: &io::Error) -> String {
    format!(
        "could not translate host name \"{host}\" to address: {}",
        os_error_text(err)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hint_follows_the_transport() {
        let err = io::Error::from_raw_os_error(2);
        assert_eq!(
            connect_failure_text(&err, true),
            "No such file or directory\n\tIs the server running locally and accepting connections on that socket?"
        );
    }
}
