#!/usr/bin/env bash
# Forwarder speed, in one run: publishing throughput against the Solace REST test broker
# (answering after 2 ms) through the real forwarder path, with a plain-reqwest baseline, then
# the same object with the delivery ledger on (DynamoDB on moto; issue 13: its writes must not
# halve throughput); the same through SAP Event Mesh's messagingrest (the Event Mesh test peer,
# a bearer token; issue 22) against plain-reqwest POSTs with the same token; and the Lambda
# binary's cold start and idle RSS against a minimal Lambda Runtime API.
#
# Usage: bench/forwarder.sh [EVENTS] [LATENCY_MS] [CONCURRENCY]   (defaults: 10000 2 16)
# Targets (issue 3): ratio to the bound concurrency/latency >= 0.5; cold start <= 50 ms;
# idle RSS <= 24 MiB. Issue 31: span export on at >= 0.95 of off.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
ensure_venv
export E2B_MOTO_SERVER="$PWD/.venv/bin/moto_server"
cargo build --release --quiet --bin forwarder --example bench_forwarder
echo "== publishing"
target/release/examples/bench_forwarder publish "${1:-10000}" "${2:-2}" "${3:-16}"
echo "== publishing to SAP Event Mesh"
target/release/examples/bench_forwarder publish-event-mesh "${1:-10000}" "${2:-2}" "${3:-16}"
echo "== publishing with span export on (OTLP/HTTP to a local collector) against off (issue 31)"
best_off=0; best_on=0
for round in 1 2 3; do
  for state in off on; do
    out=$(target/release/examples/bench_forwarder publish-traced "$state" "${1:-10000}" "${2:-2}" "${3:-16}")
    echo "$out"
    rate=$(echo "$out" | awk '/^export/ {print $3}')
    if [ "$state" = off ]; then
      best_off=$(awk -v a="$rate" -v b="$best_off" 'BEGIN{print (a > b) ? a : b}')
    else
      best_on=$(awk -v a="$rate" -v b="$best_on" 'BEGIN{print (a > b) ? a : b}')
    fi
  done
done
awk -v on="$best_on" -v off="$best_off" 'BEGIN{printf "span export on / off: %.2f (best %d against %d events/s; target >= 0.95)\n", on / off, on, off}'
echo "== cold start (best of 5)"
best=""
for _ in 1 2 3 4 5; do
  out=$(target/release/examples/bench_forwarder cold-start target/release/forwarder)
  ms=$(echo "$out" | awk '/cold start/ {print $3}')
  if [ -z "$best" ] || awk -v a="$ms" -v b="$best" 'BEGIN{exit !(a < b)}'; then best=$ms; best_out=$out; fi
done
echo "$best_out"
