//! Bounded in-memory drivers that connect pgtls to a [`FakeServer`].
//!
//! * [`drive`]: pumps bytes between a [`Negotiation`] and a [`FakeServer`] with configurable
//!   chunking of the server's bytes ([`Drive::chunks`], 0- and 1-byte chunks allowed) and
//!   output buffer sizes ([`Drive::out_sizes`]). It stops after [`Drive::max_steps`] steps at
//!   most and returns a [`Transcript`]: what the client sent before the server's reply, every
//!   event, the outcome, the bytes left for the caller, the alert sent after a failure and what
//!   the server observed.
//! * [`SessionDriver`]: the same pumping for an established [`Session`] (application data both
//!   ways, close_notify, EOF).
//! * [`MemTransport`]: `Read + Write + Deadline` over a [`FakeServer`], stepped synchronously
//!   (a write feeds the server, a read returns its output, or EOF once it closed), for
//!   `pgtls::blocking`.
//! * [`MemNetwork`]: the `open` callback of `blocking::connect`: a new [`FakeServer`] per
//!   connection from a script factory, with an event log shared with the startup callback
//!   ([`MemNetwork::startup`]), so reconnects can be counted and compared.
//!
//! No loop here can spin: every loop is bounded by a step budget, and a server that neither
//! answers nor closes makes the drivers stop (`Outcome::Stalled`, or `TimedOut` for the
//! blocking transport).

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::time::Duration;

use pgtls::blocking::{Deadline, StartupError, Stream};
use pgtls::plan::Method;
use pgtls::{ApplicationData, Config, Error, Negotiated, Negotiation, Output, Session};

use crate::fake_server::{
    error_fields, parse_backend_messages, startup_message, FakeServer, ServerScript, StartupSeen,
};

/// How to drive one negotiation.
#[derive(Clone, Debug)]
pub struct Drive {
    /// Sizes of the slices of server bytes offered to `handle_input`, used in turn (cycled).
    /// A 0 offers an empty slice. Empty: everything available at once.
    pub chunks: Vec<usize>,
    /// Sizes of the buffers given to `poll_output_slice`, used in turn (cycled). A 0 gives an
    /// empty buffer (refused as misuse while output waits; the next call gets the next
    /// size). Empty: 17 KiB.
    pub out_sizes: Vec<usize>,
    /// Upper bound on loop iterations; reaching it ends the run with [`Outcome::StepLimit`].
    pub max_steps: usize,
}

impl Default for Drive {
    fn default() -> Self {
        Drive {
            chunks: Vec::new(),
            out_sizes: Vec::new(),
            max_steps: 100_000,
        }
    }
}

impl Drive {
    /// Server bytes offered in these chunk sizes (cycled).
    pub fn chunks(mut self, chunks: &[usize]) -> Self {
        self.chunks = chunks.to_vec();
        self
    }

    /// Output buffers of these sizes (cycled).
    pub fn out_sizes(mut self, sizes: &[usize]) -> Self {
        self.out_sizes = sizes.to_vec();
        self
    }

    /// A different step budget.
    pub fn max_steps(mut self, steps: usize) -> Self {
        self.max_steps = steps;
        self
    }
}

/// Cycles through a list of sizes; an empty list always gives `default`.
#[derive(Clone, Debug)]
pub struct Sizes {
    sizes: Vec<usize>,
    next: usize,
    default: usize,
}

impl Sizes {
    /// A cycle over `sizes`.
    ///
    /// # Panics
    /// When every size is zero: such a cycle never delivers a byte, so a test built on it
    /// could only hang or fail for a reason that is not the code under test.
    pub fn new(sizes: &[usize], default: usize) -> Self {
        assert!(
            sizes.is_empty() || sizes.iter().any(|&size| size > 0),
            "a chunk schedule of only zeros never delivers a byte: {sizes:?}"
        );
        Sizes {
            sizes: sizes.to_vec(),
            next: 0,
            default,
        }
    }

