//! libpq's whole connection setup as one sans-IO machine: [`ConnectionSetup`].
//!
//! It owns what a driver would otherwise wire by hand: the attempt plan
//! ([`crate::plan::Plan`], one per host), each attempt's [`Negotiation`], the hand-off
//! to the [`Session`], the classification of transport events (a reset during the TLS
//! handshake is a failed TLS attempt that `prefer` follows with plaintext; before TLS it
//! ends the attempt), the decoding of the server's ErrorResponse when the startup is
//! rejected, and libpq's next-host rules. The caller owns the sockets, the clock and
//! the PostgreSQL startup.
//!
//! ## The contract
//!
//! Call [`ConnectionSetup::poll_output`] and do what the [`Action`] says:
//!
//! | action | do |
//! |---|---|
//! | [`Action::Open`] | open a new transport to host `host` (an index into the hosts given), start with an empty input buffer |
//! | [`Action::Transmit`] | send the bytes appended to your output buffer |
//! | [`Action::Receive`] | read; pass the bytes ([`ConnectionSetup::handle_input`]), EOF ([`ConnectionSetup::handle_eof`]) or the error ([`ConnectionSetup::handle_transport_error`]) |
//! | [`Action::Close`] | send what is left in your output buffer if you can (a last TLS alert), then close the transport |
//! | [`Action::Ready`] | run your startup over the [`Session`] or in plaintext; bytes left in your input buffer belong to it; then report [`ConnectionSetup::handle_startup_accepted`], [`ConnectionSetup::handle_startup_rejected`] (the raw ErrorResponse) or [`ConnectionSetup::handle_startup_failed`] |
//! | [`Action::Done`] | the connection is yours |
//! | [`Action::Failed`] | give up with libpq's message |
//!
//! `connect_timeout` is the caller's clock: when it expires (per host, as in libpq),
//! call [`ConnectionSetup::handle_timeout`]; an [`Action::Open`] for another host
//! starts its clock again.
//!
//! ## Misuse and bounds
//! Events in the wrong order (input while nothing is being negotiated, a startup outcome
//! before [`Action::Ready`], anything after [`Action::Done`] or [`Action::Failed`]) return
//! [`Error::Misuse`] and change nothing; nothing panics. A handshake that stops taking
//! input fails its attempt ([`Error::LimitExceeded`]) instead of asking to read forever.
//! Memory: the machine consumes the caller's input as it goes and holds at most what
//! rustls holds during a handshake: one incoming record (at most 18 KiB), or, while a
//! handshake message spans records, that message up to rustls's 64 KiB limit (a larger
//! one fails the attempt: `received corrupt message of type HandshakePayloadTooLarge`),
//! plus its own outgoing flight. It appends to the output buffer only what is to be sent
//! now, under 16 KiB per attempt (`pgtls::fuzz::SETUP_OUTPUT_BOUND_PER_ATTEMPT`, asserted
//! by the `client_machine` fuzz target; a few hundred bytes without a client
//! certificate). The attempt records grow by at most three per host.

mod outcome;

use std::io;

use bytes::{Buf, BytesMut};

pub use outcome::{AttemptRecord, ConnectError, Connected, Failed, StartupError};

use crate::config::Config;
use crate::error::Error;
use crate::error_response::ErrorResponse;
use crate::negotiate::{Negotiated, Negotiation};
use crate::output::Output;
use crate::plan::{AttemptEnd, Method, Plan, Step, Transport};
use crate::session::Session;

/// What the caller must do next. See the [module docs](self) for the contract.
#[derive(Debug)]
#[must_use]
pub enum Action {
    /// Open a new transport to host number `host` (0 for the first) and negotiate with
    /// `method`. The previous transport, if any, was closed by an [`Action::Close`].
    Open {
        /// Index of the host in the list given to [`ConnectionSetup::multi_host`].
        host: usize,
        /// The encryption method of this attempt (for logs; the machine speaks it).
        method: Method,
    },
    /// This many bytes were appended to the output buffer: send them (as
    /// [`Output::Transmit`]).
    Transmit(usize),
    /// Read from the transport and report what happened (as [`Output::Receive`]).
    Receive,
    /// Close the current transport (after sending any bytes still in the output buffer).
    Close,
    /// Run the PostgreSQL startup now, then report its outcome.
    Ready(Ready),
    /// The startup was accepted: the connection is established (as [`Output::Done`]:
    /// the machine has nothing more to say).
    Done,
    /// Nothing is left to try.
    Failed(Box<Failed>),
}

