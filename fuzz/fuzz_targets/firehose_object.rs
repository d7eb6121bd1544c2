#![no_main]
//! See `e2b::fuzzing::firehose_object`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| e2b::fuzzing::firehose_object(data));