    /// The next size.
    pub fn next_size(&mut self) -> usize {
        if self.sizes.is_empty() {
            return self.default;
        }
        let size = self.sizes[self.next % self.sizes.len()];
        self.next = self.next.wrapping_add(1);
        size
    }
}

/// One thing that happened while driving.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `poll_output` gave `n` bytes; they were delivered to the server.
    Sent(usize),
    /// `poll_output` gave `n` bytes but the server had closed (dropped, as EPIPE would).
    SentToClosed(usize),
    /// `poll_output_slice` refused an empty buffer while output waited.
    EmptyBufferRefused,
    /// `handle_input` was offered `offered` bytes and consumed `consumed`.
    Input {
        /// Bytes offered.
        offered: usize,
        /// Bytes consumed.
        consumed: usize,
    },
    /// `handle_eof` was called.
    Eof,
    /// The attempt failed with this message.
    Failed(String),
    /// After the failure, `poll_output` handed out this many bytes (the last-gasp alert).
    LastGasp(usize),
    /// `poll_output` said `Done`.
    Done,
}

/// How a driven negotiation ended.
pub enum Outcome {
    /// TLS is up.
    Tls(Box<Session>),
    /// The server said `N`.
    SslRefused,
    /// A plaintext attempt (nothing exchanged).
    Plaintext,
    /// The attempt failed (or `Negotiation::new`/`into_negotiated` refused).
    Failed(Error),
    /// The client waits for input that the server will never send (it neither answers nor
    /// closes).
    Stalled,
    /// The step budget ran out.
    StepLimit,
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Tls(session) => f.debug_tuple("Tls").field(session).finish(),
            Outcome::SslRefused => f.write_str("SslRefused"),
            Outcome::Plaintext => f.write_str("Plaintext"),
            Outcome::Failed(err) => write!(f, "Failed({err:?}: {err})"),
            Outcome::Stalled => f.write_str("Stalled"),
            Outcome::StepLimit => f.write_str("StepLimit"),
        }
    }
}

impl Outcome {
    /// A short name: `tls`, `refused`, `plaintext`, `failed`, `stalled`, `step-limit`.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Tls(_) => "tls",
            Outcome::SslRefused => "refused",
            Outcome::Plaintext => "plaintext",
            Outcome::Failed(_) => "failed",
            Outcome::Stalled => "stalled",
            Outcome::StepLimit => "step-limit",
        }
    }

    /// The error, if the attempt failed.
    pub fn error(&self) -> Option<&Error> {
        match self {
            Outcome::Failed(err) => Some(err),
            _ => None,
        }
    }

    /// The error message, if the attempt failed.
    pub fn message(&self) -> Option<String> {
        self.error().map(ToString::to_string)
    }

    /// The session; panics (test failure) with the outcome otherwise.
    #[track_caller]
    pub fn expect_tls(self) -> Box<Session> {
        match self {
            Outcome::Tls(session) => session,
            other => panic!("expected TLS, got {other:?}"),
        }
    }

    /// The error; panics (test failure) with the outcome otherwise.
    #[track_caller]
    pub fn expect_err(self) -> Error {
        match self {
            Outcome::Failed(err) => err,
            other => panic!("expected a failure, got {other:?}"),
        }
    }
}

/// What the server saw, snapshotted when the negotiation ended.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerObs {
    /// An `SSLRequest` arrived.
    pub saw_ssl_request: bool,
    /// The connection opened with a TLS record (direct TLS).
    pub saw_direct: bool,
    /// SNI the client sent.
    pub sni: Option<String>,
    /// ALPN the server selected.
    pub alpn: Option<Vec<u8>>,
    /// Certificates the client presented.
    pub client_certs: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// StartupMessages received.
    pub startups: Vec<StartupSeen>,
    /// The server's side of the handshake completed.
    pub handshake_complete: bool,
    /// The TLS error that ended the server's connection (an alert from the client, ...).
    pub tls_error: Option<rustls::Error>,
    /// The server closed the connection.
    pub closed: bool,
    /// Negotiated TLS version, as the server saw it.
    pub version: Option<rustls::ProtocolVersion>,
}

