//! An async adapter over tokio's `AsyncRead`/`AsyncWrite` (feature `tokio`), built only on
//! the public core, like [`crate::blocking`].
//!
//! - [`negotiate`] runs one attempt over any `AsyncRead + AsyncWrite + Unpin` transport and
//!   returns a [`Stream`] that is TLS or plaintext.
//! - [`start_tls`] runs only the TLS handshake, for drivers that did the `SSLRequest`
//!   exchange themselves (tokio-postgres's `TlsConnect`) or that open direct TLS.
//! - [`connect`] runs libpq's whole plan for one host — reconnects included — through a
//!   caller-supplied async `open` function, with `connect_timeout` applied to everything
//!   from the first connect to the end of the startup, as libpq does per host. The
//!   driver's startup and authentication run in an async callback that takes the stream,
//!   so that `allow`/`prefer` can retry on a new connection after the server rejects
//!   them.
//!
//! [`TlsStream`] implements `AsyncRead`/`AsyncWrite` over the established
//! [`Session`] (tokio-rustls cannot adopt a connection that pgtls already handshook):
//!
//! - TLS records that could not be written yet (the transport returned `Pending` or took
//!   only part of them) are kept and sent first on the next call; short writes are
//!   resumed where they stopped.
//! - Data already decrypted is handed out before the transport is polled.
//! - `poll_write` accepts plaintext while less than [`crate::tls::OUTGOING_LIMIT`] bytes
//!   wait for the transport, and returns `Pending` only when the transport does;
//!   `poll_flush` writes every record and flushes the transport; `poll_shutdown` queues
//!   close_notify, sends it and shuts the transport down.
//! - It never returns `Pending` unless the transport returned `Pending` in the same call
//!   (so a waker is registered): no busy loop, no lost wake-up.
//! - An idle stream holds no buffer of its own, and TLS bytes are copied no more often
//!   than bare rustls copies them: rustls reads from the transport straight into its
//!   record buffer and writes its queued records straight to the transport. So a
//!   session costs what the rustls connection inside it costs, however many are open.
//! - A clean close (the server's close_notify) reads as EOF; a transport EOF without it
//!   is an `UnexpectedEof` error ([`Error::UncleanEof`]).
//!
//! ## Cancellation
//!
//! - `AsyncReadExt::read` on a [`Stream`]/[`TlsStream`] is cancellation-safe: decrypted
//!   data is copied out only in the poll that returns it; TLS bytes read from the
//!   transport stay buffered in the stream.
//! - `AsyncWriteExt::write` is cancellation-safe in tokio's sense: when it completes it
//!   reports how many bytes were taken; a cancelled call took none. `write_all` is not
//!   (as for every tokio writer). `flush` and `shutdown` can be cancelled and called
//!   again: pending records stay queued.
//! - [`negotiate`], [`start_tls`] and [`connect`] are **not** cancellation-safe: they own
//!   the transport, and dropping the future drops (closes) the connection in progress.
//!   Nothing leaks and nothing is left half-used; start again with a new connection.
//!   Wrapping them in `tokio::time::timeout` is fine.
//!
//! ```no_run
//! use std::time::Duration;
//! use pgtls::tokio::{connect, StartupError, Stream};
//! use pgtls::{Config, SslMode};
//! use tokio::net::TcpStream;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::builder().sslmode(SslMode::Require).host("db.example.com").build()?;
//! let connected = connect(
//!     &config,
//!     Some(Duration::from_secs(10)),
//!     || TcpStream::connect("192.0.2.10:5432"),
//!     |stream: Stream<TcpStream>| async move {
//!         // send the StartupMessage, authenticate, wait for ReadyForQuery ...
//!         Ok::<_, StartupError>(stream)
//!     },
//! )
//! .await?;
//! println!("TLS: {}", connected.startup.is_tls());
//! # Ok(()) }
//! ```
//!
//! Module name: `pgtls::tokio`, like the feature and like `pgtls::blocking`. Inside pgtls
//! the tokio crate is always named `::tokio`, so the two never meet; callers write
//! `pgtls::tokio::connect` (the pattern of `hyper_util::rt::tokio`).

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use ::tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use ::tokio::time::Instant;

