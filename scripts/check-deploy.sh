#!/usr/bin/env bash
# Deployment checks (run by .ci/run): the SAM template passes cfn-lint, both functions build with
# `cargo lambda build --release` (plain cargo, no Zig), and each bootstrap needs no newer glibc
# than provided.al2023 offers (2.34).
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/venv.sh
ensure_venv cfn-lint cargo-lambda

echo "== cfn-lint template.yaml"
.venv/bin/cfn-lint template.yaml

echo "== cargo lambda build --release (forwarder, processor)"
.venv/bin/cargo-lambda lambda build --release --compiler cargo --bin forwarder --bin processor

echo "== glibc needed by each bootstrap (provided.al2023 has 2.34)"
status=0
for bin in forwarder processor; do
  bootstrap="target/lambda/$bin/bootstrap"
  newest=$(objdump -T "$bootstrap" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
  size=$(du -h "$bootstrap" | cut -f1)
  echo "$bin: $bootstrap, $size, needs $newest"
  if [ "$(printf '%s\n' "$newest" GLIBC_2.34 | sort -V | tail -1)" != "GLIBC_2.34" ]; then
    echo "$bin needs $newest, newer than provided.al2023's GLIBC_2.34" >&2
    status=1
  fi
done
exit "$status"