impl ServerObs {
    /// Snapshot of `server`.
    pub fn of(server: &FakeServer) -> Self {
        ServerObs {
            saw_ssl_request: server.saw_ssl_request(),
            saw_direct: server.saw_direct_client_hello(),
            sni: server.sni(),
            alpn: server.alpn(),
            client_certs: server.client_certs(),
            startups: server.startups().to_vec(),
            handshake_complete: server.is_handshake_complete(),
            tls_error: server.tls_error().cloned(),
            closed: server.is_closed(),
            version: server.negotiated_version(),
        }
    }
}

/// The record of one driven negotiation.
pub struct Transcript {
    /// What the client sent before it consumed the first byte from the server. For
    /// `SSLRequest` this is everything sent in plaintext (the ClientHello may only follow `S`).
    pub client_before_reply: Vec<u8>,
    /// Everything the client sent (last-gasp bytes included).
    pub client_all: Vec<u8>,
    /// Bytes the client sent after the failure (the alert), in order.
    pub last_gasp: Vec<u8>,
    /// Everything that happened, in order.
    pub events: Vec<Event>,
    /// How it ended.
    pub outcome: Outcome,
    /// Server bytes the client had received but not consumed at the end (after `N`: the start
    /// of the plaintext conversation; after TLS: records for the session), followed by what
    /// the server still had queued.
    pub leftover: Vec<u8>,
    /// Total bytes `handle_input` consumed.
    pub consumed: usize,
    /// Loop iterations used.
    pub steps: usize,
    /// What the server saw.
    pub server_obs: ServerObs,
    /// The server itself, to go on with a session.
    pub server: FakeServer,
    /// The options used (to go on with the same chunking).
    pub drive: Drive,
}

impl fmt::Debug for Transcript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transcript")
            .field("outcome", &self.outcome)
            .field("client_before_reply", &self.client_before_reply)
            .field("client_all_len", &self.client_all.len())
            .field("last_gasp_len", &self.last_gasp.len())
            .field("leftover_len", &self.leftover.len())
            .field("consumed", &self.consumed)
            .field("steps", &self.steps)
            .field("server_obs", &self.server_obs)
            .field("events", &self.events)
            .finish()
    }
}

impl Transcript {
    /// Goes on with the session, the leftover bytes first, with the same chunking.
    #[track_caller]
    pub fn into_session(self) -> SessionDriver {
        let session = self.outcome.expect_tls();
        SessionDriver::new(*session, self.server, self.leftover, &self.drive)
    }
}

/// Drives one negotiation of `method` against a fresh server following `script`.
pub fn drive(config: &Config, method: Method, script: ServerScript, opts: &Drive) -> Transcript {
    drive_with(config, method, FakeServer::new(script), opts)
}

