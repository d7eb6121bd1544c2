//! Running a named action: its steps in order, each reading the event and the results of the
//! steps before it; an SBPA step may choose the action that runs next.

use std::time::Instant;

use serde_json::{Map, Value, json};

use crate::processor::delivery::AlertEvent;
use crate::processor::destination::{Call, Destinations};
use crate::processor::idempotency::IdempotencyStore;
use crate::processor::rules::actions::{Action, DestinationSpec, HttpCall, Step, StepKind};
use crate::processor::rules::template::TemplateError;
use crate::processor::rules::{Rule, RuleSet};

use super::Processor;
use super::notification::{external_reference, identity_for, notification_for};
use super::once::Keep;
use super::outcome::{Failure, Outcome};

/// How many actions one event may chain through SBPA choices.
const MAX_CHAINED_ACTIONS: usize = 4;

impl<I: IdempotencyStore> Processor<I> {
    /// Runs an action once per event and rule; `completed` holds results of steps that
    /// succeeded before (re-processing), which are not run again.
    pub(super) async fn run_action(
        &self,
        rules: &RuleSet,
        event: &AlertEvent,
        rule: &Rule,
        action: &Action,
        completed: Map<String, Value>,
        deadline: Instant,
    ) -> Outcome {
        let key = external_reference(
            &event.source,
            &format!("{}\naction:{}", event.id, rule.name),
        );
        self.exactly_once(&key, &event.id, deadline, |mut progress| async move {
            // A re-processed failure's results, and what a paused delivery had done.
            progress.extend(completed);
            let (outcome, results) = self
                .run_steps(rules, event, rule, action, progress, deadline)
                .await;
            match outcome {
                // Steps of its own (HTTP calls) ran: done, whatever the notification steps said.
                Outcome::GaveUp(_) | Outcome::Retry(_) if results.is_empty() => {
                    (outcome, Keep::ByOutcome)
                }
                // Stopped part-way: the next delivery (or e2b reprocess) resumes after the
                // steps that changed things, instead of repeating them.
                Outcome::GaveUp(_) | Outcome::Retry(_) => {
                    (outcome, Keep::Pause(Value::Object(results).to_string()))
                }
                done => (done, Keep::Done),
            }
        })
        .await
    }

    /// Runs the steps; returns the outcome and the results of the steps that ran.
    async fn run_steps(
        &self,
        rules: &RuleSet,
        event: &AlertEvent,
        rule: &Rule,
        action: &Action,
        mut results: Map<String, Value>,
        deadline: Instant,
    ) -> (Outcome, Map<String, Value>) {
        let outcome = self
            .run_queue(rules, event, rule, action, &mut results, deadline)
            .await;
        (outcome, results)
    }

