//! The planner against a small reference model of libpq's ordering, exhaustively: every
//! sslmode × negotiation × transport × every sequence of up to five attempt endings.
//!
//! The model is written differently from the planner on purpose: an explicit list of
//! methods per mode, walked by index, instead of libpq's allowed/failed bit sets.

use pgtls::plan::{AttemptEnd, Method, Plan, Step, Transport};
use pgtls::{Error, SslMode, SslNegotiation};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    SslRefused,
    TlsFailure,
    HardFailure,
    Rejected,
    StartingUp,
    Established,
}

const ENDS: [End; 6] = [
    End::SslRefused,
    End::TlsFailure,
    End::HardFailure,
    End::Rejected,
    End::StartingUp,
    End::Established,
];

fn tls_error() -> Error {
    Error::Tls(pgtls::rustls::Error::AlertReceived(
        pgtls::rustls::AlertDescription::HandshakeFailure,
    ))
}

fn to_attempt_end(end: End) -> AttemptEnd {
    match end {
        End::SslRefused => AttemptEnd::SslRefused,
        End::TlsFailure => AttemptEnd::Failed(tls_error()),
        End::HardFailure => AttemptEnd::Failed(Error::ServerErrorDuringSslExchange),
        End::Rejected => AttemptEnd::StartupRejected {
            sqlstate: Some("28000".into()),
            message: "rejected".into(),
        },
        End::StartingUp => AttemptEnd::StartupRejected {
            sqlstate: Some("57P03".into()),
            message: "starting up".into(),
        },
        End::Established => AttemptEnd::Established,
    }
}

/// What the model expects, as a comparable value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    Connect(Method),
    Continue(Method),
    NextHost,
    Fail(String),
    Done,
}

fn observed(step: Step) -> Expect {
    match step {
        Step::Connect(m) => Expect::Connect(m),
        Step::Continue(m) => Expect::Continue(m),
        Step::NextHost(_) => Expect::NextHost,
        Step::Fail(err) => Expect::Fail(err.to_string()),
        Step::Done => Expect::Done,
    }
}

/// The reference model: libpq's methods in the order it tries them.
fn methods(mode: SslMode, negotiation: SslNegotiation, transport: Transport) -> Vec<Method> {
    let tls = match negotiation {
        SslNegotiation::Postgres => Method::SslRequest,
        SslNegotiation::Direct => Method::DirectTls,
    };
    if transport == Transport::UnixSocket {
        return vec![Method::Plaintext];
    }
    match mode {
        SslMode::Disable => vec![Method::Plaintext],
        SslMode::Allow => vec![Method::Plaintext, tls],
        SslMode::Prefer => vec![tls, Method::Plaintext],
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => vec![tls],
    }
}

/// Runs the model over `ends`, returning the expected step after each.
fn model(list: &[Method], ends: &[End]) -> Vec<Expect> {
    let mut out = Vec::new();
    let mut index = 0;
    let mut finished: Option<Expect> = None;
    for &end in ends {
        if let Some(done) = &finished {
            out.push(done.clone());
            continue;
        }
        let current = list[index];
        let next = list.get(index + 1).copied();
        let step = match end {
            End::Established => Expect::Done,
            End::SslRefused if current != Method::SslRequest => Expect::Fail(
                Error::Misuse("SslRefused reported for an attempt that sent no SSLRequest")
                    .to_string(),
            ),
            End::SslRefused => match next {
                Some(Method::Plaintext) => Expect::Continue(Method::Plaintext),
                Some(other) => Expect::Connect(other),
                None => Expect::Fail(Error::ServerRefusedSsl.to_string()),
            },
            End::TlsFailure => match next {
                Some(m) => Expect::Connect(m),
                None => Expect::Fail(tls_error().to_string()),
            },
            End::HardFailure => Expect::Fail(Error::ServerErrorDuringSslExchange.to_string()),
            End::StartingUp => Expect::NextHost,
            End::Rejected => match next {
                Some(m) => Expect::Connect(m),
                None => Expect::Fail("rejected".into()),
            },
        };
        match &step {
            Expect::Connect(_) | Expect::Continue(_) => index += 1,
            other => finished = Some(other.clone()),
        }
        out.push(step);
    }
    out
}

fn sequences(len: usize) -> Vec<Vec<End>> {
    let mut all = vec![Vec::new()];
    for _ in 0..len {
        all = all
            .into_iter()
            .flat_map(|prefix| {
                ENDS.iter().map(move |&end| {
                    let mut next = prefix.clone();
                    next.push(end);
                    next
                })
            })
            .collect();
    }
    all
}

#[test]
fn planner_equals_the_reference_model_exhaustively() {
    let mut checked = 0usize;
    for mode in SslMode::ALL {
        for negotiation in [SslNegotiation::Postgres, SslNegotiation::Direct] {
            for transport in [Transport::Tcp, Transport::UnixSocket] {
                let list = methods(mode, negotiation, transport);
                for len in 0..=5 {
                    for ends in sequences(len) {
                        let mut plan = Plan::new(mode, negotiation, transport);
                        assert_eq!(
                            observed(plan.poll_step()),
                            Expect::Connect(list[0]),
                            "{mode} {negotiation:?} {transport:?}: first step"
                        );
                        let expected = model(&list, &ends);
                        for (i, &end) in ends.iter().enumerate() {
                            plan.handle_attempt_end(to_attempt_end(end));
                            assert_eq!(
                                observed(plan.poll_step()),
                                expected[i],
                                "{mode} {negotiation:?} {transport:?} after {:?}",
                                &ends[..=i]
                            );
                            // Polling twice without input changes nothing.
                            assert_eq!(observed(plan.poll_step()), expected[i]);
                        }
                        checked += 1;
                    }
                }
            }
        }
    }
    // 6 modes × 2 negotiations × 2 transports × (1 + 6 + … + 6^5) sequences.
    assert_eq!(checked, 24 * (1 + 6 + 36 + 216 + 1296 + 7776));
}

#[test]
fn the_model_states_libpqs_table() {
    use Method::*;
    let tcp = |mode| methods(mode, SslNegotiation::Postgres, Transport::Tcp);
    assert_eq!(tcp(SslMode::Disable), [Plaintext]);
    assert_eq!(tcp(SslMode::Allow), [Plaintext, SslRequest]);
    assert_eq!(tcp(SslMode::Prefer), [SslRequest, Plaintext]);
    assert_eq!(tcp(SslMode::VerifyFull), [SslRequest]);
    assert_eq!(
        methods(SslMode::Require, SslNegotiation::Direct, Transport::Tcp),
        [DirectTls]
    );
}