/// How the connection is ready for the driver's startup.
#[derive(Debug)]
pub enum Ready {
    /// TLS is up: run the startup through this session. Bytes left in the input buffer
    /// are TLS records for it.
    Tls(Box<Session>),
    /// No encryption: run the startup on the transport. Bytes left in the input buffer
    /// (sent after the server's `N`) are the server's first protocol bytes.
    Plaintext,
}

impl Ready {
    /// Whether TLS is in use.
    pub fn is_tls(&self) -> bool {
        matches!(self, Ready::Tls(_))
    }
}

enum State {
    /// Start an attempt with this method on a new transport (closing the old one first).
    Connect(Method),
    /// An attempt is negotiating; `failed` keeps its error once one was seen, so a
    /// transport error while its last alert goes out changes nothing.
    Negotiating {
        attempt: Box<Negotiation>,
        failed: bool,
        /// Whether anything was exchanged on this attempt yet.
        exchanged: bool,
    },
    /// [`Action::Ready`] to hand out.
    Ready(Ready),
    /// The driver runs its startup.
    AwaitingStartup,
    /// [`Action::Done`] to hand out.
    Done,
    /// [`Action::Failed`] to hand out (after closing the transport).
    Failed(Box<Failed>),
    /// Done or Failed was handed out.
    Finished,
}

/// libpq's whole connection setup for one host or a multi-host list. See the
/// [module docs](self).
///
/// Named for what it is — the setup of one connection, up to and including the
/// driver's startup — and so as not to be confused with `rustls::Connection`,
/// `tokio_postgres::Connection` or the tokio-postgres adapter's `TlsConnector`.
pub struct ConnectionSetup {
    hosts: Vec<(Config, Transport)>,
    host: usize,
    plan: Plan,
    state: State,
    /// The method of the attempt in progress and whether it reuses the connection.
    method: Method,
    same_connection: bool,
    transport_open: bool,
    attempts: Vec<AttemptRecord>,
}

impl std::fmt::Debug for ConnectionSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Connect(_) => "connect",
            State::Negotiating { .. } => "negotiating",
            State::Ready(_) => "ready",
            State::AwaitingStartup => "awaiting startup",
            State::Done => "done",
            State::Failed(_) => "failed",
            State::Finished => "finished",
        };
        f.debug_struct("ConnectionSetup")
            .field("host", &self.host)
            .field("method", &self.method)
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

impl ConnectionSetup {
    /// The setup for one host over TCP.
    pub fn new(config: &Config) -> ConnectionSetup {
        ConnectionSetup::over(config, Transport::Tcp)
    }

    /// The setup for one host over `transport` (libpq never uses TLS on a Unix-domain
    /// socket).
    pub fn over(config: &Config, transport: Transport) -> ConnectionSetup {
        let plan = Plan::new(config.sslmode(), config.negotiation(), transport);
        let mut setup = ConnectionSetup {
            hosts: vec![(config.clone(), transport)],
            host: 0,
            plan,
            state: State::Finished,
            method: Method::Plaintext,
            same_connection: false,
            transport_open: false,
            attempts: Vec::new(),
        };
        setup.follow_plan();
        setup
    }

    /// The setup for one host following a caller-made `plan` (e.g. one built for a
    /// Unix-domain socket), for adapters whose API takes a [`Plan`].
    pub fn with_plan(config: &Config, plan: Plan) -> ConnectionSetup {
        let mut setup = ConnectionSetup {
            hosts: vec![(config.clone(), Transport::Tcp)],
            host: 0,
            plan,
            state: State::Finished,
            method: Method::Plaintext,
            same_connection: false,
            transport_open: false,
            attempts: Vec::new(),
        };
        setup.follow_plan();
        setup
    }

