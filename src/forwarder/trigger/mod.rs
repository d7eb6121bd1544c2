//! What invoked the forwarder → the S3 objects to read.
//!
//! Accepted shapes (see the README, "The forwarder Lambda"):
//! - a direct S3 notification (`Records[].eventSource == "aws:s3"`), any number of records, keys
//!   form-URL-encoded;
//! - an SNS notification carrying an S3 notification (`Records[].EventSource == "aws:sns"`);
//! - an EventBridge "Object Created" event (`source == "aws.s3"`), key not encoded;
//! - an SQS batch whose message bodies are S3 notifications (raw or inside an SNS envelope),
//!   or the trend queue's points (`series::queue`), answered with a partial batch response;
//! - the `s3:TestEvent` S3 sends when a notification is configured: acknowledged, nothing read;
//! - a Kinesis batch (`Records[].eventSource == "aws:kinesis"`, Monitron's live export stream):
//!   its records, read one by one ([`kinesis`]).
//!
//! Why a hand-written reader over one `serde_json::Value` rather than `aws_lambda_events`'
//! types: the shapes nest (S3 inside SNS inside SQS), Lambda does not say which one came, and
//! an operator needs to be told what is wrong with an unrecognised event and where
//! (`/Records/0/s3/object/key is missing`). Typed deserialization would try each shape in turn
//! and keep none of that. The replies use `aws_lambda_events`' types (the SQS partial batch
//! response in `forwarder::mod`), where a fixed shape is written, not read.

mod kinesis;

use serde_json::Value;

pub use crate::aws::s3::ObjectRef;
use crate::aws::s3::S3Location;
pub use kinesis::StreamRecord;

/// Which object keys are read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyFilter {
    /// Keys must start with this (empty: any).
    pub prefix: String,
    /// Keys must end with this (empty: any).
    pub suffix: String,
    /// Keys starting with any of these are skipped (e.g. Firehose's `error/`).
    pub exclude_prefixes: Vec<String>,
}

impl KeyFilter {
    /// `None` when the key is read; otherwise why it is skipped.
    pub fn skip_reason(&self, key: &str) -> Option<String> {
        if !key.starts_with(&self.prefix) {
            return Some(format!(
                "the key does not start with OBJECT_KEY_PREFIX `{}`",
                self.prefix
            ));
        }
        if !key.ends_with(&self.suffix) {
            return Some(format!(
                "the key does not end with OBJECT_KEY_SUFFIX `{}`",
                self.suffix
            ));
        }
        self.exclude_prefixes
            .iter()
            .find(|p| key.starts_with(p.as_str()))
            .map(|p| format!("the key starts with `{p}` (OBJECT_KEY_EXCLUDE_PREFIXES)"))
    }
}

/// The objects an invocation names, by the shape it came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// S3, SNS or EventBridge: the invocation fails as a whole when an object fails.
    Objects(Vec<ObjectRef>),
    /// An SQS batch: each message succeeds or fails on its own.
    Sqs(Vec<SqsMessage>),
    /// The `s3:TestEvent`: acknowledged.
    TestEvent,
    /// A Kinesis batch: answered with the record to resume the shard from, if any.
    Stream(Vec<StreamRecord>),
}

/// One SQS message: its id, and the objects its body names (or why they could not be read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsMessage {
    pub message_id: String,
    pub objects: Result<Vec<ObjectRef>, String>,
    /// The body of a trend queue's message (`series::queue`), whose points are to be written;
    /// `objects` is then empty.
    pub trend_points: Option<String>,
}

/// A notification that is none of the accepted shapes, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unrecognised trigger event: {0}")]
pub struct TriggerError(pub String);

