//! A blocking adapter over `std::io` (feature `blocking`), built only on the public core.
//!
//! - [`negotiate`] runs one attempt over any `Read + Write` transport and returns a
//!   [`Stream`] that is TLS or plaintext.
//! - [`connect`] runs libpq's whole plan for one host over TCP — reconnects included —
//!   with `connect_timeout` applied to everything from the first connect to the end of
//!   the startup, as libpq does per host. The driver's startup and authentication run
//!   in a callback so that `allow`/`prefer` can retry after the server rejects them.
//!   It is a thin shell over [`crate::ConnectionSetup`]: it opens, writes, reads and
//!   closes; the machine makes every decision (fallbacks, which transport errors are TLS
//!   failures, next host, timeouts).
//!
//! ```no_run
//! use std::net::TcpStream;
//! use std::time::Duration;
//! use pgtls::blocking::{connect, StartupError};
//! use pgtls::{Config, SslMode};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::builder().sslmode(SslMode::Require).host("db.example.com").build()?;
//! let connected = connect(
//!     &config,
//!     Some(Duration::from_secs(10)),
//!     |timeout| match timeout {
//!         Some(t) => TcpStream::connect_timeout(&"192.0.2.10:5432".parse().unwrap(), t),
//!         None => TcpStream::connect("192.0.2.10:5432"),
//!     },
//!     |stream| -> Result<(), StartupError> {
//!         // send the StartupMessage, authenticate, wait for ReadyForQuery ...
//!         Ok(())
//!     },
//! )?;
//! println!("TLS: {}", connected.stream.is_tls());
//! # Ok(()) }
//! ```

use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::{misuse, report_startup_error, to_io};
use crate::plan::{Method, Transport};
use crate::session::{ApplicationData, IoStepError, Session};
use crate::setup::{Action, ConnectionSetup, Ready};
pub use crate::setup::{AttemptRecord, ConnectError, Failed, StartupError};
use crate::{Config, Error, Negotiated, Negotiation, Output};

/// Size of the adapter's read and write buffers (one maximal TLS record plus headers).
const BUF_LEN: usize = 17 * 1024;

/// A transport whose reads and writes can be bounded in time.
pub trait Deadline {
    /// Sets how long the next reads and writes may block (`None`: forever).
    ///
    /// # Errors
    /// The transport rejected the timeout.
    fn set_io_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()>;
}

#[cfg(unix)]
impl Deadline for std::os::unix::net::UnixStream {
    fn set_io_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let timeout = timeout.map(|t| t.max(Duration::from_millis(1)));
        self.set_read_timeout(timeout)?;
        self.set_write_timeout(timeout)
    }
}

impl Deadline for TcpStream {
    fn set_io_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        // A zero duration is an error for std; the deadline check catches expiry first.
        let timeout = timeout.map(|t| t.max(Duration::from_millis(1)));
        self.set_read_timeout(timeout)?;
        self.set_write_timeout(timeout)
    }
}

/// An established connection: TLS or plaintext.
pub enum Stream<S> {
    /// Encrypted.
    Tls(Box<TlsStream<S>>),
    /// Not encrypted (sslmode disable/allow/prefer).
    Plain(PlainStream<S>),
}

impl<S> Stream<S> {
    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// The TLS session, if encrypted.
    pub fn session(&self) -> Option<&Session> {
        match self {
            Stream::Tls(tls) => Some(tls.session()),
            Stream::Plain(_) => None,
        }
    }
}

impl<S> fmt::Debug for Stream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stream::Tls(tls) => f.debug_tuple("Tls").field(tls.session()).finish(),
            Stream::Plain(_) => f.write_str("Plain"),
        }
    }
}

impl<S: Read + Write> Read for Stream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tls(tls) => tls.read(buf),
            Stream::Plain(plain) => plain.read(buf),
        }
    }
}

impl<S: Read + Write> Write for Stream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tls(tls) => tls.write(buf),
            Stream::Plain(plain) => plain.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tls(tls) => tls.flush(),
            Stream::Plain(plain) => plain.flush(),
        }
    }
}

/// A plaintext connection. Bytes the server sent after its `N` (already read from the
/// socket, not consumed by pgtls) are returned first.
pub struct PlainStream<S> {
    inner: S,
    pending: Vec<u8>,
}

impl<S> PlainStream<S> {
    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The transport, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }
}

