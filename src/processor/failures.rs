//! Failure records: a permanent failure (S/4 or a destination refused, no rule when that is an
//! error, no mapping, a template error) is written durably with the delivery, the rule, the step,
//! the request sent (credentials are never part of it) and the reason, so that `e2b reprocess`
//! can run it again once the cause is fixed.
//!
//! Where: an S3 prefix (`s3://bucket/prefix`, one JSON object per failure, listed by time) or an
//! SQS queue (its URL). If the record cannot be written the delivery is answered 503, so the
//! mesh keeps the event: nothing is dropped.

use crate::aws::s3::S3Location;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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

impl FailureRecord {
    /// A short, stable name: time, then a digest of the event and rule.
    pub fn file_name(&self) -> String {
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
}

/// The largest record written: SQS takes messages up to 256 KiB on queues made before 2025.
pub const MAX_RECORD_BYTES: usize = 250 * 1024;

/// A record as JSON within [`MAX_RECORD_BYTES`]: step results and the request body are
/// trimmed first (they help the reader; only the delivery is needed to re-process). The
/// non-characters U+FFFE and U+FFFF, which SQS refuses, are written as escapes.
pub fn fitted(record: &FailureRecord) -> Result<String, String> {
    let text = |r: &FailureRecord| {
        serde_json::to_string(r)
            .map(|t| {
                t.replace('\u{FFFE}', "\\ufffe")
                    .replace('\u{FFFF}', "\\uffff")
            })
            .map_err(|e| e.to_string())
    };
    let whole = text(record)?;
    if whole.len() <= MAX_RECORD_BYTES {
        return Ok(whole);
    }
    let mut trimmed = record.clone();
    for value in trimmed.completed_steps.values_mut() {
        *value = Value::String(format!("(trimmed: {} bytes)", value.to_string().len()));
    }
    if let Some(body) = trimmed.request.as_mut().and_then(|r| r.get_mut("body")) {
        *body = Value::String(format!("(trimmed: {} bytes)", body.to_string().len()));
    }
    let smaller = text(&trimmed)?;
    if smaller.len() <= MAX_RECORD_BYTES {
        return Ok(smaller);
    }
    Err(format!(
        "the failure record of event {} is {} bytes, over the {MAX_RECORD_BYTES} a record may have (the delivery alone is {} bytes)",
        record.event_id,
        smaller.len(),
        record.delivery.len()
    ))
}

/// Where failure records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureTarget {
    /// Records under a key prefix (ending in `/`, or empty for the bucket's root).
    S3(S3Location),
    Sqs {
        queue_url: String,
    },
}

impl FailureTarget {
    /// `s3://bucket/prefix` or an SQS queue URL (`https://sqs.<region>.amazonaws.com/<account>/<name>`).
    pub fn parse(text: &str) -> Result<FailureTarget, String> {
        if text.starts_with("s3://") {
            let Some(at) = S3Location::parse(text) else {
                return Err(format!("`{text}` names no bucket"));
            };
            // A prefix is a folder: it ends with `/`, or is empty for the bucket's root.
            let prefix = at.key.trim_end_matches('/');
            let key = if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            };
            return Ok(FailureTarget::S3(S3Location::new(at.bucket, key)));
        }
        match reqwest::Url::parse(text) {
            Ok(url) if matches!(url.scheme(), "https" | "http") && url.path().len() > 1 => {
                Ok(FailureTarget::Sqs {
                    queue_url: text.to_string(),
                })
            }
            _ => Err(format!(
                "`{text}` is neither s3://bucket/prefix nor an SQS queue URL"
            )),
        }
    }
}

/// Writes and reads failure records.
#[derive(Debug, Clone, Default)]
pub enum FailureSink {
    /// No place configured: failures are logged only (a warning at start-up says so).
    #[default]
    LogOnly,
    S3 {
        client: aws_sdk_s3::Client,
        /// The prefix the records are written under.
        at: S3Location,
    },
    Sqs {
        client: aws_sdk_sqs::Client,
        queue_url: String,
    },
}

/// A record as found, with what removes it.
#[derive(Debug, Clone)]
pub struct Found {
    pub record: FailureRecord,
    /// The S3 key or the SQS receipt handle.
    pub handle: String,
}

impl FailureSink {
    /// The sink for a target; `s3` is the processor's S3 client (path style where configured).
    pub fn new(
        target: Option<&FailureTarget>,
        s3: aws_sdk_s3::Client,
        aws: &aws_config::SdkConfig,
    ) -> FailureSink {
        match target {
            None => FailureSink::LogOnly,
            Some(FailureTarget::S3(at)) => FailureSink::S3 {
                client: s3,
                at: at.clone(),
            },
            Some(FailureTarget::Sqs { queue_url }) => FailureSink::Sqs {
                client: aws_sdk_sqs::Client::new(aws),
                queue_url: queue_url.clone(),
            },
        }
    }

