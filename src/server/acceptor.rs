//! The per-connection acceptor: the server's side of `SSLRequest`, `GSSENCRequest`,
//! direct TLS, the rustls handshake and the first packet.

use std::sync::Arc;

use bytes::BytesMut;
use rustls::sign::CertifiedKey;

use super::config::AcceptorConfig;
use super::error::AcceptError;
use super::packet::{error_response, FirstPacket, Packet, PacketReader};
use super::tls::{AlpnOffer, HelloProgress, HelloReader, Started, NO_APPLICATION_PROTOCOL_ALERT};
use crate::output::{Output, OutputBuffer, EMPTY_SLICE};
use crate::plan::Method;
use crate::session::Session;
use crate::tls::{Plaintext, TlsConn};
use crate::wire::{GSSENC_REQUEST_CODE, SSL_REQUEST_CODE, TLS_HANDSHAKE_RECORD};

/// How much decrypted data is pulled out of rustls at a time while reading the first
/// packet inside TLS (never more than the packet still needs).
const PULL_CHUNK: usize = 1024;

/// What a finished [`Acceptor`] hands over.
#[derive(Debug)]
pub struct Accepted {
    /// How the client secured the connection: [`Method::SslRequest`] or
    /// [`Method::DirectTls`] (then `session` is set), or [`Method::Plaintext`].
    pub method: Method,
    /// The TLS session, for every byte from now on (`None` in plaintext). SNI, ALPN,
    /// version, client certificates and the channel binding are on it.
    pub session: Option<Box<Session>>,
    /// The client's first packet: a StartupMessage or a CancelRequest.
    pub packet: FirstPacket,
}

impl Accepted {
    /// Whether TLS is in use.
    pub fn is_tls(&self) -> bool {
        self.session.is_some()
    }
}

type Local = Option<Arc<CertifiedKey>>;

enum State {
    /// Reading a plaintext packet (the first one, or the next after `N`).
    Reading(PacketReader),
    /// `S` waits in `pending`: any input now was sent before the client saw it.
    AnswerS,
    /// Reading the ClientHello (after `S`, or direct).
    Hello(Box<HelloReader>),
    /// The rustls handshake.
    Handshaking { tls: Box<TlsConn>, local: Local },
    /// Handshake done: reading the first packet inside TLS.
    ReadingTls {
        tls: Box<TlsConn>,
        local: Local,
        reader: PacketReader,
    },
    /// The first packet is in.
    Done {
        tls: Option<(Box<TlsConn>, Local)>,
        packet: FirstPacket,
    },
    /// Failed; the TLS connection is kept to hand out its last records.
    Failed {
        error: AcceptError,
        tls: Option<Box<TlsConn>>,
    },
    /// `into_accepted` ran.
    Taken,
}

/// Accepts one client connection. See the [module docs](crate::server).
pub struct Acceptor {
    config: AcceptorConfig,
    state: State,
    /// Plaintext bytes handed out before anything else: `S`, `N`, an ErrorResponse or a
    /// TLS alert written before any TLS connection existed.
    pending: Vec<u8>,
    sent: usize,
    ssl_done: bool,
    gss_done: bool,
    /// Whether any byte was consumed: direct TLS is recognised only at the very start.
    started: bool,
    method: Option<Method>,
    sni: Option<String>,
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Reading(_) => "reading first packet",
            State::AnswerS => "answering S",
            State::Hello(_) => "reading ClientHello",
            State::Handshaking { .. } => "TLS handshake",
            State::ReadingTls { .. } => "reading first packet inside TLS",
            State::Done { .. } => "done",
            State::Failed { .. } => "failed",
            State::Taken => "taken",
        };
        f.debug_struct("Acceptor")
            .field("state", &state)
            .field("method", &self.method)
            .field("sni", &self.sni)
            .finish_non_exhaustive()
    }
}

impl Acceptor {
    /// A new connection under `config` (cloning it is cheap: the TLS part is shared).
    pub fn new(config: &AcceptorConfig) -> Acceptor {
        Acceptor {
            config: config.clone(),
            state: State::Reading(PacketReader::default()),
            pending: Vec::new(),
            sent: 0,
            ssl_done: false,
            gss_done: false,
            started: false,
            method: None,
            sni: None,
        }
    }