impl<S: Read> Read for PlainStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.pending.is_empty() {
            let n = self.pending.len().min(buf.len());
            buf[..n].copy_from_slice(&self.pending[..n]);
            self.pending.drain(..n);
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

impl<S: Write> Write for PlainStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A TLS connection over a blocking transport.
///
/// An idle stream holds no buffer of its own, and TLS bytes are copied no more often than
/// bare rustls copies them: rustls reads the transport straight into its record buffer
/// and writes its queued records straight to the transport.
pub struct TlsStream<S> {
    inner: S,
    session: Session,
    /// TLS bytes read but not yet taken by the session: `incoming[start..]`.
    incoming: Vec<u8>,
    start: usize,
}

impl<S> TlsStream<S> {
    /// The TLS session (version, cipher suite, channel binding, ...).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The transport, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }
}

impl<S: Read + Write> TlsStream<S> {
    fn new(inner: S, session: Session, leftover: &[u8]) -> Self {
        TlsStream {
            inner,
            session,
            incoming: leftover.to_vec(),
            start: 0,
        }
    }

    /// Sends every pending TLS record, straight from rustls's queue to the transport.
    fn send_pending(&mut self) -> io::Result<()> {
        while self.session.wants_output() {
            if self.session.write_output_to(&mut self.inner)? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        self.inner.flush()
    }

    /// Queues close_notify and sends it.
    ///
    /// # Errors
    /// The transport failed.
    pub fn close(&mut self) -> io::Result<()> {
        self.session.close();
        self.send_pending()
    }

    /// Feeds buffered or freshly read TLS bytes to the session. Returns false at EOF.
    fn fill(&mut self) -> io::Result<bool> {
        if self.start < self.incoming.len() {
            let consumed = self
                .session
                .handle_input(&self.incoming[self.start..])
                .map_err(to_io)?;
            self.start += consumed;
            if self.start == self.incoming.len() {
                self.incoming = Vec::new();
                self.start = 0;
            }
            return Ok(true);
        }
        // Read straight into rustls's record buffer, as bare rustls does.
        match self.session.read_input_from(&mut self.inner) {
            Ok(0) => {
                self.session.handle_eof().map_err(to_io)?;
                Ok(false)
            }
            Ok(_) => Ok(true),
            Err(IoStepError::Transport(err)) => Err(err),
            Err(IoStepError::Session(err)) => Err(to_io(err)),
        }
    }
}

impl<S: Read + Write> Read for TlsStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            // Hand out what is already decrypted before touching the socket.
            match self.session.poll_application_data(buf) {
                Ok(ApplicationData::Data(n)) => return Ok(n),
                Ok(ApplicationData::Closed) => return Ok(0),
                Ok(ApplicationData::NeedInput) => {}
                Err(err) => {
                    // Best effort: deliver the alert rustls queued for the server.
                    let _ = self.send_pending();
                    return Err(to_io(err));
                }
            }
            self.send_pending()?;
            if let Err(err) = self.fill() {
                let _ = self.send_pending();
                return Err(err);
            }
        }
    }
}

impl<S: Read + Write> Write for TlsStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut n = self.session.handle_application_data(buf).map_err(to_io)?;
        if n == 0 && !buf.is_empty() {
            // The outgoing limit is reached: send, then try again.
            self.send_pending()?;
            n = self.session.handle_application_data(buf).map_err(to_io)?;
        }
        self.send_pending()?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_pending()
    }
}

/// The result of one attempt's negotiation over a transport.
pub enum Attempt<S> {
    /// TLS or plaintext, ready for the startup.
    Ready(Stream<S>),
    /// The server said `N`: the transport stays open in plaintext (bytes after `N`
    /// included) for the plan to decide.
    Refused(PlainStream<S>),
}

/// Runs one attempt with `method` over `transport` until TLS is up, `N` arrives, or the
/// attempt fails.
///
/// # Errors
/// Transport errors, or the negotiation's error (libpq's wording).
pub fn negotiate<S: Read + Write>(
    config: &Config,
    method: Method,
    mut transport: S,
) -> Result<Attempt<S>, ConnectError> {
    let mut attempt = Negotiation::new(config, method)?;
    let mut out = BytesMut::new();
    let mut incoming = vec![0u8; BUF_LEN];
    let (mut start, mut end) = (0usize, 0usize);
    loop {
        match attempt.poll_output(&mut out) {
            Ok(Output::Transmit(_)) => {
                let sent = transport.write_all(&out);
                out.clear();
                sent.map_err(|e| transport_error(&attempt, e))?;
                continue;
            }
            Ok(Output::Done) => break,
            Ok(Output::Receive) => {}
            Err(err) => return Err(ConnectError::Tls(err)),
        }
        transport
            .flush()
            .map_err(|e| transport_error(&attempt, e))?;
        if start == end {
            start = 0;
            end = transport
                .read(&mut incoming)
                .map_err(|e| transport_error(&attempt, e))?;
            if end == 0 {
                if let Err(err) = attempt.handle_eof() {
                    flush_last_gasp(&mut attempt, &mut transport, &mut out);
                    return Err(ConnectError::Tls(err));
                }
                continue;
            }
        }
        match attempt.handle_input(&incoming[start..end]) {
            Ok(consumed) => start += consumed,
            Err(err) => {
                flush_last_gasp(&mut attempt, &mut transport, &mut out);
                return Err(ConnectError::Tls(err));
            }
        }
        if attempt.is_done() {
            break;
        }
    }
    let leftover = &incoming[start..end];
    Ok(match attempt.into_negotiated()? {
        Negotiated::Tls(session) => Attempt::Ready(Stream::Tls(Box::new(TlsStream::new(
            transport, *session, leftover,
        )))),
        Negotiated::SslRefused => Attempt::Refused(PlainStream {
            inner: transport,
            pending: leftover.to_vec(),
        }),
        Negotiated::Plaintext => Attempt::Ready(Stream::Plain(PlainStream {
            inner: transport,
            pending: leftover.to_vec(),
        })),
    })
}

