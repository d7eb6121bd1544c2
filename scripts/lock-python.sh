#!/usr/bin/env bash
# Makes requirements-test.txt, the lock of the Python test peers, from requirements-test.in:
# every package the tools pull in, at an exact version, with the hashes of its files, so that a
# fresh .venv is the one the tests last passed with (scripts/venv.sh installs it with
# --require-hashes).
#
#   bash scripts/lock-python.sh             keep the pins, add what requirements-test.in adds
#   bash scripts/lock-python.sh --upgrade   move every pin to the newest version PyPI has
#   bash scripts/lock-python.sh --upgrade-package moto   move one package (and what it needs)
#
# Moving the pins is a change like any other: run `bash scripts/test.sh` (it reinstalls .venv
# because the lock changed), and commit the lock with what the new versions required.
#
# ziglang (cargo-lambda's dependency, only for cross-compiling, 40+ MB) is left out: the lock is
# installed with --no-deps, so nothing else is pulled in either.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools"
"$tools/bin/pip" install --quiet --disable-pip-version-check "pip-tools==7.7.0"
CUSTOM_COMPILE_COMMAND="bash scripts/lock-python.sh" "$tools/bin/pip-compile" --quiet \
  --generate-hashes --strip-extras --no-emit-index-url --no-emit-find-links --unsafe-package ziglang \
  --resolver backtracking --output-file requirements-test.txt "$@" requirements-test.in
echo "requirements-test.txt:"
grep -E '^[a-zA-Z0-9_.-]+==' requirements-test.txt | sed 's/ .*//' | tr '\n' ' '
echo
