//! The server-side acceptor in memory: our client (`pgtls::Negotiation`, and
//! `pgtls::blocking::connect` with libpq's whole plan) against our acceptor for every
//! sslmode × negotiation × acceptor policy; split points; hostile clients (bytes glued to
//! SSLRequest, direct TLS without ALPN, empty ALPN lists, garbage, floods, huge lengths,
//! trickles, EOF anywhere); SNI, client certificates and channel binding.
//!
//! Every loop here is bounded: a pair that stops making progress ends the test.

use pgtls_testkit::certs;

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use certs::{Ca, LeafSpec};
use pgtls::blocking::{self, Deadline, StartupError, Stream};
use pgtls::plan::Method;
use pgtls::rustls;
use pgtls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use pgtls::server::{
    endpoint_from_sni, AcceptError, Accepted, Acceptor, AcceptorConfig, FirstPacket, ServerTls,
    ServerTlsFiles, SharedAcceptorConfig, StartupMessage, MAX_FIRST_PACKET_BYTES,
    MAX_STARTUP_PACKET_LENGTH, PLAINTEXT_REFUSED_MESSAGE,
};
use pgtls::wire::{GSSENC_REQUEST, SSL_REQUEST};
use pgtls::{
    ApplicationData, Blame, Config, Negotiated, Negotiation, Output, RootCertificates, Session,
    SslMode, SslNegotiation,
};

// ---------------------------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------------------------

struct Pki {
    ca_der: CertificateDer<'static>,
    ca_pem: String,
    /// `localhost`, signed by the CA.
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivateKeyDer<'static>,
    /// `a.db.example.com` and `b.db.example.com` (routing by SNI).
    a_chain: Vec<CertificateDer<'static>>,
    a_key: PrivateKeyDer<'static>,
    b_chain: Vec<CertificateDer<'static>>,
    b_key: PrivateKeyDer<'static>,
    /// A client certificate (CN alice) from the same CA, and one from another CA.
    client_chain: Vec<CertificateDer<'static>>,
    client_key: PrivateKeyDer<'static>,
    stranger_chain: Vec<CertificateDer<'static>>,
    stranger_key: PrivateKeyDer<'static>,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let ca = Ca::root("pgtls acceptor test CA");
        let other = Ca::root("someone else's CA");
        let server = ca.leaf(LeafSpec::server("localhost"));
        let a = ca.leaf(LeafSpec::server("a.db.example.com"));
        let b = ca.leaf(LeafSpec::server("b.db.example.com"));
        let client = ca.leaf(LeafSpec::client("alice"));
        let stranger = other.leaf(LeafSpec::client("mallory"));
        Pki {
            ca_der: ca.root_der(),
            ca_pem: ca.root_pem(),
            server_chain: server.chain.clone(),
            server_key: server.key.clone_key(),
            a_chain: a.chain.clone(),
            a_key: a.key.clone_key(),
            b_chain: b.chain.clone(),
            b_key: b.key.clone_key(),
            client_chain: client.chain.clone(),
            client_key: client.key.clone_key(),
            stranger_chain: stranger.chain.clone(),
            stranger_key: stranger.key.clone_key(),
        }
    })
}

