//! Failure records, written where an operator can act on them: one JSON document per event that
//! no retry can deliver, with what is needed to run it again once the cause is fixed. Both
//! paths write them (the processor's refused actions, the forwarder's refused events) and each
//! has its `e2b` command to run them again (`reprocess`, `resend`).
//!
//! Rules:
//! - a place is an S3 prefix (`s3://bucket/prefix`, one object per record) or an SQS queue (its
//!   URL); each kind names its records ([`Record::file_name`]): the forwarder's refusals by time,
//!   so a listing is in time order, the processor's failures by event and rule, so an event
//!   holds one record however often it fails;
//! - a record is at most [`MAX_RECORD_BYTES`] (SQS's limit on older queues), written with the
//!   non-characters U+FFFE and U+FFFF escaped (SQS refuses them);
//! - a record that cannot be written is an error for the caller, which then keeps the event
//!   (503 to the mesh, a failed invocation to Lambda): nothing is dropped;
//! - each function has its own place: a listing reads one kind of record, and says which one
//!   it could not read.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::aws::s3::S3Location;

/// The largest record written: SQS takes messages up to 256 KiB on queues made before 2025.
pub const MAX_RECORD_BYTES: usize = 250 * 1024;

/// One kind of failure record.
pub trait Record: Serialize + DeserializeOwned {
    /// What the records are, for messages ("forwarder refusal").
    const KIND: &'static str;
    /// A short, stable object name.
    fn file_name(&self) -> String;
    /// The record as JSON within [`MAX_RECORD_BYTES`] (trimmed where the kind allows).
    fn fitted(&self) -> Result<String, String> {
        let text = as_json(self)?;
        if text.len() <= MAX_RECORD_BYTES {
            return Ok(text);
        }
        Err(format!(
            "the {} record is {} bytes, over the {MAX_RECORD_BYTES} a record may have",
            Self::KIND,
            text.len()
        ))
    }
}

/// The time a record is written: RFC 3339 UTC with milliseconds.
pub fn recorded_now() -> String {
    chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now())
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// JSON with the non-characters SQS refuses written as escapes.
pub fn as_json(record: &impl Serialize) -> Result<String, String> {
    serde_json::to_string(record)
        .map(|t| {
            t.replace('\u{FFFE}', "\\ufffe")
                .replace('\u{FFFF}', "\\uffff")
        })
        .map_err(|e| e.to_string())
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
pub struct Found<R> {
    pub record: R,
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
    pub async fn record<R: Record>(&self, record: &R) -> Result<String, String> {
        let body = record.fitted()?;
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
    pub async fn list<R: Record>(
        &self,
        limit: usize,
        hold_seconds: i32,
    ) -> Result<Vec<Found<R>>, String> {
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
                                "message {} in {queue_url} is no {}: {e}",
                                m.message_id().unwrap_or("?"),
                                R::KIND
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

    /// Whether a record written again for the same event replaces the one there (S3: records are
    /// named by their content's identity), rather than adding one (SQS).
    pub fn replaces_in_place(&self) -> bool {
        matches!(self, FailureSink::S3 { .. })
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

async fn read_s3<R: Record>(client: &aws_sdk_s3::Client, at: &S3Location) -> Result<R, String> {
    let bytes = crate::aws::s3::read_small(client, at, 4 * 1024 * 1024).await?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{at} is no {}: {e}", R::KIND))
}
