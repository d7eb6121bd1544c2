//! What an event contributes to its episode's notification: one long-text line, and when it is
//! an alert, the notification it would create.
//!
//! Rules:
//! - what an event brings is bounded before it is kept: names cut to 100 characters (the URL to
//!   160), states and closure fields to a few dozen, the event known by its
//!   [`super::model::event_key`], so a line stays below 500 characters and a record far below
//!   DynamoDB's 400 KB whatever the event holds; a mapping that gives a technical object longer
//!   than S/4's 40 characters is given up with that reason;
//! - every change is one line, stamped with its Monitron event time and ending with
//!   `Monitron event: <key>`, so that the set of lines does not depend on the order they were
//!   written in, and the ids a long text holds can be read back ([`ids_in`]);
//! - a user's closure line carries its closure code; a recovery by the measurements says so;
//! - the notification an alert creates has the rule's type, priority and short text as per
//!   event, and a long text that starts with the position (the same for every event of it)
//!   unless the rule gives a `long_text` template; its external reference is made from the
//!   position and the alert, so a create whose answer was lost is found again.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::processor::delivery::AlertEvent;
use crate::processor::notification::{external_reference, notification_for, technical_object_for};
use crate::processor::rules::{Rule, RuleSet};

use crate::http::sap::cut;

use super::model::{Change, MAX_CLOSURE_FIELD, PositionKey};
use super::state::{Place, Seen};

/// The marker that ends every line.
pub(super) const MARKER: &str = "Monitron event: ";

/// A site, asset or position name in a record or a long text is cut to this.
const MAX_NAME: usize = 100;

/// The position's URL in a long text is cut to this.
const MAX_URL: usize = 160;

/// A previous state in a line is cut to this.
const MAX_STATE: usize = 40;

/// `TechnicalObject`'s length in the service's EDMX.
const MAX_TECHNICAL_OBJECT: usize = 40;

/// A change as its position record keeps it, and where the position is.
pub struct SeenFor {
    pub seen: Seen,
    pub place: Place,
}

impl SeenFor {
    /// What the event contributes under its rule; `Err` when its notification cannot be made
    /// (no mapping row, a template that fails): given up as per event.
    pub fn event(
        event: &AlertEvent,
        change: Change,
        rule: &Rule,
        rules: &RuleSet,
        position: &PositionKey,
    ) -> Result<SeenFor, String> {
        let scope = event.template_scope();
        let (object, kind, _) = technical_object_for(event, &rule.params, rules, &scope)?;
        if object.chars().count() > MAX_TECHNICAL_OBJECT {
            return Err(format!(
                "the technical object the mapping gives has {} characters, more than S/4's {MAX_TECHNICAL_OBJECT}: check the rule's technical_object mapping",
                object.chars().count()
            ));
        }
        let place = Place {
            label: [&event.site, &event.asset, &event.position]
                .iter()
                .map(|p| cut(p.as_deref().unwrap_or("?"), MAX_NAME))
                .collect::<Vec<_>>()
                .join(" / "),
            technical_object: object,
            object_kind: kind.odata_value().to_string(),
            position: event.position.as_deref().map(|p| cut(p, MAX_NAME)),
            project: event.project.as_deref().map(|p| cut(p, MAX_NAME)),
            site: event.site.as_deref().map(|p| cut(p, MAX_NAME)),
        };
        let alert = change.is_alert();
        let draft = if alert {
            let identity = format!("episode\n{}\n{}", position.0, event.id);
            let mut draft = notification_for(event, &rule.params, &identity, rules, &scope)?;
            if rule.params.long_text.is_none() {
                draft.long_text = header(event);
            }
            draft.external_reference = external_reference(&event.source, &identity);
            Some(draft)
        } else {
            None
        };
        let priority = draft.as_ref().and_then(|d| d.priority.clone());
        let close = (!alert).then(|| rule.params.close.unwrap_or_default());
        Ok(SeenFor {
            seen: Seen {
                line: line(event, &change),
                change,
                priority,
                draft,
                close,
                trace: Some(event.trace.trace_id()),
            },
            place,
        })
    }
}

