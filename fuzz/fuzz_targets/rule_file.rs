#![no_main]
//! See `e2b::fuzzing::rule_file`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| e2b::fuzzing::rule_file(data));