/// Drives one negotiation of `method` against `server`.
pub fn drive_with(
    config: &Config,
    method: Method,
    mut server: FakeServer,
    opts: &Drive,
) -> Transcript {
    let mut t = Transcript {
        client_before_reply: Vec::new(),
        client_all: Vec::new(),
        last_gasp: Vec::new(),
        events: Vec::new(),
        outcome: Outcome::StepLimit,
        leftover: Vec::new(),
        consumed: 0,
        steps: 0,
        server_obs: ServerObs::default(),
        server: FakeServer::new(ServerScript::plaintext_only()),
        drive: opts.clone(),
    };
    let mut chunks = Sizes::new(&opts.chunks, usize::MAX);
    let mut outs = Sizes::new(&opts.out_sizes, 17 * 1024);
    let mut in_flight: Vec<u8> = Vec::new();
    let mut buf: Vec<u8> = Vec::new();

    let mut negotiation = match Negotiation::new(config, method) {
        Ok(n) => Some(n),
        Err(err) => {
            t.events.push(Event::Failed(err.to_string()));
            t.outcome = Outcome::Failed(err);
            None
        }
    };
    let mut failure: Option<Error> = None;

    if let Some(neg) = negotiation.as_mut() {
        while t.steps < opts.max_steps {
            t.steps += 1;
            in_flight.extend(server.take_output());
            let size = outs.next_size();
            buf.resize(size, 0);
            match neg.poll_output_slice(&mut buf[..size]) {
                Ok(Output::Transmit(n)) => {
                    let bytes = &buf[..n];
                    t.client_all.extend_from_slice(bytes);
                    if t.consumed == 0 {
                        t.client_before_reply.extend_from_slice(bytes);
                    }
                    match server.handle_client_bytes(bytes) {
                        Ok(_) => t.events.push(Event::Sent(n)),
                        Err(_) => t.events.push(Event::SentToClosed(n)),
                    }
                }
                Err(Error::Misuse(_)) if size == 0 => t.events.push(Event::EmptyBufferRefused),
                Ok(Output::Done) => {
                    t.events.push(Event::Done);
                    break;
                }
                Ok(Output::Receive) => {
                    if !in_flight.is_empty() {
                        let chunk = chunks.next_size().min(in_flight.len());
                        match neg.handle_input(&in_flight[..chunk]) {
                            Ok(consumed) => {
                                t.events.push(Event::Input {
                                    offered: chunk,
                                    consumed,
                                });
                                if consumed > chunk {
                                    // Impossible by contract; make the test fail loudly.
                                    t.events.push(Event::Failed(format!(
                                        "handle_input consumed {consumed} of {chunk} bytes"
                                    )));
                                    break;
                                }
                                t.consumed += consumed;
                                in_flight.drain(..consumed);
                            }
                            Err(err) => {
                                t.events.push(Event::Input {
                                    offered: chunk,
                                    consumed: 0,
                                });
                                failure = Some(err);
                                break;
                            }
                        }
                    } else if server.is_closed() {
                        t.events.push(Event::Eof);
                        if let Err(err) = neg.handle_eof() {
                            failure = Some(err);
                            break;
                        }
                    } else {
                        t.outcome = Outcome::Stalled;
                        break;
                    }
                }
                Err(err) => {
                    failure = Some(err);
                    break;
                }
            }
        }
    }

    if let Some(err) = failure {
        t.events.push(Event::Failed(err.to_string()));
        // Hand out the last-gasp alert, then the error again; bounded.
        if let Some(neg) = negotiation.as_mut() {
            for _ in 0..opts.max_steps {
                let size = outs.next_size().max(1);
                buf.resize(size, 0);
                match neg.poll_output_slice(&mut buf[..size]) {
                    Ok(Output::Transmit(n)) => {
                        t.events.push(Event::LastGasp(n));
                        t.last_gasp.extend_from_slice(&buf[..n]);
                        t.client_all.extend_from_slice(&buf[..n]);
                        let _ = server.handle_client_bytes(&buf[..n]);
                    }
                    Ok(other) => {
                        t.events.push(Event::Failed(format!(
                            "poll_output after a failure returned {other:?}"
                        )));
                        break;
                    }
                    Err(again) => {
                        if again.to_string() != err.to_string() {
                            t.events.push(Event::Failed(format!(
                                "poll_output after a failure returned another error: {again}"
                            )));
                        }
                        break;
                    }
                }
            }
        }
        t.outcome = Outcome::Failed(err);
    } else if matches!(t.events.last(), Some(Event::Done)) {
        if let Some(neg) = negotiation.take() {
            t.outcome = match neg.into_negotiated() {
                Ok(Negotiated::Tls(session)) => Outcome::Tls(session),
                Ok(Negotiated::SslRefused) => Outcome::SslRefused,
                Ok(Negotiated::Plaintext) => Outcome::Plaintext,
                Err(err) => Outcome::Failed(err),
            };
        }
    }

    in_flight.extend(server.take_output());
    t.leftover = in_flight;
    t.server_obs = ServerObs::of(&server);
    t.server = server;
    t
}

/// How reading from a session ended.
#[derive(Debug)]
pub enum ReadEnd {
    /// Nothing more to read for now: the server is idle and still open.
    Idle,
    /// The server closed cleanly (close_notify).
    Closed,
    /// An error (alert, unclean EOF, ...).
    Failed(Error),
    /// The step budget ran out.
    StepLimit,
}