fn server_tls() -> ServerTls {
    let pki = pki();
    ServerTls::new(pki.server_chain.clone(), pki.server_key.clone_key()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Policies and client settings
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Policy {
    PlaintextOnly,
    Require,
    RequireNoDirect,
    Allow,
    AllowNoDirect,
}

const POLICIES: [Policy; 5] = [
    Policy::PlaintextOnly,
    Policy::Require,
    Policy::RequireNoDirect,
    Policy::Allow,
    Policy::AllowNoDirect,
];

fn acceptor_config(policy: Policy) -> AcceptorConfig {
    match policy {
        Policy::PlaintextOnly => AcceptorConfig::plaintext_only(),
        Policy::Require => AcceptorConfig::require_tls(server_tls()),
        Policy::RequireNoDirect => AcceptorConfig::require_tls(server_tls()).with_direct_tls(false),
        Policy::Allow => AcceptorConfig::allow_plaintext(server_tls()),
        Policy::AllowNoDirect => {
            AcceptorConfig::allow_plaintext(server_tls()).with_direct_tls(false)
        }
    }
}

fn client_config(mode: SslMode, negotiation: SslNegotiation, host: &str) -> Config {
    Config::builder()
        .sslmode(mode)
        .negotiation(negotiation)
        .host(host)
        .root_certificates(RootCertificates::from_pem(pki().ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap()
}

fn startup_message(user: &str) -> Vec<u8> {
    let mut body = 0x0003_0000u32.to_be_bytes().to_vec();
    for (k, v) in [
        ("user", user),
        ("database", "db"),
        ("application_name", "t"),
    ] {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    msg.extend_from_slice(&body);
    msg
}

/// AuthenticationOk + ReadyForQuery (idle).
const BACKEND_OK: &[u8] = &[b'R', 0, 0, 0, 8, 0, 0, 0, 0, b'Z', 0, 0, 0, 5, b'I'];

/// Cycles through sizes (0 allowed); an empty list always gives `default`.
struct Sizes {
    sizes: Vec<usize>,
    next: usize,
    default: usize,
}

impl Sizes {
    fn new(sizes: &[usize], default: usize) -> Sizes {
        Sizes {
            sizes: sizes.to_vec(),
            next: 0,
            default,
        }
    }

    fn next_size(&mut self) -> usize {
        if self.sizes.is_empty() {
            return self.default;
        }
        let size = self.sizes[self.next % self.sizes.len()];
        self.next += 1;
        size
    }
}

// ---------------------------------------------------------------------------------------------
// A sans-IO pair: Negotiation (then Session) against Acceptor
// ---------------------------------------------------------------------------------------------

struct PairOpts {
    /// Chunk sizes of client→server and server→client deliveries.
    c2s: Vec<usize>,
    s2c: Vec<usize>,
    /// Output buffer sizes for both sides' `poll_output`.
    out: Vec<usize>,
    /// What the client sends first once negotiated (default: a StartupMessage).
    first: Vec<u8>,
}

impl Default for PairOpts {
    fn default() -> Self {
        PairOpts {
            c2s: Vec::new(),
            s2c: Vec::new(),
            out: Vec::new(),
            first: startup_message("alice"),
        }
    }
}

/// How a pair ended.
struct PairEnd {
    client: Result<Option<Box<Session>>, pgtls::Error>,
    /// `None` when the server never finished (the client failed first).
    server: Option<Result<Accepted, AcceptError>>,
    /// Client bytes the acceptor did not consume (they belong to the session).
    c2s_left: Vec<u8>,
    /// Everything the server sent, in order.
    s2c_all: Vec<u8>,
    /// Server bytes not delivered to the client negotiation.
    s2c_left: Vec<u8>,
}

impl PairEnd {
    fn accepted(self) -> (Box<Session>, Accepted, Vec<u8>, Vec<u8>) {
        let session = match self.client {
            Ok(Some(session)) => session,
            Ok(None) => panic!("client is not on TLS"),
            Err(err) => panic!("client failed: {err}"),
        };
        match self.server {
            Some(Ok(accepted)) => (session, accepted, self.c2s_left, self.s2c_left),
            Some(Err(err)) => panic!("server failed: {err}"),
            None => panic!("server did not finish"),
        }
    }

    fn server_err(&self) -> &AcceptError {
        match &self.server {
            Some(Err(err)) => err,
            Some(Ok(a)) => panic!("server accepted: {a:?}"),
            None => panic!("server did not finish"),
        }
    }

    /// A summary that must not depend on split points.
    fn summary(&self) -> String {
        let client = match &self.client {
            Ok(Some(_)) => "client:tls".to_owned(),
            Ok(None) => "client:plaintext".to_owned(),
            Err(err) => format!("client:error:{err}"),
        };
        let server = match &self.server {
            Some(Ok(a)) => format!(
                "server:{:?}:{}:{:?}",
                a.method,
                a.is_tls(),
                match &a.packet {
                    FirstPacket::Startup(s) => s.user().unwrap_or("-").to_owned(),
                    FirstPacket::Cancel(c) => format!("cancel {}", c.process_id()),
                },
            ),
            Some(Err(err)) => format!("server:error:{err}"),
            None => "server:unfinished".to_owned(),
        };
        format!("{client} {server}")
    }
}

fn pair(client: &Config, method: Method, server: &AcceptorConfig, opts: &PairOpts) -> PairEnd {
    let mut neg = Some(Negotiation::new(client, method).unwrap());
    let mut client_result: Option<Result<Option<Box<Session>>, pgtls::Error>> = None;
    let mut acceptor = Some(Acceptor::new(server));
    let mut server_result = None;
    let (mut c2s, mut s2c, mut s2c_all) = (Vec::new(), Vec::new(), Vec::new());
    let (mut c_chunks, mut s_chunks) = (Sizes::new(&opts.c2s, 4096), Sizes::new(&opts.s2c, 4096));
    let mut out_sizes = Sizes::new(&opts.out, 20 * 1024);
    let mut first_sent = false;
    let mut idle = 0;
    for _ in 0..200_000 {
        let mut progress = false;
        // The client negotiation.
        if let Some(n) = neg.as_mut() {
            let mut buf = vec![0u8; out_sizes.next_size()];
            match n.poll_output_slice(&mut buf) {
                Ok(Output::Transmit(k)) => {
                    c2s.extend_from_slice(&buf[..k]);
                    progress = true;
                }
                Ok(Output::Done) => {
                    client_result = Some(match neg.take().unwrap().into_negotiated() {
                        Ok(Negotiated::Tls(session)) => Ok(Some(session)),
                        Ok(_) => Ok(None),
                        Err(err) => Err(err),
                    });
                    progress = true;
                }
                Ok(Output::Receive) => {}
                Err(pgtls::Error::Misuse(_)) if buf.is_empty() => {}
                Err(err) => {
                    client_result = Some(Err(err));
                    neg = None;
                    progress = true;
                }
            }
        }
        // The client's first message, over TLS or in plaintext.
        if let Some(Ok(session)) = client_result.as_mut() {
            match session {
                Some(session) => {
                    if !first_sent {
                        let mut rest = &opts.first[..];
                        while !rest.is_empty() {
                            let n = session.handle_application_data(rest).unwrap();
                            rest = &rest[n..];
                            let mut buf = vec![0u8; 20 * 1024];
                            while let Ok(Output::Transmit(k)) = session.poll_output_slice(&mut buf)
                            {
                                c2s.extend_from_slice(&buf[..k]);
                            }
                        }
                        first_sent = true;
                        progress = true;
                    }
                    let mut buf = [0u8; 4096];
                    while let Ok(Output::Transmit(k)) = session.poll_output_slice(&mut buf) {
                        c2s.extend_from_slice(&buf[..k]);
                        progress = true;
                    }
                }
                None if !first_sent => {
                    c2s.extend_from_slice(&opts.first);
                    first_sent = true;
                    progress = true;
                }
                None => {}
            }
        }
        // The acceptor.
        if let Some(a) = acceptor.as_mut() {
            let mut buf = vec![0u8; out_sizes.next_size()];
            match a.poll_output_slice(&mut buf) {
                Ok(Output::Transmit(k)) => {
                    s2c.extend_from_slice(&buf[..k]);
                    s2c_all.extend_from_slice(&buf[..k]);
                    progress = true;
                }
                Ok(Output::Done) => {
                    server_result = Some(acceptor.take().unwrap().into_accepted());
                    progress = true;
                }
                Ok(Output::Receive) => {}
                Err(AcceptError::Misuse(_)) if buf.is_empty() => {}
                Err(err) => {
                    server_result = Some(Err(err));
                    acceptor = None;
                    progress = true;
                }
            }
        }
        // Deliveries.
        if let Some(a) = acceptor.as_mut() {
            if !c2s.is_empty() {
                let k = c_chunks.next_size().min(c2s.len());
                match a.handle_input(&c2s[..k]) {
                    Ok(n) => {
                        c2s.drain(..n);
                        progress |= n > 0;
                    }
                    Err(_) => progress = true,
                }
            }
        }
        if let Some(n) = neg.as_mut() {
            if !s2c.is_empty() {
                let k = s_chunks.next_size().min(s2c.len());
                match n.handle_input(&s2c[..k]) {
                    Ok(m) => {
                        s2c.drain(..m);
                        progress |= m > 0;
                    }
                    Err(_) => progress = true,
                }
            } else if acceptor.is_none() && server_result.as_ref().is_some_and(|r| r.is_err()) {
                // The server closed after its last words.
                if n.handle_eof().is_err() {
                    progress = true;
                }
            }
        }
        let client_finished = neg.is_none();
        let server_finished = acceptor.is_none();
        if client_finished
            && server_finished
            && (first_sent || client_result.as_ref().is_some_and(|r| r.is_err()))
        {
            break;
        }
        if client_finished && client_result.as_ref().is_some_and(|r| r.is_err()) && c2s.is_empty() {
            // The client gave up; tell the server the connection closed.
            if let Some(mut a) = acceptor.take() {
                let _ = a.handle_eof();
                server_result = Some(a.into_accepted());
            }
            break;
        }
        idle = if progress { 0 } else { idle + 1 };
        if idle > 64 {
            break;
        }
    }
    PairEnd {
        client: client_result.unwrap_or_else(|| Err(pgtls::Error::Misuse("client never finished"))),
        server: server_result,
        c2s_left: c2s,
        s2c_all,
        s2c_left: s2c,
    }
}

/// Sends `data` through `from` and receives it at `to`, bounded.
fn transfer(from: &mut Session, to: &mut Session, data: &[u8]) -> Vec<u8> {
    let mut received = Vec::new();
    let mut rest = data;
    let mut wire = Vec::new();
    let mut buf = vec![0u8; 20 * 1024];
    for _ in 0..100_000 {
        if !rest.is_empty() {
            let n = from.handle_application_data(rest).unwrap();
            rest = &rest[n..];
        }
        while let Ok(Output::Transmit(k)) = from.poll_output_slice(&mut buf) {
            wire.extend_from_slice(&buf[..k]);
        }
        let n = to.handle_input(&wire).unwrap();
        wire.drain(..n);
        while let ApplicationData::Data(k) = to.poll_application_data(&mut buf).unwrap() {
            received.extend_from_slice(&buf[..k]);
        }
        if rest.is_empty() && wire.is_empty() && received.len() >= data.len() {
            break;
        }
    }
    received
}

// ---------------------------------------------------------------------------------------------
// Our client against our acceptor, sans-IO
// ---------------------------------------------------------------------------------------------

#[test]
fn sslrequest_tls_hands_over_a_server_session() {
    let config = client_config(SslMode::VerifyFull, SslNegotiation::Postgres, "localhost");
    let end = pair(
        &config,
        Method::SslRequest,
        &acceptor_config(Policy::Require),
        &PairOpts::default(),
    );
    assert_eq!(end.s2c_all[0], b'S');
    let (mut client, accepted, c2s_left, s2c_left) = end.accepted();
    assert!(c2s_left.is_empty() && s2c_left.is_empty());
    assert_eq!(accepted.method, Method::SslRequest);
    let mut server = accepted.session.expect("a TLS session");
    assert!(server.is_server());
    assert!(!client.is_server());
    assert_eq!(server.sni(), Some("localhost"));
    assert_eq!(server.alpn_protocol(), Some(&b"postgresql"[..]));
    assert_eq!(client.alpn_protocol(), Some(&b"postgresql"[..]));
    assert_eq!(
        server.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    assert!(
        server.peer_certificates().is_empty(),
        "no client certificate"
    );
    // Both ends compute tls-server-end-point over the server's leaf.
    let binding = server.channel_binding().unwrap();
    assert_eq!(binding, client.channel_binding().unwrap());
    assert_eq!(
        binding,
        pgtls::tls_server_end_point(pki().server_chain[0].as_ref()).unwrap()
    );
    match &accepted.packet {
        FirstPacket::Startup(s) => {
            assert_eq!(s.user(), Some("alice"));
            assert_eq!(s.database(), Some("db"));
            assert_eq!(s.parameter("application_name"), Some("t"));
            assert_eq!(s.as_bytes(), &startup_message("alice")[..]);
        }
        other => panic!("{other:?}"),
    }
    // The sessions work both ways, in more than one record.
    let big: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
    assert_eq!(transfer(&mut server, &mut client, BACKEND_OK), BACKEND_OK);
    assert_eq!(transfer(&mut client, &mut server, &big), big);
    assert_eq!(transfer(&mut server, &mut client, &big), big);
    // close_notify from the server is a clean close for the client.
    server.close();
    let mut buf = [0u8; 64];
    let mut wire = Vec::new();
    while let Ok(Output::Transmit(k)) = server.poll_output_slice(&mut buf) {
        wire.extend_from_slice(&buf[..k]);
    }
    // Once close_notify is out, the server's session has nothing more to say, ever.
    let mut rest = bytes::BytesMut::new();
    assert_eq!(server.poll_output(&mut rest).unwrap(), Output::Done);
    assert_eq!(server.poll_output(&mut rest).unwrap(), Output::Done);
    assert!(rest.is_empty());
    // The client's session, still open, has nothing to send now.
    assert_eq!(client.poll_output(&mut rest).unwrap(), Output::Receive);
    client.handle_input(&wire).unwrap();
    assert_eq!(
        client.poll_application_data(&mut buf).unwrap(),
        ApplicationData::Closed
    );
}

#[test]
fn acceptor_output_is_appended_to_a_bytes_mut() {
    let mut acceptor = Acceptor::new(&acceptor_config(Policy::Require));
    let mut out = bytes::BytesMut::new();
    assert_eq!(acceptor.poll_output(&mut out).unwrap(), Output::Receive);
    assert_eq!(acceptor.handle_input(&GSSENC_REQUEST).unwrap(), 8);
    assert_eq!(acceptor.poll_output(&mut out).unwrap(), Output::Transmit(1));
    assert_eq!(acceptor.handle_input(&SSL_REQUEST).unwrap(), 8);
    assert_eq!(acceptor.poll_output(&mut out).unwrap(), Output::Transmit(1));
    assert_eq!(acceptor.poll_output(&mut out).unwrap(), Output::Receive);
    assert_eq!(&out[..], b"NS");
}

#[test]
fn direct_tls_requires_and_gets_alpn() {
    let config = client_config(SslMode::VerifyFull, SslNegotiation::Direct, "localhost");
    let end = pair(
        &config,
        Method::DirectTls,
        &acceptor_config(Policy::Require),
        &PairOpts::default(),
    );
    assert_eq!(end.s2c_all[0], 0x16, "no S before a direct handshake");
    let (client, accepted, _, _) = end.accepted();
    assert_eq!(accepted.method, Method::DirectTls);
    let server = accepted.session.unwrap();
    assert_eq!(server.alpn_protocol(), Some(&b"postgresql"[..]));
    assert_eq!(client.channel_binding(), server.channel_binding());
}

#[test]
fn direct_tls_refused_by_policy_closes_without_an_answer() {
    for policy in [
        Policy::PlaintextOnly,
        Policy::RequireNoDirect,
        Policy::AllowNoDirect,
    ] {
        let config = client_config(SslMode::Require, SslNegotiation::Direct, "localhost");
        let end = pair(
            &config,
            Method::DirectTls,
            &acceptor_config(policy),
            &PairOpts::default(),
        );
        assert!(matches!(end.server_err(), AcceptError::DirectTlsRefused));
        assert_eq!(end.server_err().blame(), Blame::Policy);
        assert!(end.s2c_all.is_empty(), "{policy:?}: nothing is sent");
        let err = end.client.unwrap_err();
        assert_eq!(err.to_string(), "SSL SYSCALL error: EOF detected");
    }
}

#[test]
fn plaintext_only_answers_n_and_takes_the_startup() {
    let config = client_config(SslMode::Prefer, SslNegotiation::Postgres, "localhost");
    let end = pair(
        &config,
        Method::SslRequest,
        &acceptor_config(Policy::PlaintextOnly),
        &PairOpts::default(),
    );
    assert_eq!(end.s2c_all, b"N");
    assert!(matches!(end.client, Ok(None)));
    let accepted = end.server.unwrap().unwrap();
    assert_eq!(accepted.method, Method::Plaintext);
    assert!(accepted.session.is_none());
    assert!(matches!(accepted.packet, FirstPacket::Startup(_)));
}

#[test]
fn plaintext_startup_refused_with_fatal_28000() {
    let config = client_config(SslMode::Disable, SslNegotiation::Postgres, "localhost");
    let end = pair(
        &config,
        Method::Plaintext,
        &acceptor_config(Policy::Require),
        &PairOpts::default(),
    );
    assert!(matches!(end.server_err(), AcceptError::PlaintextRefused));
    let response = &end.s2c_all;
    assert_eq!(response[0], b'E');
    let fields = error_fields(&response[5..]);
    assert_eq!(field(&fields, b'S'), "FATAL");
    assert_eq!(field(&fields, b'C'), "28000");
    assert_eq!(field(&fields, b'M'), PLAINTEXT_REFUSED_MESSAGE);
    assert!(field(&fields, b'M').contains("sslmode=require"));
    assert!(field(&fields, b'H').contains("sslmode=require"));
}

fn error_fields(body: &[u8]) -> Vec<(u8, String)> {
    body.split(|&b| b == 0)
        .filter(|f| !f.is_empty())
        .map(|f| (f[0], String::from_utf8_lossy(&f[1..]).into_owned()))
        .collect()
}

fn field(fields: &[(u8, String)], code: u8) -> String {
    fields
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

#[test]
fn cancel_requests_in_plaintext_and_inside_tls() {
    let cancel = pgtls::wire::cancel_request(4242, &[7u8; 32]).unwrap();
    // Plaintext, even when TLS is required (libpq before 17 cancels in plaintext).
    let mut acceptor = Acceptor::new(&acceptor_config(Policy::Require));
    assert_eq!(acceptor.handle_input(&cancel).unwrap(), cancel.len());
    let mut out = [0u8; 64];
    assert_eq!(acceptor.poll_output_slice(&mut out).unwrap(), Output::Done);
    let accepted = acceptor.into_accepted().unwrap();
    match accepted.packet {
        FirstPacket::Cancel(c) => {
            assert_eq!(c.process_id(), 4242);
            assert_eq!(c.secret_key(), &[7u8; 32]);
            assert_eq!(c.to_bytes(), cancel);
        }
        other => panic!("{other:?}"),
    }
    // Inside TLS (libpq 17+ sends cancels over the same encryption as the connection).
    let config = client_config(SslMode::Require, SslNegotiation::Postgres, "localhost");
    let opts = PairOpts {
        first: cancel.clone(),
        ..PairOpts::default()
    };
    let end = pair(
        &config,
        Method::SslRequest,
        &acceptor_config(Policy::Require),
        &opts,
    );
    let (_, accepted, _, _) = end.accepted();
    assert!(accepted.is_tls());
    assert!(matches!(accepted.packet, FirstPacket::Cancel(c) if c.process_id() == 4242));
}

#[test]
fn gssenc_request_is_answered_n_then_ssl_goes_on() {
    let mut acceptor = Acceptor::new(&acceptor_config(Policy::Require));
    let mut out = [0u8; 16];
    assert_eq!(acceptor.handle_input(&GSSENC_REQUEST).unwrap(), 8);
    assert_eq!(
        acceptor.poll_output_slice(&mut out).unwrap(),
        Output::Transmit(1)
    );
    assert_eq!(out[0], b'N');
    assert_eq!(acceptor.handle_input(&SSL_REQUEST).unwrap(), 8);
    assert_eq!(
        acceptor.poll_output_slice(&mut out).unwrap(),
        Output::Transmit(1)
    );
    assert_eq!(out[0], b'S');
    assert_eq!(acceptor.method(), Some(Method::SslRequest));
    assert_eq!(
        acceptor.poll_output_slice(&mut out).unwrap(),
        Output::Receive
    );

    // A second GSSENCRequest or SSLRequest is refused as PostgreSQL does.
    for (first, second, minor) in [
        (GSSENC_REQUEST, GSSENC_REQUEST, 5680),
        (SSL_REQUEST, SSL_REQUEST, 5679),
    ] {
        let mut acceptor = Acceptor::new(&AcceptorConfig::plaintext_only());
        acceptor.handle_input(&first).unwrap();
        assert_eq!(
            acceptor.poll_output_slice(&mut out).unwrap(),
            Output::Transmit(1)
        );
        let err = acceptor.handle_input(&second).unwrap_err();
        assert!(
            matches!(err, AcceptError::UnsupportedProtocol { major: 1234, minor: m } if m == minor)
        );
        assert!(err
            .to_string()
            .starts_with("unsupported frontend protocol 1234."));
        let (words, again) = drain(&mut acceptor);
        assert_eq!(words[0], b'E');
        assert!(again.is_err());
    }
}

/// Drains the acceptor's output until it stops; returns the bytes and the final poll.
fn drain(acceptor: &mut Acceptor) -> (Vec<u8>, Result<Output, AcceptError>) {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    for _ in 0..1000 {
        match acceptor.poll_output_slice(&mut buf) {
            Ok(Output::Transmit(n)) => all.extend_from_slice(&buf[..n]),
            other => return (all, other),
        }
    }
    panic!("the acceptor never stopped talking");
}

// ---------------------------------------------------------------------------------------------
// sslmode × negotiation × acceptor policy through pgtls::blocking::connect
// ---------------------------------------------------------------------------------------------

/// What a [`MemServer`] saw: the method, SNI and ALPN of an accepted client, or its error.
type ServerSaw = Result<(Method, Option<String>, Option<Vec<u8>>), String>;

/// The server end of one in-memory connection: the acceptor, then a backend that says
/// AuthenticationOk + ReadyForQuery to a StartupMessage.
struct MemServer {
    acceptor: Option<Acceptor>,
    session: Option<Box<Session>>,
    inbox: Vec<u8>,
    outbox: Vec<u8>,
    closed: bool,
    outcome: Option<ServerSaw>,
}

impl MemServer {
    fn new(config: &AcceptorConfig) -> MemServer {
        MemServer {
            acceptor: Some(Acceptor::new(config)),
            session: None,
            inbox: Vec::new(),
            outbox: Vec::new(),
            closed: false,
            outcome: None,
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        if self.closed {
            return;
        }
        self.inbox.extend_from_slice(bytes);
        self.pump();
    }

    fn pump(&mut self) {
        let mut buf = vec![0u8; 20 * 1024];
        for _ in 0..10_000 {
            let Some(acceptor) = self.acceptor.as_mut() else {
                if let Some(session) = self.session.as_mut() {
                    let n = session.handle_input(&self.inbox).unwrap_or(0);
                    self.inbox.drain(..n);
                }
                return;
            };
            match acceptor.poll_output_slice(&mut buf) {
                Ok(Output::Transmit(n)) => self.outbox.extend_from_slice(&buf[..n]),
                Ok(Output::Receive) => {
                    if self.inbox.is_empty() {
                        return;
                    }
                    match acceptor.handle_input(&self.inbox) {
                        Ok(0) => return,
                        Ok(n) => {
                            self.inbox.drain(..n);
                        }
                        Err(_) => {}
                    }
                }
                Ok(Output::Done) => {
                    let accepted = self.acceptor.take().unwrap().into_accepted().unwrap();
                    self.outcome = Some(Ok((
                        accepted.method,
                        accepted
                            .session
                            .as_ref()
                            .and_then(|s| s.sni().map(str::to_owned)),
                        accepted
                            .session
                            .as_ref()
                            .and_then(|s| s.alpn_protocol().map(<[u8]>::to_vec)),
                    )));
                    match accepted.session {
                        Some(mut session) => {
                            session.handle_application_data(BACKEND_OK).unwrap();
                            while let Ok(Output::Transmit(n)) = session.poll_output_slice(&mut buf)
                            {
                                self.outbox.extend_from_slice(&buf[..n]);
                            }
                            self.session = Some(session);
                        }
                        None => self.outbox.extend_from_slice(BACKEND_OK),
                    }
                    return;
                }
                Err(err) => {
                    self.outcome = Some(Err(err.to_string()));
                    self.acceptor = None;
                    self.closed = true;
                    return;
                }
            }
        }
        panic!("the server pump did not settle");
    }
}

struct MemTransport(Rc<RefCell<MemServer>>);

impl Read for MemTransport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut server = self.0.borrow_mut();
        if !server.outbox.is_empty() {
            let n = buf.len().min(server.outbox.len());
            buf[..n].copy_from_slice(&server.outbox[..n]);
            server.outbox.drain(..n);
            return Ok(n);
        }
        if server.closed {
            return Ok(0);
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the server waits too",
        ))
    }
}

impl Write for MemTransport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().feed(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Deadline for MemTransport {
    fn set_io_timeout(&mut self, _timeout: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
}

/// What the startup callback saw: TLS or not.
fn run_startup(stream: &mut Stream<MemTransport>) -> Result<bool, StartupError> {
    stream.write_all(&startup_message("alice"))?;
    stream.flush()?;
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    for _ in 0..1000 {
        if received.len() >= 5 {
            let len =
                u32::from_be_bytes([received[1], received[2], received[3], received[4]]) as usize;
            if received[0] == b'E' && received.len() > len {
                let fields = error_fields(&received[5..=len]);
                return Err(StartupError::Rejected {
                    sqlstate: Some(field(&fields, b'C')),
                    message: format!("FATAL:  {}", field(&fields, b'M')),
                });
            }
            if received.ends_with(&[b'Z', 0, 0, 0, 5, b'I']) {
                return Ok(stream.is_tls());
            }
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(StartupError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        received.extend_from_slice(&buf[..n]);
    }
    Err(StartupError::Fatal("startup did not finish".into()))
}

/// `tls`, `plain` or `error:<message>`, with the number of connections opened and what
/// the server saw on the last one.
fn connect(
    policy: Policy,
    mode: SslMode,
    negotiation: SslNegotiation,
) -> (String, usize, Option<ServerSaw>) {
    let config = client_config(mode, negotiation, "localhost");
    let server_config = acceptor_config(policy);
    let servers: Rc<RefCell<Vec<Rc<RefCell<MemServer>>>>> = Rc::default();
    let opened = servers.clone();
    let result = blocking::connect(
        &config,
        None,
        move |_| {
            let server = Rc::new(RefCell::new(MemServer::new(&server_config)));
            opened.borrow_mut().push(server.clone());
            Ok(MemTransport(server))
        },
        run_startup,
    );
    let outcome = match result {
        Ok(connected) => {
            assert_eq!(connected.startup, connected.stream.is_tls());
            if connected.stream.is_tls() {
                "tls"
            } else {
                "plain"
            }
            .to_owned()
        }
        Err(failed) => format!("error:{}", failed.error),
    };
    let servers = servers.borrow();
    let last = servers.last().and_then(|s| s.borrow().outcome.clone());
    (outcome, servers.len(), last)
}

/// libpq's behaviour against each acceptor policy, written from BEHAVIOUR.md#sslmode, #fallbacks and #direct-tls.
fn expected(policy: Policy, mode: SslMode, negotiation: SslNegotiation) -> (&'static str, usize) {
    use Policy::*;
    let tls_offered = policy != PlaintextOnly;
    let plaintext_ok = matches!(policy, PlaintextOnly | Allow | AllowNoDirect);
    let direct_ok = matches!(policy, Require | Allow);
    if negotiation == SslNegotiation::Direct {
        return if direct_ok {
            ("tls", 1)
        } else {
            ("error:SSL SYSCALL error: EOF detected", 1)
        };
    }
    match mode {
        SslMode::Disable if plaintext_ok => ("plain", 1),
        SslMode::Disable => ("error:FATAL:  connection is insecure", 1),
        SslMode::Allow if plaintext_ok => ("plain", 1),
        // Plaintext rejected by the server: libpq retries with TLS on a new connection.
        SslMode::Allow => ("tls", 2),
        SslMode::Prefer if tls_offered => ("tls", 1),
        // `N`: plaintext on the same connection.
        SslMode::Prefer => ("plain", 1),
        _ if tls_offered => ("tls", 1),
        _ => ("error:server does not support SSL, but SSL was required", 1),
    }
}

#[test]
fn every_sslmode_and_negotiation_against_every_policy() {
    let mut rows = Vec::new();
    for policy in POLICIES {
        for mode in SslMode::ALL {
            for negotiation in [SslNegotiation::Postgres, SslNegotiation::Direct] {
                if negotiation == SslNegotiation::Direct && !mode.requires_tls() {
                    continue;
                }
                let (outcome, connections, server) = connect(policy, mode, negotiation);
                let (want, want_connections) = expected(policy, mode, negotiation);
                rows.push(format!(
                    "{policy:?} {} {} -> {outcome} ({connections} connection(s))",
                    mode.as_str(),
                    negotiation.as_str()
                ));
                assert!(
                    outcome.starts_with(want),
                    "{policy:?} {mode:?} {negotiation:?}: got {outcome}, want {want}"
                );
                assert_eq!(
                    connections, want_connections,
                    "{policy:?} {mode:?} {negotiation:?}: connections"
                );
                if outcome == "tls" {
                    let (method, sni, alpn) = server.unwrap().unwrap();
                    let want_method = if negotiation == SslNegotiation::Direct {
                        Method::DirectTls
                    } else {
                        Method::SslRequest
                    };
                    assert_eq!(method, want_method);
                    assert_eq!(sni.as_deref(), Some("localhost"));
                    assert_eq!(alpn.as_deref(), Some(&b"postgresql"[..]));
                }
            }
        }
    }
    eprintln!("{}", rows.join("\n"));
    assert_eq!(rows.len(), 5 * (6 + 3));
}

// ---------------------------------------------------------------------------------------------
// Split points
// ---------------------------------------------------------------------------------------------

#[test]
fn one_byte_at_a_time_everywhere() {
    for (mode, negotiation, method) in [
        (
            SslMode::VerifyFull,
            SslNegotiation::Postgres,
            Method::SslRequest,
        ),
        (SslMode::Require, SslNegotiation::Direct, Method::DirectTls),
    ] {
        let config = client_config(mode, negotiation, "localhost");
        let opts = PairOpts {
            c2s: vec![1],
            s2c: vec![1],
            out: vec![1],
            ..PairOpts::default()
        };
        let end = pair(&config, method, &acceptor_config(Policy::Require), &opts);
        let summary = end.summary();
        let (client, accepted, _, _) = end.accepted();
        assert_eq!(
            client.channel_binding().unwrap(),
            accepted.session.unwrap().channel_binding().unwrap(),
            "{summary}"
        );
    }
}

mod props {
    use super::*;
    use proptest::prelude::*;

    /// A chunk schedule that delivers: zero-byte reads may appear anywhere in it, but
    /// never alone (a cycle of only zeros delivers nothing, so no outcome could be
    /// reached — an impossible split, not a finding).
    fn schedule() -> impl Strategy<Value = Vec<usize>> {
        (
            proptest::collection::vec(0usize..700, 0..7),
            1usize..700,
            any::<proptest::sample::Index>(),
        )
            .prop_map(|(mut sizes, delivering, at)| {
                sizes.insert(at.index(sizes.len() + 1), delivering);
                sizes
            })
    }

    proptest! {
        // Each case runs full handshakes: 24 by default, `PROPTEST_CASES` to run more.
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24),
            ..ProptestConfig::default()
        })]

        /// Any chunking of either direction and any output buffer sizes give the same
        /// outcome, for TLS after SSLRequest, direct TLS, `N`, and a refused plaintext client.
        #[test]
        fn any_split_gives_the_same_outcome(
            c2s in schedule(),
            s2c in schedule(),
            out in proptest::collection::vec(1usize..3000, 1..8),
            scenario in 0usize..4,
        ) {
            let (mode, negotiation, method, policy) = match scenario {
                0 => (SslMode::VerifyFull, SslNegotiation::Postgres, Method::SslRequest, Policy::Require),
                1 => (SslMode::Require, SslNegotiation::Direct, Method::DirectTls, Policy::Allow),
                2 => (SslMode::Prefer, SslNegotiation::Postgres, Method::SslRequest, Policy::PlaintextOnly),
                _ => (SslMode::Disable, SslNegotiation::Postgres, Method::Plaintext, Policy::Require),
            };
            let config = client_config(mode, negotiation, "localhost");
            let server = acceptor_config(policy);
            let baseline = pair(&config, method, &server, &PairOpts::default()).summary();
            let opts = PairOpts { c2s, s2c, out, ..PairOpts::default() };
            let split = pair(&config, method, &server, &opts).summary();
            prop_assert_eq!(split, baseline);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile clients
// ---------------------------------------------------------------------------------------------

#[test]
fn bytes_glued_to_the_sslrequest_are_refused() {
    // Plaintext in the same read as the SSLRequest (the CVE-2021-23214 case). A TLS
    // handshake record is not refused: see `a_client_hello_glued_to_the_sslrequest_is_served`.
    for glued in [
        &b"Q"[..],
        &startup_message("mallory"),
        &SSL_REQUEST,
        &[0x15][..],
    ] {
        let mut acceptor = Acceptor::new(&acceptor_config(Policy::Require));
        let input = [&SSL_REQUEST[..], glued].concat();
        let err = acceptor.handle_input(&input).unwrap_err();
        assert!(matches!(err, AcceptError::UnencryptedDataAfterSslRequest));
        assert_eq!(
            err.to_string(),
            "received unencrypted data after SSL request"
        );
        assert_eq!(err.blame(), Blame::Peer);
        let (words, end) = drain(&mut acceptor);
        // No `S`: an ErrorResponse in its place, then the error again.
        assert_eq!(words[0], b'E');
        let fields = error_fields(&words[5..]);
        assert_eq!(field(&fields, b'C'), "08P01");
        assert!(matches!(
            end,
            Err(AcceptError::UnencryptedDataAfterSslRequest)
        ));
        assert!(acceptor.is_done());
        assert!(acceptor.into_accepted().is_err());
    }
    // In a later read, before the `S` was handed out.
    let mut acceptor = Acceptor::new(&acceptor_config(Policy::Require));
    assert_eq!(acceptor.handle_input(&SSL_REQUEST).unwrap(), 8);
    assert!(matches!(
        acceptor.handle_input(b"x"),
        Err(AcceptError::UnencryptedDataAfterSslRequest)
    ));
    // Without TLS the answer is `N` and the rest is simply the next packet.
    let mut acceptor = Acceptor::new(&AcceptorConfig::plaintext_only());
    let input = [&SSL_REQUEST[..], &startup_message("bob")].concat();
    assert_eq!(acceptor.handle_input(&input).unwrap(), 8);
    let mut out = [0u8; 8];
    assert_eq!(
        acceptor.poll_output_slice(&mut out).unwrap(),
        Output::Transmit(1)
    );
    assert_eq!(acceptor.handle_input(&input[8..]).unwrap(), input.len() - 8);
    assert!(acceptor.is_done());
}

/// Pumps a raw rustls client against an acceptor until it is done; the client sends
/// `startup` once its handshake is over. `c2s` holds client bytes not yet consumed.
fn pump_raw(acceptor: &mut Acceptor, conn: &mut rustls::ClientConnection, mut c2s: Vec<u8>) {
    let mut s2c = Vec::new();
    let mut sent_startup = false;
    for _ in 0..100 {
        let n = acceptor.handle_input(&c2s).unwrap();
        c2s.drain(..n);
        s2c.extend(drain(acceptor).0);
        conn.read_tls(&mut &s2c[..]).unwrap();
        s2c.clear();
        conn.process_new_packets().unwrap();
        if !conn.is_handshaking() && !sent_startup {
            conn.writer().write_all(&startup_message("glued")).unwrap();
            sent_startup = true;
        }
        conn.write_tls(&mut c2s).unwrap();
        if acceptor.is_done() {
            return;
        }
    }
    panic!("no progress: {acceptor:?}");
}

#[test]
fn a_client_hello_glued_to_the_sslrequest_is_served() {
    // PostgreSQL 17+ pushes bytes buffered after the SSLRequest into the TLS handshake
    // (be-secure.c: secure_open_server), so a ClientHello sent without waiting for the
    // `S` completes the handshake (PostgreSQL 15 hangs). The `S` still goes out first.
    for (split, alpn) in [(false, &[&b"postgresql"[..]][..]), (true, &[][..])] {
        let mut conn = raw_client(alpn);
        let hello = client_hello(&mut conn);
        let mut acceptor = Acceptor::new(&acceptor_config(Policy::Require));
        let glued = [&SSL_REQUEST[..], &hello].concat();
        let used = acceptor.handle_input(&glued).unwrap();
        assert_eq!(used, 8, "the SSLRequest alone is consumed first");
        let mut rest = glued[used..].to_vec();
        if split {
            // Offered again before the `S` was handed out: taken, the `S` still first.
            let n = acceptor.handle_input(&rest).unwrap();
            rest.drain(..n);
        }
        let (words, _) = drain(&mut acceptor);
        assert_eq!(words.first(), Some(&b'S'));
        conn.read_tls(&mut &words[1..]).unwrap();
        conn.process_new_packets().unwrap();
        pump_raw(&mut acceptor, &mut conn, rest);
        let accepted = acceptor.into_accepted().unwrap();
        assert_eq!(accepted.method, Method::SslRequest);
        let FirstPacket::Startup(startup) = accepted.packet else {
            panic!("not a startup")
        };
        assert_eq!(startup.user(), Some("glued"));
    }
    // A glued ClientHello refused by the ALPN rules: `S`, then the alert.
    let mut conn = raw_client(&[b"h2"]);
    let mut acceptor = Acceptor::new(&acceptor_config(Policy::Require));
    let glued = [&SSL_REQUEST[..], &client_hello(&mut conn)].concat();
    assert_eq!(acceptor.handle_input(&glued).unwrap(), 8);
    assert!(matches!(
        acceptor.handle_input(&glued[8..]),
        Err(AcceptError::NoApplicationProtocol)
    ));
    let (words, end) = drain(&mut acceptor);
    assert_eq!(words, [&b"S"[..], &NO_APPLICATION_PROTOCOL_ALERT].concat());
    assert!(end.is_err());
}

/// A raw rustls client (any ALPN list) against the acceptor.
fn raw_client(alpn: &[&[u8]]) -> rustls::ClientConnection {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki().ca_der.clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    rustls::ClientConnection::new(Arc::new(config), "localhost".try_into().unwrap()).unwrap()
}

fn client_hello(conn: &mut rustls::ClientConnection) -> Vec<u8> {
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    hello
}

/// Runs a ClientHello (after an SSLRequest and `S`, or direct) into an acceptor; returns
/// the acceptor's error and what it sent after the `S`.
fn refuse_hello(hello: &[u8], direct: bool) -> (AcceptError, Vec<u8>) {
    let mut acceptor = Acceptor::new(&acceptor_config(Policy::Require));
    if !direct {
        acceptor.handle_input(&SSL_REQUEST).unwrap();
        let mut s = [0u8; 1];
        assert_eq!(
            acceptor.poll_output_slice(&mut s).unwrap(),
            Output::Transmit(1)
        );
        assert_eq!(s[0], b'S');
    }
    let err = acceptor.handle_input(hello).unwrap_err();
    let (words, end) = drain(&mut acceptor);
    assert!(end.is_err());
    (err, words)
}

const NO_APPLICATION_PROTOCOL_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x78];

#[test]
fn alpn_rules_as_postgresql_17() {
    // Direct TLS without ALPN: refused with no_application_protocol.
    let mut conn = raw_client(&[]);
    let hello = client_hello(&mut conn);
    let (err, words) = refuse_hello(&hello, true);
    assert!(matches!(err, AcceptError::DirectTlsWithoutAlpn), "{err}");
    assert_eq!(words, NO_APPLICATION_PROTOCOL_ALERT);
    // The client reads it as the alert it is.
    conn.read_tls(&mut &words[..]).unwrap();
    let client_err = conn.process_new_packets().unwrap_err();
    assert_eq!(
        client_err,
        rustls::Error::AlertReceived(rustls::AlertDescription::NoApplicationProtocol)
    );
    // Other protocols only, with either negotiation.
    for direct in [true, false] {
        let mut conn = raw_client(&[b"h2", b"http/1.1"]);
        let (err, words) = refuse_hello(&client_hello(&mut conn), direct);
        assert!(matches!(err, AcceptError::NoApplicationProtocol), "{err}");
        assert_eq!(words, NO_APPLICATION_PROTOCOL_ALERT);
    }
    // An empty ALPN list (crafted: rustls never sends one) never panics.
    let mut conn = raw_client(&[b"postgresql"]);
    let crafted = with_empty_alpn(&client_hello(&mut conn));
    for direct in [true, false] {
        let (err, words) = refuse_hello(&crafted, direct);
        eprintln!("empty ALPN list, direct={direct}: {err} ({err:?})");
        assert_eq!(
            err.blame(),
            if matches!(err, AcceptError::Tls(_)) {
                Blame::Tls
            } else {
                Blame::Policy
            }
        );
        assert!(!words.is_empty(), "an alert is sent: {err}");
    }
    // No ALPN after SSLRequest: what libpq before 17 sends. Accepted.
    let mut conn = raw_client(&[]);
    let mut acceptor = Acceptor::new(&acceptor_config(Policy::Require));
    acceptor.handle_input(&SSL_REQUEST).unwrap();
    let _ = drain(&mut acceptor);
    let mut c2s = client_hello(&mut conn);
    let mut s2c = Vec::new();
    for _ in 0..100 {
        let n = acceptor.handle_input(&c2s).unwrap();
        c2s.drain(..n);
        s2c.extend(drain(&mut acceptor).0);
        conn.read_tls(&mut &s2c[..]).unwrap();
        s2c.clear();
        conn.process_new_packets().unwrap();
        if !conn.is_handshaking() && c2s.is_empty() {
            conn.writer().write_all(&startup_message("old")).unwrap();
        }
        conn.write_tls(&mut c2s).unwrap();
        if acceptor.is_done() {
            break;
        }
    }
    let accepted = acceptor.into_accepted().unwrap();
    assert_eq!(accepted.session.unwrap().alpn_protocol(), None);
}

/// Rewrites a ClientHello record so that its ALPN extension holds an empty list.
fn with_empty_alpn(record: &[u8]) -> Vec<u8> {
    let body = &record[9..]; // record header (5) + handshake header (4)
    let u16_at = |b: &[u8], i: usize| usize::from(u16::from_be_bytes([b[i], b[i + 1]]));
    let mut p = 2 + 32; // version, random
    p += 1 + usize::from(body[p]); // session id
    p += 2 + u16_at(body, p); // cipher suites
    p += 1 + usize::from(body[p]); // compression methods
    let ext_len = u16_at(body, p);
    let mut exts = Vec::new();
    let mut q = p + 2;
    while q < p + 2 + ext_len {
        let (ty, len) = (u16_at(body, q), u16_at(body, q + 2));
        if ty == 16 {
            exts.extend_from_slice(&[0x00, 0x10, 0x00, 0x02, 0x00, 0x00]);
        } else {
            exts.extend_from_slice(&body[q..q + 4 + len]);
        }
        q += 4 + len;
    }
    let mut new_body = body[..p].to_vec();
    new_body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    new_body.extend_from_slice(&exts);
    let mut handshake = vec![1];
    handshake.extend_from_slice(&(new_body.len() as u32).to_be_bytes()[1..]);
    handshake.extend_from_slice(&new_body);
    let mut out = record[..3].to_vec();
    out.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    out.extend_from_slice(&handshake);
    out
}

#[test]
fn garbage_and_huge_lengths_are_refused_at_once() {
    for (input, consumed_before_error) in [
        (&b"GET / HTTP/1.1\r\n"[..], 0usize),
        (&[0x00, 0xFF, 0xFF, 0xFF, 0, 3, 0, 0][..], 0),
        (&[0x7F, 0xFF, 0xFF, 0xFF][..], 0),
        (&[0, 0, 0x27, 0x15][..], 0),
        (&[0, 0, 0, 4][..], 0),
        (&[0, 0, 0, 0][..], 0),
    ] {
        let mut acceptor = Acceptor::new(&acceptor_config(Policy::Allow));
        let err = acceptor.handle_input(input).unwrap_err();
        let _ = consumed_before_error;
        assert!(
            matches!(err, AcceptError::InvalidStartupPacketLength),
            "{input:?}: {err}"
        );
        assert_eq!(err.to_string(), "invalid length of startup packet");
        // PostgreSQL answers nothing to a bad length.
        let (words, end) = drain(&mut acceptor);
        assert!(words.is_empty());
        assert!(end.is_err());
        // And keeps refusing.
        assert!(acceptor.handle_input(b"more").is_err());
    }
    // Protocol 2 and layout errors get a FATAL ErrorResponse.
    let mut v2 = startup_message("x");
    v2[4..8].copy_from_slice(&0x0002_0000u32.to_be_bytes());
    let mut acceptor = Acceptor::new(&acceptor_config(Policy::Allow));
    let err = acceptor.handle_input(&v2).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported frontend protocol 2.0: server supports 3.0 to 3.2"
    );
    assert_eq!(drain(&mut acceptor).0[0], b'E');
    let mut bad = startup_message("x");
    let last = bad.len() - 1;
    bad[last] = b'x';
    let mut acceptor = Acceptor::new(&acceptor_config(Policy::Allow));
    assert!(matches!(
        acceptor.handle_input(&bad),
        Err(AcceptError::InvalidStartupPacketLayout)
    ));
    // Cancel keys shorter than 4 or longer than 256 bytes.
    for key_len in [0usize, 3, 257, 1000] {
        let mut packet = (12 + key_len as u32).to_be_bytes().to_vec();
        packet.extend_from_slice(&pgtls::wire::CANCEL_REQUEST_CODE.to_be_bytes());
        packet.extend_from_slice(&1u32.to_be_bytes());
        packet.extend(std::iter::repeat_n(1u8, key_len));
        let mut acceptor = Acceptor::new(&acceptor_config(Policy::Allow));
        let err = acceptor.handle_input(&packet).unwrap_err();
        assert!(
            matches!(err, AcceptError::InvalidCancelRequestLength),
            "{key_len}: {err}"
        );
    }
}

#[test]
fn the_largest_startup_trickled_byte_by_byte_is_accepted() {
    let mut packet = vec![0, 0, 0, 0, 0, 3, 0, 0];
    packet.extend_from_slice(b"user\0u\0pad\0");
    packet.resize(MAX_FIRST_PACKET_BYTES - 2, b'p');
    packet.extend_from_slice(b"\0\0");
    let len = packet.len() as u32;
    packet[..4].copy_from_slice(&len.to_be_bytes());
    // PostgreSQL's 10000 counts from after the length word: 10004 bytes in all.
    assert_eq!(packet.len(), MAX_STARTUP_PACKET_LENGTH + 4);
    assert_eq!(packet.len(), 10_004);
    let mut acceptor = Acceptor::new(&acceptor_config(Policy::Allow));
    for byte in &packet {
        assert_eq!(
            acceptor.handle_input(std::slice::from_ref(byte)).unwrap(),
            1
        );
        let _ = acceptor.poll_output_slice(&mut []);
    }
    let accepted = acceptor.into_accepted().unwrap();
    let FirstPacket::Startup(startup) = accepted.packet else {
        panic!("not a startup")
    };
    assert_eq!(startup.as_bytes(), &packet[..]);
    assert_eq!(
        startup.parameter("pad").map(str::len),
        Some(MAX_FIRST_PACKET_BYTES - 21)
    );
    assert_eq!(StartupMessage::parse(&packet).unwrap(), startup);
    // One byte more is refused as soon as the length is read.
    let mut acceptor = Acceptor::new(&acceptor_config(Policy::Allow));
    let too_long = ((MAX_FIRST_PACKET_BYTES + 1) as u32).to_be_bytes();
    assert!(matches!(
        acceptor.handle_input(&too_long),
        Err(AcceptError::InvalidStartupPacketLength)
    ));
}

#[test]
fn a_flood_after_the_first_packet_is_left_to_the_caller() {
    // Plaintext: only the StartupMessage is consumed.
    let flood = vec![b'Q'; 1 << 20];
    let input = [&startup_message("a")[..], &flood].concat();
    let mut acceptor = Acceptor::new(&acceptor_config(Policy::Allow));
    let used = acceptor.handle_input(&input).unwrap();
    assert_eq!(used, startup_message("a").len());
    assert!(acceptor.is_done());
    // Inside TLS: the flood sent with the startup stays for the session.
    let config = client_config(SslMode::Require, SslNegotiation::Postgres, "localhost");
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let opts = PairOpts {
        first: [&startup_message("alice")[..], &big].concat(),
        ..PairOpts::default()
    };
    let end = pair(
        &config,
        Method::SslRequest,
        &acceptor_config(Policy::Require),
        &opts,
    );
    let (_, accepted, mut c2s_left, _) = end.accepted();
    assert!(matches!(accepted.packet, FirstPacket::Startup(_)));
    let mut session = accepted.session.unwrap();
    let mut received = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    for _ in 0..10_000 {
        while let ApplicationData::Data(n) = session.poll_application_data(&mut buf).unwrap() {
            received.extend_from_slice(&buf[..n]);
        }
        if c2s_left.is_empty() {
            break;
        }
        let n = session.handle_input(&c2s_left).unwrap();
        c2s_left.drain(..n);
    }
    assert_eq!(received.len(), big.len());
    assert!(received == big);
}

#[test]
fn requests_inside_tls_are_refused_with_an_encrypted_error() {
    let config = client_config(SslMode::Require, SslNegotiation::Postgres, "localhost");
    for (first, minor) in [(SSL_REQUEST, 5679u16), (GSSENC_REQUEST, 5680)] {
        let opts = PairOpts {
            first: first.to_vec(),
            ..PairOpts::default()
        };
        let end = pair(
            &config,
            Method::SslRequest,
            &acceptor_config(Policy::Require),
            &opts,
        );
        assert!(matches!(
            end.server_err(),
            AcceptError::UnsupportedProtocol { major: 1234, minor: m } if *m == minor
        ));
        let mut client = match end.client {
            Ok(Some(session)) => session,
            _ => panic!("client should be on TLS"),
        };
        client.handle_input(&end.s2c_left).unwrap();
        let mut buf = [0u8; 512];
        let mut plain = Vec::new();
        loop {
            match client.poll_application_data(&mut buf).unwrap() {
                ApplicationData::Data(n) => plain.extend_from_slice(&buf[..n]),
                ApplicationData::Closed => break,
                ApplicationData::NeedInput => panic!("no close_notify"),
            }
        }
        assert_eq!(plain[0], b'E');
        assert!(String::from_utf8_lossy(&plain).contains("unsupported frontend protocol 1234."));
    }
}

#[test]
fn eof_anywhere_is_an_error_never_a_panic() {
    let conversation = [&SSL_REQUEST[..], &startup_message("z")].concat();
    for cut in 0..conversation.len() {
        let mut acceptor = Acceptor::new(&AcceptorConfig::plaintext_only());
        let mut fed = 0;
        while fed < cut {
            let n = acceptor.handle_input(&conversation[fed..cut]).unwrap();
            fed += n;
            let _ = drain(&mut acceptor);
            if n == 0 {
                break;
            }
        }
        let err = acceptor.handle_eof().unwrap_err();
        assert!(
            matches!(err, AcceptError::IncompleteStartupPacket),
            "{cut}: {err}"
        );
    }
    // During the handshake.
    let mut acceptor = Acceptor::new(&acceptor_config(Policy::Require));
    acceptor.handle_input(&SSL_REQUEST).unwrap();
    let _ = drain(&mut acceptor);
    let mut conn = raw_client(&[b"postgresql"]);
    let hello = client_hello(&mut conn);
    acceptor.handle_input(&hello[..hello.len() / 2]).unwrap();
    assert!(matches!(
        acceptor.handle_eof(),
        Err(AcceptError::ClosedDuringHandshake)
    ));
    // The error sticks.
    assert!(acceptor.handle_input(b"x").is_err());
    assert!(acceptor.handle_eof().is_err());
}

#[test]
fn misuse_is_typed() {
    let mut acceptor = Acceptor::new(&acceptor_config(Policy::Require));
    assert_eq!(
        acceptor.poll_output_slice(&mut []).unwrap(),
        Output::Receive
    );
    acceptor.handle_input(&SSL_REQUEST).unwrap();
    // An empty buffer while the `S` waits is refused; the `S` is not lost.
    assert!(matches!(
        acceptor.poll_output_slice(&mut []),
        Err(AcceptError::Misuse(_))
    ));
    assert_eq!(
        acceptor.poll_output_slice(&mut [0u8; 1]).unwrap(),
        Output::Transmit(1)
    );
    assert!(!acceptor.is_done());
    let err = acceptor.into_accepted().unwrap_err();
    assert!(matches!(err, AcceptError::Misuse(_)));
    assert_eq!(err.blame(), Blame::Misuse);
    assert_eq!(
        Acceptor::new(&AcceptorConfig::plaintext_only())
            .handle_input(&[])
            .unwrap(),
        0
    );
}

// ---------------------------------------------------------------------------------------------
// SNI, client certificates, channel binding, versions
// ---------------------------------------------------------------------------------------------

#[test]
fn sni_routing_with_a_certificate_per_name() {
    let pki = pki();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut resolver = rustls::server::ResolvesServerCertUsingSni::new();
    for (name, chain, key) in [
        ("a.db.example.com", &pki.a_chain, &pki.a_key),
        ("b.db.example.com", &pki.b_chain, &pki.b_key),
    ] {
        let certified =
            rustls::sign::CertifiedKey::from_der(chain.clone(), key.clone_key(), &provider)
                .unwrap();
        resolver.add(name, certified).unwrap();
    }
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    let tls = ServerTls::from_rustls(Arc::new(config));
    assert_eq!(
        tls.rustls_config().alpn_protocols,
        vec![b"postgresql".to_vec()]
    );
    let server_config = AcceptorConfig::require_tls(tls);
    for (host, chain) in [
        ("a.db.example.com", &pki.a_chain),
        ("b.db.example.com", &pki.b_chain),
    ] {
        let client = client_config(SslMode::VerifyFull, SslNegotiation::Postgres, host);
        let end = pair(
            &client,
            Method::SslRequest,
            &server_config,
            &PairOpts::default(),
        );
        let (client, accepted, _, _) = end.accepted();
        let server = accepted.session.unwrap();
        assert_eq!(server.sni(), Some(host));
        let endpoint = endpoint_from_sni(server.sni().unwrap(), "DB.example.com.").unwrap();
        assert_eq!(endpoint, &host[..1]);
        let binding = server.channel_binding().unwrap();
        assert_eq!(
            binding,
            pgtls::tls_server_end_point(chain[0].as_ref()).unwrap()
        );
        assert_eq!(binding, client.channel_binding().unwrap());
    }
    // libpq sends no SNI for an IP address: nothing to route by.
    let client = Config::builder()
        .sslmode(SslMode::Require)
        .host("127.0.0.1")
        .build()
        .unwrap();
    let end = pair(
        &client,
        Method::SslRequest,
        &acceptor_config(Policy::Require),
        &PairOpts::default(),
    );
    let (_, accepted, _, _) = end.accepted();
    assert_eq!(accepted.session.unwrap().sni(), None);
}

#[test]
fn client_certificates_are_exposed_and_checked() {
    let pki = pki();
    let tls = ServerTls::builder(pki.server_chain.clone(), pki.server_key.clone_key())
        .client_ca_certificates(vec![pki.ca_der.clone()])
        .build()
        .unwrap();
    let server_config = AcceptorConfig::require_tls(tls);
    let with_cert = |chain: &Vec<CertificateDer<'static>>, key: &PrivateKeyDer<'static>| {
        Config::builder()
            .sslmode(SslMode::VerifyFull)
            .host("localhost")
            .root_certificates(RootCertificates::from_pem(pki.ca_pem.as_bytes()).unwrap())
            .client_certificate(chain.clone(), key.clone_key())
            .build()
            .unwrap()
    };
    // A certificate from the trusted CA: in the session, leaf first.
    let end = pair(
        &with_cert(&pki.client_chain, &pki.client_key),
        Method::SslRequest,
        &server_config,
        &PairOpts::default(),
    );
    let (_, accepted, _, _) = end.accepted();
    let server = accepted.session.unwrap();
    assert_eq!(server.peer_certificates()[0], pki.client_chain[0]);
    // No certificate: accepted (pg_hba decides), none exposed.
    let end = pair(
        &client_config(SslMode::VerifyFull, SslNegotiation::Postgres, "localhost"),
        Method::SslRequest,
        &server_config,
        &PairOpts::default(),
    );
    let (_, accepted, _, _) = end.accepted();
    assert!(accepted.session.unwrap().peer_certificates().is_empty());
    // A certificate from another CA: refused in the handshake.
    let end = pair(
        &with_cert(&pki.stranger_chain, &pki.stranger_key),
        Method::SslRequest,
        &server_config,
        &PairOpts::default(),
    );
    let err = end.server.expect("the server finished").unwrap_err();
    assert_eq!(err.blame(), Blame::Tls, "{err}");
}

#[test]
fn versions_and_settings() {
    let pki = pki();
    // A TLS 1.2-only server.
    let tls = ServerTls::builder(pki.server_chain.clone(), pki.server_key.clone_key())
        .max_protocol_version(Some(pgtls::TlsVersion::Tls1_2))
        .build()
        .unwrap();
    let end = pair(
        &client_config(SslMode::VerifyFull, SslNegotiation::Postgres, "localhost"),
        Method::SslRequest,
        &AcceptorConfig::require_tls(tls),
        &PairOpts::default(),
    );
    let (client, accepted, _, _) = end.accepted();
    let server = accepted.session.unwrap();
    assert_eq!(
        server.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    assert_eq!(client.channel_binding(), server.channel_binding());
    // Settings errors.
    assert!(
        ServerTls::builder(pki.server_chain.clone(), pki.server_key.clone_key())
            .min_protocol_version(pgtls::TlsVersion::Tls1_3)
            .max_protocol_version(Some(pgtls::TlsVersion::Tls1_2))
            .build()
            .is_err()
    );
    assert!(ServerTls::new(Vec::new(), pki.server_key.clone_key()).is_err());
    assert!(
        ServerTls::new(pki.a_chain.clone(), pki.server_key.clone_key()).is_err(),
        "mismatched key"
    );
    assert!(ServerTls::from_pem(b"", b"").is_err());
    let config = AcceptorConfig::plaintext_only().with_direct_tls(true);
    assert!(!config.accepts_direct_tls() && config.tls().is_none() && !config.requires_tls());
    let config = acceptor_config(Policy::RequireNoDirect);
    assert!(config.requires_tls() && !config.accepts_direct_tls());
}

// ---------------------------------------------------------------------------------------------
// Fuzz seeds
// ---------------------------------------------------------------------------------------------

/// Builds the seed corpus of the `acceptor` fuzz target and runs every seed through the
/// fuzz body (each must be handled without a panic). With `PGTLS_WRITE_FUZZ_SEEDS=1` the
/// seeds are also written to fuzz/corpus/acceptor — do that after changing the fuzz
/// body's input layout (see `pgtls::fuzz::acceptor`).
#[test]
fn fuzz_seeds_run_through_the_acceptor_body() {
    let write = std::env::var("PGTLS_WRITE_FUZZ_SEEDS").is_ok_and(|v| v == "1");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/acceptor");
    // Raw mode: selector (policy << 1), then per chunk: an output-size byte, a length byte,
    // the bytes (chunks of at most 255).
    let raw = |policy: u8, stream: &[u8]| {
        let mut seed = vec![policy << 1];
        for chunk in stream.chunks(255) {
            seed.extend_from_slice(&[0xFF, chunk.len() as u8]);
            seed.extend_from_slice(chunk);
        }
        seed
    };
    let cancel = pgtls::wire::cancel_request(77, &[9u8; 32]).unwrap();
    let hello = |alpn: &[&[u8]]| client_hello(&mut raw_client(alpn));
    let mut seeds: Vec<(String, Vec<u8>)> = Vec::new();
    for policy in 0..5u8 {
        let p = format!("p{policy}");
        seeds.push((
            format!("{p}_sslrequest_startup"),
            raw(policy, &[&SSL_REQUEST[..], &startup_message("u")].concat()),
        ));
        seeds.push((format!("{p}_startup"), raw(policy, &startup_message("u"))));
        seeds.push((format!("{p}_cancel"), raw(policy, &cancel)));
        seeds.push((
            format!("{p}_gssenc_ssl"),
            raw(policy, &[&GSSENC_REQUEST[..], &SSL_REQUEST].concat()),
        ));
        seeds.push((
            format!("{p}_glued"),
            raw(policy, &[&SSL_REQUEST[..], b"Q"].concat()),
        ));
        seeds.push((
            format!("{p}_sslrequest_hello"),
            raw(
                policy,
                &[&SSL_REQUEST[..], &hello(&[b"postgresql"])].concat(),
            ),
        ));
        seeds.push((
            format!("{p}_direct_hello"),
            raw(policy, &hello(&[b"postgresql"])),
        ));
        seeds.push((format!("{p}_direct_no_alpn"), raw(policy, &hello(&[]))));
        seeds.push((format!("{p}_direct_h2"), raw(policy, &hello(&[b"h2"]))));
        seeds.push((
            format!("{p}_empty_alpn"),
            raw(policy, &with_empty_alpn(&hello(&[b"postgresql"]))),
        ));
        // Live mode: selector | 1, direct?, first-packet length / 8, the packet.
        for direct in [0u8, 1] {
            for (name, first) in [
                ("startup", startup_message("live")),
                ("cancel", cancel.clone()),
                ("ssl", SSL_REQUEST.to_vec()),
            ] {
                let mut seed = vec![(policy << 1) | 1, direct, first.len().div_ceil(8) as u8];
                let mut padded = first.clone();
                padded.resize(first.len().div_ceil(8) * 8, 0);
                seed.extend_from_slice(&padded);
                seeds.push((format!("{p}_live{direct}_{name}"), seed));
            }
        }
    }
    seeds.push(("huge_length".into(), raw(3, &[0x00, 0xFF, 0xFF, 0xFF])));
    seeds.push(("http".into(), raw(3, b"GET / HTTP/1.1\r\n\r\n")));
    assert!(seeds.len() > 60, "{} seeds", seeds.len());
    for (name, seed) in &seeds {
        pgtls::fuzz::acceptor(seed);
        if write {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(name), seed).unwrap();
        }
    }
    if write {
        eprintln!("wrote {} seeds to {}", seeds.len(), dir.display());
    }
}

// ---------------------------------------------------------------------------------------------
// The server's files: X.509 v1 certificates, PostgreSQL's load errors, CRLs, hot reload
// ---------------------------------------------------------------------------------------------

/// A verify-full client trusting `root_pem`, optionally with a client certificate.
fn verify_full_client(root_pem: &str, cert: Option<&certs::Leaf>) -> Config {
    let mut builder = Config::builder()
        .sslmode(SslMode::VerifyFull)
        .host("localhost")
        .root_certificates(RootCertificates::from_pem(root_pem.as_bytes()).unwrap());
    if let Some(leaf) = cert {
        builder = builder.client_certificate(leaf.chain.clone(), leaf.key.clone_key());
    }
    builder.build().unwrap()
}

#[test]
fn x509_v1_server_certificates_are_served() {
    // PostgreSQL's documented recipe makes v1 certificates; a server never validates its
    // own certificate, so they load (webpki would refuse them).
    let ca = Ca::root("pgtls v1 test CA");
    let leaf = ca.leaf(LeafSpec::server("localhost").v1());
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("server.crt"), dir.path().join("server.key"));
    std::fs::write(&cert, leaf.chain_pem()).unwrap();
    std::fs::write(&key, leaf.key_pkcs8_pem()).unwrap();
    for tls in [
        ServerTls::new(leaf.chain.clone(), leaf.key.clone_key()).unwrap(),
        ServerTlsFiles::new(&cert, &key).load().unwrap(),
    ] {
        let end = pair(
            &verify_full_client(&ca.root_pem(), None),
            Method::SslRequest,
            &AcceptorConfig::require_tls(tls),
            &PairOpts::default(),
        );
        let (client, accepted, _, _) = end.accepted();
        assert_eq!(client.peer_certificates()[0], leaf.cert);
        assert_eq!(
            accepted.session.unwrap().channel_binding(),
            client.channel_binding()
        );
    }
}

#[test]
fn server_file_errors_name_the_file_in_postgresql_words() {
    let ca = Ca::root("pgtls file errors CA");
    let leaf = ca.leaf(LeafSpec::server("localhost"));
    let other = ca.leaf(LeafSpec::server("localhost"));
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    std::fs::write(path("server.crt"), leaf.chain_pem()).unwrap();
    std::fs::write(path("server.key"), leaf.key_pkcs8_pem()).unwrap();
    std::fs::write(path("other.key"), other.key_pkcs8_pem()).unwrap();
    std::fs::write(path("empty"), "nothing here\n").unwrap();
    let shown = |name: &str| path(name).display().to_string();
    let message = |cert: &str, key: &str| {
        ServerTlsFiles::new(path(cert), path(key))
            .load()
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        message("missing.crt", "server.key"),
        format!(
            "could not load server certificate file \"{}\": No such file or directory",
            shown("missing.crt")
        )
    );
    assert_eq!(
        message("empty", "server.key"),
        format!(
            "could not load server certificate file \"{}\": no start line",
            shown("empty")
        )
    );
    assert_eq!(
        message("server.crt", "missing.key"),
        format!(
            "could not load private key file \"{}\": No such file or directory",
            shown("missing.key")
        )
    );
    assert_eq!(
        message("server.crt", "empty"),
        format!(
            "could not load private key file \"{}\": no start line",
            shown("empty")
        )
    );
    // be_tls_init: SSL_CTX_check_private_key, OpenSSL's reason.
    assert_eq!(
        message("server.crt", "other.key"),
        "check of private key failed: key values mismatch"
    );
    let err = ServerTlsFiles::new(path("server.crt"), path("server.key"))
        .ca_file(path("missing-ca.crt"))
        .load()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "could not load root certificate file \"{}\": No such file or directory",
            shown("missing-ca.crt")
        )
    );
    std::fs::write(path("ca.crt"), ca.root_pem()).unwrap();
    let err = ServerTlsFiles::new(path("server.crt"), path("server.key"))
        .ca_file(path("ca.crt"))
        .crl_file(path("empty"))
        .load()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "could not load SSL certificate revocation list file \"{}\": no start line",
            shown("empty")
        )
    );
    let err = ServerTlsFiles::new(path("server.crt"), path("server.key"))
        .ca_file(path("ca.crt"))
        .crl_dir(path("no-such-dir"))
        .load()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "could not load SSL certificate revocation list directory \"{}\": No such file or directory",
            shown("no-such-dir")
        )
    );
    // In memory, the blame is right too: the key, not a "peer certificate".
    let err = ServerTls::new(leaf.chain.clone(), other.key.clone_key()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "could not load private key: check of private key failed: key values mismatch"
    );
}