    /// How the client is securing the connection, once known.
    pub fn method(&self) -> Option<Method> {
        self.method
    }

    /// The SNI name of the ClientHello, once it arrived (before the handshake ends: a
    /// router may pick its upstream with it, see [`super::endpoint_from_sni`]).
    pub fn sni(&self) -> Option<&str> {
        self.sni.as_deref()
    }

    /// Whether the acceptor finished (successfully or not) and has nothing left to send.
    pub fn is_done(&self) -> bool {
        if self.sent < self.pending.len() {
            return false;
        }
        match &self.state {
            State::Done { tls, .. } => !tls.as_ref().is_some_and(|(t, _)| t.wants_output()),
            State::Failed { tls, .. } => !tls.as_ref().is_some_and(|t| t.wants_output()),
            State::Taken => true,
            _ => false,
        }
    }

    /// Feeds bytes received from the client; returns how many were consumed. Keep the
    /// rest: offer it again after [`Self::poll_output`] (while an `N` waits to be handed
    /// out nothing is consumed), or, once done, to the session (TLS) or to your plaintext
    /// protocol handler. Bytes offered while an `S` waits (or in the same call as the
    /// `SSLRequest`) were sent before the client could see it: plaintext is refused with
    /// [`AcceptError::UnencryptedDataAfterSslRequest`] (CVE-2021-23214), while a TLS
    /// handshake record (`0x16`, a ClientHello sent without waiting) goes to TLS, as
    /// PostgreSQL 17 and later do.
    ///
    /// # Errors
    /// The client broke the protocol or the policy refused it; an ErrorResponse or a TLS
    /// alert for the client may wait in [`Self::poll_output`].
    pub fn handle_input(&mut self, input: &[u8]) -> Result<usize, AcceptError> {
        let mut used = 0;
        // Each pass either consumes bytes, changes state, or returns: bounded by the input
        // length plus the few state changes of one connection.
        loop {
            let rest = &input[used..];
            let (n, again) = self.step(rest)?;
            used += n;
            if !again || used >= input.len() {
                return Ok(used);
            }
        }
    }

