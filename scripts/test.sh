#!/usr/bin/env bash
# The project's test command (README, "Quick start"): the test peers it needs, formatting, lints,
# every test, then one closing line with the totals over all test binaries.
#
# Test peers, installed into .venv exactly as requirements-test.txt pins them (scripts/venv.sh;
# made anew when the lock changes): moto server (S3, Secrets Manager, DynamoDB, SQS and CloudWatch
# over real HTTP for the real AWS SDK), cargo-lambda (the Lambda runtime emulator: `cargo lambda
# watch` and `invoke`) and cfn-lint. The tests start and stop them themselves. Debian's Chromium and ChromeDriver
# (apt-get, when absent) drive the console's browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/venv.sh
ensure_venv
ensure_browser
export E2B_MOTO_SERVER="$PWD/.venv/bin/moto_server"
export E2B_CARGO_LAMBDA="$PWD/.venv/bin/cargo-lambda"
export E2B_PYTHON="$PWD/.venv/bin/python"   # cfn-lint's YAML loader for the IAM check

cargo fmt --all -- --check
# Clippy's lints, as `cargo clippy --all-targets -- -D warnings` runs them, but during the test
# build: clippy-driver is the workspace's compiler (RUSTC_WORKSPACE_WRAPPER and CLIPPY_ARGS, the
# two settings `cargo clippy` itself makes), so the dependencies are compiled once for the lints
# and the tests instead of checked a second time (4.5 minutes of a clean run on 2 cores). The
# examples (the benchmark drivers) are built too, as test targets, so they are linted as well.
# The settings stay exported for the test run: a Lambda under `cargo lambda watch` runs
# `cargo run`, which then finds its binary built.
clippy_driver=$(command -v clippy-driver || rustup which clippy-driver 2>/dev/null || true)
[ -n "$clippy_driver" ] || { echo "test: clippy-driver is missing (rustup component add clippy)" >&2; exit 1; }
export RUSTC_WORKSPACE_WRAPPER="$clippy_driver"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
cargo test --locked --no-run --lib --tests --examples
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
# Every log line of the suite goes into $log (tests/support/mod.rs), for the secret scan below.
# The console shows the tests, not the log lines.
# The library's and the integration tests (the binaries are built for them); the benchmark
# drivers in examples/ were built and linted above, not run.
E2B_TEST_LOGS=1 RUST_LOG=info cargo test --locked --lib --tests 2>&1 | tee "$log" \
  | grep -Ev $'^(\e\\[[0-9;]*m)* *(TRACE|DEBUG|INFO|WARN|ERROR)\\b|^\\{"' || status=$?
[ "$status" -eq 0 ] && { bash scripts/scan-logs.sh "$log" || status=$?; }
# A red run shows what failed: the runners' failure sections, which the console filter hides.
[ "$status" -eq 0 ] || awk '/^failures:$/ {show = 1} show {print} /^test result:/ {show = 0}' "$log" | grep -av '^{"' | tail -200
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
