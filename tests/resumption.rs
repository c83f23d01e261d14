//! Client session resumption (`ConfigBuilder::session_resumption`) and acceptor tickets
//! (`ServerTlsBuilder::session_tickets`), in memory: our client against our acceptor.
//!
//! A ticket is offered only to the endpoint and settings it was made with; a ticket the
//! server rejects, a server that changed its certificate, a clock past the ticket's
//! lifetime and a store at its bound all end in a full handshake verified exactly as
//! without resumption. Whether a ticket was *offered* is read from the ClientHello itself
//! (the `pre_shared_key` extension), not only from the outcome.
//!
//! Every loop here is bounded.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::BytesMut;
use pgtls::plan::Method;
use pgtls::rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use pgtls::rustls::time_provider::TimeProvider;
use pgtls::server::{AcceptError, Acceptor, AcceptorConfig, ServerTls, SessionTickets};
use pgtls::{
    ApplicationData, Config, ConfigBuilder, Negotiated, Negotiation, Output, RootCertificates,
    Session, SessionResumption, SslCertMode, SslMode, TlsVersion,
};
use pgtls_testkit::certs::{Ca, LeafSpec};
use pgtls_testkit::fake_server::startup_message;

// ---------------------------------------------------------------------------------------------
// Certificates and settings
// ---------------------------------------------------------------------------------------------

struct Pki {
    ca_der: CertificateDer<'static>,
    ca_pem: String,
    other_ca_pem: String,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivateKeyDer<'static>,
    /// Signed by the same CA, for another name: fails verify-full for `localhost`.
    wrong_name_chain: Vec<CertificateDer<'static>>,
    wrong_name_key: PrivateKeyDer<'static>,
    client_chain: Vec<CertificateDer<'static>>,
    client_key: PrivateKeyDer<'static>,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let ca = Ca::root("pgtls resumption test CA");
        let other = Ca::root("another CA");
        let server = ca.leaf(LeafSpec::server("localhost"));
        let wrong = ca.leaf(LeafSpec::server("elsewhere.example.com"));
        let client = ca.leaf(LeafSpec::client("alice"));
        Pki {
            ca_der: ca.root_der(),
            ca_pem: ca.root_pem(),
            other_ca_pem: other.root_pem(),
            server_chain: server.chain.clone(),
            server_key: server.key.clone_key(),
            wrong_name_chain: wrong.chain.clone(),
            wrong_name_key: wrong.key.clone_key(),
            client_chain: client.chain.clone(),
            client_key: client.key.clone_key(),
        }
    })
}

/// A server with tickets on: a new one is a restarted server (new ticket keys).
fn ticket_server() -> AcceptorConfig {
    let pki = pki();
    AcceptorConfig::require_tls(
        ServerTls::builder(pki.server_chain.clone(), pki.server_key.clone_key())
            .session_tickets(SessionTickets::rotating())
            .build()
            .unwrap(),
    )
}

fn builder(mode: SslMode) -> ConfigBuilder {
    Config::builder()
        .sslmode(mode)
        .host("localhost")
        .port(5432)
        .root_certificates(RootCertificates::from_pem(pki().ca_pem.as_bytes()).unwrap())
        .session_resumption(SessionResumption::in_memory())
}

fn verify_full() -> Config {
    builder(SslMode::VerifyFull).build().unwrap()
}

// ---------------------------------------------------------------------------------------------
// The pair
// ---------------------------------------------------------------------------------------------

/// One connection's end, both sides.
struct Conn {
    client: Box<Session>,
    server: Box<Session>,
    /// Whether the ClientHello carried a `pre_shared_key` (a TLS 1.3 ticket offered).
    offered_ticket: bool,
}

