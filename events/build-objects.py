#!/usr/bin/env python3
"""Rebuilds the sample Firehose objects in events/objects/ from the records in events/records/.

The objects are committed; this script only documents how they were made (and remakes them
byte for byte: gzip members carry no timestamp). Run from the repository root:
    python3 events/build-objects.py
"""
import gzip
import io
import json
from pathlib import Path

root = Path(__file__).resolve().parent
records = root / "records"
objects = root / "objects"


def one_line(name):
    return json.dumps(json.loads((records / name).read_text()), separators=(",", ":"), ensure_ascii=False)


def gz(data: bytes) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as f:
        f.write(data)
    return out.getvalue()


measurement = (records / "monitron-v2-measurement.json").read_text().strip()
alarm = (records / "illustrative-v2-asset-state-transition-alarm.json").read_text().strip()
closure = (records / "illustrative-v2-asset-state-transition-user-closure.json").read_text().strip()
sensor = (records / "illustrative-v2-sensor-disconnected.json").read_text().strip()
gateway = (records / "illustrative-v2-gateway-disconnected.json").read_text().strip()
v1_sap = (records / "monitron-v1-sap-sample.json").read_text().strip()
v1_precursor = (records / "monitron-v1-precursor-sample.json").read_text().strip()

# A warning before the alarm, on the same asset, so the object tells a small story.
warning = alarm.replace('"e-200"', '"e-199"').replace("09:00:01.500", "08:45:00.250").replace(
    '"newState":"ALARM","previousState":"WARNING"', '"newState":"WARNING","previousState":"HEALTHY"'
)
firehose_error = json.dumps(
    {
        "attemptsMade": 4,
        "arrivalTimestamp": 1709283601500,
        "errorCode": "DynamicPartitioning.MetadataExtractionFailed",
        "errorMessage": "Non JSON record provided",
        "attemptEndingTimestamp": 1709283661500,
        "rawData": "bm90IGpzb24=",
    },
    separators=(",", ":"),
)

v2 = [measurement, warning, sensor, alarm, measurement.replace('"180"', '"181"'), alarm, gateway, closure]

files = {
    # AppendDelimiterToRecord on (AWS's Monitron setup): one record per line; e-200 twice.
    "monitron-v2-ndjson.json": ("\n".join(v2) + "\n").encode(),
    # Firehose's default: records concatenated with no delimiter.
    "monitron-v2-concatenated.json": "".join(v2).encode(),
    # GZIP compression, two members (as a multipart or re-compressed object may have).
    "monitron-v2-ndjson.json.gz": gz(("\n".join(v2[:4]) + "\n").encode()) + gz(("\n".join(v2[4:]) + "\n").encode()),
    # v1 records as the SAP samples write them: pretty-printed with tabs, numeric eventIds.
    "monitron-v1-pretty.json": (v1_sap + "\n" + v1_precursor + "\n").encode(),
    # A day later: the user closes the anomaly in Monitron (scripts/e2e-local.sh closes the loop).
    "monitron-v2-user-closure.json": (closure + "\n").encode(),
}

# Bad bytes between good records: a truncated record, garbage, invalid UTF-8, a Firehose error
# wrapper and a bare number; the alarm and the closure around them are still forwarded.
broken = b"\n".join(
    [
        warning.encode(),
        b'{"timestamp":"2024-03-01 08:50:00.000","eventId":"cut-short","eventType":"assetStat',
        alarm.encode(),
        b"this line is not JSON",
        b'{"eventId":"bad-utf8","eventType":"assetStateTransition","eventPayload":{"siteName":"Site \xff"}}',
        firehose_error.encode(),
        b"42",
        closure.encode(),
    ]
) + b"\n"
files["broken-records.json"] = broken

# A gzip object cut short: every record before the cut is read, then the object fails.
many = "\n".join(
    alarm.replace('"e-200"', '"cut-%04d"' % i) for i in range(400)
).encode()
compressed = gz(many)
files["truncated.json.gz"] = compressed[: len(compressed) // 2]

# A gzip bomb with a 100 MiB single line in it: 100 KiB compressed, a record far over the
# limit, then an alarm that must still be forwarded.
files["bomb-100MiB-line.json.gz"] = gz(
    b'{"note":"' + b"x" * (100 * 1024 * 1024) + b'"}\n' + alarm.replace('"e-200"', '"after-the-bomb"').encode() + b"\n"
)

for name, data in files.items():
    (objects / name).write_bytes(data)
    print(f"{name}: {len(data)} bytes")
