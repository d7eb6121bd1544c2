//! One object through the forwarder: stream it from S3 into the decoder, which runs on a
//! blocking thread, while the async runtime publishes each event with bounded concurrency.
//!
//! Rules:
//! - a key the filter skips is not read (`Filtered`); an object that no longer exists is
//!   given up, logged and skipped (`Missing`): no retry can help;
//! - with a delivery ledger ([`super::ledger`]) the object is leased first; an object an
//!   earlier invocation completed is not read (`Complete`), and an event whose record is done
//!   is not published again; each delivered or recorded event is noted as done;
//! - an event the broker refuses for good is written to the failure records
//!   ([`super::refusals`]) and counts as done; one that cannot be recorded stays undelivered;
//! - at most [`QUEUE_DEPTH`] events wait between the decoder and the publishers, and at most
//!   `PUBLISH_CONCURRENCY` publishes are in flight: memory is bounded whatever the object;
//! - broken records are reported with their byte offset and skipped; the rest still goes;
//! - everything ends by the deadline: a decoder still reading is stopped by closing its queue,
//!   publishes in flight finish or fail by their own deadline, and the object is `Retry` with
//!   what was and was not delivered;
//! - the scanner (the invocation's de-duplication) is handed back after the object, or made
//!   anew if the decoding thread died;
//! - with a trend table, the object's measurements are kept beside the publishing
//!   ([`super::series`]), and the object ends when those writes have too (by the deadline).

use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::io::SyncIoBridge;

use super::ledger::{Opened, Progress, object_id};
use super::publish::{Sender, Tally};
use super::scan::{Report, Scanner};
use super::series::Gathered;
use super::{Forwarder, ObjectOutcome, Unfinished};
use crate::aws::s3::{GetError, ObjectRef, ObjectStore};
use crate::aws::secrets::SecretStore;
use crate::event::Origin;

/// Events waiting between the decoder and the publishers.
const QUEUE_DEPTH: usize = 256;

/// How long past the deadline an object's lease lasts: the Lambda's own end, after the margin.
const LEASE_BEYOND_DEADLINE: Duration = Duration::from_secs(10);

