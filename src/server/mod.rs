//! The server side: a sans-IO acceptor for proxies and poolers.
//!
//! A proxy or pooler in front of PostgreSQL does the mirror image of libpq's work, and
//! several get it subtly wrong: plaintext read together with `SSLRequest` handed on to the
//! TLS layer (CVE-2021-23214), direct TLS accepted without ALPN, a panic on an empty ALPN
//! list, cancel requests refused once TLS is up. [`Acceptor`] does it the way PostgreSQL's
//! postmaster does, from buffers the caller owns, and hands over the same [`Session`] type
//! as the client side.
//!
//! ## What it does with the first packet
//!
//! | the client sends | the acceptor |
//! |---|---|
//! | `SSLRequest` | answers `S` when TLS is configured, then reads the ClientHello; else `N` and reads the next packet |
//! | plaintext glued to `SSLRequest` | refuses it at once, without `S`: `received unencrypted data after SSL request` (CVE-2021-23214; PostgreSQL 17+ answers `S` and fails the TLS handshake on those bytes, 15 and 16 hang) |
//! | a ClientHello glued to `SSLRequest` | answers `S`, then hands it to TLS, as PostgreSQL 17+ (which pushes bytes buffered after `SSLRequest` into the TLS handshake; 15 and 16 hang) |
//! | `GSSENCRequest` | answers `N` (no GSSAPI), then reads the next packet |
//! | a ClientHello as the first byte (`0x16`) | direct TLS (PostgreSQL 17+): ALPN `postgresql` required, or refused by policy |
//! | `CancelRequest` (plaintext or inside TLS) | hands it over: process id and key (4..=256 bytes) |
//! | `StartupMessage` in plaintext | hands it over with the bytes consumed, or refuses it with a FATAL ErrorResponse (SQLSTATE 28000) telling the user to use `sslmode=require` ([`AcceptorConfig::require_tls`]) |
//! | `StartupMessage` inside TLS | hands it over with the session |
//!
//! The policy is an [`AcceptorConfig`]: require TLS, allow plaintext, or no TLS at all,
//! each with or without direct TLS. The TLS side is a [`ServerTls`]: one
//! `Arc<rustls::ServerConfig>` with ALPN `postgresql` and no resumption (as PostgreSQL;
//! [`ServerTlsBuilder::session_tickets`] opts in to rotating tickets), built once.
//!
//! ALPN, as PostgreSQL 17 applies it: a client that offers ALPN without `postgresql`
//! (an empty list included) gets a `no_application_protocol` alert, with either
//! negotiation; a direct-TLS client that offers no ALPN at all is refused too (PostgreSQL
//! 17 closes after the handshake; the acceptor answers the ClientHello with the same
//! alert, before any handshake work). Clients before libpq 17 send no ALPN after
//! `SSLRequest` and are accepted.
//!
//! ## The driving contract
//!
//! 1. Build an [`AcceptorConfig`] once; make an [`Acceptor`] per connection.
//! 2. Loop: [`Acceptor::poll_output`] appends to your `BytesMut` and answers with a
//!    [`crate::Output`]; on `Transmit(n)` send those `n` bytes; on `Receive` read from
//!    the client and pass the bytes to [`Acceptor::handle_input`] (it returns how many it
//!    consumed: keep the rest), or call [`Acceptor::handle_eof`]; on `Done` stop. Call
//!    `poll_output` after every `handle_input`: the `S` must be handed out before more
//!    input is accepted.
//! 3. On `Err`, keep calling `poll_output` until it returns the error again to send the
//!    last words (an ErrorResponse or a TLS alert), then close.
//! 4. [`Acceptor::into_accepted`] gives the [`Accepted`] client: how it connected, the
//!    TLS [`Session`] (SNI, ALPN, version, client certificates,
//!    [`Session::channel_binding`] over the server's own certificate for
//!    SCRAM-SHA-256-PLUS) and its [`FirstPacket`]. Unconsumed bytes belong to the session
//!    (TLS) or to your plaintext protocol.
//!
//! Against an in-memory client that sends `SSLRequest` and then, after the `N`, a
//! StartupMessage:
//!
//! ```
//! use bytes::BytesMut;
//! use pgtls::server::{Acceptor, AcceptorConfig, FirstPacket};
//! use pgtls::Output;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = AcceptorConfig::plaintext_only();
//! let mut startup = vec![0, 0, 0, 20, 0, 3, 0, 0];
//! startup.extend_from_slice(b"user\0alice\0\0");
//! let mut from_client: Vec<u8> = pgtls::wire::SSL_REQUEST.to_vec();
//! from_client.extend_from_slice(&startup);
//!
//! let mut acceptor = Acceptor::new(&config);
//! let mut to_client = BytesMut::new(); // a real server writes it to its socket
//! let mut unread = &from_client[..]; // what our "socket" has delivered
//! loop {
//!     match acceptor.poll_output(&mut to_client)? {
//!         Output::Transmit(_) => {} // the bytes were appended to `to_client`
//!         Output::Receive => {
//!             // A real server reads from its socket here (and calls handle_eof at EOF).
//!             let used = acceptor.handle_input(unread)?;
//!             unread = &unread[used..];
//!         }
//!         Output::Done => break,
//!     }
//! }
//! assert_eq!(&to_client[..], b"N");
//! let accepted = acceptor.into_accepted()?;
//! assert!(!accepted.is_tls());
//! match accepted.packet {
//!     FirstPacket::Startup(startup) => assert_eq!(startup.user(), Some("alice")),
//!     FirstPacket::Cancel(_) => unreachable!(),
//! }
//! # Ok(()) }
//! ```
//!
//! `pgtls proxy` (cli/src/proxy.rs) runs the same loop over `std::net::TcpStream`: a
//! TLS-terminating proxy in front of a PostgreSQL that speaks plaintext.
//!
//! ## Limits
//!
//! - A first packet is at most [`MAX_STARTUP_PACKET_LENGTH`] (10000) bytes after its
//!   4-byte length word, as PostgreSQL counts ([`MAX_FIRST_PACKET_BYTES`], 10004, in
//!   all); the length is checked before anything is allocated (a first byte other
//!   than `0x00` or `0x16` is refused at once). Requests are exactly 8 bytes, cancels
//!   12 + 4..=256.
//! - At most one `SSLRequest` and one `GSSENCRequest` before the first packet; a repeated
//!   one is refused as PostgreSQL does (`unsupported frontend protocol 1234.5679`).
//! - The ClientHello: at most one handshake message being reassembled by rustls (64 KiB).
//!   After the handshake the [`Session`]'s limits apply (one record plus 16 KiB of
//!   decrypted data incoming, [`crate::tls::OUTGOING_LIMIT`] outgoing). Only the bytes
//!   of the first packet are taken out of rustls; the rest stays in the session.
//! - Output before TLS is one byte (`S`/`N`), a short ErrorResponse or a 7-byte alert.
//! - No clock: a client trickling bytes costs nothing but its connection. Bound each
//!   connection's acceptance in time yourself, as PostgreSQL's `authentication_timeout`
//!   (60 s) does: a *deadline* from accepting the socket to the first packet, not a
//!   timeout per read (a client sending one byte every 15 s would otherwise stay for
//!   ever). With blocking sockets, fix `deadline = Instant::now() + limit` at accept and
//!   before each read or write set the socket's timeouts to what is left
//!   (`deadline.saturating_duration_since(Instant::now())`), giving up once nothing is
//!   left — `pgtls proxy` (cli/src/proxy.rs) does this (`--startup-timeout`). With tokio, run the
//!   whole accept loop inside one `tokio::time::timeout(limit, ...)`.
//!
//! ## Reloading certificates
//!
//! [`ServerTlsFiles`] reads PostgreSQL's `ssl_cert_file`, `ssl_key_file`, `ssl_ca_file`,
//! `ssl_crl_file` and `ssl_crl_dir` with PostgreSQL's error messages; put the result in
//! a [`SharedAcceptorConfig`] and [`SharedAcceptorConfig::replace`] it on `SIGHUP`. New
//! connections get the new files; established sessions keep theirs.
//!
//! ## Why one `Session` type for both sides
//!
//! The session wraps rustls's own `rustls::Connection` enum (client or server): one
//! predictable branch per call, no allocation, no dynamic dispatch, and the same methods
//! and adapters for both ends. A generic `Session<Side>` would have doubled the code
//! (monomorphised twice) and put a type parameter in every driver's signatures for no
//! measurable gain. The side-dependent answers: [`Session::sni`] is the name received,
//! [`Session::peer_certificates`] the client's chain, [`Session::channel_binding`] hashes
//! the server's own leaf (so both ends compute the same bytes), [`Session::is_server`].
//!
//! `server/tls.rs` is the only server-side module that calls rustls's server API
//! (`rustls::server::Acceptor` for the ClientHello, `Accepted::into_connection`); the
//! handshake and the session then run through the same `src/tls.rs` as the client.

