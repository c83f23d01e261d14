//! Replays the committed cargo-fuzz corpus (fuzz/corpus/<target>/*) through the fuzz
//! bodies on stable Rust, plus a few thousand pseudo-random inputs per target, so that
//! plain `cargo test` catches regressions the fuzzers once found.
//!
//! The `verifier` corpus is replayed through the same chain generator the fuzz target
//! uses (`fuzz/common/generated_chain.rs`, included here). The `verifier_openssl` corpus
//! is not replayed: that target compares with the system's OpenSSL, and the library has
//! no OpenSSL dependency; its pgtls half is the `verifier` body, so its seeds are
//! replayed through that body instead.
use std::fs;

#[path = "../fuzz/common/generated_chain.rs"]
mod generated_chain;
use std::path::Path;

type Body = fn(&[u8]);

const TARGETS: &[(&str, Body)] = &[
    ("response_byte", pgtls::fuzz::response_byte),
    ("client_machine", pgtls::fuzz::client_machine_target),
    ("call_sequence", pgtls::fuzz::call_sequence_target),
    ("host_name", pgtls::fuzz::host_name),
    ("channel_binding", pgtls::fuzz::channel_binding),
    ("credentials", pgtls::fuzz::credentials),
    ("conninfo", pgtls::fuzz::conninfo),
    ("acceptor", pgtls::fuzz::acceptor),
    ("verifier", generated_chain::verifier_body),
];

/// Corpora replayed through another target's body (see the module docs).
const REPLAYED_ELSEWHERE: &[(&str, Body)] = &[("verifier_openssl", generated_chain::verifier_body)];

#[test]
fn every_target_has_a_committed_corpus_and_replays_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (name, body) in TARGETS.iter().chain(REPLAYED_ELSEWHERE) {
        let dir = root.join(name);
        let entries: Vec<_> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("corpus for {name} missing at {}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        assert!(!entries.is_empty(), "empty corpus for {name}");
        for path in entries {
            let data = fs::read(&path).unwrap();
            body(&data);
        }
    }
}

/// A small deterministic generator (xorshift) so the run is reproducible.
fn pseudo_random_inputs(seed: u64, count: usize) -> impl Iterator<Item = Vec<u8>> {
    let mut state = seed;
    (0..count).map(move |_| {
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let len = (next() % 600) as usize;
        (0..len).map(|_| next() as u8).collect()
    })
}

#[test]
fn pseudo_random_inputs_never_panic() {
    for (i, (_, body)) in TARGETS.iter().enumerate() {
        for data in pseudo_random_inputs(0x9e37_79b9_7f4a_7c15 ^ i as u64, 300) {
            body(&data);
        }
    }
}

/// The all-default chain is valid, and the generator's decisions reach the verifier:
/// a chain the verifier must reject (an expired leaf) is rejected with OpenSSL's words.
#[test]
fn generated_chains_reach_the_verifier() {
    let valid = generated_chain::generate(&[]).expect("the default chain");
    let verdicts = pgtls::fuzz::verify_chain(&valid.input()).expect("the root file loads");
    assert_eq!(verdicts.verify_ca, Ok(()), "{}", valid.description);
    assert_eq!(verdicts.verify_full, Ok(()), "{}", valid.description);

    // Header (7 bytes), then the root's choices (21 bytes), then the leaf's: validity 1.
    let mut expired_leaf = vec![0u8; 7 + 21];
    expired_leaf.extend([0; 17]);
    expired_leaf.push(1);
    let chain = generated_chain::generate(&expired_leaf).expect("a chain");
    let verdicts = pgtls::fuzz::verify_chain(&chain.input()).expect("the root file loads");
    assert_eq!(
        verdicts.verify_ca,
        Err("SSL error: certificate verify failed: certificate has expired".to_owned()),
        "{}",
        chain.description
    );
}

/// What verify-ca says about some of the committed `verifier` seeds (named after what
/// they change): `None` accepted, `Some(reason)` rejected with OpenSSL's reason. Each
/// of these verdicts was checked against OpenSSL by the `verifier_openssl` target.
const SEED_VERDICTS: &[(&str, Option<&str>)] = &[
    ("default", None),
    ("one_intermediate", None),
    ("two_intermediates", None),
    ("leaf_v1", None),
    ("root_v1", None),
    ("chain_rsa_ed25519_p384", None),
    ("leaf_expired", Some("certificate has expired")),
    ("intermediate_expired", Some("certificate has expired")),
    ("root_not_yet_valid", Some("certificate is not yet valid")),
    ("leaf_not_after_now", Some("certificate has expired")),
    ("leaf_not_before_now", None),
    ("leaf_wrong_signer", Some("certificate signature failure")),
    (
        "leaf_akid_wrong",
        Some("unable to get local issuer certificate"),
    ),
    ("intermediate_not_ca", Some("invalid CA certificate")),
    ("intermediate_v1", Some("invalid CA certificate")),
    (
        "intermediate_no_keycertsign",
        Some("invalid CA certificate"),
    ),
    (
        "pathlen_zero_two_intermediates",
        Some("path length constraint exceeded"),
    ),
    ("leaf_eku_client", Some("unsuitable certificate purpose")),
    ("leaf_eku_sgc", None),
    (
        "nc_permitted_other_domain",
        Some("permitted subtree violation"),
    ),
    ("nc_excluded_leaf_name", Some("excluded subtree violation")),
    ("crl_empty", None),
    ("crl_revokes_leaf", Some("certificate revoked")),
    ("crl_expired", Some("CRL has expired")),
    ("crl_wrong_signer", Some("CRL signature failure")),
    (
        "crl_missing_for_intermediate",
        Some("unable to get certificate CRL"),
    ),
    ("crl_all_intermediates", None),
    ("crl_idp_user_only", Some("different CRL scope")),
    ("sent_reversed_with_root", None),
    (
        "sent_missing_intermediate",
        Some("unable to get local issuer certificate"),
    ),
    ("root_file_with_intermediate", None),
    (
        "leaf_unknown_critical_extension",
        Some("unhandled critical extension"),
    ),
];

#[test]
fn seed_chains_get_openssl_verdicts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/verifier");
    for (name, expected) in SEED_VERDICTS {
        let data = fs::read(dir.join(name)).unwrap_or_else(|e| panic!("seed {name}: {e}"));
        let chain = generated_chain::generate(&data).expect("a chain");
        let verdicts = pgtls::fuzz::verify_chain(&chain.input()).expect("the root file loads");
        let got = verdicts
            .verify_ca
            .as_ref()
            .err()
            .map(|m| pgtls::fuzz::chain_error_reason(m));
        assert_eq!(got, *expected, "seed {name}: {}", chain.description);
    }
}
