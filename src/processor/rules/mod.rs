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
//!
//! The files of this module: `file` (the schema), `conditions` (matching a row), `check` (the
//! checks at load), `actions` (named actions of ordered steps), `template` (`${{...}}`),
//! `source` (bundled, a path, or S3 with a TTL), `alarms` (the `[alarm_management]` table).

use serde::Deserialize;

use crate::processor::delivery::AlertEvent;

pub mod actions;
pub mod alarms;
mod check;
pub mod conditions;
pub mod file;
pub mod source;
pub mod template;

use actions::{Action, ActionSpec, DestinationSpec};
pub use file::{
    ActionKind, ActionParams, CatalogCode, CloseMode, ClosureCatalog, ClosureCodes, Defaults,
    HitPolicy, IfOpen, Mapping, NoMatch, ObjectKind, Per, Rule, RuleError,
};

/// The rules shipped with the processor (used when no other file is configured).
pub const BUNDLED: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/rules/default.toml"));

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
    /// Monitron closure codes → SAP catalog codes.
    #[serde(default)]
    pub closure_codes: ClosureCodes,
    #[serde(default, rename = "destination")]
    pub destinations: std::collections::BTreeMap<String, DestinationSpec>,
    #[serde(default, rename = "action")]
    action_specs: Vec<ActionSpec>,
    /// `[alarm_management]`: on-delay and storms (`alarms`).
    #[serde(default)]
    pub alarm_management: alarms::AlarmManagement,
    /// The `[[action]]`s, checked, steps in the order they run.
    #[serde(skip)]
    pub actions: Vec<Action>,
}

impl RuleSet {
    /// Parses and checks a rule file (`origin` names it in errors).
    pub fn parse(origin: &str, text: &str) -> Result<RuleSet, RuleError> {
        let mut set: RuleSet =
            toml::from_str(text).map_err(|e| RuleError(vec![format!("{origin}: {e}")]))?;
        let mut problems = Vec::new();
        check::rules(
            origin,
            &set.rules,
            !set.mappings.is_empty(),
            &set.action_specs,
            &mut problems,
        );
        set.actions = actions::compile(origin, &set.action_specs, &set.destinations, &mut problems);
        check::mappings(origin, &set.mappings, &set.defaults, &mut problems);
        check::closure_codes(origin, &set.closure_codes, &mut problems);
        problems.extend(
            set.alarm_management
                .problems()
                .into_iter()
                .map(|p| format!("{origin}: {p}")),
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

#[cfg(test)]
mod tests;
