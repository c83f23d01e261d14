//! Runs pgtls between a [`Config`] and [`ScriptedServer`]s, in memory and bounded: one
//! attempt ([`attempt`]) or libpq's whole plan with a new server per connection
//! ([`plan`]).

use pgtls::plan::{AttemptEnd, Method, Step};
use pgtls::bytes::BytesMut;
use pgtls::{Config, Error, Negotiated, Negotiation, Output, Session};

use super::server::{Behaviour, ScriptedServer};

/// How a whole plan ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Established over TLS.
    Tls,
    /// Established in plaintext.
    Plaintext,
    /// Failed with this message (libpq's words).
    Failed(String),
}

/// What [`plan`] saw.
#[derive(Debug)]
pub struct PlanRun {
    /// How the plan ended.
    pub outcome: Outcome,
    /// Connections opened.
    pub connections: usize,
    /// Connections on which the server saw an `SSLRequest`.
    pub ssl_requests: usize,
}

/// Runs one attempt with `method` on `server`: the negotiated outcome, or the error.
pub fn attempt(
    config: &Config,
    method: Method,
    server: &mut ScriptedServer,
) -> Result<Negotiated, Error> {
    let mut negotiation = Negotiation::new(config, method)?;
    let mut out = BytesMut::new();
    let mut unread: Vec<u8> = Vec::new();
    for _ in 0..10_000 {
        match negotiation.poll_output(&mut out)? {
            Output::Transmit(_) => server.receive(&out.split()),
            Output::Done => return negotiation.into_negotiated(),
            Output::Receive => {
                unread.extend_from_slice(&server.take_output());
                if unread.is_empty() {
                    assert!(server.is_closed(), "the server neither answered nor closed");
                    negotiation.handle_eof()?;
                } else {
                    let n = negotiation.handle_input(&unread)?;
                    unread.drain(..n);
                }
            }
        }
    }
    panic!("the negotiation did not finish in 10000 steps");
}

/// Runs libpq's whole plan for `config`: every connection gets a fresh server with
/// `behaviour`, and every server accepts a plaintext startup.
pub fn plan(config: &Config, behaviour: &Behaviour) -> PlanRun {
    let mut plan = config.plan();
    let mut server: Option<ScriptedServer> = None;
    let mut run = PlanRun {
        outcome: Outcome::Failed(String::new()),
        connections: 0,
        ssl_requests: 0,
    };
    let mut established_tls = false;
    for _ in 0..10 {
        let method = match plan.poll_step() {
            Step::Connect(method) => {
                if let Some(old) = server.take() {
                    run.ssl_requests += usize::from(old.saw_ssl_request());
                }
                run.connections += 1;
                server = Some(ScriptedServer::new(behaviour.clone()));
                method
            }
            Step::Continue(method) => method,
            Step::Fail(err) | Step::NextHost(err) => {
                run.outcome = Outcome::Failed(err.to_string());
                break;
            }
            Step::Done => {
                run.outcome = if established_tls {
                    Outcome::Tls
                } else {
                    Outcome::Plaintext
                };
                break;
            }
        };
        let conn = server.as_mut().expect("a connection is open");
        let end = match attempt(config, method, conn) {
            Ok(Negotiated::Tls(_)) => {
                established_tls = true;
                AttemptEnd::Established
            }
            Ok(Negotiated::Plaintext) => {
                // The server takes the plaintext StartupMessage.
                conn.receive(&startup_message());
                AttemptEnd::Established
            }
            Ok(Negotiated::SslRefused) => AttemptEnd::SslRefused,
            Err(err) => AttemptEnd::Failed(err),
        };
        plan.handle_attempt_end(end);
    }
    if let Some(last) = server {
        run.ssl_requests += usize::from(last.saw_ssl_request());
    }
    run
}

/// Pumps an established session against its server until neither has anything to send.
pub fn pump(session: &mut Session, server: &mut ScriptedServer) -> Result<(), Error> {
    let mut out = BytesMut::new();
    for _ in 0..100 {
        let n = match session.poll_output(&mut out)? {
            Output::Transmit(n) => n,
            Output::Receive | Output::Done => 0,
        };
        if n > 0 {
            server.receive(&out.split());
        }
        let reply = server.take_output();
        let mut rest = &reply[..];
        while !rest.is_empty() {
            let used = session.handle_input(rest)?;
            assert!(used > 0, "the session took none of the server's bytes");
            rest = &rest[used..];
        }
        if n == 0 && reply.is_empty() {
            return Ok(());
        }
    }
    panic!("the session did not settle in 100 rounds");
}

/// A protocol-3.0 StartupMessage (user `app`, database `app`).
pub fn startup_message() -> Vec<u8> {
    let mut body = 0x0003_0000u32.to_be_bytes().to_vec();
    for text in ["user", "app", "database", "app", ""] {
        body.extend_from_slice(text.as_bytes());
        body.push(0);
    }
    let mut msg = (body.len() as u32 + 4).to_be_bytes().to_vec();
    msg.extend_from_slice(&body);
    msg
}
