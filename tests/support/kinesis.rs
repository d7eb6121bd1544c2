//! Lambda Kinesis events as an event source mapping hands them to the forwarder: one shard's
//! records, each with its sequence number, base64 data and arrival time, in the shape of
//! `events/kinesis/` (which `events/build-kinesis.py` writes the same way).

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde_json::{Value, json};

pub const STREAM_ARN: &str = "arn:aws:kinesis:us-east-1:111122223333:stream/monitron-live-export";
pub const SHARD: &str = "shardId-000000000000";

/// The sequence number of the `n`th record of the shard (they grow with `n`).
pub fn sequence_number(n: u64) -> String {
    format!("4959033827149025660855969253{n:028}")
}

/// A record whose `data` field is `data` as it is (for data that is not base64).
pub fn raw_record(n: u64, data: &str, arrival: SystemTime) -> Value {
    // Milliseconds, as Kinesis gives them.
    let seconds = arrival
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_millis() as f64 / 1000.0);
    let sequence = sequence_number(n);
    json!({
        "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "proj-1", "sequenceNumber": sequence,
                    "data": data, "approximateArrivalTimestamp": seconds},
        "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventID": format!("{SHARD}:{sequence}"),
        "eventName": "aws:kinesis:record", "invokeIdentityArn": "arn:aws:iam::111122223333:role/e2b-forwarder",
        "awsRegion": "us-east-1", "eventSourceARN": STREAM_ARN
    })
}

/// A record carrying `data` (base64-encoded here).
pub fn record(n: u64, data: &[u8], arrival: SystemTime) -> Value {
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    raw_record(n, &encoded, arrival)
}

/// The event for a batch of records.
pub fn batch(records: Vec<Value>) -> Value {
    json!({ "Records": records })
}