/// A transport error during the TLS handshake is a failed TLS attempt for libpq
/// (`SSL SYSCALL error`), which `prefer` follows with plaintext; before TLS, or when the
/// time ran out, it ends the attempt as a transport error.
fn transport_error(attempt: &Negotiation, err: io::Error) -> ConnectError {
    let timed_out = matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    );
    if attempt.is_handshaking() && !timed_out {
        ConnectError::Tls(Error::HandshakeTransport(err.to_string()))
    } else {
        ConnectError::Io(err)
    }
}

/// Sends the alert rustls queued before failing, ignoring transport errors.
fn flush_last_gasp<S: Write>(attempt: &mut Negotiation, transport: &mut S, out: &mut BytesMut) {
    while let Ok(Output::Transmit(_)) = attempt.poll_output(out) {
        let sent = transport.write_all(out);
        out.clear();
        if sent.is_err() {
            return;
        }
    }
    let _ = transport.flush();
}

/// A connection established by [`connect`]: the stream (TLS or plaintext), what the
/// startup callback returned, the method and every attempt. The one
/// [`crate::setup::Connected`] every adapter shares, with the stream kept.
pub type Connected<S, T> = crate::setup::Connected<T, Stream<S>>;

/// Runs libpq's plan for one host: opens connections with `open` (given the time left),
/// negotiates, calls `startup` on the established stream, and retries as the sslmode
/// says. `timeout` (libpq's `connect_timeout`) bounds the whole run.
///
/// # Errors
/// The last attempt's error, with every attempt recorded.
pub fn connect<S, T, O, U>(
    config: &Config,
    timeout: Option<Duration>,
    open: O,
    startup: U,
) -> Result<Connected<S, T>, Box<Failed>>
where
    S: Read + Write + Deadline,
    O: FnMut(Option<Duration>) -> io::Result<S>,
    U: FnMut(&mut Stream<S>) -> Result<T, StartupError>,
{
    connect_over(config, Transport::Tcp, timeout, open, startup)
}