use bytes::BytesMut;

use super::{misuse, report_startup_error, to_io};
use crate::plan::{Method, Plan};
use crate::session::IoStepError;
use crate::setup::{Action, ConnectionSetup, Ready};
pub use crate::setup::{AttemptRecord, ConnectError, Connected, Failed, StartupError};
use crate::{ApplicationData, Config, Error, Negotiated, Negotiation, Output, Session};

/// Size of the adapter's read and write buffers (one maximal TLS record plus headers).
const BUF_LEN: usize = 17 * 1024;

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

    /// The transport.
    pub fn get_ref(&self) -> &S {
        match self {
            Stream::Tls(tls) => tls.get_ref(),
            Stream::Plain(plain) => plain.get_ref(),
        }
    }

    /// The transport, mutably. Reading or writing it directly corrupts the session.
    pub fn get_mut(&mut self) -> &mut S {
        match self {
            Stream::Tls(tls) => tls.get_mut(),
            Stream::Plain(plain) => plain.get_mut(),
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

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
            Stream::Plain(plain) => Pin::new(plain).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
            Stream::Plain(plain) => Pin::new(plain).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
            Stream::Plain(plain) => Pin::new(plain).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
            Stream::Plain(plain) => Pin::new(plain).poll_shutdown(cx),
        }
    }
}

/// A plaintext connection. Bytes the server sent after its `N` (already read from the
/// transport, not consumed by pgtls) are returned first.
pub struct PlainStream<S> {
    inner: S,
    pending: Vec<u8>,
    pos: usize,
}

impl<S> PlainStream<S> {
    fn new(inner: S, pending: &[u8]) -> Self {
        PlainStream {
            inner,
            pending: pending.to_vec(),
            pos: 0,
        }
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The transport, mutably. Bytes already read from it wait in the stream.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }
}

impl<S> fmt::Debug for PlainStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainStream")
            .field("buffered", &(self.pending.len() - self.pos))
            .finish_non_exhaustive()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for PlainStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.pending.len() {
            let n = (this.pending.len() - this.pos).min(buf.remaining());
            buf.put_slice(&this.pending[this.pos..this.pos + n]);
            this.pos += n;
            if this.pos == this.pending.len() {
                this.pending = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for PlainStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A TLS connection over an async transport. See the module docs for its guarantees.
pub struct TlsStream<S> {
    inner: S,
    session: Session,
    /// TLS bytes read from the transport that the session has not taken yet,
    /// `incoming[in_start..]`; empty (no allocation) unless the session refused some.
    incoming: Vec<u8>,
    in_start: usize,
    /// The transport reached EOF (and the session was told).
    read_eof: bool,
    /// close_notify was queued by `poll_shutdown`.
    close_queued: bool,
}

impl<S> fmt::Debug for TlsStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("session", &self.session)
            .field("buffered_in", &(self.incoming.len() - self.in_start))
            .field("read_eof", &self.read_eof)
            .finish_non_exhaustive()
    }
}

impl<S> TlsStream<S> {
    /// Wraps a session established over `inner`; `leftover` are TLS bytes already read
    /// from `inner` that the negotiation did not consume.
    fn new(inner: S, session: Session, leftover: &[u8]) -> Self {
        TlsStream {
            inner,
            session,
            incoming: leftover.to_vec(),
            in_start: 0,
            read_eof: false,
            close_queued: false,
        }
    }

    /// The TLS session (version, cipher suite, ALPN, SNI, channel binding, ...).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The transport, mutably. Reading or writing it directly corrupts the session.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }
}