/// Connects `client` to `server` with SSLRequest, runs the startup and one server message,
/// so that the tickets the server sends after the handshake reach the client's store.
fn connect(client: &Config, server: &AcceptorConfig) -> Result<Conn, pgtls::Error> {
    let mut neg = Some(Negotiation::new(client, Method::SslRequest).unwrap());
    let mut acceptor = Some(Acceptor::new(server));
    let (mut c2s, mut s2c) = (BytesMut::new(), BytesMut::new());
    let mut hello = Vec::new();
    let mut client_session: Option<Box<Session>> = None;
    let mut server_session: Option<Box<Session>> = None;
    let mut startup_sent = false;
    let mut server_failed = false;
    for _ in 0..10_000 {
        if let Some(n) = neg.as_mut() {
            let before = c2s.len();
            match n.poll_output(&mut c2s) {
                Ok(Output::Transmit(_)) => {
                    if hello.len() < 8 + 5 + 4 {
                        hello.extend_from_slice(&c2s[before..]);
                    }
                }
                Ok(Output::Done) => match neg.take().unwrap().into_negotiated()? {
                    Negotiated::Tls(session) => client_session = Some(session),
                    other => panic!("not TLS: {other:?}"),
                },
                Ok(Output::Receive) => {}
                Err(err) => {
                    // The client's last alert goes to the server, which then fails too.
                    let _ = neg.take();
                    if let Some(mut a) = acceptor.take() {
                        let _ = a.handle_input(&c2s);
                        let _ = a.handle_eof();
                    }
                    return Err(err);
                }
            }
        }
        if let Some(session) = client_session.as_mut() {
            if !startup_sent {
                let startup = startup_message("alice", "db");
                assert_eq!(
                    session.handle_application_data(&startup).unwrap(),
                    startup.len()
                );
                startup_sent = true;
            }
            while let Ok(Output::Transmit(_)) = session.poll_output(&mut c2s) {}
        }
        if let Some(a) = acceptor.as_mut() {
            match a.poll_output(&mut s2c) {
                Ok(Output::Done) => {
                    let accepted = acceptor.take().unwrap().into_accepted().unwrap();
                    server_session = accepted.session;
                }
                Ok(_) => {}
                // The server's last alert is in s2c; the client then reads EOF.
                Err(_) => server_failed = true,
            }
        }
        if let Some(a) = acceptor.as_mut() {
            match a.handle_input(&c2s) {
                Ok(n) => {
                    let _ = c2s.split_to(n);
                }
                Err(AcceptError::Misuse(m)) => panic!("server misuse: {m}"),
                Err(_) => server_failed = true,
            }
        }
        if let Some(n) = neg.as_mut() {
            let used = n.handle_input(&s2c);
            if let Ok(k) = used {
                let _ = s2c.split_to(k);
            }
            if server_failed && s2c.is_empty() {
                let _ = n.handle_eof();
            }
        }
        if client_session.is_some() && server_session.is_some() {
            break;
        }
    }
    let mut client = client_session.expect("client finished");
    let mut server = server_session.expect("server finished");
    // What the client sent after the acceptor finished, then one message from the server:
    // the tickets travel with it.
    server.handle_input(&c2s).unwrap();
    let hi = b"server says hello";
    server.handle_application_data(hi).unwrap();
    while let Ok(Output::Transmit(_)) = server.poll_output(&mut s2c) {}
    let mut received = Vec::new();
    for _ in 0..100 {
        let n = client.handle_input(&s2c).unwrap();
        let _ = s2c.split_to(n);
        let mut buf = [0u8; 256];
        while let ApplicationData::Data(k) = client.poll_application_data(&mut buf).unwrap() {
            received.extend_from_slice(&buf[..k]);
        }
        if s2c.is_empty() {
            break;
        }
    }
    assert_eq!(received, hi);
    Ok(Conn {
        offered_ticket: offers_psk(&hello[8..]),
        client,
        server,
    })
}

/// Whether a ClientHello record carries the `pre_shared_key` extension (41).
fn offers_psk(record: &[u8]) -> bool {
    extensions(record).is_some_and(|exts| exts.contains(&41))
}

/// The extension types of a ClientHello in one TLS record (None if it is not one).
fn extensions(record: &[u8]) -> Option<Vec<u16>> {
    let body = record.get(5..)?;
    if record.first() != Some(&22) || body.first() != Some(&1) {
        return None;
    }
    let hello = body.get(4..)?;
    // version, random
    let mut at = 2 + 32;
    at += 1 + *hello.get(at)? as usize; // session id
    at += 2 + u16::from_be_bytes([*hello.get(at)?, *hello.get(at + 1)?]) as usize; // suites
    at += 1 + *hello.get(at)? as usize; // compression
    let len = u16::from_be_bytes([*hello.get(at)?, *hello.get(at + 1)?]) as usize;
    let mut exts = hello.get(at + 2..at + 2 + len)?;
    let mut types = Vec::new();
    while exts.len() >= 4 {
        let kind = u16::from_be_bytes([exts[0], exts[1]]);
        let n = u16::from_be_bytes([exts[2], exts[3]]) as usize;
        types.push(kind);
        exts = exts.get(4 + n..)?;
    }
    Some(types)
}