#[test]
fn revoked_client_certificates_are_refused_as_postgresql_does() {
    let ca = Ca::root("pgtls CRL test CA");
    let server = ca.leaf(LeafSpec::server("localhost"));
    let good = ca.leaf(LeafSpec::client("alice"));
    let revoked = ca.leaf(LeafSpec::client("mallory"));
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    std::fs::write(path("server.crt"), server.chain_pem()).unwrap();
    std::fs::write(path("server.key"), server.key_pkcs8_pem()).unwrap();
    std::fs::write(path("ca.crt"), ca.root_pem()).unwrap();
    let crl = ca.crl_now(&[&revoked]);
    std::fs::write(path("root.crl"), certs::crl_pem(&crl)).unwrap();
    std::fs::create_dir(path("crls")).unwrap();
    std::fs::write(path("crls").join("0.r0"), crl.as_ref()).unwrap();
    let base =
        || ServerTlsFiles::new(path("server.crt"), path("server.key")).ca_file(path("ca.crt"));
    for files in [
        base().crl_file(path("root.crl")),
        base().crl_dir(path("crls")),
    ] {
        let config = AcceptorConfig::require_tls(files.load().unwrap());
        // Not revoked: accepted, the certificate in the session.
        let end = pair(
            &verify_full_client(&ca.root_pem(), Some(&good)),
            Method::SslRequest,
            &config,
            &PairOpts::default(),
        );
        let (_, accepted, _, _) = end.accepted();
        assert_eq!(accepted.session.unwrap().peer_certificates()[0], good.cert);
        // Revoked: alert certificate_revoked, and PostgreSQL's log line.
        let end = pair(
            &verify_full_client(&ca.root_pem(), Some(&revoked)),
            Method::SslRequest,
            &config,
            &PairOpts::default(),
        );
        let err = end.server_err();
        assert_eq!(
            err.to_string(),
            "could not accept SSL connection: certificate verify failed"
        );
        assert_eq!(err.blame(), Blame::Tls);
        assert_eq!(
            err.detail(),
            Some("Client certificate verification failed at depth 0: certificate revoked.")
        );
        // TLS 1.3: the client's handshake is over before the server checks its
        // certificate; the alert arrives as the next record.
        let client_err = match end.client {
            Err(err) => err,
            Ok(None) => panic!("the client is not on TLS"),
            Ok(Some(mut session)) => {
                let mut buf = [0u8; 1024];
                session
                    .handle_input(&end.s2c_left)
                    .and_then(|_| session.poll_application_data(&mut buf))
                    .expect_err("the client reads the alert")
            }
        };
        assert_eq!(
            client_err.rustls_error(),
            Some(&rustls::Error::AlertReceived(
                rustls::AlertDescription::CertificateRevoked
            )),
            "{client_err}"
        );
    }
}

