//! The established TLS session, driven from caller buffers like the negotiation.
//!
//! Two directions, each with an input verb and an output verb:
//!
//! | direction | in | out |
//! |---|---|---|
//! | to the peer | [`Session::handle_application_data`] (plaintext) | [`Session::poll_output`] (TLS records) |
//! | from the peer | [`Session::handle_input`] (TLS records) | [`Session::poll_application_data`] (plaintext) |
//!
//! One type serves both ends: the client's session from [`crate::Negotiation`] and the
//! server's from [`crate::server::Acceptor`] ([`Session::is_server`] tells them apart).
//! Inside it holds a `rustls::Connection`, rustls's own client-or-server enum: the
//! side is one predictable branch per call, with no allocation and no dynamic dispatch,
//! and drivers, adapters and proxies handle both ends with the same code. The few
//! side-dependent answers are documented per method ([`Session::sni`],
//! [`Session::peer_certificates`], [`Session::channel_binding`]).
//!
//! A clean close (the server's close_notify) is told apart from an unclean EOF
//! ([`Error::UncleanEof`]). Alerts the server sends after the handshake — TLS 1.3
//! servers reject a client certificate only then — surface as errors from
//! [`Session::handle_input`] on the first records that carry them.
//!
//! Limits: at most [`crate::tls::OUTGOING_LIMIT`] bytes of plaintext are accepted before
//! the caller drains [`Session::poll_output`]; incoming, rustls holds at most about
//! 16 KiB of decrypted data plus one record, and `handle_input` consumes less than
//! offered until [`Session::poll_application_data`] makes room.

use std::sync::Arc;

use bytes::{Buf, BytesMut};
use rustls::pki_types::CertificateDer;
use rustls::sign::CertifiedKey;
use rustls::{Connection, ProtocolVersion, SupportedCipherSuite};

use crate::channel_binding::{tls_server_end_point, ChannelBindingError};
use crate::error::{from_rustls, Error};
use crate::output::{Output, OutputBuffer, EMPTY_SLICE};
use crate::tls::{Plaintext, TlsConn};

/// What [`Session::poll_application_data`] produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplicationData {
    /// `n` decrypted bytes were copied to the start of the buffer.
    Data(usize),
    /// Nothing is waiting: feed more TLS bytes with [`Session::handle_input`].
    NeedInput,
    /// The peer closed the session cleanly (close_notify): no more data will come.
    Closed,
}

/// An established TLS session. See the module docs.
pub struct Session {
    tls: TlsConn,
    sni: Option<String>,
    /// The server side's own certificate (for `tls-server-end-point`); `None` for a client.
    local: Option<Arc<CertifiedKey>>,
    failed: Option<Error>,
    /// close_notify was queued: no more plaintext may be sent.
    closed: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("protocol_version", &self.protocol_version())
            .field("cipher_suite", &self.cipher_suite().map(|s| s.suite()))
            .field("sni", &self.sni)
            .field("resumed", &self.resumed())
            .field("is_server", &self.is_server())
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(tls: TlsConn, sni: Option<String>) -> Self {
        Session {
            tls,
            sni,
            local: None,
            failed: None,
            closed: false,
        }
    }

    /// A server-side session: `sni` as received, `local` the certificate it presented.
    pub(crate) fn new_server(
        tls: TlsConn,
        sni: Option<String>,
        local: Option<Arc<CertifiedKey>>,
    ) -> Self {
        Session {
            tls,
            sni,
            local,
            failed: None,
            closed: false,
        }
    }

    /// Whether this is the server's end of the connection (from
    /// [`crate::server::Acceptor`]) rather than the client's.
    pub fn is_server(&self) -> bool {
        self.tls.is_server()
    }

