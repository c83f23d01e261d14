//! A scripted PostgreSQL postmaster in front of a real `rustls::ServerConnection`, in memory and
//! sans-IO: tests hand it the client's bytes ([`FakeServer::handle_client_bytes`]) and take what
//! it wants to send ([`FakeServer::take_output`]); [`FakeServer::is_closed`] says the client
//! would now see EOF (after draining the output).
//!
//! What it does, in order:
//!
//! 1. **Request.** The first packet is read: `SSLRequest` (`00 00 00 08 04 D2 16 2F`) is answered
//!    per [`ServerScript::reply`]; a `GSSENCRequest` is answered `N` (no GSSAPI, like a server
//!    built without it) and the next packet is awaited; a first byte `0x16` is a direct TLS
//!    ClientHello (PostgreSQL 17+, accepted only if [`ServerScript::accept_direct`], otherwise the
//!    connection is closed silently like a pre-17 postmaster seeing a bogus packet length); any
//!    other packet is taken as a plaintext StartupMessage (what `sslmode=disable` sends).
//! 2. **TLS.** After `S` (or direct), bytes go to rustls; a TLS error makes the server emit its
//!    alert and close. When the handshake completes, [`ServerScript::after_tls`] applies.
//! 3. **Startup.** A StartupMessage (length-prefixed, protocol 3.x) received in plaintext (after
//!    `N`, or first) or over TLS is answered per [`ServerScript::startup`]: AuthenticationOk +
//!    ReadyForQuery, or an ErrorResponse and close.
//! 4. **Established.** Later bytes are recorded ([`FakeServer::plaintext_received`],
//!    [`FakeServer::tls_plaintext_received`]); tests can [`FakeServer::send_app_data`],
//!    [`FakeServer::send_close_notify`], [`FakeServer::close`] or [`FakeServer::inject_raw`].
//!
//! It never panics on client bytes and its buffers are bounded ([`MAX_STARTUP_PACKET`],
//! [`MAX_RECORDED`]): a client exceeding them gets the connection closed.
//!
//! This file depends on no other test module: certificates and keys come in as parameters.

use std::fmt;
use std::io::{self, Read as _, Write as _};
use std::sync::Arc;

use rustls::crypto::aws_lc_rs;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection, SupportedProtocolVersion};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// `SSLRequest`: length 8, code 80877103.
pub const SSL_REQUEST: [u8; 8] = [0x00, 0x00, 0x00, 0x08, 0x04, 0xd2, 0x16, 0x2f];
/// `GSSENCRequest`: length 8, code 80877104.
pub const GSSENC_REQUEST: [u8; 8] = [0x00, 0x00, 0x00, 0x08, 0x04, 0xd2, 0x16, 0x30];
/// Request code of `SSLRequest`.
pub const SSL_REQUEST_CODE: u32 = 80_877_103;
/// Request code of `GSSENCRequest`.
pub const GSSENC_REQUEST_CODE: u32 = 80_877_104;
/// Request code of `CancelRequest`.
pub const CANCEL_REQUEST_CODE: u32 = 80_877_102;
/// Protocol version 3.0 as sent in a StartupMessage.
pub const PROTOCOL_3_0: u32 = 0x0003_0000;
/// The ALPN protocol name PostgreSQL uses.
pub const ALPN_POSTGRESQL: &[u8] = b"postgresql";
/// Largest StartupMessage accepted (PostgreSQL's `MAX_STARTUP_PACKET_LENGTH`).
pub const MAX_STARTUP_PACKET: usize = 10_000;
/// At most this many received application bytes are recorded per channel; more closes.
pub const MAX_RECORDED: usize = 1 << 20;