fn full(conn: &Conn) {
    assert!(!conn.client.resumed(), "the client resumed");
    assert!(!conn.server.resumed(), "the server resumed");
}

fn resumed(conn: &Conn) {
    assert!(conn.offered_ticket, "no ticket was offered");
    assert!(conn.client.resumed(), "the client did not resume");
    assert!(conn.server.resumed(), "the server did not resume");
}

// ---------------------------------------------------------------------------------------------
// Resumption
// ---------------------------------------------------------------------------------------------

#[test]
fn the_second_connection_resumes_with_the_same_certificate_and_channel_binding() {
    let server = ticket_server();
    let config = verify_full();
    assert!(config.resumes_sessions());
    let first = connect(&config, &server).unwrap();
    full(&first);
    assert!(!first.offered_ticket);
    // A clone shares the store.
    let second = connect(&config.clone(), &server).unwrap();
    resumed(&second);
    // rustls hands back the chain verified when the session was made: the channel binding
    // (tls-server-end-point) is the same.
    assert_eq!(
        second.client.peer_certificates(),
        &pki().server_chain[..1],
        "the resumed session's certificate"
    );
    assert_eq!(
        second.client.channel_binding().unwrap(),
        first.client.channel_binding().unwrap()
    );
    // Tickets keep coming: the third connection resumes too.
    resumed(&connect(&config, &server).unwrap());
}

#[test]
fn tls12_resumes_too() {
    let server = ticket_server();
    let config = builder(SslMode::VerifyFull)
        .max_protocol_version(Some(TlsVersion::Tls1_2))
        .build()
        .unwrap();
    full(&connect(&config, &server).unwrap());
    let second = connect(&config, &server).unwrap();
    assert!(second.client.resumed() && second.server.resumed());
}

#[test]
fn resumption_off_never_offers_a_ticket() {
    let server = ticket_server();
    for config in [
        builder(SslMode::VerifyFull)
            .session_resumption(SessionResumption::disabled())
            .build()
            .unwrap(),
        // The default.
        Config::builder()
            .sslmode(SslMode::VerifyFull)
            .host("localhost")
            .port(5432)
            .root_certificates(RootCertificates::from_pem(pki().ca_pem.as_bytes()).unwrap())
            .build()
            .unwrap(),
    ] {
        assert!(!config.resumes_sessions());
        for _ in 0..3 {
            let conn = connect(&config, &server).unwrap();
            full(&conn);
            assert!(!conn.offered_ticket);
        }
    }
}

#[test]
fn a_config_without_a_port_never_resumes() {
    let server = ticket_server();
    let config = Config::builder()
        .sslmode(SslMode::VerifyFull)
        .host("localhost")
        .root_certificates(RootCertificates::from_pem(pki().ca_pem.as_bytes()).unwrap())
        .session_resumption(SessionResumption::in_memory())
        .build()
        .unwrap();
    assert_eq!(config.port(), None);
    assert!(!config.resumes_sessions());
    for _ in 0..2 {
        let conn = connect(&config, &server).unwrap();
        full(&conn);
        assert!(!conn.offered_ticket);
    }
    // Given a port, it does.
    let with_port = config.with_port(5432);
    full(&connect(&with_port, &server).unwrap());
    resumed(&connect(&with_port, &server).unwrap());
}

#[test]
fn another_port_gets_no_ticket() {
    let server = ticket_server();
    let config = verify_full();
    full(&connect(&config, &server).unwrap());
    let other_port = config.with_port(6432);
    let conn = connect(&other_port, &server).unwrap();
    full(&conn);
    assert!(
        !conn.offered_ticket,
        "a ticket for 5432 was offered to 6432"
    );
    // Each port keeps its own: both resume now.
    resumed(&connect(&other_port, &server).unwrap());
    resumed(&connect(&config.with_port(5432), &server).unwrap());
}

