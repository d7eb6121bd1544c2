//! `e2b rules check FILE` and `e2b rules test FILE EVENT.json`.

use std::process::ExitCode;

use crate::processor::delivery::{self, AlertEvent, Delivery};
use crate::processor::destination::Destinations;
use crate::processor::rules::actions::StepKind;
use crate::processor::rules::{ActionKind, ActionParams, Rule, RuleSet};
use crate::processor::s4::SERVICE_PATH;
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
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        RulesCommand::Test { file, event } => {
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
            for rule in matching {
                println!("rule `{}`: {}", rule.name, rule.action);
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

fn explain_create(rules: &RuleSet, event: &AlertEvent, params: &ActionParams, identity: &str) {
    let notification =
        match notification_for(event, params, identity, rules, &event.template_scope()) {
            Ok(n) => n,
            Err(e) => {
                println!("  {e}: known when it runs, or the event would fail (ERROR, recorded)");
                return;
            }
        };
    let filter = format!(
        "MaintNotifExtReferenceNumber eq '{}'",
        notification.external_reference
    );
    println!("  GET {SERVICE_PATH}/MaintenanceNotification?$filter={filter}&$top=1&$format=json");
    println!("  (when none exists:)");
    println!("  POST {SERVICE_PATH}/MaintenanceNotification");
    println!("  Content-Type: application/json");
    println!("  x-csrf-token: <fetched once with x-csrf-token: Fetch>");
    match serde_json::to_string_pretty(&notification.body()) {
        Ok(text) => println!("{text}"),
        Err(e) => println!("  (body not printable: {e})"),
    }
}

fn explain_close(rules: &RuleSet, event: &AlertEvent, params: &ActionParams) {
    match technical_object_for(event, params, rules, &event.template_scope()) {
        Ok((object, kind, _)) => {
            println!(
                "  GET {SERVICE_PATH}/MaintenanceNotification?$filter=TechnicalObject eq '{object}' and TechObjIsEquipOrFuncnlLoc eq '{}' and (NotifProcessingPhase eq '1' or … '3')",
                kind.odata_value()
            );
            println!("  for each open one created by Monitron (MON… reference) at this position:");
            println!("  MERGE …/MaintenanceNotification('<number>') with the recovery note:");
            println!("{}", crate::processor::recovery_note(event));
            if params.close.unwrap_or_default() == crate::processor::rules::CloseMode::Complete {
                println!(
                    "  POST {SERVICE_PATH}/CompleteMaintNotification?MaintenanceNotification='<number>'"
                );
            }
        }
        Err(e) => println!("  {e}: the event would fail (ERROR, recorded)"),
    }
}
