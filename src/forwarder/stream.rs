//! A Kinesis batch through the forwarder (Monitron's live export stream): each record's data
//! decoded, its events published, and the batch answered with the record Lambda resumes the
//! shard from.
//!
//! Rules:
//! - records are decoded in batch order by the object decoder (one Kinesis record may hold
//!   several Monitron records, concatenated), with one scanner for the batch: an event repeated
//!   in the batch is published once;
//! - recognition, classification, payload, topic and message id are the S3 path's, so an event
//!   that reaches the mesh both ways carries one message id; `data.object` names the stream,
//!   shard and sequence number;
//! - bad input never fails the batch: data that is not base64 or not JSON is malformed, JSON
//!   that is not Monitron is unrecognised; each is counted and logged with its shard and
//!   sequence number;
//! - at most `PUBLISH_CONCURRENCY` publishes are in flight;
//! - an event refused for good is recorded ([`super::publish`]) and never blocks the shard;
//! - an event not delivered for now, or a record not reached by the deadline, fails its record:
//!   the response names the earliest such record's sequence number (`ReportBatchItemFailures`),
//!   so Lambda resumes the shard there and order per shard is kept. Records after it are read
//!   again; their events keep their message ids, and subscribers de-duplicate them (a refused
//!   one among them is refused and recorded again: `e2b resend` sends one message id).

use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::publish::{Sender, Sent, Tally};
use super::scan::{Report, Scanner, Summary};
use super::series::Gathered;
use super::trigger::StreamRecord;
use super::{Forwarder, Unfinished};
use crate::aws::s3::ObjectStore;
use crate::aws::secrets::SecretStore;
use crate::event::Origin;

/// What a batch came to.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// The sequence number Lambda resumes the shard from, when a record is not done.
    pub resume_from: Option<String>,
    /// Counts over the decoded records.
    pub summary: Summary,
    pub delivered: u64,
    pub refused: u64,
    /// Events not delivered for now: `(id, why)`.
    pub undelivered: Vec<(String, String)>,
}

impl BatchOutcome {
    /// The partial batch response Lambda reads (`aws_lambda_events`' type).
    pub fn response(&self) -> Result<Value, serde_json::Error> {
        let mut response = aws_lambda_events::event::streams::KinesisEventResponse::default();
        if let Some(sequence_number) = &self.resume_from {
            response.add_failure(sequence_number.clone());
        }
        serde_json::to_value(response)
    }

    /// The batch as a failure for the invocation's metrics and log, when a record is not done.
    pub fn unfinished(&self) -> Option<Unfinished> {
        let from = self.resume_from.as_ref()?;
        Some(Unfinished {
            object: format!("the Kinesis batch from sequence number {from}"),
            read_error: None,
            undelivered: self.undelivered.clone(),
            delivered: self.delivered,
            refused: self.refused,
            already_done: 0,
        })
    }
}

fn origin(record: &StreamRecord) -> Origin {
    Origin::Kinesis {
        stream: record.stream.clone(),
        shard: record.shard.clone(),
        sequence_number: record.sequence_number.clone(),
    }
}

impl<O: ObjectStore, S: SecretStore + 'static> Forwarder<O, S> {
    /// Publishes the events of a Kinesis batch by `deadline`.
    pub async fn forward_stream(
        &self,
        records: &[StreamRecord],
        deadline: Instant,
    ) -> BatchOutcome {
        let mut scanner = Scanner::new(self.settings.scan.clone());
        let limit = Arc::new(Semaphore::new(self.settings.concurrency.max(1)));
        let mut publishing: JoinSet<(usize, String, Sent)> = JoinSet::new();
        let mut tally = Tally::default();
        // The earliest record that is not done.
        let mut failed: Option<usize> = None;
        let mut fail = |index: usize| failed = Some(failed.map_or(index, |f| f.min(index)));
        let mut bad_data = 0u64;
        let mut gathered = Gathered::default();
        let mut keeping = JoinSet::new();
        for (index, record) in records.iter().enumerate() {
            if Instant::now() >= deadline {
                fail(index);
                break;
            }
            let origin = origin(record);
            let label = origin.label();
            let data = match &record.data {
                Ok(data) => data,
                Err(reason) => {
                    bad_data += 1;
                    tracing::warn!(shard = %record.shard, sequence_number = %record.sequence_number, %reason, "malformed Kinesis record skipped");
                    continue;
                }
            };
            let mut events = Vec::new();
            let mut full = false;
            let read = scanner.scan(&origin, data.as_slice(), |report| {
                match report {
                    Report::Event(event) => events.push(event),
                    Report::Problem(problem) => problem.log(),
                    Report::Measurement(measured) => {
                        let (position, point) = *measured;
                        full |= self.series.is_some() && gathered.add(position, point);
                    }
                }
                Ok::<(), std::convert::Infallible>(())
            });
            if let Some(keeper) = self.series.as_ref().filter(|_| full) {
                keeper.keep(
                    std::mem::take(&mut gathered),
                    "the Kinesis batch",
                    deadline,
                    &mut keeping,
                );
            }
            if let Err(e) = read {
                // The data itself is cut or broken: reading it again cannot help.
                tracing::warn!(shard = %record.shard, sequence_number = %record.sequence_number, error = %e, "Kinesis record not read to its end; the rest of it is skipped");
            }
            for event in events {
                let Ok(permit) = limit.clone().acquire_owned().await else {
                    fail(index);
                    break;
                };
                let sender = Sender::new(
                    self.publisher.clone(),
                    self.refusals.clone(),
                    None,
                    &label,
                    None,
                );
                // In the invocation's span: each publish links to it.
                publishing.spawn(
                    async move {
                        let sent = sender.send(&event, deadline).await;
                        drop(permit);
                        (index, event.id, sent)
                    }
                    .in_current_span(),
                );
            }
            while let Some(done) = publishing.try_join_next() {
                settle(records, &mut tally, &mut fail, done);
            }
        }
        if let Some(keeper) = &self.series {
            keeper.keep(gathered, "the Kinesis batch", deadline, &mut keeping);
        }
        while let Some(done) = publishing.join_next().await {
            settle(records, &mut tally, &mut fail, done);
        }
        // Each write logs its own failure and ends by the deadline.
        while keeping.join_next().await.is_some() {}
        let mut summary = scanner.summary();
        summary.malformed += bad_data;
        summary.records += bad_data;
        let resume_from = failed
            .and_then(|index| records.get(index))
            .map(|r| r.sequence_number.clone());
        tracing::info!(%summary, delivered = tally.delivered, refused = tally.refused, resume_from = resume_from.as_deref().unwrap_or("-"), "Kinesis batch done");
        BatchOutcome {
            resume_from,
            summary,
            delivered: tally.delivered,
            refused: tally.refused,
            undelivered: tally.undelivered,
        }
    }
}

/// Counts one publishing task; an event not delivered fails its record. A task that died
/// says no record: the batch is read again from its start.
fn settle(
    records: &[StreamRecord],
    tally: &mut Tally,
    fail: &mut impl FnMut(usize),
    done: Result<(usize, String, Sent), tokio::task::JoinError>,
) {
    match done {
        Ok((index, id, sent)) => {
            if matches!(sent, Sent::NotDelivered(_)) {
                fail(index);
            }
            let label = records
                .get(index)
                .map(|r| origin(r).label())
                .unwrap_or_default();
            tally.settle(&label, Ok((id, sent)));
        }
        Err(e) => {
            fail(0);
            tally.settle("the Kinesis batch", Err(e));
        }
    }
}
