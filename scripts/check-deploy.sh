#!/usr/bin/env bash
# Deployment checks: the SAM template passes cfn-lint, both functions build with
# `cargo lambda build --release` (plain cargo, no Zig), each bootstrap needs no newer glibc
# than provided.al2023 offers (2.34), and `cargo lambda deploy --dry` packages each function
# with its settings from deploy/<function>.toml (offline: nothing is sent to AWS).
#
# Usage: bash scripts/check-deploy.sh                 builds the bootstraps as a deployment does
#        bash scripts/check-deploy.sh --test-build    checks the binaries the test command built
#                                                     (target/debug; what CI runs, after the tests)
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/venv.sh
ensure_venv

echo "== cfn-lint template.yaml"
.venv/bin/cfn-lint template.yaml

if [ "${1:-}" = "--test-build" ]; then
  # The same code and features (resolver 1 unifies them with the tests'), built once: CI spends
  # its minutes on one build of the dependencies, not two (the release one took 4 to 5 minutes).
  echo "== the bootstraps of the test build (target/debug/forwarder, target/debug/processor)"
  for bin in forwarder processor; do
    [ -x "target/debug/$bin" ] || { echo "target/debug/$bin is missing: run the tests first (bash scripts/test.sh)" >&2; exit 1; }
    mkdir -p "target/lambda/$bin"
    cp "target/debug/$bin" "target/lambda/$bin/bootstrap"
  done
else
  echo "== cargo lambda build --release (forwarder, processor)"
  .venv/bin/cargo-lambda lambda build --release --compiler cargo --bin forwarder --bin processor
fi

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
echo "== cargo lambda deploy --dry (deploy/forwarder.toml, deploy/processor.toml)"
for bin in forwarder processor; do
  out=$(AWS_REGION=eu-central-1 AWS_ACCESS_KEY_ID=offline AWS_SECRET_ACCESS_KEY=offline \
    .venv/bin/cargo-lambda lambda deploy --dry --global "deploy/$bin.toml" --binary-name "$bin" "e2b-$bin" -o json 2>/dev/null) || {
    echo "cargo lambda deploy --dry failed for $bin" >&2; status=1; continue; }
  echo "$out" | .venv/bin/python -c '
import json, sys
bin = sys.argv[1]
text = sys.stdin.read()
out = json.loads(text[text.index("{"):])  # after any progress line
config = out["config"]
problems = [key + " missing" for key in ("memory", "timeout", "tracing", "role", "env_var") if not config.get(key)]
path = out["path"]
if not path.endswith(bin + "/bootstrap.zip"):
    problems.append("packaged " + path)
variables = len(config.get("env_var") or [])
memory, timeout, tracing, role = (config.get(k) for k in ("memory", "timeout", "tracing", "role"))
print(f"{bin}: {path}, memory {memory} MB, timeout {timeout} s, tracing {tracing}, {variables} variables, role {role}")
for problem in problems:
    print(bin + ": " + problem, file=sys.stderr)
sys.exit(1 if problems else 0)
' "$bin" || status=1
done
exit "$status"
