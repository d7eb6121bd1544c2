//! A row's conditions: a string matches exactly, `*` anything, `abc*` / `*abc` a prefix /
//! suffix; a list matches any of its items; a missing condition matches anything.

use serde::Deserialize;

use crate::processor::delivery::AlertEvent;

/// A condition on one field.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Matcher {
    One(String),
    AnyOf(Vec<String>),
}

impl Matcher {
    pub fn matches(&self, value: Option<&str>) -> bool {
        match self {
            Matcher::One(pattern) => pattern_matches(pattern, value),
            Matcher::AnyOf(patterns) => patterns.iter().any(|p| pattern_matches(p, value)),
        }
    }
}

fn pattern_matches(pattern: &str, value: Option<&str>) -> bool {
    if pattern == "*" {
        return true;
    }
    let Some(value) = value else {
        return false;
    };
    match (pattern.strip_prefix('*'), pattern.strip_suffix('*')) {
        (Some(suffix), _) if !suffix.is_empty() && !suffix.ends_with('*') => {
            value.ends_with(suffix)
        }
        (_, Some(prefix)) if !prefix.is_empty() => value.starts_with(prefix),
        _ => value == pattern,
    }
}

/// The conditions of a row; every one given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    #[serde(rename = "type")]
    pub event_type: Option<Matcher>,
    pub category: Option<Matcher>,
    pub kind: Option<Matcher>,
    pub new_state: Option<Matcher>,
    pub previous_state: Option<Matcher>,
    pub project: Option<Matcher>,
    pub site: Option<Matcher>,
    pub asset: Option<Matcher>,
    pub position: Option<Matcher>,
    pub transition: Option<Matcher>,
    /// `closureCode.failureMode` of a user closure.
    pub failure_mode: Option<Matcher>,
}

impl Conditions {
    pub fn hold_for(&self, event: &AlertEvent) -> bool {
        let failure_mode = event
            .closure_code
            .as_ref()
            .and_then(|c| c.get("failureMode"))
            .and_then(|v| v.as_str());
        let checks: [(&Option<Matcher>, Option<&str>); 11] = [
            (&self.event_type, Some(event.event_type.as_str())),
            (&self.category, Some(event.category.as_str())),
            (&self.kind, Some(event.kind.as_str())),
            (&self.new_state, event.new_state.as_deref()),
            (&self.previous_state, event.previous_state.as_deref()),
            (&self.project, event.project.as_deref()),
            (&self.site, event.site.as_deref()),
            (&self.asset, event.asset.as_deref()),
            (&self.position, event.position.as_deref()),
            (&self.transition, event.transition.as_deref()),
            (&self.failure_mode, failure_mode),
        ];
        checks
            .iter()
            .all(|(matcher, value)| matcher.as_ref().is_none_or(|m| m.matches(*value)))
    }
}