/// The long text's start: the position, the same for every event of it.
fn header(event: &AlertEvent) -> String {
    let mut lines = vec!["Amazon Monitron: alarm episode of a sensor position".to_string()];
    for (label, value) in [
        ("Project", &event.project),
        ("Site", &event.site),
        ("Asset", &event.asset),
        ("Position", &event.position),
        ("Position URL", &event.asset_position_url),
    ] {
        if let Some(v) = value {
            let max = if label == "Position URL" {
                MAX_URL
            } else {
                MAX_NAME
            };
            lines.push(format!("{label}: {}", cut(v, max)));
        }
    }
    lines.join("\n")
}

/// The change's line: time, states, closure, id.
pub fn line(event: &AlertEvent, change: &Change) -> String {
    let time = change.time.format("%Y-%m-%d %H:%M:%S UTC");
    let from = cut(event.previous_state.as_deref().unwrap_or("?"), MAX_STATE);
    let how = match (&event.closure_code, change.is_alert()) {
        (_, true) => String::new(),
        (Some(code), false) => {
            let field = |f: &str| {
                let value = code.get(f).and_then(Value::as_str).unwrap_or("-");
                cut(value, MAX_CLOSURE_FIELD)
            };
            format!(
                ", closed in Monitron. Closure code: failure mode {}, cause {}, action taken {}",
                field("failureMode"),
                field("failureCause"),
                field("actionTaken")
            )
        }
        (None, false) => ", recovered by the measurements".to_string(),
    };
    format!(
        "{time} {from} -> {}{how}; {MARKER}{}",
        change.state, change.id
    )
}

/// The event ids a long text holds lines of.
pub fn ids_in(long_text: &str) -> BTreeSet<String> {
    long_text
        .lines()
        .filter_map(|l| l.rsplit_once(MARKER).map(|(_, id)| id.trim().to_string()))
        .filter(|id| !id.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_of_any_size_has_a_short_line_whose_key_reads_back() {
        use super::super::model::{Change, event_key};
        let odd_ids = [
            "ev-1".to_string(),
            "x".repeat(100_000),
            "ev-2\n\u{0}\t".to_string(),
            "#ev-3".to_string(),
        ];
        for id in odd_ids {
            let huge = "Y".repeat(100_000);
            let event = AlertEvent {
                id: id.clone(),
                source: "s".into(),
                event_type: "com.amazon.monitron.asset.recovered".into(),
                category: "asset".into(),
                kind: "recovered".into(),
                time: Some("2024-03-01T10:00:00Z".into()),
                project: None,
                site: Some(huge.clone()),
                asset: Some(huge.clone()),
                position: Some(huge.clone()),
                new_state: Some(huge.clone()),
                previous_state: Some(huge.clone()),
                transition: Some("userInput".into()),
                closure_code: Some(serde_json::json!({"failureMode": huge.clone(),
                    "failureCause": huge.clone(), "actionTaken": huge})),
                sensor_id: None,
                asset_position_url: None,
                schema_version: Some("2".into()),
                data: serde_json::json!({}),
                trace: crate::trace::TraceParent::for_alert("s", &id),
                carried: crate::processor::delivery::Carried::Absent,
            };
            let change = Change::of(&event).expect("a change");
            assert_eq!(change.id, event_key(&id));
            let line = line(&event, &change);
            assert!(line.chars().count() < 500, "{} characters", line.len());
            assert_eq!(ids_in(&line).into_iter().collect::<Vec<_>>(), [change.id]);
            assert!(header(&event).chars().count() < 600);
        }
        assert_eq!(event_key("ev-1"), "ev-1", "a Monitron id is kept as it is");
    }

    #[test]
    fn the_ids_of_a_long_text_are_read_back_from_its_lines() {
        let text = "Amazon Monitron: alarm episode\nPosition: DE\n2024-03-01 10:00:00 UTC HEALTHY -> ALARM; Monitron event: a-1\nMonitron event: old-2\nfree text";
        let ids: Vec<String> = ids_in(text).into_iter().collect();
        assert_eq!(ids, ["a-1", "old-2"]);
    }
}
