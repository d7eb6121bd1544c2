//! Amazon Monitron export records (v1 and v2) and which of them are forwarded.
//!
//! Recognition and the default forwarding rule follow the event contract
//! (`docs/forwarded-event.md`, sections 1 and 2).

mod lenient;
mod record;

use std::borrow::Cow;

pub use lenient::{Obj, Text};
pub use record::{AssetState, Device, ModelChange, ModelOutput, Models, Payload, Record, Value};

/// Asset states that mean "look at this machine".
pub const ALERT_STATES: [&str; 3] = ["WARNING", "ALARM", "NEEDS_MAINTENANCE"];

/// Model outputs that mean an alert (models know no `NEEDS_MAINTENANCE`).
const MODEL_ALERT_OUTPUTS: [&str; 2] = ["WARNING", "ALARM"];

/// Whether a state is an alert state. Monitron writes states in upper case; other cases are
/// accepted too.
pub fn is_alert_state(state: &str) -> bool {
    ALERT_STATES.iter().any(|a| a.eq_ignore_ascii_case(state))
}

fn is_model_alert(output: &str) -> bool {
    MODEL_ALERT_OUTPUTS
        .iter()
        .any(|a| a.eq_ignore_ascii_case(output))
}

/// Which records are forwarded: asset state changes that touch an alert state (those into the
/// selected new states, when a selection is given), and optionally model transitions and
/// connectivity events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardingRules {
    /// v2 measurements whose persistent model classification changed to or from WARNING/ALARM.
    pub model_transitions: bool,
    /// v2 sensor and gateway connect/disconnect events.
    pub connectivity: bool,
    /// The new asset states forwarded (`FORWARD_STATES`, upper case); `None` forwards every
    /// asset state change that touches an alert state, recoveries included.
    pub states: Option<Vec<String>>,
}

impl ForwardingRules {
    /// Whether a change into `new` is selected.
    fn selects(&self, new: &str) -> bool {
        self.states
            .as_ref()
            .is_none_or(|states| states.iter().any(|s| s.eq_ignore_ascii_case(new)))
    }
}

/// The export schema a record follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    V1,
    V2,
}

impl Schema {
    pub fn as_str(self) -> &'static str {
        match self {
            Schema::V1 => "1",
            Schema::V2 => "2",
        }
    }
}

/// A sensor or a gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    Sensor,
    Gateway,
}

/// What changed, for a record that is forwarded.
#[derive(Debug, Clone, PartialEq)]
pub enum Change<'r> {
    /// The asset's state changed, to or from an alert state.
    AssetState {
        new: &'r str,
        previous: Option<&'r str>,
    },
    /// One or more models' persistent classification changed, to or from WARNING/ALARM.
    Model { changes: &'r [ModelChange<'r>] },
    /// A sensor or gateway connected or disconnected.
    Connectivity { device: DeviceKind, connected: bool },
}

impl Change<'_> {
    /// Whether the change raises an alert (as opposed to a recovery or a connectivity change).
    pub fn is_alert(&self) -> bool {
        match self {
            Change::AssetState { new, .. } => is_alert_state(new),
            Change::Model { changes } => changes
                .iter()
                .any(|c| c.new.as_str().is_some_and(is_model_alert)),
            Change::Connectivity { .. } => false,
        }
    }
}

/// A recognised Monitron record that is not forwarded, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotForwarded {
    /// A state transition or v1 measurement with no change that touches an alert state.
    NoAlertChange,
    /// A v2 measurement (model transitions are off, or no model output changed).
    Measurement,
    /// A connectivity event (connectivity forwarding is off).
    Connectivity,
    /// A v2 event type this version does not know.
    UnknownEventType(String),
    /// An asset state change into a state `FORWARD_STATES` does not select.
    StateNotSelected,
}

/// What to do with one JSON value of an object.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict<'r> {
    Forward {
        schema: Schema,
        event_id: Cow<'r, str>,
        change: Change<'r>,
    },
    Skip {
        schema: Schema,
        event_id: Cow<'r, str>,
        reason: NotForwarded,
    },
    /// Valid JSON but not Monitron (a Firehose error wrapper, a stray value).
    Unrecognised,
    /// Monitron, but unusable; the reason says what is missing.
    Malformed { schema: Schema, reason: String },
}

/// Reads the parts of `eventPayload` the rules need: `None` for v1 records and for v2 records
/// whose verdict does not depend on it (a measurement when model transitions are off, ...).
/// Parsing only what is needed is what keeps the forwarder fast on measurement-heavy objects.
pub fn payload_for<'a>(
    record: &Record<'a>,
    rules: &ForwardingRules,
) -> Result<Option<Payload<'a>>, String> {
    if schema_of(record) != Some(Schema::V2) {
        return Ok(None);
    }
    let needed = match record.event_type.as_json_string().unwrap_or_default() {
        "assetStateTransition" => true,
        "measurement" => rules.model_transitions,
        "sensorConnected" | "sensorDisconnected" | "gatewayConnected" | "gatewayDisconnected" => {
            rules.connectivity
        }
        _ => false,
    };
    if !needed {
        return Ok(None);
    }
    record
        .payload()
        .map_err(|e| format!("eventPayload cannot be read: {e}"))
}

