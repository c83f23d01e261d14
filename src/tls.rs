//! The only module that calls rustls's connection API (its server-side sibling,
//! `server/tls.rs`, only accepts the ClientHello and then hands the connection here).
//!
//! It drives a buffered `rustls::Connection` — a `ClientConnection`, or a
//! `ServerConnection` from [`crate::server`] — from slices: `read_tls` from the
//! caller's bytes, `process_new_packets`, `write_tls` into the caller's buffer, and the
//! plaintext reader/writer. Keeping every such call here makes a rustls upgrade local.
//!
//! Memory: rustls buffers at most one TLS record being reassembled (about 16 KiB plus
//! headers) and refuses to read more TLS bytes while 16 KiB of decrypted plaintext wait
//! to be taken; outgoing plaintext is capped by [`OUTGOING_LIMIT`]. `handle_tls_input`
//! therefore may consume fewer bytes than offered: the caller keeps the rest.

use std::io::{self, Read, Write};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, Connection, ProtocolVersion, ServerConnection,
    SupportedCipherSuite,
};

/// Most plaintext bytes the session accepts for encryption before the caller has taken
/// the resulting records out (`rustls::Connection::set_buffer_limit`).
pub const OUTGOING_LIMIT: usize = 64 * 1024;

/// What decrypting produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plaintext {
    /// This many bytes were copied out.
    Data(usize),
    /// Nothing decrypted is waiting; more TLS input is needed.
    Empty,
    /// The server sent close_notify: no more data will come.
    Closed,
    /// The transport ended without close_notify.
    Truncated,
}

#[cfg(any(feature = "blocking", feature = "tokio"))]
/// Why reading from or writing to a transport directly failed.
#[derive(Debug)]
pub(crate) enum FromIoError {
    /// The transport failed (or would block).
    Transport(io::Error),
    /// The bytes read were not acceptable TLS.
    Tls(rustls::Error),
}

/// A rustls connection (client or server side) driven from caller buffers.
///
/// Failure is sticky: once rustls returns an error, nothing calls into its state
/// machine again. Every later input reports the same error, plaintext is refused and
/// no close_notify is queued; only the records rustls queued before failing (its fatal
/// alert) are still handed out by [`TlsConn::poll_tls_output`]. rustls itself asserts
/// (in debug builds) that it is not driven after sending a fatal alert, and would send a
/// second one in release builds.
///
/// Closing is final too: rustls counts its own close_notify as the last alert it may
/// send, so a record that fails to process afterwards would trip the same assertion.
/// After [`TlsConn::send_close_notify`], TLS input is taken and discarded without
/// reaching rustls (plaintext decrypted before the close can still be read).
pub(crate) struct TlsConn {
    conn: Connection,
    saw_eof: bool,
    failed: Option<rustls::Error>,
    /// close_notify was queued: rustls must not process another record.
    closed: bool,
}

impl std::fmt::Debug for TlsConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConn")
            .field("handshaking", &self.conn.is_handshaking())
            .field("saw_eof", &self.saw_eof)
            .finish_non_exhaustive()
    }
}

impl TlsConn {
    /// Starts a handshake: the ClientHello is queued at once.
    pub(crate) fn start(
        config: Arc<ClientConfig>,
        server_name: ServerName<'static>,
    ) -> Result<Self, rustls::Error> {
        let mut conn = ClientConnection::new(config, server_name)?;
        conn.set_buffer_limit(Some(OUTGOING_LIMIT));
        Ok(TlsConn {
            conn: conn.into(),
            saw_eof: false,
            failed: None,
            closed: false,
        })
    }

    /// Wraps a server connection whose ClientHello `crate::server` already accepted.
    pub(crate) fn from_server(mut conn: ServerConnection) -> Self {
        conn.set_buffer_limit(Some(OUTGOING_LIMIT));
        TlsConn {
            conn: conn.into(),
            saw_eof: false,
            failed: None,
            closed: false,
        }
    }

    /// Whether this is the server side of the connection.
    pub(crate) fn is_server(&self) -> bool {
        matches!(self.conn, Connection::Server(_))
    }

    /// Feeds TLS bytes from the server and processes complete records. Returns how many
    /// bytes were taken; fewer than offered when rustls's buffers are full (take the
    /// plaintext out, then offer the rest again).
    pub(crate) fn handle_tls_input(&mut self, mut input: &[u8]) -> Result<usize, rustls::Error> {
        self.check_failed()?;
        if self.closed {
            // After our close_notify nothing more is read (see the type's docs).
            return Ok(input.len());
        }
        let offered = input.len();
        while !input.is_empty() {
            match self.conn.read_tls(&mut input) {
                Ok(0) => break,
                Ok(_) => {
                    self.process()?;
                }
                // rustls refuses more input while its buffers are full; the caller
                // offers the rest again after taking plaintext out.
                Err(_) => break,
            }
        }
        Ok(offered - input.len())
    }

    #[cfg(any(feature = "blocking", feature = "tokio"))]
    /// Reads TLS bytes straight from `source` into rustls's buffer (the one copy bare
    /// rustls makes) and processes the records completed. Returns how many bytes were
    /// read; 0 is the transport's EOF (tell [`TlsConn::handle_eof`]).
    ///
    /// After our close_notify the bytes read are dropped (see the type's docs).
    pub(crate) fn read_tls_from(&mut self, source: &mut dyn Read) -> Result<usize, FromIoError> {
        self.check_failed().map_err(FromIoError::Tls)?;
        if self.closed {
            let mut discard = [0u8; 1024];
            return source.read(&mut discard).map_err(FromIoError::Transport);
        }
        let read = self.conn.read_tls(source).map_err(FromIoError::Transport)?;
        if read > 0 {
            self.process().map_err(FromIoError::Tls)?;
        }
        Ok(read)
    }