impl<O: ObjectStore, S: SecretStore + 'static> Forwarder<O, S> {
    /// Reads one object and publishes its events. `scanner` carries the invocation's
    /// de-duplication across objects; it is replaced if a decoding thread dies.
    pub async fn forward_object(
        &self,
        scanner: &mut Option<Scanner>,
        object: &ObjectRef,
        deadline: Instant,
    ) -> ObjectOutcome {
        let label = object.label();
        let retry =
            |reason: String| ObjectOutcome::Retry(Unfinished::unread(label.clone(), reason));
        if let Some(reason) = self.settings.filter.skip_reason(&object.location.key) {
            tracing::info!(object = %label, %reason, "object skipped");
            return ObjectOutcome::Filtered(reason);
        }
        if Instant::now() >= deadline {
            return retry("not read: no time left before the invocation's deadline".into());
        }
        let mut progress = None;
        if let (Some(ledger), Some(id)) = (&self.ledger, object_id(object)) {
            match ledger
                .open(id, deadline + LEASE_BEYOND_DEADLINE, deadline)
                .await
            {
                Ok(Opened::Complete) => {
                    tracing::info!(object = %label, "every event of the object was done by an earlier invocation; not read again");
                    return ObjectOutcome::Complete;
                }
                Ok(Opened::Held(held)) => progress = Some(held),
                Err(e) => return retry(format!("not read: {e}")),
            }
        }
        let outcome = self
            .forward_body(scanner, object, deadline, progress.as_mut())
            .await;
        if let (Some(ledger), Some(held)) = (&self.ledger, progress) {
            let complete = matches!(outcome, ObjectOutcome::Done { .. });
            if let Err(e) = ledger.close(held, complete).await {
                tracing::warn!(object = %label, error = %e, "the object's lease was not released; it lapses at this invocation's deadline");
            }
        }
        outcome
    }

    /// Streams the object and publishes what the ledger (if any) does not have as done.
    async fn forward_body(
        &self,
        scanner: &mut Option<Scanner>,
        object: &ObjectRef,
        deadline: Instant,
        mut progress: Option<&mut Progress>,
    ) -> ObjectOutcome {
        let label = object.label();
        let body = match self.store.open(object).await {
            Ok(body) => body,
            Err(GetError::NotFound(message)) => {
                tracing::warn!(object = %label, %message, "object no longer exists; skipped");
                return ObjectOutcome::Missing(message);
            }
            Err(e) => return ObjectOutcome::Retry(Unfinished::unread(label, e.to_string())),
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
        let (notes, writer) = match (&self.ledger, progress.as_deref()) {
            (Some(ledger), Some(held)) => {
                let (notes, writer) = ledger.notes(held);
                (Some(notes), Some(writer))
            }
            _ => (None, None),
        };

        let limit = Arc::new(Semaphore::new(self.settings.concurrency.max(1)));
        let mut publishing: JoinSet<(String, super::publish::Sent)> = JoinSet::new();
        let mut tally = Tally::default();
        let mut already_done = 0u64;
        let mut stopped: Option<String> = None;
        let mut gathered = Gathered::default();
        let mut keeping = JoinSet::new();
        loop {
            let next = tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), rx.recv());
            let report = match next.await {
                Ok(Some(report)) => report,
                Ok(None) => break,
                Err(_) => {
                    stopped = Some(
                        "stopped at the invocation's deadline before the end of the object".into(),
                    );
                    break;
                }
            };
            match report {
                Report::Event(event) => {
                    if let (Some(ledger), Some(held)) = (&self.ledger, progress.as_deref_mut()) {
                        match ledger.is_done(held, event.record.ordinal).await {
                            Ok(true) => {
                                already_done += 1;
                                continue;
                            }
                            Ok(false) => {}
                            Err(e) => {
                                stopped = Some(format!("stopped: {e}"));
                                break;
                            }
                        }
                    }
                    let Ok(permit) = limit.clone().acquire_owned().await else {
                        break;
                    };
                    let this = Sender::new(
                        self.publisher.clone(),
                        self.refusals.clone(),
                        Some(object),
                        &label,
                        notes.clone(),
                    );
                    // In the invocation's span: each publish links to it.
                    publishing.spawn(
                        async move {
                            let sent = this.send(&event, deadline).await;
                            drop(permit);
                            (event.id, sent)
                        }
                        .in_current_span(),
                    );
                }
                Report::Problem(problem) => problem.log(),
                Report::Measurement(measured) => {
                    let (position, point) = *measured;
                    if let Some(keeper) = &self.series
                        && gathered.add(position, point)
                    {
                        keeper.keep(
                            std::mem::take(&mut gathered),
                            &label,
                            deadline,
                            &mut keeping,
                        );
                    }
                }
            }
            while let Some(done) = publishing.try_join_next() {
                tally.settle(&label, done);
            }
        }
        if let Some(keeper) = &self.series {
            keeper.keep(gathered, &label, deadline, &mut keeping);
        }
        // Closing the channel stops a decoder that is still going (out of time).
        drop(rx);
        while let Some(done) = publishing.join_next().await {
            tally.settle(&label, done);
        }
        // Each write logs its own failure and ends by the deadline.
        while keeping.join_next().await.is_some() {}
        drop(notes);
        if let Some(writer) = writer
            && let Err(e) = writer.finish().await
        {
            // Delivered, but a retry will not know: it sends these again (message ids unchanged).
            stopped.get_or_insert(format!("done events not all noted: {e}"));
        }
        let read_error = match decoding.await {
            Ok((decoder, result)) => {
                *scanner = Some(decoder);
                result.err()
            }
            Err(e) => Some(format!("the decoding thread failed: {e}")),
        };
        let read_error = stopped.or(read_error);
        let Tally {
            delivered,
            refused,
            undelivered,
        } = tally;
        if read_error.is_none() && undelivered.is_empty() {
            tracing::info!(object = %label, delivered, refused, already_done, "object forwarded");
            ObjectOutcome::Done {
                delivered,
                refused,
                already_done,
            }
        } else {
            ObjectOutcome::Retry(Unfinished {
                object: label,
                read_error,
                undelivered,
                delivered,
                refused,
                already_done,
            })
        }
    }
}
