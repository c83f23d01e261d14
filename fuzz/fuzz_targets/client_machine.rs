#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pgtls::fuzz::client_machine_target(data));