#[test]
fn a_reload_changes_the_certificate_for_new_connections_only() {
    let ca = Ca::root("pgtls reload CA");
    let first = ca.leaf(LeafSpec::server("localhost"));
    let second = ca.leaf(LeafSpec::server("localhost"));
    let tls =
        |leaf: &certs::Leaf| ServerTls::new(leaf.chain.clone(), leaf.key.clone_key()).unwrap();
    let shared = SharedAcceptorConfig::new(AcceptorConfig::require_tls(tls(&first)));
    let client = verify_full_client(&ca.root_pem(), None);
    let connect = || {
        pair(
            &client,
            Method::SslRequest,
            &shared.current(),
            &PairOpts::default(),
        )
        .accepted()
    };
    let (mut old_client, old_accepted, _, _) = connect();
    let mut old_server = old_accepted.session.unwrap();
    assert_eq!(old_client.peer_certificates()[0], first.cert);
    let previous = shared.replace(AcceptorConfig::require_tls(tls(&second)));
    assert!(previous.tls().is_some());
    // A new connection sees the new certificate.
    let (new_client, _, _, _) = connect();
    assert_eq!(new_client.peer_certificates()[0], second.cert);
    // The session established before the swap keeps working, both ways.
    assert_eq!(
        transfer(&mut old_client, &mut old_server, b"SELECT 1"),
        b"SELECT 1"
    );
    assert_eq!(
        transfer(&mut old_server, &mut old_client, b"still here"),
        b"still here"
    );
    assert_eq!(old_server.channel_binding(), old_client.channel_binding());
}

#[test]
fn a_failed_session_hands_out_its_alert_then_the_error_again() {
    let config = client_config(SslMode::Require, SslNegotiation::Postgres, "localhost");
    let end = pair(
        &config,
        Method::SslRequest,
        &acceptor_config(Policy::Require),
        &PairOpts::default(),
    );
    let (mut client, _accepted, _, _) = end.accepted();
    // A record of an unknown content type breaks the protocol.
    let err = client
        .handle_input(&[0x99, 0x03, 0x03, 0x00, 0x01, 0x00])
        .unwrap_err();
    let mut out = bytes::BytesMut::new();
    assert!(matches!(
        client.poll_output(&mut out).unwrap(),
        Output::Transmit(n) if n > 0 && n == out.len()
    ));
    for _ in 0..2 {
        let again = client.poll_output(&mut out).unwrap_err();
        assert_eq!(again.to_string(), err.to_string());
    }
}
