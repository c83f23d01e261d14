//! Split-point properties (proptest): for each scenario, any split of the server's bytes into
//! chunks (empty and 1-byte chunks included) and any output buffer sizes give the same outcome
//! and the same client bytes before TLS; bytes after `S`/`N` never surface as plaintext.
//!
//! One exception is inherent to the protocol and shared with libpq: bytes glued to `S` can only
//! be recognised as such when they arrive together with the `S` (libpq checks its receive
//! buffer right after reading `S`). When a split delivers the `S` alone, the glued bytes reach
//! the TLS layer as the server's first "record", which rustls rejects. The property then is:
//! refused as `received unencrypted data after SSL response` when they arrive with the `S`,
//! a TLS error otherwise; never plaintext, never a session.

use std::sync::{Arc, OnceLock};

use pgtls::plan::Method;
use pgtls::{Config, Error, SslMode, SslNegotiation};
use proptest::prelude::*;
use rustls::ServerConfig;

use pgtls_testkit::certs::{Ca, LeafSpec};
use pgtls_testkit::fake_server::{
    default_server_tls_config, AfterTls, Reply, ServerScript, SSL_REQUEST,
};
use pgtls_testkit::pair::{drive, Drive, Transcript};

const HOST: &str = "db.example.com";
const GREETING: &[u8] = b"first bytes over TLS";
const AFTER_N: &[u8] = b"R\0\0\0\x08\0\0\0\0Z\0\0\0\x05I";
const GLUED: &[u8] = b"injected";

struct World {
    prefer: Config,
    direct: Config,
    server: Arc<ServerConfig>,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let leaf = Ca::root("props root").leaf(LeafSpec::server(HOST));
        let provider = || Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        World {
            prefer: Config::builder()
                .host(HOST)
                .sslmode(SslMode::Prefer)
                .crypto_provider(provider())
                .build()
                .unwrap(),
            direct: Config::builder()
                .host(HOST)
                .sslmode(SslMode::Require)
                .negotiation(SslNegotiation::Direct)
                .crypto_provider(provider())
                .build()
                .unwrap(),
            server: default_server_tls_config(leaf.chain.clone(), leaf.key.clone_key()),
        }
    })
}

/// Chunk sizes: many empty and tiny ones, some medium, a few large; at least one non-empty.
fn chunks() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(
        prop_oneof![
            3 => 0usize..=2,
            3 => 3usize..=64,
            1 => 65usize..=20_000,
        ],
        1..12,
    )
    .prop_map(|mut v| {
        if v.iter().all(|&c| c == 0) {
            v.push(1);
        }
        v
    })
}

/// Output buffer sizes between 1 and 17000, small ones often.
fn out_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(prop_oneof![2 => 1usize..=16, 2 => 17usize..=17_000], 1..6)
}

fn opts(chunks: &[usize], outs: &[usize]) -> Drive {
    Drive::default()
        .chunks(chunks)
        .out_sizes(outs)
        .max_steps(200_000)
}

fn run(config: &Config, method: Method, script: ServerScript, drive_opts: &Drive) -> Transcript {
    drive(config, method, script, drive_opts)
}