    #[cfg(any(feature = "blocking", feature = "tokio"))]
    /// Writes pending TLS records straight from rustls's queue to `sink` (no copy of our
    /// own); what `sink` does not take stays queued. Returns how many bytes it took.
    pub(crate) fn write_tls_to(&mut self, sink: &mut dyn Write) -> io::Result<usize> {
        self.conn.write_tls(sink)
    }

    /// Records that the transport reached EOF.
    pub(crate) fn handle_eof(&mut self) -> Result<(), rustls::Error> {
        self.check_failed()?;
        if !self.saw_eof {
            self.saw_eof = true;
            if self.closed {
                return Ok(());
            }
            let mut empty: &[u8] = &[];
            // Reading zero bytes tells rustls the peer is gone.
            let _ = self.conn.read_tls(&mut empty);
            self.process()?;
        }
        Ok(())
    }

    /// The error rustls returned earlier, if any: after it, rustls is never called again.
    fn check_failed(&self) -> Result<(), rustls::Error> {
        match &self.failed {
            Some(err) => Err(err.clone()),
            None => Ok(()),
        }
    }

    /// Processes buffered records, remembering a failure.
    fn process(&mut self) -> Result<(), rustls::Error> {
        if let Err(err) = self.conn.process_new_packets() {
            self.failed = Some(err.clone());
            return Err(err);
        }
        Ok(())
    }

    /// Whether the transport reached EOF.
    pub(crate) fn saw_eof(&self) -> bool {
        self.saw_eof
    }

    /// Whether TLS records wait to be sent.
    pub(crate) fn wants_output(&self) -> bool {
        self.conn.wants_write()
    }

    /// Copies pending TLS records into `buf`; returns the number of bytes written.
    pub(crate) fn poll_tls_output(&mut self, mut buf: &mut [u8]) -> usize {
        let mut written = 0;
        while self.conn.wants_write() && !buf.is_empty() {
            match self.conn.write_tls(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => written += n,
            }
        }
        written
    }

    /// Appends pending TLS records to `out` (no zero-filling: rustls writes straight into
    /// the spare capacity); returns the number of bytes appended.
    pub(crate) fn poll_tls_output_into(&mut self, out: &mut bytes::BytesMut) -> usize {
        use bytes::BufMut as _;
        let before = out.len();
        let mut writer = out.writer();
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut writer) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        writer.into_inner().len() - before
    }

    /// Appends decrypted bytes to `out` straight from rustls's buffer (one copy).
    pub(crate) fn poll_plaintext_into(&mut self, out: &mut bytes::BytesMut) -> Plaintext {
        use std::io::BufRead as _;
        let mut reader = self.conn.reader();
        match reader.fill_buf() {
            Ok([]) => Plaintext::Closed,
            Ok(chunk) => {
                let n = chunk.len();
                out.extend_from_slice(chunk);
                reader.consume(n);
                Plaintext::Data(n)
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => Plaintext::Empty,
            Err(_) => Plaintext::Truncated,
        }
    }

    /// Whether the handshake is still going on.
    pub(crate) fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Queues plaintext for encryption; returns how much was accepted (bounded by
    /// [`OUTGOING_LIMIT`]).
    pub(crate) fn handle_plaintext(&mut self, data: &[u8]) -> usize {
        if self.failed.is_some() {
            return 0;
        }
        self.conn.writer().write(data).unwrap_or(0)
    }

    /// Copies decrypted bytes into `buf`.
    pub(crate) fn poll_plaintext(&mut self, buf: &mut [u8]) -> Plaintext {
        match self.conn.reader().read(buf) {
            Ok(0) if buf.is_empty() => Plaintext::Empty,
            Ok(0) => Plaintext::Closed,
            Ok(n) => Plaintext::Data(n),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => Plaintext::Empty,
            Err(_) => Plaintext::Truncated,
        }
    }

    /// Queues close_notify.
    ///
    /// Nothing is queued after a failure: the fatal alert already ended the connection.
    pub(crate) fn send_close_notify(&mut self) {
        if self.failed.is_none() && !self.closed {
            self.closed = true;
            self.conn.send_close_notify();
        }
    }

    /// The ALPN protocol the server selected.
    pub(crate) fn alpn_protocol(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    /// The negotiated TLS version.
    pub(crate) fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.conn.protocol_version()
    }

    /// The negotiated cipher suite.
    pub(crate) fn cipher_suite(&self) -> Option<SupportedCipherSuite> {
        self.conn.negotiated_cipher_suite()
    }

    /// The key-exchange group the handshake used (`None` before it is agreed).
    pub(crate) fn key_exchange_group(&self) -> Option<rustls::NamedGroup> {
        self.conn
            .negotiated_key_exchange_group()
            .map(|group| group.name())
    }

    /// Whether the handshake resumed an earlier session (rustls's `handshake_kind`).
    pub(crate) fn resumed(&self) -> bool {
        self.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
    }

    /// The peer's certificates, leaf first.
    pub(crate) fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.conn.peer_certificates()
    }

    /// The rustls connection itself.
    pub(crate) fn into_inner(self) -> Connection {
        self.conn
    }
}
