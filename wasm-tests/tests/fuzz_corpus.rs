//! Bad input inside wasm: the committed fuzz corpus (`fuzz/corpus/<target>/*`, embedded by
//! build.rs) replayed through the fuzz bodies, as `tests/fuzz_corpus.rs` does natively,
//! plus a few hundred pseudo-random inputs per target. A panic fails the test.
//!
//! Not replayed here: `verifier` and `verifier_openssl`. Their inputs are decisions for
//! the chain generator `fuzz/common/generated_chain.rs`, which makes RSA keys with
//! rcgen's aws-lc-rs backend; aws-lc-rs does not build for wasm32-unknown-unknown and
//! ring cannot generate RSA keys. Natively `cargo test` replays them (tests/fuzz_corpus.rs).

use wasm_bindgen_test::wasm_bindgen_test;

include!(concat!(env!("OUT_DIR"), "/corpus.rs"));

type Body = fn(&[u8]);

/// Every fuzz body; all of them build for wasm32-unknown-unknown.
const TARGETS: &[(&str, Body)] = &[
    ("response_byte", pgtls::fuzz::response_byte),
    ("client_machine", pgtls::fuzz::client_machine),
    ("call_sequence", pgtls::fuzz::call_sequence),
    ("host_name", pgtls::fuzz::host_name),
    ("channel_binding", pgtls::fuzz::channel_binding),
    ("credentials", pgtls::fuzz::credentials),
    ("conninfo", pgtls::fuzz::conninfo),
    ("acceptor", pgtls::fuzz::acceptor),
];

/// Corpora whose bodies cannot run in wasm (see the module docs).
const NOT_REPLAYED: &[&str] = &["verifier", "verifier_openssl"];

#[wasm_bindgen_test]
fn every_committed_corpus_replays() {
    for (name, _) in TARGETS {
        assert!(
            CORPUS.iter().any(|(corpus, _)| corpus == name),
            "no committed corpus for {name}"
        );
    }
    let mut files = 0;
    for (name, entries) in CORPUS {
        assert!(!entries.is_empty(), "empty corpus for {name}");
        if NOT_REPLAYED.contains(name) {
            continue;
        }
        // A new corpus must get its body here, or a reason in NOT_REPLAYED.
        let (_, body) = TARGETS
            .iter()
            .find(|(target, _)| target == name)
            .unwrap_or_else(|| panic!("corpus {name} has no fuzz body in the wasm run"));
        for (_file, data) in *entries {
            body(data);
            files += 1;
        }
    }
    assert!(files >= 100, "only {files} corpus files");
}

/// A small deterministic generator (xorshift), so the run is reproducible.
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

#[wasm_bindgen_test]
fn pseudo_random_inputs_never_panic() {
    for (i, (_, body)) in TARGETS.iter().enumerate() {
        for data in pseudo_random_inputs(0x9e37_79b9_7f4a_7c15 ^ i as u64, 100) {
            body(&data);
        }
    }
}
