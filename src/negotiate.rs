//! The per-attempt machine: `SSLRequest` (or direct TLS), the response byte, the rustls
//! handshake, libpq's post-handshake checks.
//!
//! Driven only through [`Negotiation::handle_input`], [`Negotiation::handle_eof`] and
//! [`Negotiation::poll_output`]; see the crate docs for the loop. It holds no socket.
//!
//! Security rules it enforces:
//! - exactly one response byte is consumed; bytes that arrive together with `S` are
//!   refused (`received unencrypted data after SSL response`, CVE-2021-23222) and never
//!   reach TLS or the plaintext protocol;
//! - `E` fails at once without reading the message (CVE-2024-10977);
//! - after `N` nothing more is consumed: later bytes belong to the plaintext protocol;
//! - with direct TLS the server must select ALPN `postgresql`; with either negotiation a
//!   different ALPN protocol is refused.

use std::sync::Arc;

use bytes::BytesMut;

use crate::config::{ClientCertResolver, Config, SslNegotiation};
use crate::error::{from_rustls, Error};
use crate::output::{Output, OutputBuffer, EMPTY_SLICE};
use crate::plan::Method;
use crate::session::Session;
use crate::tls::TlsConn;
use crate::wire::{self, SslResponse, ALPN_POSTGRESQL, SSL_REQUEST};

/// How a finished negotiation left the connection.
#[derive(Debug)]
pub enum Negotiated {
    /// TLS is up: use the session for everything from now on.
    Tls(Box<Session>),
    /// The server answered `N`. The connection is still open and unencrypted; whether
    /// to go on in plaintext is the planner's call ([`crate::plan::AttemptEnd::SslRefused`]).
    SslRefused,
    /// The attempt was planned as plaintext: nothing was exchanged.
    Plaintext,
}

impl Negotiated {
    /// Whether TLS is in use.
    pub fn is_tls(&self) -> bool {
        matches!(self, Negotiated::Tls(_))
    }
}

enum State {
    /// Handing out the 8-byte SSLRequest (`sent` bytes already given).
    SendingRequest { sent: usize },
    /// Waiting for `S`, `N` or `E`.
    AwaitingResponse,
    /// TLS handshake in progress.
    Handshaking(Box<TlsConn>),
    /// Handshake done and checked; flushing the last handshake records.
    Established(Box<TlsConn>),
    /// The server said `N`.
    Refused,
    /// Plaintext attempt: nothing to do.
    Plaintext,
    /// Failed; the TLS connection is kept to hand out its last alert.
    Failed {
        error: Error,
        tls: Option<Box<TlsConn>>,
    },
    /// `into_negotiated` ran (only reachable through a panic-free take).
    Taken,
}

/// One connection attempt's negotiation. See the module docs.
pub struct Negotiation {
    config: Config,
    method: Method,
    state: State,
    cert_request_recorder: Option<Arc<ClientCertResolver>>,
}

impl std::fmt::Debug for Negotiation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::SendingRequest { .. } => "sending SSLRequest",
            State::AwaitingResponse => "awaiting SSL response",
            State::Handshaking(_) => "TLS handshake",
            State::Established(_) => "established",
            State::Refused => "refused (N)",
            State::Plaintext => "plaintext",
            State::Failed { .. } => "failed",
            State::Taken => "taken",
        };
        f.debug_struct("Negotiation")
            .field("method", &self.method)
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

impl Negotiation {
    /// Starts an attempt with `method` (from [`crate::plan::Plan`]).
    ///
    /// # Errors
    /// [`Error::Misuse`] for a TLS method under `sslmode=disable`, or a method that does
    /// not match the config's `sslnegotiation`.
    pub fn new(config: &Config, method: Method) -> Result<Negotiation, Error> {
        let expected_tls = match config.negotiation() {
            SslNegotiation::Postgres => Method::SslRequest,
            SslNegotiation::Direct => Method::DirectTls,
        };
        if method.is_tls() && method != expected_tls {
            return Err(Error::Misuse(
                "the TLS method does not match the configured sslnegotiation",
            ));
        }
        if method.is_tls() && config.sslmode() == crate::SslMode::Disable {
            return Err(Error::Misuse("TLS attempt under sslmode=disable"));
        }
        let mut negotiation = Negotiation {
            config: config.clone(),
            method,
            state: State::Plaintext,
            cert_request_recorder: None,
        };
        negotiation.state = match method {
            Method::Plaintext => State::Plaintext,
            Method::SslRequest => State::SendingRequest { sent: 0 },
            Method::DirectTls => negotiation.start_tls_state(),
        };
        Ok(negotiation)
    }

