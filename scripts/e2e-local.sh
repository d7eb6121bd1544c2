#!/usr/bin/env bash
# The whole system on this machine, with no AWS account, in one command:
#   moto server (S3, Secrets Manager, DynamoDB) ← bucket, sample Firehose object, secrets, table
#   the S/4 OData V2 test server (examples/s4_test_server.rs)
#   `cargo lambda watch` running both Lambdas; the forwarder's broker URL points straight at the
#   processor's Function URL (standing in for the mesh's topic → queue → RDP hop, which passes
#   the body through)
#   `cargo lambda invoke forwarder --data-file events/s3/s3-object-created-trend.json` (the
#   position's 30 days of measurements, kept as its trend, and its alerts), then
#   `cargo lambda invoke forwarder --data-file events/s3/s3-object-created.json`
# then prints the maintenance notifications S/4 now holds and the trend chart attached to it
# (checked: one PNG of 1200 x 600, kept as target/e2e-trend-chart.png), and stops everything.
#
# Usage: bash scripts/e2e-local.sh [--console]   (installs the pinned test peers into .venv once;
#        --console then serves `e2b console` over this setup until Ctrl-C)
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/venv.sh
ensure_venv
echo "== building the Lambdas and the S/4 test server"
cargo build --quiet --bin forwarder --bin processor --example s4_test_server

