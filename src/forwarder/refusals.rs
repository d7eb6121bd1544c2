//! Refused events: the broker refused a message for good (400, 413, a topic the client may not
//! publish to), so no retry of the invocation can deliver it. Each is written to
//! `FAILURE_RECORDS` (an SQS queue or an S3 prefix, [`crate::aws::records`]) with all it needs to
//! be sent again by `e2b resend` once the cause is fixed, and counts as done for the object.
//!
//! Rules:
//! - a record holds the message as sent (topic, message id, correlation id, payload), the
//!   broker's status and reason, and where the event came from (object, version, record
//!   ordinal and byte offset);
//! - the message id stays the event id, so a resent event is still de-duplicated downstream;
//! - a refusal of the credentials (401 after the secret was read again) is not recorded: one
//!   configuration fix cures every event, so the invocation fails and Lambda retries;
//! - a record that cannot be written leaves the event undelivered: the invocation fails and
//!   nothing is lost; without `FAILURE_RECORDS` refusals fail the invocation as well.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::aws::records::Record;
use crate::broker::{Message, PublishError};
use crate::event::ForwardedEvent;

/// The one kind of record this module writes (a processor record has no `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    #[serde(rename = "forwarder-refusal")]
    ForwarderRefusal,
}

/// One refused event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedEvent {
    pub kind: Kind,
    /// Layout version (1).
    pub version: u32,
    /// RFC 3339 UTC.
    pub recorded_at: String,
    pub event_id: String,
    /// The CloudEvents `source`: with the id, what makes the event unique.
    pub source: String,
    pub topic: String,
    /// `Solace-Message-ID`: the event id.
    pub message_id: String,
    /// `Solace-Correlation-ID`: the object it came from.
    pub correlation_id: String,
    /// The broker's status (0 when the URL for the topic could not be built).
    pub status: u16,
    pub reason: String,
    /// `s3://bucket/key`, or `kinesis://stream/shard/sequence-number`.
    pub object: String,
    pub object_version: Option<String>,
    /// The record's ordinal in the object and its byte offset there.
    pub record: u64,
    pub offset: u64,
    pub payload: String,
}

impl RefusedEvent {
    /// The record of `event` from `object` (its label: `s3://…` or `kinesis://…`, also the
    /// correlation id), refused with `refusal`.
    pub fn new(
        event: &ForwardedEvent,
        object: &str,
        refusal: &PublishError,
        object_version: Option<String>,
    ) -> RefusedEvent {
        let (status, reason) = match refusal {
            PublishError::Rejected { status, reason } => (*status, reason.clone()),
            other => (0, other.to_string()),
        };
        RefusedEvent {
            kind: Kind::ForwarderRefusal,
            version: 1,
            recorded_at: crate::aws::records::recorded_now(),
            event_id: event.id.clone(),
            source: event.source.clone(),
            topic: event.topic.clone(),
            message_id: event.id.clone(),
            correlation_id: object.to_string(),
            status,
            reason,
            object: object.to_string(),
            object_version,
            record: event.record.ordinal,
            offset: event.record.offset,
            payload: event.payload.clone(),
        }
    }

    /// The message to send again, as it was first sent.
    pub fn message(&self) -> Message<'_> {
        Message {
            id: &self.message_id,
            topic: &self.topic,
            payload: &self.payload,
            trace: crate::event::trace_of(&self.payload),
        }
    }
}

impl Record for RefusedEvent {
    const KIND: &'static str = "forwarder refusal record";

    /// Time, then a digest of the event and its object.
    fn file_name(&self) -> String {
        let time: String = self
            .recorded_at
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let digest = Sha256::digest(format!(
            "{}\n{}\n{}",
            self.source, self.event_id, self.object
        ));
        let short: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("{time}-{short}.json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::records::MAX_RECORD_BYTES;

    fn refused() -> RefusedEvent {
        RefusedEvent {
            kind: Kind::ForwarderRefusal,
            version: 1,
            recorded_at: "2026-11-29T05:00:00.000Z".into(),
            event_id: "e-1".into(),
            source: "monitron/1/p".into(),
            topic: "monitron/a".into(),
            message_id: "e-1".into(),
            correlation_id: "s3://b/k".into(),
            status: 400,
            reason: "Bad Request".into(),
            object: "s3://b/k".into(),
            object_version: None,
            record: 3,
            offset: 1200,
            payload: "{}".into(),
        }
    }

    #[test]
    fn records_read_back_and_processor_records_are_not_taken_for_them() {
        let record = refused();
        let Ok(text) = record.fitted() else {
            panic!("not fitted")
        };
        assert_eq!(
            serde_json::from_str::<RefusedEvent>(&text).ok(),
            Some(record.clone())
        );
        assert!(text.contains("\"kind\":\"forwarder-refusal\""));
        let processor = r#"{"version":1,"recorded_at":"x","event_id":"e","source":"s","rule":null,"action":null,"step":null,"reason":"r","request":null,"delivery":"{}"}"#;
        assert!(serde_json::from_str::<RefusedEvent>(processor).is_err());
        assert!(record.file_name().starts_with("20261129T050000000Z-"));
        let mut other = record.clone();
        other.object = "s3://b/other".into();
        assert_ne!(other.file_name(), record.file_name());
    }

    #[test]
    fn a_record_too_large_for_a_queue_is_an_error_not_a_truncation() {
        let mut record = refused();
        record.payload = "x".repeat(MAX_RECORD_BYTES);
        assert!(
            record
                .fitted()
                .is_err_and(|e| e.contains("forwarder refusal record"))
        );
    }
}