mod acceptor;
mod config;
mod credentials;
mod error;
mod files;
mod packet;
mod reload;
mod tls;

pub use acceptor::{Accepted, Acceptor};
pub use config::{AcceptorConfig, ServerTls, ServerTlsBuilder, SessionTickets};
pub use error::{AcceptError, LoadError};
pub use files::ServerTlsFiles;
pub use packet::{
    error_response, CancelRequest, FirstPacket, StartupMessage, MAX_FIRST_PACKET_BYTES,
    MAX_STARTUP_PACKET_LENGTH,
};
pub use reload::SharedAcceptorConfig;

#[cfg(doc)]
use crate::Session;

/// The message of the FATAL ErrorResponse (SQLSTATE 28000) sent to a plaintext client when
/// TLS is required.
pub const PLAINTEXT_REFUSED_MESSAGE: &str =
    "connection is insecure: this server requires TLS (connect with sslmode=require or stronger)";

/// Its hint line.
pub const PLAINTEXT_REFUSED_HINT: &str =
    "Use sslmode=require, verify-ca or verify-full in the connection string or PGSSLMODE.";

/// Neon-style routing: the first label of the SNI name when the rest is `domain`
/// (ASCII case-insensitive, a trailing dot on `domain` ignored).
///
/// ```
/// use pgtls::server::endpoint_from_sni;
/// let sni = "ep-cool-darkness-123456.us-east-2.aws.neon.tech";
/// assert_eq!(endpoint_from_sni(sni, "us-east-2.aws.neon.tech"), Some("ep-cool-darkness-123456"));
/// assert_eq!(endpoint_from_sni(sni, "eu-central-1.aws.neon.tech"), None);
/// assert_eq!(endpoint_from_sni("us-east-2.aws.neon.tech", "us-east-2.aws.neon.tech"), None);
/// ```
///
/// Without SNI (libpq sends none for IP addresses, or with `sslsni=0`) the caller needs
/// another source, such as an `options=endpoint=<id>` startup parameter.
pub fn endpoint_from_sni<'a>(sni: &'a str, domain: &str) -> Option<&'a str> {
    let (label, rest) = sni.split_once('.')?;
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    (!label.is_empty() && !domain.is_empty() && rest.eq_ignore_ascii_case(domain)).then_some(label)
}
