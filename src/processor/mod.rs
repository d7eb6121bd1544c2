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
mod close;
pub mod config;
mod create;
pub mod delivery;
pub mod destination;
pub mod failures;
pub mod idempotency;
mod notification;
pub mod rules;
pub mod s4;
pub mod setup;
mod steps;

use std::sync::Arc;
use std::time::{Duration, Instant};

use lambda_http::http::HeaderMap;
use serde_json::{Map, Value, json};

use crate::processor::delivery::{AlertEvent, Delivery};
use crate::processor::destination::Destinations;
use crate::processor::failures::{FailureRecord, FailureSink};
use crate::processor::idempotency::{Begin, IdempotencyStore};
use crate::processor::rules::{ActionKind, NoMatch, Rule, RuleSet, RuleSource};
use crate::processor::s4::S4Client;

pub use auth::{AuthSource, InboundAuth};
pub use notification::{
    external_reference, identity_for, notification_for, recovery_note, technical_object_for,
};

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
    /// Where permanent failures are recorded for `e2b reprocess`.
    pub failures: Arc<FailureSink>,
    /// The clients of the rule files' destinations.
    pub destinations: Arc<Destinations>,
    /// The secret `auth` came from, read again when credentials do not match (rotation).
    pub auth_source: Option<Arc<AuthSource>>,
}

impl ProcessorSettings {
    /// Rules, delivery credentials and timing; failures only logged, no destinations' secrets,
    /// credentials never read again (set the fields for more).
    pub fn new(
        rules: RuleSource,
        auth: InboundAuth,
        budget: Duration,
        in_progress_for: Duration,
    ) -> ProcessorSettings {
        ProcessorSettings {
            rules: Arc::new(rules),
            auth,
            budget,
            in_progress_for,
            failures: Arc::default(),
            destinations: Arc::default(),
            auth_source: None,
        }
    }
}

/// The HTTP answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
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
    /// Failed for good (`ERROR`), logged and recorded; a redelivery cannot help.
    Failed(Failure),
    /// A retry can help (`RETRY`): answered 503.
    Retry(String),
}

impl Outcome {
    pub fn status(&self) -> &'static str {
        match self {
            Outcome::Complete(_) | Outcome::Updated(_) | Outcome::Closed(_) => "COMPLETE",
            Outcome::Duplicate(_) => "DUPLICATE",
            Outcome::Skipped(_) => "SKIPPED",
            Outcome::Failed(_) => "ERROR",
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
            Outcome::Skipped(r) | Outcome::Retry(r) => Some(r),
            Outcome::Failed(f) => Some(&f.reason),
            _ => None,
        }
    }

    pub fn failed(reason: impl Into<String>) -> Outcome {
        Outcome::Failed(Failure::from(reason.into()))
    }
}

/// What one rule did to an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleOutcome {
    pub rule: Option<String>,
    pub action: Option<String>,
    pub outcome: Outcome,
}

/// The handler, holding its clients for the life of the warm Lambda.
pub struct Processor<I> {
    s4: Arc<S4Client>,
    idempotency: I,
    /// The delivery credentials in force (changed when the secret is read again).
    auth: tokio::sync::RwLock<InboundAuth>,
    settings: ProcessorSettings,
}

impl<I: IdempotencyStore> Processor<I> {
    pub fn new(s4: Arc<S4Client>, idempotency: I, settings: ProcessorSettings) -> Self {
        Processor {
            s4,
            idempotency,
            auth: tokio::sync::RwLock::new(settings.auth.clone()),
            settings,
        }
    }

    pub fn s4(&self) -> &S4Client {
        &self.s4
    }