impl<S: AsyncWrite + Unpin> TlsStream<S> {
    /// Writes every pending TLS record to the transport (without flushing it), straight
    /// from rustls's queue. `Pending` only when the transport returned `Pending` (the
    /// records it did not take stay queued in the session).
    fn poll_send_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.session.wants_output() {
            let mut transport = SyncTransport {
                io: &mut self.inner,
                cx,
            };
            match self.session.write_output_to(&mut transport) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Best effort: hands the alert rustls queued before failing to the transport.
    fn last_gasp(&mut self, cx: &mut Context<'_>) {
        let _ = self.poll_send_pending(cx);
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            // 1. What is already decrypted goes out before the transport is touched.
            match this
                .session
                .poll_application_data(buf.initialize_unfilled())
            {
                Ok(ApplicationData::Data(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(ApplicationData::Closed) => return Poll::Ready(Ok(())),
                Ok(ApplicationData::NeedInput) => {}
                Err(err) => {
                    this.last_gasp(cx);
                    return Poll::Ready(Err(to_io(err)));
                }
            }
            // 2. Records rustls wants to send (alerts, key updates) go out when the
            //    transport takes them; a transport that is not writable does not stop
            //    reading (its waker is registered and the records stay queued).
            if let Poll::Ready(Err(err)) = this.poll_send_pending(cx) {
                return Poll::Ready(Err(err));
            }
            // 3. TLS bytes already read.
            if this.in_start < this.incoming.len() {
                let consumed = match this.session.handle_input(&this.incoming[this.in_start..]) {
                    Ok(consumed) => consumed,
                    Err(err) => {
                        this.last_gasp(cx);
                        return Poll::Ready(Err(to_io(err)));
                    }
                };
                if consumed == 0 {
                    // Nothing decrypted waits, yet rustls takes nothing: never spin.
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "pgtls: the TLS session refused further input",
                    )));
                }
                this.in_start += consumed;
                if this.in_start == this.incoming.len() {
                    this.incoming = Vec::new();
                    this.in_start = 0;
                }
                continue;
            }
            if this.read_eof {
                // The session was told and has nothing more to say.
                return Poll::Ready(Err(to_io(Error::UncleanEof)));
            }
            // 4. The transport, read straight into rustls's buffer (as bare rustls
            //    reads it). `Pending` here has registered the waker.
            let mut transport = SyncTransport {
                io: &mut this.inner,
                cx,
            };
            let n = match this.session.read_input_from(&mut transport) {
                Ok(n) => n,
                Err(IoStepError::Transport(err)) if err.kind() == io::ErrorKind::WouldBlock => {
                    return Poll::Pending;
                }
                Err(IoStepError::Transport(err)) => return Poll::Ready(Err(err)),
                Err(IoStepError::Session(err)) => {
                    this.last_gasp(cx);
                    return Poll::Ready(Err(to_io(err)));
                }
            };
            if n == 0 {
                this.read_eof = true;
                if let Err(err) = this.session.handle_eof() {
                    this.last_gasp(cx);
                    return Poll::Ready(Err(to_io(err)));
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut accepted = this.session.handle_application_data(data).map_err(to_io)?;
        if accepted == 0 {
            // The outgoing limit is reached: the transport must take records first.
            ready!(this.poll_send_pending(cx))?;
            accepted = this.session.handle_application_data(data).map_err(to_io)?;
            if accepted == 0 {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "pgtls: the TLS session refused plaintext",
                )));
            }
        }
        // Push what the transport takes now; the rest stays queued for the next call,
        // poll_flush or poll_shutdown.
        if let Poll::Ready(Err(err)) = this.poll_send_pending(cx) {
            return Poll::Ready(Err(err));
        }
        Poll::Ready(Ok(accepted))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_queued {
            this.close_queued = true;
            this.session.close();
        }
        ready!(this.poll_send_pending(cx))?;
        ready!(Pin::new(&mut this.inner).poll_flush(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// An async transport seen through `std::io` for the length of one poll, so rustls
/// reads and writes it directly: `Pending` becomes `WouldBlock` (with the waker
/// registered by the poll).
struct SyncTransport<'a, 'b, S> {
    io: &'a mut S,
    cx: &'a mut Context<'b>,
}

impl<S: AsyncRead + Unpin> io::Read for SyncTransport<'_, '_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut read = ReadBuf::new(buf);
        match Pin::new(&mut *self.io).poll_read(self.cx, &mut read) {
            Poll::Ready(Ok(())) => Ok(read.filled().len()),
            Poll::Ready(Err(err)) => Err(err),
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl<S: AsyncWrite + Unpin> io::Write for SyncTransport<'_, '_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match Pin::new(&mut *self.io).poll_write(self.cx, buf) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match Pin::new(&mut *self.io).poll_write_vectored(self.cx, bufs) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match Pin::new(&mut *self.io).poll_flush(self.cx) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
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

impl<S> fmt::Debug for Attempt<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attempt::Ready(stream) => f.debug_tuple("Ready").field(stream).finish(),
            Attempt::Refused(plain) => f.debug_tuple("Refused").field(plain).finish(),
        }
    }
}

/// Runs one attempt with `method` over `transport` until TLS is up, `N` arrives, or the
/// attempt fails. Not cancellation-safe (see the module docs).
///
/// # Errors
/// Transport errors, or the negotiation's error (libpq's wording).
pub async fn negotiate<S>(
    config: &Config,
    method: Method,
    transport: S,
) -> Result<Attempt<S>, ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let phase = match method {
        Method::Plaintext => Phase::Plaintext,
        Method::SslRequest => Phase::AwaitingResponse,
        Method::DirectTls => Phase::Handshake,
    };
    drive(Negotiation::new(config, method)?, transport, phase).await
}

