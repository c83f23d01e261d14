//! Tests of the shared fixtures (`tests/support/`) themselves, against a plain rustls client
//! driven in memory: if these fail, every test built on the fixtures is suspect.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pgtls_testkit::certs::*;
use pgtls_testkit::fake_server::*;
use proptest::prelude::*;
use rustls::crypto::aws_lc_rs;
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use x509_parser::prelude::*;

// ---------------------------------------------------------------------------------------------
// Harness

fn client_config(
    roots: &[CertificateDer<'static>],
    client_cert: Option<&Leaf>,
) -> Arc<ClientConfig> {
    let mut store = RootCertStore::empty();
    for r in roots {
        store.add(r.clone()).expect("root");
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(store);
    let mut config = match client_cert {
        Some(leaf) => builder
            .with_client_auth_cert(leaf.chain.clone(), leaf.key.clone_key())
            .expect("client cert"),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
    Arc::new(config)
}

fn client(config: Arc<ClientConfig>, host: &str) -> ClientConnection {
    let name = ServerName::try_from(host.to_owned()).expect("server name");
    ClientConnection::new(config, name).expect("client connection")
}

/// Feeds `bytes` to the server in `chunk`-sized pieces; a closed server drops the rest.
fn feed(server: &mut FakeServer, bytes: &[u8], chunk: usize) {
    for piece in bytes.chunks(chunk.max(1)) {
        if server.handle_client_bytes(piece).is_err() {
            return;
        }
    }
}

/// Drives `client` against `server` until neither side has anything to say (bounded).
fn pump(
    client: &mut ClientConnection,
    server: &mut FakeServer,
    chunk: usize,
) -> Result<(), rustls::Error> {
    for _ in 0..10_000 {
        let mut c2s = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut c2s).expect("write_tls to Vec");
        }
        feed(server, &c2s, chunk);
        let s2c = server.take_output();
        for piece in s2c.chunks(chunk.max(1)) {
            let mut rd = piece;
            while !rd.is_empty() {
                client.read_tls(&mut rd).expect("read_tls from slice");
                client.process_new_packets()?;
            }
        }
        if c2s.is_empty() && s2c.is_empty() {
            return Ok(());
        }
    }
    panic!("pump did not settle");
}

fn client_plaintext(client: &mut ClientConnection) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match client.reader().read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => return out,
        }
    }
}

fn tags(bytes: &[u8]) -> Vec<u8> {
    parse_backend_messages(bytes)
        .into_iter()
        .map(|(t, _)| t)
        .collect()
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pgtls-fixtures-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, contents).expect("write temp file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn openssl_or_skip(test: &str) -> bool {
    if openssl_path().is_some() {
        true
    } else {
        eprintln!("NOTICE: {test}: openssl CLI not found, skipping the openssl part");
        false
    }
}

struct Pki {
    ca: Ca,
    leaf: Leaf,
}

fn pki(host: &str) -> Pki {
    let ca = Ca::root("pgtls test root");
    let leaf = ca.leaf(LeafSpec::server(host));
    Pki { ca, leaf }
}

fn tls_server(leaf: &Leaf) -> FakeServer {
    let config = default_server_tls_config(leaf.chain.clone(), leaf.key.clone_key());
    FakeServer::new(ServerScript::tls(config))
}

// ---------------------------------------------------------------------------------------------
// FakeServer: TLS paths

#[test]
fn ssl_request_then_tls_completes_with_sni_alpn_and_startup() {
    let p = pki("db.example.com");
    for chunk in [1usize, 7, 1 << 16] {
        let mut server = tls_server(&p.leaf);
        feed(&mut server, &SSL_REQUEST, chunk);
        assert_eq!(server.take_output(), b"S", "chunk {chunk}");
        assert!(server.saw_ssl_request());

        let mut c = client(client_config(&[p.ca.cert_der()], None), "db.example.com");
        pump(&mut c, &mut server, chunk).expect("handshake");
        assert!(!c.is_handshaking());
        assert!(server.is_handshake_complete());
        assert_eq!(server.sni().as_deref(), Some("db.example.com"));
        assert_eq!(server.alpn().as_deref(), Some(ALPN_POSTGRESQL));
        assert_eq!(c.alpn_protocol(), Some(ALPN_POSTGRESQL));
        assert!(!server.saw_direct_client_hello());
        assert!(!server.client_cert_presented());

        let startup = startup_message("alice", "app");
        std::io::Write::write_all(&mut c.writer(), &startup).unwrap();
        pump(&mut c, &mut server, chunk).expect("startup");
        assert_eq!(server.tls_plaintext_received(), &startup[..]);
        assert!(server.plaintext_received().is_empty());
        let seen = &server.startups()[0];
        assert!(seen.over_tls);
        assert_eq!(seen.protocol, PROTOCOL_3_0);
        assert_eq!(seen.param("user"), Some("alice"));
        assert_eq!(seen.param("database"), Some("app"));
        assert_eq!(tags(&client_plaintext(&mut c)), b"RZ");
        assert!(!server.is_closed());

        // Session traffic both ways, then a clean close.
        server.send_app_data(b"hello");
        std::io::Write::write_all(&mut c.writer(), b"ping").unwrap();
        pump(&mut c, &mut server, chunk).expect("session");
        assert_eq!(client_plaintext(&mut c), b"hello");
        assert!(server.tls_plaintext_received().ends_with(b"ping"));
        c.send_close_notify();
        pump(&mut c, &mut server, chunk).expect("close");
        assert!(server.peer_sent_close_notify());
        assert!(server.is_closed());
    }
}