/// Classifies one record, given its payload as [`payload_for`] read it.
pub fn classify<'r>(
    record: &'r Record<'r>,
    payload: Option<&'r Payload<'r>>,
    rules: &ForwardingRules,
) -> Verdict<'r> {
    let Some(schema) = schema_of(record) else {
        return Verdict::Unrecognised;
    };
    let event_id = match event_id_of(record) {
        Ok(id) => id,
        Err(reason) => return malformed(schema, reason),
    };
    let outcome = match schema {
        Schema::V1 => asset_state_change(record.asset_state.get()),
        Schema::V2 => {
            let event_type = record.event_type.as_json_string().unwrap_or_default();
            classify_v2(event_type, payload, rules)
        }
    };
    let outcome = outcome.and_then(|change| match change {
        Change::AssetState { new, .. } if !rules.selects(new) => {
            Err(Outcome::Skip(NotForwarded::StateNotSelected))
        }
        change => Ok(change),
    });
    match outcome {
        Ok(change) => Verdict::Forward {
            schema,
            event_id,
            change,
        },
        Err(Outcome::Skip(reason)) => Verdict::Skip {
            schema,
            event_id,
            reason,
        },
        Err(Outcome::Malformed(reason)) => Verdict::Malformed {
            schema,
            reason: format!("eventId {event_id}: {reason}"),
        },
    }
}

/// v2: a string `eventType` and an object `eventPayload`; v1: otherwise an object `assetState`.
pub fn schema_of(record: &Record<'_>) -> Option<Schema> {
    if matches!(record.event_type, Text::Str(_)) && record.has_payload_object() {
        Some(Schema::V2)
    } else if matches!(record.asset_state, Obj::Present(_)) {
        Some(Schema::V1)
    } else {
        None
    }
}

/// The eventId as text: a string's value, or a number exactly as written.
pub fn event_id_of<'r>(record: &Record<'r>) -> Result<Cow<'r, str>, &'static str> {
    let Some(raw) = record.event_id else {
        return Err("no eventId (missing or null)");
    };
    let text: &'r str = raw.get();
    let id = match text.as_bytes().first() {
        Some(b'"') => match serde_json::from_str::<&'r str>(text) {
            Ok(plain) => Cow::Borrowed(plain),
            // Escapes in the string: unescape into a new one.
            Err(_) => Cow::Owned(
                serde_json::from_str::<String>(text)
                    .map_err(|_| "eventId is not a valid string")?,
            ),
        },
        Some(b'-' | b'0'..=b'9') => Cow::Borrowed(text),
        _ => return Err("eventId is neither a string nor a number"),
    };
    if id.is_empty() {
        return Err("eventId is empty");
    }
    Ok(id)
}

fn malformed(schema: Schema, reason: &str) -> Verdict<'static> {
    Verdict::Malformed {
        schema,
        reason: reason.to_string(),
    }
}

enum Outcome {
    Skip(NotForwarded),
    Malformed(&'static str),
}

fn classify_v2<'r>(
    event_type: &str,
    payload: Option<&'r Payload<'r>>,
    rules: &ForwardingRules,
) -> Result<Change<'r>, Outcome> {
    let connectivity = |device, connected| {
        if rules.connectivity {
            Ok(Change::Connectivity { device, connected })
        } else {
            Err(Outcome::Skip(NotForwarded::Connectivity))
        }
    };
    match event_type {
        "assetStateTransition" => asset_state_change(payload.and_then(|p| p.asset_state.get())),
        "measurement" => {
            let changes = payload
                .and_then(|p| p.models.get())
                .map(|m| m.changed.as_slice())
                .unwrap_or_default();
            let touches_alert = changes.iter().any(|c| {
                c.new.as_str().is_some_and(is_model_alert)
                    || c.previous.as_str().is_some_and(is_model_alert)
            });
            if rules.model_transitions && touches_alert {
                Ok(Change::Model { changes })
            } else {
                Err(Outcome::Skip(NotForwarded::Measurement))
            }
        }
        "sensorConnected" => connectivity(DeviceKind::Sensor, true),
        "sensorDisconnected" => connectivity(DeviceKind::Sensor, false),
        "gatewayConnected" => connectivity(DeviceKind::Gateway, true),
        "gatewayDisconnected" => connectivity(DeviceKind::Gateway, false),
        other => Err(Outcome::Skip(NotForwarded::UnknownEventType(
            other.to_string(),
        ))),
    }
}

/// The contract's rule: forwarded iff the state changed and either side is an alert state.
fn asset_state_change<'r>(state: Option<&'r AssetState<'r>>) -> Result<Change<'r>, Outcome> {
    let Some(state) = state else {
        return Err(Outcome::Malformed("no assetState object"));
    };
    // States are strings; anything else in their place is as good as missing.
    let as_state = |t: &'r Text<'r>| t.as_json_string().filter(|s| !s.is_empty());
    let Some(new) = as_state(&state.new_state) else {
        return Err(Outcome::Malformed("no assetState.newState string"));
    };
    let previous = as_state(&state.previous_state);
    let changed = previous.is_none_or(|p| !p.eq_ignore_ascii_case(new));
    let touches_alert = is_alert_state(new) || previous.is_some_and(is_alert_state);
    if changed && touches_alert {
        Ok(Change::AssetState { new, previous })
    } else {
        Err(Outcome::Skip(NotForwarded::NoAlertChange))
    }
}

#[cfg(test)]
pub(crate) mod test_samples;
#[cfg(test)]
mod tests;