/// Runs the TLS handshake at once over `transport`, for drivers that sent `SSLRequest`
/// and read `S` themselves (`method` [`Method::SslRequest`]) or open direct TLS
/// ([`Method::DirectTls`], ALPN `postgresql` required). Not cancellation-safe.
///
/// With [`Method::SslRequest`], bytes the transport already holds when the handshake
/// starts arrived glued to the server's `S`: they are refused with libpq's
/// `received unencrypted data after SSL response` (CVE-2021-23222), and never reach TLS.
///
/// # Errors
/// Transport errors, or the handshake's error (libpq's wording).
pub async fn start_tls<S>(
    config: &Config,
    method: Method,
    mut transport: S,
) -> Result<TlsStream<S>, ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let attempt = Negotiation::start_tls(config, method)?;
    if method == Method::SslRequest {
        refuse_bytes_after_s(&mut transport).await?;
    }
    match drive(attempt, transport, Phase::Handshake).await? {
        Attempt::Ready(Stream::Tls(tls)) => Ok(*tls),
        _ => Err(ConnectError::Tls(Error::Misuse(
            "start_tls ended without TLS (pgtls bug)",
        ))),
    }
}

/// libpq's rule that nothing may follow `S` before the ClientHello, applied to bytes the
/// transport already holds: one poll; anything there is refused. (Bytes in the same read
/// as the `S` are refused by the core itself.)
async fn refuse_bytes_after_s<S: AsyncRead + Unpin>(transport: &mut S) -> Result<(), ConnectError> {
    match bytes_after_s(transport).await {
        Ok(None) => Ok(()),
        Ok(Some(0)) => Err(ConnectError::Tls(Error::ClosedDuringHandshake)),
        Ok(Some(_)) => Err(ConnectError::Tls(Error::UnencryptedDataAfterSslResponse)),
        Err(err) => Err(handshake_transport(&err)),
    }
}

/// Polls the transport once without waiting: `None` when nothing is there, else the
/// number of bytes it held (0 for EOF). The bytes are discarded: any is an error.
async fn bytes_after_s<S: AsyncRead + Unpin>(transport: &mut S) -> io::Result<Option<usize>> {
    let mut probe = [0u8; 1];
    std::future::poll_fn(|cx| {
        let mut buf = ReadBuf::new(&mut probe);
        match Pin::new(&mut *transport).poll_read(cx, &mut buf) {
            // Nothing is waiting: the waker registered here may fire once, harmlessly.
            Poll::Pending => Poll::Ready(Ok(None)),
            Poll::Ready(Ok(())) => Poll::Ready(Ok(Some(buf.filled().len()))),
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
        }
    })
    .await
}

