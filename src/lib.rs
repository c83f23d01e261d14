//! # pgtls — PostgreSQL transport security the way libpq does it, without a socket
//!
//! pgtls secures one PostgreSQL connection from buffers the caller owns: it speaks the
//! `SSLRequest` exchange (or PostgreSQL 17+ direct TLS), drives the rustls handshake,
//! verifies the server the way libpq's `sslmode` says, and then encrypts and decrypts
//! the session. It does no IO, so tokio, blocking `std::io`, a proxy's event loop or a
//! fuzzer can all wrap it.
//!
//! ## Start here: the whole connection as one loop
//!
//! [`ConnectionSetup`] is libpq's whole connection setup as one machine: the attempt plan
//! ([`plan::Plan`]), each attempt's [`Negotiation`], the hand-off to the [`Session`], which
//! transport failures let `prefer` fall back, the server's ErrorResponse after a rejected
//! startup, the next host of a multi-host list. The driver owns the sockets, the clock
//! and the PostgreSQL startup, and does what each [`setup::Action`] says:
//!
//! 1. Make one per connection: [`ConnectionSetup::new`] (one host, from a [`Config`]
//!    built once with [`Config::builder`]) or [`ConnectionSetup::multi_host`].
//! 2. Loop on [`ConnectionSetup::poll_output`], which appends bytes to send to a
//!    `BytesMut`: `Open { host, .. }` a new transport (empty input buffer), `Transmit`
//!    the output buffer, `Receive` and report the bytes
//!    ([`ConnectionSetup::handle_input`] advances your `BytesMut` by what it consumed),
//!    EOF or the transport error, `Close` the transport.
//! 3. On `Ready`, run the startup — over the [`Session`] or in plaintext; bytes still in
//!    the input buffer belong to it — and report the outcome: accepted, or rejected with
//!    the server's raw ErrorResponse (SQLSTATE `28000` makes `allow`/`prefer` retry with
//!    the other encryption, `57P03` moves to the next host).
//! 4. `Done`: the connection is yours. `Failed`: libpq's message, every attempt, and
//!    whether libpq would try another host.
//!
//! `connect_timeout` is the driver's clock: [`ConnectionSetup::handle_timeout`] when it
//! expires. Out-of-order events are [`Error::Misuse`], never a panic or a spin. With a
//! session, [`Session::handle_application_data_buf`] / [`Session::poll_output`] send
//! and [`Session::handle_input_buf`] / [`Session::poll_application_data_into`] receive,
//! from and into `BytesMut`s; [`Session::close`] queues close_notify.
//!
//! The whole loop, against two in-memory servers without TLS: the first is starting up
//! (`57P03`), so libpq moves to the second, which answers `N` — `prefer` goes on in
//! plaintext on the same connection:
//!
//! ```
//! use bytes::BytesMut;
//! use pgtls::plan::Transport;
//! use pgtls::setup::{Action, Ready};
//! use pgtls::{Config, ConnectionSetup};
//! # use std::collections::VecDeque;
//! # /// A scripted postmaster without SSL: `N`, then 57P03 (`starting`) or ReadyForQuery.
//! # struct Socket { starting: bool, to_client: VecDeque<u8> }
//! # impl Socket {
//! #     fn open(host: usize) -> Socket { Socket { starting: host == 0, to_client: VecDeque::new() } }
//! #     fn write(&mut self, bytes: &[u8]) {
//! #         let reply: &[u8] = match (bytes == pgtls::wire::SSL_REQUEST, self.starting) {
//! #             (true, _) => b"N",
//! #             (false, true) => b"E\0\0\0\x1dSFATAL\0C57P03\0Mstarting\0\0",
//! #             (false, false) => b"R\0\0\0\x08\0\0\0\0Z\0\0\0\x05I",
//! #         };
//! #         self.to_client.extend(reply);
//! #     }
//! #     fn read(&mut self, input: &mut BytesMut) -> usize {
//! #         let n = self.to_client.len();
//! #         input.extend(self.to_client.drain(..));
//! #         n
//! #     }
//! # }
//! # /// The driver's startup: a StartupMessage, then the first reply (`R` or an `E`).
//! # fn startup(sock: &mut Socket, input: &mut BytesMut) -> Result<(), Vec<u8>> {
//! #     sock.write(b"\0\0\0\x08\0\x03\0\0");
//! #     sock.read(input);
//! #     match input.first() { Some(b'E') => Err(input.split().to_vec()), _ => Ok(()) }
//! # }
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::builder().host("localhost").build()?; // sslmode=prefer
//! let hosts = [(config.clone(), Transport::Tcp), (config, Transport::Tcp)];
//! let mut setup = ConnectionSetup::multi_host(hosts)?;
//! let (mut out, mut input) = (BytesMut::new(), BytesMut::new());
//! let mut sock: Option<Socket> = None;
//! loop {
//!     match setup.poll_output(&mut out)? {
//!         Action::Open { host, .. } => {
//!             input.clear();
//!             sock = Some(Socket::open(host)); // a real driver: TcpStream::connect
//!         }
//!         Action::Transmit(_) => {
//!             sock.as_mut().expect("open").write(&out);
//!             out.clear();
//!         }
//!         Action::Receive => match sock.as_mut().expect("open").read(&mut input) {
//!             0 => setup.handle_eof()?,
//!             _ => {
//!                 setup.handle_input(&mut input)?;
//!             }
//!         },
//!         Action::Close => {
//!             out.clear(); // a real driver sends what is left (a TLS alert) first
//!             sock = None;
//!         }
//!         Action::Ready(ready) => {
//!             let sock = sock.as_mut().expect("open");
//!             let outcome = match ready {
//!                 // Over TLS: the startup goes through the session, and the bytes left
//!                 // in `input` are TLS records for it.
//!                 Ready::Tls(_session) => unreachable!("these servers have no TLS"),
//!                 Ready::Plaintext => startup(sock, &mut input),
//!             };
//!             match outcome {
//!                 Ok(()) => setup.handle_startup_accepted()?,
//!                 Err(error_response) => setup.handle_startup_rejected(&error_response)?,
//!             }
//!         }
//!         Action::Done => break,
//!         Action::Failed(failed) => return Err(failed.to_string().into()),
//!     }
//! }
//! assert_eq!(setup.host(), 1);
//! let errors: Vec<_> = setup.attempts().iter().map(|a| a.error.as_deref()).collect();
//! let n = "server does not support SSL, but SSL was required";
//! assert_eq!(errors, [Some(n), Some("starting"), Some(n), None]);
//! # Ok(()) }
//! ```
//!
//! `examples/manual_loop.rs` runs the same loop over `std::net::TcpStream`, TLS session
//! included. The pieces stay public for drivers that want them: [`plan::Plan`] alone,
//! or one attempt's [`Negotiation`] ([`Negotiated`] gives its session). Every machine
//! that speaks bytes — [`Negotiation`], [`Session`], [`server::Acceptor`] — has the
//! same output verb, `poll_output(&mut BytesMut) -> Result<`[`Output`]`, _>`, whose
//! `Transmit`, `Receive` and `Done` are the words of [`setup::Action`] too.
//!
//! ## With a libpq connection string and an adapter
//!
//! Most users have a libpq connection string (or `PG*` variables and `~/.postgresql/`
//! files) and a socket. [`libpq::ConnParams`] reads them exactly as libpq does,
//! [`libpq::Settings::to_configs`] turns them into one [`Config`] per host, and an adapter
//! runs libpq's whole plan over your transport — retries on a new connection and
//! `connect_timeout` included:
//!
//! ```no_run
//! # #[cfg(all(feature = "blocking", feature = "libpq"))]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::net::TcpStream;
//! use pgtls::blocking::{connect, StartupError};
//! use pgtls::libpq::{ConnParams, Environment};
//!
//! let settings = ConnParams::parse("host=db.example.com sslmode=verify-full sslrootcert=root.crt")?
//!     .resolve(&Environment::from_process_env())?;
//! let (target, config) = settings.to_configs()?.into_iter().next().expect("one host");
//! let addr = (target.connect_host().to_owned(), target.port());
//! let connected = connect(
//!     &config,
//!     settings.connect_timeout(),
//!     |_time_left| TcpStream::connect(addr.clone()),
//!     |_stream| -> Result<(), StartupError> {
//!         Ok(()) // your driver's StartupMessage and authentication
//!     },
//! )
//! .map_err(|failed| failed.to_string())?; // libpq's message, e.g.
//! // "SSL error: certificate verify failed: unable to get local issuer certificate"
//! assert!(connected.stream.is_tls());
//! # Ok(()) }
//! # #[cfg(not(all(feature = "blocking", feature = "libpq")))]
//! # fn main() {}
//! ```
//!
//! | you have | use |
//! |---|---|
//! | blocking `std::io` (any `Read + Write`) | [`blocking::connect`] (feature `blocking`, on by default) |
//! | tokio (any `AsyncRead + AsyncWrite`) | `pgtls::tokio::connect` (feature `tokio`) |
//! | tokio-postgres | `pgtls::tokio_postgres::connect_conninfo` for libpq's whole plan, or its `MakeTlsConnector` (feature `tokio-postgres`) |
//! | your own event loop, a driver, a fuzzer | the sans-IO machine for the whole connection: [`ConnectionSetup`] ([the driving contract](#start-here-the-whole-connection-as-one-loop)); one attempt at a time: [`Negotiation`] |
//! | settings built in code, no files or environment | [`Config::builder`] |
//! | the server side (a proxy or pooler) | [`server::Acceptor`] |
//!
//! Errors print libpq's words with `Display` (`{}`); [`Error::blame`] tells who is at
//! fault. The behaviour these follow is written down in the repository's `BEHAVIOUR.md`,
//! with the libpq source lines each rule comes from.
//!
//! ## Feature flags
//!
//! | feature | default | enables | pulls in |
//! |---|---|---|---|
//! | `aws-lc-rs` | yes | rustls's aws-lc-rs crypto provider | aws-lc-rs (C and assembly, built with cc/cmake) |
//! | `ring` | no | rustls's ring provider, used when `aws-lc-rs` is off | ring (C and assembly, built with cc) |
//! | `webpki-roots` | yes | [`RootCertificates::WebPki`]: Mozilla's roots, an explicit opt-in | webpki-roots (the roots compiled in) |
//! | `system-roots` | yes | [`RootCertificates::system`]: the platform store, for `sslrootcert=system` | rustls-native-certs |
//! | `blocking` | yes | [`blocking`]: the whole plan over `std::io`, cancel requests | nothing |
//! | `libpq` | yes | `pgtls::libpq`: libpq's settings layer — connection strings, `PG*` variables, service and password files, the `~/.postgresql/` TLS files, encrypted client keys (`sslpassword`) | pkcs8 (PBES2: scrypt, PBKDF2, AES-CBC), nix (Unix: the user's name and home directory) |
//! | `tokio` | no | `pgtls::tokio`: the whole plan over tokio IO, pgtls's own async TLS stream | tokio (`io-util`, `time`) |
//! | `futures-io` | no | `pgtls::futures_io`: the whole plan over futures-io (smol, async-std), cancel requests | futures-io, tokio (its IO traits only) |
//! | `tokio-postgres` | no | `pgtls::tokio_postgres`: a `MakeTlsConnect` with libpq's verification, and libpq's whole plan before tokio-postgres takes over | tokio-postgres, tokio (`net`); enables `libpq` |
//!
//! The sans-IO core, the verifier and the server-side [`server::Acceptor`] are always
//! built. Without `libpq` the client side reads no files and no environment: build each
//! [`Config`] with [`Config::builder`] from certificates and unencrypted keys (DER, or PEM
//! through [`RootCertificates::from_pem`] and `rustls::pki_types::pem`). With
//! `default-features = false` and one provider the crate's normal dependency tree is about
//! 50 crates, 39 of them linked (the rest are build-time proc-macros); the repository's
//! README has the count of each combination and the command that measures it. Build
//! these docs as docs.rs does, with every adapter, with `cargo docs --open` (an alias in
//! the repository's `.cargo/config.toml`).
//!
//! ## Goals
//! - libpq's behaviour and libpq's messages: the six sslmodes with their fallbacks
//!   (including the ones that need a new connection), `sslnegotiation=direct` with ALPN,
//!   `sslrootcert` (file or `system`), CRLs, client certificates, `sslsni`, protocol
//!   version limits, `sslcertmode`, `tls-server-end-point` channel binding.
//! - libpq's certificate rules, which rustls/webpki do not follow: X.509 v1
//!   certificates, CN fallback, inet_aton host forms, root files whose intermediates
//!   are not anchors, CRLs required for every CA once any are loaded.
//! - No panic on any input, memory bounded whatever the peer sends, typed errors
//!   grouped by blame ([`Blame`]).
//!
//! ## Non-goals
//! Sockets, DNS, timers, threads, the rest of the PostgreSQL protocol (startup,
//! authentication, queries belong to the driver), GSSAPI encryption, OpenSSL engines.
//!
//! ## The sslmode table
//!
//! | sslmode | attempt 1 | on failure, attempt 2 | verifies chain | verifies host name |
//! |---|---|---|---|---|
//! | disable | plaintext | — | — | — |
//! | allow | plaintext | TLS on a **new** connection | if roots are given | no |
//! | prefer (default) | TLS | plaintext: same socket after `N`, new connection otherwise | if roots are given | no |
//! | require | TLS | — | if roots are given | no |
//! | verify-ca | TLS | — | yes | no |
//! | verify-full | TLS | — | yes | yes |
//!
//! The planner ([`plan::Plan`]) holds this policy; the per-attempt machine
//! ([`Negotiation`]) speaks the bytes.
//!
//! ## Security notes
//! - Bytes that arrive glued to the server's `S` are refused (CVE-2021-23222); they
//!   never reach TLS or the plaintext protocol.
//! - An `E` answer to `SSLRequest` fails in every sslmode without reading the message
//!   (CVE-2024-10977), and never falls back.
//! - `prefer` and `allow` may end in plaintext: that is libpq's policy. Use `require` or
//!   stronger where an attacker on the path matters; `verify-full` for real
//!   authentication of the server.
//! - Without a root source, `allow`/`prefer`/`require` accept any certificate (as libpq);
//!   the handshake signature is still verified with the certificate's key.
//! - No session resumption by default (libpq creates a new TLS context per connection).
//!   [`ConfigBuilder::session_resumption`] turns it on: a session is offered again only
//!   to the same host, port, sslmode, roots and client certificate, from the same
//!   [`Config`]; a resumed handshake re-verifies nothing (the server's certificate is not
//!   sent again), see that method for what it skips. [`Session::resumed`] tells. A
//!   caller who starts from its own rustls `ClientConfig`
//!   ([`ConfigBuilder::rustls_client_config`]) keeps its resumption store, which rustls
//!   only uses with the same verifier, so a session is never resumed across `Config`s.
//!   What a `Config` does remember by default is which server chains verified, and until
//!   when that verdict holds ([`ConfigBuilder::verified_chain_cache`]): the verdict is the
//!   same, the host name and the handshake signature are checked on every connection.
//! - Randomness and the clock reach rustls only through the provider and time provider
//!   in the [`Config`]; pgtls never calls `ClientConfig::builder()`.
//!
//! ## Deliberate differences from libpq
//! - rustls speaks TLS 1.2 and 1.3 only: `ssl_min_protocol_version=TLSv1`/`TLSv1.1`
//!   act as TLSv1.2; a maximum below TLSv1.2 makes every TLS attempt fail with
//!   `SSL error: no protocols available` (what OpenSSL reports), so `prefer` falls back.
//! - A host that rustls cannot put in SNI (not a valid DNS name) is sent without SNI;
//!   libpq would send the raw string.
//! - Chain failures read `SSL error: certificate verify failed: <reason>`, adding
//!   OpenSSL's reason string to libpq's text.
//! - Key sizes follow OpenSSL's security level 2 (libpq on Debian's OpenSSL 3) whenever a
//!   chain is verified: an RSA key under 1963 bits (RSA-1024), DSA under 2048/224 or EC
//!   under 224 bits (P-192) fails as `EE certificate key too weak` for the server's own
//!   certificate and `CA certificate key too weak` for any certificate above it, the trust
//!   anchor included. Without a root source nothing is checked, as libpq's
//!   `SSL_VERIFY_NONE` (OpenSSL then completes the handshake with a weak key; pgtls's
//!   provider cannot verify signatures of RSA keys under 2048 bits, so such a handshake
//!   fails there).
//! - The server side checks client certificates with the same rules and OpenSSL's
//!   `ssl_client` purpose, and sends OpenSSL's alert for each failure, except
//!   `internal_error` for oversized name constraints (`X509_V_ERR_UNSPECIFIED`), which a
//!   rustls verifier cannot send: `certificate_unknown` goes instead.
//! - Bytes glued to `S` are refused as soon as they are seen rather than after the
//!   handshake starts (libpq's rule, applied earlier).
//! - Mozilla's roots ([`RootCertificates::WebPki`]) are an opt-in pgtls addition.
//! - When OpenSSL's one chain fails, pgtls also tries the other certificates the server sent
//!   that could have issued a certificate (OpenSSL takes the first and does not backtrack),
//!   and accepts a path that passes every check. Root-file lookups are never widened.
//!
//! ## Limits
//! Before TLS, pgtls consumes exactly one byte. During and after the handshake rustls
//! buffers at most one incoming record (about 16 KiB) plus 16 KiB of decrypted data,
//! and [`tls::OUTGOING_LIMIT`] bytes of outgoing plaintext; `handle_input` consumes less
//! than offered instead of growing.
//!
//! ## The server side
//! [`server::Acceptor`] is the mirror image for proxies and poolers: it answers
//! `SSLRequest` (`S`, or `N` without TLS) and `GSSENCRequest` (`N`), accepts PostgreSQL
//! 17+ direct TLS with ALPN `postgresql`, refuses plaintext glued to `SSLRequest`
//! (CVE-2021-23214; a TLS ClientHello in the same write goes to TLS, as PostgreSQL 18),
//! refuses or accepts plaintext by policy (a FATAL ErrorResponse telling
//! the user to use `sslmode=require`), and hands over the client's first packet
//! (StartupMessage or CancelRequest) with the same [`Session`] type, whose
//! [`Session::channel_binding`] is computed over the server's own certificate. Same
//! driving contract (`handle_input` / `poll_output` / `into_accepted`); see the
//! [`server`] module and `pgtls proxy` (cli/src/proxy.rs).

