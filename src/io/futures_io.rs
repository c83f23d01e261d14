//! An async adapter over the futures crate's `AsyncRead`/`AsyncWrite` (feature
//! `futures-io`): smol, async-std and any runtime that speaks those traits.
//!
//! It is the tokio adapter's shell and TLS stream over a futures-io transport: the same
//! [`crate::setup::ConnectionSetup`] loop decides everything, and [`Stream`] is
//! [`crate::tokio::Stream`] seen through the futures-io traits (tokio's IO traits are the
//! internal vocabulary; no tokio runtime runs). The same guarantees hold: no `Pending`
//! without a registered waker, reads cancellation-safe, the connect future not.
//!
//! `connect_timeout` is runtime-agnostic: pass any future that completes when the time
//! is up (e.g. `smol::Timer::after(d)`); it bounds everything from the first connect to
//! the end of the startup, and its expiry is libpq's `timeout expired`.
//!
//! ```no_run
//! use std::time::Duration;
//! use pgtls::futures_io::{connect, StartupError, Stream};
//! use pgtls::{Config, SslMode};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::builder().sslmode(SslMode::Require).host("db.example.com").build()?;
//! let connected = connect(
//!     &config,
//!     Some(smol::Timer::after(Duration::from_secs(10))),
//!     || smol::net::TcpStream::connect("192.0.2.10:5432"),
//!     |stream: Stream<smol::net::TcpStream>| async move {
//!         // send the StartupMessage, authenticate, wait for ReadyForQuery ...
//!         Ok::<_, StartupError>(stream)
//!     },
//! )
//! .await?;
//! println!("TLS: {}", connected.startup.is_tls());
//! # Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use ::futures_io::{AsyncRead, AsyncWrite};
use ::tokio::io::ReadBuf;

use super::tokio::{run_cancel, run_setup, Deadline};
use crate::setup::ConnectionSetup;
pub use crate::setup::{AttemptRecord, ConnectError, Connected, Failed, StartupError};
use crate::{Config, Session};

/// An established connection, TLS or plaintext, as futures-io `AsyncRead`/`AsyncWrite`.
pub struct Stream<S>(super::tokio::Stream<Compat<S>>);

impl<S> Stream<S> {
    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        self.0.is_tls()
    }

    /// The TLS session, if encrypted.
    pub fn session(&self) -> Option<&Session> {
        self.0.session()
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.0.get_ref().0
    }

    /// The transport, mutably. Reading or writing it directly corrupts the session.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.0.get_mut().0
    }
}

impl<S> fmt::Debug for Stream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut read = ReadBuf::new(buf);
        ready!(::tokio::io::AsyncRead::poll_read(
            Pin::new(&mut self.get_mut().0),
            cx,
            &mut read
        ))?;
        Poll::Ready(Ok(read.filled().len()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ::tokio::io::AsyncWrite::poll_write(Pin::new(&mut self.get_mut().0), cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ::tokio::io::AsyncWrite::poll_flush(Pin::new(&mut self.get_mut().0), cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ::tokio::io::AsyncWrite::poll_shutdown(Pin::new(&mut self.get_mut().0), cx)
    }
}

/// A futures-io transport seen through tokio's IO traits.
struct Compat<S>(S);

impl<S: AsyncRead + Unpin> ::tokio::io::AsyncRead for Compat<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = ready!(Pin::new(&mut self.get_mut().0).poll_read(cx, buf.initialize_unfilled()))?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> ::tokio::io::AsyncWrite for Compat<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_close(cx)
    }
}

/// A deadline given as a future that completes when the time is up.
struct TimerDeadline<D> {
    timer: Option<D>,
    expired: bool,
}

impl<D: Future + Unpin> Deadline for TimerDeadline<D> {
    async fn before<F: Future>(&mut self, fut: F) -> Option<F::Output> {
        if self.expired {
            return None;
        }
        let mut fut = std::pin::pin!(fut);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(output) = fut.as_mut().poll(cx) {
                return Poll::Ready(Some(output));
            }
            match self.timer.as_mut().map(|timer| Pin::new(timer).poll(cx)) {
                Some(Poll::Ready(_)) => {
                    self.expired = true;
                    Poll::Ready(None)
                }
                _ => Poll::Pending,
            }
        })
        .await
    }
}

/// Runs libpq's plan for one host: opens connections with `open`, negotiates, hands each
/// established stream to `startup`, and retries as the sslmode says (as
/// [`crate::tokio::connect`]). `timeout` completes when libpq's `connect_timeout` is up.
///
/// # Errors
/// The last attempt's error in libpq's words, with every attempt recorded.
pub async fn connect<S, T, O, OF, U, UF, D>(
    config: &Config,
    timeout: Option<D>,
    mut open: O,
    mut startup: U,
) -> Result<Connected<T>, Box<Failed>>
where
    S: AsyncRead + AsyncWrite + Unpin,
    O: FnMut() -> OF,
    OF: Future<Output = io::Result<S>>,
    U: FnMut(Stream<S>) -> UF,
    UF: Future<Output = Result<T, StartupError>>,
    D: Future + Unpin,
{
    let open = || {
        let opening = open();
        async move { opening.await.map(Compat) }
    };
    run_setup(
        ConnectionSetup::new(config),
        deadline(timeout),
        open,
        |stream| startup(Stream(stream)),
    )
    .await
}

/// Sends a `CancelRequest` for backend `process_id` with `key` as libpq 17+ does: over a
/// new connection negotiated with `config` (TLS when the sslmode says so, with its
/// fallbacks), then waits for the server to close it.
///
/// # Errors
/// The negotiation failed, the key has an invalid length, or the transport failed.
pub async fn cancel<S, O, OF, D>(
    config: &Config,
    timeout: Option<D>,
    mut open: O,
    process_id: u32,
    key: &[u8],
) -> Result<(), Box<Failed>>
where
    S: AsyncRead + AsyncWrite + Unpin,
    O: FnMut() -> OF,
    OF: Future<Output = io::Result<S>>,
    D: Future + Unpin,
{
    let open = || {
        let opening = open();
        async move { opening.await.map(Compat) }
    };
    let setup = ConnectionSetup::new(config);
    run_cancel(setup, deadline(timeout), open, process_id, key).await
}

fn deadline<D>(timer: Option<D>) -> TimerDeadline<D> {
    TimerDeadline {
        timer,
        expired: false,
    }
}