/// After TLS: the session yields exactly the server's greeting and nothing else.
fn check_session(t: Transcript) -> Result<(), TestCaseError> {
    let mut pair = t.into_session();
    let (data, end) = pair.receive();
    prop_assert_eq!(end.kind(), "idle", "{:?}", end.message());
    prop_assert_eq!(data, GREETING);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn s_then_tls(chunks in chunks(), outs in out_sizes()) {
        let w = world();
        let script = ServerScript::tls(w.server.clone())
            .with_after_tls(AfterTls::Greet(GREETING.to_vec()));
        let t = run(&w.prefer, Method::SslRequest, script, &opts(&chunks, &outs));
        prop_assert_eq!(t.outcome.kind(), "tls", "{:?}", t);
        prop_assert_eq!(&t.client_before_reply[..], &SSL_REQUEST[..]);
        prop_assert_eq!(&t.client_all[..8], &SSL_REQUEST[..]);
        prop_assert_eq!(t.client_all[8], 0x16);
        prop_assert!(t.server_obs.handshake_complete);
        prop_assert_eq!(t.server_obs.alpn.as_deref(), Some(&b"postgresql"[..]));
        check_session(t)?;
    }

    #[test]
    fn direct_tls(chunks in chunks(), outs in out_sizes()) {
        let w = world();
        let script = ServerScript::tls(w.server.clone())
            .with_after_tls(AfterTls::Greet(GREETING.to_vec()));
        let t = run(&w.direct, Method::DirectTls, script, &opts(&chunks, &outs));
        prop_assert_eq!(t.outcome.kind(), "tls", "{:?}", t);
        // Nothing in plaintext: the ClientHello is the first byte.
        prop_assert_eq!(t.client_all[0], 0x16);
        prop_assert!(t.server_obs.saw_direct);
        prop_assert!(!t.server_obs.saw_ssl_request);
        check_session(t)?;
    }

    #[test]
    fn n_then_plaintext(chunks in chunks(), outs in out_sizes()) {
        let w = world();
        let script = ServerScript::plaintext_only()
            .with_reply(Reply::NThenBytes(AFTER_N.to_vec()));
        let t = run(&w.prefer, Method::SslRequest, script, &opts(&chunks, &outs));
        prop_assert_eq!(t.outcome.kind(), "refused", "{:?}", t);
        prop_assert_eq!(t.consumed, 1);
        // The bytes after `N` are left, untouched, for the plaintext protocol.
        prop_assert_eq!(&t.leftover[..], AFTER_N);
        prop_assert_eq!(&t.client_all[..], &SSL_REQUEST[..]);
    }

    #[test]
    fn e_reply(chunks in chunks(), outs in out_sizes()) {
        let w = world();
        let script = ServerScript::tls(w.server.clone()).with_reply(Reply::E);
        let t = run(&w.prefer, Method::SslRequest, script, &opts(&chunks, &outs));
        prop_assert_eq!(t.consumed, 0);
        prop_assert_eq!(&t.client_all[..], &SSL_REQUEST[..]);
        prop_assert!(t.last_gasp.is_empty());
        let message = t.outcome.message();
        prop_assert_eq!(
            message.as_deref(),
            Some("server sent an error response during SSL exchange")
        );
    }

    #[test]
    fn invalid_byte(chunks in chunks(), outs in out_sizes(), byte in any::<u8>()) {
        prop_assume!(!b"SNE".contains(&byte));
        let w = world();
        let script = ServerScript::replying(Reply::Byte(byte));
        let t = run(&w.prefer, Method::SslRequest, script, &opts(&chunks, &outs));
        prop_assert_eq!(t.consumed, 0);
        prop_assert_eq!(&t.client_all[..], &SSL_REQUEST[..]);
        let err = t.outcome.expect_err();
        prop_assert!(matches!(err, Error::InvalidSslResponse(b) if b == byte));
        prop_assert!(err
            .to_string()
            .starts_with("received invalid response to SSL negotiation: "));
    }

    #[test]
    fn bytes_glued_to_s(chunks in chunks(), outs in out_sizes()) {
        let w = world();
        let script = ServerScript::tls(w.server.clone())
            .with_reply(Reply::SThenBytes(GLUED.to_vec()))
            .with_after_tls(AfterTls::Greet(GREETING.to_vec()));
        let t = run(&w.prefer, Method::SslRequest, script, &opts(&chunks, &outs));
        prop_assert_eq!(&t.client_before_reply[..], &SSL_REQUEST[..]);
        prop_assert_eq!(t.outcome.kind(), "failed", "{:?}", t);
        prop_assert!(!t.server_obs.handshake_complete);
        let s_with_glued = chunks.iter().copied().find(|&c| c > 0).unwrap() >= 2;
        let err = t.outcome.expect_err();
        if s_with_glued {
            prop_assert!(matches!(err, Error::UnencryptedDataAfterSslResponse), "{:?}", err);
            prop_assert_eq!(err.to_string(), "received unencrypted data after SSL response");
            // No ClientHello went out.
            prop_assert_eq!(&t.client_all[..], &SSL_REQUEST[..]);
        } else {
            // The `S` came alone: the glued bytes are the server's first TLS "record".
            prop_assert_eq!(
                err.to_string(),
                "SSL error: received corrupt message of type InvalidContentType"
            );
        }
    }
}

/// Both branches of `bytes_glued_to_s`, pinned: the `S` alone, and the `S` with one glued byte.
#[test]
fn bytes_glued_to_s_both_splits() {
    let w = world();
    let script = ServerScript::tls(w.server.clone()).with_reply(Reply::SThenBytes(GLUED.to_vec()));
    for (chunks, message, sent_hello) in [
        (
            &[1][..],
            "SSL error: received corrupt message of type InvalidContentType",
            true,
        ),
        (
            &[0, 1, 1000],
            "SSL error: received corrupt message of type InvalidContentType",
            true,
        ),
        (&[2], "received unencrypted data after SSL response", false),
        (
            &[0, 0, 9],
            "received unencrypted data after SSL response",
            false,
        ),
    ] {
        let t = run(
            &w.prefer,
            Method::SslRequest,
            script.clone(),
            &opts(chunks, &[]),
        );
        assert_eq!(t.client_before_reply, SSL_REQUEST);
        assert_eq!(
            t.client_all.len() > SSL_REQUEST.len(),
            sent_hello,
            "{chunks:?}"
        );
        assert_eq!(t.outcome.message().as_deref(), Some(message), "{chunks:?}");
    }
}