#[test]
fn another_sslmode_roots_client_certificate_or_host_config_gets_no_ticket() {
    let server = ticket_server();
    let require = builder(SslMode::Require).build().unwrap();
    full(&connect(&require, &server).unwrap());
    resumed(&connect(&require, &server).unwrap());
    let pki = pki();
    let others = [
        // A require session is never offered under verify-ca or verify-full.
        ("verify-full", verify_full()),
        ("verify-ca", builder(SslMode::VerifyCa).build().unwrap()),
        // Other roots (this bundle has the server's CA and another one).
        (
            "other roots",
            builder(SslMode::Require)
                .root_certificates(
                    RootCertificates::from_pem(
                        format!("{}{}", pki.ca_pem, pki.other_ca_pem).as_bytes(),
                    )
                    .unwrap(),
                )
                .build()
                .unwrap(),
        ),
        (
            "a client certificate",
            builder(SslMode::Require)
                .client_certificate(pki.client_chain.clone(), pki.client_key.clone_key())
                .build()
                .unwrap(),
        ),
        // The same settings rebuilt for the same host: a new Config starts empty.
        ("with_host", require.with_host("localhost").unwrap()),
        ("rebuilt", builder(SslMode::Require).build().unwrap()),
    ];
    for (what, config) in others {
        let conn = connect(&config, &server).unwrap();
        assert!(!conn.offered_ticket, "{what}: a ticket was offered");
        full(&conn);
    }
}

#[test]
fn sslcertmode_require_never_resumes() {
    let pki = pki();
    let server = AcceptorConfig::require_tls(
        ServerTls::builder(pki.server_chain.clone(), pki.server_key.clone_key())
            .client_ca_certificates(vec![pki.ca_der.clone()])
            .session_tickets(SessionTickets::rotating())
            .build()
            .unwrap(),
    );
    let config = builder(SslMode::VerifyFull)
        .client_certificate(pki.client_chain.clone(), pki.client_key.clone_key())
        .certmode(SslCertMode::Require)
        .build()
        .unwrap();
    for _ in 0..3 {
        let conn = connect(&config, &server).unwrap();
        full(&conn);
        assert_eq!(conn.server.peer_certificates(), &pki.client_chain[..1]);
    }
}

#[test]
fn a_callers_rustls_config_keeps_its_store_unless_pgtls_resumption_is_on() {
    use pgtls::rustls;
    let server = ticket_server();
    // rustls's default config resumes, from an in-memory store keyed by server name.
    let base = || {
        // Whichever provider this build has (pgtls's own).
        let provider = verify_full()
            .rustls_config()
            .unwrap()
            .crypto_provider()
            .clone();
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
    };
    // Without session_resumption, the caller's store is kept (as before).
    let kept = builder(SslMode::VerifyFull)
        .session_resumption(SessionResumption::disabled())
        .rustls_client_config(base())
        .build()
        .unwrap();
    full(&connect(&kept, &server).unwrap());
    resumed(&connect(&kept, &server).unwrap());
    // With it, pgtls's per-port stores replace it: another port gets no ticket.
    let scoped = builder(SslMode::VerifyFull)
        .rustls_client_config(base())
        .build()
        .unwrap();
    full(&connect(&scoped, &server).unwrap());
    resumed(&connect(&scoped, &server).unwrap());
    let conn = connect(&scoped.with_port(6432), &server).unwrap();
    assert!(!conn.offered_ticket);
    full(&conn);
}

// ---------------------------------------------------------------------------------------------
// Bad input: the connection verifies exactly as without resumption
// ---------------------------------------------------------------------------------------------

#[test]
fn a_ticket_the_restarted_server_rejects_means_a_verified_full_handshake() {
    let config = verify_full();
    full(&connect(&config, &ticket_server()).unwrap());
    // A restart: new ticket keys. The ticket is offered and refused.
    let restarted = ticket_server();
    let conn = connect(&config, &restarted).unwrap();
    assert!(conn.offered_ticket);
    full(&conn);
    assert_eq!(conn.client.peer_certificates(), &pki().server_chain[..1]);
    // The new server's tickets work.
    resumed(&connect(&config, &restarted).unwrap());
}

#[test]
fn a_server_restarted_with_a_bad_certificate_fails_as_without_resumption() {
    let pki = pki();
    let config = verify_full();
    full(&connect(&config, &ticket_server()).unwrap());
    let bad = AcceptorConfig::require_tls(
        ServerTls::builder(pki.wrong_name_chain.clone(), pki.wrong_name_key.clone_key())
            .session_tickets(SessionTickets::rotating())
            .build()
            .unwrap(),
    );
    let with_ticket = connect(&config, &bad).err().expect("verify-full must fail");
    let fresh = connect(&verify_full(), &bad)
        .err()
        .expect("verify-full must fail");
    assert_eq!(with_ticket.to_string(), fresh.to_string());
    assert!(
        fresh.to_string().contains("does not match host name"),
        "{fresh}"
    );
    // And a server without tickets at all (PostgreSQL's way): same answer.
    let no_tickets = AcceptorConfig::require_tls(
        ServerTls::new(pki.wrong_name_chain.clone(), pki.wrong_name_key.clone_key()).unwrap(),
    );
    let err = connect(&config, &no_tickets)
        .err()
        .expect("verify-full must fail");
    assert_eq!(err.to_string(), fresh.to_string());
}

