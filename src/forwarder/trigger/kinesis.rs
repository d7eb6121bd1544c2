//! A Lambda Kinesis event (Monitron's live export stream) → its records, each with what the
//! forwarder needs to name it and report it back.
//!
//! Rules:
//! - each record is read with `aws_lambda_events`' `KinesisEventRecord`, on its own; where that
//!   type refuses a field the forwarder does not need (an arrival time with more than
//!   millisecond digits), the base64 `data` is decoded directly, so no event is lost to it;
//! - a record whose `data` is not base64 is kept with the reason (counted as malformed and
//!   logged with its shard and sequence number), never failing the batch;
//! - the shard comes from `eventID` (`shardId-…:<sequence number>`), the stream's name from
//!   `eventSourceARN` (`…:stream/<name>`);
//! - a record without a sequence number cannot be reported back for a retry: it is kept and
//!   named `(no sequence number)`.

use aws_lambda_events::event::kinesis::KinesisEventRecord;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// One record of a Kinesis batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    /// The stream's name.
    pub stream: String,
    pub shard: String,
    pub sequence_number: String,
    /// When Kinesis took the record (`approximateArrivalTimestamp`).
    pub arrival: Option<DateTime<Utc>>,
    /// The record's bytes, or why they could not be read.
    pub data: Result<Vec<u8>, String>,
}

/// The records of a Kinesis event, in batch order.
pub fn records(records: &[Value]) -> Vec<StreamRecord> {
    records.iter().map(record).collect()
}

fn record(raw: &Value) -> StreamRecord {
    let text = |pointer: &str| raw.pointer(pointer).and_then(Value::as_str);
    let sequence_number = text("/kinesis/sequenceNumber")
        .unwrap_or("(no sequence number)")
        .to_string();
    let shard = text("/eventID")
        .and_then(|id| id.split_once(':'))
        .map_or("(unknown shard)", |(shard, _)| shard)
        .to_string();
    let stream = text("/eventSourceARN")
        .map(|arn| arn.rsplit_once("stream/").map_or(arn, |(_, name)| name))
        .unwrap_or("(unknown stream)")
        .to_string();
    let (arrival, data) = match serde_json::from_value::<KinesisEventRecord>(raw.clone()) {
        Ok(typed) => (
            Some(typed.kinesis.approximate_arrival_timestamp.0),
            Ok(typed.kinesis.data.0),
        ),
        Err(e) => {
            let data = match text("/kinesis/data") {
                Some(encoded) => base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map_err(|b| format!("its data is not base64: {b}")),
                None => Err(format!("not a Kinesis record with data: {e}")),
            };
            (None, data)
        }
    };
    StreamRecord {
        stream,
        shard,
        sequence_number,
        arrival,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> Vec<StreamRecord> {
        let event: Value = serde_json::from_str(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/events/kinesis/kinesis-monitron-batch.json"
        )))
        .unwrap_or(Value::Null);
        records(event["Records"].as_array().map_or(&[], |r| r.as_slice()))
    }

    #[test]
    fn records_keep_their_names_and_a_bad_one_its_reason() {
        let batch = batch();
        assert_eq!(batch.len(), 7);
        let first = &batch[0];
        assert_eq!(first.stream, "monitron-live-export");
        assert_eq!(first.shard, "shardId-000000000000");
        assert!(first.sequence_number.ends_with("0001"));
        assert_eq!(
            first.arrival.map(|t| t.timestamp_millis()),
            Some(1_709_283_601_501)
        );
        assert!(
            first
                .data
                .as_ref()
                .is_ok_and(|d| d.starts_with(b"{\"timestamp\""))
        );
        let broken = &batch[3];
        assert!(broken.sequence_number.ends_with("0004"));
        assert!(
            broken.data.as_ref().is_err_and(|e| e.contains("base64")),
            "{:?}",
            broken.data
        );
    }

    #[test]
    fn an_arrival_time_the_typed_reader_refuses_does_not_lose_the_data() {
        let got = records(&[serde_json::json!({"kinesis": {
            "data": "e30=", "sequenceNumber": "1", "approximateArrivalTimestamp": "yesterday"
        }})]);
        assert_eq!(got[0].data.as_deref().ok(), Some(b"{}".as_slice()));
        assert_eq!(got[0].arrival, None);
    }

    #[test]
    fn a_record_without_names_is_still_a_record() {
        let got = records(&[serde_json::json!({"kinesis": {"data": "e30="}})]);
        assert_eq!(got[0].sequence_number, "(no sequence number)");
        assert_eq!(got[0].shard, "(unknown shard)");
        assert_eq!(got[0].stream, "(unknown stream)");
    }
}
