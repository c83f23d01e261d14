//! Certificate verification per sslmode, end to end through the negotiation, with
//! certificates made at test time (BEHAVIOUR.md#sslmode, #chain-verification, #crls, #host-names).
//!
//! Chain failures read `SSL error: certificate verify failed: <reason>` with OpenSSL's reason
//! strings (`X509_verify_cert_error_string`, OpenSSL 3), as the crate docs promise; host-name
//! failures read exactly as libpq's.

use std::path::PathBuf;
use std::sync::Arc;

use pgtls::blocking::connect;
use pgtls::plan::Method;
use pgtls::rustls::pki_types::pem::PemObject;
use pgtls::rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use pgtls::{Blame, CertificateProblem, Config, ConfigBuilder, Error, RootCertificates, SslMode};
use time::{Duration, OffsetDateTime};

use pgtls_testkit::certs::{
    cert_serial, openssl_path, openssl_v1_recipe, self_signed_leaf, Ca, Leaf, LeafSpec,
};
use pgtls_testkit::fake_server::{
    default_server_tls_config, ServerScript, StartupBehaviour, SSL_REQUEST,
};
use pgtls_testkit::pair::{drive, Drive, MemNetwork, Transcript};

const HOST: &str = "db.example.com";

const UNKNOWN_ISSUER: &str =
    "SSL error: certificate verify failed: unable to get local issuer certificate";
const NO_ISSUER: &str = "SSL error: certificate verify failed: unable to get issuer certificate";
const EXPIRED: &str = "SSL error: certificate verify failed: certificate has expired";
const NOT_YET_VALID: &str = "SSL error: certificate verify failed: certificate is not yet valid";
const SELF_SIGNED: &str = "SSL error: certificate verify failed: self-signed certificate";
const SELF_SIGNED_IN_CHAIN: &str =
    "SSL error: certificate verify failed: self-signed certificate in certificate chain";
const REVOKED: &str = "SSL error: certificate verify failed: certificate revoked";
const NO_CRL: &str = "SSL error: certificate verify failed: unable to get certificate CRL";
const CRL_EXPIRED: &str = "SSL error: certificate verify failed: CRL has expired";
const EE_KEY_WEAK: &str = "SSL error: certificate verify failed: EE certificate key too weak";
const CA_KEY_WEAK: &str = "SSL error: certificate verify failed: CA certificate key too weak";

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn builder(mode: SslMode, host: &str) -> ConfigBuilder {
    Config::builder()
        .sslmode(mode)
        .host(host)
        .crypto_provider(provider())
}