/// Reads an invocation's event.
pub fn parse(event: &Value) -> Result<Trigger, TriggerError> {
    if is_test_event(event) {
        return Ok(Trigger::TestEvent);
    }
    if event.get("source").and_then(Value::as_str) == Some("aws.s3") {
        return eventbridge(event).map(|o| Trigger::Objects(vec![o]));
    }
    let Some(records) = event.get("Records").and_then(Value::as_array) else {
        return Err(TriggerError(
            "expected an S3, SNS or SQS notification or a Kinesis batch (`Records`), an \
             EventBridge event from aws.s3, or the s3:TestEvent"
                .into(),
        ));
    };
    let source = records
        .first()
        .and_then(|r| r.get("eventSource"))
        .and_then(Value::as_str);
    if source == Some("aws:kinesis") {
        return Ok(Trigger::Stream(kinesis::records(records)));
    }
    let is_sqs = source == Some("aws:sqs");
    if is_sqs {
        let messages = records
            .iter()
            .enumerate()
            .map(|(i, record)| {
                let message_id = record
                    .get("messageId")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                match message_id {
                    Some(message_id) => {
                        let body = record.get("body").and_then(Value::as_str);
                        let trend_points = body
                            .filter(|b| crate::forwarder::series::queue::is_trend_message(b))
                            .map(str::to_string);
                        let objects = match trend_points {
                            Some(_) => Ok(Vec::new()),
                            None => sqs_body(record).map_err(|e| e.0),
                        };
                        Ok(SqsMessage {
                            objects,
                            message_id,
                            trend_points,
                        })
                    }
                    None => Err(TriggerError(format!("SQS record {i} has no messageId"))),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Trigger::Sqs(messages));
    }
    let mut objects = Vec::new();
    for (i, record) in records.iter().enumerate() {
        objects.extend(
            record_objects(record).map_err(|e| TriggerError(format!("record {i}: {}", e.0)))?,
        );
    }
    Ok(Trigger::Objects(objects))
}

fn is_test_event(event: &Value) -> bool {
    event.get("Event").and_then(Value::as_str) == Some("s3:TestEvent")
}

/// A record of `Records[]` that is not SQS: S3 or SNS.
fn record_objects(record: &Value) -> Result<Vec<ObjectRef>, TriggerError> {
    if record.get("EventSource").and_then(Value::as_str) == Some("aws:sns") {
        let message = record
            .pointer("/Sns/Message")
            .and_then(Value::as_str)
            .ok_or_else(|| TriggerError("SNS record without Sns.Message".into()))?;
        return embedded_notification(message, "SNS message");
    }
    match record.get("eventSource").and_then(Value::as_str) {
        Some("aws:s3") => Ok(s3_record(record)?.into_iter().collect()),
        other => Err(TriggerError(format!(
            "eventSource {} is not aws:s3",
            other.map_or("(none)".to_string(), |s| format!("`{s}`"))
        ))),
    }
}

/// The body of an SQS message: an S3 notification, possibly inside an SNS envelope.
fn sqs_body(record: &Value) -> Result<Vec<ObjectRef>, TriggerError> {
    let body = record
        .get("body")
        .and_then(Value::as_str)
        .ok_or_else(|| TriggerError("SQS message without a body".into()))?;
    embedded_notification(body, "SQS message body")
}

/// A notification carried as a JSON string (SQS body, SNS message).
fn embedded_notification(text: &str, what: &str) -> Result<Vec<ObjectRef>, TriggerError> {
    let inner: Value =
        serde_json::from_str(text).map_err(|e| TriggerError(format!("{what} is not JSON: {e}")))?;
    if is_test_event(&inner) {
        return Ok(Vec::new());
    }
    // SNS → SQS without raw delivery: the SQS body is the SNS envelope.
    if inner.get("Type").and_then(Value::as_str) == Some("Notification")
        && let Some(message) = inner.get("Message").and_then(Value::as_str)
    {
        return embedded_notification(message, "SNS message");
    }
    if inner.get("source").and_then(Value::as_str) == Some("aws.s3") {
        return eventbridge(&inner).map(|o| vec![o]);
    }
    let records = inner
        .get("Records")
        .and_then(Value::as_array)
        .ok_or_else(|| TriggerError(format!("{what} is not an S3 notification")))?;
    let mut objects = Vec::new();
    for record in records {
        objects.extend(record_objects(record)?);
    }
    Ok(objects)
}

/// A direct S3 record; `None` for events other than ObjectCreated.
fn s3_record(record: &Value) -> Result<Option<ObjectRef>, TriggerError> {
    let version = record
        .get("eventVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    if version.split('.').next() != Some("2") {
        return Err(TriggerError(format!(
            "S3 eventVersion `{version}` is not 2.x, the only major version this forwarder knows"
        )));
    }
    let name = record
        .get("eventName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !name.starts_with("ObjectCreated:") {
        tracing::info!(
            event_name = name,
            "S3 event that is not ObjectCreated: ignored"
        );
        return Ok(None);
    }
    let bucket = string_at(record, "/s3/bucket/name")?;
    let encoded = string_at(record, "/s3/object/key")?;
    let key = decode_form_urlencoded(&encoded).ok_or_else(|| {
        TriggerError(format!(
            "S3 object key `{encoded}` is not valid URL-encoded UTF-8"
        ))
    })?;
    Ok(Some(ObjectRef {
        location: S3Location { bucket, key },
        version_id: record
            .pointer("/s3/object/versionId")
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty() && *v != "null")
            .map(str::to_string),
        etag: record
            .pointer("/s3/object/eTag")
            .and_then(Value::as_str)
            .filter(|e| !e.is_empty())
            .map(str::to_string),
        size: record.pointer("/s3/object/size").and_then(Value::as_u64),
    }))
}

/// An EventBridge "Object Created" event (the key is not encoded).
fn eventbridge(event: &Value) -> Result<ObjectRef, TriggerError> {
    let detail_type = event
        .get("detail-type")
        .and_then(Value::as_str)
        .unwrap_or("");
    if detail_type != "Object Created" {
        return Err(TriggerError(format!(
            "EventBridge detail-type `{detail_type}` is not `Object Created`"
        )));
    }
    Ok(ObjectRef {
        location: S3Location {
            bucket: string_at(event, "/detail/bucket/name")?,
            key: string_at(event, "/detail/object/key")?,
        },
        version_id: event
            .pointer("/detail/object/version-id")
            .and_then(Value::as_str)
            .map(str::to_string),
        etag: event
            .pointer("/detail/object/etag")
            .and_then(Value::as_str)
            .filter(|e| !e.is_empty())
            .map(str::to_string),
        size: event.pointer("/detail/object/size").and_then(Value::as_u64),
    })
}

fn string_at(value: &Value, pointer: &str) -> Result<String, TriggerError> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| TriggerError(format!("no string at {pointer}")))
}

/// Decodes an S3 notification key: `+` is a space, then `%XX` escapes, as UTF-8.
pub fn decode_form_urlencoded(encoded: &str) -> Option<String> {
    let spaced = encoded.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

#[cfg(test)]
mod tests;
