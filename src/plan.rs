//! The attempt planner: libpq's order of encryption methods and its fallbacks.
//!
//! Pure policy, no rustls and no bytes: given the sslmode, the negotiation, the kind of
//! transport, and how each attempt ended, it says what to do next. It mirrors libpq's
//! `init_allowed_encryption_methods` / `select_next_encryption_method` (PostgreSQL 17+;
//! earlier versions behave the same for the modes they know):
//!
//! - the methods a mode allows: `disable` → plaintext; `allow` → plaintext, then TLS;
//!   `prefer` → TLS, then plaintext; `require` and stronger → TLS only. TLS is
//!   `SSLRequest` or direct TLS per `sslnegotiation` (never both, no fallback between them).
//!   Unix-domain sockets never use TLS.
//! - a method that fails is crossed off; the next remaining one is tried, on the *same*
//!   connection only when the server answered `N` and plaintext is next, otherwise on a
//!   new connection.
//! - what counts as a failure that moves on: `N`; any TLS handshake or certificate
//!   failure ([`Error::allows_fallback`]); the server rejecting the startup or
//!   authentication (SQLSTATE `57P03` instead moves to the next host). Protocol
//!   violations before TLS (`E`, an invalid byte, bytes after `S`, EOF before the answer)
//!   end the connection attempt at once, as in libpq.
//!
//! ```
//! use pgtls::plan::{AttemptEnd, Method, Plan, Step, Transport};
//! use pgtls::{SslMode, SslNegotiation};
//!
//! let mut plan = Plan::new(SslMode::Prefer, SslNegotiation::Postgres, Transport::Tcp);
//! assert_eq!(plan.poll_step(), Step::Connect(Method::SslRequest));
//! plan.handle_attempt_end(AttemptEnd::SslRefused);          // the server said N
//! assert_eq!(plan.poll_step(), Step::Continue(Method::Plaintext));
//! plan.handle_attempt_end(AttemptEnd::Established);
//! assert_eq!(plan.poll_step(), Step::Done);
//! ```

use crate::config::{SslMode, SslNegotiation};
use crate::error::Error;

/// How a connection is encrypted on one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// No encryption.
    Plaintext,
    /// `SSLRequest`, then TLS if the server answers `S`.
    SslRequest,
    /// TLS from the first byte (PostgreSQL 17+).
    DirectTls,
}

impl Method {
    const fn bit(self) -> u8 {
        match self {
            Method::Plaintext => 1,
            Method::SslRequest => 2,
            Method::DirectTls => 4,
        }
    }

    /// Whether this method uses TLS.
    pub fn is_tls(self) -> bool {
        self != Method::Plaintext
    }
}

/// The kind of transport the driver connects over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// TCP (or anything that is not a Unix-domain socket).
    Tcp,
    /// A Unix-domain socket: libpq never uses TLS on one, whatever sslmode says.
    UnixSocket,
}

/// How an attempt ended, as the driver observed it.
#[derive(Debug, Clone)]
pub enum AttemptEnd {
    /// The server answered `SSLRequest` with `N`; the connection is still usable.
    SslRefused,
    /// The negotiation or TLS handshake failed with this error.
    Failed(Error),
    /// The server rejected the startup or authentication with an ErrorResponse.
    StartupRejected {
        /// The SQLSTATE (`C` field), if known.
        sqlstate: Option<String>,
        /// The server's message, to report if nothing else is left to try.
        message: String,
    },
    /// The attempt reached the point the driver wanted (e.g. ReadyForQuery).
    Established,
}

/// What the driver should do next.
#[derive(Debug, Clone)]
pub enum Step {
    /// Open a new connection and negotiate with this method.
    Connect(Method),
    /// Keep the current connection and go on with this method (plaintext after `N`).
    Continue(Method),
    /// Stop trying this host and move to the next one (SQLSTATE 57P03, like libpq).
    NextHost(Error),
    /// Nothing is left to try: fail with this error.
    Fail(Error),
    /// The connection is established; nothing more to plan.
    Done,
}

impl PartialEq for Step {
    /// Steps compare by kind and method; errors compare by message.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Step::Connect(a), Step::Connect(b)) | (Step::Continue(a), Step::Continue(b)) => a == b,
            (Step::NextHost(a), Step::NextHost(b)) | (Step::Fail(a), Step::Fail(b)) => {
                a.to_string() == b.to_string()
            }
            (Step::Done, Step::Done) => true,
            _ => false,
        }
    }
}

