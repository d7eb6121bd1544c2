//! `e2b rules check FILE` and `e2b rules test FILE EVENT.json [--after EARLIER.json ...]`.

use std::process::ExitCode;

use super::s4_requests::{s4_requests, show};
use crate::processor::delivery::{self, AlertEvent, Delivery};
use crate::processor::destination::Destinations;
use crate::processor::episode::reconcile::by_episodes;
use crate::processor::rules::actions::StepKind;
use crate::processor::rules::{ActionKind, ActionParams, Rule, RuleSet};

use crate::processor::close::CLOSURE_ITEM;
use crate::processor::rules::{CatalogCode, IfOpen};
use crate::processor::s4::ItemCode;
use crate::processor::{identity_for, notification_for, technical_object_for};

#[derive(clap::Subcommand)]
pub enum RulesCommand {
    /// Check a rule file: syntax, unknown keys, lengths S/4 accepts, names used twice.
    Check {
        /// The rule file (TOML); `bundled` for the rules shipped with the processor.
        file: String,
    },
    /// Show what an event would do under a rule file: the matching rows and the exact HTTP
    /// requests that would be sent to S/4. Nothing is sent.
    Test {
        /// The rule file (TOML); `bundled` for the rules shipped with the processor.
        file: String,
        /// A delivery body: a CloudEvent as `e2b scan` prints it, or a SAP sample envelope.
        event: String,
        /// Events of the same position delivered before (repeatable, in delivery order), each
        /// assumed carried out: the episode decision for EVENT given them.
        #[arg(long = "after", value_name = "EARLIER.json")]
        after: Vec<String>,
    },
}

fn load(file: &str) -> Result<RuleSet, String> {
    if file == "bundled" {
        return RuleSet::bundled().map_err(|e| e.to_string());
    }
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {file}: {e}"))?;
    RuleSet::parse(file, &text).map_err(|e| e.to_string())
}

