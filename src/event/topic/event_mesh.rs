//! Our topics as SAP Event Mesh takes them: `<namespace>/` followed by our topic's levels, in
//! Event Mesh's topic alphabet.
//!
//! Event Mesh topics (SAP Event Mesh documentation, "Syntax for Naming Queues, Topics, and Topic
//! Patterns"; the exact character set is **unverified** here): the service key's `namespace`
//! (`orgname/clientname/uniqueid`) first, then levels separated by `/`, made of letters, digits,
//! `_`, `.` and `-`, no empty level, at most 150 characters in all. The mapping is deterministic
//! and keeps levels readable and distinct:
//! - a character outside that alphabet (a space, an umlaut, `#`, `*`, ...) becomes `_`; a level
//!   that changed so ends with `-` and 4 hex digits of its original's SHA-256, so `Pump 7` and
//!   `Pump_7` stay two topics (`Pump_7-....` and `Pump_7`);
//! - an empty level becomes `_`;
//! - while the topic is longer than 150 characters, its longest level is cut and ends with `-`
//!   and 6 hex digits of its original's SHA-256 (a readable start, a distinct end).
//!
//! `e2b scan --topics --event-mesh-namespace NS` shows the topics an object's events get, for
//! a plant to write its queue's subscriptions against.

use sha2::{Digest, Sha256};

/// Event Mesh's limit on a topic's length, in characters.
pub const MAX_EVENT_MESH_TOPIC: usize = 150;

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

fn digest(text: &str, hex_digits: usize) -> String {
    let hash = Sha256::digest(text.as_bytes());
    hash.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .chars()
        .take(hex_digits)
        .collect()
}

/// One level in Event Mesh's alphabet.
fn level(original: &str) -> String {
    if original.is_empty() {
        return "_".to_string();
    }
    if original.chars().all(allowed) {
        return original.to_string();
    }
    let mapped: String = original
        .chars()
        .map(|c| if allowed(c) { c } else { '_' })
        .collect();
    format!("{mapped}-{}", digest(original, 4))
}

/// `topic` (our levels, `/`-separated) under `namespace`, as Event Mesh takes it.
pub fn event_mesh_topic(namespace: &str, topic: &str) -> String {
    let namespace = namespace.trim_matches('/');
    let originals: Vec<&str> = topic.split('/').collect();
    let mut levels: Vec<String> = originals.iter().map(|l| level(l)).collect();
    let length = |levels: &[String]| {
        namespace.chars().count() + levels.iter().map(|l| l.chars().count() + 1).sum::<usize>()
    };
    // Each pass shortens the longest level that can still be shortened.
    while length(&levels) > MAX_EVENT_MESH_TOPIC {
        let Some((index, long)) = levels
            .iter()
            .enumerate()
            .filter(|(_, l)| l.chars().count() > 8)
            .max_by_key(|(_, l)| l.chars().count())
        else {
            break;
        };
        let over = length(&levels) - MAX_EVENT_MESH_TOPIC;
        let keep = long.chars().count().saturating_sub(over + 7).max(1);
        let start: String = long.chars().take(keep).collect();
        levels[index] = format!("{start}-{}", digest(originals[index], 6));
    }
    format!("{namespace}/{}", levels.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NS: &str = "acme/s4/monitron";

    #[test]
    fn plain_levels_are_kept_and_others_are_mapped_readably_and_distinctly() {
        assert_eq!(
            event_mesh_topic(
                NS,
                "monitron/asset/alert/ALARM/Plant_A/Site-1/Pump7/Motor.DE"
            ),
            "acme/s4/monitron/monitron/asset/alert/ALARM/Plant_A/Site-1/Pump7/Motor.DE"
        );
        let spaced = event_mesh_topic(NS, "monitron/asset/Pump 7");
        let underscored = event_mesh_topic(NS, "monitron/asset/Pump_7");
        assert!(
            spaced.starts_with("acme/s4/monitron/monitron/asset/Pump_7-"),
            "{spaced}"
        );
        assert_ne!(spaced, underscored);
        assert_eq!(
            spaced,
            event_mesh_topic(NS, "monitron/asset/Pump 7"),
            "deterministic"
        );
        assert!(event_mesh_topic(NS, "a//b").contains("/a/_/b"));
    }

    proptest! {
        #[test]
        fn every_topic_fits_event_mesh_and_distinct_levels_stay_distinct(
            levels in prop::collection::vec("\\PC{0,60}", 1..12),
            other in "\\PC{1,60}",
        ) {
            let levels: Vec<String> = levels.into_iter().map(|l| l.replace('/', "_")).collect();
            let topic = levels.join("/");
            let mapped = event_mesh_topic(NS, &topic);
            prop_assert!(mapped.chars().count() <= MAX_EVENT_MESH_TOPIC, "{}", mapped);
            let prefix = format!("{NS}/");
            prop_assert!(mapped.starts_with(&prefix), "{}", mapped);
            let ours = &mapped[NS.len() + 1..];
            prop_assert!(ours.split('/').all(|l| !l.is_empty() && l.chars().all(allowed)), "{}", mapped);
            // Another last level, not the same text: another topic.
            let other = other.replace('/', "_");
            if other != levels[levels.len() - 1] {
                let mut changed = levels.clone();
                let last = changed.len() - 1;
                changed[last] = other;
                prop_assert_ne!(event_mesh_topic(NS, &changed.join("/")), mapped);
            }
        }
    }
}
