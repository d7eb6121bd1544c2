//! Reporting one delivery: the reply's JSON, one log record per event and rule, one EMF line.

use std::time::Instant;

use serde_json::{Value, json};

use super::outcome::{Failure, Outcome, Reply, RuleOutcome};

/// One EMF line per delivery (see [`crate::metrics`]).
pub(super) fn emit_metrics(outcomes: &[RuleOutcome]) {
    let count = |f: fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(&o.outcome)).count() as u64;
    crate::metrics::emit(
        "processor",
        &[
            ("EventsReceived", 1),
            (
                "NotificationsCreated",
                count(|o| matches!(o, Outcome::Complete(Some(_)))),
            ),
            (
                "NotificationsUpdated",
                count(|o| matches!(o, Outcome::Updated(_))),
            ),
            (
                "RecoveriesClosed",
                count(|o| matches!(o, Outcome::Closed(_))),
            ),
            (
                "DuplicatesSuppressed",
                count(|o| matches!(o, Outcome::Duplicate(_))),
            ),
            ("Skipped", count(|o| matches!(o, Outcome::Skipped(_)))),
            ("Failures", count(|o| matches!(o, Outcome::GaveUp(_)))),
            (
                "RetriesRequested",
                count(|o| matches!(o, Outcome::Retry(_))),
            ),
        ],
    );
}

pub(super) fn reply(status: u16, body: Value) -> Reply {
    Reply {
        status,
        body,
        headers: Vec::new(),
    }
}

pub(super) fn result_json(rule: Option<&str>, outcome: &Outcome) -> Value {
    let mut value = json!({"rule": rule, "status": outcome.status()});
    if let Some(n) = outcome.notification() {
        value["notification"] = json!(n);
    }
    if let Some(r) = outcome.reason() {
        value["reason"] = json!(r);
    }
    if let Outcome::GaveUp(Failure {
        step: Some(step), ..
    }) = outcome
    {
        value["step"] = json!(step);
    }
    match outcome {
        Outcome::Updated(_) => value["change"] = json!("updated"),
        Outcome::Closed(_) => value["change"] = json!("closed"),
        _ => {}
    }
    value
}

/// One structured log record per event and action.
pub(super) fn log_outcome(id: &str, o: &RuleOutcome, started: Instant) {
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    let outcome = &o.outcome;
    let (rule, action) = (o.rule.as_deref(), o.action.as_deref());
    let notification = outcome.notification();
    let reason = outcome.reason();
    let step = match outcome {
        Outcome::GaveUp(f) => f.step.as_deref(),
        _ => None,
    };
    let status = outcome.status();
    macro_rules! record {
        ($level:ident) => {
            tracing::$level!(
                event_id = id,
                rule,
                action,
                step,
                notification,
                status,
                reason,
                duration_ms,
                "event processed"
            )
        };
    }
    match outcome {
        Outcome::GaveUp(_) => record!(error),
        Outcome::Retry(_) => record!(warn),
        _ => record!(info),
    }
}
