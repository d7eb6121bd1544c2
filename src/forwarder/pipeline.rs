//! One object through the forwarder: stream it from S3 into the decoder, which runs on a
//! blocking thread, while the async runtime publishes each event with bounded concurrency.
//!
//! Rules:
//! - a key the filter skips is not read (`Filtered`); an object that no longer exists is
//!   given up, logged and skipped (`Missing`): no retry can help;
//! - at most [`QUEUE_DEPTH`] events wait between the decoder and the publishers, and at most
//!   `PUBLISH_CONCURRENCY` publishes are in flight: memory is bounded whatever the object;
//! - broken records are reported with their byte offset and skipped; the rest still goes;
//! - everything ends by the deadline: a decoder still reading is stopped by closing its queue,
//!   publishes in flight finish or fail by their own deadline, and the object is `Retry` with
//!   what was and was not delivered;
//! - the scanner (the invocation's de-duplication) is handed back after the object, or made
//!   anew if the decoding thread died.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::io::SyncIoBridge;

use super::event::Origin;
use super::mesh::PublishError;
use super::scan::{Report, Scanner, Severity};
use super::{Forwarder, ObjectOutcome, Unfinished};
use crate::aws::s3::{GetError, ObjectRef, ObjectStore};
use crate::aws::secrets::SecretStore;
use crate::outcome::{Disposed, Disposition};

/// Events waiting between the decoder and the publishers.
const QUEUE_DEPTH: usize = 256;

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
            // Retry or give up, the event is named in the object's failure and the invocation
            // fails, so Lambda retries the object (recording refusals instead is issue 13).
            Ok((id, Err(e))) => {
                let disposition = match e.disposition() {
                    Disposition::GiveUp => "refused for good",
                    Disposition::Retry | Disposition::Done => "not delivered for now",
                };
                tracing::error!(object = %label, event_id = %id, error = %e, disposition, "event not delivered");
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
