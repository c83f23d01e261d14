//! A verify-full TLS handshake inside wasm, against a rustls server in the same module,
//! with certificates generated in the test: success (ALPN, SNI, data both ways), and
//! libpq's messages for a host name mismatch and an unknown issuer.

mod support;

use pgtls::plan::Method;
use pgtls::{ApplicationData, Config, Negotiated, RootCertificates, SslMode};
use support::certs::Pki;
use support::drive::{attempt, pump};
use support::server::{Behaviour, ScriptedServer};
use wasm_bindgen_test::wasm_bindgen_test;

const HOST: &str = "db.example.test";

fn verify_full(host: &str, root_pem: &str) -> Config {
    Config::builder()
        .sslmode(SslMode::VerifyFull)
        .host(host)
        .root_certificates(RootCertificates::from_pem(root_pem.as_bytes()).expect("root PEM"))
        .build()
        .expect("config")
}

#[wasm_bindgen_test]
fn verify_full_handshake_and_data_both_ways() {
    let pki = Pki::new("wasm test CA", HOST);
    let config = verify_full(HOST, &pki.root_pem);
    let mut server = ScriptedServer::new(Behaviour::Tls(pki.server_config()));
    let negotiated = attempt(&config, Method::SslRequest, &mut server).expect("handshake");
    let Negotiated::Tls(mut session) = negotiated else {
        panic!("expected TLS, got {negotiated:?}");
    };
    assert_eq!(session.alpn_protocol(), Some(&b"postgresql"[..]));
    assert_eq!(session.peer_certificates(), &[pki.leaf.clone()][..]);
    pump(&mut session, &mut server).expect("handshake flights");
    assert!(server.handshake_complete());
    assert_eq!(server.sni().as_deref(), Some(HOST));

    assert_eq!(session.handle_application_data(b"ping").expect("queued"), 4);
    pump(&mut session, &mut server).expect("client data");
    assert_eq!(server.tls_plaintext(), b"ping");

    server.send_tls(b"pong");
    pump(&mut session, &mut server).expect("server data");
    let mut buf = [0u8; 16];
    match session.poll_application_data(&mut buf).expect("data") {
        ApplicationData::Data(n) => assert_eq!(&buf[..n], b"pong"),
        other => panic!("expected data, got {other:?}"),
    }
}

#[wasm_bindgen_test]
fn a_host_name_mismatch_fails_with_libpqs_message() {
    let pki = Pki::new("wasm test CA", HOST);
    let config = verify_full("other.example.test", &pki.root_pem);
    let mut server = ScriptedServer::new(Behaviour::Tls(pki.server_config()));
    let err = attempt(&config, Method::SslRequest, &mut server).expect_err("mismatch");
    assert_eq!(
        err.to_string(),
        format!(
            "server certificate for \"{HOST}\" does not match host name \"other.example.test\""
        )
    );
}

#[wasm_bindgen_test]
fn an_unknown_issuer_fails_with_openssls_words() {
    let served = Pki::new("wasm test CA", HOST);
    let other = Pki::new("another CA", HOST);
    let config = verify_full(HOST, &other.root_pem);
    let mut server = ScriptedServer::new(Behaviour::Tls(served.server_config()));
    let err = attempt(&config, Method::SslRequest, &mut server).expect_err("unknown CA");
    assert_eq!(
        err.to_string(),
        "SSL error: certificate verify failed: unable to get local issuer certificate"
    );
}
