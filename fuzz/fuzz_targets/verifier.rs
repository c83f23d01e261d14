//! Structure-aware chains (root → 0..2 intermediates → leaf, with CRLs) verified by
//! pgtls in require-with-roots, verify-ca and verify-full; see
//! `fuzz/common/generated_chain.rs` for what the input decides.
#![no_main]

#[path = "../common/generated_chain.rs"]
mod generated_chain;

libfuzzer_sys::fuzz_target!(|data: &[u8]| generated_chain::verifier_body(data));
