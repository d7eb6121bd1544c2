//! The forwarder Lambda's handler: trigger → objects → events → the mesh.
//!
//! One invocation: the trigger names objects; each object is streamed from S3 into the decoder
//! (on a blocking thread, while publishing runs on the async runtime), and each forwarded event
//! is published with bounded concurrency. Outcomes:
//! - every event of every object got its 200, or was refused for good and recorded for
//!   `e2b resend` → the invocation succeeds with a summary;
//! - an object could not be read, or an event was not delivered → the invocation fails with an
//!   error naming the objects and the event ids, so Lambda's retries and the on-failure destination
//!   take over (redelivered events keep their message id; with the delivery ledger a retry
//!   publishes only what was not done);
//! - an object an earlier invocation completed (delivery ledger) is acknowledged unread;
//! - an object that no longer exists is logged and skipped (a retry cannot help);
//! - for an SQS batch, only the messages whose objects failed are reported back;
//! - for a Kinesis batch (Monitron's live export stream, [`stream`]), the record the shard
//!   resumes from is reported back, and the invocation succeeds;
//! - with `TREND_TABLE`, every measurement read is kept as its position's trend point
//!   ([`series`]), beside the publishing; a point not kept is logged and counted, never a
//!   failure of the object.

pub mod config;
pub mod doctor;
pub mod firehose;
pub mod ledger;

mod pipeline;
mod publish;
pub mod refusals;
pub mod replay;
pub mod scan;
pub mod series;
pub mod setup;
pub mod stream;
pub mod trigger;

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use crate::aws::records::FailureSink;
use crate::aws::s3::ObjectStore;
use crate::aws::secrets::SecretStore;
use crate::broker::Publisher;
use crate::forwarder::ledger::Ledger;
use crate::forwarder::scan::{ScanConfig, Scanner, Summary};
use crate::forwarder::series::SeriesKeeper;
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
    /// What was done per object, for retries (`PROGRESS_TABLE`).
    ledger: Option<Ledger>,
    /// Where refused events are recorded (`FAILURE_RECORDS`).
    refusals: Option<Arc<FailureSink>>,
    /// Where the measurements' trend points are kept (`TREND_TABLE`).
    series: Option<SeriesKeeper>,
}

/// What became of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectOutcome {
    /// Every forwarded event was delivered, recorded as refused, or done before.
    Done {
        delivered: u64,
        /// Refused for good by the broker and recorded.
        refused: u64,
        /// Done by an earlier invocation (delivery ledger): not published again.
        already_done: u64,
    },
    /// Every event was done by an earlier invocation: not read.
    Complete,
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
    /// Refused for good and recorded.
    pub refused: u64,
    /// Done by an earlier invocation (delivery ledger).
    pub already_done: u64,
}

