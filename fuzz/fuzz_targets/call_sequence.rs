#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pgtls::fuzz::call_sequence_target(data));