/// A transport failure during the TLS handshake, in libpq's words (`SSL SYSCALL error`).
fn handshake_transport(err: &io::Error) -> ConnectError {
    ConnectError::Tls(Error::HandshakeTransport(crate::os_error::os_error_text(
        err,
    )))
}

/// Where an attempt stands, as far as transport errors are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Plaintext attempt: nothing is exchanged.
    Plaintext,
    /// `SSLRequest` sent or being sent, the answer not yet read.
    AwaitingResponse,
    /// The TLS handshake: a transport failure here is a failed TLS attempt (libpq's
    /// `SSL SYSCALL error`), after which `prefer` falls back.
    Handshake,
}

/// The negotiation loop of the crate docs over an async transport.
///
/// During the handshake a failed write does not end the attempt at once: the server may
/// have closed after sending an alert that says why, so reading goes on until the
/// negotiation fails or the transport ends, and the most telling error is reported.
async fn drive<S>(
    mut attempt: Negotiation,
    mut transport: S,
    mut phase: Phase,
) -> Result<Attempt<S>, ConnectError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut out = BytesMut::new();
    let mut incoming = vec![0u8; BUF_LEN];
    let (mut start, mut end) = (0usize, 0usize);
    // The first transport failure of the handshake (output is discarded after it).
    let mut broken: Option<io::Error> = None;
    let tls_io = |broken: &mut Option<io::Error>, err: io::Error| {
        handshake_transport(&broken.take().unwrap_or(err))
    };
    loop {
        match attempt.poll_output(&mut out) {
            Ok(Output::Transmit(_)) => {
                if broken.is_none() {
                    if let Err(err) = transport.write_all(&out).await {
                        if phase != Phase::Handshake {
                            return Err(ConnectError::Io(err));
                        }
                        broken = Some(err);
                    }
                }
                out.clear();
                continue;
            }
            Ok(Output::Done) => match broken {
                Some(err) => return Err(handshake_transport(&err)),
                None => break,
            },
            Ok(Output::Receive) => {}
            Err(err) => return Err(ConnectError::Tls(err)),
        }
        if broken.is_none() {
            if let Err(err) = transport.flush().await {
                if phase != Phase::Handshake {
                    return Err(ConnectError::Io(err));
                }
                broken = Some(err);
            }
        }
        if start == end {
            start = 0;
            end = match transport.read(&mut incoming).await {
                Ok(n) => n,
                Err(err) if phase == Phase::Handshake => return Err(tls_io(&mut broken, err)),
                Err(err) => return Err(ConnectError::Io(err)),
            };
            if end == 0 {
                if let Err(err) = attempt.handle_eof() {
                    if let (Some(io), Error::ClosedDuringHandshake) = (broken.take(), &err) {
                        // The write failure says more than the EOF that followed it.
                        return Err(handshake_transport(&io));
                    }
                    flush_last_gasp(&mut attempt, &mut transport, &mut out).await;
                    return Err(ConnectError::Tls(err));
                }
                continue;
            }
        }
        match attempt.handle_input(&incoming[start..end]) {
            Ok(0) if !attempt.is_done() => {
                // Input offered, none taken, not finished: never spin.
                return Err(ConnectError::Tls(Error::LimitExceeded(
                    "the handshake refused further input",
                )));
            }
            Ok(consumed) => start += consumed,
            Err(err) => {
                if broken.is_none() {
                    flush_last_gasp(&mut attempt, &mut transport, &mut out).await;
                }
                return Err(ConnectError::Tls(err));
            }
        }
        if phase == Phase::AwaitingResponse && !attempt.is_done() {
            // The answer was `S` (an `N` finishes the attempt, anything else fails it):
            // the handshake starts, and nothing else may have arrived.
            phase = Phase::Handshake;
            if start == end {
                refuse_bytes_after_s(&mut transport).await?;
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
        Negotiated::SslRefused => Attempt::Refused(PlainStream::new(transport, leftover)),
        Negotiated::Plaintext => {
            Attempt::Ready(Stream::Plain(PlainStream::new(transport, leftover)))
        }
    })
}

