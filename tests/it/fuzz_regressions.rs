//! Every fuzz corpus input and crash reproducer (`fuzz/corpus/<target>/`,
//! `fuzz/regressions/<target>/`) through the fuzz targets' bodies (`e2b::fuzzing`), on the
//! stable toolchain: what the fuzzer once found stays fixed. `cargo fuzz run <target>` (nightly)
//! grows the corpus; see `docs/security.md`.

use std::path::Path;

fn run_all(target: &str, body: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut inputs = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries.flatten() {
            let data = std::fs::read(entry.path()).expect("data (path)");
            let outcome = std::panic::catch_unwind(|| body(&data));
            assert!(outcome.is_ok(), "{} fails", entry.path().display());
            inputs += 1;
        }
    }
    assert!(inputs > 0, "no corpus for {target}");
}

#[test]
fn firehose_object() {
    run_all("firehose_object", e2b::fuzzing::firehose_object);
}

#[test]
fn monitron_record() {
    run_all("monitron_record", e2b::fuzzing::monitron_record);
}

#[test]
fn trigger() {
    run_all("trigger", e2b::fuzzing::trigger);
}

#[test]
fn delivery() {
    run_all("delivery", e2b::fuzzing::delivery);
}

#[test]
fn rule_file() {
    run_all("rule_file", e2b::fuzzing::rule_file);
}

#[test]
fn template() {
    run_all("template", e2b::fuzzing::template);
}
