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
pub mod replay;
pub mod scan;
pub mod setup;
pub mod trigger;

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::io::SyncIoBridge;

use crate::aws::s3::{GetError, ObjectStore};
use crate::aws::secrets::SecretStore;
use crate::forwarder::event::Origin;
use crate::forwarder::mesh::{PublishError, Publisher};
use crate::forwarder::scan::{Report, ScanConfig, Scanner, Severity, Summary};
use crate::forwarder::trigger::KeyFilter;
use crate::forwarder::trigger::{ObjectRef, Trigger};

/// Events waiting between the decoder and the publishers.
const QUEUE_DEPTH: usize = 256;
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardError {
    pub failures: Vec<Unfinished>,
    pub summary: Summary,
}

impl std::fmt::Display for ForwardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let details: Vec<String> = self.failures.iter().map(ToString::to_string).collect();
        write!(
            f,
            "{} object(s) not fully forwarded, the invocation fails so that Lambda retries it: {}",
            self.failures.len(),
            details.join(" | ")
        )
    }
}

impl std::error::Error for ForwardError {}

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

    /// Reads one object and publishes its events. `scanner` carries the invocation's
    /// de-duplication across objects; it is replaced if a decoding thread dies.
    pub async fn forward_object(
        &self,
        scanner: &mut Option<Scanner>,
        object: &ObjectRef,
        deadline: Instant,
    ) -> ObjectOutcome {
        let label = object.label();
        if let Some(reason) = self.settings.filter.skip_reason(&object.location.key) {
            tracing::info!(object = %label, %reason, "object skipped");
            return ObjectOutcome::Filtered(reason);
        }
        if Instant::now() >= deadline {
            return ObjectOutcome::Retry(Unfinished {
                object: label,
                read_error: Some("not read: no time left before the invocation's deadline".into()),
                undelivered: Vec::new(),
                delivered: 0,
            });
        }
        let body = match self.store.open(object).await {
            Ok(body) => body,
            Err(GetError::NotFound(message)) => {
                tracing::warn!(object = %label, %message, "object no longer exists; skipped");
                return ObjectOutcome::Missing(message);
            }
            Err(e) => {
                return ObjectOutcome::Retry(Unfinished {
                    object: label,
                    read_error: Some(e.to_string()),
                    undelivered: Vec::new(),
                    delivered: 0,
                });
            }
        };
        let origin = Origin::S3(object.location.clone());
        let mut decoder = scanner
            .take()
            .unwrap_or_else(|| Scanner::new(self.settings.scan.clone()));
        let (tx, mut rx) = mpsc::channel::<Report>(QUEUE_DEPTH);
        let bridge = SyncIoBridge::new(body);
        let decoding = tokio::task::spawn_blocking(move || {
            let result = decoder.scan(&origin, bridge, |report| {
                tx.blocking_send(report)
                    .map_err(|_| "the publisher stopped")
            });
            (decoder, result.map(|_| ()).map_err(|e| e.to_string()))
        });

        let limit = Arc::new(Semaphore::new(self.settings.concurrency.max(1)));
        let mut publishing: JoinSet<(String, Result<(), PublishError>)> = JoinSet::new();
        let mut delivered = 0u64;
        let mut undelivered = Vec::new();
        let mut settle = |done: Result<
            (String, Result<(), PublishError>),
            tokio::task::JoinError,
        >| match done {
            Ok((_, Ok(()))) => delivered += 1,
            Ok((id, Err(e))) => {
                tracing::error!(object = %label, event_id = %id, error = %e, "event not delivered");
                undelivered.push((id, e.to_string()));
            }
            Err(e) => {
                undelivered.push(("(unknown)".into(), format!("publishing task failed: {e}")))
            }
        };
        let mut out_of_time = false;
        loop {
            let next = tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), rx.recv());
            let report = match next.await {
                Ok(Some(report)) => report,
                Ok(None) => break,
                Err(_) => {
                    out_of_time = true;
                    break;
                }
            };
            match report {
                Report::Event(event) => {
                    let Ok(permit) = limit.clone().acquire_owned().await else {
                        break;
                    };
                    let publisher = self.publisher.clone();
                    let correlation = label.clone();
                    publishing.spawn(async move {
                        let result = publisher.publish(&event, &correlation, deadline).await;
                        drop(permit);
                        (event.id, result.map(|_| ()))
                    });
                }
                Report::Problem(problem) => match problem.severity {
                    Severity::Malformed => {
                        tracing::warn!(object = %problem.object, offset = problem.offset, reason = %problem.reason, "malformed record skipped")
                    }
                    Severity::Warning => {
                        tracing::warn!(object = %problem.object, offset = problem.offset, reason = %problem.reason, "record warning")
                    }
                },
            }
            while let Some(done) = publishing.try_join_next() {
                settle(done);
            }
        }
        // Closing the channel stops a decoder that is still going (out of time).
        drop(rx);
        while let Some(done) = publishing.join_next().await {
            settle(done);
        }
        let read_error = match decoding.await {
            Ok((decoder, result)) => {
                *scanner = Some(decoder);
                result.err()
            }
            Err(e) => Some(format!("the decoding thread failed: {e}")),
        };
        let read_error = if out_of_time {
            Some("stopped at the invocation's deadline before the end of the object".to_string())
        } else {
            read_error
        };
        if read_error.is_none() && undelivered.is_empty() {
            tracing::info!(object = %label, delivered, "object forwarded");
            ObjectOutcome::Done { delivered }
        } else {
            ObjectOutcome::Retry(Unfinished {
                object: label,
                read_error,
                undelivered,
                delivered,
            })
        }
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