/// The server's answer to an `SSLRequest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `S`, then TLS (answered as `N` if the script has no TLS config: a server without SSL).
    S,
    /// `N`, then a plaintext StartupMessage is expected on the same connection.
    N,
    /// An ErrorResponse (`E`, FATAL 53300 "sorry, too many clients already"), then close.
    E,
    /// This single byte, then further client bytes are discarded and never answered.
    Byte(u8),
    /// `S` immediately followed by these bytes in the same flight (CVE-2021-23222), then TLS as
    /// for `S` should the client go on anyway (discarded without a TLS config).
    SThenBytes(Vec<u8>),
    /// `N` immediately followed by these bytes, then as `N`.
    NThenBytes(Vec<u8>),
    /// Close the connection without answering (the client sees EOF).
    CloseAfterRequest,
    /// Never answer; discard everything (for "the client must not spin" tests).
    Silent,
}

/// What the server does once its side of the TLS handshake completes.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum AfterTls {
    /// Behave like a postmaster: wait for the StartupMessage over TLS.
    #[default]
    Postmaster,
    /// Send these application bytes at once (e.g. `b"R"`), then behave as `Postmaster`.
    Greet(Vec<u8>),
    /// Echo every application byte back; no startup processing.
    Echo,
    /// Send close_notify and close.
    CloseNotify,
    /// Close without close_notify (a truncation).
    Close,
    /// Send these raw bytes outside TLS records (garbage after the handshake) and keep going.
    Garbage(Vec<u8>),
}

/// How the server answers a StartupMessage.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum StartupBehaviour {
    /// AuthenticationOk (`R`, 0) + ReadyForQuery (`Z`, `I`), on either transport.
    #[default]
    Accept,
    /// pg_hba `hostssl` only: a plaintext startup gets FATAL 28000
    /// `no pg_hba.conf entry for host "127.0.0.1", user "<u>", database "<d>", no encryption`
    /// and close; a startup over TLS is accepted.
    RejectPlaintext,
    /// pg_hba `hostnossl` only: a startup over TLS gets FATAL 28000 `..., SSL encryption` and
    /// close; a plaintext startup is accepted.
    RejectTls,
    /// Every startup gets FATAL with this SQLSTATE and message, then close
    /// (e.g. `57P03` "the database system is starting up").
    Error {
        /// Five-character SQLSTATE.
        sqlstate: String,
        /// Primary message.
        message: String,
    },
    /// Close without answering the startup.
    Close,
}

/// The script of one fake connection.
#[derive(Clone, Debug)]
pub struct ServerScript {
    /// Answer to `SSLRequest`.
    pub reply: Reply,
    /// TLS configuration; `None` for a server without SSL.
    pub tls: Option<Arc<ServerConfig>>,
    /// PostgreSQL 17+: accept a direct ClientHello as the first bytes. `false`: a pre-17 server,
    /// which closes the connection on one.
    pub accept_direct: bool,
    /// What happens after the handshake.
    pub after_tls: AfterTls,
    /// How StartupMessages are answered.
    pub startup: StartupBehaviour,
}

impl ServerScript {
    /// A PostgreSQL 17+ server with SSL: answers `S`, accepts direct TLS, accepts startups.
    pub fn tls(config: Arc<ServerConfig>) -> Self {
        ServerScript {
            reply: Reply::S,
            tls: Some(config),
            accept_direct: true,
            after_tls: AfterTls::default(),
            startup: StartupBehaviour::default(),
        }
    }

    /// A pre-17 server with SSL: answers `S`, closes on a direct ClientHello.
    pub fn pre17_tls(config: Arc<ServerConfig>) -> Self {
        ServerScript {
            accept_direct: false,
            ..ServerScript::tls(config)
        }
    }

    /// A server without SSL: answers `N`, accepts plaintext startups.
    pub fn plaintext_only() -> Self {
        ServerScript {
            reply: Reply::N,
            tls: None,
            accept_direct: false,
            after_tls: AfterTls::default(),
            startup: StartupBehaviour::default(),
        }
    }

    /// A server without TLS config that answers `SSLRequest` with `reply`.
    pub fn replying(reply: Reply) -> Self {
        ServerScript {
            reply,
            ..ServerScript::plaintext_only()
        }
    }

