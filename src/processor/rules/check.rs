//! The checks a rule file passes before it is used: names, the lengths S/4 accepts (from
//! `API_MAINTNOTIFICATION`'s EDMX), mappings for actions that need them, templates that read
//! only what an event has. Every problem is reported with its place.

use super::actions::{ActionSpec, EVENT_FIELDS};
use super::file::{ActionKind, ClosureCodes, Defaults, Mapping, Rule};
use super::template::Template;

/// The built-in actions that work on notifications.
fn needs_mapping_kind(action: &ActionKind) -> bool {
    matches!(
        action,
        ActionKind::CreateNotification | ActionKind::CloseNotification
    )
}

/// The rows, their parameters and the actions they name.
pub(super) fn rules(
    origin: &str,
    rules: &[Rule],
    has_mappings: bool,
    action_specs: &[ActionSpec],
    problems: &mut Vec<String>,
) {
    if rules.is_empty() {
        problems.push(format!(
            "{origin}: no [[rule]]: every event would be left undecided"
        ));
    }
    let mut names = std::collections::HashSet::new();
    for (i, rule) in rules.iter().enumerate() {
        let at = format!("{origin}: rule {} (`{}`)", i + 1, rule.name);
        if rule.name.trim().is_empty() {
            problems.push(format!("{origin}: rule {} has an empty name", i + 1));
        } else if !names.insert(rule.name.as_str()) {
            problems.push(format!("{at}: the name is used twice"));
        }
        check_len(
            problems,
            &at,
            "params.notification_type",
            rule.params.notification_type.as_deref(),
            2,
        );
        check_len(
            problems,
            &at,
            "params.priority",
            rule.params.priority.as_deref(),
            1,
        );
        let needs_mapping = matches!(
            rule.action,
            ActionKind::CreateNotification | ActionKind::CloseNotification
        ) && rule.params.technical_object.is_none();
        if needs_mapping && !has_mappings {
            problems.push(format!(
                    "{at}: acts on notifications but the file has no [[mapping]] to find the technical object"
                ));
        }
        if rule.params.per.is_some() && !needs_mapping_kind(&rule.action) {
            problems.push(format!(
                "{at}: params.per is for create_notification and close_notification"
            ));
        }
        if rule.params.per == Some(super::file::Per::Episode) && rule.params.if_open.is_some() {
            problems.push(format!(
                "{at}: params.if_open decides per event; with per = \"episode\" the episode decides (remove one of them)"
            ));
        }
        if let ActionKind::Run(name) = &rule.action
            && !action_specs.iter().any(|a| &a.name == name)
        {
            problems.push(format!(
                    "{at}: action `{name}` is neither built in (create_notification, close_notification, log, ignore) nor an [[action]] of the file"
                ));
        }
        for (field, value) in rule.params.templates() {
            match Template::parse(value) {
                Ok(t) => {
                    for path in t.paths() {
                        if path.root() != "event"
                            || !path.second().is_some_and(|f| EVENT_FIELDS.contains(&f))
                        {
                            problems.push(format!(
                                    "{at}: params.{field}: `{}`: a rule's templates read `event.id`, `event.source`, `event.type`, `event.time` or `event.data…`",
                                    path.text
                                ));
                        }
                    }
                }
                Err(e) => problems.push(format!("{at}: params.{field}: {e}")),
            }
        }
    }
}

/// The closure-code tables: catalog code groups and codes within the EDMX lengths
/// (`MaintNotifDamageCodeGroup` 8 / `MaintNotificationDamageCode` 4, and the same for causes
/// and activities).
pub(super) fn closure_codes(origin: &str, codes: &ClosureCodes, problems: &mut Vec<String>) {
    for (table, rows) in [
        ("failure_mode", &codes.failure_mode),
        ("failure_cause", &codes.failure_cause),
        ("action_taken", &codes.action_taken),
    ] {
        for (value, code) in rows {
            let at = format!("{origin}: closure_codes.{table}.{value}");
            if code.group.trim().is_empty() || code.code.trim().is_empty() {
                problems.push(format!("{at}: group and code must not be empty"));
            }
            check_len(problems, &at, "group", Some(&code.group), 8);
            check_len(problems, &at, "code", Some(&code.code), 4);
        }
    }
}

/// The mapping rows and the defaults.
pub(super) fn mappings(
    origin: &str,
    mappings: &[Mapping],
    defaults: &Defaults,
    problems: &mut Vec<String>,
) {
    for (i, mapping) in mappings.iter().enumerate() {
        let at = format!("{origin}: mapping {}", i + 1);
        if mapping.technical_object.trim().is_empty() {
            problems.push(format!("{at}: technical_object is empty"));
        }
        check_len(
            problems,
            &at,
            "technical_object",
            Some(&mapping.technical_object),
            40,
        );
        check_len(
            problems,
            &at,
            "planning_plant",
            mapping.planning_plant.as_deref(),
            4,
        );
        check_len(problems, &at, "priority", mapping.priority.as_deref(), 1);
        check_len(
            problems,
            &at,
            "notification_type",
            mapping.notification_type.as_deref(),
            2,
        );
    }
    check_len(
        problems,
        origin,
        "defaults.notification_type",
        Some(&defaults.notification_type),
        2,
    );
    check_len(
        problems,
        origin,
        "defaults.priority",
        defaults.priority.as_deref(),
        1,
    );
}

fn check_len(problems: &mut Vec<String>, at: &str, field: &str, value: Option<&str>, max: usize) {
    if let Some(value) = value
        && value.chars().count() > max
    {
        problems.push(format!(
            "{at}: {field} `{value}` is longer than the {max} character(s) S/4 accepts"
        ));
    }
}