/// libpq's attempt planner for one host. See the module docs.
#[derive(Debug, Clone)]
pub struct Plan {
    sslmode: SslMode,
    allowed: u8,
    failed: u8,
    current: Option<Method>,
    next: Step,
}

impl Plan {
    /// The plan for one host.
    ///
    /// `direct` with a weak mode is rejected when a [`crate::Config`] is built; here it
    /// is treated as libpq's allowed-methods computation would: TLS (direct) plus
    /// plaintext.
    pub fn new(sslmode: SslMode, negotiation: SslNegotiation, transport: Transport) -> Plan {
        let tls = match negotiation {
            SslNegotiation::Postgres => Method::SslRequest,
            SslNegotiation::Direct => Method::DirectTls,
        };
        let mut allowed = 0;
        if transport == Transport::Tcp && sslmode != SslMode::Disable {
            allowed |= tls.bit();
        }
        if !sslmode.requires_tls() || transport == Transport::UnixSocket {
            allowed |= Method::Plaintext.bit();
        }
        let mut plan = Plan {
            sslmode,
            allowed,
            failed: 0,
            current: None,
            next: Step::Done,
        };
        plan.next = match plan.select_next() {
            Some(method) => {
                plan.current = Some(method);
                Step::Connect(method)
            }
            // Unreachable with the rules above (plaintext or TLS is always allowed), kept
            // total so no input can panic.
            None => Step::Fail(Error::Misuse("no encryption method is allowed")),
        };
        plan
    }

    /// The sslmode this plan follows.
    pub fn sslmode(&self) -> SslMode {
        self.sslmode
    }

    /// The method of the attempt in progress.
    pub fn current_method(&self) -> Option<Method> {
        self.current
    }

    /// What to do now. Calling it again without new input returns the same step.
    pub fn poll_step(&self) -> Step {
        self.next.clone()
    }

    /// Tells the plan how the current attempt ended; [`Plan::poll_step`] then says what
    /// to do next. Input after the plan finished is ignored.
    pub fn handle_attempt_end(&mut self, end: AttemptEnd) {
        if matches!(self.next, Step::Done | Step::Fail(_) | Step::NextHost(_)) {
            return;
        }
        let Some(current) = self.current else {
            return;
        };
        self.next = match end {
            AttemptEnd::Established => Step::Done,
            AttemptEnd::SslRefused if current == Method::SslRequest => {
                self.failed |= current.bit();
                match self.select_next() {
                    // Only plaintext can follow on the same socket.
                    Some(Method::Plaintext) => {
                        self.current = Some(Method::Plaintext);
                        Step::Continue(Method::Plaintext)
                    }
                    Some(other) => {
                        self.current = Some(other);
                        Step::Connect(other)
                    }
                    None => Step::Fail(Error::ServerRefusedSsl),
                }
            }
            AttemptEnd::SslRefused => Step::Fail(Error::Misuse(
                "SslRefused reported for an attempt that sent no SSLRequest",
            )),
            AttemptEnd::Failed(err) if err.allows_fallback() => self.fall_back(current, err),
            AttemptEnd::Failed(err) => Step::Fail(err),
            AttemptEnd::StartupRejected { sqlstate, message } => {
                let err = Error::StartupRejected {
                    sqlstate: sqlstate.clone(),
                    message,
                };
                if sqlstate.as_deref() == Some("57P03") {
                    Step::NextHost(err)
                } else {
                    self.fall_back(current, err)
                }
            }
        };
    }

    fn fall_back(&mut self, current: Method, err: Error) -> Step {
        self.failed |= current.bit();
        match self.select_next() {
            Some(method) => {
                self.current = Some(method);
                Step::Connect(method)
            }
            None => Step::Fail(err),
        }
    }

