#!/usr/bin/env bash
# The forwarder Lambda on this machine, with no AWS account: moto server stands in for S3 and
# Secrets Manager, a small Python listener stands in for the broker's REST port (it prints each
# message it gets), `cargo lambda watch` runs the function and `cargo lambda invoke` sends it the
# sample S3 notification in events/s3/, then the sample Kinesis batch in events/kinesis/ (the
# live stream path). Everything is stopped at the end.
#
# Usage: bash scripts/forwarder-local.sh        (installs the pinned test peers into .venv once)
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/venv.sh
ensure_venv

free_port() { .venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MOTO_PORT=$(free_port); BROKER_PORT=$(free_port); LAMBDA_PORT=$(free_port)
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

echo "== moto server on 127.0.0.1:$MOTO_PORT"
setsid .venv/bin/moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"$work/moto.log" 2>&1 & pids+=($!)

echo "== broker stand-in on 127.0.0.1:$BROKER_PORT (prints what it receives)"
cat >"$work/broker.py" <<'PY'
import http.server, sys, urllib.parse
class Broker(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        topic = urllib.parse.unquote(self.path)
        print(f"broker: {topic}  Solace-Message-ID={self.headers.get('Solace-Message-ID')}  {len(body)} bytes", flush=True)
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *args): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Broker).serve_forever()
PY
setsid .venv/bin/python "$work/broker.py" "$BROKER_PORT" & pids+=($!)

export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT" AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$MOTO_PORT") 2>/dev/null && break; sleep 0.1; done

echo "== bucket monitron-export-111122223333, the sample object, secret aem-credentials"
.venv/bin/python - <<'PY'
import boto3, json
s3 = boto3.client("s3")
s3.create_bucket(Bucket="monitron-export-111122223333")
key = "project=Plant A/site=Site 1/time=2024-03-01 00:00:00/monitron-v2-ndjson.json.gz"
s3.put_object(Bucket="monitron-export-111122223333", Key=key, Body=open("events/objects/monitron-v2-ndjson.json.gz", "rb").read())
boto3.client("secretsmanager").create_secret(Name="aem-credentials", SecretString=json.dumps({"username": "solace-cloud-client", "password": "local-only"}))
PY

echo "== cargo lambda watch (the forwarder) on 127.0.0.1:$LAMBDA_PORT"
setsid .venv/bin/cargo-lambda lambda watch --bin forwarder --invoke-address 127.0.0.1 --invoke-port "$LAMBDA_PORT" --ignore-changes \
  --env-var "AEM_REST_URL=http://127.0.0.1:$BROKER_PORT" --env-var AEM_CREDENTIALS_SECRET=aem-credentials \
  --env-var "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL" --env-var AWS_REGION=us-east-1 \
  --env-var AWS_ACCESS_KEY_ID=testing --env-var AWS_SECRET_ACCESS_KEY=testing --env-var S3_FORCE_PATH_STYLE=true \
  >"$work/watch.log" 2>&1 & pids+=($!)
for _ in $(seq 1500); do (echo >"/dev/tcp/127.0.0.1/$LAMBDA_PORT") 2>/dev/null && break; sleep 0.2; done

echo "== cargo lambda invoke forwarder --data-file events/s3/s3-object-created.json"
.venv/bin/cargo-lambda lambda invoke forwarder --invoke-address 127.0.0.1 --invoke-port "$LAMBDA_PORT" \
  --data-file events/s3/s3-object-created.json
echo
echo "== cargo lambda invoke forwarder --data-file events/kinesis/kinesis-monitron-batch.json"
echo "   (Monitron's live stream: alerts, a repeat, a recovery, three broken records)"
.venv/bin/cargo-lambda lambda invoke forwarder --invoke-address 127.0.0.1 --invoke-port "$LAMBDA_PORT" \
  --data-file events/kinesis/kinesis-monitron-batch.json
echo
sleep 0.5
