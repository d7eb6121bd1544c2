//! The rule file's schema (TOML): rows, their actions and parameters, mappings, defaults.
//! Unknown keys are errors, so a typo fails `e2b rules check`.

use std::fmt;

use serde::Deserialize;

use super::conditions::{Conditions, Matcher};
use crate::processor::delivery::AlertEvent;

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
    /// For `create_notification` and `close_notification`: one notification per alarm
    /// `episode` of a sensor position, or per `event`. Unset: per episode, unless `if_open`
    /// (a per-event policy) is given.
    pub per: Option<Per>,
}

impl ActionParams {
    /// What one notification of this rule stands for.
    pub fn per(&self) -> Per {
        self.per.unwrap_or(if self.if_open.is_some() {
            Per::Event
        } else {
            Per::Episode
        })
    }

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

/// What one notification stands for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    /// One per alarm episode of a sensor position (`docs/episodes.md`).
    #[default]
    Episode,
    /// One per alert event, as before episodes.
    Event,
}

/// How `close_notification` closes the loop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
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
    pub fn applies_to(&self, event: &AlertEvent) -> bool {
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

/// Why a rule file was refused: each problem with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct RuleError(pub Vec<String>);

/// An SAP catalog code: a code group and a code within it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogCode {
    /// At most 8 characters (`…CodeGroup` in `API_MAINTNOTIFICATION`).
    pub group: String,
    /// At most 4 characters.
    pub code: String,
}

/// A user's Monitron closure code → SAP catalog codes, written when a closure completes a
/// notification: `failure_mode` → the damage code of a notification item, `failure_cause` →
/// its cause code, `action_taken` → its activity code. A value the tables do not name is
/// written to the long text only.
///
/// ```toml
/// [closure_codes.failure_mode]
/// MISALIGNMENT = { group = "PM-DAMG", code = "0010" }
/// [closure_codes.failure_cause]
/// MAINTENANCE = { group = "PM-CAUS", code = "0020" }
/// [closure_codes.action_taken]
/// ADJUST = { group = "PM-ACTY", code = "0030" }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClosureCodes {
    #[serde(default)]
    pub failure_mode: std::collections::BTreeMap<String, CatalogCode>,
    #[serde(default)]
    pub failure_cause: std::collections::BTreeMap<String, CatalogCode>,
    #[serde(default)]
    pub action_taken: std::collections::BTreeMap<String, CatalogCode>,
}

impl ClosureCodes {
    /// The catalog codes for a closure code: damage, cause, activity.
    pub fn for_closure(&self, closure: &serde_json::Value) -> ClosureCatalog {
        let pick = |table: &std::collections::BTreeMap<String, CatalogCode>, field: &str| {
            closure
                .get(field)
                .and_then(|v| v.as_str())
                .and_then(|v| table.get(v))
                .cloned()
        };
        ClosureCatalog {
            damage: pick(&self.failure_mode, "failureMode"),
            cause: pick(&self.failure_cause, "failureCause"),
            activity: pick(&self.action_taken, "actionTaken"),
        }
    }
}

/// The catalog codes one closure maps to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClosureCatalog {
    pub damage: Option<CatalogCode>,
    pub cause: Option<CatalogCode>,
    pub activity: Option<CatalogCode>,
}

impl ClosureCatalog {
    pub fn is_empty(&self) -> bool {
        self.damage.is_none() && self.cause.is_none() && self.activity.is_none()
    }
}