    /// One state's worth of input handling: (consumed, whether to go on with the rest).
    fn step(&mut self, input: &[u8]) -> Result<(usize, bool), AcceptError> {
        match &mut self.state {
            State::Reading(reader) => {
                if self.sent < self.pending.len() || input.is_empty() {
                    return Ok((0, false));
                }
                if !self.started && input[0] == TLS_HANDSHAKE_RECORD {
                    self.started = true;
                    if !self.config.direct || self.config.tls.is_none() {
                        return Err(self.fail(AcceptError::DirectTlsRefused));
                    }
                    self.method = Some(Method::DirectTls);
                    self.state = State::Hello(Box::new(HelloReader::new()));
                    return Ok((0, true));
                }
                self.started = true;
                let mut used = 0;
                while used < input.len() {
                    let (n, packet) = match reader.push(&input[used..]) {
                        Ok(progress) => progress,
                        Err(err) => return Err(self.fail(err)),
                    };
                    used += n;
                    if let Some(packet) = packet {
                        let glued = input.get(used).copied();
                        self.on_plaintext_packet(packet, glued)?;
                        return Ok((used, false));
                    }
                }
                Ok((used, false))
            }
            State::AnswerS => match input.first() {
                None => Ok((0, false)),
                // A TLS handshake record sent without waiting for the `S` (PostgreSQL 17+
                // hands bytes buffered after the SSLRequest to TLS): the handshake
                // authenticates it; the `S` still goes out first.
                Some(&TLS_HANDSHAKE_RECORD) => {
                    self.state = State::Hello(Box::new(HelloReader::new()));
                    Ok((0, true))
                }
                Some(_) => Err(self.fail(AcceptError::UnencryptedDataAfterSslRequest)),
            },
            State::Hello(reader) => {
                let (n, progress) = reader.handle_input(input);
                match progress {
                    HelloProgress::NeedMore => Ok((n, false)),
                    HelloProgress::Stalled => Err(self.fail(AcceptError::LimitExceeded(
                        "TLS ClientHello larger than the handshake buffer",
                    ))),
                    HelloProgress::Failed(err, alert) => {
                        self.queue_plain(alert);
                        Err(self.fail(err.into()))
                    }
                    HelloProgress::Hello(hello) => {
                        self.sni = hello.sni();
                        let refusal = match (hello.alpn(), self.method) {
                            (AlpnOffer::Other, _) => Some(AcceptError::NoApplicationProtocol),
                            (AlpnOffer::Absent, Some(Method::DirectTls)) => {
                                Some(AcceptError::DirectTlsWithoutAlpn)
                            }
                            _ => None,
                        };
                        if let Some(err) = refusal {
                            self.queue_plain(NO_APPLICATION_PROTOCOL_ALERT.to_vec());
                            return Err(self.fail(err));
                        }
                        let Some(tls) = self.config.tls.as_ref() else {
                            return Err(self.fail(AcceptError::Misuse("TLS without a TLS config")));
                        };
                        match hello.start(tls) {
                            Started::Handshaking(tls, local) => {
                                self.state = State::Handshaking { tls, local };
                                Ok((n, true))
                            }
                            Started::Refused(err, alert) => {
                                self.queue_plain(alert);
                                Err(self.fail(err.into()))
                            }
                            Started::Failed(err, tls) => {
                                self.state = State::Handshaking { tls, local: None };
                                Err(self.fail(err.into()))
                            }
                        }
                    }
                }
            }
            State::Handshaking { tls, .. } => {
                let result = tls.handle_tls_input(input);
                let finished = !tls.is_handshaking();
                match result {
                    Err(err) => Err(self.fail(err.into())),
                    Ok(n) => {
                        if finished {
                            self.finish_handshake();
                            self.pull_tls_packet()?;
                        }
                        Ok((n, false))
                    }
                }
            }
            State::ReadingTls { tls, .. } => match tls.handle_tls_input(input) {
                Err(err) => Err(self.fail(err.into())),
                Ok(n) => {
                    self.pull_tls_packet()?;
                    Ok((n, false))
                }
            },
            State::Failed { error, .. } => Err(error.clone()),
            State::Done { .. } | State::Taken => Ok((0, false)),
        }
    }

    /// A complete plaintext packet; `glued` is the first of any more bytes that came in
    /// the same input.
    fn on_plaintext_packet(
        &mut self,
        packet: Packet,
        glued: Option<u8>,
    ) -> Result<(), AcceptError> {
        match packet {
            Packet::SslRequest => {
                if self.ssl_done {
                    return Err(self.fail(repeated(SSL_REQUEST_CODE)));
                }
                self.ssl_done = true;
                if self.config.tls.is_some() {
                    self.method = Some(Method::SslRequest);
                    // Plaintext sent before the `S` may have been injected
                    // (CVE-2021-23214); a TLS handshake record is the ClientHello itself.
                    if glued.is_some_and(|byte| byte != TLS_HANDSHAKE_RECORD) {
                        return Err(self.fail(AcceptError::UnencryptedDataAfterSslRequest));
                    }
                    self.answer(b'S');
                    self.state = State::AnswerS;
                } else {
                    self.answer(b'N');
                }
            }
            Packet::GssEncRequest => {
                if self.gss_done {
                    return Err(self.fail(repeated(GSSENC_REQUEST_CODE)));
                }
                self.gss_done = true;
                self.answer(b'N');
            }
            Packet::First(FirstPacket::Startup(_)) if !self.config.plaintext => {
                self.method = Some(Method::Plaintext);
                return Err(self.fail(AcceptError::PlaintextRefused));
            }
            Packet::First(packet) => {
                self.method = Some(Method::Plaintext);
                self.state = State::Done { tls: None, packet };
            }
        }
        Ok(())
    }

    /// Queues bytes sent outside TLS (an alert written before any TLS connection existed)
    /// behind an `S` that may still wait to be handed out.
    fn queue_plain(&mut self, bytes: Vec<u8>) {
        if self.sent < self.pending.len() {
            self.pending.extend_from_slice(&bytes);
        } else {
            self.pending = bytes;
            self.sent = 0;
        }
    }

    fn answer(&mut self, byte: u8) {
        self.pending.clear();
        self.pending.push(byte);
        self.sent = 0;
    }