fn with_roots(mode: SslMode, host: &str, roots: &[CertificateDer<'static>]) -> Config {
    builder(mode, host)
        .root_certificates(RootCertificates::Certificates(roots.to_vec()))
        .build()
        .expect("config")
}

fn with_crls(
    mode: SslMode,
    roots: &[CertificateDer<'static>],
    crls: Vec<CertificateRevocationListDer<'static>>,
) -> Config {
    builder(mode, HOST)
        .root_certificates(RootCertificates::Certificates(roots.to_vec()))
        .crls(crls)
        .build()
        .expect("config")
}

fn no_roots(mode: SslMode) -> Config {
    builder(mode, HOST).build().expect("config")
}

/// One TLS attempt (`SSLRequest`, server answers `S`) against a server presenting `chain`
/// signed with `key`: `Ok(())` if TLS came up, else the error.
fn attempt(
    config: &Config,
    chain: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
) -> Result<(), Error> {
    let t = transcript(config, chain, key);
    match t.outcome.kind() {
        "tls" => Ok(()),
        "failed" => Err(t.outcome.expect_err()),
        other => panic!("unexpected outcome {other}: {t:?}"),
    }
}

fn transcript(
    config: &Config,
    chain: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
) -> Transcript {
    let server = default_server_tls_config(chain.to_vec(), key.clone_key());
    drive(
        config,
        Method::SslRequest,
        ServerScript::tls(server),
        &Drive::default(),
    )
}

fn serve(config: &Config, leaf: &Leaf) -> Result<(), Error> {
    attempt(config, &leaf.chain, &leaf.key)
}

/// The error message of a failed attempt; panics if TLS came up.
#[track_caller]
fn failure(result: Result<(), Error>) -> String {
    match result {
        Ok(()) => panic!("TLS came up, a failure was expected"),
        Err(err) => err.to_string(),
    }
}

#[track_caller]
fn assert_chain_failure(result: Result<(), Error>, message: &str) {
    let err = result.expect_err("a chain failure was expected");
    assert_eq!(err.to_string(), message);
    assert!(
        matches!(
            err,
            Error::Certificate {
                problem: CertificateProblem::Chain,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.blame(), Blame::Tls);
    assert!(err.allows_fallback());
}

#[track_caller]
fn assert_host_failure(result: Result<(), Error>, message: &str) {
    let err = result.expect_err("a host-name failure was expected");
    assert_eq!(err.to_string(), message);
    assert!(
        matches!(
            err,
            Error::Certificate {
                problem: CertificateProblem::HostName,
                ..
            }
        ),
        "{err:?}"
    );
}

/// Every mode that verifies a chain when a root file is given, with the method of its TLS
/// attempt (allow's comes second, after a rejected plaintext startup).
const VERIFYING_MODES: [SslMode; 5] = [
    SslMode::Allow,
    SslMode::Prefer,
    SslMode::Require,
    SslMode::VerifyCa,
    SslMode::VerifyFull,
];

// ------------------------------------------------------------------------------------------
// No root certificates: nothing about the chain is checked, the signature still is.

#[test]
fn without_roots_weak_modes_accept_any_certificate() {
    let ca = Ca::root("some ca");
    let cases = [
        ("self-signed", self_signed_leaf(LeafSpec::server(HOST))),
        ("expired", ca.leaf(LeafSpec::server(HOST).expired())),
        (
            "not yet valid",
            ca.leaf(LeafSpec::server(HOST).not_yet_valid()),
        ),
        ("unknown CA", ca.leaf(LeafSpec::server(HOST))),
        ("other host", ca.leaf(LeafSpec::server("other.example"))),
        ("no names", ca.leaf(LeafSpec::default())),
        (
            "intermediate",
            ca.intermediate("inter").leaf(LeafSpec::server(HOST)),
        ),
    ];
    for mode in [SslMode::Allow, SslMode::Prefer, SslMode::Require] {
        for (name, leaf) in &cases {
            assert!(
                serve(&no_roots(mode), leaf).is_ok(),
                "{mode} {name}: {:?}",
                serve(&no_roots(mode), leaf)
            );
        }
    }
}

#[test]
fn without_roots_x509_v1_certificates_are_accepted() {
    let ca = Ca::root("some ca");
    let v1_root = Ca::v1_root("v1 root");
    let cases = [
        ("v1 leaf", ca.leaf(LeafSpec::server(HOST).v1())),
        (
            "v1 self-signed",
            self_signed_leaf(LeafSpec::server(HOST).v1()),
        ),
        ("leaf of a v1 root", v1_root.leaf(LeafSpec::server(HOST))),
    ];
    for mode in [SslMode::Allow, SslMode::Prefer, SslMode::Require] {
        for (name, leaf) in &cases {
            let result = serve(&no_roots(mode), leaf);
            assert!(result.is_ok(), "{mode} {name}: {result:?}");
        }
    }
}

/// A server whose CertifiedKey pairs certificate A with key B.
fn mismatched(spec: LeafSpec) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let ca = Ca::root("mismatch ca");
    let a = ca.leaf(spec.clone());
    let b = ca.leaf(spec);
    (a.chain, b.key)
}

#[track_caller]
fn assert_signature_failure(result: Result<(), Error>) {
    let err = result.expect_err("a signature failure was expected");
    assert!(
        matches!(
            err,
            Error::Certificate {
                problem: CertificateProblem::Signature,
                ..
            }
        ),
        "{err:?}: {err}"
    );
    assert!(err.to_string().starts_with("SSL error: "), "{err}");
    assert_eq!(err.blame(), Blame::Tls);
}

#[test]
fn without_roots_the_handshake_signature_must_match_the_certificate() {
    let (chain, key) = mismatched(LeafSpec::server(HOST));
    for mode in [SslMode::Allow, SslMode::Prefer, SslMode::Require] {
        let t = transcript(&no_roots(mode), &chain, &key);
        assert_eq!(
            t.server_obs.tls_error,
            Some(rustls::Error::AlertReceived(
                rustls::AlertDescription::DecryptError
            )),
            "{mode}"
        );
        assert_signature_failure(Err(t.outcome.expect_err()));
    }
}

#[test]
fn without_roots_the_handshake_signature_must_match_a_v1_certificate() {
    let (chain, key) = mismatched(LeafSpec::server(HOST).v1());
    assert_signature_failure(attempt(&no_roots(SslMode::Require), &chain, &key));
    let (chain, key) = mismatched(LeafSpec::server(HOST).expired());
    assert_signature_failure(attempt(&no_roots(SslMode::Require), &chain, &key));
}

#[test]
fn the_signature_is_checked_with_a_root_file_too() {
    let ca = Ca::root("mismatch ca");
    let a = ca.leaf(LeafSpec::server(HOST));
    let b = ca.leaf(LeafSpec::server(HOST));
    let config = with_roots(SslMode::VerifyFull, HOST, &[ca.root_der()]);
    assert!(serve(&config, &a).is_ok(), "{:?}", serve(&config, &a));
    assert_signature_failure(attempt(&config, &a.chain, &b.key));
}

#[test]
fn crls_without_a_root_file_are_ignored() {
    let ca = Ca::root("crl ca");
    let leaf = ca.leaf(LeafSpec::server(HOST));
    let config = builder(SslMode::Require, HOST)
        .crls(vec![ca.crl_now(&[&leaf])])
        .build()
        .unwrap();
    assert!(serve(&config, &leaf).is_ok());
}

// ------------------------------------------------------------------------------------------
// A root file: every mode verifies the chain.

#[test]
fn with_a_root_file_every_mode_accepts_a_trusted_chain() {
    let ca = Ca::root("trusted");
    let leaf = ca.leaf(LeafSpec::server(HOST));
    for mode in VERIFYING_MODES {
        let result = serve(&with_roots(mode, HOST, &[ca.root_der()]), &leaf);
        assert!(result.is_ok(), "{mode}: {result:?}");
    }
}

#[test]
fn with_a_root_file_every_mode_refuses_an_unknown_ca() {
    let trusted = Ca::root("trusted");
    let other = Ca::root("other");
    let leaf = other.leaf(LeafSpec::server(HOST));
    for mode in VERIFYING_MODES {
        let t = transcript(
            &with_roots(mode, HOST, &[trusted.root_der()]),
            &leaf.chain,
            &leaf.key,
        );
        // The client told the server why (the last-gasp alert).
        assert!(!t.last_gasp.is_empty(), "{mode}");
        assert!(
            matches!(
                t.server_obs.tls_error,
                Some(rustls::Error::AlertReceived(_))
            ),
            "{mode}: {:?}",
            t.server_obs.tls_error
        );
        assert_chain_failure(Err(t.outcome.expect_err()), UNKNOWN_ISSUER);
    }
}

#[test]
fn require_with_a_root_file_acts_as_verify_ca_without_host_names() {
    let ca = Ca::root("trusted");
    let leaf = ca.leaf(LeafSpec::server("other.example"));
    for mode in [SslMode::Require, SslMode::VerifyCa] {
        let result = serve(&with_roots(mode, HOST, &[ca.root_der()]), &leaf);
        assert!(result.is_ok(), "{mode}: {result:?}");
    }
    assert_host_failure(
        serve(
            &with_roots(SslMode::VerifyFull, HOST, &[ca.root_der()]),
            &leaf,
        ),
        "server certificate for \"other.example\" does not match host name \"db.example.com\"",
    );
}

#[test]
fn validity_period() {
    let ca = Ca::root("trusted");
    let roots = [ca.root_der()];
    for mode in [SslMode::Require, SslMode::VerifyCa, SslMode::VerifyFull] {
        let config = with_roots(mode, HOST, &roots);
        assert_chain_failure(
            serve(&config, &ca.leaf(LeafSpec::server(HOST).expired())),
            EXPIRED,
        );
        assert_chain_failure(
            serve(&config, &ca.leaf(LeafSpec::server(HOST).not_yet_valid())),
            NOT_YET_VALID,
        );
    }
}

#[test]
fn self_signed_server_certificates() {
    let ca = Ca::root("trusted");
    let self_signed = self_signed_leaf(LeafSpec::server(HOST));
    let config = with_roots(SslMode::VerifyCa, HOST, &[ca.root_der()]);
    assert_chain_failure(serve(&config, &self_signed), SELF_SIGNED);
    // Listed in the root file, a self-signed certificate is its own anchor.
    let config = with_roots(
        SslMode::VerifyFull,
        HOST,
        &[ca.root_der(), self_signed.cert.clone()],
    );
    let result = serve(&config, &self_signed);
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn a_server_sending_an_unknown_root_along() {
    let trusted = Ca::root("trusted");
    let other = Ca::root("other");
    let leaf = other.leaf(LeafSpec::server(HOST));
    let mut chain = leaf.chain.clone();
    chain.push(other.root_der());
    let config = with_roots(SslMode::VerifyCa, HOST, &[trusted.root_der()]);
    assert_chain_failure(attempt(&config, &chain, &leaf.key), SELF_SIGNED_IN_CHAIN);
}

#[test]
fn x509_v1_leaf_from_the_root_passes() {
    let ca = Ca::root("trusted");
    // A v1 leaf has no extensions: its only name is the CN.
    let leaf = ca.leaf(LeafSpec::cn_only(HOST).v1());
    for mode in [SslMode::Require, SslMode::VerifyCa, SslMode::VerifyFull] {
        let result = serve(&with_roots(mode, HOST, &[ca.root_der()]), &leaf);
        assert!(result.is_ok(), "{mode}: {result:?}");
    }
}

#[test]
fn x509_v1_root_is_an_anchor() {
    let root = Ca::v1_root("v1 root");
    for (name, leaf) in [
        ("v3 leaf", root.leaf(LeafSpec::server(HOST))),
        ("v1 leaf", root.leaf(LeafSpec::cn_only(HOST).v1())),
    ] {
        for mode in [SslMode::VerifyCa, SslMode::VerifyFull] {
            let result = serve(&with_roots(mode, HOST, &[root.root_der()]), &leaf);
            assert!(result.is_ok(), "{name} {mode}: {result:?}");
        }
    }
}

#[test]
fn intermediate_sent_by_the_server() {
    let root = Ca::root("root");
    let inter = root.intermediate("intermediate");
    let leaf = inter.leaf(LeafSpec::server(HOST));
    assert_eq!(leaf.chain.len(), 2);
    for mode in [SslMode::VerifyCa, SslMode::VerifyFull] {
        let result = serve(&with_roots(mode, HOST, &[root.root_der()]), &leaf);
        assert!(result.is_ok(), "{mode}: {result:?}");
    }
    // Without the intermediate, the root file alone cannot build the path.
    let config = with_roots(SslMode::VerifyCa, HOST, &[root.root_der()]);
    assert_chain_failure(
        attempt(&config, &leaf.chain[..1], &leaf.key),
        UNKNOWN_ISSUER,
    );
}

#[test]
fn intermediate_only_in_the_root_file() {
    let root = Ca::root("root");
    let inter = root.intermediate("intermediate");
    let leaf = inter.leaf(LeafSpec::server(HOST));
    // Any order in the file.
    for roots in [
        [root.root_der(), inter.cert_der()],
        [inter.cert_der(), root.root_der()],
    ] {
        let config = with_roots(SslMode::VerifyFull, HOST, &roots);
        let result = attempt(&config, &leaf.chain[..1], &leaf.key);
        assert!(result.is_ok(), "{result:?}");
    }
}

#[test]
fn a_root_file_with_only_an_intermediate_is_no_anchor() {
    let root = Ca::root("root");
    let inter = root.intermediate("intermediate");
    let leaf = inter.leaf(LeafSpec::server(HOST));
    let config = with_roots(SslMode::VerifyCa, HOST, &[inter.cert_der()]);
    assert_chain_failure(serve(&config, &leaf), NO_ISSUER);
    assert_chain_failure(attempt(&config, &leaf.chain[..1], &leaf.key), NO_ISSUER);
}

/// Fuzz finding 3: once the chain reaches a root-file certificate, OpenSSL (and so libpq)
/// looks for the next issuer in the root file only, even if the server sent it.
#[test]
fn an_intermediate_in_the_root_file_pins_the_chain_above_it() {
    let root = Ca::root("root");
    let upper = root.intermediate("upper");
    let lower = upper.intermediate("lower");
    let leaf = lower.leaf(LeafSpec::server(HOST));
    assert_eq!(leaf.chain.len(), 3);
    for mode in [SslMode::VerifyCa, SslMode::VerifyFull] {
        let config = with_roots(mode, HOST, &[root.root_der(), lower.cert_der()]);
        assert_chain_failure(serve(&config, &leaf), NO_ISSUER);
        let config = with_roots(mode, HOST, &[root.root_der(), upper.cert_der()]);
        let result = serve(&config, &leaf);
        assert!(result.is_ok(), "{mode}: {result:?}");
    }
}

#[test]
fn crls() {
    let root = Ca::root("root");
    let leaf = root.leaf(LeafSpec::server(HOST));
    let roots = [root.root_der()];
    // Listed: revoked, in every mode that verifies.
    for mode in [
        SslMode::Prefer,
        SslMode::Require,
        SslMode::VerifyCa,
        SslMode::VerifyFull,
    ] {
        assert_chain_failure(
            serve(
                &with_crls(mode, &roots, vec![root.crl_now(&[&leaf])]),
                &leaf,
            ),
            REVOKED,
        );
    }
    // A CRL that does not list it: fine.
    let other = root.leaf(LeafSpec::server(HOST));
    let result = serve(
        &with_crls(SslMode::VerifyCa, &roots, vec![root.crl_now(&[&other])]),
        &leaf,
    );
    assert!(result.is_ok(), "{result:?}");
    // An expired CRL fails.
    let now = OffsetDateTime::now_utc();
    let stale = root.crl(&[], now - Duration::days(30), now - Duration::days(1));
    assert_chain_failure(
        serve(&with_crls(SslMode::VerifyCa, &roots, vec![stale]), &leaf),
        CRL_EXPIRED,
    );
}

#[test]
fn crls_are_required_for_every_ca_of_the_chain() {
    let root = Ca::root("root");
    let inter = root.intermediate("intermediate");
    let leaf = inter.leaf(LeafSpec::server(HOST));
    let roots = [root.root_der()];
    // The root's CRL alone: nothing covers the leaf's issuer.
    assert_chain_failure(
        serve(
            &with_crls(SslMode::VerifyCa, &roots, vec![root.crl_now(&[])]),
            &leaf,
        ),
        NO_CRL,
    );
    // Both CRLs: fine.
    let result = serve(
        &with_crls(
            SslMode::VerifyCa,
            &roots,
            vec![root.crl_now(&[]), inter.crl_now(&[])],
        ),
        &leaf,
    );
    assert!(result.is_ok(), "{result:?}");
    // The intermediate revoked by the root.
    let inter_serial = cert_serial(&inter.cert_der()).unwrap();
    let now = OffsetDateTime::now_utc();
    let root_crl = root.crl_for_serials(
        &[inter_serial.as_slice()],
        now - Duration::hours(1),
        now + Duration::days(30),
    );
    assert_chain_failure(
        serve(
            &with_crls(
                SslMode::VerifyCa,
                &roots,
                vec![root_crl, inter.crl_now(&[])],
            ),
            &leaf,
        ),
        REVOKED,
    );
    // The leaf revoked by the intermediate.
    assert_chain_failure(
        serve(
            &with_crls(
                SslMode::VerifyCa,
                &roots,
                vec![root.crl_now(&[]), inter.crl_now(&[&leaf])],
            ),
            &leaf,
        ),
        REVOKED,
    );
}

// ------------------------------------------------------------------------------------------
// Key strength: OpenSSL's security level 2 (libpq on Debian's OpenSSL 3), for every key of a
// verified chain. The certificates are committed fixtures (tests/fixtures/weak_keys/generate.sh)
// because rcgen cannot make RSA-1024 or P-192 keys.

/// A certificate of the weak-key fixtures.
fn weak_key_cert(name: &str) -> CertificateDer<'static> {
    let path = fixture_path(&format!("{name}.pem"));
    CertificateDer::from_pem_file(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// A private key of the weak-key fixtures.
fn weak_key_key(name: &str) -> PrivateKeyDer<'static> {
    let path = fixture_path(&format!("{name}.key"));
    PrivateKeyDer::from_pem_file(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

fn fixture_path(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/weak_keys")
        .join(file)
}

#[test]
fn weak_leaf_keys_are_refused_in_every_verifying_mode() {
    let roots = [weak_key_cert("root")];
    // The server signs with another (strong) key: the chain verdict comes first, as in libpq.
    let key = weak_key_key("leaf-rsa2048");
    for leaf in ["leaf-rsa1024", "leaf-p192"] {
        for mode in VERIFYING_MODES {
            let config = with_roots(mode, HOST, &roots);
            assert_chain_failure(attempt(&config, &[weak_key_cert(leaf)], &key), EE_KEY_WEAK);
        }
    }
}

#[test]
fn a_weak_intermediate_key_is_refused() {
    let chain = [
        weak_key_cert("leaf-under-weak-int"),
        weak_key_cert("int-rsa1024"),
    ];
    let key = weak_key_key("leaf-under-weak-int");
    let config = with_roots(SslMode::VerifyFull, HOST, &[weak_key_cert("root")]);
    assert_chain_failure(attempt(&config, &chain, &key), CA_KEY_WEAK);
    // The same intermediate from the root file instead.
    let config = with_roots(
        SslMode::VerifyCa,
        HOST,
        &[weak_key_cert("root"), weak_key_cert("int-rsa1024")],
    );
    assert_chain_failure(attempt(&config, &chain[..1], &key), CA_KEY_WEAK);
}

#[test]
fn a_weak_root_key_is_refused() {
    let config = with_roots(SslMode::VerifyCa, HOST, &[weak_key_cert("weak-root")]);
    let chain = [weak_key_cert("leaf-under-weak-root")];
    assert_chain_failure(
        attempt(&config, &chain, &weak_key_key("leaf-under-weak-root")),
        CA_KEY_WEAK,
    );
}

#[test]
fn keys_of_112_bits_and_more_are_accepted() {
    let roots = [weak_key_cert("root")];
    let config = with_roots(SslMode::VerifyFull, HOST, &roots);
    for leaf in ["leaf-rsa2048", "leaf-p256"] {
        let result = attempt(&config, &[weak_key_cert(leaf)], &weak_key_key(leaf));
        assert!(result.is_ok(), "{leaf}: {result:?}");
    }
    // The provider has no P-224 signatures: the chain passes, and what fails is the handshake
    // signature step (no algorithm for the key), not the key's strength.
    let p224 = [weak_key_cert("leaf-p224")];
    let err = attempt(&config, &p224, &weak_key_key("leaf-p256")).expect_err("no P-224 signatures");
    assert!(
        matches!(
            &err,
            Error::Certificate {
                source: rustls::Error::InvalidCertificate(
                    rustls::CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. }
                ),
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn without_roots_key_strength_is_not_checked() {
    // libpq's SSL_VERIFY_NONE: OpenSSL 3.0 completes the handshake with a weak chain.
    let chain = [
        weak_key_cert("leaf-under-weak-int"),
        weak_key_cert("int-rsa1024"),
    ];
    let key = weak_key_key("leaf-under-weak-int");
    let result = attempt(&no_roots(SslMode::Require), &chain, &key);
    assert!(result.is_ok(), "{result:?}");
    let chain = [weak_key_cert("leaf-under-weak-root")];
    let result = attempt(
        &no_roots(SslMode::Require),
        &chain,
        &weak_key_key("leaf-under-weak-root"),
    );
    assert!(result.is_ok(), "{result:?}");
}

// ------------------------------------------------------------------------------------------
// verify-full: libpq's host-name rules, end to end.

fn verify_full(host: &str, spec: LeafSpec) -> Result<(), Error> {
    let ca = Ca::root("names");
    let leaf = ca.leaf(spec);
    serve(
        &with_roots(SslMode::VerifyFull, host, &[ca.root_der()]),
        &leaf,
    )
}

#[test]
fn cn_only_certificate_matching_the_host() {
    assert!(verify_full(HOST, LeafSpec::cn_only(HOST)).is_ok());
    assert!(verify_full("DB.Example.COM", LeafSpec::cn_only(HOST)).is_ok());
    assert_host_failure(
        verify_full("other.example", LeafSpec::cn_only(HOST)),
        "server certificate for \"db.example.com\" does not match host name \"other.example\"",
    );
}

#[test]
fn san_mismatch_messages() {
    assert_host_failure(
        verify_full("b.example", LeafSpec::server("a.example")),
        "server certificate for \"a.example\" does not match host name \"b.example\"",
    );
    assert_host_failure(
        verify_full(
            "b.example",
            LeafSpec::server("a.example").dns("c.example"),
        ),
        "server certificate for \"a.example\" (and 1 other name) does not match host name \"b.example\"",
    );
    assert_host_failure(
        verify_full(
            "b.example",
            LeafSpec::server("a.example").dns("c.example").dns("d.example"),
        ),
        "server certificate for \"a.example\" (and 2 other names) does not match host name \"b.example\"",
    );
    // A dNSName exists: the CN is not looked at, even when it matches.
    assert_host_failure(
        verify_full(HOST, LeafSpec::cn_only(HOST).dns("other.example")),
        "server certificate for \"other.example\" does not match host name \"db.example.com\"",
    );
    // No names at all.
    let err = verify_full(HOST, LeafSpec::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "could not get server's host name from server certificate"
    );
}

#[test]
fn second_san_matches() {
    assert!(verify_full("c.example", LeafSpec::server("a.example").dns("c.example")).is_ok());
}

#[test]
fn wildcards() {
    let spec = || LeafSpec::server("*.example.com");
    assert!(verify_full("db.example.com", spec()).is_ok());
    assert!(verify_full("DB.EXAMPLE.COM", spec()).is_ok());
    for host in ["a.b.example.com", "example.com"] {
        assert_host_failure(
            verify_full(host, spec()),
            &format!(
                "server certificate for \"*.example.com\" does not match host name \"{host}\""
            ),
        );
    }
}

#[test]
fn ip_sans() {
    let v4 = LeafSpec::default().ip("127.0.0.1".parse().unwrap());
    let v6 = LeafSpec::default().ip("::1".parse().unwrap());
    assert!(verify_full("127.0.0.1", v4.clone()).is_ok());
    assert!(verify_full("::1", v6.clone()).is_ok());
    assert!(verify_full("0:0:0:0:0:0:0:1", v6).is_ok());
    assert_host_failure(
        verify_full("127.0.0.2", v4),
        "server certificate for \"127.0.0.1\" does not match host name \"127.0.0.2\"",
    );
}

#[test]
fn ip_in_the_common_name() {
    assert!(verify_full("127.0.0.1", LeafSpec::cn_only("127.0.0.1")).is_ok());
}

#[test]
fn legacy_inet_aton_host_forms() {
    let v4 = LeafSpec::default().ip("127.0.0.1".parse().unwrap());
    assert!(verify_full("127.000.000.001", v4.clone()).is_ok());
    assert!(verify_full("2130706433", v4.clone()).is_ok());
    assert!(verify_full("0x7f.0.0.1", v4).is_ok());
    // The CN is compared as a string.
    assert_host_failure(
        verify_full("127.000.000.001", LeafSpec::cn_only("127.0.0.1")),
        "server certificate for \"127.0.0.1\" does not match host name \"127.000.000.001\"",
    );
}

#[test]
fn a_name_host_with_only_ip_sans_falls_back_to_the_cn() {
    let spec = LeafSpec::cn_only(HOST).ip("127.0.0.1".parse().unwrap());
    assert!(verify_full(HOST, spec.clone()).is_ok());
    // Both the iPAddress and the CN were examined.
    assert_host_failure(
        verify_full("other.example", spec),
        "server certificate for \"127.0.0.1\" (and 1 other name) does not match host name \"other.example\"",
    );
}

#[test]
fn postgresql_documented_openssl_recipe_under_verify_full() {
    if openssl_path().is_none() {
        eprintln!("openssl CLI not found: the recipe cannot run here");
        return;
    }
    let dir = std::env::temp_dir().join(format!("pgtls-verification-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (root, server, key) = openssl_v1_recipe(&dir, HOST).expect("recipe");
    let read = |p: &PathBuf| std::fs::read(p).unwrap();
    let root = CertificateDer::from_pem_slice(&read(&root)).unwrap();
    let cert = CertificateDer::from_pem_slice(&read(&server)).unwrap();
    let key = PrivateKeyDer::from_pem_slice(&read(&key)).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    for mode in [SslMode::Require, SslMode::VerifyCa, SslMode::VerifyFull] {
        let result = attempt(
            &with_roots(mode, HOST, std::slice::from_ref(&root)),
            std::slice::from_ref(&cert),
            &key,
        );
        assert!(result.is_ok(), "{mode}: {result:?}");
    }
    let result = attempt(
        &no_roots(SslMode::Require),
        std::slice::from_ref(&cert),
        &key,
    );
    assert!(result.is_ok(), "no roots: {result:?}");
    assert_host_failure(
        attempt(
            &with_roots(SslMode::VerifyFull, "other.example", &[root]),
            &[cert],
            &key,
        ),
        "server certificate for \"db.example.com\" does not match host name \"other.example\"",
    );
}

// ------------------------------------------------------------------------------------------
// The policy around verification failures (BEHAVIOUR.md#fallbacks): a new connection.

#[test]
fn prefer_with_a_root_file_and_an_unknown_ca_ends_in_plaintext_on_a_new_connection() {
    let trusted = Ca::root("trusted");
    let other = Ca::root("other");
    let leaf = other.leaf(LeafSpec::server(HOST));
    let script = ServerScript::tls(default_server_tls_config(
        leaf.chain.clone(),
        leaf.key.clone_key(),
    ));
    let config = with_roots(SslMode::Prefer, HOST, &[trusted.root_der()]);
    let net = MemNetwork::same(script);
    let connected = connect(
        &config,
        None,
        |t| net.open(t),
        |s| net.startup(s, "alice", "app"),
    )
    .expect("libpq's silent downgrade");
    assert!(!connected.stream.is_tls());
    assert_eq!(
        net.events(),
        [
            "connect",
            "sslrequest",
            "S",
            "tls-fail",
            "reconnect",
            "startup-plaintext",
            "authok"
        ]
    );
    let errors: Vec<_> = connected.attempts.iter().map(|a| a.error.clone()).collect();
    assert_eq!(errors, [Some(UNKNOWN_ISSUER.to_owned()), None]);
    let obs = net.observations();
    assert_eq!(obs.len(), 2);
    assert!(!obs[1].saw_ssl_request);
    assert_eq!(obs[1].startups.len(), 1);
    assert!(!obs[1].startups[0].over_tls);
    // The first server got the alert.
    assert!(matches!(
        obs[0].tls_error,
        Some(rustls::Error::AlertReceived(_))
    ));
    let first = net.conn(0);
    assert_eq!(first.borrow().written[..8], SSL_REQUEST);
}

#[test]
fn allow_verifies_the_chain_on_its_tls_attempt() {
    let trusted = Ca::root("trusted");
    let other = Ca::root("other");
    let make = |ca: &Ca| {
        let leaf = ca.leaf(LeafSpec::server(HOST));
        ServerScript::tls(default_server_tls_config(
            leaf.chain.clone(),
            leaf.key.clone_key(),
        ))
        .with_startup(StartupBehaviour::RejectPlaintext)
    };
    // An unknown CA: the TLS attempt fails and nothing is left.
    let config = with_roots(SslMode::Allow, HOST, &[trusted.root_der()]);
    let net = MemNetwork::same(make(&other));
    let failed = connect(
        &config,
        None,
        |t| net.open(t),
        |s| net.startup(s, "alice", "app"),
    )
    .expect_err("allow's TLS attempt verifies the chain");
    assert_eq!(failed.error.to_string(), UNKNOWN_ISSUER);
    assert_eq!(
        net.events(),
        [
            "connect",
            "startup-plaintext",
            "authfail",
            "reconnect",
            "sslrequest",
            "S",
            "tls-fail"
        ]
    );
    // A trusted CA: TLS on the second connection.
    let net = MemNetwork::same(make(&trusted));
    let connected = connect(
        &config,
        None,
        |t| net.open(t),
        |s| net.startup(s, "alice", "app"),
    )
    .expect("allow retries with TLS");
    assert!(connected.stream.is_tls());
    assert_eq!(
        net.events(),
        [
            "connect",
            "startup-plaintext",
            "authfail",
            "reconnect",
            "sslrequest",
            "S",
            "tls-ok",
            "startup",
            "authok"
        ]
    );
}

#[test]
fn one_config_serves_many_connections_with_the_same_verdict() {
    // Roots are parsed once per Config; every connection gets the same verdict.
    let trusted = Ca::root("trusted");
    let other = Ca::root("other");
    let leaf = other.leaf(LeafSpec::server(HOST));
    let config = with_roots(SslMode::VerifyCa, HOST, &[trusted.root_der()]);
    let first = failure(serve(&config, &leaf));
    let second = failure(serve(&config, &leaf));
    assert_eq!(first, UNKNOWN_ISSUER);
    assert_eq!(first, second);
}