    /// Feeds TLS bytes from the peer; returns how many were consumed (fewer than
    /// offered while decrypted data waits to be taken).
    ///
    /// # Errors
    /// A TLS alert from the peer or a broken record. An alert for the peer may still
    /// wait in [`Self::poll_output`].
    pub fn handle_input(&mut self, input: &[u8]) -> Result<usize, Error> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        self.tls.handle_tls_input(input).map_err(|err| {
            let err = from_rustls(err);
            self.failed = Some(err.clone());
            err
        })
    }

    /// Tells the session the transport reached EOF. Data already received can still be
    /// taken; then [`Self::poll_application_data`] reports a clean close or
    /// [`Error::UncleanEof`].
    ///
    /// # Errors
    /// A TLS error surfaced by the last records.
    pub fn handle_eof(&mut self) -> Result<(), Error> {
        self.tls.handle_eof().map_err(|err| {
            let err = from_rustls(err);
            self.failed = Some(err.clone());
            err
        })
    }

    #[cfg(any(feature = "blocking", feature = "tokio"))]
    /// The adapters' read path: TLS bytes go from the transport straight into rustls's
    /// buffer, as bare rustls reads them (no copy through a buffer of ours). Returns the
    /// bytes read; 0 is the transport's EOF, which the caller reports with
    /// [`Self::handle_eof`].
    pub(crate) fn read_input_from(
        &mut self,
        source: &mut dyn std::io::Read,
    ) -> Result<usize, IoStepError> {
        if let Some(err) = &self.failed {
            return Err(IoStepError::Session(err.clone()));
        }
        self.tls.read_tls_from(source).map_err(|err| match err {
            crate::tls::FromIoError::Transport(err) => IoStepError::Transport(err),
            crate::tls::FromIoError::Tls(err) => {
                let err = from_rustls(err);
                self.failed = Some(err.clone());
                IoStepError::Session(err)
            }
        })
    }

    #[cfg(any(feature = "blocking", feature = "tokio"))]
    /// The adapters' write path: pending TLS records go from rustls's queue straight to
    /// the transport; what it does not take stays queued. Returns the bytes it took.
    pub(crate) fn write_output_to(
        &mut self,
        sink: &mut dyn std::io::Write,
    ) -> std::io::Result<usize> {
        self.tls.write_tls_to(sink)
    }

    /// Accepts plaintext to encrypt; returns how many bytes were taken (all of them unless
    /// [`crate::tls::OUTGOING_LIMIT`] bytes already wait in [`Self::poll_output`]).
    ///
    /// # Errors
    /// The session failed earlier, or [`Error::Misuse`] after [`Self::close`] (nothing may
    /// follow close_notify; rustls's buffered API would encrypt it anyway).
    pub fn handle_application_data(&mut self, data: &[u8]) -> Result<usize, Error> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        if self.closed {
            return Err(Error::Misuse(
                "the session was closed (close_notify queued)",
            ));
        }
        Ok(self.tls.handle_plaintext(data))
    }

    /// Appends the TLS records waiting to be sent (application data, alerts,
    /// close_notify) to `out`; rustls writes into `out`'s spare capacity: no zero-filling,
    /// and no buffer can be too small. See [`Output`]:
    ///
    /// - `Transmit(n)`: `n` bytes were appended; send them.
    /// - `Receive`: nothing to send now; more comes after [`Self::handle_input`] (a key
    ///   update, an alert) or [`Self::handle_application_data`].
    /// - `Done`: [`Self::close`] was called and its close_notify was handed out: nothing
    ///   more will ever be sent.
    ///
    /// # Errors
    /// The session failed (a TLS alert or a broken record from the peer): its last alert
    /// for the peer, if any, is handed out first, then the error is returned on every call.
    pub fn poll_output(&mut self, out: &mut BytesMut) -> Result<Output, Error> {
        self.poll_output_to(&mut OutputBuffer::Append(out))
    }

    /// [`Self::poll_output`] into a fixed buffer: at most `buf.len()` bytes are written at
    /// its start (for adapters that send from one scratch buffer per thread).
    ///
    /// # Errors
    /// As [`Self::poll_output`]; [`Error::Misuse`] for an empty `buf` while records wait
    /// (nothing is lost: call again with room).
    pub fn poll_output_slice(&mut self, buf: &mut [u8]) -> Result<Output, Error> {
        match self.poll_output_to(&mut OutputBuffer::Slice(buf))? {
            Output::Transmit(0) => Err(Error::Misuse(EMPTY_SLICE)),
            output => Ok(output),
        }
    }

    fn poll_output_to(&mut self, out: &mut OutputBuffer<'_>) -> Result<Output, Error> {
        if let Some(output) = out.put_tls(&mut self.tls) {
            return Ok(output);
        }
        match &self.failed {
            Some(err) => Err(err.clone()),
            None if self.closed => Ok(Output::Done),
            None => Ok(Output::Receive),
        }
    }

    /// Whether TLS records wait to be sent.
    pub fn wants_output(&self) -> bool {
        self.tls.wants_output()
    }

    /// Copies decrypted application data into `buf`.
    ///
    /// # Errors
    /// [`Error::UncleanEof`] when the transport ended without close_notify and nothing
    /// is left to read; the session's earlier failure, if any.
    pub fn poll_application_data(&mut self, buf: &mut [u8]) -> Result<ApplicationData, Error> {
        let plaintext = self.tls.poll_plaintext(buf);
        self.application_data(plaintext)
    }

    /// What taking decrypted data produced, in the caller's words (shared by the slice
    /// and `BytesMut` forms).
    fn application_data(&self, plaintext: Plaintext) -> Result<ApplicationData, Error> {
        match plaintext {
            Plaintext::Data(n) => Ok(ApplicationData::Data(n)),
            Plaintext::Closed => Ok(ApplicationData::Closed),
            Plaintext::Truncated => Err(Error::UncleanEof),
            Plaintext::Empty => match &self.failed {
                Some(err) => Err(err.clone()),
                // After our close_notify nothing more is read (see `Self::close`).
                None if self.closed => Ok(ApplicationData::Closed),
                None if self.tls.saw_eof() => Err(Error::UncleanEof),
                None => Ok(ApplicationData::NeedInput),
            },
        }
    }

    /// Queues close_notify (send it with [`Self::poll_output`]). Further plaintext is
    /// refused ([`Self::handle_application_data`] returns [`Error::Misuse`]).
    ///
    /// Closing ends both directions: data decrypted before the close can still be taken,
    /// then [`Self::poll_application_data`] reports [`ApplicationData::Closed`], and TLS
    /// bytes given to [`Self::handle_input`] afterwards are consumed and dropped. (rustls
    /// treats its close_notify as its last alert; processing records after it could make
    /// it send a second one, which its debug builds assert against.)
    pub fn close(&mut self) {
        self.closed = true;
        self.tls.send_close_notify();
    }

    /// [`Self::handle_input`] from any [`Buf`] (a `BytesMut` the driver reads into):
    /// feeds its chunks and advances it by what was consumed; the rest stays for later.
    ///
    /// # Errors
    /// As [`Self::handle_input`]; bytes consumed before the error stay consumed.
    pub fn handle_input_buf(&mut self, input: &mut impl Buf) -> Result<usize, Error> {
        let mut total = 0;
        while input.has_remaining() {
            let chunk = input.chunk();
            let offered = chunk.len();
            let consumed = self.handle_input(chunk)?;
            input.advance(consumed);
            total += consumed;
            if consumed < offered {
                break;
            }
        }
        Ok(total)
    }

    /// [`Self::handle_application_data`] from any [`Buf`], advancing it by what was taken.
    ///
    /// # Errors
    /// As [`Self::handle_application_data`].
    pub fn handle_application_data_buf(&mut self, data: &mut impl Buf) -> Result<usize, Error> {
        let mut total = 0;
        while data.has_remaining() {
            let chunk = data.chunk();
            let offered = chunk.len();
            let taken = self.handle_application_data(chunk)?;
            data.advance(taken);
            total += taken;
            if taken < offered {
                break;
            }
        }
        Ok(total)
    }

    /// Appends decrypted application data to `out`, copied once from rustls's buffer.
    /// `Data(n)`: `n` bytes were appended (call again for more).
    ///
    /// # Errors
    /// As [`Self::poll_application_data`].
    pub fn poll_application_data_into(
        &mut self,
        out: &mut BytesMut,
    ) -> Result<ApplicationData, Error> {
        let plaintext = self.tls.poll_plaintext_into(out);
        self.application_data(plaintext)
    }

    /// The negotiated TLS version.
    pub fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.tls.protocol_version()
    }

    /// The negotiated cipher suite.
    pub fn cipher_suite(&self) -> Option<SupportedCipherSuite> {
        self.tls.cipher_suite()
    }

    /// The key-exchange group the handshake agreed on (`secp256r1`, `X25519`,
    /// `X25519MLKEM768`, ...), from rustls's `negotiated_key_exchange_group`. By default
    /// pgtls's ClientHello carries a P-256 key share, which PostgreSQL's defaults accept
    /// without a HelloRetryRequest; [`crate::ConfigBuilder::key_exchange_groups`] changes
    /// the preference.
    pub fn key_exchange_group(&self) -> Option<rustls::NamedGroup> {
        self.tls.key_exchange_group()
    }

    /// Whether the handshake resumed an earlier TLS session (a ticket or session ID the
    /// server accepted) instead of a full handshake. On a client session this needs
    /// [`crate::ConfigBuilder::session_resumption`]; a resumed session verified nothing
    /// now: its certificate was verified when the session was first made (see that
    /// method). On a server session, it needs tickets from the acceptor
    /// ([`crate::server::ServerTlsBuilder::session_tickets`]).
    pub fn resumed(&self) -> bool {
        self.tls.resumed()
    }

    /// The ALPN protocol the server selected (`postgresql`, or none for servers before 17
    /// reached through `SSLRequest`, or on a server session for clients before libpq 17).
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.tls.alpn_protocol()
    }

    /// The SNI host name of the ClientHello, if any: the one sent (client session; libpq's
    /// rule: only for names) or the one received (server session; see
    /// [`crate::server::endpoint_from_sni`] for routing by it).
    pub fn sni(&self) -> Option<&str> {
        self.sni.as_deref()
    }

    /// The peer's certificate chain as presented, leaf first: the server's on a client
    /// session, the client's (empty if it sent none) on a server session.
    pub fn peer_certificates(&self) -> &[CertificateDer<'static>] {
        self.tls.peer_certificates().unwrap_or(&[])
    }

    /// The `tls-server-end-point` channel-binding data for SCRAM-SHA-256-PLUS (RFC 5929,
    /// computed as libpq does: the leaf's signature hash, MD5/SHA-1 → SHA-256). Always
    /// over the **server's** leaf: the peer's on a client session, its own on a server
    /// session, so both ends compute the same bytes.
    ///
    /// # Errors
    /// No certificate, or a signature algorithm without a defined hash (Ed25519, Ed448).
    pub fn channel_binding(&self) -> Result<Vec<u8>, ChannelBindingError> {
        let leaf = match &self.local {
            Some(local) => local.end_entity_cert().ok(),
            None if self.is_server() => None,
            None => self.peer_certificates().first(),
        };
        match leaf {
            Some(leaf) => tls_server_end_point(leaf.as_ref()),
            None => Err(ChannelBindingError::NoCertificate),
        }
    }

    /// The rustls connection (`Connection::Client` or `Connection::Server`), for callers
    /// who want to drive it themselves.
    pub fn into_rustls(self) -> Connection {
        self.tls.into_inner()
    }
}

#[cfg(any(feature = "blocking", feature = "tokio"))]
/// Why a direct read from the transport failed ([`Session::read_input_from`]).
#[derive(Debug)]
pub(crate) enum IoStepError {
    /// The transport failed, or would block.
    Transport(std::io::Error),
    /// The session failed (now or earlier).
    Session(Error),
}