/// A clock the test moves.
#[derive(Debug)]
struct MovableClock(Mutex<Duration>);

impl TimeProvider for MovableClock {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(*self.0.lock().unwrap()))
    }
}

#[test]
fn a_clock_past_the_ticket_lifetime_means_a_full_handshake() {
    let server = ticket_server();
    let now = UnixTime::now().as_secs();
    let clock = Arc::new(MovableClock(Mutex::new(Duration::from_secs(now))));
    let config = builder(SslMode::VerifyFull)
        .time_provider(clock.clone())
        .build()
        .unwrap();
    full(&connect(&config, &server).unwrap());
    resumed(&connect(&config, &server).unwrap());
    // Past the server's ticket lifetime (12 hours with rustls's rotating ticketer) and
    // rustls's 7-day cap, still inside the certificate's validity.
    *clock.0.lock().unwrap() = Duration::from_secs(now + 8 * 24 * 3600);
    let conn = connect(&config, &server).unwrap();
    assert!(!conn.offered_ticket, "an expired ticket was offered");
    full(&conn);
    // A clock that jumps back does not make anything resume that would not otherwise.
    *clock.0.lock().unwrap() = Duration::from_secs(now);
    let conn = connect(&config, &server).unwrap();
    assert!(conn.client.peer_certificates() == &pki().server_chain[..1]);
}

#[test]
fn a_store_at_its_bound_forgets_the_oldest_port() {
    let server = ticket_server();
    let config = builder(SslMode::VerifyFull)
        .session_resumption(SessionResumption::with_max_ports(2))
        .build()
        .unwrap();
    // The builder's port (5432) took the first place; these two push it out.
    let (a, b) = (config.with_port(1), config.with_port(2));
    full(&connect(&a, &server).unwrap());
    full(&connect(&b, &server).unwrap());
    resumed(&connect(&a.with_port(1), &server).unwrap());
    // A third port pushes the oldest (1) out.
    full(&connect(&config.with_port(3), &server).unwrap());
    let conn = connect(&config.with_port(1), &server).unwrap();
    assert!(!conn.offered_ticket);
    full(&conn);
}

#[test]
fn a_server_without_tickets_never_resumes() {
    let pki = pki();
    let server = AcceptorConfig::require_tls(
        ServerTls::new(pki.server_chain.clone(), pki.server_key.clone_key()).unwrap(),
    );
    assert_eq!(
        server.tls().unwrap().rustls_config().send_tls13_tickets,
        0,
        "PostgreSQL's default"
    );
    let config = verify_full();
    for _ in 0..3 {
        let conn = connect(&config, &server).unwrap();
        assert!(!conn.offered_ticket);
        full(&conn);
    }
}

#[test]
fn session_tickets_settings() {
    let pki = pki();
    let tls = ServerTls::builder(pki.server_chain.clone(), pki.server_key.clone_key())
        .session_tickets(
            SessionTickets::rotating()
                .with_tickets_per_handshake(4)
                .with_tls12_sessions(10),
        )
        .build()
        .unwrap();
    assert_eq!(tls.rustls_config().send_tls13_tickets, 4);
    assert!(tls.rustls_config().ticketer.enabled());
    assert!(!SessionTickets::disabled().is_enabled());
    assert_eq!(SessionTickets::default(), SessionTickets::disabled());
    let off = ServerTls::new(pki.server_chain.clone(), pki.server_key.clone_key()).unwrap();
    assert!(!off.rustls_config().ticketer.enabled());
    assert!(!off.rustls_config().session_storage.can_cache());
    assert!(tls.rustls_config().session_storage.can_cache());
}

// ---------------------------------------------------------------------------------------------
// Real servers: `pgtls proxy --tickets` in front of PostgreSQL 15, and PostgreSQL 15 itself
// ---------------------------------------------------------------------------------------------

