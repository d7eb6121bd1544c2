//! The forwarder Lambda's handler: trigger → objects → events → the mesh.
//!
//! One invocation: the trigger names objects; each object is streamed from S3 into the decoder
//! (on a blocking thread, while publishing runs on the async runtime), and each forwarded event
//! is published with bounded concurrency. Outcomes:
//! - every event of every object got its 200 → the invocation succeeds with a summary;
//! - an object could not be read, or an event was not delivered → the invocation fails with an
//!   error naming the objects and the event ids, so Lambda's retries and the on-failure destination
//!   take over (redelivered events keep their message id);
//! - an object that no longer exists is logged and skipped (a retry cannot help);
//! - for an SQS batch, only the messages whose objects failed are reported back.

pub mod config;
pub mod event;
pub mod firehose;
pub mod mesh;
pub mod monitron;
mod pipeline;
pub mod replay;
pub mod scan;
pub mod setup;
pub mod trigger;

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use crate::aws::s3::ObjectStore;
use crate::aws::secrets::SecretStore;
use crate::forwarder::mesh::Publisher;
use crate::forwarder::scan::{ScanConfig, Scanner, Summary};
use crate::forwarder::trigger::{KeyFilter, Trigger};

/// Undelivered event ids named in an error message, at most.
const IDS_NAMED: usize = 20;

/// What the forwarder needs besides its clients.
#[derive(Debug, Clone)]
pub struct ForwarderSettings {
    pub scan: ScanConfig,
    pub filter: KeyFilter,
    pub concurrency: usize,
}

/// The handler, holding its clients for the life of the warm Lambda.
pub struct Forwarder<O, S> {
    store: O,
    publisher: Arc<Publisher<S>>,
    settings: ForwarderSettings,
}

/// What became of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectOutcome {
    /// Every forwarded event was delivered.
    Done { delivered: u64 },
    /// Skipped by the key filter.
    Filtered(String),
    /// No longer exists.
    Missing(String),
    /// Not read to its end, or events not delivered: the invocation fails so Lambda retries.
    Retry(Unfinished),
}

/// An object that needs another try, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfinished {
    pub object: String,
    /// Why the object could not be read (to its end), if it could not.
    pub read_error: Option<String>,
    /// Events not delivered: `(id, reason)`.
    pub undelivered: Vec<(String, String)>,
    pub delivered: u64,
}

impl std::fmt::Display for Unfinished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:", self.object)?;
        if let Some(e) = &self.read_error {
            write!(f, " {e};")?;
        }
        if !self.undelivered.is_empty() {
            let named: Vec<String> = self
                .undelivered
                .iter()
                .take(IDS_NAMED)
                .map(|(id, why)| format!("{id} ({why})"))
                .collect();
            write!(
                f,
                " {} event(s) not delivered: {}",
                self.undelivered.len(),
                named.join(", ")
            )?;
            if self.undelivered.len() > IDS_NAMED {
                write!(f, " and {} more", self.undelivered.len() - IDS_NAMED)?;
            }
            write!(f, ";")?;
        }
        write!(f, " {} delivered", self.delivered)
    }
}

/// A failed invocation: Lambda retries it, then hands it to the on-failure destination.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{} object(s) not fully forwarded, the invocation fails so that Lambda retries it: {}",
    failures.len(),
    failures.iter().map(ToString::to_string).collect::<Vec<_>>().join(" | ")
)]
pub struct ForwardError {
    pub failures: Vec<Unfinished>,
    pub summary: Summary,
}

/// Why an invocation fails: its own event could not be read, or objects were not fully
/// forwarded (Lambda retries both).
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error(transparent)]
    Trigger(crate::forwarder::trigger::TriggerError),
    #[error(transparent)]
    Forward(ForwardError),
    /// The SQS partial batch response could not be written: the whole batch is retried.
    #[error("the partial batch response could not be written: {0}")]
    Response(serde_json::Error),
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(error: HandlerError) -> Self {
        let error_type = match &error {
            HandlerError::Trigger(_) => "UnrecognisedTrigger",
            HandlerError::Forward(_) => "NotFullyForwarded",
            HandlerError::Response(_) => "ResponseNotWritten",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.to_string(),
            error_message: error.to_string(),
        }
    }
}