impl ReadEnd {
    /// A short name: `idle`, `closed`, `failed`, `step-limit`.
    pub fn kind(&self) -> &'static str {
        match self {
            ReadEnd::Idle => "idle",
            ReadEnd::Closed => "closed",
            ReadEnd::Failed(_) => "failed",
            ReadEnd::StepLimit => "step-limit",
        }
    }

    /// The error message, if reading failed.
    pub fn message(&self) -> Option<String> {
        match self {
            ReadEnd::Failed(err) => Some(err.to_string()),
            _ => None,
        }
    }
}

/// An established session and its server, pumped with the same chunking rules.
pub struct SessionDriver {
    /// The client's session.
    pub session: Session,
    /// The server.
    pub server: FakeServer,
    /// Server bytes received by the client, not yet consumed.
    pub in_flight: Vec<u8>,
    /// Everything the client sent as TLS records through this driver.
    pub sent: Vec<u8>,
    chunks: Sizes,
    outs: Sizes,
    max_steps: usize,
    eof_given: bool,
    buf: Vec<u8>,
}

impl SessionDriver {
    /// Wraps a session whose server is `server`; `leftover` are bytes already received.
    pub fn new(session: Session, server: FakeServer, leftover: Vec<u8>, opts: &Drive) -> Self {
        SessionDriver {
            session,
            server,
            in_flight: leftover,
            sent: Vec::new(),
            chunks: Sizes::new(&opts.chunks, usize::MAX),
            outs: Sizes::new(&opts.out_sizes, 17 * 1024),
            max_steps: opts.max_steps,
            eof_given: false,
            buf: Vec::new(),
        }
    }

    /// Sends every pending TLS record to the server; returns how many bytes went.
    pub fn flush(&mut self) -> usize {
        let mut total = 0;
        for _ in 0..self.max_steps {
            let size = self.outs.next_size().max(1);
            self.buf.resize(size, 0);
            let Ok(Output::Transmit(n)) = self.session.poll_output_slice(&mut self.buf[..size])
            else {
                break;
            };
            total += n;
            self.sent.extend_from_slice(&self.buf[..n]);
            let _ = self.server.handle_client_bytes(&self.buf[..n]);
        }
        total
    }

    /// Encrypts and sends all of `data`.
    pub fn send(&mut self, mut data: &[u8]) -> Result<(), Error> {
        for _ in 0..self.max_steps {
            if data.is_empty() {
                break;
            }
            let n = self.session.handle_application_data(data)?;
            data = &data[n..];
            self.flush();
        }
        self.flush();
        if data.is_empty() {
            Ok(())
        } else {
            Err(Error::Misuse("SessionDriver::send ran out of steps"))
        }
    }

    /// Reads decrypted data until the server is idle, closed, or an error.
    pub fn receive(&mut self) -> (Vec<u8>, ReadEnd) {
        let mut data = Vec::new();
        let mut out = vec![0u8; 4096];
        for _ in 0..self.max_steps {
            self.flush();
            self.in_flight.extend(self.server.take_output());
            match self.session.poll_application_data(&mut out) {
                Ok(ApplicationData::Data(n)) => data.extend_from_slice(&out[..n]),
                Ok(ApplicationData::Closed) => return (data, ReadEnd::Closed),
                Err(err) => {
                    self.flush();
                    return (data, ReadEnd::Failed(err));
                }
                Ok(ApplicationData::NeedInput) => {
                    if !self.in_flight.is_empty() {
                        let chunk = self.chunks.next_size().min(self.in_flight.len());
                        match self.session.handle_input(&self.in_flight[..chunk]) {
                            Ok(consumed) => {
                                self.in_flight.drain(..consumed.min(chunk));
                            }
                            Err(err) => {
                                self.flush();
                                return (data, ReadEnd::Failed(err));
                            }
                        }
                    } else if self.server.is_closed() && !self.eof_given {
                        self.eof_given = true;
                        if let Err(err) = self.session.handle_eof() {
                            self.flush();
                            return (data, ReadEnd::Failed(err));
                        }
                    } else if self.eof_given {
                        // After EOF, NeedInput would make a caller wait forever.
                        return (
                            data,
                            ReadEnd::Failed(Error::Misuse(
                                "poll_application_data said NeedInput after EOF",
                            )),
                        );
                    } else {
                        return (data, ReadEnd::Idle);
                    }
                }
            }
        }
        (data, ReadEnd::StepLimit)
    }
}