#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "blocking")]
pub use io::blocking;
pub mod channel_binding;
mod config;
mod error;
pub mod error_response;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzz;
#[cfg(feature = "libpq")]
pub mod libpq;
mod negotiate;
mod output;
pub mod plan;
#[cfg(feature = "futures-io")]
pub use io::futures_io;
mod io;
mod os_error;
pub mod server;
mod session;
pub mod setup;
pub mod tls;
#[cfg(feature = "tokio")]
pub use io::tokio;
#[cfg(feature = "tokio-postgres")]
pub use io::tokio_postgres;
mod verify;
pub mod wire;

pub use channel_binding::{tls_server_end_point, ChannelBindingError};
pub use config::{
    Config, ConfigBuilder, RootCertificates, SessionResumption, SslCertMode, SslMode,
    SslNegotiation, TlsVersion,
};
pub use error::{Blame, CertificateProblem, ConfigError, Error};
pub use negotiate::{Negotiated, Negotiation};
pub use output::Output;
pub use session::{ApplicationData, Session};
pub use setup::ConnectionSetup;
pub use verify::VerifiedChainCacheStats;

/// The rustls version pgtls is built on, for callers who configure it directly.
pub use rustls;

/// The `bytes` version of pgtls's buffers (`poll_output` appends to a [`bytes::BytesMut`]).
pub use bytes;

impl Config {
    /// The attempt plan for this host over TCP (see [`plan::Plan`]).
    pub fn plan(&self) -> plan::Plan {
        plan::Plan::new(self.sslmode(), self.negotiation(), plan::Transport::Tcp)
    }
}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
