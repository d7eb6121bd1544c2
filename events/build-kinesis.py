#!/usr/bin/env python3
"""Builds the sample Lambda Kinesis events in events/kinesis/ from the records in events/records/.

Each Kinesis record's `data` is base64 of what Monitron writes to its export stream: one record
as JSON (sometimes several, concatenated). The events are committed; this script documents how
they were made and remakes them byte for byte. Run from the repository root:
    python3 events/build-kinesis.py
"""
import base64
import json
from pathlib import Path

root = Path(__file__).resolve().parent
records = root / "records"
out = root / "kinesis"

STREAM = "arn:aws:kinesis:eu-central-1:111122223333:stream/monitron-live-export"
SHARD = "shardId-000000000000"


def one_line(name):
    return json.dumps(json.loads((records / name).read_text()), separators=(",", ":"), ensure_ascii=False)


def record(n, data, arrival=1709283601.5):
    """A Kinesis event record; `data` is bytes (base64-encoded here) or a str used as it is."""
    sequence = f"4959033827149025660855969253836157109592157598913658{n:04d}"
    encoded = base64.b64encode(data).decode() if isinstance(data, bytes) else data
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": "proj-1",
            "sequenceNumber": sequence,
            "data": encoded,
            "approximateArrivalTimestamp": arrival + n / 1000,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{SHARD}:{sequence}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::111122223333:role/e2b-forwarder",
        "awsRegion": "eu-central-1",
        "eventSourceARN": STREAM,
    }


alarm = one_line("illustrative-v2-asset-state-transition-alarm.json")
recovery = alarm.replace('"e-200"', '"e-202"').replace(
    '"newState":"ALARM","previousState":"WARNING"', '"newState":"HEALTHY","previousState":"ALARM"'
)
warning = alarm.replace('"e-200"', '"e-199"').replace(
    '"newState":"ALARM","previousState":"WARNING"', '"newState":"WARNING","previousState":"HEALTHY"'
)
measurement = one_line("monitron-v2-measurement.json")

samples = {
    # One alarm: what the stream carries most of the time an alert happens.
    "kinesis-monitron-alarm.json": [record(1, alarm.encode())],
    # A batch with what a stream can carry: alerts, a repeat, a recovery, two records
    # concatenated in one Kinesis record, a measurement (not forwarded), and three broken
    # records (data not base64, not JSON, not Monitron) that are counted and never fail the batch.
    "kinesis-monitron-batch.json": [
        record(1, warning.encode()),
        record(2, alarm.encode()),
        record(3, alarm.encode()),
        record(4, "%%% not base64 %%%"),
        record(5, b'{"eventId": "broken", '),
        record(6, b'{"hello": "not Monitron"}'),
        record(7, (measurement + recovery).encode()),
    ],
}

out.mkdir(exist_ok=True)
for name, batch in samples.items():
    (out / name).write_text(json.dumps({"Records": batch}, indent=2, ensure_ascii=False) + "\n")
    print(f"events/kinesis/{name}: {len(batch)} record(s)")