#[test]
fn intermediate_chain_is_served_and_verifies() {
    let root = Ca::root("root");
    let inter = root.intermediate("intermediate");
    let leaf = inter.leaf(LeafSpec::server("db.example.com"));
    assert_eq!(leaf.chain.len(), 2);
    assert_eq!(leaf.chain[1], inter.cert_der());
    assert_eq!(inter.root_der(), root.cert_der());
    let mut server = tls_server(&leaf);
    feed(&mut server, &SSL_REQUEST, 8);
    assert_eq!(server.take_output(), b"S");
    let mut c = client(client_config(&[root.cert_der()], None), "db.example.com");
    pump(&mut c, &mut server, 1).expect("handshake through an intermediate");
    assert!(server.is_handshake_complete());
}

#[test]
fn every_key_kind_handshakes() {
    for kind in KeyKind::ALL {
        let ca = Ca::root_with("root", kind);
        let leaf = ca.leaf(LeafSpec::server("db.example.com").key(kind));
        assert_eq!(leaf.kind, kind);
        let mut server = tls_server(&leaf);
        feed(&mut server, &SSL_REQUEST, 8);
        assert_eq!(server.take_output(), b"S");
        let mut c = client(client_config(&[ca.cert_der()], None), "db.example.com");
        pump(&mut c, &mut server, 1 << 16).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert!(server.is_handshake_complete(), "{kind:?}");
    }
}

#[test]
fn wrong_host_and_unknown_ca_fail_and_the_server_sees_the_alert() {
    let p = pki("db.example.com");
    let mut server = tls_server(&p.leaf);
    feed(&mut server, &SSL_REQUEST, 8);
    server.take_output();
    let mut c = client(client_config(&[p.ca.cert_der()], None), "other.example.com");
    assert!(pump(&mut c, &mut server, 1 << 16).is_err());
    // The client's alert reaches the server, which closes.
    let mut alert = Vec::new();
    while c.wants_write() {
        c.write_tls(&mut alert).unwrap();
    }
    feed(&mut server, &alert, 1 << 16);
    assert!(server.tls_error().is_some());
    assert!(server.is_closed());

    let other = Ca::root("other root");
    let mut server = tls_server(&p.leaf);
    feed(&mut server, &SSL_REQUEST, 8);
    server.take_output();
    let mut c = client(client_config(&[other.cert_der()], None), "db.example.com");
    assert!(pump(&mut c, &mut server, 1 << 16).is_err());
}

#[test]
fn direct_tls_is_accepted_by_pg17_and_closed_by_pre17() {
    let p = pki("db.example.com");
    let config = default_server_tls_config(p.leaf.chain.clone(), p.leaf.key.clone_key());

    let mut server = FakeServer::new(ServerScript::tls(config.clone()));
    let mut c = client(client_config(&[p.ca.cert_der()], None), "db.example.com");
    pump(&mut c, &mut server, 3).expect("direct handshake");
    assert!(server.saw_direct_client_hello());
    assert!(!server.saw_ssl_request());
    assert!(server.is_handshake_complete());
    assert_eq!(server.alpn().as_deref(), Some(ALPN_POSTGRESQL));

    let mut server = FakeServer::new(ServerScript::pre17_tls(config));
    let mut c = client(client_config(&[p.ca.cert_der()], None), "db.example.com");
    pump(&mut c, &mut server, 1 << 16).expect("no bytes come back");
    assert!(server.saw_direct_client_hello());
    assert!(server.is_closed());
    assert!(!server.is_handshake_complete());
    assert!(server.take_output().is_empty());
}

