//! An alert event + its rule and mapping → the maintenance notification to create.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::processor::delivery::AlertEvent;
use crate::processor::rules::template::Template;
use crate::processor::rules::{ActionParams, HitPolicy, Mapping, ObjectKind, Rule, RuleSet};
use crate::processor::s4::NewNotification;

/// `MaintNotifExtReferenceNumber` for an event: `MON` and 17 hex digits of SHA-256 over the
/// event's identity (`source` + `id`), 20 characters, the same on every redelivery.
pub fn external_reference(source: &str, id: &str) -> String {
    let digest = Sha256::digest(format!("{source}\n{id}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02X}")).collect();
    format!("MON{}", &hex[..17])
}

/// The identity a rule's notification is created under: the event, and with hit policy `all`
/// (where two rows may both create one) the rule's name.
pub fn identity_for(event: &AlertEvent, rule: &Rule, rules: &RuleSet) -> String {
    match rules.hit_policy {
        HitPolicy::First => event.id.clone(),
        HitPolicy::All => format!("{}\n{}", event.id, rule.name),
    }
}

/// The technical object a notification action works on: the params' template, else the
/// mapping row for the event's names.
pub fn technical_object_for(
    event: &AlertEvent,
    params: &ActionParams,
    rules: &RuleSet,
    scope: &Value,
) -> Result<(String, ObjectKind, Option<Mapping>), String> {
    let mapping = rules.mapping_for(event).cloned();
    let object = match &params.technical_object {
        Some(t) => render(t, scope)?,
        None => match &mapping {
            Some(m) => m.technical_object.clone(),
            None => {
                return Err(format!(
                    "no [[mapping]] row for project {:?}, site {:?}, asset {:?}, position {:?}",
                    event.project, event.site, event.asset, event.position
                ));
            }
        },
    };
    if object.trim().is_empty() {
        return Err("the technical object is empty".into());
    }
    let kind = params
        .object_kind
        .or(mapping.as_ref().map(|m| m.object_kind))
        .unwrap_or(ObjectKind::Equipment);
    Ok((object, kind, mapping))
}

fn render(template: &str, scope: &Value) -> Result<String, String> {
    Template::parse(template)
        .map_err(|e| e.to_string())?
        .render_text(scope)
        .map_err(|e| e.to_string())
}

/// The notification for an event under an action's params; `identity` makes its external
/// reference. Templates in the params read `scope`.
pub fn notification_for(
    event: &AlertEvent,
    params: &ActionParams,
    identity: &str,
    rules: &RuleSet,
    scope: &Value,
) -> Result<NewNotification, String> {
    let defaults = &rules.defaults;
    let (technical_object, kind, mapping) = technical_object_for(event, params, rules, scope)?;
    let state = event.new_state.as_deref().unwrap_or(&event.kind);
    let prefix = params.text_prefix.as_deref().unwrap_or("Monitron");
    let place: Vec<&str> = [event.asset.as_deref(), event.position.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    let text = match &params.text {
        Some(t) => render(t, scope)?,
        None => format!("{prefix} {state}: {}", place.join(" / "))
            .trim_end_matches([' ', ':'])
            .to_string(),
    };
    let long_text = match &params.long_text {
        Some(t) => render(t, scope)?,
        None => long_text(event),
    };
    Ok(NewNotification {
        text,
        long_text,
        notification_type: params
            .notification_type
            .clone()
            .or_else(|| mapping.as_ref().and_then(|m| m.notification_type.clone()))
            .unwrap_or_else(|| defaults.notification_type.clone()),
        technical_object,
        object_kind: kind.odata_value().to_string(),
        priority: params
            .priority
            .clone()
            .or_else(|| mapping.as_ref().and_then(|m| m.priority.clone()))
            .or_else(|| defaults.priority.clone()),
        planning_plant: mapping.as_ref().and_then(|m| m.planning_plant.clone()),
        malfunction_start: event.timestamp(),
        external_reference: external_reference(&event.source, identity),
    })
}

/// The note added to a notification when its asset recovers: the states, the time and a
/// user's closure code.
pub fn recovery_note(event: &AlertEvent) -> String {
    let mut lines = vec![format!(
        "Amazon Monitron: recovered ({} -> {})",
        event.previous_state.as_deref().unwrap_or("?"),
        event.new_state.as_deref().unwrap_or("?")
    )];
    if let Some(time) = &event.time {
        lines.push(format!("Time: {time}"));
    }
    if let Some(code) = &event.closure_code {
        let field = |f: &str| {
            code.get(f)
                .and_then(Value::as_str)
                .unwrap_or("-")
                .to_string()
        };
        lines.push(format!(
            "Closure code: failure mode {}, cause {}, action taken {}",
            field("failureMode"),
            field("failureCause"),
            field("actionTaken")
        ));
    }
    lines.push(format!("Monitron event: {}", event.id));
    lines.join("\n")
}

fn long_text(event: &AlertEvent) -> String {
    let mut lines = vec![format!(
        "Amazon Monitron: {} ({})",
        event.kind, event.event_type
    )];
    let mut add = |label: &str, value: Option<&str>| {
        if let Some(v) = value {
            lines.push(format!("{label}: {v}"));
        }
    };
    add("Project", event.project.as_deref());
    add("Site", event.site.as_deref());
    add("Asset", event.asset.as_deref());
    add("Position", event.position.as_deref());
    let states = match (&event.previous_state, &event.new_state) {
        (Some(p), Some(n)) => Some(format!("{p} -> {n}")),
        (None, Some(n)) => Some(n.clone()),
        _ => None,
    };
    add("State", states.as_deref());
    add("Transition", event.transition.as_deref());
    add("Time", event.time.as_deref());
    add("Sensor", event.sensor_id.as_deref());
    add("Monitron event", Some(&event.id));
    add("Position URL", event.asset_position_url.as_deref());
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_external_reference_is_stable_and_fits_twenty_characters() {
        let a = external_reference("monitron/111122223333/Plant%20A", "e-200");
        assert_eq!(a.len(), 20);
        assert!(a.starts_with("MON"));
        assert_eq!(
            a,
            external_reference("monitron/111122223333/Plant%20A", "e-200")
        );
        assert_ne!(
            a,
            external_reference("monitron/111122223333/Plant%20A", "e-201")
        );
        assert_ne!(
            a,
            external_reference("monitron/444455556666/Plant%20A", "e-200")
        );
    }
}
