#!/usr/bin/env python3
"""Builds events/objects/monitron-v2-trend-30d.json.gz: 30 days of hourly Monitron v2
measurements of the bundled position (Plant A / Site 1 / Pump 7 / Motor DE, assetPositionId
pos-1, ISO class II), ending in its warning and alarm (the records of
events/records/illustrative-v2-asset-state-transition-alarm.json and the warning before it).

The story: a steady pump (about 1 mm/s, warmer by day) for three weeks, a 9-hour gap on day 12
(the gateway was off), then a bearing wearing: velocity climbs through ISO 10816-1 class II's
B/C (2.8 mm/s) into C/D (7.1 mm/s), temperature rises a few degrees, and Monitron's vibrationISO
model goes WARNING, then ALARM, at the asset state transitions.

The object is committed; this script documents how it was made and remakes it byte for byte
(a fixed seed, gzip without a timestamp). Run from the repository root:
    python3 events/build-trend.py
"""
import gzip
import io
import json
import random
from datetime import datetime, timedelta
from pathlib import Path

root = Path(__file__).resolve().parent
records = root / "records"
out_path = root / "objects" / "monitron-v2-trend-30d.json.gz"

alarm_at = datetime(2024, 3, 1, 9, 0, 1, 500000)
first = datetime(2024, 1, 31, 9, 0, 0)
hours = 30 * 24
gap = range(12 * 24 + 3, 12 * 24 + 12)  # day 12, 9 hours without data
wear_from = 21 * 24  # the last 9 days

rng = random.Random(7)


def stamp(t):
    return t.strftime("%Y-%m-%d %H:%M:%S.") + f"{t.microsecond // 1000:03d}"


def health(velocity):
    if velocity >= 7.1:
        return "ALARM"
    if velocity >= 2.8:
        return "WARNING"
    return "HEALTHY"


def measurement(hour, previous_iso):
    t = first + timedelta(hours=hour, seconds=7, milliseconds=476)
    day_cycle = 0.12 * (1 if 7 <= t.hour < 19 else 0)
    wear = 0.0 if hour < wear_from else ((hour - wear_from) / (hours - wear_from)) ** 2 * 6.6
    velocity = round(0.95 + day_cycle + wear + rng.uniform(-0.06, 0.06), 4)
    temperature = round(41.0 + 3.0 * (1 if 8 <= t.hour < 18 else 0) + wear * 0.9 + rng.uniform(-0.4, 0.4), 2)
    axes = [round(velocity * share, 4) for share in (0.55, 0.35, 0.75)]
    iso = health(velocity)
    record = {
        "timestamp": stamp(t),
        "eventId": f"m-{hour:04d}",
        "version": "2.0",
        "accountId": "111122223333",
        "projectName": "Plant A",
        "projectId": "proj-1",
        "eventType": "measurement",
        "eventPayload": {
            "siteName": "Site 1",
            "assetName": "Pump 7",
            "positionName": "Motor DE",
            "assetPositionURL": "https://app.monitron.aws/#/…",
            "assetPositionId": "pos-1",
            "sensor": {"physicalId": "45a8b30f6f8f", "rssi": -52},
            "gateway": {"physicalId": "cd9e483858ae"},
            "measurementTrigger": "periodic",
            "sequenceNo": 1000 + hour,
            "features": {
                "acceleration": {
                    "band0To6000Hz": {"xAxis": {"rms": 0.21}, "yAxis": {"rms": 0.84}, "zAxis": {"rms": 9.15}},
                    "band10To1000Hz": {
                        "totalVibration": {"absMax": round(velocity * 0.9, 4), "absMin": 0, "crestFactor": 2.8,
                                           "rms": round(velocity * 0.38, 4)},
                        "xAxis": {"rms": round(velocity * 0.21, 4)},
                        "yAxis": {"rms": round(velocity * 0.13, 4)},
                        "zAxis": {"rms": round(velocity * 0.27, 4)},
                    },
                },
                "velocity": {
                    "band10To1000Hz": {
                        "totalVibration": {"absMax": round(velocity * 2.4, 4), "absMin": 0, "crestFactor": 2.9,
                                           "rms": velocity},
                        "xAxis": {"rms": axes[0]},
                        "yAxis": {"rms": axes[1]},
                        "zAxis": {"rms": axes[2]},
                    }
                },
                "temperature": temperature,
            },
            "models": {
                "temperatureML": {"previousPersistentClassificationOutput": "HEALTHY",
                                  "persistentClassificationOutput": "HEALTHY",
                                  "pointwiseClassificationOutput": "HEALTHY"},
                "vibrationISO": {"isoClass": "CLASS2", "mutedThreshold": None,
                                 "previousPersistentClassificationOutput": previous_iso,
                                 "persistentClassificationOutput": iso,
                                 "pointwiseClassificationOutput": iso},
                "vibrationML": {"previousPersistentClassificationOutput": "HEALTHY",
                                "persistentClassificationOutput": "HEALTHY",
                                "pointwiseClassificationOutput": "HEALTHY"},
            },
        },
    }
    return t, iso, json.dumps(record, separators=(",", ":"), ensure_ascii=False)


def transition(name):
    return json.dumps(json.loads((records / name).read_text()), separators=(",", ":"), ensure_ascii=False)


alarm = transition("illustrative-v2-asset-state-transition-alarm.json")
warning = alarm.replace('"e-200"', '"e-199"').replace("09:00:01.500", "08:45:00.250").replace(
    '"newState":"ALARM","previousState":"WARNING"', '"newState":"WARNING","previousState":"HEALTHY"'
)

lines = []
previous = "HEALTHY"
for hour in range(hours):
    if hour in gap:
        continue
    t, previous, line = measurement(hour, previous)
    assert t < alarm_at
    lines.append(line)
lines += [warning, alarm]

buffer = io.BytesIO()
with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as f:
    f.write(("\n".join(lines) + "\n").encode())
out_path.write_bytes(buffer.getvalue())
print(f"{out_path.relative_to(root.parent)}: {len(lines)} records, {len(buffer.getvalue())} bytes")