    fn finish_handshake(&mut self) {
        if let State::Handshaking { .. } = self.state {
            if let State::Handshaking { tls, local } =
                std::mem::replace(&mut self.state, State::Taken)
            {
                self.state = State::ReadingTls {
                    tls,
                    local,
                    reader: PacketReader::default(),
                };
            }
        }
    }

    /// Takes decrypted bytes out of rustls, never more than the first packet needs (the
    /// rest stays in the session).
    fn pull_tls_packet(&mut self) -> Result<(), AcceptError> {
        let mut buf = [0u8; PULL_CHUNK];
        loop {
            let State::ReadingTls { tls, reader, .. } = &mut self.state else {
                return Ok(());
            };
            let want = reader.want().clamp(1, PULL_CHUNK);
            match tls.poll_plaintext(&mut buf[..want]) {
                Plaintext::Empty => return Ok(()),
                Plaintext::Closed | Plaintext::Truncated => {
                    return Err(self.fail(AcceptError::IncompleteStartupPacket))
                }
                Plaintext::Data(n) => match reader.push(&buf[..n]) {
                    Err(err) => return Err(self.fail(err)),
                    Ok((_, None)) => {}
                    Ok((_, Some(Packet::SslRequest))) => {
                        return Err(self.fail(repeated(SSL_REQUEST_CODE)))
                    }
                    Ok((_, Some(Packet::GssEncRequest))) => {
                        return Err(self.fail(repeated(GSSENC_REQUEST_CODE)))
                    }
                    Ok((_, Some(Packet::First(packet)))) => {
                        if let State::ReadingTls { tls, local, .. } =
                            std::mem::replace(&mut self.state, State::Taken)
                        {
                            self.state = State::Done {
                                tls: Some((tls, local)),
                                packet,
                            };
                        }
                        return Ok(());
                    }
                },
            }
        }
    }

    /// Tells the acceptor the client closed the connection.
    ///
    /// # Errors
    /// Before the first packet is complete: [`AcceptError::IncompleteStartupPacket`], or
    /// [`AcceptError::ClosedDuringHandshake`] during the TLS handshake.
    pub fn handle_eof(&mut self) -> Result<(), AcceptError> {
        match &mut self.state {
            State::Reading(_) | State::ReadingTls { .. } => {
                Err(self.fail(AcceptError::IncompleteStartupPacket))
            }
            State::AnswerS | State::Hello(_) => Err(self.fail(AcceptError::ClosedDuringHandshake)),
            State::Handshaking { tls, .. } => {
                let err = match tls.handle_eof() {
                    Err(err) => err.into(),
                    Ok(()) => AcceptError::ClosedDuringHandshake,
                };
                Err(self.fail(err))
            }
            State::Failed { error, .. } => Err(error.clone()),
            State::Done { .. } | State::Taken => Ok(()),
        }
    }

    /// Appends what must be sent to the client to `out`, or says what else to do (see
    /// [`Output`]): `Transmit` the `S`/`N` answer, an ErrorResponse or handshake
    /// records, `Receive` from the client, or `Done` (call [`Self::into_accepted`]).
    ///
    /// After a failure the last words (an ErrorResponse, a TLS alert) are still handed
    /// out, then the error is returned again.
    ///
    /// # Errors
    /// The error the acceptor failed with, once nothing is left to send.
    pub fn poll_output(&mut self, out: &mut BytesMut) -> Result<Output, AcceptError> {
        self.poll_output_to(&mut OutputBuffer::Append(out))
    }

    /// [`Self::poll_output`] into a fixed buffer: at most `buf.len()` bytes are written at
    /// its start (output is handed out in pieces: any non-empty buffer makes progress).
    ///
    /// # Errors
    /// As [`Self::poll_output`]; [`AcceptError::Misuse`] for an empty `buf` while output
    /// waits (nothing is lost: call again with room).
    pub fn poll_output_slice(&mut self, buf: &mut [u8]) -> Result<Output, AcceptError> {
        match self.poll_output_to(&mut OutputBuffer::Slice(buf))? {
            Output::Transmit(0) => Err(AcceptError::Misuse(EMPTY_SLICE)),
            output => Ok(output),
        }
    }

