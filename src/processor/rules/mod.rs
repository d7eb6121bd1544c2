//! The decision table (what to do with an event) and the mapping table (which S/4 technical
//! object a Monitron position is), as data: a TOML file, bundled or given by path.
//!
//! ```toml
//! hit_policy = "first"            # or "all"
//!
//! [[rule]]
//! name = "alarm"
//! when = { kind = "alert", new_state = ["ALARM"] }
//! action = "create_notification"
//! params = { priority = "1", notification_type = "M2" }
//!
//! [[mapping]]
//! site = "Site 1"
//! asset = "Pump 7"
//! technical_object = "10000042"
//! object_kind = "equipment"        # or "functional_location"
//! planning_plant = "1010"
//! ```
//!
//! Conditions: a string matches exactly, `*` matches anything, `abc*` / `*abc` match a prefix /
//! suffix; a list matches any of its items; a missing condition matches anything. Unknown keys
//! are errors, so a typo fails `e2b rules check`, not the 3 a.m. alarm.

use std::fmt;

use serde::Deserialize;

use crate::processor::delivery::AlertEvent;
use crate::processor::rules::actions::{Action, ActionSpec, DestinationSpec};

/// The rules shipped with the processor (used when no other file is configured).
pub const BUNDLED: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/rules/default.toml"));

/// How many rows of the decision table apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HitPolicy {
    /// The first matching row only.
    #[default]
    First,
    /// Every matching row, in order.
    All,
}

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

/// What a row does: a built-in action, or the name of an `[[action]]` of the file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub enum ActionKind {
    /// Create a maintenance notification (once per event).
    CreateNotification,
    /// Close the loop: complete (or annotate) the open notification an alert created.
    CloseNotification,
    /// Record the event in the log only.
    Log,
    /// Do nothing (said in the log).
    Ignore,
    /// Run the named `[[action]]`'s steps.
    Run(String),
}

impl ActionKind {
    /// The built-in action of this name, if it is one.
    pub fn builtin(name: &str) -> Option<ActionKind> {
        Some(match name {
            "create_notification" => ActionKind::CreateNotification,
            "close_notification" => ActionKind::CloseNotification,
            "log" => ActionKind::Log,
            "ignore" => ActionKind::Ignore,
            _ => return None,
        })
    }
}

impl From<String> for ActionKind {
    fn from(name: String) -> Self {
        ActionKind::builtin(&name).unwrap_or(ActionKind::Run(name))
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ActionKind::CreateNotification => "create_notification",
            ActionKind::CloseNotification => "close_notification",
            ActionKind::Log => "log",
            ActionKind::Ignore => "ignore",
            ActionKind::Run(name) => name,
        })
    }
}

/// Parameters of a notification action or step; each overrides the mapping row and the
/// file's defaults. `technical_object`, `text` and `long_text` are templates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionParams {
    pub notification_type: Option<String>,
    pub priority: Option<String>,
    /// Prefix of the notification's short text (default `Monitron`).
    pub text_prefix: Option<String>,
    /// When the technical object already has an open notification: `create` another (default),
    /// `skip` this alert, `append` it to the open one's long text, or `escalate` (raise the
    /// priority of the open notification this processor created, and append).
    pub if_open: Option<IfOpen>,
    /// For `close_notification`: `complete` (default) or only add a `note`.
    pub close: Option<CloseMode>,
    /// The technical object, instead of the mapping's (e.g. from an SBPA step's result).
    pub technical_object: Option<String>,
    pub object_kind: Option<ObjectKind>,
    /// The short text, instead of `<text_prefix> <state>: <asset> / <position>`.
    pub text: Option<String>,
    /// The long text, instead of the event's summary.
    pub long_text: Option<String>,
}

impl ActionParams {
    /// The template fields that are set, by name.
    pub fn templates(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("technical_object", self.technical_object.as_deref()),
            ("text", self.text.as_deref()),
            ("long_text", self.long_text.as_deref()),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)))
    }
}

/// What to do when the technical object already has an open notification.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IfOpen {
    #[default]
    Create,
    Skip,
    Append,
    Escalate,
}

/// How `close_notification` closes the loop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseMode {
    /// Add the recovery (and closure code) to the long text, then complete the notification.
    #[default]
    Complete,
    /// Only add the recovery to the long text.
    Note,
}

/// What an event no rule matches becomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoMatch {
    /// Answered and logged as SKIPPED.
    #[default]
    Skip,
    /// A failure: logged as ERROR and recorded for re-processing.
    Error,
}

/// One row of the decision table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    #[serde(default)]
    pub when: Conditions,
    pub action: ActionKind,
    #[serde(default)]
    pub params: ActionParams,
}

/// Equipment or functional location.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Equipment,
    FunctionalLocation,
}

impl ObjectKind {
    /// `TechObjIsEquipOrFuncnlLoc`.
    pub fn odata_value(self) -> &'static str {
        match self {
            ObjectKind::Equipment => "EAMS_EQUI",
            ObjectKind::FunctionalLocation => "EAMS_FL",
        }
    }
}

/// One row of the mapping table: Monitron names → S/4 objects.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    pub project: Option<Matcher>,
    pub site: Option<Matcher>,
    pub asset: Option<Matcher>,
    pub position: Option<Matcher>,
    pub technical_object: String,
    pub object_kind: ObjectKind,
    pub planning_plant: Option<String>,
    pub priority: Option<String>,
    pub notification_type: Option<String>,
}

impl Mapping {
    fn applies_to(&self, event: &AlertEvent) -> bool {
        [
            (&self.project, event.project.as_deref()),
            (&self.site, event.site.as_deref()),
            (&self.asset, event.asset.as_deref()),
            (&self.position, event.position.as_deref()),
        ]
        .iter()
        .all(|(matcher, value)| matcher.as_ref().is_none_or(|m| m.matches(*value)))
    }
}