/// Sends the alert rustls queued before failing, ignoring transport errors.
async fn flush_last_gasp<S: AsyncWrite + Unpin>(
    attempt: &mut Negotiation,
    transport: &mut S,
    out: &mut BytesMut,
) {
    while let Ok(Output::Transmit(_)) = attempt.poll_output(out) {
        let sent = transport.write_all(out).await;
        out.clear();
        if sent.is_err() {
            return;
        }
    }
    let _ = transport.flush().await;
}

/// Runs libpq's plan for one host over TCP ([`Config::plan`]): opens connections with
/// `open`, negotiates, hands each established stream to `startup`, and retries as the
/// sslmode says. `timeout` (libpq's `connect_timeout`) bounds the whole run and needs a
/// tokio runtime with the time driver enabled. Not cancellation-safe (see the module
/// docs).
///
/// `startup` gets the stream by value and returns what the caller wants to keep (the
/// stream itself, or a driver's client built on it). Its [`StartupError::Rejected`]
/// makes `allow` retry with TLS and `prefer` retry in plaintext, on a new connection.
///
/// # Errors
/// The last attempt's error, with every attempt recorded.
pub async fn connect<S, T, O, OF, U, UF>(
    config: &Config,
    timeout: Option<Duration>,
    open: O,
    startup: U,
) -> Result<Connected<T>, Box<Failed>>
where
    S: AsyncRead + AsyncWrite + Unpin,
    O: FnMut() -> OF,
    OF: Future<Output = io::Result<S>>,
    U: FnMut(Stream<S>) -> UF,
    UF: Future<Output = Result<T, StartupError>>,
{
    connect_with_plan(config, config.plan(), timeout, open, startup).await
}

/// [`connect`] with a caller-made plan, e.g. one for a Unix-domain socket
/// (`Plan::new(mode, negotiation, Transport::UnixSocket)`, where libpq never uses TLS).
///
/// # Errors
/// As [`connect`].
pub async fn connect_with_plan<S, T, O, OF, U, UF>(
    config: &Config,
    plan: Plan,
    timeout: Option<Duration>,
    open: O,
    startup: U,
) -> Result<Connected<T>, Box<Failed>>
where
    S: AsyncRead + AsyncWrite + Unpin,
    O: FnMut() -> OF,
    OF: Future<Output = io::Result<S>>,
    U: FnMut(Stream<S>) -> UF,
    UF: Future<Output = Result<T, StartupError>>,
{
    let deadline = TokioDeadline(timeout.map(|t| Instant::now() + t));
    run_setup(
        ConnectionSetup::with_plan(config, plan),
        deadline,
        open,
        startup,
    )
    .await
}

/// The clock of an async connection setup: libpq's `connect_timeout` for one host.
pub(crate) trait Deadline {
    /// Runs `fut` until the deadline (if any); `None` when the deadline passed first.
    fn before<F: Future>(&mut self, fut: F) -> impl Future<Output = Option<F::Output>>;
}

/// A deadline on tokio's clock (needs the runtime's time driver).
struct TokioDeadline(Option<Instant>);

impl Deadline for TokioDeadline {
    async fn before<F: Future>(&mut self, fut: F) -> Option<F::Output> {
        match self.0 {
            None => Some(fut.await),
            Some(deadline) => ::tokio::time::timeout_at(deadline, fut).await.ok(),
        }
    }
}

