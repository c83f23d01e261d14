//! Replays the committed cargo-fuzz corpus (fuzz/corpus/<target>/*) through the fuzz
//! bodies on stable Rust, plus a few thousand pseudo-random inputs per target, so that
//! plain `cargo test` catches regressions the fuzzers once found.
use std::fs;
use std::path::Path;

type Body = fn(&[u8]);

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

#[test]
fn every_target_has_a_committed_corpus_and_replays_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (name, body) in TARGETS {
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