    /// Replaces the answer to `SSLRequest`.
    pub fn with_reply(mut self, reply: Reply) -> Self {
        self.reply = reply;
        self
    }

    /// Replaces the TLS configuration.
    pub fn with_tls(mut self, config: Option<Arc<ServerConfig>>) -> Self {
        self.tls = config;
        self
    }

    /// Accepts (or not) direct TLS.
    pub fn with_direct(mut self, accept: bool) -> Self {
        self.accept_direct = accept;
        self
    }

    /// Replaces the after-handshake behaviour.
    pub fn with_after_tls(mut self, after: AfterTls) -> Self {
        self.after_tls = after;
        self
    }

    /// Replaces the startup behaviour.
    pub fn with_startup(mut self, startup: StartupBehaviour) -> Self {
        self.startup = startup;
        self
    }
}

/// Why [`FakeServer::handle_client_bytes`] did not take the bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FakeServerError {
    /// The server has closed the connection; the bytes were not consumed
    /// (on a real socket: EPIPE / connection reset).
    Closed,
}

impl fmt::Display for FakeServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FakeServerError::Closed => f.write_str("fake server has closed the connection"),
        }
    }
}

impl std::error::Error for FakeServerError {}

/// A StartupMessage the server received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartupSeen {
    /// True if it arrived inside TLS.
    pub over_tls: bool,
    /// The protocol version word (e.g. [`PROTOCOL_3_0`]).
    pub protocol: u32,
    /// The key/value parameters in order (`user`, `database`, ...).
    pub params: Vec<(String, String)>,
}

impl StartupSeen {
    /// The value of parameter `key`, if present.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the first packet (≤ 8 bytes buffered).
    Request,
    /// After `N` or a first StartupMessage: plaintext.
    Plain,
    /// TLS (handshake or session).
    Tls,
    /// Discarding everything.
    Discard,
    /// Closed.
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum App {
    AwaitStartup,
    Established,
    Echo,
}

/// The scripted server. See the module docs.
pub struct FakeServer {
    script: ServerScript,
    phase: Phase,
    app: App,
    request_buf: Vec<u8>,
    startup_buf: Vec<u8>,
    out: Vec<u8>,
    tls: Option<ServerConnection>,
    handshake_done: bool,
    tls_error: Option<rustls::Error>,
    saw_ssl_request: bool,
    saw_gssenc_request: bool,
    saw_direct: bool,
    peer_close_notify: bool,
    startups: Vec<StartupSeen>,
    plain_received: Vec<u8>,
    tls_received: Vec<u8>,
}

impl fmt::Debug for FakeServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeServer")
            .field("phase", &self.phase)
            .field("app", &self.app)
            .field("handshake_done", &self.handshake_done)
            .field("tls_error", &self.tls_error)
            .field("pending_output", &self.out.len())
            .finish()
    }
}

impl FakeServer {
    /// A server that will follow `script`.
    pub fn new(script: ServerScript) -> Self {
        FakeServer {
            script,
            phase: Phase::Request,
            app: App::AwaitStartup,
            request_buf: Vec::new(),
            startup_buf: Vec::new(),
            out: Vec::new(),
            tls: None,
            handshake_done: false,
            tls_error: None,
            saw_ssl_request: false,
            saw_gssenc_request: false,
            saw_direct: false,
            peer_close_notify: false,
            startups: Vec::new(),
            plain_received: Vec::new(),
            tls_received: Vec::new(),
        }
    }

    /// Feeds bytes the client sent. Returns how many were consumed: all of them, unless the
    /// server has already closed, in which case `Err(Closed)` and none are.
    pub fn handle_client_bytes(&mut self, bytes: &[u8]) -> Result<usize, FakeServerError> {
        if self.phase == Phase::Closed {
            return Err(FakeServerError::Closed);
        }
        let mut rest = bytes;
        while !rest.is_empty() {
            match self.phase {
                Phase::Request => rest = self.handle_request_bytes(rest),
                Phase::Plain => {
                    self.handle_app_bytes(rest, false);
                    rest = &[];
                }
                Phase::Tls => {
                    self.handle_tls_bytes(rest);
                    rest = &[];
                }
                Phase::Discard | Phase::Closed => rest = &[],
            }
        }
        self.flush_tls();
        Ok(bytes.len())
    }

