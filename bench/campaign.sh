#!/usr/bin/env bash
# Fault and load campaigns at full size (issue 7); the short form runs in CI (tests/it/campaigns.rs).
#
# - forwarder: 1,000 objects with 50,000 alarm events on moto S3, through the test broker failing
#   10% of publishes transiently (503), 1% for good (400) and answering 5% after 40 ms; run twice
#   in this one script: first without the delivery ledger (a refusal fails the invocation, which
#   is retried whole as Lambda would: the baseline duplicates), then with it (issue 13: progress
#   in DynamoDB, refusals recorded and then resent as `e2b resend` does). Every event must be
#   delivered, named in its failed invocation or recorded; prints duplicate publishes as a share
#   of events, events lost, refusals recorded and resent, and RSS. A third run notifies each
#   object twice at once (S3 may), with the ledger.
# - processor: 10,000 alerts each delivered twice at once (20,000 deliveries), S/4 (the test
#   server in its own process) failing 10% of requests and expiring CSRF tokens every 500
#   requests, 503s redelivered; exactly one notification per alert, every delivery with an
#   outcome; RSS of the processor's process at 10% and at the end.
#
# Usage: bench/campaign.sh [OBJECTS EVENTS_PER_OBJECT ALERTS]   (default 1000 50 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
ensure_venv
export E2B_MOTO_SERVER="$PWD/.venv/bin/moto_server"
cargo build --release --quiet --example campaign --example s4_test_server

target/release/examples/campaign forwarder "${1:-1000}" "${2:-50}" without-ledger
target/release/examples/campaign forwarder "${1:-1000}" "${2:-50}"
target/release/examples/campaign forwarder "${1:-1000}" "${2:-50}" twice

port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
S4_CHAOS=100,500 target/release/examples/s4_test_server "$port" CAMPAIGN campaign-s4-s3cret >/dev/null &
s4=$!
trap 'kill $s4 2>/dev/null || true' EXIT
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
target/release/examples/campaign processor "${3:-10000}" "http://127.0.0.1:$port/sap/opu/odata/sap/API_MAINTNOTIFICATION"
