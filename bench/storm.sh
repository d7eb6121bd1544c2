#!/usr/bin/env bash
# Alarm floods (issue 30): 5,000 positions of 5 sites alarm within 60 s against the S/4 test
# server with a limited capacity (10 requests a second answered, 503 beyond); 250 stay in alarm,
# the rest recover. 16 processor containers, S4_MAX_REQUESTS_PER_SECOND=8, DynamoDB on moto, the
# schedule ticking every TICK seconds (default 60, as deployed). See examples/bench_storm.rs.
#
# Usage: bench/storm.sh [POSITIONS_PER_SITE] [TICK_SECONDS]    (defaults 1000 and 60)
# Goals: 5 storm notifications + 250; the busiest second at S/4 within the limit; the last
# notification within storm_quiet + 2 ticks of the storms' end; DynamoDB writes per event.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
ensure_venv
export E2B_MOTO_SERVER="$PWD/.venv/bin/moto_server"
cargo build --release --quiet --example bench_storm
target/release/examples/bench_storm "${1:-1000}" "${2:-60}"