    /// The client closed its sending side (EOF): the server closes too.
    pub fn handle_client_eof(&mut self) {
        self.phase = Phase::Closed;
    }

    /// Bytes the server wants to send now (drained).
    pub fn take_output(&mut self) -> Vec<u8> {
        self.flush_tls();
        std::mem::take(&mut self.out)
    }

    /// True if output is waiting in [`FakeServer::take_output`].
    pub fn has_output(&self) -> bool {
        !self.out.is_empty() || self.tls.as_ref().is_some_and(|c| c.wants_write())
    }

    /// The server has closed its side: after draining the output the client sees EOF.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// An `SSLRequest` was received.
    pub fn saw_ssl_request(&self) -> bool {
        self.saw_ssl_request
    }

    /// A `GSSENCRequest` was received.
    pub fn saw_gssenc_request(&self) -> bool {
        self.saw_gssenc_request
    }

    /// The connection opened with a TLS record (direct TLS), whether accepted or not.
    pub fn saw_direct_client_hello(&self) -> bool {
        self.saw_direct
    }

    /// The SNI host name the client sent, if any.
    pub fn sni(&self) -> Option<String> {
        self.tls
            .as_ref()
            .and_then(|c| c.server_name())
            .map(str::to_owned)
    }

    /// The ALPN protocol the server selected, if any.
    pub fn alpn(&self) -> Option<Vec<u8>> {
        self.tls
            .as_ref()
            .and_then(|c| c.alpn_protocol())
            .map(<[u8]>::to_vec)
    }

    /// The client presented a (verified) certificate.
    pub fn client_cert_presented(&self) -> bool {
        self.tls
            .as_ref()
            .and_then(|c| c.peer_certificates())
            .is_some_and(|certs| !certs.is_empty())
    }

