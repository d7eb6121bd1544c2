//! The processor's outcomes: what one rule did to an event, and the HTTP answer.
//!
//! The vocabulary of [`crate::outcome`] in the processor's words: done is `Complete`,
//! `Updated`, `Closed`, `Duplicate`, `Skipped` or `Held` (200); retry is `Retry` (503: the mesh
//! redelivers); give up is `GaveUp` (recorded for `e2b reprocess`, then 200).
//! [`Outcome::of_error`] is the one mapping from an adapter's error to an outcome.

use std::fmt;

use serde_json::{Map, Value};

use crate::outcome::{Disposed, Disposition};

/// The HTTP answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    /// Headers besides `Content-Type: application/json` (the webhook handshake's).
    pub headers: Vec<(String, String)>,
}

/// A failure a redelivery cannot cure: what is recorded for `e2b reprocess`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Failure {
    pub reason: String,
    pub step: Option<String>,
    /// The request that was refused (no credentials in it).
    pub request: Option<Value>,
    /// Results of the steps that had succeeded.
    pub completed_steps: Map<String, Value>,
}

impl From<String> for Failure {
    fn from(reason: String) -> Self {
        Failure {
            reason,
            ..Failure::default()
        }
    }
}

/// The outcome of one action, as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done now (`COMPLETE`), with the notification number when one was created.
    Complete(Option<String>),
    /// An open notification took the event (`COMPLETE`): appended to, or escalated.
    Updated(String),
    /// The loop is closed (`COMPLETE`): the notification completed or annotated on recovery.
    Closed(String),
    /// Done before (`DUPLICATE`): the notification number.
    Duplicate(String),
    /// Nothing to do (`SKIPPED`).
    Skipped(String),
    /// Held by alarm management (`HELD`): recorded, the schedule releases it.
    Held(String),
    /// Given up (`ERROR`), logged and recorded; a redelivery cannot help.
    GaveUp(Failure),
    /// A retry can help (`RETRY`): answered 503.
    Retry(String),
}

impl Outcome {
    pub fn status(&self) -> &'static str {
        match self {
            Outcome::Complete(_) | Outcome::Updated(_) | Outcome::Closed(_) => "COMPLETE",
            Outcome::Duplicate(_) => "DUPLICATE",
            Outcome::Skipped(_) => "SKIPPED",
            Outcome::Held(_) => "HELD",
            Outcome::GaveUp(_) => "ERROR",
            Outcome::Retry(_) => "RETRY",
        }
    }

    /// The notification the outcome names, if any.
    pub fn notification(&self) -> Option<&str> {
        match self {
            Outcome::Complete(Some(n))
            | Outcome::Updated(n)
            | Outcome::Closed(n)
            | Outcome::Duplicate(n) => Some(n.as_str()).filter(|n| !n.is_empty()),
            _ => None,
        }
    }

    /// Why, for outcomes that have a reason.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Skipped(r) | Outcome::Retry(r) | Outcome::Held(r) => Some(r),
            Outcome::GaveUp(f) => Some(&f.reason),
            _ => None,
        }
    }

    pub fn gave_up(reason: impl Into<String>) -> Outcome {
        Outcome::GaveUp(Failure::from(reason.into()))
    }

    /// A panic while acting: a defect, given up (and so recorded) rather than answered with the
    /// runtime's 500, which the mesh would redeliver for ever.
    pub fn defect() -> Outcome {
        Outcome::gave_up(
            "the processor failed unexpectedly while acting on this event (a defect, see the log); recorded for e2b reprocess once a fixed version is deployed",
        )
    }
}

/// What one rule did to an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleOutcome {
    pub rule: Option<String>,
    pub action: Option<String>,
    pub outcome: Outcome,
}

impl Outcome {
    /// The one mapping from an adapter's error (S/4, a destination) to the processor's
    /// outcome: retry → `Retry` (503), give up → `GaveUp` (recorded).
    pub fn of_error(error: &(impl Disposed + fmt::Display)) -> Outcome {
        match error.disposition() {
            Disposition::Retry => Outcome::Retry(error.to_string()),
            Disposition::GiveUp => Outcome::gave_up(error.to_string()),
            Disposition::Done => Outcome::Complete(None),
        }
    }
}
