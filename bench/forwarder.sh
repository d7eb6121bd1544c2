#!/usr/bin/env bash
# Forwarder speed, in one run: publishing throughput against the Solace REST test broker
# (answering after 2 ms) through the real forwarder path, with a plain-reqwest baseline, then
# the same object with the delivery ledger on (DynamoDB on moto; issue 13: its writes must not
# halve throughput); the same through SAP Event Mesh's messagingrest (the Event Mesh test peer,
# a bearer token; issue 22) against plain-reqwest POSTs with the same token; an object of
# measurements with the trend series off and on (issue 32); and the Lambda
# binary's cold start and idle RSS against a minimal Lambda Runtime API.
#
# Usage: bench/forwarder.sh [EVENTS] [LATENCY_MS] [CONCURRENCY]   (defaults: 10000 2 16)
# Targets (issue 3): ratio to the bound concurrency/latency >= 0.5; cold start <= 50 ms;
# idle RSS <= 24 MiB. Issue 31: span export on at >= 0.95 of off. Issue 32: an object of
# measurements with the trend series on at >= 0.8 of the rate with it off.
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
echo "== an object of measurements with the trend series off and on (issue 32; DynamoDB on moto)"
target/release/examples/bench_forwarder publish-series 2000 "${2:-2}" "${3:-16}"
echo "== publishing with span export on (OTLP/HTTP to a local collector) against off (issue 31)"
# Off and on alternate, each in a process of its own (the subscriber is global); adjacent runs
# share the machine's state, so the median of the paired ratios is the figure, best against best
# beside it.
pairs=""
for round in 1 2 3 4 5; do
  off=$(target/release/examples/bench_forwarder publish-traced off "${1:-10000}" "${2:-2}" "${3:-16}")
  on=$(target/release/examples/bench_forwarder publish-traced on "${1:-10000}" "${2:-2}" "${3:-16}")
  echo "$off"; echo "$on"
  pairs="$pairs $(echo "$off" | awk '/^export/ {print $3}'):$(echo "$on" | awk '/^export/ {print $3}')"
done
echo "$pairs" | tr ' ' '\n' | awk -F: 'NF == 2 {
    r[++n] = $2 / $1; if ($1 > off) off = $1; if ($2 > on) on = $2 }
  END { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (r[j] < r[i]) { t = r[i]; r[i] = r[j]; r[j] = t }
        printf "span export on / off: median of %d paired ratios %.2f (from %.2f to %.2f), best against best %.2f (%d / %d events/s); target >= 0.95\n", n, r[int((n + 1) / 2)], r[1], r[n], on / off, on, off }'
echo "== cold start (best of 5)"
best=""
for _ in 1 2 3 4 5; do
  out=$(target/release/examples/bench_forwarder cold-start target/release/forwarder)
  ms=$(echo "$out" | awk '/cold start/ {print $3}')
  if [ -z "$best" ] || awk -v a="$ms" -v b="$best" 'BEGIN{exit !(a < b)}'; then best=$ms; best_out=$out; fi
done
echo "$best_out"