impl Unfinished {
    /// An object that could not be read (to its end) for `reason`, nothing done.
    pub fn unread(object: String, reason: String) -> Unfinished {
        Unfinished {
            object,
            read_error: Some(reason),
            undelivered: Vec::new(),
            delivered: 0,
            refused: 0,
            already_done: 0,
        }
    }
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
        write!(f, " {} delivered", self.delivered)?;
        if self.refused > 0 {
            write!(f, ", {} refused and recorded", self.refused)?;
        }
        if self.already_done > 0 {
            write!(f, ", {} done before", self.already_done)?;
        }
        Ok(())
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
    /// The SQS or Kinesis partial batch response could not be written: the whole batch is
    /// retried.
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
            ledger: None,
            refusals: None,
            series: None,
        }
    }

    /// Keeps every measurement's trend point in `keeper`'s table; the forwarder's scans hand
    /// the points out from then on (`ScanConfig::measurements` follows the keeper).
    pub fn with_series(mut self, keeper: Option<SeriesKeeper>) -> Self {
        self.settings.scan.measurements = keeper.is_some();
        self.series = keeper;
        self
    }

    /// Keeps what was done per object in `ledger`, so that a retry sends only the rest.
    pub fn with_ledger(mut self, ledger: Option<Ledger>) -> Self {
        self.ledger = ledger;
        self
    }

    /// Records events the broker refuses for good in `sink` instead of failing the invocation.
    pub fn with_refusals(mut self, sink: Option<Arc<FailureSink>>) -> Self {
        self.refusals = sink;
        self
    }

    /// Handles one invocation's event; `deadline` is when the work must be over.
    pub async fn handle(&self, event: &Value, deadline: Instant) -> Result<Value, HandlerError> {
        // `{"e2b": "doctor"}`: the broker checked from where the function runs (its VPC).
        if event.get("e2b").and_then(Value::as_str) == Some("doctor") {
            // Boxed: its future would otherwise nest into every invocation's, deeper than the
            // compiler lays out in a release build.
            let checks = Box::pin(doctor::broker(&self.publisher)).await;
            for check in &checks {
                tracing::info!(ok = check.ok, "doctor: {}", check.line());
            }
            let ok = checks.iter().all(|c| c.ok);
            return Ok(json!({"doctor": checks, "ok": ok}));
        }
        let trigger = trigger::parse(event).map_err(HandlerError::Trigger)?;
        let mut scanner = Some(Scanner::new(self.settings.scan.clone()));
        let retries_before = self.publisher.retries();
        let series_before = self.series_counts();
        match trigger {
            Trigger::TestEvent => {
                tracing::info!("s3:TestEvent acknowledged");
                Ok(json!({"testEvent": "acknowledged"}))
            }
            Trigger::Objects(objects) => {
                let mut counts = Counts::default();
                for object in &objects {
                    let outcome = self.forward_object(&mut scanner, object, deadline).await;
                    counts.add(outcome);
                }
                let summary = scanner.as_ref().map(Scanner::summary).unwrap_or_default();
                tracing::info!(%summary, delivered = counts.delivered, refused = counts.refused, already_done = counts.already_done, failed_objects = counts.failures.len(), "invocation done");
                self.emit_metrics(
                    objects.len(),
                    &summary,
                    &counts,
                    retries_before,
                    series_before,
                );
                if counts.failures.is_empty() {
                    Ok(summary_json(&summary, &counts, objects.len()))
                } else {
                    let failures = counts.failures;
                    Err(HandlerError::Forward(ForwardError { failures, summary }))
                }
            }
            Trigger::Stream(records) => {
                let batch = self.forward_stream(&records, deadline).await;
                let counts = Counts {
                    delivered: batch.delivered,
                    refused: batch.refused,
                    already_done: 0,
                    failures: batch.unfinished().into_iter().collect(),
                };
                if let Some(failure) = counts.failures.first() {
                    tracing::error!(%failure, "Kinesis records not all done; Lambda resumes the shard from the first of them");
                }
                self.emit_metrics(0, &batch.summary, &counts, retries_before, series_before);
                batch.response().map_err(HandlerError::Response)
            }
            Trigger::Sqs(messages) => {
                let mut failed_ids = Vec::new();
                let mut counts = Counts::default();
                for message in &messages {
                    if let Some(body) = &message.trend_points {
                        if let Err(reason) = self.keep_queued(body, deadline).await {
                            tracing::error!(message_id = %message.message_id, %reason, "trend points not written; the message returns to the queue");
                            failed_ids.push(message.message_id.clone());
                        }
                        continue;
                    }
                    let objects = match &message.objects {
                        Ok(objects) => objects,
                        Err(reason) => {
                            tracing::error!(message_id = %message.message_id, %reason, "SQS message is not an S3 notification; left for the queue's redrive policy");
                            failed_ids.push(message.message_id.clone());
                            counts.failures.push(Unfinished::unread(
                                format!("SQS message {}", message.message_id),
                                reason.clone(),
                            ));
                            continue;
                        }
                    };
                    let failed_before = counts.failures.len();
                    for object in objects {
                        let outcome = self.forward_object(&mut scanner, object, deadline).await;
                        if let ObjectOutcome::Retry(failure) = &outcome {
                            tracing::error!(message_id = %message.message_id, %failure, "object not fully forwarded; the message returns to the queue");
                        }
                        counts.add(outcome);
                    }
                    if counts.failures.len() > failed_before {
                        failed_ids.push(message.message_id.clone());
                    }
                }
                let summary = scanner.as_ref().map(Scanner::summary).unwrap_or_default();
                let objects = summary.objects as usize;
                self.emit_metrics(objects, &summary, &counts, retries_before, series_before);
                if !messages.is_empty() && failed_ids.len() == messages.len() {
                    // Nothing went through: failing the invocation returns the whole batch even
                    // where the trigger was set up without ReportBatchItemFailures.
                    let failures = counts.failures;
                    return Err(HandlerError::Forward(ForwardError { failures, summary }));
                }
                sqs_batch_response(failed_ids).map_err(HandlerError::Response)
            }
        }
    }

    /// Trend points kept, not kept and queued so far.
    fn series_counts(&self) -> (u64, u64, u64) {
        self.series.as_ref().map_or((0, 0, 0), |keeper| {
            let (kept, not_kept) = keeper.counts();
            (kept, not_kept, keeper.queued())
        })
    }

    /// Writes the points of a trend queue's message (`series::queue`).
    async fn keep_queued(&self, body: &str, deadline: Instant) -> Result<(), String> {
        match &self.series {
            Some(keeper) => keeper.keep_message(body, deadline).await,
            None => {
                Err("TREND_TABLE is not set: the trend queue's points cannot be written".into())
            }
        }
    }

    /// One EMF line per invocation (see [`crate::metrics`]).
    fn emit_metrics(
        &self,
        objects: usize,
        summary: &Summary,
        counts: &Counts,
        retries_before: u64,
        series_before: (u64, u64, u64),
    ) {
        let (kept, not_kept, queued) = self.series_counts();
        let undelivered: usize = counts.failures.iter().map(|f| f.undelivered.len()).sum();
        crate::metrics::emit_with(
            "forwarder",
            &[("Broker", self.publisher.config().broker.name())],
            &[
                ("ObjectsRead", objects as u64),
                ("RecordsRead", summary.records),
                ("EventsForwarded", counts.delivered),
                ("EventsRefused", counts.refused),
                ("EventsAlreadyDone", counts.already_done),
                ("DuplicatesSuppressed", summary.duplicates),
                ("MalformedRecords", summary.malformed),
                (
                    "PublishRetries",
                    self.publisher.retries().saturating_sub(retries_before),
                ),
                ("PublishFailures", undelivered as u64),
                ("ObjectsFailed", counts.failures.len() as u64),
                ("TrendPointsKept", kept.saturating_sub(series_before.0)),
                (
                    "TrendPointsNotKept",
                    not_kept.saturating_sub(series_before.1),
                ),
                ("TrendPointsQueued", queued.saturating_sub(series_before.2)),
            ],
        );
    }
}

/// What the objects of one invocation came to. Events delivered from an object that failed
/// count too: the broker has them.
#[derive(Debug, Default)]
struct Counts {
    delivered: u64,
    refused: u64,
    already_done: u64,
    failures: Vec<Unfinished>,
}

impl Counts {
    fn add(&mut self, outcome: ObjectOutcome) {
        match outcome {
            ObjectOutcome::Done {
                delivered,
                refused,
                already_done,
            } => {
                self.delivered += delivered;
                self.refused += refused;
                self.already_done += already_done;
            }
            ObjectOutcome::Retry(failure) => {
                self.delivered += failure.delivered;
                self.refused += failure.refused;
                self.already_done += failure.already_done;
                self.failures.push(failure);
            }
            ObjectOutcome::Complete | ObjectOutcome::Filtered(_) | ObjectOutcome::Missing(_) => {}
        }
    }
}

fn summary_json(summary: &Summary, counts: &Counts, objects: usize) -> Value {
    json!({
        "objects": objects,
        "records": summary.records,
        "forwarded": summary.forwarded,
        "delivered": counts.delivered,
        "refused": counts.refused,
        "alreadyDone": counts.already_done,
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
