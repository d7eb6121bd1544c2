#!/usr/bin/env bash
# TLS cost of reaching the broker (issue 21), in one run: the same object through the real
# forwarder over TLS with a private CA and over mutual TLS with certificate logon, interleaved;
# the ratio of their rates and the requests per TLS handshake.
#
# Usage: bench/tls.sh [EVENTS] [LATENCY_MS] [CONCURRENCY] [ROUNDS]   (defaults: 5000 2 16 3)
# Targets: mutual TLS >= 0.9 of TLS; requests per handshake >= 100.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --example bench_tls
target/release/examples/bench_tls "$@"
