//! An alert event + its rule and mapping → the maintenance notification to create.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::alert::AlertEvent;
use crate::rules::{HitPolicy, Mapping, Rule, RuleSet};
use crate::s4::NewNotification;

/// `MaintNotifExtReferenceNumber` for an event: `MON` and 17 hex digits of SHA-256 over the
/// event's identity (`source` + `id`), 20 characters, the same on every redelivery.
pub fn external_reference(source: &str, id: &str) -> String {
    let digest = Sha256::digest(format!("{source}\n{id}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02X}")).collect();
    format!("MON{}", &hex[..17])
}

/// The notification for an event under a rule and a mapping row. With hit policy `all`, two
/// rows may both create one: the rule's name is then part of the external reference.
pub fn notification_for(
    event: &AlertEvent,
    rule: &Rule,
    mapping: &Mapping,
    rules: &RuleSet,
) -> NewNotification {
    let defaults = &rules.defaults;
    let identity = match rules.hit_policy {
        HitPolicy::First => event.id.clone(),
        HitPolicy::All => format!("{}\n{}", event.id, rule.name),
    };
    let state = event.new_state.as_deref().unwrap_or(&event.kind);
    let prefix = rule.params.text_prefix.as_deref().unwrap_or("Monitron");
    let place: Vec<&str> = [event.asset.as_deref(), event.position.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    let text = format!("{prefix} {state}: {}", place.join(" / "));
    NewNotification {
        text: text.trim_end_matches([' ', ':']).to_string(),
        long_text: long_text(event),
        notification_type: rule
            .params
            .notification_type
            .clone()
            .or_else(|| mapping.notification_type.clone())
            .unwrap_or_else(|| defaults.notification_type.clone()),
        technical_object: mapping.technical_object.clone(),
        object_kind: mapping.object_kind.odata_value().to_string(),
        priority: rule
            .params
            .priority
            .clone()
            .or_else(|| mapping.priority.clone())
            .or_else(|| defaults.priority.clone()),
        planning_plant: mapping.planning_plant.clone(),
        malfunction_start: event
            .time
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc)),
        external_reference: external_reference(&event.source, &identity),
    }
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