/// Values used when neither the rule nor the mapping gives one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(default = "default_notification_type")]
    pub notification_type: String,
    #[serde(default)]
    pub priority: Option<String>,
}

fn default_notification_type() -> String {
    "M2".to_string()
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            notification_type: default_notification_type(),
            priority: None,
        }
    }
}

/// A rule file, checked.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    #[serde(default)]
    pub hit_policy: HitPolicy,
    #[serde(default)]
    pub no_match: NoMatch,
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default, rename = "rule")]
    pub rules: Vec<Rule>,
    #[serde(default, rename = "mapping")]
    pub mappings: Vec<Mapping>,
    #[serde(default, rename = "destination")]
    pub destinations: std::collections::BTreeMap<String, DestinationSpec>,
    #[serde(default, rename = "action")]
    action_specs: Vec<ActionSpec>,
    /// The `[[action]]`s, checked, steps in the order they run.
    #[serde(skip)]
    pub actions: Vec<Action>,
}

/// Why a rule file was refused: each problem with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct RuleError(pub Vec<String>);

impl RuleSet {
    /// Parses and checks a rule file (`origin` names it in errors).
    pub fn parse(origin: &str, text: &str) -> Result<RuleSet, RuleError> {
        let mut set: RuleSet =
            toml::from_str(text).map_err(|e| RuleError(vec![format!("{origin}: {e}")]))?;
        let mut problems = Vec::new();
        if set.rules.is_empty() {
            problems.push(format!(
                "{origin}: no [[rule]]: every event would be left undecided"
            ));
        }
        let mut names = std::collections::HashSet::new();
        for (i, rule) in set.rules.iter().enumerate() {
            let at = format!("{origin}: rule {} (`{}`)", i + 1, rule.name);
            if rule.name.trim().is_empty() {
                problems.push(format!("{origin}: rule {} has an empty name", i + 1));
            } else if !names.insert(rule.name.as_str()) {
                problems.push(format!("{at}: the name is used twice"));
            }
            check_len(
                &mut problems,
                &at,
                "params.notification_type",
                rule.params.notification_type.as_deref(),
                2,
            );
            check_len(
                &mut problems,
                &at,
                "params.priority",
                rule.params.priority.as_deref(),
                1,
            );
            let needs_mapping = matches!(
                rule.action,
                ActionKind::CreateNotification | ActionKind::CloseNotification
            ) && rule.params.technical_object.is_none();
            if needs_mapping && set.mappings.is_empty() {
                problems.push(format!(
                    "{at}: acts on notifications but the file has no [[mapping]] to find the technical object"
                ));
            }
            if let ActionKind::Run(name) = &rule.action
                && !set.action_specs.iter().any(|a| &a.name == name)
            {
                problems.push(format!(
                    "{at}: action `{name}` is neither built in (create_notification, close_notification, log, ignore) nor an [[action]] of the file"
                ));
            }
            for (field, value) in rule.params.templates() {
                match crate::processor::rules::template::Template::parse(value) {
                    Ok(t) => {
                        for path in t.paths() {
                            if path.root() != "event"
                                || !path.second().is_some_and(|f| {
                                    crate::processor::rules::actions::EVENT_FIELDS.contains(&f)
                                })
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
        set.actions = crate::processor::rules::actions::compile(
            origin,
            &set.action_specs,
            &set.destinations,
            &mut problems,
        );
        for (i, mapping) in set.mappings.iter().enumerate() {
            let at = format!("{origin}: mapping {}", i + 1);
            if mapping.technical_object.trim().is_empty() {
                problems.push(format!("{at}: technical_object is empty"));
            }
            check_len(
                &mut problems,
                &at,
                "technical_object",
                Some(&mapping.technical_object),
                40,
            );
            check_len(
                &mut problems,
                &at,
                "planning_plant",
                mapping.planning_plant.as_deref(),
                4,
            );
            check_len(
                &mut problems,
                &at,
                "priority",
                mapping.priority.as_deref(),
                1,
            );
            check_len(
                &mut problems,
                &at,
                "notification_type",
                mapping.notification_type.as_deref(),
                2,
            );
        }
        check_len(
            &mut problems,
            origin,
            "defaults.notification_type",
            Some(&set.defaults.notification_type),
            2,
        );
        check_len(
            &mut problems,
            origin,
            "defaults.priority",
            set.defaults.priority.as_deref(),
            1,
        );
        if problems.is_empty() {
            Ok(set)
        } else {
            Err(RuleError(problems))
        }
    }

    /// The bundled rules.
    pub fn bundled() -> Result<RuleSet, RuleError> {
        RuleSet::parse("bundled rules/default.toml", BUNDLED)
    }

    /// The rows that apply to an event, per the hit policy.
    pub fn decide(&self, event: &AlertEvent) -> Vec<&Rule> {
        let mut matching = self.rules.iter().filter(|r| r.when.hold_for(event));
        match self.hit_policy {
            HitPolicy::First => matching.next().into_iter().collect(),
            HitPolicy::All => matching.collect(),
        }
    }

    /// The `[[action]]` with this name or id.
    pub fn action(&self, key: &str) -> Option<&Action> {
        self.actions.iter().find(|a| a.answers_to(key))
    }

    /// The first mapping row for the event's names.
    pub fn mapping_for(&self, event: &AlertEvent) -> Option<&Mapping> {
        self.mappings.iter().find(|m| m.applies_to(event))
    }
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

#[cfg(test)]
mod tests;

pub mod actions;
mod source;
pub mod template;
pub use source::{RuleOrigin, RuleSource};