    /// The certificates the client presented.
    pub fn client_certs(&self) -> Vec<CertificateDer<'static>> {
        self.tls
            .as_ref()
            .and_then(|c| c.peer_certificates())
            .map(|certs| certs.iter().map(|c| c.clone().into_owned()).collect())
            .unwrap_or_default()
    }

    /// The server's side of the TLS handshake completed.
    pub fn is_handshake_complete(&self) -> bool {
        self.handshake_done
    }

    /// The TLS version negotiated, once known.
    pub fn negotiated_version(&self) -> Option<rustls::ProtocolVersion> {
        self.tls.as_ref().and_then(|c| c.protocol_version())
    }

    /// The TLS error that ended the connection, if any.
    pub fn tls_error(&self) -> Option<&rustls::Error> {
        self.tls_error.as_ref()
    }

    /// The client sent close_notify.
    pub fn peer_sent_close_notify(&self) -> bool {
        self.peer_close_notify
    }

    /// StartupMessages received so far.
    pub fn startups(&self) -> &[StartupSeen] {
        &self.startups
    }

    /// Application data received over TLS (StartupMessage included).
    pub fn tls_plaintext_received(&self) -> &[u8] {
        &self.tls_received
    }

    /// Bytes received in plaintext after the first packet's answer (StartupMessage included;
    /// a plaintext first StartupMessage too).
    pub fn plaintext_received(&self) -> &[u8] {
        &self.plain_received
    }

    /// Queues application data: over TLS once the handshake is done, raw in plaintext phase;
    /// ignored otherwise (before the handshake, or closed).
    pub fn send_app_data(&mut self, data: &[u8]) {
        match self.phase {
            Phase::Tls if self.handshake_done => {
                if let Some(conn) = self.tls.as_mut() {
                    // Buffered by rustls; cannot fail for an in-memory writer.
                    let _ = conn.writer().write_all(data);
                }
                self.flush_tls();
            }
            Phase::Plain => self.out.extend_from_slice(data),
            _ => {}
        }
    }

    /// Sends close_notify (if TLS is up) and closes the connection.
    pub fn send_close_notify(&mut self) {
        if self.phase == Phase::Closed {
            return;
        }
        if let Some(conn) = self.tls.as_mut() {
            conn.send_close_notify();
        }
        self.flush_tls();
        self.phase = Phase::Closed;
    }

    /// Closes the connection abruptly (no close_notify).
    pub fn close(&mut self) {
        self.flush_tls();
        self.phase = Phase::Closed;
    }

    /// Appends raw bytes to the output, outside any TLS framing.
    pub fn inject_raw(&mut self, bytes: &[u8]) {
        self.flush_tls();
        self.out.extend_from_slice(bytes);
    }

    // -----------------------------------------------------------------------------------------

    fn handle_request_bytes<'a>(&mut self, bytes: &'a [u8]) -> &'a [u8] {
        if self.request_buf.is_empty() && bytes[0] == 0x16 {
            self.saw_direct = true;
            match self.script.tls.clone() {
                Some(config) if self.script.accept_direct => {
                    if self.start_tls(config) {
                        self.phase = Phase::Tls;
                    }
                }
                _ => self.phase = Phase::Closed,
            }
            return bytes;
        }
        let need = 8 - self.request_buf.len();
        let take = need.min(bytes.len());
        self.request_buf.extend_from_slice(&bytes[..take]);
        let rest = &bytes[take..];
        if self.request_buf.len() < 8 {
            return rest;
        }
        let packet = std::mem::take(&mut self.request_buf);
        let len = u32::from_be_bytes([packet[0], packet[1], packet[2], packet[3]]);
        let code = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        match code {
            SSL_REQUEST_CODE if len == 8 && !self.saw_ssl_request => {
                self.saw_ssl_request = true;
                self.answer_ssl_request();
            }
            GSSENC_REQUEST_CODE if len == 8 && !self.saw_gssenc_request => {
                self.saw_gssenc_request = true;
                self.out.push(b'N');
            }
            CANCEL_REQUEST_CODE => self.phase = Phase::Closed,
            _ => {
                // Not a negotiation request: a plaintext StartupMessage (sslmode=disable).
                self.phase = Phase::Plain;
                self.handle_app_bytes(&packet, false);
            }
        }
        rest
    }

    fn answer_ssl_request(&mut self) {
        let has_tls = self.script.tls.is_some();
        match self.script.reply.clone() {
            Reply::S if has_tls => {
                self.out.push(b'S');
                self.begin_tls_phase();
            }
            Reply::S | Reply::N => {
                self.out.push(b'N');
                self.phase = Phase::Plain;
            }
            Reply::NThenBytes(extra) => {
                self.out.push(b'N');
                self.out.extend_from_slice(&extra);
                self.phase = Phase::Plain;
            }
            Reply::SThenBytes(extra) => {
                self.out.push(b'S');
                self.out.extend_from_slice(&extra);
                if has_tls {
                    self.begin_tls_phase();
                } else {
                    self.phase = Phase::Discard;
                }
            }
            Reply::E => {
                self.out
                    .extend_from_slice(&error_response("53300", "sorry, too many clients already"));
                self.phase = Phase::Closed;
            }
            Reply::Byte(b) => {
                self.out.push(b);
                self.phase = Phase::Discard;
            }
            Reply::CloseAfterRequest => self.phase = Phase::Closed,
            Reply::Silent => self.phase = Phase::Discard,
        }
    }

    fn begin_tls_phase(&mut self) {
        if let Some(config) = self.script.tls.clone() {
            if self.start_tls(config) {
                self.phase = Phase::Tls;
            }
        }
    }

    fn start_tls(&mut self, config: Arc<ServerConfig>) -> bool {
        match ServerConnection::new(config) {
            Ok(conn) => {
                self.tls = Some(conn);
                true
            }
            Err(e) => {
                self.tls_error = Some(e);
                self.phase = Phase::Closed;
                false
            }
        }
    }

    fn handle_tls_bytes(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() && self.phase == Phase::Tls {
            let Some(conn) = self.tls.as_mut() else {
                self.phase = Phase::Closed;
                return;
            };
            match conn.read_tls(&mut rest) {
                Ok(0) => break,
                Ok(_) => {}
                Err(_) => {
                    self.phase = Phase::Closed;
                    return;
                }
            }
            if let Err(e) = conn.process_new_packets() {
                // rustls queued its alert: flush it, then close.
                self.tls_error = Some(e);
                self.flush_tls();
                self.phase = Phase::Closed;
                return;
            }
            self.after_tls_progress();
        }
    }

    fn after_tls_progress(&mut self) {
        let Some(conn) = self.tls.as_mut() else {
            return;
        };
        if !self.handshake_done && !conn.is_handshaking() {
            self.handshake_done = true;
            match self.script.after_tls.clone() {
                AfterTls::Postmaster => {}
                AfterTls::Greet(bytes) => {
                    let _ = conn.writer().write_all(&bytes);
                }
                AfterTls::Echo => self.app = App::Echo,
                AfterTls::CloseNotify => {
                    self.send_close_notify();
                    return;
                }
                AfterTls::Close => {
                    self.close();
                    return;
                }
                AfterTls::Garbage(bytes) => self.inject_raw(&bytes),
            }
        }
        // Drain decrypted application data.
        let mut buf = [0u8; 4096];
        loop {
            let Some(conn) = self.tls.as_mut() else {
                return;
            };
            match conn.reader().read(&mut buf) {
                Ok(0) => {
                    self.peer_close_notify = true;
                    self.send_close_notify();
                    return;
                }
                Ok(n) => {
                    let chunk = buf[..n].to_vec();
                    self.handle_app_bytes(&chunk, true);
                    if self.phase != Phase::Tls {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    // Unexpected EOF without close_notify.
                    self.phase = Phase::Closed;
                    return;
                }
            }
        }
    }

    fn handle_app_bytes(&mut self, bytes: &[u8], over_tls: bool) {
        let log = if over_tls {
            &mut self.tls_received
        } else {
            &mut self.plain_received
        };
        if log.len() + bytes.len() > MAX_RECORDED {
            self.close();
            return;
        }
        log.extend_from_slice(bytes);
        match self.app {
            App::Established => {}
            App::Echo => self.send(bytes, over_tls),
            App::AwaitStartup => {
                self.startup_buf.extend_from_slice(bytes);
                self.try_startup(over_tls);
            }
        }
    }

    fn send(&mut self, bytes: &[u8], over_tls: bool) {
        if over_tls {
            if let Some(conn) = self.tls.as_mut() {
                let _ = conn.writer().write_all(bytes);
            }
        } else {
            self.out.extend_from_slice(bytes);
        }
    }

    fn try_startup(&mut self, over_tls: bool) {
        if self.startup_buf.len() < 4 {
            return;
        }
        let b = &self.startup_buf;
        let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if !(8..=MAX_STARTUP_PACKET).contains(&len) {
            // PostgreSQL logs "invalid length of startup packet" and closes without a reply.
            self.close();
            return;
        }
        if self.startup_buf.len() < len {
            return;
        }
        let packet: Vec<u8> = self.startup_buf.drain(..len).collect();
        let protocol = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        let Some(params) = (protocol >> 16 == 3)
            .then(|| parse_startup_params(&packet[8..]))
            .flatten()
        else {
            self.send(
                &error_response("08P01", "unsupported frontend protocol or invalid startup"),
                over_tls,
            );
            self.close();
            return;
        };
        let seen = StartupSeen {
            over_tls,
            protocol,
            params,
        };
        let user = seen.param("user").unwrap_or("").to_owned();
        let db = seen.param("database").unwrap_or(&user).to_owned();
        self.startups.push(seen);
        let hba = |what: &str| {
            format!(
                "no pg_hba.conf entry for host \"127.0.0.1\", user \"{user}\", database \"{db}\", {what}"
            )
        };
        let reject = match self.script.startup.clone() {
            StartupBehaviour::Accept => None,
            StartupBehaviour::RejectPlaintext if !over_tls => {
                Some(("28000".to_owned(), hba("no encryption")))
            }
            StartupBehaviour::RejectTls if over_tls => {
                Some(("28000".to_owned(), hba("SSL encryption")))
            }
            StartupBehaviour::RejectPlaintext | StartupBehaviour::RejectTls => None,
            StartupBehaviour::Error { sqlstate, message } => Some((sqlstate, message)),
            StartupBehaviour::Close => {
                self.close();
                return;
            }
        };
        match reject {
            None => {
                self.send(&authentication_ok_ready(), over_tls);
                self.app = App::Established;
                // Anything after the startup packet is post-startup traffic, already logged.
                self.startup_buf.clear();
            }
            Some((code, message)) => {
                self.send(&error_response(&code, &message), over_tls);
                self.close();
            }
        }
    }

    fn flush_tls(&mut self) {
        if let Some(conn) = self.tls.as_mut() {
            while conn.wants_write() {
                match conn.write_tls(&mut self.out) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }
    }
}

fn parse_startup_params(mut body: &[u8]) -> Option<Vec<(String, String)>> {
    let mut params = Vec::new();
    loop {
        let end = body.iter().position(|&b| b == 0)?;
        if end == 0 {
            return Some(params);
        }
        let key = String::from_utf8_lossy(&body[..end]).into_owned();
        body = &body[end + 1..];
        let end = body.iter().position(|&b| b == 0)?;
        let value = String::from_utf8_lossy(&body[..end]).into_owned();
        body = &body[end + 1..];
        params.push((key, value));
    }
}

// ---------------------------------------------------------------------------------------------
// Message helpers

/// A protocol-3.0 StartupMessage with `user` and `database`.
pub fn startup_message(user: &str, database: &str) -> Vec<u8> {
    let mut body = PROTOCOL_3_0.to_be_bytes().to_vec();
    for (k, v) in [("user", user), ("database", database)] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    msg.extend_from_slice(&body);
    msg
}

/// One backend message: tag, then length (including itself), then `body`.
pub fn backend_message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut msg = vec![tag];
    msg.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    msg.extend_from_slice(body);
    msg
}

