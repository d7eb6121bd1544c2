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
    /// The event's trace (`traceparent`): `e2b reprocess` and the console continue it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

impl Record for FailureRecord {
    const KIND: &'static str = "processor failure record";

    /// A digest of the event and rule, without the time: the same event failing again (a
    /// duplicate publish, a reprocess that fails anew) replaces its record in S3 instead of
    /// adding one, and `e2b reprocess` reads repeated SQS messages of it once.
    fn file_name(&self) -> String {
        let digest = super::notification::external_reference(
            &self.source,
            &format!("{}\n{}", self.event_id, self.rule.as_deref().unwrap_or("")),
        );
        format!("{digest}.json")
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
        // An oversized event: its long strings are cut as S/4's fields would cut them, so that
        // the event is still recorded (and reprocessed) rather than answered 503 for ever.
        if let Ok(mut delivery) = serde_json::from_str::<Value>(&trimmed.delivery) {
            let cut = cut_strings(&mut delivery, MAX_DELIVERY_STRING);
            trimmed.delivery = delivery.to_string();
            trimmed.reason = format!(
                "{} (the recorded delivery had {cut} strings over {MAX_DELIVERY_STRING} characters, cut to fit)",
                trimmed.reason
            );
            let cut_down = as_json(&trimmed)?;
            if cut_down.len() <= MAX_RECORD_BYTES {
                return Ok(cut_down);
            }
        }
        Err(format!(
            "the failure record of event {} is {} bytes, over the {MAX_RECORD_BYTES} a record may have (the delivery alone is {} bytes)",
            self.event_id,
            smaller.len(),
            self.delivery.len()
        ))
    }
}

/// A string in a recorded delivery longer than this is cut when the record would not fit
/// otherwise (S/4's longest text field is 1333 characters).
const MAX_DELIVERY_STRING: usize = 2000;

/// Cuts every string (and key) in `value` to `max` characters; how many were cut.
fn cut_strings(value: &mut Value, max: usize) -> usize {
    let cut = |s: &str| s.chars().take(max).collect::<String>();
    match value {
        Value::String(s) if s.chars().count() > max => {
            *s = cut(s);
            1
        }
        Value::Array(items) => items.iter_mut().map(|v| cut_strings(v, max)).sum(),
        Value::Object(map) => {
            let long_keys = map.keys().filter(|k| k.chars().count() > max).count();
            let entries = std::mem::take(map);
            let mut n = long_keys;
            for (k, mut v) in entries {
                n += cut_strings(&mut v, max);
                map.insert(cut(&k), v);
            }
            n
        }
        _ => 0,
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
            traceparent: None,
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
        // An oversized event (JSON) is recorded with its long strings cut.
        let name = "P".repeat(600_000);
        record.delivery = serde_json::json!({"id": "e-1", "data": {"asset": name}}).to_string();
        let Ok(text) = record.fitted() else {
            panic!("an oversized event is not recorded")
        };
        let back: FailureRecord = serde_json::from_str(&text).expect("back");
        let delivery: Value = serde_json::from_str(&back.delivery).expect("the delivery is JSON");
        assert_eq!(delivery["data"]["asset"].as_str().map(str::len), Some(2000));
        assert!(
            back.reason.contains("1 strings over 2000 characters"),
            "{}",
            back.reason
        );
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
