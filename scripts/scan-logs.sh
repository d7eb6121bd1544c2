#!/usr/bin/env bash
# Reads the whole test suite's output (scripts/test.sh runs it with E2B_TEST_LOGS=1, so every
# log line of the library, of both Lambdas under cargo lambda watch, and of the e2b binary is in
# it) and fails if any secret of the tests, any token the test servers issued, or any
# Authorization value appears. It also fails when it has too few log lines to mean anything.
#
# Usage: scripts/scan-logs.sh LOG
set -euo pipefail
log=${1:?usage: scan-logs.sh LOG}

processed=$(grep -c 'event processed' "$log" || true)
emf=$(grep -c '"_aws"' "$log" || true)
lines=$(wc -l < "$log")
echo "log scan: $lines lines, $processed 'event processed' records, $emf EMF lines"
if [ "$processed" -lt 100 ] || [ "$emf" -lt 2 ]; then
  echo "log scan: too few log lines: were the tests run with E2B_TEST_LOGS=1?" >&2
  exit 1
fi

# Every test credential contains `s3cret`; PEM blocks come from secrets; the test servers issue tokens `access-N`,
# `dest-token-N`, `broker-token-N`, `em-token-N` (Event Mesh); Authorization values look like
# `Basic <base64>` / `Bearer <token>`; an Event Mesh service key holds `clientsecret`.
patterns=(
  's3cret'
  'nobody-has'
  'local-(mesh|s4)-password'
  '\baccess-[0-9]+\b'
  'dest-token-[0-9]+'
  'broker-token-[0-9]+'
  'em-token-[0-9]+'
  '\bBasic [A-Za-z0-9+/]{12,}=*'
  '\bBearer [A-Za-z0-9._~+/-]{8,}'
  '"access_token"'
  '"client_secret" *: *"[^"*]'
  '"clientsecret" *: *"[^"*]'
  '"password" *: *"[^"*]'
  # A PEM block of a secret (`ca_pem`, `client_cert_pem`, `client_key_pem`) never reaches a log.
  '-----BEGIN [A-Z ]+-----'
)
found=0
for pattern in "${patterns[@]}"; do
  # Lines of the test harness itself (test names, `test ... ok`) are not logs.
  hits=$(grep -En -- "$pattern" "$log" | grep -Ev '^[0-9]+:(test |     Running|running [0-9]+ test)' || true)
  if [ -n "$hits" ]; then
    found=1
    echo "log scan: /$pattern/ appears:" >&2
    # Show where, never the value itself.
    printf '%s\n' "$hits" | cut -d: -f1 | head -5 | sed 's/^/  line /' >&2
  fi
done
if [ "$found" -ne 0 ]; then
  exit 1
fi
echo "log scan: no secret, token or Authorization value in the logs"
