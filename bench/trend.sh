#!/usr/bin/env bash
# Trend chart render time (issue 32), in one run: the bundled 30-day sample's chart rendered as
# PNG and SVG, against encoding a blank PNG of the same size (the encoder alone); then the
# release `e2b` and `processor` binaries' sizes, the figures to compare when the chart's code
# changes (the processor draws and attaches the chart).
#
# Usage: bench/trend.sh [ROUNDS]   (default 50)
# Target (issue 32): a PNG in at most 50 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin e2b --bin processor --example bench_trend
target/release/examples/bench_trend "${1:-50}"
echo "release e2b binary: $(stat -c %s target/release/e2b) bytes"
echo "release processor binary: $(stat -c %s target/release/processor) bytes"