#[test]
fn client_certificates_required_optional_and_presented() {
    let p = pki("db.example.com");
    let client_ca = Ca::root("client root");
    let alice = client_ca.leaf(LeafSpec::client("alice"));
    let required = server_tls_config(
        p.leaf.chain.clone(),
        p.leaf.key.clone_key(),
        Some(ALPN_POSTGRESQL),
        Some(vec![client_ca.cert_der()]),
    );

    // Required, none given: the server fails the handshake, emits an alert, closes.
    let mut server = FakeServer::new(ServerScript::tls(required.clone()));
    feed(&mut server, &SSL_REQUEST, 8);
    server.take_output();
    let mut c = client(client_config(&[p.ca.cert_der()], None), "db.example.com");
    let r = pump(&mut c, &mut server, 1 << 16);
    assert!(
        server.tls_error().is_some(),
        "server accepted no client cert"
    );
    assert!(server.is_closed());
    assert!(r.is_err(), "the server's alert reaches the client");

    // Required, given.
    let mut server = FakeServer::new(ServerScript::tls(required));
    feed(&mut server, &SSL_REQUEST, 8);
    server.take_output();
    let mut c = client(
        client_config(&[p.ca.cert_der()], Some(&alice)),
        "db.example.com",
    );
    pump(&mut c, &mut server, 1 << 16).expect("mutual TLS");
    assert!(server.client_cert_presented());
    assert_eq!(server.client_certs()[0], alice.cert);

    // Optional, none given.
    let opts = ServerTlsOptions {
        client_auth: ClientAuth::Optional(vec![client_ca.cert_der()]),
        ..ServerTlsOptions::default()
    };
    let optional = server_tls_config_with(p.leaf.chain.clone(), p.leaf.key.clone_key(), &opts);
    let mut server = FakeServer::new(ServerScript::tls(optional));
    let mut c = client(client_config(&[p.ca.cert_der()], None), "db.example.com");
    pump(&mut c, &mut server, 1 << 16).expect("optional client auth");
    assert!(server.is_handshake_complete());
    assert!(!server.client_cert_presented());
}

#[test]
fn no_alpn_server_and_after_tls_behaviours() {
    let p = pki("db.example.com");
    let no_alpn = server_tls_config(p.leaf.chain.clone(), p.leaf.key.clone_key(), None, None);
    let mut server = FakeServer::new(ServerScript::tls(no_alpn));
    let mut c = client(client_config(&[p.ca.cert_der()], None), "db.example.com");
    pump(&mut c, &mut server, 1 << 16).expect("handshake");
    assert_eq!(server.alpn(), None);
    assert_eq!(c.alpn_protocol(), None);

    let config = default_server_tls_config(p.leaf.chain.clone(), p.leaf.key.clone_key());
    let run = |after: AfterTls| {
        let mut server =
            FakeServer::new(ServerScript::tls(config.clone()).with_after_tls(after.clone()));
        let mut c = client(client_config(&[p.ca.cert_der()], None), "db.example.com");
        let r = pump(&mut c, &mut server, 1 << 16);
        (server, c, r)
    };

    let (server, mut c, r) = run(AfterTls::Greet(b"R".to_vec()));
    r.expect("greet");
    assert_eq!(client_plaintext(&mut c), b"R");
    assert!(!server.is_closed());

    let (mut server, mut c, r) = run(AfterTls::Echo);
    r.expect("echo");
    std::io::Write::write_all(&mut c.writer(), b"abc").unwrap();
    pump(&mut c, &mut server, 1).expect("echo");
    assert_eq!(client_plaintext(&mut c), b"abc");
    assert!(server.startups().is_empty());

    let (server, mut c, r) = run(AfterTls::CloseNotify);
    r.expect("close_notify is not an error");
    assert!(server.is_closed());
    assert!(c.reader().read(&mut [0u8; 8]).is_ok_and(|n| n == 0));

    let (server, mut c, r) = run(AfterTls::Close);
    r.expect("truncation is seen only when reading");
    assert!(server.is_closed());
    assert!(client_plaintext(&mut c).is_empty());

    let (_server, _c, r) = run(AfterTls::Garbage(b"\x00garbage".to_vec()));
    assert!(
        r.is_err(),
        "garbage after the handshake must break the client"
    );
}

// ---------------------------------------------------------------------------------------------
// FakeServer: plaintext and reply scripts

