//! The processor Lambda's handler: a mesh delivery → decision table → S/4HANA, exactly once.
//!
//! Replies, for the REST Delivery Point (it redelivers on anything but 2xx):
//! - 200 when the actions completed, were done before (a duplicate), or failed for good (the
//!   failure is logged with SAP's reason; a redelivery could not help);
//! - 503 when a retry can help (S/4 down, a timeout, the same event being worked on elsewhere);
//! - 400 for a body that is no event this processor understands, 401 without valid credentials,
//!   413 for an oversized body.
//!
//! Every reply comes within the configured budget, below the RDP's 30 s wait.

pub mod auth;
pub mod config;
mod notification;

use std::sync::Arc;
use std::time::{Duration, Instant};

use lambda_http::http::HeaderMap;
use serde_json::{Value, json};

use crate::alert::{self, AlertEvent, Delivery};
use crate::idempotency::{Begin, IdempotencyStore};
use crate::rules::{ActionKind, IfOpen, Rule, RuleSet, RuleSource};
use crate::s4::{S4Client, S4Error};

pub use auth::InboundAuth;
pub use notification::{external_reference, notification_for};

/// Bodies larger than this are refused (413).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What the processor needs besides its clients.
#[derive(Clone)]
pub struct ProcessorSettings {
    pub rules: Arc<RuleSource>,
    pub auth: InboundAuth,
    /// Time allowed for one delivery, below the RDP's wait (30 s by default).
    pub budget: Duration,
    /// How long an in-progress idempotency record holds off other deliveries.
    pub in_progress_for: Duration,
}

/// The HTTP answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

/// The outcome of one action, as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done now (`COMPLETE`), with the notification number when one was created.
    Complete(Option<String>),
    /// Done before (`DUPLICATE`): the notification number.
    Duplicate(String),
    /// Nothing to do (`SKIPPED`).
    Skipped(String),
    /// Failed for good (`ERROR`), logged; a redelivery cannot help.
    Failed(String),
    /// A retry can help (`RETRY`): answered 503.
    Retry(String),
}

impl Outcome {
    pub fn status(&self) -> &'static str {
        match self {
            Outcome::Complete(_) => "COMPLETE",
            Outcome::Duplicate(_) => "DUPLICATE",
            Outcome::Skipped(_) => "SKIPPED",
            Outcome::Failed(_) => "ERROR",
            Outcome::Retry(_) => "RETRY",
        }
    }
}

/// The handler, holding its clients for the life of the warm Lambda.
pub struct Processor<I> {
    s4: Arc<S4Client>,
    idempotency: I,
    settings: ProcessorSettings,
}

impl<I: IdempotencyStore> Processor<I> {
    pub fn new(s4: Arc<S4Client>, idempotency: I, settings: ProcessorSettings) -> Self {
        Processor {
            s4,
            idempotency,
            settings,
        }
    }

    pub fn s4(&self) -> &S4Client {
        &self.s4
    }

    /// Handles one delivery.
    pub async fn handle(&self, headers: &HeaderMap, body: &[u8]) -> Reply {
        let started = Instant::now();
        let deadline = started + self.settings.budget;
        if !self.settings.auth.admits(headers) {
            tracing::warn!("delivery refused: missing or wrong credentials");
            return reply(401, json!({"error": "missing or wrong credentials"}));
        }
        if body.len() > MAX_BODY_BYTES {
            return reply(
                413,
                json!({"error": format!("body larger than {MAX_BODY_BYTES} bytes")}),
            );
        }
        let event = match alert::parse(body) {
            Ok(Delivery::Event(event)) => event,
            Ok(Delivery::NotAnAlert { id, reason }) => {
                log_outcome(&id, None, None, &Outcome::Skipped(reason.clone()), started);
                return reply(
                    200,
                    json!({"id": id, "status": "SKIPPED", "reason": reason}),
                );
            }
            Err(e) => {
                tracing::warn!(reason = %e, "delivery refused: not an event");
                return reply(400, json!({"error": e.to_string()}));
            }
        };
        let rule_set = self.settings.rules.current().await;
        let rules = rule_set.decide(&event);
        if rules.is_empty() {
            let outcome = Outcome::Skipped("no rule matches".into());
            log_outcome(&event.id, None, None, &outcome, started);
            return reply(
                200,
                json!({"id": event.id, "results": [result_json(None, &outcome)]}),
            );
        }
        let mut results = Vec::new();
        let mut outcomes = Vec::new();
        let mut retry = false;
        for rule in rules {
            // Every step is bounded by the deadline; this bounds what is not (the table calls).
            let limit = tokio::time::Instant::from_std(deadline + Duration::from_millis(500));
            let outcome =
                tokio::time::timeout_at(limit, self.act(&rule_set, &event, rule, deadline))
                    .await
                    .unwrap_or_else(|_| Outcome::Retry("the reply budget ran out".into()));
            log_outcome(
                &event.id,
                Some(&rule.name),
                Some(rule.action),
                &outcome,
                started,
            );
            retry |= matches!(outcome, Outcome::Retry(_));
            results.push(result_json(Some(&rule.name), &outcome));
            outcomes.push(outcome);
        }
        emit_metrics(&outcomes);
        reply(
            if retry { 503 } else { 200 },
            json!({"id": event.id, "results": results}),
        )
    }