    /// Starts TLS at once, for drivers that did the `SSLRequest` exchange themselves and
    /// received `S` (tokio-postgres's `TlsConnect`, for example), or that open direct TLS
    /// themselves. `method` says which happened — [`Method::SslRequest`] (the server
    /// answered `S`) or [`Method::DirectTls`] — and so which ALPN rule applies.
    ///
    /// The driver is then responsible for libpq's rule that no byte may follow `S`
    /// before the ClientHello.
    ///
    /// # Errors
    /// [`Error::Misuse`] for [`Method::Plaintext`] or under `sslmode=disable`.
    pub fn start_tls(config: &Config, method: Method) -> Result<Negotiation, Error> {
        if !method.is_tls() {
            return Err(Error::Misuse("start_tls needs a TLS method"));
        }
        if config.sslmode() == crate::SslMode::Disable {
            return Err(Error::Misuse("TLS attempt under sslmode=disable"));
        }
        let mut negotiation = Negotiation {
            config: config.clone(),
            method,
            state: State::Plaintext,
            cert_request_recorder: None,
        };
        negotiation.state = negotiation.start_tls_state();
        if let State::Failed { error, .. } = &negotiation.state {
            return Err(error.clone());
        }
        Ok(negotiation)
    }

    /// The method of this attempt.
    pub fn method(&self) -> Method {
        self.method
    }

    /// Whether the TLS handshake is under way (after `S`, or from the start for direct
    /// TLS). Adapters use it to classify transport errors as libpq does: a failure
    /// during the handshake is a failed TLS attempt ([`Error::HandshakeTransport`]).
    pub fn is_handshaking(&self) -> bool {
        matches!(self.state, State::Handshaking(_))
    }

    /// Whether the negotiation finished (successfully or not) and has nothing left to send.
    pub fn is_done(&self) -> bool {
        match &self.state {
            State::Refused | State::Plaintext | State::Taken => true,
            State::Established(tls) => !tls.wants_output(),
            State::Failed { tls, .. } => !tls.as_ref().is_some_and(|t| t.wants_output()),
            _ => false,
        }
    }

    /// Feeds bytes received from the server. Returns how many were consumed; keep the
    /// rest and offer them again later (or, after `N`, to the plaintext protocol).
    ///
    /// # Errors
    /// The attempt failed; see [`Error::allows_fallback`] for what the policy may do
    /// next. A TLS alert for the server may still be waiting in [`Self::poll_output`].
    pub fn handle_input(&mut self, input: &[u8]) -> Result<usize, Error> {
        match &mut self.state {
            // No server can answer an SSLRequest it has not received whole: keep the
            // bytes for later (the request goes out first), never cut the request short.
            State::SendingRequest { .. } => Ok(0),
            State::AwaitingResponse => self.handle_response_byte(input),
            State::Handshaking(tls) => {
                let result = tls.handle_tls_input(input);
                let handshake_done = !tls.is_handshaking();
                match result {
                    Err(err) => Err(self.fail(from_rustls(err))),
                    Ok(consumed) => {
                        if handshake_done {
                            self.finish_handshake()?;
                        }
                        Ok(consumed)
                    }
                }
            }
            State::Failed { error, .. } => Err(error.clone()),
            // Finished: nothing more is consumed here (after `N`, the bytes belong to
            // the plaintext protocol; after TLS, to the session).
            State::Established(_) | State::Refused | State::Plaintext | State::Taken => Ok(0),
        }
    }

    /// Tells the machine the server closed the connection.
    ///
    /// # Errors
    /// Before the answer to `SSLRequest`: [`Error::ClosedBeforeSslResponse`] (no
    /// fallback). During the handshake: [`Error::ClosedDuringHandshake`] (a TLS failure).
    pub fn handle_eof(&mut self) -> Result<(), Error> {
        match &mut self.state {
            State::SendingRequest { .. } | State::AwaitingResponse => {
                Err(self.fail(Error::ClosedBeforeSslResponse))
            }
            State::Handshaking(tls) => {
                let err = match tls.handle_eof() {
                    Err(err) => from_rustls(err),
                    Ok(()) => Error::ClosedDuringHandshake,
                };
                Err(self.fail(err))
            }
            State::Failed { error, .. } => Err(error.clone()),
            State::Established(_) | State::Refused | State::Plaintext | State::Taken => Ok(()),
        }
    }

    /// Appends what must be sent to `out`, or says what else to do (see [`Output`]):
    /// `Transmit` the `SSLRequest` or handshake records, `Receive` the server's answer,
    /// or `Done` (call [`Self::into_negotiated`]).
    ///
    /// After a failure the last TLS alert is still handed out, then the error is
    /// returned again.
    ///
    /// # Errors
    /// The error the attempt failed with, once nothing is left to send.
    pub fn poll_output(&mut self, out: &mut BytesMut) -> Result<Output, Error> {
        self.poll_output_to(&mut OutputBuffer::Append(out))
    }

    /// [`Self::poll_output`] into a fixed buffer: at most `buf.len()` bytes are written at
    /// its start (output is handed out in pieces: any non-empty buffer makes progress).
    ///
    /// # Errors
    /// As [`Self::poll_output`]; [`Error::Misuse`] for an empty `buf` while output waits
    /// (nothing is lost: call again with room).
    pub fn poll_output_slice(&mut self, buf: &mut [u8]) -> Result<Output, Error> {
        match self.poll_output_to(&mut OutputBuffer::Slice(buf))? {
            Output::Transmit(0) => Err(Error::Misuse(EMPTY_SLICE)),
            output => Ok(output),
        }
    }