#[test]
fn n_then_plaintext_startup_is_accepted() {
    let mut server = FakeServer::new(ServerScript::plaintext_only());
    let mut bytes = SSL_REQUEST.to_vec();
    bytes.extend_from_slice(&startup_message("bob", "db"));
    for b in &bytes[..8] {
        server.handle_client_bytes(std::slice::from_ref(b)).unwrap();
    }
    assert_eq!(server.take_output(), b"N");
    server.handle_client_bytes(&bytes[8..]).unwrap();
    let out = server.take_output();
    assert_eq!(tags(&out), b"RZ");
    assert_eq!(parse_backend_messages(&out)[1].1, b"I");
    assert_eq!(server.plaintext_received(), &bytes[8..]);
    assert!(!server.startups()[0].over_tls);
    assert_eq!(server.startups()[0].param("user"), Some("bob"));
    assert!(!server.is_closed());

    // A TLS-capable server scripted to say N behaves the same.
    let p = pki("db.example.com");
    let config = default_server_tls_config(p.leaf.chain.clone(), p.leaf.key.clone_key());
    let mut server = FakeServer::new(ServerScript::tls(config).with_reply(Reply::N));
    server.handle_client_bytes(&bytes).unwrap();
    let out = server.take_output();
    assert_eq!(out[0], b'N');
    assert_eq!(tags(&out[1..]), b"RZ");
}

#[test]
fn first_packet_startup_is_plaintext_like_sslmode_disable() {
    let mut server = FakeServer::new(ServerScript::plaintext_only());
    server
        .handle_client_bytes(&startup_message("carol", "x"))
        .unwrap();
    assert!(!server.saw_ssl_request());
    assert_eq!(tags(&server.take_output()), b"RZ");
    assert_eq!(server.startups().len(), 1);
}

#[test]
fn startup_rejections_carry_sqlstate_and_close() {
    let mut server = FakeServer::new(
        ServerScript::plaintext_only().with_startup(StartupBehaviour::RejectPlaintext),
    );
    server.handle_client_bytes(&SSL_REQUEST).unwrap();
    assert_eq!(server.take_output(), b"N");
    server
        .handle_client_bytes(&startup_message("bob", "db"))
        .unwrap();
    let msgs = parse_backend_messages(&server.take_output());
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].0, b'E');
    let fields = error_fields(&msgs[0].1);
    assert!(fields.contains(&(b'C', "28000".to_owned())));
    assert!(fields.contains(&(b'S', "FATAL".to_owned())));
    let m = &fields.iter().find(|(c, _)| *c == b'M').unwrap().1;
    assert!(
        m.starts_with("no pg_hba.conf entry") && m.ends_with("no encryption"),
        "{m}"
    );
    assert!(server.is_closed());
    assert_eq!(
        server.handle_client_bytes(b"more"),
        Err(FakeServerError::Closed)
    );

    // RejectTls: rejected over TLS, with the error inside TLS.
    let p = pki("db.example.com");
    let config = default_server_tls_config(p.leaf.chain.clone(), p.leaf.key.clone_key());
    let mut server =
        FakeServer::new(ServerScript::tls(config).with_startup(StartupBehaviour::RejectTls));
    let mut c = client(client_config(&[p.ca.cert_der()], None), "db.example.com");
    pump(&mut c, &mut server, 1 << 16).unwrap();
    std::io::Write::write_all(&mut c.writer(), &startup_message("u", "d")).unwrap();
    pump(&mut c, &mut server, 1 << 16).unwrap();
    let msgs = parse_backend_messages(&client_plaintext(&mut c));
    assert_eq!(msgs[0].0, b'E');
    let m = error_fields(&msgs[0].1);
    assert!(m
        .iter()
        .any(|(c, v)| *c == b'M' && v.ends_with("SSL encryption")));
    assert!(server.is_closed());

    // Error { 57P03 } applies to any transport.
    let mut server = FakeServer::new(ServerScript::plaintext_only().with_startup(
        StartupBehaviour::Error {
            sqlstate: "57P03".into(),
            message: "the database system is starting up".into(),
        },
    ));
    server
        .handle_client_bytes(&startup_message("u", "d"))
        .unwrap();
    let msgs = parse_backend_messages(&server.take_output());
    assert!(error_fields(&msgs[0].1).contains(&(b'C', "57P03".to_owned())));
}

