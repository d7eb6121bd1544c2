#![no_main]
//! See `e2b::fuzzing::trigger`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| e2b::fuzzing::trigger(data));