    /// The setup for libpq's multi-host list, tried in order: the next host after a
    /// transport failure before the startup, a timeout, or SQLSTATE `57P03`, as libpq.
    ///
    /// # Errors
    /// [`Error::Misuse`] for an empty list.
    pub fn multi_host(
        hosts: impl IntoIterator<Item = (Config, Transport)>,
    ) -> Result<ConnectionSetup, Error> {
        let hosts: Vec<(Config, Transport)> = hosts.into_iter().collect();
        let Some((first, transport)) = hosts.first() else {
            return Err(Error::Misuse("a connection setup needs at least one host"));
        };
        let mut setup = ConnectionSetup::over(first, *transport);
        setup.hosts = hosts;
        Ok(setup)
    }

    /// The host being tried (an index into the list).
    pub fn host(&self) -> usize {
        self.host
    }

    /// The config of the host being tried.
    pub fn config(&self) -> &Config {
        &self.hosts[self.host].0
    }

    /// Every attempt so far, in order.
    pub fn attempts(&self) -> &[AttemptRecord] {
        &self.attempts
    }

    /// Takes the attempt records (after [`Action::Done`]).
    pub fn take_attempts(&mut self) -> Vec<AttemptRecord> {
        std::mem::take(&mut self.attempts)
    }

    /// Whether the TLS handshake of the current attempt is under way.
    pub fn is_handshaking(&self) -> bool {
        matches!(&self.state, State::Negotiating { attempt, failed: false, .. } if attempt.is_handshaking())
    }

    /// What to do next; bytes to send are appended to `out`.
    ///
    /// # Errors
    /// [`Error::Misuse`] while the driver's startup runs (report its outcome first) and
    /// after [`Action::Done`] or [`Action::Failed`] was returned.
    pub fn poll_output(&mut self, out: &mut BytesMut) -> Result<Action, Error> {
        // Each pass either returns or moves to a later state of the same attempt, or ends
        // the attempt (at most a few passes: plans are finite).
        loop {
            match std::mem::replace(&mut self.state, State::Finished) {
                State::Connect(method) => {
                    if self.transport_open {
                        self.transport_open = false;
                        self.state = State::Connect(method);
                        return Ok(Action::Close);
                    }
                    match Negotiation::new(self.config(), method) {
                        Ok(attempt) => {
                            self.transport_open = true;
                            self.start_attempt(attempt, method, false);
                            return Ok(Action::Open {
                                host: self.host,
                                method,
                            });
                        }
                        Err(err) => self.finish(ConnectError::Tls(err), false),
                    }
                }
                State::Negotiating {
                    mut attempt,
                    failed,
                    exchanged,
                } => match attempt.poll_output(out) {
                    Ok(Output::Transmit(n)) => {
                        self.state = State::Negotiating {
                            attempt,
                            failed,
                            exchanged: true,
                        };
                        return Ok(Action::Transmit(n));
                    }
                    Ok(Output::Receive) => {
                        self.state = State::Negotiating {
                            attempt,
                            failed,
                            exchanged,
                        };
                        return Ok(Action::Receive);
                    }
                    Ok(Output::Done) => match attempt.into_negotiated() {
                        Ok(Negotiated::Tls(session)) => {
                            self.state = State::Ready(Ready::Tls(session))
                        }
                        Ok(Negotiated::Plaintext) => self.state = State::Ready(Ready::Plaintext),
                        Ok(Negotiated::SslRefused) => {
                            self.record(Some(Error::ServerRefusedSsl.to_string()));
                            self.plan.handle_attempt_end(AttemptEnd::SslRefused);
                            self.follow_plan();
                        }
                        Err(err) => self.attempt_failed(err),
                    },
                    Err(err) => self.attempt_failed(err),
                },
                State::Ready(ready) => {
                    self.state = State::AwaitingStartup;
                    return Ok(Action::Ready(ready));
                }
                State::AwaitingStartup => {
                    self.state = State::AwaitingStartup;
                    return Err(Error::Misuse(
                        "the driver's startup is running: report its outcome first",
                    ));
                }
                State::Done => return Ok(Action::Done),
                State::Failed(failed) => {
                    if self.transport_open {
                        self.transport_open = false;
                        self.state = State::Failed(failed);
                        return Ok(Action::Close);
                    }
                    return Ok(Action::Failed(failed));
                }
                State::Finished => {
                    return Err(Error::Misuse("the connection setup has already finished"))
                }
            }
        }
    }