#[test]
fn reply_scripts_produce_exactly_their_bytes() {
    let p = pki("db.example.com");
    let config = default_server_tls_config(p.leaf.chain.clone(), p.leaf.key.clone_key());
    let answer = |script: ServerScript| {
        let mut server = FakeServer::new(script);
        server.handle_client_bytes(&SSL_REQUEST).unwrap();
        let out = server.take_output();
        (out, server.is_closed())
    };

    let (out, closed) = answer(ServerScript::replying(Reply::E));
    assert_eq!(out[0], b'E');
    assert_eq!(tags(&out), b"E");
    assert!(closed);

    let (out, closed) = answer(ServerScript::replying(Reply::Byte(b'X')));
    assert_eq!((out.as_slice(), closed), (&b"X"[..], false));

    let (out, _) = answer(
        ServerScript::tls(config.clone()).with_reply(Reply::SThenBytes(b"\x15\x03\x03".to_vec())),
    );
    assert_eq!(out, b"S\x15\x03\x03");

    let (out, _) = answer(ServerScript::replying(Reply::NThenBytes(b"Zjunk".to_vec())));
    assert_eq!(out, b"NZjunk");

    let (out, closed) = answer(ServerScript::replying(Reply::CloseAfterRequest));
    assert!(out.is_empty() && closed);

    let (out, closed) = answer(ServerScript::replying(Reply::Silent));
    assert!(out.is_empty() && !closed);

    // A server without TLS config answers S as N.
    let (out, _) = answer(ServerScript::replying(Reply::S));
    assert_eq!(out, b"N");

    // GSSENCRequest is answered N, then SSLRequest as scripted.
    let mut server = FakeServer::new(ServerScript::tls(config));
    server.handle_client_bytes(&GSSENC_REQUEST).unwrap();
    assert_eq!(server.take_output(), b"N");
    server.handle_client_bytes(&SSL_REQUEST).unwrap();
    assert_eq!(server.take_output(), b"S");
    assert!(server.saw_gssenc_request() && server.saw_ssl_request());
}

#[test]
fn backend_message_parsing_stops_at_partial_messages() {
    let mut bytes = authentication_ok_ready();
    assert_eq!(tags(&bytes), b"RZ");
    bytes.extend_from_slice(&[b'E', 0, 0, 0, 50, b'S']);
    assert_eq!(tags(&bytes), b"RZ");
    assert!(parse_backend_messages(&[b'R', 0, 0, 0, 2]).is_empty());
    let s = startup_message("u", "d");
    assert_eq!(
        u32::from_be_bytes(s[..4].try_into().unwrap()) as usize,
        s.len()
    );
}

proptest! {
    // 64 cases by default; `PROPTEST_CASES` runs more.
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64),
            ..ProptestConfig::default()
        })]

    /// Arbitrary client bytes in arbitrary chunks never panic the server and its output stays
    /// small (nothing it sends grows with garbage input).
    #[test]
    fn fake_server_never_panics_on_client_bytes(
        prefix in prop_oneof![Just(Vec::new()), Just(SSL_REQUEST.to_vec()), Just(vec![0x16u8])],
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        chunks in proptest::collection::vec(0usize..64, 1..16),
        script_pick in 0u8..4,
    ) {
        let config = shared_config();
        let script = match script_pick {
            0 => ServerScript::tls(config),
            1 => ServerScript::plaintext_only(),
            2 => ServerScript::tls(config).with_after_tls(AfterTls::Echo),
            _ => ServerScript::replying(Reply::NThenBytes(vec![1, 2, 3])),
        };
        let mut server = FakeServer::new(script);
        let mut input = prefix;
        input.extend_from_slice(&bytes);
        let mut rest = &input[..];
        let mut i = 0;
        let mut total_out = 0;
        // Empty chunks are offered too, but the loop is bounded: with only zero-sized
        // chunks drawn it would otherwise never end.
        let mut steps = 0;
        while !rest.is_empty() && steps < 4 * input.len() + 64 {
            steps += 1;
            let n = chunks[i % chunks.len()].min(rest.len());
            i += 1;
            match server.handle_client_bytes(&rest[..n]) {
                Ok(used) => prop_assert_eq!(used, n),
                Err(FakeServerError::Closed) => break,
            }
            rest = &rest[n..];
            total_out += server.take_output().len();
        }
        prop_assert!(total_out <= 64 * 1024 + 2 * input.len());
    }
}

fn shared_config() -> Arc<rustls::ServerConfig> {
    use std::sync::OnceLock;
    static CONFIG: OnceLock<Arc<rustls::ServerConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let leaf = self_signed_leaf(LeafSpec::server("db.example.com"));
            default_server_tls_config(leaf.chain.clone(), leaf.key.clone_key())
        })
        .clone()
}

// ---------------------------------------------------------------------------------------------
// Certificates

fn parse(der: &[u8]) -> X509Certificate<'_> {
    let (rest, cert) = parse_x509_certificate(der).expect("parses");
    assert!(rest.is_empty());
    cert
}

