//! libpq's sslmode table inside wasm: every sslmode against every scripted answer to
//! `SSLRequest` (S then TLS, N, E, a garbage byte, close), run through the whole plan
//! with a new in-memory server per connection — the same outcomes and messages as the
//! native build (tests/negotiation.rs, BEHAVIOUR.md).

mod support;

use pgtls::{Config, RootCertificates, SslMode};
use support::certs::Pki;
use support::drive::{plan, Outcome};
use support::server::Behaviour;
use wasm_bindgen_test::wasm_bindgen_test;

const HOST: &str = "db.example.test";
const CLOSED: &str = "server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally\n\tbefore or while processing the request.";

fn config(mode: SslMode, pki: &Pki) -> Config {
    Config::builder()
        .sslmode(mode)
        .host(HOST)
        .root_certificates(RootCertificates::Certificates(vec![pki.root.clone()]))
        .build()
        .expect("config")
}

/// libpq's outcome, and how many connections it takes.
fn expected(mode: SslMode, behaviour: &Behaviour) -> (Outcome, usize) {
    let failed = |text: &str| (Outcome::Failed(text.to_owned()), 1);
    match (mode, behaviour) {
        // Plaintext first, and every scripted server accepts a plaintext startup.
        (SslMode::Disable | SslMode::Allow, _) => (Outcome::Plaintext, 1),
        (_, Behaviour::Tls(_)) => (Outcome::Tls, 1),
        // prefer goes on in plaintext on the same connection.
        (SslMode::Prefer, Behaviour::RefuseN) => (Outcome::Plaintext, 1),
        (_, Behaviour::RefuseN) => failed("server does not support SSL, but SSL was required"),
        (_, Behaviour::ErrorE) => failed("server sent an error response during SSL exchange"),
        (_, Behaviour::Garbage(_)) => failed("received invalid response to SSL negotiation: X"),
        (_, Behaviour::Close) => failed(CLOSED),
    }
}

#[wasm_bindgen_test]
fn every_sslmode_against_every_server_answer() {
    let pki = Pki::new("wasm test CA", HOST);
    let behaviours = [
        Behaviour::Tls(pki.server_config()),
        Behaviour::RefuseN,
        Behaviour::ErrorE,
        Behaviour::Garbage(b'X'),
        Behaviour::Close,
    ];
    let mut rows = 0;
    for mode in SslMode::ALL {
        let config = config(mode, &pki);
        for behaviour in &behaviours {
            let run = plan(&config, behaviour);
            let (outcome, connections) = expected(mode, behaviour);
            let row = format!("sslmode={mode} server={}", behaviour.name());
            assert_eq!(run.outcome, outcome, "{row}");
            assert_eq!(run.connections, connections, "{row}");
            let asks_for_tls = !matches!(mode, SslMode::Disable | SslMode::Allow);
            assert_eq!(run.ssl_requests, usize::from(asks_for_tls), "{row}");
            rows += 1;
        }
    }
    assert_eq!(rows, 30);
}

#[wasm_bindgen_test]
fn an_invalid_byte_is_shown_escaped_as_libpq_does() {
    let pki = Pki::new("wasm test CA", HOST);
    let run = plan(&config(SslMode::Require, &pki), &Behaviour::Garbage(0x16));
    assert_eq!(
        run.outcome,
        Outcome::Failed("received invalid response to SSL negotiation: \\x16".into())
    );
}