// ---------------------------------------------------------------------------------------------
// Blocking transport and network

/// Shared log of what happened on a [`MemNetwork`], in order.
pub type EventLog = Rc<RefCell<Vec<String>>>;

/// What one connection of a [`MemNetwork`] saw.
pub struct Conn {
    /// The server of this connection.
    pub server: FakeServer,
    /// Server bytes taken from the server but not yet read by the client.
    pending: Vec<u8>,
    /// Everything the client wrote.
    pub written: Vec<u8>,
    /// Everything the client read.
    pub read: Vec<u8>,
    /// Bytes written after the server had closed (dropped).
    pub written_after_close: usize,
    /// The reply byte to `SSLRequest`, once the client read it.
    pub reply: Option<u8>,
    /// The client read EOF.
    pub saw_eof: bool,
    /// A TLS attempt started on this connection (the client read `S`, or sent a direct
    /// ClientHello).
    pub tls_started: bool,
    /// The startup callback ran over TLS on this connection.
    pub tls_ok: bool,
    /// Timeouts set by the client.
    pub timeouts: Vec<Option<Duration>>,
    finished: bool,
}

impl Conn {
    fn new(server: FakeServer) -> Self {
        Conn {
            server,
            pending: Vec::new(),
            written: Vec::new(),
            read: Vec::new(),
            written_after_close: 0,
            reply: None,
            saw_eof: false,
            tls_started: false,
            tls_ok: false,
            timeouts: Vec::new(),
            finished: false,
        }
    }
}

/// A client's end of one in-memory connection: `Read + Write + Deadline`.
pub struct MemTransport {
    conn: Rc<RefCell<Conn>>,
    log: EventLog,
    read_sizes: Sizes,
}

impl fmt::Debug for MemTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemTransport").finish_non_exhaustive()
    }
}

impl MemTransport {
    /// A transport to a single server (no network), with reads of at most these sizes
    /// (cycled; 0 entries are skipped since a 0-byte read means EOF).
    pub fn new(server: FakeServer, read_sizes: &[usize]) -> Self {
        MemTransport {
            conn: Rc::new(RefCell::new(Conn::new(server))),
            log: Rc::new(RefCell::new(Vec::new())),
            read_sizes: Sizes::new(read_sizes, usize::MAX),
        }
    }

    /// This connection's record.
    pub fn conn(&self) -> Rc<RefCell<Conn>> {
        self.conn.clone()
    }

    fn push(&self, event: &str) {
        self.log.borrow_mut().push(event.to_owned());
    }
}

impl Read for MemTransport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut conn = self.conn.borrow_mut();
        let out = conn.server.take_output();
        conn.pending.extend(out);
        if conn.pending.is_empty() {
            if conn.server.is_closed() {
                if !conn.saw_eof {
                    conn.saw_eof = true;
                    drop(conn);
                    self.push("eof");
                }
                return Ok(0);
            }
            // The server waits for the client, the client for the server: a real socket
            // would block until the timeout. Report the timeout at once.
            drop(conn);
            self.push("timeout");
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "in-memory server is waiting for the client",
            ));
        }
        let mut limit = 0;
        for _ in 0..64 {
            limit = self.read_sizes.next_size();
            if limit != 0 {
                break;
            }
        }
        let n = conn.pending.len().min(buf.len()).min(limit.max(1));
        buf[..n].copy_from_slice(&conn.pending[..n]);
        conn.pending.drain(..n);
        let chunk = buf[..n].to_vec();
        conn.read.extend_from_slice(&chunk);
        let reply = if conn.server.saw_ssl_request() && conn.reply.is_none() {
            conn.reply = Some(chunk[0]);
            conn.tls_started |= chunk[0] == b'S';
            Some(chunk[0])
        } else {
            None
        };
        drop(conn);
        if let Some(byte) = reply {
            self.push(&reply_event(byte));
        }
        Ok(n)
    }
}

