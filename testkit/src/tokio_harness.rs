//! Async harness shared by the tokio tests: the scripted fake postmaster behind an in-memory
//! pipe (or a loopback TCP listener), a transport wrapper that misbehaves on purpose, and a
//! minimal async startup.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use pgtls::tokio::{StartupError, Stream};
use pgtls::{Config, RootCertificates, SslMode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio::task::JoinHandle;

use crate::certs::{Ca, Leaf, LeafSpec};
use crate::fake_server::*;

// ---------------------------------------------------------------------------------------------
// Certificates

/// A root CA and a server certificate for `localhost` issued by it.
pub struct Pki {
    pub ca: Ca,
    pub leaf: Leaf,
}

impl Pki {
    /// A fresh root CA and its `localhost` leaf.
    pub fn new() -> Pki {
        let ca = Ca::root("pgtls tokio test root");
        let leaf = ca.leaf(LeafSpec::server("localhost"));
        Pki { ca, leaf }
    }

    /// A server config serving the leaf, ALPN `postgresql`.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        default_server_tls_config(self.leaf.chain.clone(), self.leaf.key.clone_key())
    }

    /// The root as an `sslrootcert`.
    pub fn roots(&self) -> RootCertificates {
        RootCertificates::from_pem(self.ca.cert_pem().as_bytes()).expect("root pem")
    }

    /// A pgtls config for `mode`, host `localhost`, with the root for verify-ca/verify-full.
    pub fn config(&self, mode: SslMode) -> Config {
        let builder = Config::builder().sslmode(mode).host("localhost");
        let builder = if mode.requires_verification() {
            builder.root_certificates(self.roots())
        } else {
            builder
        };
        builder.build().expect("config")
    }
}

impl Default for Pki {
    fn default() -> Pki {
        Pki::new()
    }
}

// ---------------------------------------------------------------------------------------------
// A transport that misbehaves

/// How [`Chaos`] misbehaves.
#[derive(Clone, Copy, Debug)]
pub struct ChaosOpts {
    /// At most this many bytes per read.
    pub max_read: usize,
    /// At most this many bytes per write (short writes).
    pub max_write: usize,
    /// Return `Pending` (after waking the task) on every other call of each kind.
    pub pending_every_other: bool,
    /// Report EOF once this many bytes were read.
    pub eof_after_read: Option<usize>,
}

impl Default for ChaosOpts {
    fn default() -> Self {
        ChaosOpts {
            max_read: usize::MAX,
            max_write: usize::MAX,
            pending_every_other: false,
            eof_after_read: None,
        }
    }
}

impl ChaosOpts {
    /// 1-byte reads, 1-byte writes, `Pending` on every other call.
    pub fn worst() -> Self {
        ChaosOpts {
            max_read: 1,
            max_write: 1,
            pending_every_other: true,
            eof_after_read: None,
        }
    }
}

/// Counters of the calls a [`Chaos`] transport received.
#[derive(Default, Debug)]
pub struct Calls {
    pub reads: AtomicUsize,
    pub writes: AtomicUsize,
    pub flushes: AtomicUsize,
    pub shutdowns: AtomicUsize,
}

impl Calls {
    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::Relaxed)
    }
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::Relaxed)
    }
}

/// A transport wrapper: bounded reads and writes, spurious `Pending`s (always with a wake-up,
/// as a real transport whose readiness flickers), EOF after a number of bytes.
pub struct Chaos<S> {
    inner: S,
    opts: ChaosOpts,
    read_flip: bool,
    write_flip: bool,
    flush_flip: bool,
    read_total: usize,
    pub calls: Arc<Calls>,
}

impl<S> Chaos<S> {
    pub fn new(inner: S, opts: ChaosOpts) -> Self {
        Chaos {
            inner,
            opts,
            read_flip: false,
            write_flip: false,
            flush_flip: false,
            read_total: 0,
            calls: Arc::new(Calls::default()),
        }
    }
}

fn flicker(enabled: bool, flip: &mut bool, cx: &mut Context<'_>) -> bool {
    if !enabled {
        return false;
    }
    *flip = !*flip;
    if *flip {
        cx.waker().wake_by_ref();
        return true;
    }
    false
}