    /// Feeds bytes read from the transport and advances `input` by what was consumed.
    /// What is left belongs to the protocol after [`Action::Ready`] (or is stale after
    /// [`Action::Close`]: clear it then).
    ///
    /// # Errors
    /// [`Error::Misuse`] when no negotiation is waiting for input. A failed attempt is
    /// not an error here: [`Self::poll_output`] says what follows.
    pub fn handle_input(&mut self, input: &mut impl Buf) -> Result<usize, Error> {
        let State::Negotiating {
            attempt,
            failed,
            exchanged,
        } = &mut self.state
        else {
            return Err(self.misplaced());
        };
        let mut total = 0;
        let mut stalled = false;
        while input.has_remaining() && !*failed {
            let chunk = input.chunk();
            let offered = chunk.len();
            let handshaking = attempt.is_handshaking();
            match attempt.handle_input(chunk) {
                Ok(consumed) => {
                    input.advance(consumed);
                    total += consumed;
                    *exchanged |= consumed > 0;
                    if consumed < offered {
                        // Short only when finished (the rest belongs to what follows),
                        // before the request went out, or when the handshake refuses
                        // input: that last one would make the caller read forever.
                        stalled = consumed == 0 && handshaking && attempt.is_handshaking();
                        break;
                    }
                }
                Err(_) => *failed = true,
            }
        }
        if stalled {
            self.attempt_failed(Error::LimitExceeded(
                "the TLS handshake stopped consuming input",
            ));
        }
        Ok(total)
    }

    /// Tells the machine the transport reached EOF while it asked to [`Action::Receive`].
    ///
    /// # Errors
    /// [`Error::Misuse`] when no negotiation is running and no startup awaits an outcome.
    pub fn handle_eof(&mut self) -> Result<(), Error> {
        match &mut self.state {
            State::Negotiating {
                attempt, failed, ..
            } => {
                if attempt.handle_eof().is_err() {
                    *failed = true;
                }
                Ok(())
            }
            State::AwaitingStartup => {
                self.transport_failed(io::Error::from(io::ErrorKind::UnexpectedEof));
                Ok(())
            }
            _ => Err(self.misplaced()),
        }
    }

    /// Tells the machine the transport failed: the connect was refused, a read or write
    /// failed (during the startup too). During the TLS handshake that is a failed TLS
    /// attempt (libpq's `SSL SYSCALL error`), which `allow`/`prefer` may follow with
    /// another method; before it, or during the startup, it ends the attempt. Timeouts
    /// ([`io::ErrorKind::TimedOut`], [`io::ErrorKind::WouldBlock`]) count as
    /// [`Self::handle_timeout`].
    ///
    /// # Errors
    /// [`Error::Misuse`] when no transport is in use.
    pub fn handle_transport_error(&mut self, err: io::Error) -> Result<(), Error> {
        if matches!(
            err.kind(),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
        ) {
            return self.handle_timeout();
        }
        match &self.state {
            State::Negotiating { failed: true, .. } => {
                // The attempt failed already; the transport error only cut its last
                // alert short.
                self.settle_failed_attempt();
                Ok(())
            }
            State::Negotiating {
                attempt,
                exchanged: true,
                ..
            } if attempt.is_handshaking() => {
                self.attempt_failed(Error::HandshakeTransport(err.to_string()));
                Ok(())
            }
            State::Negotiating { .. } | State::AwaitingStartup | State::Ready(_) => {
                self.transport_failed(err);
                Ok(())
            }
            _ => Err(self.misplaced()),
        }
    }

