#!/usr/bin/env bash
# `e2b console` page times (issue 23): 10,000 episodes and 1,000 failures seeded into moto, the
# console served in process over them, each page asked for 100 times: p50 / p95 per page,
# against the same requests refused by the access guard (the HTTP round trip alone).
#
# Usage: bench/console.sh [EPISODES] [FAILURES] [ROUNDS]   (defaults: 10000 1000 100)
# Target: every page's p95 under 300 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
ensure_venv
export E2B_MOTO_SERVER="$PWD/.venv/bin/moto_server"
cargo build --release --quiet --example bench_console
target/release/examples/bench_console "${1:-10000}" "${2:-1000}" "${3:-100}"
