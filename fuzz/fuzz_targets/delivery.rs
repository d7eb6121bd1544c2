#![no_main]
//! See `e2b::fuzzing::delivery`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| e2b::fuzzing::delivery(data));