free_port() { .venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MOTO_PORT=$(free_port); S4_PORT=$(free_port); LAMBDA_PORT=$(free_port)
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
wait_port() { for _ in $(seq 1500); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.2; done; echo "port $1 did not open" >&2; return 1; }

export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT" AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing

echo "== moto server on 127.0.0.1:$MOTO_PORT"
setsid .venv/bin/moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"$work/moto.log" 2>&1 & pids+=($!)
echo "== S/4 test server on 127.0.0.1:$S4_PORT"
mkdir -p "$work/attachments"
S4_ATTACHMENTS_DIR="$work/attachments" \
  setsid target/debug/examples/s4_test_server "$S4_PORT" E2B_TECH_USER local-s4-password >"$work/s4.log" 2>&1 & pids+=($!)
wait_port "$MOTO_PORT"; wait_port "$S4_PORT"

echo "== bucket with the sample object, secrets, idempotency table"
.venv/bin/python - <<'PY'
import boto3, gzip, json
s3 = boto3.client("s3")
s3.create_bucket(Bucket="monitron-export-111122223333")
# The first day's export: the bundled sample object without the user's closure (e-201, from the
# next day), so that the notification is left open and escalated until the second object.
records = gzip.open("events/objects/monitron-v2-ndjson.json.gz", "rt").read().splitlines(keepends=True)
day_one = "".join(r for r in records if '"eventId":"e-201"' not in r)
assert len(day_one) < sum(map(len, records)), "the sample object no longer holds the closure e-201"
key = "project=Plant A/site=Site 1/time=2024-03-01 00:00:00/monitron-v2-ndjson.json.gz"
s3.put_object(Bucket="monitron-export-111122223333", Key=key, Body=gzip.compress(day_one.encode()))
# The position's month of hourly measurements, ending in the same alerts (the trend chart's data).
key = "project=Plant A/site=Site 1/time=2024-03-01 08:00:00/monitron-v2-trend-30d.json.gz"
s3.put_object(Bucket="monitron-export-111122223333", Key=key, Body=open("events/objects/monitron-v2-trend-30d.json.gz", "rb").read())
# A day later the user closes the anomaly in Monitron (its closure code): the second object.
key = "project=Plant A/site=Site 1/time=2024-03-02 10:30:00/monitron-v2-user-closure.json"
s3.put_object(Bucket="monitron-export-111122223333", Key=key, Body=open("events/objects/monitron-v2-user-closure.json", "rb").read())
sm = boto3.client("secretsmanager")
# The mesh's credentials: the forwarder publishes with them, the processor checks them.
sm.create_secret(Name="aem-credentials", SecretString=json.dumps({"username": "solace-cloud-client", "password": "local-mesh-password"}))
sm.create_secret(Name="s4-credentials", SecretString=json.dumps({"username": "E2B_TECH_USER", "password": "local-s4-password"}))
boto3.client("dynamodb").create_table(TableName="e2b-idempotency", BillingMode="PAY_PER_REQUEST",
    AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
PY

echo "== cargo lambda watch (forwarder and processor) on 127.0.0.1:$LAMBDA_PORT"
setsid .venv/bin/cargo-lambda lambda watch --invoke-address 127.0.0.1 --invoke-port "$LAMBDA_PORT" --ignore-changes \
  --env-var "SAP_AEM_REST_URL=http://127.0.0.1:$LAMBDA_PORT/lambda-url/processor/monitron/messages" \
  --env-var AEM_CREDENTIALS_SECRET=aem-credentials --env-var TREND_TABLE=e2b-idempotency \
  --env-var "S4_BASE_URL=http://127.0.0.1:$S4_PORT" --env-var S4_CREDENTIALS_SECRET=s4-credentials --env-var S4_SAP_CLIENT=100 \
  --env-var PROCESSOR_AUTH=basic --env-var PROCESSOR_CREDENTIALS_SECRET=aem-credentials --env-var IDEMPOTENCY_TABLE=e2b-idempotency \
  --env-var "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL" --env-var AWS_REGION=us-east-1 \
  --env-var AWS_ACCESS_KEY_ID=testing --env-var AWS_SECRET_ACCESS_KEY=testing --env-var S3_FORCE_PATH_STYLE=true \
  >"$work/watch.log" 2>&1 & pids+=($!)
wait_port "$LAMBDA_PORT"

echo "== cargo lambda invoke forwarder --data-file events/s3/s3-object-created-trend.json (30 days of measurements, then the alerts)"
.venv/bin/cargo-lambda lambda invoke forwarder --invoke-address 127.0.0.1 --invoke-port "$LAMBDA_PORT" \
  --data-file events/s3/s3-object-created-trend.json
echo
echo "== cargo lambda invoke forwarder --data-file events/s3/s3-object-created.json"
.venv/bin/cargo-lambda lambda invoke forwarder --invoke-address 127.0.0.1 --invoke-port "$LAMBDA_PORT" \
  --data-file events/s3/s3-object-created.json
echo

# Prints what S/4 holds, and checks it is what this step should leave: `open` (one notification,
# priority 1, open) or `completed` (the same one, completed, with the user's closure code).
show_notifications() {
.venv/bin/python - "$S4_PORT" "$1" <<'PY'
import base64, json, sys, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/sap/opu/odata/sap/API_MAINTNOTIFICATION/MaintenanceNotification?$format=json"
request = urllib.request.Request(url, headers={"Authorization": "Basic " + base64.b64encode(b"E2B_TECH_USER:local-s4-password").decode()})
results = json.load(urllib.request.urlopen(request))["d"]["results"]
for n in results:
    phase = "completed" if n.get("NotifProcessingPhase") == "4" else "open"
    print(f"{n['MaintenanceNotification']}  {n['NotificationType']}  priority {n.get('MaintPriority', '-')}  {phase:9}  "
          f"{n['TechnicalObject']}  {n['NotificationText']}  (ref {n['MaintNotifExtReferenceNumber']})")
    closure = [l for l in n.get("MaintNotifLongTextForEdit", "").splitlines() if "Closure code" in l]
    if closure:
        print(f"          {closure[0]}")
print(f"{len(results)} notification(s)")
expected = sys.argv[2]
ok = len(results) == 1 and results[0].get("MaintPriority") == "1"
if expected == "open":
    ok = ok and results[0].get("NotifProcessingPhase") != "4"
else:
    ok = ok and results[0].get("NotifProcessingPhase") == "4" and "Closure code" in results[0].get("MaintNotifLongTextForEdit", "")
if not ok:
    print(f"check failed: expected one notification, priority 1, {expected}", file=sys.stderr)
    sys.exit(1)
PY
}

echo "== maintenance notifications S/4 now holds (open, escalated to the alarm's priority)"
show_notifications open

echo
echo "== its trend chart, attached through API_CV_ATTACHMENT_SRV"
.venv/bin/python - "$S4_PORT" "$work/attachments" <<'PY'
import base64, json, os, shutil, struct, sys, urllib.request
auth = {"Authorization": "Basic " + base64.b64encode(b"E2B_TECH_USER:local-s4-password").decode()}
base = f"http://127.0.0.1:{sys.argv[1]}/sap/opu/odata/sap"
notes = json.load(urllib.request.urlopen(urllib.request.Request(f"{base}/API_MAINTNOTIFICATION/MaintenanceNotification?$format=json", headers=auth)))["d"]["results"]
number = notes[0]["MaintenanceNotification"]
url = f"{base}/API_CV_ATTACHMENT_SRV/GetAllOriginals?BusinessObjectTypeName=%27PMQMEL%27&LinkedSAPObjectKey=%27{number:0>12}%27&$format=json"
originals = json.load(urllib.request.urlopen(urllib.request.Request(url, headers=auth)))["d"]["results"]
for o in originals:
    print(f"{o['LinkedSAPObjectKey']}  {o['BusinessObjectTypeName']}  {o['FileName']}  {o['MimeType']}  {o['FileSize']} bytes")
files = sorted(os.listdir(sys.argv[2]))
ok = len(originals) == 1 and len(files) == 1 and originals[0]["FileName"] == f"Monitron-trend-{number}.png"
if ok:
    png = open(os.path.join(sys.argv[2], files[0]), "rb").read()
    width, height = struct.unpack(">II", png[16:24])
    ok = png[:8] == b"\x89PNG\r\n\x1a\n" and (width, height) == (1200, 600)
    shutil.copy(os.path.join(sys.argv[2], files[0]), "target/e2e-trend-chart.png")
    print(f"a PNG of {width} x {height}: target/e2e-trend-chart.png")
if not ok:
    print("check failed: expected one trend chart, a PNG of 1200 x 600", file=sys.stderr)
    sys.exit(1)
PY

echo
echo "== a day later the user closes the anomaly in Monitron: cargo lambda invoke forwarder --data-file events/s3/s3-object-created-user-closure.json"
.venv/bin/cargo-lambda lambda invoke forwarder --invoke-address 127.0.0.1 --invoke-port "$LAMBDA_PORT" \
  --data-file events/s3/s3-object-created-user-closure.json
echo
echo "== maintenance notifications S/4 now holds (the loop is closed)"
show_notifications completed

if [ "${1:-}" = "--console" ]; then
  echo
  echo "== e2b console over this local setup (Ctrl-C stops it and everything above)"
  IDEMPOTENCY_TABLE=e2b-idempotency S3_FORCE_PATH_STYLE=true \
    S4_BASE_URL="http://127.0.0.1:$S4_PORT" S4_CREDENTIALS_SECRET=s4-credentials S4_SAP_CLIENT=100 PROCESSOR_AUTH=iam \
    SAP_AEM_REST_URL="http://127.0.0.1:$LAMBDA_PORT/lambda-url/processor/monitron/messages" AEM_CREDENTIALS_SECRET=aem-credentials \
    cargo run --quiet --bin e2b -- console --port "${E2B_CONSOLE_PORT:-8765}"
fi