    fn poll_output_to(&mut self, out: &mut OutputBuffer<'_>) -> Result<Output, Error> {
        match &mut self.state {
            State::SendingRequest { sent } => {
                let n = out.put(SSL_REQUEST.get(*sent..).unwrap_or_default());
                *sent += n;
                if *sent >= SSL_REQUEST.len() {
                    self.state = State::AwaitingResponse;
                }
                Ok(Output::Transmit(n))
            }
            State::AwaitingResponse => Ok(Output::Receive),
            State::Handshaking(tls) => Ok(out.put_tls(tls).unwrap_or(Output::Receive)),
            State::Established(tls) => Ok(out.put_tls(tls).unwrap_or(Output::Done)),
            State::Failed { error, tls } => match tls.as_mut().and_then(|t| out.put_tls(t)) {
                Some(output) => Ok(output),
                None => Err(error.clone()),
            },
            State::Refused | State::Plaintext | State::Taken => Ok(Output::Done),
        }
    }

    /// The result of a finished negotiation.
    ///
    /// # Errors
    /// The error the attempt failed with, or [`Error::Misuse`] if it is not finished.
    pub fn into_negotiated(mut self) -> Result<Negotiated, Error> {
        match std::mem::replace(&mut self.state, State::Taken) {
            State::Established(tls) => {
                let sni = self
                    .config
                    .sends_sni()
                    .then(|| self.config.host().to_owned());
                Ok(Negotiated::Tls(Box::new(Session::new(*tls, sni))))
            }
            State::Refused => Ok(Negotiated::SslRefused),
            State::Plaintext => Ok(Negotiated::Plaintext),
            State::Failed { error, .. } => Err(error),
            State::Taken => Err(Error::Misuse("the negotiation was already taken")),
            _ => Err(Error::Misuse("the negotiation has not finished")),
        }
    }

    fn handle_response_byte(&mut self, input: &[u8]) -> Result<usize, Error> {
        let Some((&byte, rest)) = input.split_first() else {
            return Ok(0);
        };
        match wire::decode_ssl_response(byte) {
            Ok(SslResponse::Accepted) if !rest.is_empty() => {
                Err(self.fail(Error::UnencryptedDataAfterSslResponse))
            }
            Ok(SslResponse::Accepted) => {
                self.state = self.start_tls_state();
                if let State::Failed { error, .. } = &self.state {
                    return Err(error.clone());
                }
                Ok(1)
            }
            Ok(SslResponse::Refused) => {
                self.state = State::Refused;
                Ok(1)
            }
            Ok(SslResponse::ErrorResponse) => Err(self.fail(Error::ServerErrorDuringSslExchange)),
            Err(err) => Err(self.fail(err)),
        }
    }

    fn start_tls_state(&mut self) -> State {
        let Some(start) = self.config.tls_for_connection() else {
            return State::Failed {
                error: self.config.tls_unavailable(),
                tls: None,
            };
        };
        self.cert_request_recorder = start.cert_request_recorder;
        match TlsConn::start(start.config, start.server_name) {
            Ok(tls) => State::Handshaking(Box::new(tls)),
            Err(err) => State::Failed {
                error: from_rustls(err),
                tls: None,
            },
        }
    }

    /// libpq's checks once the handshake completed: ALPN and sslcertmode.
    fn finish_handshake(&mut self) -> Result<(), Error> {
        let State::Handshaking(tls) = &self.state else {
            return Ok(());
        };
        let problem = match tls.alpn_protocol() {
            None if self.method == Method::DirectTls => Some(Error::AlpnNotNegotiated),
            Some(alpn) if alpn != ALPN_POSTGRESQL => Some(Error::UnexpectedAlpn(alpn.to_vec())),
            _ => None,
        }
        .or_else(|| {
            // libpq's check_expected_areq for sslcertmode=require: first "asked?", then
            // "did we send one?".
            let recorder = self.cert_request_recorder.as_ref()?;
            if !recorder.was_requested() {
                Some(Error::CertificateNotRequested)
            } else if !recorder.was_sent() {
                Some(Error::CertificateNotSent)
            } else {
                None
            }
        });
        if let Some(err) = problem {
            return Err(self.fail(err));
        }
        if let State::Handshaking(tls) = std::mem::replace(&mut self.state, State::Taken) {
            self.state = State::Established(tls);
        }
        Ok(())
    }

    /// Moves to the failed state (keeping the TLS connection for its alert) and returns
    /// the error for the caller.
    fn fail(&mut self, error: Error) -> Error {
        let tls = match std::mem::replace(&mut self.state, State::Taken) {
            State::Handshaking(tls) | State::Established(tls) => Some(tls),
            _ => None,
        };
        self.state = State::Failed {
            error: error.clone(),
            tls,
        };
        error
    }
}