    async fn act(
        &self,
        rules: &RuleSet,
        event: &AlertEvent,
        rule: &Rule,
        deadline: Instant,
    ) -> Outcome {
        match rule.action {
            ActionKind::Ignore => Outcome::Skipped(format!("rule `{}` ignores it", rule.name)),
            ActionKind::Log => Outcome::Complete(None),
            ActionKind::CreateNotification => self.create_once(rules, event, rule, deadline).await,
        }
    }

    /// Creates the event's notification unless it exists: the idempotency record serialises
    /// concurrent deliveries, the external-reference lookup is the source of truth.
    async fn create_once(
        &self,
        rules: &RuleSet,
        event: &AlertEvent,
        rule: &Rule,
        deadline: Instant,
    ) -> Outcome {
        let Some(mapping) = rules.mapping_for(event) else {
            return Outcome::Failed(format!(
                "no [[mapping]] row for project {:?}, site {:?}, asset {:?}, position {:?}",
                event.project, event.site, event.asset, event.position
            ));
        };
        let notification = notification_for(event, rule, mapping, rules);
        let key = notification.external_reference.clone();
        let owned = match self
            .idempotency
            .begin(&key, self.settings.in_progress_for)
            .await
        {
            Ok(Begin::Completed(number)) => return Outcome::Duplicate(number),
            Ok(Begin::InProgress) => {
                return Outcome::Retry("another delivery of this event is being processed".into());
            }
            Ok(Begin::Started) => true,
            Err(e) => {
                tracing::warn!(error = %e, event_id = %event.id, "idempotency table unavailable; relying on the S/4 lookup");
                false
            }
        };
        let outcome = match self.s4.find_by_reference(&key, deadline).await {
            Ok(Some(existing)) => Ok(Outcome::Duplicate(existing.number)),
            Ok(None) => {
                let policy = rule.params.if_open.unwrap_or_default();
                match self
                    .create_or_join(event, &notification, policy, deadline)
                    .await
                {
                    // The write may have happened: look again before saying anything.
                    Err(S4Error::Unclear(why)) => {
                        match self.s4.find_by_reference(&key, deadline).await {
                            Ok(Some(existing)) => Ok(Outcome::Complete(Some(existing.number))),
                            _ => Err(S4Error::Unclear(why)),
                        }
                    }
                    other => other,
                }
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok(done) => {
                match (&done, owned) {
                    (Outcome::Complete(Some(n)) | Outcome::Duplicate(n), true) => {
                        if let Err(e) = self.idempotency.complete(&key, n).await {
                            tracing::warn!(error = %e, event_id = %event.id, "idempotency record not completed; the S/4 lookup still prevents a duplicate");
                        }
                    }
                    // Nothing created: a redelivery decides again, with the same result.
                    (_, true) => self.release(&key, &event.id).await,
                    (_, false) => {}
                }
                done
            }
            Err(S4Error::Unclear(why)) => {
                // S/4 may still be saving it: the record stays in progress until it expires,
                // so a redelivery before then is told to wait and one after it looks again.
                Outcome::Retry(format!(
                    "S/4 did not confirm the write ({why}); it is looked up again on redelivery"
                ))
            }
            Err(error) => {
                if owned {
                    self.release(&key, &event.id).await;
                }
                match error {
                    S4Error::Permanent { .. } => Outcome::Failed(error.to_string()),
                    _ => Outcome::Retry(error.to_string()),
                }
            }
        }
    }

    async fn release(&self, key: &str, event_id: &str) {
        if let Err(e) = self.idempotency.release(key).await {
            tracing::warn!(error = %e, event_id, "idempotency record not released; it expires by itself");
        }
    }
}

impl<I: IdempotencyStore> Processor<I> {
    /// Creates the notification, unless the policy says to skip the alert or add it to a
    /// notification already open for the technical object.
    async fn create_or_join(
        &self,
        event: &AlertEvent,
        notification: &crate::s4::NewNotification,
        if_open: IfOpen,
        deadline: Instant,
    ) -> Result<Outcome, S4Error> {
        if if_open != IfOpen::Create
            && let Some(open) = self
                .s4
                .find_open_for_object(
                    &notification.technical_object,
                    &notification.object_kind,
                    deadline,
                )
                .await?
        {
            if if_open == IfOpen::Skip {
                return Ok(Outcome::Skipped(format!(
                    "notification {} is already open for {}",
                    open.number, notification.technical_object
                )));
            }
            // Added once per event, even without the idempotency table: the text names the event.
            let marker = format!("Monitron event: {}", event.id);
            if !open.long_text.lines().any(|line| line == marker) {
                let text = format!("{}\n{}", notification.text, notification.long_text);
                self.s4
                    .append_long_text(&open.number, &text, deadline)
                    .await?;
            }
            return Ok(Outcome::Complete(Some(open.number)));
        }
        self.s4
            .create(notification, deadline)
            .await
            .map(|number| Outcome::Complete(Some(number)))
    }
}

/// One EMF line per delivery (see [`crate::metrics`]).
fn emit_metrics(outcomes: &[Outcome]) {
    let count = |f: fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count() as u64;
    crate::metrics::emit(
        "processor",
        &[
            ("EventsReceived", 1),
            (
                "NotificationsCreated",
                count(|o| matches!(o, Outcome::Complete(Some(_)))),
            ),
            (
                "DuplicatesSuppressed",
                count(|o| matches!(o, Outcome::Duplicate(_))),
            ),
            ("Skipped", count(|o| matches!(o, Outcome::Skipped(_)))),
            ("Failures", count(|o| matches!(o, Outcome::Failed(_)))),
            (
                "RetriesRequested",
                count(|o| matches!(o, Outcome::Retry(_))),
            ),
        ],
    );
}

fn reply(status: u16, body: Value) -> Reply {
    Reply { status, body }
}

fn result_json(rule: Option<&str>, outcome: &Outcome) -> Value {
    let mut value = json!({"rule": rule, "status": outcome.status()});
    match outcome {
        Outcome::Complete(Some(n)) | Outcome::Duplicate(n) => value["notification"] = json!(n),
        Outcome::Skipped(r) | Outcome::Failed(r) | Outcome::Retry(r) => value["reason"] = json!(r),
        Outcome::Complete(None) => {}
    }
    value
}

/// One structured log record per event and action.
fn log_outcome(
    id: &str,
    rule: Option<&str>,
    action: Option<ActionKind>,
    outcome: &Outcome,
    started: Instant,
) {
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    let action = action.map(|a| format!("{a:?}"));
    let (notification, reason) = match outcome {
        Outcome::Complete(n) => (n.clone(), None),
        Outcome::Duplicate(n) => (Some(n.clone()), None),
        Outcome::Skipped(r) | Outcome::Failed(r) | Outcome::Retry(r) => (None, Some(r.as_str())),
    };
    match outcome {
        Outcome::Failed(_) => tracing::error!(
            event_id = id,
            rule,
            action,
            notification,
            status = outcome.status(),
            reason,
            duration_ms,
            "event processed"
        ),
        Outcome::Retry(_) => tracing::warn!(
            event_id = id,
            rule,
            action,
            notification,
            status = outcome.status(),
            reason,
            duration_ms,
            "event processed"
        ),
        _ => tracing::info!(
            event_id = id,
            rule,
            action,
            notification,
            status = outcome.status(),
            reason,
            duration_ms,
            "event processed"
        ),
    }
}