    /// Tells the machine that bytes were waiting on the transport right after the
    /// server's `S`, before the ClientHello went out: libpq's `received unencrypted data
    /// after SSL response` (CVE-2021-23222). For adapters that can look without waiting;
    /// bytes in the same read as the `S` are refused by the machine itself.
    ///
    /// # Errors
    /// [`Error::Misuse`] unless the TLS handshake of an attempt is under way.
    pub fn handle_data_after_ssl_response(&mut self) -> Result<(), Error> {
        if !self.is_handshaking() {
            return Err(self.misplaced());
        }
        self.attempt_failed(Error::UnencryptedDataAfterSslResponse);
        Ok(())
    }

    /// Tells the machine the caller's `connect_timeout` expired for this host: libpq's
    /// `timeout expired`, and the next host if there is one.
    ///
    /// # Errors
    /// [`Error::Misuse`] after [`Action::Done`] or [`Action::Failed`].
    pub fn handle_timeout(&mut self) -> Result<(), Error> {
        match &self.state {
            State::Done | State::Failed(_) | State::Finished => Err(self.misplaced()),
            State::Negotiating {
                exchanged: false, ..
            } => {
                // Nothing happened on this attempt: not recorded, as libpq checks the
                // clock before starting one.
                self.next_host_or_fail(ConnectError::Timeout, true);
                Ok(())
            }
            State::Connect(_) => {
                self.next_host_or_fail(ConnectError::Timeout, true);
                Ok(())
            }
            _ => {
                self.record(Some(ConnectError::Timeout.to_string()));
                self.next_host_or_fail(ConnectError::Timeout, true);
                Ok(())
            }
        }
    }

    /// The driver's startup was accepted (e.g. ReadyForQuery): the next action is
    /// [`Action::Done`].
    ///
    /// # Errors
    /// [`Error::Misuse`] unless the startup was running.
    pub fn handle_startup_accepted(&mut self) -> Result<(), Error> {
        self.expect_startup()?;
        self.record(None);
        self.plan.handle_attempt_end(AttemptEnd::Established);
        self.state = State::Done;
        Ok(())
    }

    /// The server rejected the startup or authentication with this ErrorResponse (the
    /// whole message: `E`, length, fields). libpq's rules follow from its SQLSTATE:
    /// `allow` and `prefer` retry with the other encryption on a new connection,
    /// `57P03` moves to the next host. A malformed message counts as a rejection
    /// without SQLSTATE.
    ///
    /// # Errors
    /// [`Error::Misuse`] unless the startup was running.
    pub fn handle_startup_rejected(&mut self, error_response: &[u8]) -> Result<(), Error> {
        self.expect_startup()?;
        let decoded = ErrorResponse::decode(error_response).unwrap_or_default();
        self.reject_startup(decoded.sqlstate, decoded.message);
        Ok(())
    }

    /// [`Self::handle_startup_rejected`] for a driver that decoded the ErrorResponse
    /// itself.
    ///
    /// # Errors
    /// [`Error::Misuse`] unless the startup was running.
    pub fn handle_startup_error(&mut self, response: ErrorResponse) -> Result<(), Error> {
        self.expect_startup()?;
        self.reject_startup(response.sqlstate, response.message);
        Ok(())
    }

    /// The driver's startup failed on the client side (e.g. channel binding required
    /// but unavailable): never retried, as in libpq.
    ///
    /// # Errors
    /// [`Error::Misuse`] unless the startup was running.
    pub fn handle_startup_failed(&mut self, message: impl Into<String>) -> Result<(), Error> {
        self.expect_startup()?;
        let message = message.into();
        self.record(Some(message.clone()));
        self.finish(ConnectError::Startup(message), false);
        Ok(())
    }

    fn reject_startup(&mut self, sqlstate: Option<String>, message: String) {
        self.record(Some(message.clone()));
        self.plan
            .handle_attempt_end(AttemptEnd::StartupRejected { sqlstate, message });
        self.follow_plan();
    }