/// The event name of a reply byte: `S`, `N`, `E`, or `byte:<hex>`.
pub fn reply_event(byte: u8) -> String {
    match byte {
        b'S' | b'N' | b'E' => char::from(byte).to_string(),
        other => format!("byte:{other:02x}"),
    }
}

impl Write for MemTransport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut conn = self.conn.borrow_mut();
        let saw_request = conn.server.saw_ssl_request();
        let saw_direct = conn.server.saw_direct_client_hello();
        conn.written.extend_from_slice(buf);
        if conn.server.is_closed() {
            // Like a real socket after the peer's FIN: the write "succeeds", the bytes vanish.
            conn.written_after_close += buf.len();
            return Ok(buf.len());
        }
        let _ = conn.server.handle_client_bytes(buf);
        let mut events = Vec::new();
        if !saw_request && conn.server.saw_ssl_request() {
            events.push("sslrequest");
        }
        if !saw_direct && conn.server.saw_direct_client_hello() {
            conn.tls_started = true;
            events.push("direct");
        }
        drop(conn);
        for e in events {
            self.push(e);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Deadline for MemTransport {
    fn set_io_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.conn.borrow_mut().timeouts.push(timeout);
        Ok(())
    }
}

/// A factory of scripts: called with the connection's index (0 for the first).
pub type ScriptFactory = Box<dyn FnMut(usize) -> ServerScript>;

/// Many connections, one new [`FakeServer`] per `open`, and an event log.
///
/// Events, in order: `connect` (first open) / `reconnect` (later opens); `sslrequest` or
/// `direct` (what the server saw first); the reply byte as read by the client (`S`, `N`, `E`,
/// `byte:xx`); `eof` when the client reads EOF; `timeout` when the client waits on a server
/// that waits too; `tls-fail` when a TLS attempt started on a connection (`S` read, or direct)
/// that never reached the startup over TLS (logged when the next connection opens, or by
/// [`MemNetwork::events`]); and the startup callback's events ([`MemNetwork::startup`]):
/// `tls-ok`, `startup` / `startup-plaintext`, `authok` / `authfail`.
pub struct MemNetwork {
    factory: RefCell<ScriptFactory>,
    conns: RefCell<Vec<Rc<RefCell<Conn>>>>,
    log: EventLog,
    read_sizes: Vec<usize>,
}

impl MemNetwork {
    /// A network whose `n`-th connection reaches a server following `factory(n)`.
    pub fn new(factory: impl FnMut(usize) -> ServerScript + 'static) -> Self {
        MemNetwork {
            factory: RefCell::new(Box::new(factory)),
            conns: RefCell::new(Vec::new()),
            log: Rc::new(RefCell::new(Vec::new())),
            read_sizes: Vec::new(),
        }
    }

    /// Every connection reaches a server following `script`.
    pub fn same(script: ServerScript) -> Self {
        MemNetwork::new(move |_| script.clone())
    }

    /// Client reads return at most these many bytes (cycled).
    pub fn with_read_sizes(mut self, sizes: &[usize]) -> Self {
        self.read_sizes = sizes.to_vec();
        self
    }

    /// Opens a new connection (the `open` callback of `blocking::connect`).
    pub fn open(&self, _timeout: Option<Duration>) -> io::Result<MemTransport> {
        self.finish_last();
        let index = self.conns.borrow().len();
        let script = (self.factory.borrow_mut())(index);
        let conn = Rc::new(RefCell::new(Conn::new(FakeServer::new(script))));
        self.conns.borrow_mut().push(conn.clone());
        self.log
            .borrow_mut()
            .push(if index == 0 { "connect" } else { "reconnect" }.to_owned());
        Ok(MemTransport {
            conn,
            log: self.log.clone(),
            read_sizes: Sizes::new(&self.read_sizes, usize::MAX),
        })
    }

