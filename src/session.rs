//! The established TLS session, driven from caller buffers like the negotiation.
//!
//! Two directions, each with an input verb and an output verb:
//!
//! | direction | in | out |
//! |---|---|---|
//! | to the server | [`Session::handle_application_data`] (plaintext) | [`Session::poll_output`] (TLS records) |
//! | from the server | [`Session::handle_input`] (TLS records) | [`Session::poll_application_data`] (plaintext) |
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

use rustls::pki_types::CertificateDer;
use rustls::{ClientConnection, ProtocolVersion, SupportedCipherSuite};

use crate::channel_binding::{tls_server_end_point, ChannelBindingError};
use crate::error::{from_rustls, Error};
use crate::tls::{Plaintext, TlsConn};

/// What [`Session::poll_application_data`] produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplicationData {
    /// `n` decrypted bytes were copied to the start of the buffer.
    Data(usize),
    /// Nothing is waiting: feed more TLS bytes with [`Session::handle_input`].
    NeedInput,
    /// The server closed the session cleanly (close_notify): no more data will come.
    Closed,
}

/// An established TLS session. See the module docs.
pub struct Session {
    tls: TlsConn,
    sni: Option<String>,
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
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(tls: TlsConn, sni: Option<String>) -> Self {
        Session {
            tls,
            sni,
            failed: None,
            closed: false,
        }
    }

    /// Feeds TLS bytes from the server; returns how many were consumed (fewer than
    /// offered while decrypted data waits to be taken).
    ///
    /// # Errors
    /// A TLS alert from the server or a broken record. An alert for the server may still
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

    /// Copies TLS records to send into `buf`; returns the number of bytes (0 when
    /// nothing waits). Records queued before a failure (the last alert) are still handed
    /// out.
    pub fn poll_output(&mut self, buf: &mut [u8]) -> usize {
        self.tls.poll_tls_output(buf)
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
        match self.tls.poll_plaintext(buf) {
            Plaintext::Data(n) => Ok(ApplicationData::Data(n)),
            Plaintext::Closed => Ok(ApplicationData::Closed),
            Plaintext::Truncated => Err(Error::UncleanEof),
            Plaintext::Empty => match &self.failed {
                Some(err) => Err(err.clone()),
                None if self.tls.saw_eof() => Err(Error::UncleanEof),
                None => Ok(ApplicationData::NeedInput),
            },
        }
    }

    /// Queues close_notify (send it with [`Self::poll_output`]). Further plaintext is
    /// refused ([`Self::handle_application_data`] returns [`Error::Misuse`]).
    pub fn close(&mut self) {
        self.closed = true;
        self.tls.send_close_notify();
    }

    /// The negotiated TLS version.
    pub fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.tls.protocol_version()
    }

    /// The negotiated cipher suite.
    pub fn cipher_suite(&self) -> Option<SupportedCipherSuite> {
        self.tls.cipher_suite()
    }

    /// The ALPN protocol the server selected (`postgresql`, or none for servers before 17
    /// reached through `SSLRequest`).
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.tls.alpn_protocol()
    }

    /// The SNI host name sent in the ClientHello, if any (libpq's rule: only for names).
    pub fn sni(&self) -> Option<&str> {
        self.sni.as_deref()
    }

    /// The server's certificate chain as presented, leaf first.
    pub fn peer_certificates(&self) -> &[CertificateDer<'static>] {
        self.tls.peer_certificates().unwrap_or(&[])
    }

    /// The `tls-server-end-point` channel-binding data for SCRAM-SHA-256-PLUS (RFC 5929,
    /// computed as libpq does: the leaf's signature hash, MD5/SHA-1 → SHA-256).
    ///
    /// # Errors
    /// No certificate, or a signature algorithm without a defined hash (Ed25519, Ed448).
    pub fn channel_binding(&self) -> Result<Vec<u8>, ChannelBindingError> {
        match self.peer_certificates().first() {
            Some(leaf) => tls_server_end_point(leaf.as_ref()),
            None => Err(ChannelBindingError::NoCertificate),
        }
    }

    /// The rustls connection, for callers who want to drive it themselves.
    pub fn into_rustls(self) -> ClientConnection {
        self.tls.into_inner()
    }
}