pub fn run(command: RulesCommand) -> ExitCode {
    match command {
        RulesCommand::Check { file } => match load(&file) {
            Ok(rules) => {
                println!(
                    "{file}: valid: {} rule(s), hit policy {:?}, {} mapping row(s)",
                    rules.rules.len(),
                    rules.hit_policy,
                    rules.mappings.len()
                );
                for line in rules.alarm_management.meaning() {
                    println!("  {line}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        RulesCommand::Test { file, event, after } => {
            let rules = match load(&file) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let body = match std::fs::read(&event) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("cannot read {event}: {e}");
                    return ExitCode::from(2);
                }
            };
            let event = match delivery::parse(&body) {
                Ok(Delivery::Event(e)) => e,
                Ok(Delivery::NotAnAlert { id, reason }) => {
                    println!("event {id}: not an alert change ({reason}): nothing would be done");
                    return ExitCode::SUCCESS;
                }
                Err(e) => {
                    eprintln!("not an event the processor accepts (it would answer 400): {e}");
                    return ExitCode::FAILURE;
                }
            };
            println!(
                "event {} ({}) from {}",
                event.id, event.event_type, event.source
            );
            let matching = rules.decide(&event);
            if matching.is_empty() {
                println!("no rule matches: nothing would be done (SKIPPED)");
            }
            let earlier = match super::rules_episode::read_events(&after) {
                Ok(events) => events,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            for rule in matching {
                println!("rule `{}`: {}", rule.name, rule.action);
                if by_episodes(rule) {
                    println!("  per episode (params.per; docs/episodes.md)");
                    if super::rules_episode::explain(&rules, &event, rule, &earlier) {
                        continue;
                    }
                }
                explain(&rules, &event, rule);
            }
            ExitCode::SUCCESS
        }
    }
}

/// Prints what a rule would send, without sending anything.
fn explain(rules: &RuleSet, event: &AlertEvent, rule: &Rule) {
    let scope = event.template_scope();
    let identity = identity_for(event, rule, rules);
    match &rule.action {
        ActionKind::CreateNotification => explain_create(rules, event, &rule.params, &identity),
        ActionKind::CloseNotification => explain_close(rules, event, &rule.params),
        ActionKind::Log | ActionKind::Ignore => {}
        ActionKind::Run(name) => {
            let Some(action) = rules.action(name) else {
                return;
            };
            for step in &action.steps {
                println!("  step `{}` ({:?}):", step.name, step.phase);
                match &step.kind {
                    StepKind::CreateNotification => {
                        explain_create(rules, event, &step.params, &identity)
                    }
                    StepKind::CloseNotification => explain_close(rules, event, &step.params),
                    StepKind::Log(_) => println!("  log a message"),
                    StepKind::Http(call) | StepKind::Sbpa { call, .. } => {
                        let url = rules
                            .destinations
                            .get(&call.destination)
                            .map(|d| Destinations::url_of(d, ""))
                            .unwrap_or_default();
                        match call.path.render_path(&scope) {
                            Ok(path) => println!("  {} {url}{path}", call.method),
                            Err(e) => {
                                println!("  {} {url}… ({e}: known when it runs)", call.method)
                            }
                        }
                        if let Some(body) = &call.body {
                            match body.render(&scope) {
                                Ok(b) => println!(
                                    "{}",
                                    serde_json::to_string_pretty(&b).unwrap_or_default()
                                ),
                                Err(e) => println!("  body: {e}: known when it runs"),
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Stands for the number S/4 gives a notification.
const NUMBER: &str = "NOTIFICATION";
/// Stands for the key S/4 gives the closure's item.
const ITEM: &str = "0001";

fn explain_create(rules: &RuleSet, event: &AlertEvent, params: &ActionParams, identity: &str) {
    let notification =
        match notification_for(event, params, identity, rules, &event.template_scope()) {
            Ok(n) => n,
            Err(e) => {
                println!("  {e}: known when it runs, or the event would fail (ERROR, recorded)");
                return;
            }
        };
    let Some(requests) = s4_requests() else {
        return;
    };
    println!("  1. is it there already (its external reference)?");
    show(requests.find_by_reference(&notification.external_reference));
    let if_open = params.if_open.unwrap_or_default();
    if if_open != IfOpen::Create {
        println!("  2. (when not) is one open for the technical object? (if_open = {if_open:?})");
        show(requests.open_for_object(
            &notification.technical_object,
            &notification.object_kind,
            100,
        ));
        if if_open != IfOpen::Skip {
            println!("     (when one is open) the alert is added to it:");
            let text = format!("{}\n{}", notification.text, notification.long_text);
            let priority = notification
                .priority
                .as_deref()
                .filter(|_| if_open == IfOpen::Escalate);
            match requests.join(NUMBER, Some(&text), priority) {
                Ok(Some(request)) => show(Ok(request)),
                Ok(None) => {}
                Err(e) => show(Err(e)),
            }
        }
    }
    println!("  (when none:) create it");
    show(requests.create(&notification));
}

fn explain_close(rules: &RuleSet, event: &AlertEvent, params: &ActionParams) {
    match technical_object_for(event, params, rules, &event.template_scope()) {
        Ok((object, kind, _)) => {
            let Some(requests) = s4_requests() else {
                return;
            };
            println!("  1. the open notifications of the technical object:");
            show(requests.open_for_object(&object, kind.odata_value(), 100));
            println!(
                "  2. for each open one created by Monitron (MON… reference) at this position:"
            );
            show(requests.append_long_text(NUMBER, &crate::processor::recovery_note(event)));
            if params.close.unwrap_or_default() == crate::processor::rules::CloseMode::Complete {
                let catalog = event
                    .closure_code
                    .as_ref()
                    .map(|code| rules.closure_codes.for_closure(code))
                    .unwrap_or_default();
                if !catalog.is_empty() {
                    println!(
                        "  3. the closure's SAP catalog codes ([closure_codes]), unless there:"
                    );
                    show(requests.items_of(NUMBER));
                    let code = |c: &Option<CatalogCode>| {
                        c.as_ref().map(|c| (c.group.clone(), c.code.clone()))
                    };
                    let damage = code(&catalog.damage);
                    show(requests.create_item(
                        NUMBER,
                        CLOSURE_ITEM,
                        damage.as_ref().map(|(g, c)| (g.as_str(), c.as_str())),
                    ));
                    for (kind, wanted) in [
                        (ItemCode::Cause, &catalog.cause),
                        (ItemCode::Activity, &catalog.activity),
                    ] {
                        if let Some((group, code)) = code(wanted) {
                            let at = (group.as_str(), code.as_str());
                            show(requests.create_item_code(kind, NUMBER, ITEM, kind.text(), at));
                        }
                    }
                }
                println!("  then it is completed, at the closure's time:");
                show(requests.complete(NUMBER, event.timestamp()));
            }
        }
        Err(e) => println!("  {e}: the event would fail (ERROR, recorded)"),
    }
}