    async fn run_queue(
        &self,
        rules: &RuleSet,
        event: &AlertEvent,
        rule: &Rule,
        action: &Action,
        results: &mut Map<String, Value>,
        deadline: Instant,
    ) -> Outcome {
        let mut queue: Vec<(&Action, &Step)> = action.steps.iter().map(|s| (action, s)).collect();
        queue.reverse();
        let mut chained = 1;
        // The outcome of the last notification step is the action's.
        let mut summary = Outcome::Complete(None);
        while let Some((owner, step)) = queue.pop() {
            // Re-processing: what changed things is not done again; reads run again.
            if results.contains_key(&step.name) && step.changes_things() {
                continue;
            }
            let mut scope = event.template_scope();
            scope["steps"] = Value::Object(results.clone());
            let fail = |reason: String, request: Option<Value>, results: &Map<String, Value>| {
                Outcome::GaveUp(Failure {
                    reason: format!("step `{}`: {reason}", step.name),
                    step: Some(step.name.clone()),
                    request,
                    completed_steps: results.clone(),
                })
            };
            let result = match &step.kind {
                StepKind::Log(message) => {
                    let text = match message.as_ref().map(|m| m.render_text(&scope)) {
                        Some(Err(e)) => return fail(e.to_string(), None, results),
                        Some(Ok(t)) => t,
                        None => String::new(),
                    };
                    tracing::info!(event_id = %event.id, rule = %rule.name, step = %step.name, message = %text, "log step");
                    json!({"message": text})
                }
                StepKind::CreateNotification | StepKind::CloseNotification => {
                    let chained = owner.name != action.name;
                    let outcome = self
                        .notification_step(
                            rules, event, rule, owner, chained, step, &scope, deadline,
                        )
                        .await;
                    match outcome {
                        Outcome::GaveUp(f) => return fail(f.reason, None, results),
                        Outcome::Retry(r) => {
                            return Outcome::Retry(format!("step `{}`: {r}", step.name));
                        }
                        done => {
                            let result = json!({"MaintenanceNotification": done.notification(),
                                "status": done.status(), "reason": done.reason()});
                            summary = done;
                            result
                        }
                    }
                }
                StepKind::Http(call) | StepKind::Sbpa { call, .. } => {
                    let Some(destination) = rules.destinations.get(&call.destination) else {
                        return fail(
                            format!("no destination `{}`", call.destination),
                            None,
                            results,
                        );
                    };
                    let rendered = match render(call, &scope) {
                        Ok(r) => r,
                        Err(e) => return fail(e.to_string(), None, results),
                    };
                    match self
                        .settings
                        .destinations
                        .call(&call.destination, destination, &rendered, deadline)
                        .await
                    {
                        Ok(answer) => answer,
                        Err(e) => match Outcome::of_error(&e) {
                            Outcome::GaveUp(f) => {
                                let request = recorded(&call.destination, destination, &rendered);
                                return fail(f.reason, Some(request), results);
                            }
                            Outcome::Retry(reason) => {
                                return Outcome::Retry(format!("step `{}`: {reason}", step.name));
                            }
                            done => return done,
                        },
                    }
                }
            };
            if let StepKind::Sbpa {
                choose: Some(path), ..
            } = &step.kind
            {
                let chosen = match path.lookup(&result) {
                    Ok(Value::String(key)) => key.clone(),
                    Ok(other) => {
                        let reason = format!("the decision chose `{other}`, not an action name");
                        return fail(reason, None, results);
                    }
                    Err(e) => return fail(format!("the decision's answer: {e}"), None, results),
                };
                let Some(next) = rules.action(&chosen) else {
                    let reason = format!(
                        "the decision chose action `{chosen}`, which the rules do not have"
                    );
                    return fail(reason, None, results);
                };
                chained += 1;
                if chained > MAX_CHAINED_ACTIONS {
                    return fail(
                        format!("more than {MAX_CHAINED_ACTIONS} chained actions"),
                        None,
                        results,
                    );
                }
                queue.extend(next.steps.iter().rev().map(|s| (next, s)));
            }
            results.insert(step.name.clone(), result);
        }
        summary
    }

    #[allow(clippy::too_many_arguments)]
    async fn notification_step(
        &self,
        rules: &RuleSet,
        event: &AlertEvent,
        rule: &Rule,
        action: &Action,
        chained: bool,
        step: &Step,
        scope: &Value,
        deadline: Instant,
    ) -> Outcome {
        let mut identity = identity_for(event, rule, rules);
        // An action chosen by another (SBPA) creates under its own name.
        if chained {
            identity = format!("{identity}\naction:{}", action.name);
        }
        let creates = action.steps.iter().filter(|s| s.kind == step.kind).count();
        if creates > 1 {
            identity = format!("{identity}\n{}", step.name);
        }
        match step.kind {
            StepKind::CloseNotification => {
                self.close_once(rules, event, &step.params, &identity, scope, deadline)
                    .await
            }
            _ => match notification_for(event, &step.params, &identity, rules, scope) {
                Ok(n) => {
                    self.create_once(event, &n, step.params.if_open.unwrap_or_default(), deadline)
                        .await
                }
                Err(reason) => Outcome::gave_up(reason),
            },
        }
    }
}

/// A step's call, rendered.
fn render(call: &HttpCall, scope: &Value) -> Result<Call, TemplateError> {
    let headers = call
        .headers
        .iter()
        .map(|(k, v)| Ok((k.clone(), v.render_header(scope)?)))
        .collect::<Result<Vec<_>, TemplateError>>()?;
    Ok(Call {
        method: call.method.clone(),
        path: call.path.render_path(scope)?,
        headers,
        body: call.body.as_ref().map(|b| b.render(scope)).transpose()?,
        csrf: call.csrf,
        expect: call.expect.clone(),
    })
}

/// What a failure record keeps of a refused call: no credentials, as those are added by the
/// destination client and never pass through a `Call`.
fn recorded(name: &str, destination: &DestinationSpec, call: &Call) -> Value {
    json!({
        "destination": name,
        "method": call.method.as_str(),
        "url": Destinations::url_of(destination, &call.path),
        "headers": call
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<String, Value>>(),
        "body": call.body,
    })
}