    /// Handles one delivery.
    pub async fn handle(&self, headers: &HeaderMap, body: &[u8]) -> Reply {
        let started = Instant::now();
        if !self.admitted(headers).await {
            tracing::warn!("delivery refused: missing or wrong credentials");
            return reply(401, json!({"error": "missing or wrong credentials"}));
        }
        if body.len() > MAX_BODY_BYTES {
            return reply(
                413,
                json!({"error": format!("body larger than {MAX_BODY_BYTES} bytes")}),
            );
        }
        let event = match delivery::parse(body) {
            Ok(Delivery::Event(event)) => event,
            Ok(Delivery::NotAnAlert { id, reason }) => {
                let skipped = RuleOutcome {
                    rule: None,
                    action: None,
                    outcome: Outcome::Skipped(reason.clone()),
                };
                log_outcome(&id, &skipped, started);
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
        let text = String::from_utf8_lossy(body);
        let outcomes = self.process(&event, &text, None, started).await;
        emit_metrics(&outcomes);
        let retry = outcomes
            .iter()
            .any(|o| matches!(o.outcome, Outcome::Retry(_)));
        let results: Vec<Value> = outcomes
            .iter()
            .map(|o| result_json(o.rule.as_deref(), &o.outcome))
            .collect();
        reply(
            if retry { 503 } else { 200 },
            json!({"id": event.id, "results": results}),
        )
    }

    /// Whether a request's credentials match; when they do not, the secret is read again (at
    /// most once a minute) in case it was rotated.
    async fn admitted(&self, headers: &HeaderMap) -> bool {
        if self.auth.read().await.admits(headers) {
            return true;
        }
        let Some(source) = &self.settings.auth_source else {
            return false;
        };
        let Some(fresh) = source.read_again().await else {
            return false;
        };
        let admitted = fresh.admits(headers);
        *self.auth.write().await = fresh;
        admitted
    }

    /// Runs a recorded failure again under the rules now in force: steps that had succeeded
    /// are not repeated, and every create is idempotent through its external reference. A
    /// new permanent failure is recorded anew.
    pub async fn reprocess(&self, record: &FailureRecord) -> Result<Vec<RuleOutcome>, String> {
        match delivery::parse(record.delivery.as_bytes()) {
            Ok(Delivery::Event(event)) => Ok(self
                .process(&event, &record.delivery, Some(record), Instant::now())
                .await),
            Ok(Delivery::NotAnAlert { reason, .. }) => Ok(vec![RuleOutcome {
                rule: None,
                action: None,
                outcome: Outcome::Skipped(reason),
            }]),
            Err(e) => Err(format!("the recorded delivery cannot be read: {e}")),
        }
    }

    /// Decides and acts on an event, records permanent failures, logs every outcome. `resume`
    /// is a failure record being re-processed: its completed steps are not run again.
    pub async fn process(
        &self,
        event: &AlertEvent,
        delivery: &str,
        resume: Option<&FailureRecord>,
        started: Instant,
    ) -> Vec<RuleOutcome> {
        let deadline = started + self.settings.budget;
        let rule_set = self.settings.rules.current().await;
        let mut rules = rule_set.decide(event);
        // Re-processing runs the rule that failed, not the others that matched (done already).
        let recorded_rule = resume.and_then(|r| r.rule.as_deref());
        if let Some(name) = recorded_rule {
            rules.retain(|r| r.name == name);
        }
        let mut outcomes = Vec::new();
        if let (Some(name), true) = (recorded_rule, rules.is_empty()) {
            outcomes.push(RuleOutcome {
                rule: Some(name.to_string()),
                action: None,
                outcome: Outcome::Skipped(format!(
                    "rule `{name}` no longer matches this event under the rules in force"
                )),
            });
            for o in &outcomes {
                log_outcome(&event.id, o, started);
            }
            return outcomes;
        }
        if rules.is_empty() {
            let outcome = match rule_set.no_match {
                NoMatch::Skip => Outcome::Skipped("no rule matches".into()),
                NoMatch::Error => Outcome::failed("no rule matches (no_match = \"error\")"),
            };
            outcomes.push(RuleOutcome {
                rule: None,
                action: None,
                outcome,
            });
        }
        for rule in rules {
            // Every step is bounded by the deadline; this bounds what is not (the table calls).
            let limit = tokio::time::Instant::from_std(deadline + Duration::from_millis(1500));
            let completed = resume
                .filter(|r| r.rule.as_deref() == Some(rule.name.as_str()))
                .map(|r| r.completed_steps.clone())
                .unwrap_or_default();
            let outcome = tokio::time::timeout_at(
                limit,
                self.act(&rule_set, event, rule, completed, deadline),
            )
            .await
            .unwrap_or_else(|_| Outcome::Retry("the reply budget ran out".into()));
            outcomes.push(RuleOutcome {
                rule: Some(rule.name.clone()),
                action: Some(rule.action.to_string()),
                outcome,
            });
        }
        for o in &mut outcomes {
            if let Outcome::Failed(failure) = &o.outcome {
                let record = FailureRecord {
                    version: 1,
                    recorded_at:
                        chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now())
                            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    event_id: event.id.clone(),
                    source: event.source.clone(),
                    rule: o.rule.clone(),
                    action: o.action.clone(),
                    step: failure.step.clone(),
                    reason: failure.reason.clone(),
                    request: failure.request.clone(),
                    completed_steps: failure.completed_steps.clone(),
                    delivery: delivery.to_string(),
                };
                match self.settings.failures.record(&record).await {
                    Ok(place) => {
                        tracing::info!(event_id = %event.id, rule = o.rule.as_deref(), recorded = %place, "failure recorded for e2b reprocess");
                    }
                    Err(e) => {
                        // Not recorded, so not answered as done: the mesh keeps the event.
                        o.outcome = Outcome::Retry(format!("{}; {e}", failure.reason));
                    }
                }
            }
            log_outcome(&event.id, o, started);
        }
        outcomes
    }

    async fn act(
        &self,
        rules: &RuleSet,
        event: &AlertEvent,
        rule: &Rule,
        completed: Map<String, Value>,
        deadline: Instant,
    ) -> Outcome {
        match &rule.action {
            ActionKind::Ignore => Outcome::Skipped(format!("rule `{}` ignores it", rule.name)),
            ActionKind::Log => Outcome::Complete(None),
            ActionKind::CreateNotification => {
                let identity = identity_for(event, rule, rules);
                let scope = event.template_scope();
                match notification_for(event, &rule.params, &identity, rules, &scope) {
                    Ok(n) => {
                        self.create_once(
                            event,
                            &n,
                            rule.params.if_open.unwrap_or_default(),
                            deadline,
                        )
                        .await
                    }
                    Err(reason) => Outcome::failed(reason),
                }
            }
            ActionKind::CloseNotification => {
                let scope = event.template_scope();
                self.close_once(
                    rules,
                    event,
                    &rule.params,
                    &identity_for(event, rule, rules),
                    &scope,
                    deadline,
                )
                .await
            }
            ActionKind::Run(name) => match rules.action(name) {
                Some(action) => {
                    self.run_action(rules, event, rule, action, completed, deadline)
                        .await
                }
                None => Outcome::failed(format!("action `{name}` is not in the rules")),
            },
        }
    }

    /// Runs `work` at most once per `key` across deliveries: the idempotency record
    /// serialises concurrent deliveries, and a completed record answers later ones.
    /// `work` gets the progress a paused delivery left (empty when none).
    ///
    /// The work ends by the reply budget: cut short, a write of it may still be under way, so
    /// the record is held in progress as for a write S/4 did not confirm.
    async fn exactly_once<F: Future<Output = (Outcome, Keep)>>(
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
            Err(e) => {
                return Outcome::Retry(format!(
                    "{e}; the event waits until the idempotency table can be used"
                ));
            }
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
        let done = !matches!(outcome, Outcome::Failed(_) | Outcome::Retry(_));
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
enum Keep {
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

/// One EMF line per delivery (see [`crate::metrics`]).
fn emit_metrics(outcomes: &[RuleOutcome]) {
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
    if let Some(n) = outcome.notification() {
        value["notification"] = json!(n);
    }
    if let Some(r) = outcome.reason() {
        value["reason"] = json!(r);
    }
    if let Outcome::Failed(Failure {
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
fn log_outcome(id: &str, o: &RuleOutcome, started: Instant) {
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    let outcome = &o.outcome;
    let (rule, action) = (o.rule.as_deref(), o.action.as_deref());
    let notification = outcome.notification();
    let reason = outcome.reason();
    let step = match outcome {
        Outcome::Failed(f) => f.step.as_deref(),
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
        Outcome::Failed(_) => record!(error),
        Outcome::Retry(_) => record!(warn),
        _ => record!(info),
    }
}