mod real {
    use std::net::TcpStream;
    use std::path::PathBuf;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use pgtls::blocking::{self, StartupError, Stream};
    use pgtls::libpq::{ConnParams, Environment};
    use pgtls::{Config, SessionResumption};
    use pgtls_cli::probe::{probe_with_options, NoProgress, ProbeOptions};
    use pgtls_cli::proxy as tls_proxy;
    use pgtls_cli::startup::{run_startup, ChannelBindingMode, StartupParams, TlsFacts};
    use pgtls_testkit::certs::{self, Ca, LeafSpec};
    use pgtls_testkit::pg::{self, install_or_skip, servers_available, Hba, PgServer, PgVersion};

    /// PostgreSQL 15 and the certificate files of a `localhost` server.
    struct Setup {
        server: PgServer,
        dir: tempfile::TempDir,
        root: PathBuf,
        cert: PathBuf,
        key: PathBuf,
        ca: Ca,
    }

    fn setup(tls: bool) -> Option<Setup> {
        if !servers_available() {
            eprintln!("{}", pg::SKIP_NOTICE);
            return None;
        }
        let pg15 = install_or_skip(PgVersion::V15)?;
        let ca = Ca::root("pgtls resumption real-server CA");
        let leaf = ca.leaf(LeafSpec::server("localhost"));
        let server_tls = tls.then(|| pg::ServerTls::new(leaf.chain_pem(), leaf.key_pkcs8_pem()));
        let hba = if tls { Hba::Host } else { Hba::HostNoSslOnly };
        let server = PgServer::start(&pg15, server_tls, hba).expect("start PostgreSQL 15");
        let dir = tempfile::tempdir().unwrap();
        let (root, cert, key) = (
            dir.path().join("root.crt"),
            dir.path().join("server.crt"),
            dir.path().join("server.key"),
        );
        std::fs::write(&root, ca.root_pem()).unwrap();
        std::fs::write(&cert, leaf.chain_pem()).unwrap();
        certs::write_private_file(&key, leaf.key_pkcs8_pem().as_bytes()).unwrap();
        Some(Setup {
            server,
            dir,
            root,
            cert,
            key,
            ca,
        })
    }

    impl Setup {
        /// The proxy in this process, with or without tickets: its port, log and reloader.
        fn start_proxy(
            &self,
            tickets: bool,
        ) -> (u16, Arc<Mutex<Vec<String>>>, tls_proxy::Reloader) {
            let options = tls_proxy::Options {
                listen: "127.0.0.1:0".into(),
                upstream: format!("127.0.0.1:{}", self.server.port),
                cert: self.cert.clone(),
                key: self.key.clone(),
                allow_plaintext: false,
                direct: true,
                ca: None,
                crl: None,
                crl_dir: None,
                startup_timeout: tls_proxy::DEFAULT_STARTUP_TIMEOUT,
                tickets,
            };
            let lines = Arc::new(Mutex::new(Vec::new()));
            let sink = lines.clone();
            let log: tls_proxy::Logger = Arc::new(move |line| {
                eprintln!("  proxy: {line}");
                sink.lock().unwrap().push(line);
            });
            let proxy = tls_proxy::Proxy::bind(&options, log).unwrap();
            let port = proxy.local_addr().unwrap().port();
            let reloader = proxy.reloader();
            std::thread::spawn(move || proxy.serve());
            (port, lines, reloader)
        }

        fn conninfo(&self, port: u16, extra: &str) -> String {
            format!(
                "host=localhost hostaddr=127.0.0.1 port={port} user={} dbname=postgres \
                 sslrootcert={} connect_timeout=10 {extra}",
                pg::SUPERUSER,
                self.root.display()
            )
        }

        /// One `Config` per conninfo, as a driver keeps it between connections.
        fn config(&self, port: u16, extra: &str, resumption: SessionResumption) -> Config {
            let env = Environment::empty().with_os_user("pgtls");
            let settings = ConnParams::parse(&self.conninfo(port, extra))
                .unwrap()
                .resolve(&env)
                .unwrap()
                .with_session_resumption(resumption);
            let mut targets = settings.to_configs().unwrap();
            targets.remove(0).1
        }
    }