/// [`connect`] for a given kind of transport: over a Unix-domain socket libpq never
/// uses TLS, whatever sslmode says ([`Transport::UnixSocket`]).
///
/// A thin shell over [`ConnectionSetup`]: this function only opens, writes, reads and
/// closes; every decision is the machine's.
///
/// # Errors
/// As [`connect`].
pub fn connect_over<S, T, O, U>(
    config: &Config,
    transport: Transport,
    timeout: Option<Duration>,
    mut open: O,
    mut startup: U,
) -> Result<Connected<S, T>, Box<Failed>>
where
    S: Read + Write + Deadline,
    O: FnMut(Option<Duration>) -> io::Result<S>,
    U: FnMut(&mut Stream<S>) -> Result<T, StartupError>,
{
    let deadline = timeout.map(|t| Instant::now() + t);
    let remaining = || deadline.map(|d| d.saturating_duration_since(Instant::now()));
    let expired = || deadline.is_some_and(|d| Instant::now() >= d);
    let mut setup = ConnectionSetup::over(config, transport);
    let (mut out, mut input) = (BytesMut::new(), BytesMut::new());
    let mut current: Option<S> = None;
    let mut established: Option<(Stream<S>, T)> = None;
    loop {
        let action = setup
            .poll_output(&mut out)
            .map_err(|err| misuse(err, &mut setup))?;
        // Each arm performs one IO step and reports its result to the machine.
        let report = match action {
            Action::Open { .. } => {
                out.clear();
                input.clear();
                if expired() {
                    setup.handle_timeout()
                } else {
                    match open(remaining())
                        .and_then(|mut s| s.set_io_timeout(remaining()).map(|()| s))
                    {
                        Ok(s) => {
                            current = Some(s);
                            Ok(())
                        }
                        Err(err) => report_transport_error(&mut setup, err, expired()),
                    }
                }
            }
            Action::Transmit(_) => {
                let sent = match current.as_mut() {
                    Some(s) => s.write_all(&out).and_then(|()| s.flush()),
                    None => Err(io::Error::from(io::ErrorKind::NotConnected)),
                };
                out.clear();
                match sent {
                    Ok(()) => Ok(()),
                    Err(err) => report_transport_error(&mut setup, err, expired()),
                }
            }
            Action::Receive => match current.as_mut().map(|s| read_into(s, &mut input)) {
                Some(Ok(0)) => setup.handle_eof(),
                Some(Ok(_)) => setup.handle_input(&mut input).map(drop),
                Some(Err(err)) => report_transport_error(&mut setup, err, expired()),
                None => {
                    report_transport_error(&mut setup, io::ErrorKind::NotConnected.into(), false)
                }
            },
            Action::Close => {
                if let Some(mut s) = current.take() {
                    // Best effort: the last TLS alert of a failed attempt.
                    let _ = s.write_all(&out).and_then(|()| s.flush());
                }
                out.clear();
                Ok(())
            }
            Action::Ready(ready) => match current.take() {
                Some(transport) => {
                    let mut stream = match ready {
                        Ready::Tls(session) => {
                            Stream::Tls(Box::new(TlsStream::new(transport, *session, &input)))
                        }
                        Ready::Plaintext => Stream::Plain(PlainStream {
                            inner: transport,
                            pending: input.to_vec(),
                        }),
                    };
                    input.clear();
                    let result = match set_timeout(&mut stream, remaining()) {
                        Ok(()) => startup(&mut stream),
                        Err(err) => Err(StartupError::Io(err)),
                    };
                    match result {
                        Ok(value) => {
                            let _ = set_timeout(&mut stream, None);
                            established = Some((stream, value));
                            setup.handle_startup_accepted()
                        }
                        Err(err) => report_startup_error(&mut setup, err, |setup, err| {
                            report_transport_error(setup, err, expired())
                        }),
                    }
                }
                None => {
                    report_transport_error(&mut setup, io::ErrorKind::NotConnected.into(), false)
                }
            },
            Action::Done => {
                let attempts = setup.take_attempts();
                return match established.take() {
                    Some((stream, startup)) => Ok(Connected::new(stream, startup, attempts)),
                    None => Err(misuse(
                        Error::Misuse("established without a stream"),
                        &mut setup,
                    )),
                };
            }
            Action::Failed(failed) => return Err(failed),
        };
        report.map_err(|err| misuse(err, &mut setup))?;
    }
}

/// Reads once from `transport`, appending to `input`; returns the number of bytes.
fn read_into<S: Read>(transport: &mut S, input: &mut BytesMut) -> io::Result<usize> {
    let start = input.len();
    input.resize(start + BUF_LEN, 0);
    let read = transport.read(&mut input[start..]);
    input.truncate(start + *read.as_ref().unwrap_or(&0));
    read
}

/// Reports a transport failure; a timed-out read or write, or any failure once the
/// deadline has passed, is libpq's `timeout expired`.
fn report_transport_error(
    setup: &mut ConnectionSetup,
    err: io::Error,
    expired: bool,
) -> Result<(), Error> {
    if expired && !setup.is_handshaking() {
        setup.handle_timeout()
    } else {
        setup.handle_transport_error(err)
    }
}

fn set_timeout<S: Deadline>(stream: &mut Stream<S>, timeout: Option<Duration>) -> io::Result<()> {
    match stream {
        Stream::Tls(tls) => tls.get_mut().set_io_timeout(timeout),
        Stream::Plain(plain) => plain.get_mut().set_io_timeout(timeout),
    }
}

/// Sends a `CancelRequest` for backend `process_id` with `key` the way libpq 17+ does:
/// over a new connection negotiated with the same settings (TLS when the sslmode says
/// so, with its fallbacks), then waits for the server to close the connection.
///
/// # Errors
/// The negotiation failed, the key has an invalid length, or the transport failed.
pub fn cancel<S, O>(
    config: &Config,
    timeout: Option<Duration>,
    open: O,
    process_id: u32,
    key: &[u8],
) -> Result<(), Box<Failed>>
where
    S: Read + Write + Deadline,
    O: FnMut(Option<Duration>) -> io::Result<S>,
{
    let packet = crate::wire::cancel_request(process_id, key).map_err(|err| {
        Box::new(Failed {
            error: ConnectError::Tls(err),
            attempts: Vec::new(),
            try_next_host: false,
        })
    })?;
    connect(config, timeout, open, |stream| {
        stream.write_all(&packet)?;
        stream.flush()?;
        // The server answers nothing and closes; reading to EOF makes sure the request
        // was received before we hang up (an unclean TLS EOF is fine here).
        let mut sink = [0u8; 64];
        loop {
            match stream.read(&mut sink) {
                Ok(0) | Err(_) => return Ok(()),
                Ok(_) => {}
            }
        }
    })
    .map(|_| ())
}
