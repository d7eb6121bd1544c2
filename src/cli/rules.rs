//! `e2b rules check FILE` and `e2b rules test FILE EVENT.json`.

use std::process::ExitCode;

use crate::alert::{self, Delivery};
use crate::processor::notification_for;
use crate::rules::{ActionKind, RuleSet};
use crate::s4::SERVICE_PATH;

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
            let event = match alert::parse(&body) {
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
                println!("rule `{}`: {:?}", rule.name, rule.action);
                if rule.action != ActionKind::CreateNotification {
                    continue;
                }
                let Some(mapping) = rules.mapping_for(&event) else {
                    println!(
                        "  no [[mapping]] row for this position: the event would fail (ERROR, logged)"
                    );
                    continue;
                };
                let notification = notification_for(&event, rule, mapping, &rules);
                let filter = format!(
                    "MaintNotifExtReferenceNumber eq '{}'",
                    notification.external_reference
                );
                println!(
                    "  GET {SERVICE_PATH}/MaintenanceNotification?$filter={filter}&$select=MaintenanceNotification,NotifProcessingPhase&$top=1&$format=json"
                );
                println!("  (when none exists:)");
                println!("  POST {SERVICE_PATH}/MaintenanceNotification");
                println!("  Content-Type: application/json");
                println!("  x-csrf-token: <fetched once with x-csrf-token: Fetch>");
                match serde_json::to_string_pretty(&notification.body()) {
                    Ok(text) => println!("{text}"),
                    Err(e) => println!("  (body not printable: {e})"),
                }
            }
            ExitCode::SUCCESS
        }
    }
}
