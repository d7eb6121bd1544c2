//! One event to the mesh, as both paths of the forwarder send it (an S3 object's events, a
//! Kinesis batch's): publish, record a refusal, note what is done.
//!
//! Rules:
//! - an event the broker takes is `Delivered`;
//! - one it refuses for good (`Disposition::GiveUp`) is written to the failure records and is
//!   `Recorded`; without a place to record it, or when the record cannot be written, it is
//!   `NotDelivered`, so that the platform retries and nothing is lost;
//! - anything else (retries exhausted, the deadline, credentials) is `NotDelivered`;
//! - a delivered or recorded event is noted done in the delivery ledger, when there is one.

use std::sync::Arc;
use std::time::Instant;

use super::ledger::Notes;
use super::refusals::RefusedEvent;
use crate::aws::records::FailureSink;
use crate::aws::s3::ObjectRef;
use crate::aws::secrets::SecretStore;
use crate::broker::Publisher;
use crate::event::ForwardedEvent;
use crate::outcome::{Disposed, Disposition};

/// What became of one event.
pub enum Sent {
    Delivered,
    /// Refused for good and recorded (where).
    Recorded(String),
    NotDelivered(String),
}

/// Counts of one object or batch.
#[derive(Default)]
pub struct Tally {
    pub delivered: u64,
    pub refused: u64,
    /// `(event id, why)`.
    pub undelivered: Vec<(String, String)>,
}

impl Tally {
    /// Counts what a publishing task came to, and logs it against `label`.
    pub fn settle(&mut self, label: &str, done: Result<(String, Sent), tokio::task::JoinError>) {
        match done {
            Ok((_, Sent::Delivered)) => self.delivered += 1,
            Ok((id, Sent::Recorded(place))) => {
                self.refused += 1;
                tracing::error!(object = %label, event_id = %id, record = %place, "event refused by the broker for good; recorded for e2b resend");
            }
            Ok((id, Sent::NotDelivered(why))) => {
                tracing::error!(object = %label, event_id = %id, error = %why, "event not delivered");
                self.undelivered.push((id, why));
            }
            Err(e) => self
                .undelivered
                .push(("(unknown)".into(), format!("publishing task failed: {e}"))),
        }
    }
}

/// One publishing task's view of the forwarder.
pub struct Sender<S> {
    publisher: Arc<Publisher<S>>,
    refusals: Option<Arc<FailureSink>>,
    /// Where the event came from: the correlation id and the refusal record's `object`.
    label: String,
    /// The S3 object's version, for the refusal record.
    version: Option<String>,
    notes: Option<Notes>,
}

impl<S: SecretStore> Sender<S> {
    pub fn new(
        publisher: Arc<Publisher<S>>,
        refusals: Option<Arc<FailureSink>>,
        object: Option<&ObjectRef>,
        label: &str,
        notes: Option<Notes>,
    ) -> Self {
        Sender {
            publisher,
            refusals,
            label: label.to_string(),
            version: object.and_then(|o| o.version_id.clone()),
            notes,
        }
    }

    pub async fn send(&self, event: &ForwardedEvent, deadline: Instant) -> Sent {
        let sent = match self.publisher.publish(event, &self.label, deadline).await {
            Ok(_) => Sent::Delivered,
            Err(e) if e.disposition() == Disposition::GiveUp => {
                let Some(sink) = &self.refusals else {
                    return Sent::NotDelivered(format!(
                        "{e} (FAILURE_RECORDS is not set, so it is not recorded)"
                    ));
                };
                let record = RefusedEvent::new(event, &self.label, &e, self.version.clone());
                match sink.record(&record).await {
                    Ok(place) => Sent::Recorded(place),
                    Err(why) => Sent::NotDelivered(format!("{e}; not recorded: {why}")),
                }
            }
            Err(e) => Sent::NotDelivered(e.to_string()),
        };
        if let (Sent::Delivered | Sent::Recorded(_), Some(notes)) = (&sent, &self.notes)
            && !notes.done(event.record.ordinal).await
        {
            tracing::warn!(event_id = %event.id, "the progress writer stopped; a retry may send this event again");
        }
        sent
    }
}