#[test]
fn v3_leaf_has_names_and_eku() {
    let ca = Ca::root("root");
    let leaf = ca.leaf(
        LeafSpec::server("db.example.com")
            .dns("192.0.2.1")
            .ip("192.0.2.7".parse().unwrap()),
    );
    let cert = parse(&leaf.cert);
    assert_eq!(cert.version(), X509Version::V3);
    let san = cert.subject_alternative_name().unwrap().unwrap();
    let names: Vec<String> = san
        .value
        .general_names
        .iter()
        .map(|n| format!("{n}"))
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(matches!(
        san.value.general_names[1],
        GeneralName::DNSName("192.0.2.1")
    ));
    assert!(matches!(
        san.value.general_names[2],
        GeneralName::IPAddress(&[192, 0, 2, 7])
    ));
    assert!(
        cert.extended_key_usage()
            .unwrap()
            .unwrap()
            .value
            .server_auth
    );
    assert_eq!(
        cert.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "db.example.com"
    );
    assert_eq!(cert.raw_serial().last(), leaf.serial.last());

    let ca_der = ca.cert_der();
    let ca_cert = parse(&ca_der);
    let ku = ca_cert.key_usage().unwrap().unwrap().value;
    assert!(ku.key_cert_sign() && ku.crl_sign());
    assert!(ca_cert.basic_constraints().unwrap().unwrap().value.ca);

    let client = ca.leaf(LeafSpec::client("alice").no_cn().dns("x"));
    assert!(parse(&client.cert)
        .subject()
        .iter_common_name()
        .next()
        .is_none());
}

#[test]
fn v1_leaf_is_v1_without_extensions_and_verifies_with_openssl() {
    let ca = Ca::root("v3 root");
    let leaf = ca.leaf(LeafSpec::cn_only("db.example.com").v1());
    let cert = parse(&leaf.cert);
    assert_eq!(cert.version(), X509Version::V1);
    assert!(cert.extensions().is_empty());
    assert_eq!(cert.issuer(), parse(&ca.cert_der()).subject());

    // webpki refuses v1, which is why pgtls needs these fixtures.
    let mut server = tls_server(&leaf);
    let mut c = client(client_config(&[ca.cert_der()], None), "db.example.com");
    let err = pump(&mut c, &mut server, 1 << 16).unwrap_err();
    assert!(
        format!("{err:?}").contains("UnsupportedCertVersion"),
        "{err:?}"
    );

    if openssl_or_skip("v1 leaf") {
        let dir = TempDir::new("v1");
        let root = dir.write("root.pem", &ca.cert_pem());
        let good = dir.write("leaf.pem", &leaf.cert_pem);
        assert_eq!(openssl_verify(&root, None, None, &good).unwrap(), Ok(()));
        // The check can fail: a leaf from another CA does not verify.
        let stranger = Ca::root("v3 root").leaf(LeafSpec::cn_only("db.example.com").v1());
        let bad = dir.write("bad.pem", &stranger.cert_pem);
        assert!(openssl_verify(&root, None, None, &bad).unwrap().is_err());
    }
}

#[test]
fn v1_root_and_v1_self_signed_leaf() {
    let root = Ca::v1_root("v1 root");
    let root_der = root.cert_der();
    let root_cert = parse(&root_der);
    assert_eq!(root_cert.version(), X509Version::V1);
    assert!(root_cert.extensions().is_empty());
    assert!(root.is_v1());
    let leaf = root.leaf(
        LeafSpec::server("db.example.com")
            .v1()
            .key(KeyKind::Rsa2048),
    );
    assert_eq!(parse(&leaf.cert).version(), X509Version::V1);
    let v3_leaf = root.leaf(LeafSpec::server("db.example.com"));
    assert_eq!(parse(&v3_leaf.cert).version(), X509Version::V3);

    let ss = self_signed_leaf(LeafSpec::cn_only("db.example.com").v1());
    let ss_cert = parse(&ss.cert);
    assert_eq!(ss_cert.version(), X509Version::V1);
    assert_eq!(ss_cert.issuer(), ss_cert.subject());
    assert_eq!(ss.chain, vec![ss.cert.clone()]);

    if openssl_or_skip("v1 root") {
        let dir = TempDir::new("v1root");
        let r = dir.write("root.pem", &root.cert_pem());
        for (name, l) in [("v1.pem", &leaf), ("v3.pem", &v3_leaf)] {
            let f = dir.write(name, &l.cert_pem);
            assert_eq!(
                openssl_verify(&r, None, None, &f).unwrap(),
                Ok(()),
                "{name}"
            );
        }
        let f = dir.write("ss.pem", &ss.cert_pem);
        assert_eq!(openssl_verify(&f, None, None, &f).unwrap(), Ok(()));
    }
}