    fn finish_last(&self) {
        let conns = self.conns.borrow();
        if let Some(last) = conns.last() {
            let mut conn = last.borrow_mut();
            if !conn.finished {
                conn.finished = true;
                if conn.tls_started && !conn.tls_ok {
                    self.log.borrow_mut().push("tls-fail".to_owned());
                }
            }
        }
    }

    /// The events so far (the last connection is closed off first: call this at the end).
    pub fn events(&self) -> Vec<String> {
        self.finish_last();
        self.log.borrow().clone()
    }

    /// How many connections were opened.
    pub fn connection_count(&self) -> usize {
        self.conns.borrow().len()
    }

    /// The `i`-th connection.
    pub fn conn(&self, i: usize) -> Rc<RefCell<Conn>> {
        self.conns.borrow()[i].clone()
    }

    /// Snapshots of what each connection's server saw.
    pub fn observations(&self) -> Vec<ServerObs> {
        self.conns
            .borrow()
            .iter()
            .map(|c| ServerObs::of(&c.borrow().server))
            .collect()
    }

    /// A startup callback for `blocking::connect`: records `tls-ok` (TLS stream) and
    /// `startup` / `startup-plaintext`, sends a StartupMessage (`user`, `database`), reads
    /// until AuthenticationOk + ReadyForQuery (`authok`) or an ErrorResponse (`authfail`,
    /// reported as `StartupError::Rejected` with the SQLSTATE and the `M` field).
    pub fn startup(
        &self,
        stream: &mut Stream<MemTransport>,
        user: &str,
        database: &str,
    ) -> Result<StartupResult, StartupError> {
        let tls = stream.is_tls();
        if tls {
            if let Some(conn) = self.conns.borrow().last() {
                conn.borrow_mut().tls_ok = true;
            }
            self.log.borrow_mut().push("tls-ok".to_owned());
        }
        self.log
            .borrow_mut()
            .push(if tls { "startup" } else { "startup-plaintext" }.to_owned());
        run_startup(stream, user, database, &self.log)
    }
}

/// What a successful [`run_startup`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupResult {
    /// TLS was in use.
    pub tls: bool,
    /// Tags of the backend messages received (`R`, `Z`).
    pub tags: Vec<u8>,
}

/// Sends a StartupMessage over `stream` and reads the answer (bounded).
pub fn run_startup<S: Read + Write>(
    stream: &mut Stream<S>,
    user: &str,
    database: &str,
    log: &EventLog,
) -> Result<StartupResult, StartupError> {
    stream.write_all(&startup_message(user, database))?;
    stream.flush()?;
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    for _ in 0..10_000 {
        let msgs = parse_backend_messages(&received);
        if let Some((_, body)) = msgs.iter().find(|(tag, _)| *tag == b'E') {
            let fields = error_fields(body);
            let field = |code: u8| {
                fields
                    .iter()
                    .find(|(c, _)| *c == code)
                    .map(|(_, v)| v.clone())
            };
            log.borrow_mut().push("authfail".to_owned());
            return Err(StartupError::Rejected {
                sqlstate: field(b'C'),
                message: field(b'M').unwrap_or_default(),
            });
        }
        if msgs.iter().any(|(tag, _)| *tag == b'Z') {
            log.borrow_mut().push("authok".to_owned());
            return Ok(StartupResult {
                tls: stream.is_tls(),
                tags: msgs.iter().map(|(tag, _)| *tag).collect(),
            });
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            log.borrow_mut().push("startup-eof".to_owned());
            return Err(StartupError::Io(io::Error::from(
                io::ErrorKind::UnexpectedEof,
            )));
        }
        received.extend_from_slice(&buf[..n]);
    }
    Err(StartupError::Fatal("startup did not finish".into()))
}