    /// libpq's `select_next_encryption_method`: plaintext first under `allow`, then
    /// direct TLS, then `SSLRequest`, then plaintext.
    fn select_next(&self) -> Option<Method> {
        let remaining = self.allowed & !self.failed;
        let order: &[Method] = if self.sslmode == SslMode::Allow {
            &[Method::Plaintext, Method::DirectTls, Method::SslRequest]
        } else {
            &[Method::DirectTls, Method::SslRequest, Method::Plaintext]
        };
        order.iter().copied().find(|m| remaining & m.bit() != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls_failure() -> AttemptEnd {
        AttemptEnd::Failed(Error::Tls(rustls::Error::AlertReceived(
            rustls::AlertDescription::HandshakeFailure,
        )))
    }

    fn rejected(sqlstate: &str) -> AttemptEnd {
        AttemptEnd::StartupRejected {
            sqlstate: Some(sqlstate.into()),
            message: "no pg_hba.conf entry".into(),
        }
    }

    #[test]
    fn first_attempt_per_mode() {
        use Method::*;
        let expect = [
            (SslMode::Disable, Plaintext),
            (SslMode::Allow, Plaintext),
            (SslMode::Prefer, SslRequest),
            (SslMode::Require, SslRequest),
            (SslMode::VerifyCa, SslRequest),
            (SslMode::VerifyFull, SslRequest),
        ];
        for (mode, method) in expect {
            let plan = Plan::new(mode, SslNegotiation::Postgres, Transport::Tcp);
            assert_eq!(plan.poll_step(), Step::Connect(method), "{mode}");
            let unix = Plan::new(mode, SslNegotiation::Postgres, Transport::UnixSocket);
            assert_eq!(unix.poll_step(), Step::Connect(Plaintext), "{mode} unix");
        }
    }

    #[test]
    fn prefer_falls_back_on_the_same_socket_after_n() {
        let mut plan = Plan::new(SslMode::Prefer, SslNegotiation::Postgres, Transport::Tcp);
        plan.handle_attempt_end(AttemptEnd::SslRefused);
        assert_eq!(plan.poll_step(), Step::Continue(Method::Plaintext));
        plan.handle_attempt_end(rejected("28000"));
        assert_eq!(
            plan.poll_step(),
            Step::Fail(Error::StartupRejected {
                sqlstate: None,
                message: "no pg_hba.conf entry".into()
            })
        );
    }

    #[test]
    fn prefer_reconnects_in_plaintext_after_tls_failure_or_rejection() {
        for end in [tls_failure(), rejected("28000")] {
            let mut plan = Plan::new(SslMode::Prefer, SslNegotiation::Postgres, Transport::Tcp);
            plan.handle_attempt_end(end);
            assert_eq!(plan.poll_step(), Step::Connect(Method::Plaintext));
        }
    }

    #[test]
    fn allow_retries_with_tls_after_rejection_only() {
        let mut plan = Plan::new(SslMode::Allow, SslNegotiation::Postgres, Transport::Tcp);
        plan.handle_attempt_end(rejected("28000"));
        assert_eq!(plan.poll_step(), Step::Connect(Method::SslRequest));
        plan.handle_attempt_end(AttemptEnd::SslRefused);
        assert_eq!(plan.poll_step(), Step::Fail(Error::ServerRefusedSsl));
    }

    #[test]
    fn require_never_falls_back() {
        let mut plan = Plan::new(SslMode::Require, SslNegotiation::Postgres, Transport::Tcp);
        plan.handle_attempt_end(AttemptEnd::SslRefused);
        assert_eq!(plan.poll_step(), Step::Fail(Error::ServerRefusedSsl));
        let mut plan = Plan::new(SslMode::VerifyFull, SslNegotiation::Direct, Transport::Tcp);
        assert_eq!(plan.poll_step(), Step::Connect(Method::DirectTls));
        plan.handle_attempt_end(tls_failure());
        assert!(matches!(plan.poll_step(), Step::Fail(Error::Tls(_))));
    }

    #[test]
    fn hard_errors_and_57p03() {
        let mut plan = Plan::new(SslMode::Prefer, SslNegotiation::Postgres, Transport::Tcp);
        plan.handle_attempt_end(AttemptEnd::Failed(Error::ServerErrorDuringSslExchange));
        assert_eq!(
            plan.poll_step(),
            Step::Fail(Error::ServerErrorDuringSslExchange)
        );
        let mut plan = Plan::new(SslMode::Prefer, SslNegotiation::Postgres, Transport::Tcp);
        plan.handle_attempt_end(rejected("57P03"));
        assert!(matches!(plan.poll_step(), Step::NextHost(_)));
        // Finished plans ignore further input.
        plan.handle_attempt_end(AttemptEnd::Established);
        assert!(matches!(plan.poll_step(), Step::NextHost(_)));
    }
}