/// The async shell over [`ConnectionSetup`], shared by every async adapter: it opens,
/// writes, reads and closes; the machine makes every decision.
pub(crate) async fn run_setup<S, T, O, OF, U, UF, D>(
    mut setup: ConnectionSetup,
    mut deadline: D,
    mut open: O,
    mut startup: U,
) -> Result<Connected<T>, Box<Failed>>
where
    S: AsyncRead + AsyncWrite + Unpin,
    O: FnMut() -> OF,
    OF: Future<Output = io::Result<S>>,
    U: FnMut(Stream<S>) -> UF,
    UF: Future<Output = Result<T, StartupError>>,
    D: Deadline,
{
    let (mut out, mut input) = (BytesMut::new(), BytesMut::new());
    let mut transport: Option<S> = None;
    // The first write failure of a handshake: reading goes on, since the server may have
    // closed after an alert that says why; reported if nothing better arrives.
    let mut broken: Option<io::Error> = None;
    let mut established: Option<T> = None;
    loop {
        let action = setup
            .poll_output(&mut out)
            .map_err(|err| misuse(err, &mut setup))?;
        // Each arm performs one IO step and reports its result to the machine.
        let report = match action {
            Action::Open { .. } => {
                out.clear();
                input.clear();
                broken = None;
                match deadline.before(open()).await {
                    Some(Ok(opened)) => {
                        transport = Some(opened);
                        Ok(())
                    }
                    Some(Err(err)) => setup.handle_transport_error(err),
                    None => setup.handle_timeout(),
                }
            }
            Action::Transmit(_) => {
                let sent = match (&broken, transport.as_mut()) {
                    (Some(_), _) => Some(Ok(())),
                    (None, Some(s)) => deadline.before(send(s, &out)).await,
                    (None, None) => Some(Err(io::ErrorKind::NotConnected.into())),
                };
                out.clear();
                match sent {
                    Some(Ok(())) => Ok(()),
                    Some(Err(err)) if setup.is_handshaking() => {
                        broken = Some(err);
                        Ok(())
                    }
                    Some(Err(err)) => setup.handle_transport_error(err),
                    None => setup.handle_timeout(),
                }
            }
            Action::Receive => {
                let was_handshaking = setup.is_handshaking();
                let Some(s) = transport.as_mut() else {
                    return Err(misuse(Error::Misuse("no transport to read"), &mut setup));
                };
                match deadline.before(read_into(s, &mut input)).await {
                    Some(Ok(0)) => match broken.take() {
                        // The write failure says more than the EOF that followed it.
                        Some(err) => report_transport_error(&mut setup, err),
                        None => setup.handle_eof(),
                    },
                    Some(Ok(_)) => match setup.handle_input(&mut input) {
                        // `S` was just taken and nothing followed it in that read: libpq
                        // refuses bytes that are already waiting too.
                        Ok(_) if !was_handshaking && setup.is_handshaking() && input.is_empty() => {
                            match bytes_after_s(s).await {
                                Ok(None) => Ok(()),
                                Ok(Some(0)) => setup.handle_eof(),
                                Ok(Some(_)) => setup.handle_data_after_ssl_response(),
                                Err(err) => report_transport_error(&mut setup, err),
                            }
                        }
                        other => other.map(drop),
                    },
                    Some(Err(err)) => {
                        report_transport_error(&mut setup, broken.take().unwrap_or(err))
                    }
                    None => setup.handle_timeout(),
                }
            }
            Action::Close => {
                if let Some(mut s) = transport.take() {
                    // Best effort: the last TLS alert of a failed attempt.
                    if broken.is_none() {
                        let _ = deadline.before(send(&mut s, &out)).await;
                    }
                }
                out.clear();
                Ok(())
            }
            Action::Ready(ready) => {
                let Some(s) = transport.take() else {
                    return Err(misuse(Error::Misuse("no transport to start"), &mut setup));
                };
                let stream = match ready {
                    Ready::Tls(session) => {
                        Stream::Tls(Box::new(TlsStream::new(s, *session, &input)))
                    }
                    Ready::Plaintext => Stream::Plain(PlainStream::new(s, &input)),
                };
                input.clear();
                match deadline.before(startup(stream)).await {
                    Some(Ok(value)) => {
                        established = Some(value);
                        setup.handle_startup_accepted()
                    }
                    Some(Err(err)) => report_startup_error(&mut setup, err, |setup, err| {
                        setup.handle_transport_error(err)
                    }),
                    None => setup.handle_timeout(),
                }
            }
            Action::Done => {
                let attempts = setup.take_attempts();
                return match established.take() {
                    Some(startup) => Ok(Connected::new((), startup, attempts)),
                    None => Err(misuse(
                        Error::Misuse("established without a startup"),
                        &mut setup,
                    )),
                };
            }
            Action::Failed(failed) => return Err(failed),
        };
        report.map_err(|err| misuse(err, &mut setup))?;
    }
}

