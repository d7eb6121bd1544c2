//! Deciding and acting on one event: the rules that match, each one's action, and a durable
//! record of what was given up. An action is bounded by the reply budget, and a panic in it (a
//! defect) is given up and recorded like any hopeless failure, never the runtime's 500.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures_util::FutureExt;

use serde_json::{Map, Value};

use tracing::Instrument;

use crate::processor::delivery::{self, AlertEvent, Carried, Delivery};
use crate::processor::episode::chart::CHART_ACTION;
use crate::processor::episode::reconcile::by_episodes;
use crate::processor::episode::store::EpisodeStore;
use crate::processor::failures::FailureRecord;
use crate::processor::idempotency::IdempotencyStore;
use crate::processor::rules::{ActionKind, NoMatch, Rule, RuleSet};
use crate::trace;

use super::Processor;
use super::notification::{identity_for, notification_for};
use super::outcome::{Outcome, RuleOutcome};
use super::report::log_outcome;

impl<I: IdempotencyStore + EpisodeStore> Processor<I> {
    /// Runs a recorded failure again under the rules now in force: steps that had succeeded
    /// are not repeated, and every create is idempotent through its external reference. A
    /// new permanent failure is recorded anew. A trend chart's record tries the chart again
    /// ([`Processor::reattach`]).
    pub async fn reprocess(&self, record: &FailureRecord) -> Result<Vec<RuleOutcome>, String> {
        if record.action.as_deref() == Some(CHART_ACTION) {
            return Ok(vec![RuleOutcome {
                rule: record.rule.clone(),
                action: record.action.clone(),
                outcome: self.reattach(record).await,
            }]);
        }
        match delivery::parse(record.delivery.as_bytes()) {
            Ok(Delivery::Event(mut event)) => {
                event.continue_recorded(record.traceparent.as_deref());
                Ok(self
                    .process(&event, &record.delivery, Some(record), Instant::now())
                    .await)
            }
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
    /// Every log line of it carries the event's `trace_id`, and every request made for it the
    /// event's trace (`crate::trace`).
    pub async fn process(
        &self,
        event: &AlertEvent,
        delivery: &str,
        resume: Option<&FailureRecord>,
        started: Instant,
    ) -> Vec<RuleOutcome> {
        let span = trace::span(&event.trace);
        if let Carried::Refused(why) = &event.carried {
            span.in_scope(|| tracing::warn!(event_id = %event.id, %why, "the trace the event carried is not W3C Trace Context: the alert's own trace is started"));
        }
        trace::within(
            event.trace,
            self.process_traced(event, delivery, resume, started)
                .instrument(span),
        )
        .await
    }

    async fn process_traced(
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
                NoMatch::Error => Outcome::gave_up("no rule matches (no_match = \"error\")"),
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
            let acting = AssertUnwindSafe(self.act(&rule_set, event, rule, completed, deadline))
                .catch_unwind();
            let outcome = match tokio::time::timeout_at(limit, acting).await {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(_panic)) => {
                    tracing::error!(event_id = %event.id, rule = %rule.name, "the processor failed unexpectedly (a defect): the event is given up and recorded");
                    Outcome::defect()
                }
                Err(_) => Outcome::Retry("the reply budget ran out".into()),
            };
            outcomes.push(RuleOutcome {
                rule: Some(rule.name.clone()),
                action: Some(rule.action.to_string()),
                outcome,
            });
        }
        for o in &mut outcomes {
            if let Outcome::GaveUp(failure) = &o.outcome {
                let record = FailureRecord {
                    version: 1,
                    recorded_at: crate::aws::records::recorded_now(),
                    event_id: event.id.clone(),
                    source: event.source.clone(),
                    rule: o.rule.clone(),
                    action: o.action.clone(),
                    step: failure.step.clone(),
                    reason: failure.reason.clone(),
                    request: failure.request.clone(),
                    completed_steps: failure.completed_steps.clone(),
                    delivery: delivery.to_string(),
                    traceparent: Some(event.trace.to_string()),
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
        if by_episodes(rule)
            && let Some(outcome) = self.by_episode(rules, event, rule, deadline).await
        {
            return outcome;
        }
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
                    Err(reason) => Outcome::gave_up(reason),
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
                None => Outcome::gave_up(format!("action `{name}` is not in the rules")),
            },
        }
    }
}