impl<S: AsyncRead + Unpin> AsyncRead for Chaos<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.calls.reads.fetch_add(1, Ordering::Relaxed);
        if flicker(this.opts.pending_every_other, &mut this.read_flip, cx) {
            return Poll::Pending;
        }
        let mut limit = this.opts.max_read.min(buf.remaining());
        if let Some(eof) = this.opts.eof_after_read {
            limit = limit.min(eof.saturating_sub(this.read_total));
            if limit == 0 {
                return Poll::Ready(Ok(()));
            }
        }
        let mut tmp = vec![0u8; limit];
        let mut small = ReadBuf::new(&mut tmp);
        match Pin::new(&mut this.inner).poll_read(cx, &mut small) {
            Poll::Ready(Ok(())) => {
                let n = small.filled().len();
                this.read_total += n;
                buf.put_slice(&tmp[..n]);
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Chaos<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.calls.writes.fetch_add(1, Ordering::Relaxed);
        if flicker(this.opts.pending_every_other, &mut this.write_flip, cx) {
            return Poll::Pending;
        }
        let n = this.opts.max_write.min(buf.len());
        Pin::new(&mut this.inner).poll_write(cx, &buf[..n])
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.calls.flushes.fetch_add(1, Ordering::Relaxed);
        if flicker(this.opts.pending_every_other, &mut this.flush_flip, cx) {
            return Poll::Pending;
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.calls.shutdowns.fetch_add(1, Ordering::Relaxed);
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

// ---------------------------------------------------------------------------------------------
// The fake server behind a pipe

/// Runs `server` over `io` until either side closes; returns the server for inspection.
pub async fn serve<T: AsyncRead + AsyncWrite + Unpin>(
    mut io: T,
    mut server: FakeServer,
) -> FakeServer {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let out = server.take_output();
        if !out.is_empty() && io.write_all(&out).await.is_err() {
            break;
        }
        if server.is_closed() {
            break;
        }
        match io.read(&mut buf).await {
            Ok(0) | Err(_) => {
                server.handle_client_eof();
                break;
            }
            Ok(n) => {
                if server.handle_client_bytes(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = io.shutdown().await;
    server
}

/// A pipe whose far end is a fake server following `script` (spawned on the runtime).
pub fn pipe(script: ServerScript) -> (DuplexStream, JoinHandle<FakeServer>) {
    let (client, server_io) = tokio::io::duplex(64 * 1024);
    let handle = tokio::spawn(serve(server_io, FakeServer::new(script)));
    (client, handle)
}

/// Opens in-memory connections to fake servers following one script, each behind a
/// [`Chaos`] transport whose options may depend on the connection's index.
#[derive(Clone)]
pub struct FakeNet {
    script: ServerScript,
    chaos: Arc<dyn Fn(usize) -> ChaosOpts + Send + Sync>,
    servers: Arc<Mutex<Vec<JoinHandle<FakeServer>>>>,
}

impl FakeNet {
    pub fn new(script: ServerScript) -> Self {
        FakeNet::with_chaos(script, |_| ChaosOpts::default())
    }

    pub fn with_chaos(
        script: ServerScript,
        chaos: impl Fn(usize) -> ChaosOpts + Send + Sync + 'static,
    ) -> Self {
        FakeNet {
            script,
            chaos: Arc::new(chaos),
            servers: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// A new connection (the `open` function of `pgtls::tokio::connect`).
    pub fn open(&self) -> std::future::Ready<io::Result<Chaos<DuplexStream>>> {
        let (client, handle) = pipe(self.script.clone());
        let mut servers = self.servers.lock().unwrap();
        let opts = (self.chaos)(servers.len());
        servers.push(handle);
        std::future::ready(Ok(Chaos::new(client, opts)))
    }

    /// The servers of every connection opened so far, once their connections ended (drop
    /// the client streams first).
    pub async fn servers(&self) -> Vec<FakeServer> {
        let handles: Vec<_> = std::mem::take(&mut *self.servers.lock().unwrap());
        let mut out = Vec::new();
        for handle in handles {
            out.push(handle.await.expect("server task"));
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// A minimal async startup (StartupMessage, then AuthenticationOk + ReadyForQuery or an error)

/// Sends a StartupMessage for `alice`/`app` and waits for ReadyForQuery or an ErrorResponse.
pub async fn fake_startup<S>(mut stream: Stream<S>) -> Result<Stream<S>, StartupError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    stream.write_all(&startup_message("alice", "app")).await?;
    stream.flush().await?;
    let mut received = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        for (tag, body) in parse_backend_messages(&received) {
            match tag {
                b'Z' => return Ok(stream),
                b'E' => {
                    let fields = error_fields(&body);
                    let field = |code: u8| {
                        fields
                            .iter()
                            .find(|(c, _)| *c == code)
                            .map(|(_, v)| v.clone())
                    };
                    return Err(StartupError::Rejected {
                        sqlstate: field(b'C'),
                        message: field(b'M').unwrap_or_default(),
                    });
                }
                _ => {}
            }
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(StartupError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        received.extend_from_slice(&chunk[..n]);
    }
}
