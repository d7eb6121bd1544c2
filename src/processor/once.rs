//! The idempotency protocol: each action runs at most once per key across deliveries.
//!
//! - `begin` claims the key: a completed record answers `Duplicate`, one in progress answers
//!   `Retry` (another delivery is working on it), a paused one resumes with its progress;
//! - the table unreachable is a `Retry`: going on could let a parallel delivery act too; a
//!   request the table refuses for good (`ValidationException`, ...) gives up, recorded;
//! - after the work, [`Keep`] says what the record becomes: completed with the notification,
//!   released (decided again by a redelivery), paused with progress, or held in progress for
//!   `in_progress_for` from now when S/4 may have carried out a write it did not confirm.

use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::processor::idempotency::{Begin, IdempotencyStore};

use super::Processor;
use super::outcome::Outcome;

impl<I: IdempotencyStore> Processor<I> {
    /// Runs `work` at most once per `key` across deliveries: the idempotency record
    /// serialises concurrent deliveries, and a completed record answers later ones.
    /// `work` gets the progress a paused delivery left (empty when none).
    ///
    /// The work ends by the reply budget: cut short, a write of it may still be under way, so
    /// the record is held in progress as for a write S/4 did not confirm.
    pub(super) async fn exactly_once<F: Future<Output = (Outcome, Keep)>>(
        &self,
        key: &str,
        event_id: &str,
        deadline: Instant,
        work: impl FnOnce(Map<String, Value>) -> F,
    ) -> Outcome {
        let mut progress = Map::new();
        match self
            .idempotency
            .begin(key, self.settings.in_progress_for)
            .await
        {
            Ok(Begin::Completed(number)) => return Outcome::Duplicate(number),
            Ok(Begin::InProgress) => {
                return Outcome::Retry("another delivery of this event is being processed".into());
            }
            Ok(Begin::Started) => true,
            Ok(Begin::Resume(saved)) => {
                match serde_json::from_str(&saved) {
                    Ok(Value::Object(map)) => progress = map,
                    _ => {
                        tracing::warn!(event_id, "the saved progress is unreadable; starting over")
                    }
                }
                true
            }
            // Going on without it could let a parallel delivery of the same event create too:
            // the mesh redelivers once the table answers again.
            Err(e) => return Outcome::of_error(&e.context("the event cannot be claimed")),
        };
        let limit = tokio::time::Instant::from_std(deadline + Duration::from_millis(250));
        let (outcome, keep) = tokio::time::timeout_at(limit, work(progress))
            .await
            .unwrap_or_else(|_| {
                let why = "the reply budget ran out while S/4 or a destination was being called";
                (Outcome::Retry(why.into()), Keep::InProgress)
            });
        if keep == Keep::InProgress {
            // From now, not from the start: the write may have been sent just before.
            if let Err(e) = self
                .idempotency
                .hold(key, self.settings.in_progress_for)
                .await
            {
                tracing::warn!(error = %e, event_id, "in-progress record not extended; it expires as first set");
            }
            return outcome;
        }
        if let Keep::Pause(progress) = &keep {
            if let Err(e) = self.idempotency.pause(key, progress).await {
                tracing::warn!(error = %e, event_id, "progress not saved; the next delivery starts over");
            }
            return outcome;
        }
        let done = !matches!(outcome, Outcome::GaveUp(_) | Outcome::Retry(_));
        let number = outcome.notification().map(str::to_string);
        match (done, number, keep) {
            (true, Some(n), _) => self.complete(key, event_id, &n).await,
            (true, None, Keep::Done) => self.complete(key, event_id, "").await,
            // Nothing done, or failed: a redelivery decides again, with the same result.
            _ => {
                if let Err(e) = self.idempotency.release(key).await {
                    tracing::warn!(error = %e, event_id, "idempotency record not released; it expires by itself");
                }
            }
        }
        outcome
    }

    async fn complete(&self, key: &str, event_id: &str, notification: &str) {
        if let Err(e) = self.idempotency.complete(key, notification).await {
            tracing::warn!(error = %e, event_id, "idempotency record not completed; the S/4 lookup still prevents a duplicate");
        }
    }
}

/// What becomes of an idempotency record after the work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Keep {
    /// Kept with what was done (JSON): the next delivery resumes after it.
    Pause(String),
    /// Completed when the outcome names a notification, else released (decided again).
    ByOutcome,
    /// Completed whatever the outcome, unless it failed (the work had effects of its own).
    Done,
    /// Held in progress for `in_progress_for` from now: a write S/4 did not confirm (a
    /// redelivery before then is told to wait, one after it looks again).
    InProgress,
}