#[test]
fn openssl_recipe_makes_a_v1_server_certificate() {
    if !openssl_or_skip("openssl recipe") {
        return;
    }
    let dir = TempDir::new("recipe");
    let (root, server, key) = openssl_v1_recipe(dir.path(), "db.example.com").expect("recipe");
    let pem = std::fs::read(&server).unwrap();
    assert!(
        !pem.starts_with(b"-----"),
        "the -text dump precedes the PEM block"
    );
    let der = CertificateDer::from_pem_slice(&pem).expect("PEM inside the -text output");
    let cert = parse(&der);
    assert_eq!(
        cert.version(),
        X509Version::V1,
        "OpenSSL 3.0 x509 -req makes v1"
    );
    assert!(cert.extensions().is_empty());
    let root_der = CertificateDer::from_pem_file(&root).unwrap();
    assert_eq!(parse(&root_der).version(), X509Version::V3);
    PrivateKeyDer::from_pem_file(&key).expect("key parses");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(openssl_verify(&root, None, None, &server).unwrap(), Ok(()));
}

#[test]
fn crl_lists_the_revoked_serial_and_openssl_honours_it() {
    let ca = Ca::root("crl root");
    let revoked = ca.leaf(LeafSpec::server("db.example.com").serial(&[0x01, 0x23, 0x45]));
    let fine = ca.leaf(LeafSpec::server("db.example.com"));
    assert_eq!(revoked.serial, vec![0x01, 0x23, 0x45]);
    let crl = ca.crl_now(&[&revoked]);
    let (rest, parsed) = parse_x509_crl(&crl).expect("CRL parses");
    assert!(rest.is_empty());
    let serials: Vec<Vec<u8>> = parsed
        .iter_revoked_certificates()
        .map(|r| r.serial().to_bytes_be())
        .collect();
    assert_eq!(serials, vec![revoked.serial.clone()]);
    assert!(!serials.contains(&fine.serial));
    assert_eq!(parsed.issuer(), parse(&ca.cert_der()).subject());
    assert!(parsed.next_update().is_some());

    let inter = ca.intermediate("crl intermediate");
    let under = inter.leaf(LeafSpec::server("db.example.com"));
    let inter_crl = inter.crl_now(&[]);
    assert_eq!(
        parse_x509_crl(&inter_crl)
            .unwrap()
            .1
            .iter_revoked_certificates()
            .count(),
        0
    );

    if openssl_or_skip("crl") {
        let dir = TempDir::new("crl");
        let root = dir.write("root.pem", &ca.cert_pem());
        let crl_file = dir.write("root.crl", &crl_pem(&crl));
        let r = dir.write("revoked.pem", &revoked.cert_pem);
        let f = dir.write("fine.pem", &fine.cert_pem);
        assert_eq!(
            openssl_verify(&root, None, Some(&crl_file), &f).unwrap(),
            Ok(())
        );
        let err = openssl_verify(&root, None, Some(&crl_file), &r)
            .unwrap()
            .unwrap_err();
        assert!(err.contains("revoked"), "{err}");

        // Chain through an intermediate with a CRL for each CA.
        let both = dir.write("both.crl", &(crl_pem(&crl) + &crl_pem(&inter_crl)));
        let inter_pem = dir.write("inter.pem", &inter.cert_pem());
        let u = dir.write("under.pem", &under.cert_pem);
        assert_eq!(
            openssl_verify(&root, Some(&inter_pem), Some(&both), &u).unwrap(),
            Ok(())
        );
        // Missing the intermediate's CRL fails, as libpq's CRL rule expects.
        assert!(openssl_verify(&root, Some(&inter_pem), Some(&crl_file), &u)
            .unwrap()
            .is_err());
    }
}

#[test]
fn validity_helpers_move_the_dates() {
    let now = ::time::OffsetDateTime::now_utc().unix_timestamp();
    let ca = Ca::root("time root");
    let expired = ca.leaf(LeafSpec::server("db.example.com").expired());
    let future = ca.leaf(LeafSpec::server("db.example.com").not_yet_valid());
    let current = ca.leaf(LeafSpec::server("db.example.com"));
    let e = parse(&expired.cert);
    assert!(e.validity().not_after.timestamp() < now);
    assert!(e.validity().not_before.timestamp() < e.validity().not_after.timestamp());
    let f = parse(&future.cert);
    assert!(f.validity().not_before.timestamp() > now);
    let c = parse(&current.cert);
    assert!(c.validity().not_before.timestamp() <= now && now < c.validity().not_after.timestamp());

    // rustls agrees: expired fails, current passes.
    for (leaf, ok) in [(&expired, false), (&future, false), (&current, true)] {
        let mut server = tls_server(leaf);
        let mut c = client(client_config(&[ca.cert_der()], None), "db.example.com");
        assert_eq!(pump(&mut c, &mut server, 1 << 16).is_ok(), ok);
    }
}