/// AuthenticationOk (`R`, 0) followed by ReadyForQuery (`Z`, `I`).
pub fn authentication_ok_ready() -> Vec<u8> {
    let mut out = backend_message(b'R', &0u32.to_be_bytes());
    out.extend_from_slice(&backend_message(b'Z', b"I"));
    out
}

/// A FATAL ErrorResponse with fields S, V, C and M.
pub fn error_response(sqlstate: &str, message: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for (field, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', sqlstate),
        (b'M', message),
    ] {
        body.push(field);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    backend_message(b'E', &body)
}

/// Splits complete backend messages `(tag, body)`; a trailing partial message or an invalid
/// length (< 4) ends the list.
pub fn parse_backend_messages(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut msgs = Vec::new();
    while bytes.len() >= 5 {
        let len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
        if len < 4 || bytes.len() < 1 + len {
            break;
        }
        msgs.push((bytes[0], bytes[5..1 + len].to_vec()));
        bytes = &bytes[1 + len..];
    }
    msgs
}

/// The fields `(code, value)` of an ErrorResponse/NoticeResponse body.
pub fn error_fields(body: &[u8]) -> Vec<(u8, String)> {
    body.split(|&b| b == 0)
        .filter(|f| !f.is_empty())
        .map(|f| (f[0], String::from_utf8_lossy(&f[1..]).into_owned()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Server TLS configuration

/// Client certificate policy of a fake server.
#[derive(Clone, Debug, Default)]
pub enum ClientAuth {
    /// Never ask for a client certificate.
    #[default]
    None,
    /// Ask; accept clients without one (certificates presented must chain to these roots).
    Optional(Vec<CertificateDer<'static>>),
    /// Require a certificate chaining to these roots.
    Required(Vec<CertificateDer<'static>>),
}

/// Options for [`server_tls_config_with`].
#[derive(Clone, Debug)]
pub struct ServerTlsOptions {
    /// ALPN protocols the server supports (empty: no ALPN). Default: `postgresql`.
    pub alpn: Vec<Vec<u8>>,
    /// Client certificate policy. Default: none.
    pub client_auth: ClientAuth,
    /// Protocol versions. Default: TLS 1.3 and 1.2.
    pub versions: Vec<&'static SupportedProtocolVersion>,
    /// TLS 1.3 session tickets sent after the handshake (rustls's default when `None`).
    pub tls13_tickets: Option<usize>,
}

impl Default for ServerTlsOptions {
    fn default() -> Self {
        ServerTlsOptions {
            alpn: vec![ALPN_POSTGRESQL.to_vec()],
            client_auth: ClientAuth::None,
            versions: vec![&rustls::version::TLS13, &rustls::version::TLS12],
            tls13_tickets: None,
        }
    }
}

/// A rustls server config (aws-lc-rs provider) serving `chain` with `key`; `alpn: Some(p)`
/// offers `p` (pass [`ALPN_POSTGRESQL`] for PostgreSQL's), `None` no ALPN;
/// `client_auth_roots: Some(roots)` requires a client certificate chaining to `roots`.
pub fn server_tls_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    alpn: Option<&[u8]>,
    client_auth_roots: Option<Vec<CertificateDer<'static>>>,
) -> Arc<ServerConfig> {
    let opts = ServerTlsOptions {
        alpn: alpn.map(|p| vec![p.to_vec()]).unwrap_or_default(),
        client_auth: client_auth_roots.map_or(ClientAuth::None, ClientAuth::Required),
        ..ServerTlsOptions::default()
    };
    server_tls_config_with(chain, key, &opts)
}

/// A rustls server config with ALPN `postgresql`, no client auth, TLS 1.2 + 1.3.
pub fn default_server_tls_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Arc<ServerConfig> {
    server_tls_config_with(chain, key, &ServerTlsOptions::default())
}

/// A rustls server config (aws-lc-rs provider) from [`ServerTlsOptions`]. The chain is served
/// as given, X.509 v1 leaves included (no webpki parsing of the server's own certificate, so a
/// key that does not match the certificate is not detected here). Panics on invalid inputs
/// (test setup, not client bytes).
pub fn server_tls_config_with(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    opts: &ServerTlsOptions,
) -> Arc<ServerConfig> {
    let provider = Arc::new(aws_lc_rs::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&opts.versions)
        .expect("protocol versions");
    let verifier_for = |roots: &[CertificateDer<'static>], optional: bool| {
        let mut store = RootCertStore::empty();
        for root in roots {
            store.add(root.clone()).expect("client-auth root");
        }
        let b = WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider.clone());
        let b = if optional {
            b.allow_unauthenticated()
        } else {
            b
        };
        b.build().expect("client verifier")
    };
    let builder = match &opts.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Optional(roots) => builder.with_client_cert_verifier(verifier_for(roots, true)),
        ClientAuth::Required(roots) => {
            builder.with_client_cert_verifier(verifier_for(roots, false))
        }
    };
    // Not `with_single_cert`: its key/certificate consistency check parses the leaf with webpki,
    // which rejects X.509 v1 certificates, and serving those is the point of some tests.
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .expect("server private key");
    let certified = rustls::sign::CertifiedKey::new(chain, signing_key);
    let mut config =
        builder.with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
    config.alpn_protocols = opts.alpn.clone();
    if let Some(n) = opts.tls13_tickets {
        config.send_tls13_tickets = n;
    }
    Arc::new(config)
}
