#!/usr/bin/env bash
# The forwarder on Monitron's Kinesis data stream (issue 14): from each record's
# approximateArrivalTimestamp to the broker's 200, p50 / p99 / max over RECORDS records with the
# Solace REST test broker answering after LATENCY_MS, at batch sizes 1, 100 and 1,000, for steady
# arrivals at RATE records/s and for a burst (every record waiting at once). Goal: p99 under 1 s
# at batch size 100. Lambda's own polling (up to once per second on an idle shard) comes on top;
# the S3 path's floor is Firehose's buffer (60 s at least, 300 s by default).
#
# Usage: bench/kinesis.sh [RECORDS] [LATENCY_MS] [RATE]   (defaults: 10000 2 200)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --example bench_kinesis
target/release/examples/bench_kinesis "${1:-10000}" "${2:-2}" "${3:-200}"
