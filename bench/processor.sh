#!/usr/bin/env bash
# Processor overhead per event, excluding S/4's own latency, and S/4 round trips per new
# notification, in one run against the S/4 OData test server on 127.0.0.1 (see
# examples/bench_processor.rs): the handler's p50/p99 next to the same S/4 requests sent from
# plain reqwest.
#
# Usage: bench/processor.sh [EVENTS]    (default 2000)
# Targets (issue 4): overhead p99 <= 5 ms; <= 2 round trips per new notification once warm.
# Then (issue 12) the bundled rules by episodes, with the episode records in DynamoDB on moto: S/4
# round trips and handler time per kind of event (first alert, escalation, append, closure).
# Then (issue 28) a recovery and a return in each week, twice: a return joining unread (S/4
# showed the notification open within the last 60 s), and reading S/4 first.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
ensure_venv
export E2B_MOTO_SERVER="$PWD/.venv/bin/moto_server"
cargo build --release --quiet --example bench_processor
target/release/examples/bench_processor "${1:-2000}"