    fn expect_startup(&self) -> Result<(), Error> {
        match self.state {
            State::AwaitingStartup => Ok(()),
            _ => Err(self.misplaced()),
        }
    }

    /// The misuse error for an event the current state does not take.
    fn misplaced(&self) -> Error {
        Error::Misuse(match self.state {
            State::Connect(_) => "event before the transport was opened (poll_output first)",
            State::Negotiating { .. } => "startup outcome reported during the negotiation",
            State::Ready(_) => "event before Action::Ready was taken (poll_output first)",
            State::AwaitingStartup => {
                "transport input during the driver's startup belongs to the driver"
            }
            State::Done | State::Failed(_) | State::Finished => {
                "event after the connection setup finished"
            }
        })
    }

    fn start_attempt(&mut self, attempt: Negotiation, method: Method, same_connection: bool) {
        self.method = method;
        self.same_connection = same_connection;
        self.state = State::Negotiating {
            attempt: Box::new(attempt),
            failed: false,
            exchanged: same_connection,
        };
    }

    fn record(&mut self, error: Option<String>) {
        self.attempts.push(AttemptRecord {
            method: self.method,
            same_connection: self.same_connection,
            error,
        });
    }

    /// Takes the error of a negotiation that failed and lets the plan decide.
    fn settle_failed_attempt(&mut self) {
        let State::Negotiating { attempt, .. } =
            std::mem::replace(&mut self.state, State::Finished)
        else {
            return;
        };
        let err = attempt
            .into_negotiated()
            .err()
            .unwrap_or(Error::Misuse("negotiation failed without an error"));
        self.attempt_failed(err);
    }

    /// A failed attempt (TLS, policy, protocol): recorded, then the plan decides.
    fn attempt_failed(&mut self, err: Error) {
        self.record(Some(err.to_string()));
        self.plan.handle_attempt_end(AttemptEnd::Failed(err));
        self.follow_plan();
    }

    /// The transport failed outside the handshake: before the startup libpq moves to
    /// the next host; during it the connection fails.
    fn transport_failed(&mut self, err: io::Error) {
        let during_startup = matches!(self.state, State::AwaitingStartup | State::Ready(_));
        let err = ConnectError::Io(err);
        self.record(Some(err.to_string()));
        self.next_host_or_fail(err, !during_startup);
    }

    /// Acts on the plan's next step.
    fn follow_plan(&mut self) {
        match self.plan.poll_step() {
            Step::Connect(method) => self.state = State::Connect(method),
            Step::Continue(Method::Plaintext) => {
                self.method = Method::Plaintext;
                self.same_connection = true;
                self.state = State::Ready(Ready::Plaintext);
            }
            Step::Continue(method) => match Negotiation::new(self.config(), method) {
                Ok(attempt) => self.start_attempt(attempt, method, true),
                Err(err) => self.finish(ConnectError::Tls(err), false),
            },
            Step::NextHost(err) => self.next_host_or_fail(ConnectError::Tls(err), true),
            Step::Fail(err) => self.finish(ConnectError::Tls(err), false),
            Step::Done => self.finish(
                ConnectError::Tls(Error::Misuse("plan finished without a connection")),
                false,
            ),
        }
    }

    /// Moves to the next host when libpq would and one is left; otherwise fails.
    fn next_host_or_fail(&mut self, error: ConnectError, try_next_host: bool) {
        if try_next_host && self.host + 1 < self.hosts.len() {
            self.host += 1;
            let (config, transport) = &self.hosts[self.host];
            self.plan = Plan::new(config.sslmode(), config.negotiation(), *transport);
            self.follow_plan();
        } else {
            self.finish(error, try_next_host);
        }
    }

    fn finish(&mut self, error: ConnectError, try_next_host: bool) {
        self.state = State::Failed(Box::new(Failed {
            error,
            attempts: std::mem::take(&mut self.attempts),
            try_next_host,
        }));
    }
}