impl<O: ObjectStore, S: SecretStore + 'static> Forwarder<O, S> {
    pub fn new(store: O, publisher: Arc<Publisher<S>>, settings: ForwarderSettings) -> Self {
        Forwarder {
            store,
            publisher,
            settings,
        }
    }

    /// Handles one invocation's event; `deadline` is when the work must be over.
    pub async fn handle(&self, event: &Value, deadline: Instant) -> Result<Value, HandlerError> {
        let trigger = trigger::parse(event).map_err(HandlerError::Trigger)?;
        let mut scanner = Some(Scanner::new(self.settings.scan.clone()));
        let retries_before = self.publisher.retries();
        match trigger {
            Trigger::TestEvent => {
                tracing::info!("s3:TestEvent acknowledged");
                Ok(json!({"testEvent": "acknowledged"}))
            }
            Trigger::Objects(objects) => {
                let mut failures = Vec::new();
                let mut delivered = 0;
                for object in &objects {
                    match self.forward_object(&mut scanner, object, deadline).await {
                        ObjectOutcome::Retry(failure) => failures.push(failure),
                        ObjectOutcome::Done { delivered: n } => delivered += n,
                        ObjectOutcome::Filtered(_) | ObjectOutcome::Missing(_) => {}
                    }
                }
                let summary = scanner.as_ref().map(Scanner::summary).unwrap_or_default();
                tracing::info!(%summary, delivered, failed_objects = failures.len(), "invocation done");
                self.emit_metrics(
                    objects.len(),
                    &summary,
                    delivered,
                    &failures,
                    retries_before,
                );
                if failures.is_empty() {
                    Ok(summary_json(&summary, delivered, objects.len()))
                } else {
                    Err(HandlerError::Forward(ForwardError { failures, summary }))
                }
            }
            Trigger::Sqs(messages) => {
                let mut failed_ids = Vec::new();
                let mut failures = Vec::new();
                for message in &messages {
                    let objects = match &message.objects {
                        Ok(objects) => objects,
                        Err(reason) => {
                            tracing::error!(message_id = %message.message_id, %reason, "SQS message is not an S3 notification; left for the queue's redrive policy");
                            failed_ids.push(message.message_id.clone());
                            failures.push(Unfinished {
                                object: format!("SQS message {}", message.message_id),
                                read_error: Some(reason.clone()),
                                undelivered: Vec::new(),
                                delivered: 0,
                            });
                            continue;
                        }
                    };
                    let mut failed = false;
                    for object in objects {
                        if let ObjectOutcome::Retry(failure) =
                            self.forward_object(&mut scanner, object, deadline).await
                        {
                            tracing::error!(message_id = %message.message_id, %failure, "object not fully forwarded; the message returns to the queue");
                            failures.push(failure);
                            failed = true;
                        }
                    }
                    if failed {
                        failed_ids.push(message.message_id.clone());
                    }
                }
                let summary = scanner.as_ref().map(Scanner::summary).unwrap_or_default();
                let objects = summary.objects as usize;
                self.emit_metrics(
                    objects,
                    &summary,
                    summary.forwarded,
                    &failures,
                    retries_before,
                );
                if !messages.is_empty() && failed_ids.len() == messages.len() {
                    // Nothing went through: failing the invocation returns the whole batch even
                    // where the trigger was set up without ReportBatchItemFailures.
                    return Err(HandlerError::Forward(ForwardError { failures, summary }));
                }
                sqs_batch_response(failed_ids).map_err(HandlerError::Response)
            }
        }
    }

    /// One EMF line per invocation (see [`crate::metrics`]).
    fn emit_metrics(
        &self,
        objects: usize,
        summary: &Summary,
        delivered: u64,
        failures: &[Unfinished],
        retries_before: u64,
    ) {
        let undelivered: usize = failures.iter().map(|f| f.undelivered.len()).sum();
        crate::metrics::emit(
            "forwarder",
            &[
                ("ObjectsRead", objects as u64),
                ("RecordsRead", summary.records),
                ("EventsForwarded", delivered),
                ("DuplicatesSuppressed", summary.duplicates),
                ("MalformedRecords", summary.malformed),
                (
                    "PublishRetries",
                    self.publisher.retries().saturating_sub(retries_before),
                ),
                ("PublishFailures", undelivered as u64),
                ("ObjectsFailed", failures.len() as u64),
            ],
        );
    }
}

fn summary_json(summary: &Summary, delivered: u64, objects: usize) -> Value {
    json!({
        "objects": objects,
        "records": summary.records,
        "forwarded": summary.forwarded,
        "delivered": delivered,
        "duplicates": summary.duplicates,
        "notForwarded": summary.not_forwarded,
        "unrecognised": summary.unrecognised,
        "malformed": summary.malformed,
    })
}

/// The partial batch response Lambda reads for an SQS trigger with `ReportBatchItemFailures`
/// (`aws_lambda_events`' type, so its field names are Lambda's own).
fn sqs_batch_response(failed_ids: Vec<String>) -> Result<Value, serde_json::Error> {
    use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse};
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed_ids
        .into_iter()
        .map(|item_identifier| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = item_identifier;
            failure
        })
        .collect();
    serde_json::to_value(response)
}
