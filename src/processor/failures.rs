//! Failure records: a permanent failure (S/4 or a destination refused, no rule when that is an
//! error, no mapping, a template error) is written durably with the delivery, the rule, the step,
//! the request sent (credentials are never part of it) and the reason, so that `e2b reprocess`
//! can run it again once the cause is fixed.
//!
//! Where and how they are written is shared with the forwarder ([`crate::aws::records`]). If the
//! record cannot be written the delivery is answered 503, so the mesh keeps the event: nothing
//! is dropped.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use crate::aws::records::{FailureSink, FailureTarget};
use crate::aws::records::{MAX_RECORD_BYTES, Record, as_json};

/// One recorded failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureRecord {
    /// Layout version (1).
    pub version: u32,
    /// RFC 3339 UTC.
    pub recorded_at: String,
    pub event_id: String,
    pub source: String,
    pub rule: Option<String>,
    pub action: Option<String>,
    pub step: Option<String>,
    pub reason: String,
    /// The request that was refused: method, URL, headers the step set, body.
    pub request: Option<Value>,
    /// Results of the steps that had succeeded: re-processing skips them.
    #[serde(default)]
    pub completed_steps: Map<String, Value>,
    /// The delivery body as received.
    pub delivery: String,
}

impl Record for FailureRecord {
    const KIND: &'static str = "processor failure record";

    /// Time, then a digest of the event and rule.
    fn file_name(&self) -> String {
        let digest = super::notification::external_reference(
            &self.source,
            &format!("{}\n{}", self.event_id, self.rule.as_deref().unwrap_or("")),
        );
        let time: String = self
            .recorded_at
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        format!("{time}-{digest}.json")
    }

    /// Step results and the request body are trimmed first (they help the reader; only the
    /// delivery is needed to re-process).
    fn fitted(&self) -> Result<String, String> {
        let whole = as_json(self)?;
        if whole.len() <= MAX_RECORD_BYTES {
            return Ok(whole);
        }
        let mut trimmed = self.clone();
        for value in trimmed.completed_steps.values_mut() {
            *value = Value::String(format!("(trimmed: {} bytes)", value.to_string().len()));
        }
        if let Some(body) = trimmed.request.as_mut().and_then(|r| r.get_mut("body")) {
            *body = Value::String(format!("(trimmed: {} bytes)", body.to_string().len()));
        }
        let smaller = as_json(&trimmed)?;
        if smaller.len() <= MAX_RECORD_BYTES {
            return Ok(smaller);
        }
        Err(format!(
            "the failure record of event {} is {} bytes, over the {MAX_RECORD_BYTES} a record may have (the delivery alone is {} bytes)",
            self.event_id,
            smaller.len(),
            self.delivery.len()
        ))
    }
}

/// A processor failure record as found, with what removes it.
pub type Found = crate::aws::records::Found<FailureRecord>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::s3::S3Location;

    #[test]
    fn large_records_are_trimmed_and_non_characters_escaped() {
        let mut record = FailureRecord {
            version: 1,
            recorded_at: "2024-03-01T09:00:00.000Z".into(),
            event_id: "e-1".into(),
            source: "s".into(),
            rule: Some("r".into()),
            action: None,
            step: Some("b".into()),
            reason: "x".into(),
            request: Some(serde_json::json!({"url": "https://x", "body": "y".repeat(300_000)})),
            completed_steps: Map::new(),
            delivery: "{\"id\":\"e-1\",\"n\":\"\u{FFFF}\"}".into(),
        };
        record
            .completed_steps
            .insert("a".into(), Value::String("z".repeat(300_000)));
        let Ok(text) = record.fitted() else {
            panic!("not fitted")
        };
        assert!(text.len() < MAX_RECORD_BYTES && !text.contains('\u{FFFF}'));
        let back: FailureRecord = serde_json::from_str(&text).expect("back (serde_json::from_str)");
        assert_eq!(back.delivery, record.delivery, "the delivery is kept whole");
        assert_eq!(back.completed_steps["a"], "(trimmed: 300002 bytes)");
        record.delivery = "d".repeat(MAX_RECORD_BYTES);
        assert!(record.fitted().is_err_and(|e| e.contains("e-1")));
    }

    #[test]
    fn targets_are_an_s3_prefix_or_a_queue_url() {
        assert_eq!(
            FailureTarget::parse("s3://ops-bucket/e2b/failures/"),
            Ok(FailureTarget::S3(S3Location::new(
                "ops-bucket",
                "e2b/failures/"
            )))
        );
        assert!(matches!(
            FailureTarget::parse(
                "https://sqs.eu-central-1.amazonaws.com/111122223333/e2b-failures"
            ),
            Ok(FailureTarget::Sqs { .. })
        ));
        assert!(FailureTarget::parse("s3:///x").is_err());
        assert!(FailureTarget::parse("failures").is_err());
    }
}