    /// Writes a record; returns where it went.
    pub async fn record(&self, record: &FailureRecord) -> Result<String, String> {
        let body = fitted(record)?;
        match self {
            FailureSink::LogOnly => Ok("the log only (FAILURE_RECORDS is not set)".into()),
            FailureSink::S3 { client, at } => {
                let place =
                    S3Location::new(&at.bucket, format!("{}{}", at.key, record.file_name()));
                client
                    .put_object()
                    .bucket(&place.bucket)
                    .key(&place.key)
                    .content_type("application/json")
                    .body(body.into_bytes().into())
                    .send()
                    .await
                    .map_err(|e| {
                        format!(
                            "failure record not written to {place}: {}",
                            aws_sdk_s3::error::DisplayErrorContext(&e)
                        )
                    })?;
                Ok(place.to_string())
            }
            FailureSink::Sqs { client, queue_url } => {
                let sent = client
                    .send_message()
                    .queue_url(queue_url)
                    .message_body(body)
                    .send()
                    .await
                    .map_err(|e| {
                        format!(
                            "failure record not sent to {queue_url}: {}",
                            aws_sdk_sqs::error::DisplayErrorContext(&e)
                        )
                    })?;
                Ok(format!(
                    "{queue_url} (message {})",
                    sent.message_id().unwrap_or("?")
                ))
            }
        }
    }

    /// Up to `limit` records. SQS messages read here stay invisible for `hold_seconds`, then
    /// come back unless removed.
    pub async fn list(&self, limit: usize, hold_seconds: i32) -> Result<Vec<Found>, String> {
        match self {
            FailureSink::LogOnly => Ok(Vec::new()),
            FailureSink::S3 { client, at } => {
                let mut found = Vec::new();
                let mut pages = client
                    .list_objects_v2()
                    .bucket(&at.bucket)
                    .prefix(&at.key)
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| {
                        format!(
                            "cannot list {at}: {}",
                            aws_sdk_s3::error::DisplayErrorContext(&e)
                        )
                    })?;
                    for object in page.contents() {
                        if found.len() >= limit {
                            return Ok(found);
                        }
                        let Some(key) = object.key() else { continue };
                        let record = read_s3(client, &S3Location::new(&at.bucket, key)).await?;
                        found.push(Found {
                            record,
                            handle: key.to_string(),
                        });
                    }
                }
                Ok(found)
            }
            FailureSink::Sqs { client, queue_url } => {
                let mut found = Vec::new();
                // A message seen twice means the queue has been read round: stop.
                let mut seen = std::collections::HashSet::new();
                'receiving: while found.len() < limit {
                    let batch = client
                        .receive_message()
                        .queue_url(queue_url)
                        .max_number_of_messages((limit - found.len()).min(10) as i32)
                        .visibility_timeout(hold_seconds)
                        .wait_time_seconds(1)
                        .send()
                        .await
                        .map_err(|e| {
                            format!(
                                "cannot read {queue_url}: {}",
                                aws_sdk_sqs::error::DisplayErrorContext(&e)
                            )
                        })?;
                    let messages = batch.messages();
                    if messages.is_empty() {
                        break;
                    }
                    for m in messages {
                        let (Some(body), Some(handle)) = (m.body(), m.receipt_handle()) else {
                            continue;
                        };
                        if !seen.insert(m.message_id().unwrap_or(handle).to_string()) {
                            break 'receiving;
                        }
                        let record = serde_json::from_str(body).map_err(|e| {
                            format!(
                                "message {} in {queue_url} is no failure record: {e}",
                                m.message_id().unwrap_or("?")
                            )
                        })?;
                        found.push(Found {
                            record,
                            handle: handle.to_string(),
                        });
                    }
                }
                Ok(found)
            }
        }
    }

    /// Removes a record once it has been dealt with.
    pub async fn remove(&self, handle: &str) -> Result<(), String> {
        match self {
            FailureSink::LogOnly => Ok(()),
            FailureSink::S3 { client, at } => client
                .delete_object()
                .bucket(&at.bucket)
                .key(handle)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    format!(
                        "cannot delete {}: {}",
                        S3Location::new(&at.bucket, handle),
                        aws_sdk_s3::error::DisplayErrorContext(&e)
                    )
                }),
            FailureSink::Sqs { client, queue_url } => client
                .delete_message()
                .queue_url(queue_url)
                .receipt_handle(handle)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    format!(
                        "cannot delete a message from {queue_url}: {}",
                        aws_sdk_sqs::error::DisplayErrorContext(&e)
                    )
                }),
        }
    }
}

async fn read_s3(client: &aws_sdk_s3::Client, at: &S3Location) -> Result<FailureRecord, String> {
    let bytes = crate::aws::s3::read_small(client, at, 4 * 1024 * 1024).await?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{at} is no failure record: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let Ok(text) = fitted(&record) else {
            panic!("not fitted")
        };
        assert!(text.len() < MAX_RECORD_BYTES && !text.contains('\u{FFFF}'));
        let back: FailureRecord = serde_json::from_str(&text).expect("back (serde_json::from_str)");
        assert_eq!(back.delivery, record.delivery, "the delivery is kept whole");
        assert_eq!(back.completed_steps["a"], "(trimmed: 300002 bytes)");
        record.delivery = "d".repeat(MAX_RECORD_BYTES);
        assert!(fitted(&record).is_err_and(|e| e.contains("e-1")));
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