    /// Connects with `config` to 127.0.0.1:`port` through libpq's plan and the startup to
    /// ReadyForQuery (the server's tickets arrive on the way): whether it resumed, or
    /// libpq's error.
    fn connect(config: &Config, port: u16) -> Result<bool, String> {
        let params = StartupParams {
            user: pg::SUPERUSER.into(),
            database: "postgres".into(),
            password: None,
            application_name: None,
            channel_binding: ChannelBindingMode::Prefer,
        };
        let connected = blocking::connect(
            config,
            Some(Duration::from_secs(10)),
            |_| TcpStream::connect(("127.0.0.1", port)),
            |stream: &mut Stream<TcpStream>| {
                let facts = TlsFacts {
                    tls: stream.is_tls(),
                    channel_binding: stream.session().and_then(|s| s.channel_binding().ok()),
                };
                run_startup(stream, &params, &facts).map_err(StartupError::from)
            },
        )
        .map_err(|failed| failed.to_string())?;
        let resumed = connected.stream.session().expect("TLS").resumed();
        Ok(resumed)
    }

    #[test]
    fn through_the_proxy_with_tickets_the_second_connection_resumes() {
        let Some(setup) = setup(false) else { return };
        let (port, log, _) = setup.start_proxy(true);
        let config = setup.config(port, "sslmode=verify-full", SessionResumption::in_memory());
        assert_eq!(connect(&config, port), Ok(false));
        assert_eq!(connect(&config, port), Ok(true));
        assert_eq!(connect(&config, port), Ok(true));
        assert!(log.lock().unwrap().iter().any(|l| l.contains(" resumed ")));
        // Resumption off (the default): never.
        let off = setup.config(port, "sslmode=verify-full", SessionResumption::disabled());
        assert_eq!(connect(&off, port), Ok(false));
        assert_eq!(connect(&off, port), Ok(false));
        // The probe's --resume, human and JSON.
        let options = ProbeOptions { resume: true };
        let env = Environment::empty().with_os_user("pgtls");
        let report = probe_with_options(
            &setup.conninfo(port, "sslmode=verify-full"),
            &env,
            options,
            &mut NoProgress,
        );
        assert!(report.ok, "{:?}", report.error);
        assert_eq!(report.resumed, Some(true));
        assert!(
            report.to_text().contains("resumed:      yes"),
            "{}",
            report.to_text()
        );
        assert_eq!(report.to_json()["resumed"], true);
        assert_eq!(report.to_json()["second_connection"], true);
    }

    #[test]
    fn through_the_proxy_without_tickets_nothing_resumes() {
        let Some(setup) = setup(false) else { return };
        let (port, _, _) = setup.start_proxy(false);
        let config = setup.config(port, "sslmode=verify-full", SessionResumption::in_memory());
        for _ in 0..3 {
            assert_eq!(connect(&config, port), Ok(false));
        }
        let env = Environment::empty().with_os_user("pgtls");
        let report = probe_with_options(
            &setup.conninfo(port, "sslmode=require"),
            &env,
            ProbeOptions { resume: true },
            &mut NoProgress,
        );
        assert!(report.ok, "{:?}", report.error);
        assert_eq!(report.resumed, Some(false));
        assert!(report
            .to_text()
            .contains("resumed:      no (full handshake: the server"));
    }

    #[test]
    fn postgresql_itself_never_resumes() {
        let Some(setup) = setup(true) else { return };
        let port = setup.server.port;
        for extra in [
            "sslmode=verify-full",
            "sslmode=require",
            "sslmode=verify-full sslmaxprotocolversion=TLSv1.2",
        ] {
            let extra = extra.replace("sslmaxprotocolversion", "ssl_max_protocol_version");
            let config = setup.config(port, &extra, SessionResumption::in_memory());
            assert_eq!(connect(&config, port), Ok(false), "{extra}");
            assert_eq!(
                connect(&config, port),
                Ok(false),
                "{extra}: PostgreSQL issues no tickets"
            );
        }
    }

    #[test]
    fn a_proxy_reloaded_with_new_keys_and_a_bad_certificate_fails_as_without_resumption() {
        let Some(setup) = setup(false) else { return };
        let (port, _, reloader) = setup.start_proxy(true);
        let config = setup.config(port, "sslmode=verify-full", SessionResumption::in_memory());
        assert_eq!(connect(&config, port), Ok(false));
        assert_eq!(connect(&config, port), Ok(true));
        // The same certificate, new ticket keys: the ticket is refused, the full handshake
        // verifies.
        reloader.reload().unwrap();
        assert_eq!(connect(&config, port), Ok(false));
        assert_eq!(connect(&config, port), Ok(true));
        // A certificate for another name, new keys again.
        let wrong = setup.ca.leaf(LeafSpec::server("elsewhere.example.com"));
        std::fs::write(&setup.cert, wrong.chain_pem()).unwrap();
        certs::write_private_file(&setup.key, wrong.key_pkcs8_pem().as_bytes()).unwrap();
        reloader.reload().unwrap();
        let with_ticket = connect(&config, port).unwrap_err();
        let fresh = setup.config(port, "sslmode=verify-full", SessionResumption::disabled());
        let without = connect(&fresh, port).unwrap_err();
        assert_eq!(with_ticket, without);
        assert!(without.contains("does not match host name"), "{without}");
        let _ = &setup.dir;
    }

