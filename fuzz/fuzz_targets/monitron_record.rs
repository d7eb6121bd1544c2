#![no_main]
//! See `e2b::fuzzing::monitron_record`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| e2b::fuzzing::monitron_record(data));