#[test]
fn key_encodings() {
    let ca = Ca::root("keys");
    let ec = ca.leaf(LeafSpec::client("alice").key(KeyKind::EcdsaP384));
    let rsa = ca.leaf(LeafSpec::client("alice").key(KeyKind::Rsa2048));
    let ed = ca.leaf(LeafSpec::client("alice").key(KeyKind::Ed25519));

    assert!(ec.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert_eq!(ec.key_pkcs8_pem(), ec.key_pem.replace("\r\n", "\n"));
    assert!(matches!(
        PrivateKeyDer::from_pem_slice(ec.key_pkcs8_pem().as_bytes()).unwrap(),
        PrivateKeyDer::Pkcs8(_)
    ));
    let sec1 = ec.key_sec1_pem().expect("EC key has SEC1");
    assert!(sec1.starts_with("-----BEGIN EC PRIVATE KEY-----"));
    assert!(matches!(
        PrivateKeyDer::from_pem_slice(sec1.as_bytes()).unwrap(),
        PrivateKeyDer::Sec1(_)
    ));
    let pkcs1 = rsa.key_pkcs1_pem().expect("RSA key has PKCS#1");
    assert!(matches!(
        PrivateKeyDer::from_pem_slice(pkcs1.as_bytes()).unwrap(),
        PrivateKeyDer::Pkcs1(_)
    ));
    assert!(ec.key_pkcs1_pem().is_none() && rsa.key_sec1_pem().is_none());
    assert!(ed.key_sec1_pem().is_none() && ed.key_pkcs1_pem().is_none());

    // The re-encoded keys are the same keys: rustls accepts them with the certificate.
    let provider = aws_lc_rs::default_provider();
    for (leaf, der) in [
        (&ec, PrivateKeyDer::from_pem_slice(sec1.as_bytes()).unwrap()),
        (
            &rsa,
            PrivateKeyDer::from_pem_slice(pkcs1.as_bytes()).unwrap(),
        ),
    ] {
        let signing = provider.key_provider.load_private_key(der).unwrap();
        let ck = rustls::sign::CertifiedKey::new(leaf.chain.clone(), signing);
        ck.keys_match()
            .expect("re-encoded key matches the certificate");
    }

    if openssl_or_skip("encrypted pkcs8") {
        let dir = TempDir::new("keys");
        for leaf in [&ec, &rsa, &ed] {
            let enc = leaf
                .key_encrypted_pkcs8_pem("s3cret")
                .expect("openssl pkcs8");
            assert!(enc.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
            let enc_file = dir.write("enc.pem", &enc);
            let plain_file = dir.write("plain.pem", &leaf.key_pem);
            let pubkey = |file: &Path, pass: &str| {
                let f = file.to_str().unwrap();
                let mut args = vec!["pkey", "-in", f, "-pubout"];
                if !pass.is_empty() {
                    args.extend(["-passin", pass]);
                }
                run_openssl(dir.path(), &args).map(|o| o.stdout)
            };
            assert_eq!(
                pubkey(&enc_file, "pass:s3cret").unwrap(),
                pubkey(&plain_file, "").unwrap()
            );
            assert!(pubkey(&enc_file, "pass:wrong").is_err());
        }
        // The SEC1 and PKCS#1 PEMs are readable by OpenSSL too.
        for pem in [&sec1, &pkcs1] {
            let f = dir.write("trad.pem", pem);
            run_openssl(dir.path(), &["pkey", "-in", f.to_str().unwrap(), "-noout"])
                .expect("openssl reads the traditional key");
        }
    }

    // write_pem_files: chain + 0600 key.
    let dir = TempDir::new("files");
    let (crt, key) = ec.write_pem_files(dir.path(), "postgresql").unwrap();
    assert_eq!(
        CertificateDer::pem_file_iter(&crt).unwrap().count(),
        ec.chain.len()
    );
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn der_and_pem_helpers_round_trip() {
    for len in [0usize, 1, 127, 128, 255, 256, 70_000] {
        let content = vec![0xabu8; len];
        let tlv = der_tlv(0x04, &content);
        let (tag, body, whole, rest) = der_read(&tlv).unwrap();
        assert_eq!(
            (tag, body.len(), whole.len(), rest.len()),
            (0x04, len, tlv.len(), 0)
        );
        assert!(der_read(&tlv[..tlv.len() - 1]).is_none() || len == 0);
    }
    let leaf = self_signed_leaf(LeafSpec::server("x.example"));
    let back = CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes()).unwrap();
    assert_eq!(back, leaf.cert);
    assert_eq!(
        pem_encode("X", b"ab"),
        "-----BEGIN X-----\nYWI=\n-----END X-----\n"
    );
    assert_eq!(cert_serial(&leaf.cert).unwrap(), leaf.serial);
}