    /// `pgtls::tokio_postgres::connect` scopes a port-less config to each host's port, so
    /// the second connection with the same config resumes.
    #[tokio::test]
    async fn tokio_postgres_connect_resumes_through_the_proxy() {
        let Some(setup) = setup(false) else { return };
        let (port, log, _) = setup.start_proxy(true);
        let config = Config::builder()
            .sslmode(pgtls::SslMode::VerifyFull)
            .host("localhost")
            .root_certificates(
                pgtls::RootCertificates::from_pem(setup.ca.root_pem().as_bytes()).unwrap(),
            )
            .session_resumption(SessionResumption::in_memory())
            .build()
            .unwrap();
        assert_eq!(config.port(), None);
        let mut pg = tokio_postgres::Config::new();
        pg.host("localhost")
            .hostaddr(std::net::Ipv4Addr::LOCALHOST.into())
            .port(port)
            .user(pg::SUPERUSER)
            .dbname("postgres");
        for _ in 0..2 {
            let (client, connection) = pgtls::tokio_postgres::connect(&pg, &config).await.unwrap();
            let running = tokio::spawn(connection);
            let row = client.query_one("SELECT 1", &[]).await.unwrap();
            assert_eq!(row.get::<_, i32>(0), 1);
            drop(client);
            let _ = running.await;
        }
        let lines = log.lock().unwrap().clone();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(!lines[0].contains(" resumed "), "{lines:?}");
        assert!(lines[1].contains(" resumed "), "{lines:?}");
    }

    /// pgbouncer 1.18 (OpenSSL) issues TLS 1.3 tickets and keeps a TLS 1.2 session cache.
    #[test]
    fn pgbouncer_lets_the_second_verify_full_connection_resume() {
        use pgtls_testkit::pgbouncer::{self, BouncerTls, PgBouncer};
        if !servers_available() {
            eprintln!("{}", pg::SKIP_NOTICE);
            return;
        }
        let Some(binary) = pgbouncer::pgbouncer_or_skip() else {
            return;
        };
        let Some(setup) = setup(false) else { return };
        let leaf = setup.ca.leaf(LeafSpec::server("localhost"));
        let tls = BouncerTls::new(leaf.chain_pem(), leaf.key_pkcs8_pem());
        // pgbouncer reaches PostgreSQL over plaintext TCP.
        let bouncer = PgBouncer::start(&binary, &setup.server, &tls).expect("start pgbouncer");
        let port = bouncer.port;
        for extra in [
            "sslmode=verify-full",
            "sslmode=verify-full ssl_max_protocol_version=TLSv1.2",
        ] {
            let config = setup.config(port, extra, SessionResumption::in_memory());
            assert_eq!(connect(&config, port), Ok(false), "{extra}: first");
            assert_eq!(connect(&config, port), Ok(true), "{extra}: second");
            // Off: pgbouncer would resume, pgtls never offers.
            let off = setup.config(port, extra, SessionResumption::disabled());
            assert_eq!(connect(&off, port), Ok(false), "{extra}: off");
            assert_eq!(connect(&off, port), Ok(false), "{extra}: off");
        }
        // The probe's verdict, both ways.
        let env = Environment::empty().with_os_user("pgtls");
        let conninfo = setup.conninfo(port, "sslmode=verify-full");
        let resumed = probe_with_options(
            &conninfo,
            &env,
            ProbeOptions { resume: true },
            &mut NoProgress,
        );
        assert!(resumed.ok, "{:?}", resumed.error);
        assert_eq!(resumed.resumed, Some(true));
        assert!(
            resumed.to_text().contains("resumed:      yes"),
            "{}",
            resumed.to_text()
        );
        let single = probe_with_options(&conninfo, &env, ProbeOptions::default(), &mut NoProgress);
        assert!(single.ok, "{:?}", single.error);
        assert_eq!(single.resumed, Some(false));
        assert!(single
            .to_text()
            .contains("resumed:      no (full handshake)"));
        drop(bouncer);
    }
}