/// Sends a `CancelRequest` for backend `process_id` with `key` the way libpq 17+ does:
/// over a new connection negotiated by [`connect`] with the same settings (TLS when the
/// sslmode says so, with its fallbacks), then waits for the server to close it.
///
/// # Errors
/// The negotiation failed, the key has an invalid length, or the transport failed.
pub async fn cancel<S, O, OF>(
    config: &Config,
    timeout: Option<Duration>,
    open: O,
    process_id: u32,
    key: &[u8],
) -> Result<(), Box<Failed>>
where
    S: AsyncRead + AsyncWrite + Unpin,
    O: FnMut() -> OF,
    OF: Future<Output = io::Result<S>>,
{
    let deadline = TokioDeadline(timeout.map(|t| Instant::now() + t));
    run_cancel(
        ConnectionSetup::new(config),
        deadline,
        open,
        process_id,
        key,
    )
    .await
}

/// The cancel of every async adapter: [`run_setup`] with a `CancelRequest` as the
/// driver's part.
pub(crate) async fn run_cancel<S, O, OF, D>(
    setup: ConnectionSetup,
    deadline: D,
    open: O,
    process_id: u32,
    key: &[u8],
) -> Result<(), Box<Failed>>
where
    S: AsyncRead + AsyncWrite + Unpin,
    O: FnMut() -> OF,
    OF: Future<Output = io::Result<S>>,
    D: Deadline,
{
    let packet = crate::wire::cancel_request(process_id, key).map_err(|err| {
        Box::new(Failed {
            error: ConnectError::Tls(err),
            attempts: Vec::new(),
            try_next_host: false,
        })
    })?;
    let send = |mut stream: Stream<S>| {
        let packet = packet.clone();
        async move {
            stream.write_all(&packet).await?;
            stream.flush().await?;
            // The server answers nothing and closes; reading to EOF makes sure the
            // request was received before we hang up (an unclean TLS EOF is fine here).
            let mut sink = [0u8; 64];
            while let Ok(1..) = stream.read(&mut sink).await {}
            Ok::<_, StartupError>(())
        }
    };
    run_setup(setup, deadline, open, send).await.map(drop)
}

/// Writes and flushes `bytes`.
async fn send<S: AsyncWrite + Unpin>(transport: &mut S, bytes: &[u8]) -> io::Result<()> {
    transport.write_all(bytes).await?;
    transport.flush().await
}

/// Reads once from `transport`, appending to `input`; returns the number of bytes.
async fn read_into<S: AsyncRead + Unpin>(
    transport: &mut S,
    input: &mut BytesMut,
) -> io::Result<usize> {
    input.reserve(BUF_LEN);
    transport.read_buf(input).await
}

/// Reports a transport failure; during the handshake in libpq's words (the machine
/// quotes the error's text).
fn report_transport_error(setup: &mut ConnectionSetup, err: io::Error) -> Result<(), Error> {
    let err = if setup.is_handshaking() {
        io::Error::new(err.kind(), crate::os_error::os_error_text(&err))
    } else {
        err
    };
    setup.handle_transport_error(err)
}