    fn poll_output_to(&mut self, out: &mut OutputBuffer<'_>) -> Result<Output, AcceptError> {
        if let Some(rest) = self
            .pending
            .get(self.sent..)
            .filter(|rest| !rest.is_empty())
        {
            let n = out.put(rest);
            self.sent += n;
            if self.sent >= self.pending.len() {
                self.pending.clear();
                self.sent = 0;
                if let State::AnswerS = self.state {
                    self.state = State::Hello(Box::new(HelloReader::new()));
                }
            }
            return Ok(Output::Transmit(n));
        }
        match &mut self.state {
            State::Reading(_) | State::AnswerS | State::Hello(_) => Ok(Output::Receive),
            State::Handshaking { tls, .. } | State::ReadingTls { tls, .. } => {
                Ok(out.put_tls(tls).unwrap_or(Output::Receive))
            }
            State::Done { tls, .. } => Ok(tls
                .as_mut()
                .and_then(|(t, _)| out.put_tls(t))
                .unwrap_or(Output::Done)),
            State::Failed { error, tls } => match tls.as_mut().and_then(|t| out.put_tls(t)) {
                Some(output) => Ok(output),
                None => Err(error.clone()),
            },
            State::Taken => Err(AcceptError::Misuse("the acceptor was already taken")),
        }
    }

    /// The client, once [`Self::poll_output`] said [`Output::Done`]. TLS records still
    /// waiting (if `poll_output` was not drained) stay in the session.
    ///
    /// # Errors
    /// The error the acceptor failed with, or [`AcceptError::Misuse`] if it is not done.
    pub fn into_accepted(mut self) -> Result<Accepted, AcceptError> {
        match std::mem::replace(&mut self.state, State::Taken) {
            State::Done { tls, packet } => {
                let method = self.method.unwrap_or(Method::Plaintext);
                let session = tls.map(|(tls, local)| {
                    Box::new(Session::new_server(*tls, self.sni.take(), local))
                });
                Ok(Accepted {
                    method,
                    session,
                    packet,
                })
            }
            State::Failed { error, .. } => Err(error),
            State::Taken => Err(AcceptError::Misuse("the acceptor was already taken")),
            other => {
                self.state = other;
                Err(AcceptError::Misuse("the acceptor has not finished"))
            }
        }
    }

    /// Moves to the failed state, queueing the client's last words, and returns the error.
    fn fail(&mut self, error: AcceptError) -> AcceptError {
        let response = last_words(&error);
        let tls = match std::mem::replace(&mut self.state, State::Taken) {
            State::Handshaking { tls, .. } => Some(tls),
            State::ReadingTls { mut tls, .. } => {
                // The session is up: the ErrorResponse goes inside TLS, then close_notify.
                if let Some(response) = &response {
                    tls.handle_plaintext(response);
                }
                tls.send_close_notify();
                Some(tls)
            }
            State::Done { tls, .. } => tls.map(|(tls, _)| tls),
            _ => {
                if let Some(response) = response {
                    self.pending = response;
                    self.sent = 0;
                }
                None
            }
        };
        self.state = State::Failed {
            error: error.clone(),
            tls,
        };
        error
    }
}

/// A repeated negotiation request, refused as PostgreSQL does: as a startup packet with
/// an unsupported protocol version (1234.5679 or 1234.5680).
fn repeated(code: u32) -> AcceptError {
    AcceptError::UnsupportedProtocol {
        major: (code >> 16) as u16,
        minor: code as u16,
    }
}

/// The ErrorResponse PostgreSQL sends for this failure (`FATAL`), if it sends one; it
/// sends nothing for a bad length (a port scanner, a TLS client on an old server).
fn last_words(error: &AcceptError) -> Option<Vec<u8>> {
    let hint = match error {
        AcceptError::PlaintextRefused => Some(super::PLAINTEXT_REFUSED_HINT),
        AcceptError::UnencryptedDataAfterSslRequest => Some(
            "This could be either a client-software bug or evidence of an attempted man-in-the-middle attack.",
        ),
        AcceptError::UnsupportedProtocol { .. } | AcceptError::InvalidStartupPacketLayout => None,
        _ => return None,
    };
    Some(error_response(error.sqlstate(), &error.to_string(), hint))
}
