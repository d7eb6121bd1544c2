//! What the mesh delivers to the processor → one typed alert event.
//!
//! Two payloads are accepted, so that the processor can sit behind either forwarder: the
//! CloudEvents event of `docs/forwarded-event.md` (section 3), and the SAP sample's envelope
//! (section 4), whose Monitron record is classified here the way the forwarder would have.
//!
//! An envelope carries a raw Monitron record, and it must become the same event the forwarder
//! would have published (same recognition, classification, id and source): the shared
//! [`crate::monitron`] model and [`crate::event`] contract make it, as they do for the
//! forwarder. The processor never reaches into the forwarder.
//!
//! The event's trace (`crate::trace`): the CloudEvent's `traceparent` attribute, or the SAP
//! envelope's top-level `traceparent`, when it is valid. When it is absent, the push's HTTP
//! `traceparent` header may give it ([`AlertEvent::continue_from_header`]); when neither gives a
//! valid one, the alert's own trace (derived from its `source` and `id`, as the forwarder makes
//! it) is started, and a refused value is said once in the log ([`Carried::Refused`]).

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::aws::s3::S3Location;
use crate::event::{EventBuilder, Origin, PayloadFormat, source_of};
use crate::monitron::{ForwardingRules, Value as Record, Verdict, classify, payload_for};
use crate::trace::TraceParent;

/// How the event's trace came with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Carried {
    /// A valid `traceparent` in the event.
    InEvent,
    /// A valid `traceparent` header on the push (the event had none).
    InHeader,
    /// None: the alert's own trace was started.
    Absent,
    /// A value that is not W3C Trace Context: the alert's own trace was started instead.
    Refused(String),
}

/// One delivered event, whichever payload it came in.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEvent {
    /// The Monitron eventId (CloudEvents `id`).
    pub id: String,
    /// CloudEvents `source`: with `id`, the event's identity.
    pub source: String,
    /// CloudEvents `type`, e.g. `com.amazon.monitron.asset.alert`.
    pub event_type: String,
    /// `asset`, `model`, `sensor` or `gateway`.
    pub category: String,
    /// `alert`, `recovered`, `connected` or `disconnected`.
    pub kind: String,
    pub time: Option<String>,
    pub project: Option<String>,
    pub site: Option<String>,
    pub asset: Option<String>,
    pub position: Option<String>,
    pub new_state: Option<String>,
    pub previous_state: Option<String>,
    /// `measurement` or `userInput` (v2).
    pub transition: Option<String>,
    pub closure_code: Option<Value>,
    pub sensor_id: Option<String>,
    pub asset_position_url: Option<String>,
    /// `1` or `2`.
    pub schema_version: Option<String>,
    /// The whole `data` object, for templates and logs.
    pub data: Value,
    /// The trace this event continues (see the module doc).
    pub trace: TraceParent,
    /// How [`AlertEvent::trace`] came.
    pub carried: Carried,
}

impl AlertEvent {
    /// Takes the push's `traceparent` header when the event carried none; a refused header is
    /// noted as the event's refused trace.
    pub fn continue_from_header(&mut self, header: Option<&str>) {
        let (Carried::Absent, Some(header)) = (&self.carried, header) else {
            return;
        };
        match TraceParent::parse(header) {
            Ok(trace) => {
                self.trace = trace;
                self.carried = Carried::InHeader;
            }
            Err(why) => self.carried = Carried::Refused(format!("the `traceparent` header: {why}")),
        }
    }

    /// Continues a recorded trace (a failure record's) when it is valid.
    pub fn continue_recorded(&mut self, traceparent: Option<&str>) {
        if let Some(trace) = traceparent.and_then(|t| TraceParent::parse(t).ok()) {
            self.trace = trace;
            self.carried = Carried::InEvent;
        }
    }

    /// What rule-file templates read: `event` (the CloudEvent's `id`, `source`, `type`, `time`
    /// and `data`) and `steps` (filled in as steps finish).
    pub fn template_scope(&self) -> Value {
        serde_json::json!({
            "event": {"id": self.id, "source": self.source, "type": self.event_type,
                "time": self.time, "data": self.data},
            "steps": {}
        })
    }

    /// `time` as a UTC timestamp, when it is one.
    pub fn timestamp(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.time
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
    }
}

/// What a delivery turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    Event(Box<AlertEvent>),
    /// A SAP envelope whose record is not an alert change: nothing to do.
    NotAnAlert {
        id: String,
        reason: String,
    },
}

/// Why a body is not a delivery this processor understands (answered 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DeliveryError(pub String);

#[derive(Deserialize)]
struct CloudEvent {
    specversion: String,
    id: String,
    source: String,
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    time: Option<String>,
    #[serde(default)]
    data: Value,
    /// Any JSON value: one that is not a string is refused as a trace, not as the event.
    #[serde(default)]
    traceparent: Option<Value>,
}

#[derive(Deserialize)]
struct SapEnvelope<'a> {
    #[serde(borrow)]
    data: SapData<'a>,
    #[serde(default)]
    traceparent: Option<Value>,
}

#[derive(Deserialize)]
struct SapData<'a> {
    #[serde(rename = "BUCKETId", default)]
    bucket: Option<String>,
    #[serde(rename = "eventData", borrow)]
    event_data: &'a RawValue,
}

/// A JSON error without the values it quotes from the body: the reply and the log say where the
/// body is wrong, never what it holds (a body may carry anything).
fn described(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let message = text.split(" at line ").next().unwrap_or("");
    // Only these name nothing but the fields this processor knows.
    let what = if message.starts_with("missing field") || message.starts_with("duplicate field") {
        message.to_string()
    } else {
        match e.classify() {
            serde_json::error::Category::Syntax => "a syntax error".to_string(),
            serde_json::error::Category::Data => "a value of the wrong type".to_string(),
            serde_json::error::Category::Eof => "it ends too early".to_string(),
            serde_json::error::Category::Io => "it could not be read".to_string(),
        }
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

/// Reads a delivery: a CloudEvent (`specversion` present) or the SAP sample's envelope.
pub fn parse(body: &[u8]) -> Result<Delivery, DeliveryError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        DeliveryError(format!(
            "the body is not UTF-8 (byte {} of {} is not; an event is UTF-8 JSON)",
            e.valid_up_to(),
            body.len()
        ))
    })?;
    let value: Value = serde_json::from_str(text)
        .map_err(|e| DeliveryError(format!("the body is not JSON: {}", described(&e))))?;
    if value.get("specversion").is_some() {
        let event: CloudEvent = serde_json::from_value(value).map_err(|e| {
            DeliveryError(format!(
                "not a CloudEvent this processor understands: {}",
                described(&e)
            ))
        })?;
        return from_cloudevent(event).map(|e| Delivery::Event(Box::new(e)));
    }
    if value.pointer("/data/eventData").is_some() {
        let envelope: SapEnvelope<'_> = serde_json::from_str(text)
            .map_err(|e| DeliveryError(format!("not a SAP sample envelope: {}", described(&e))))?;
        return match from_sap_envelope(&envelope.data)? {
            // Its own `traceparent`, not the one the rebuilt CloudEvent was given.
            Delivery::Event(mut event) => {
                (event.trace, event.carried) =
                    trace_in(envelope.traceparent.as_ref(), &event.source, &event.id);
                Ok(Delivery::Event(event))
            }
            other => Ok(other),
        };
    }
    Err(DeliveryError(
        "neither a CloudEvent (`specversion`) nor the SAP sample envelope (`data.eventData`)"
            .into(),
    ))
}

fn from_cloudevent(event: CloudEvent) -> Result<AlertEvent, DeliveryError> {
    if event.specversion != "1.0" {
        return Err(DeliveryError(
            "the CloudEvents specversion is not 1.0".into(),
        ));
    }
    let Some(suffix) = event.event_type.strip_prefix("com.amazon.monitron.") else {
        return Err(DeliveryError(
            "the type is not a Monitron event type (com.amazon.monitron.*)".into(),
        ));
    };
    let (category, kind) = suffix.split_once('.').unwrap_or((suffix, ""));
    if event.id.is_empty() {
        return Err(DeliveryError("the event has an empty id".into()));
    }
    let data = event.data;
    let (trace, carried) = trace_in(event.traceparent.as_ref(), &event.source, &event.id);
    let text = |key: &str| data.get(key).and_then(Value::as_str).map(str::to_string);
    Ok(AlertEvent {
        id: event.id,
        source: event.source,
        event_type: event.event_type.clone(),
        category: category.to_string(),
        kind: kind.to_string(),
        time: event.time,
        project: text("project"),
        site: text("site"),
        asset: text("asset"),
        position: text("position"),
        new_state: data
            .pointer("/state/new")
            .and_then(Value::as_str)
            .map(str::to_string),
        previous_state: data
            .pointer("/state/previous")
            .and_then(Value::as_str)
            .map(str::to_string),
        transition: text("transition"),
        closure_code: data.get("closureCode").filter(|v| !v.is_null()).cloned(),
        sensor_id: text("sensorId"),
        asset_position_url: text("assetPositionUrl"),
        schema_version: text("schemaVersion"),
        data,
        trace,
        carried,
    })
}

/// The trace an event carries, or the alert's own when it carries none or a refused one.
fn trace_in(value: Option<&Value>, source: &str, id: &str) -> (TraceParent, Carried) {
    let own = || TraceParent::for_alert(source, id);
    match value {
        None | Some(Value::Null) => (own(), Carried::Absent),
        Some(Value::String(text)) => match TraceParent::parse(text) {
            Ok(trace) => (trace, Carried::InEvent),
            Err(why) => (
                own(),
                Carried::Refused(format!("the event's `traceparent`: {why}")),
            ),
        },
        Some(_) => (
            own(),
            Carried::Refused("the event's `traceparent` is not a string".into()),
        ),
    }
}

/// The SAP envelope carries only the record: classify it as the forwarder does, build the
/// CloudEvent the forwarder would have sent, and read that.
fn from_sap_envelope(data: &SapData<'_>) -> Result<Delivery, DeliveryError> {
    let raw = data.event_data.get();
    let record: Record<'_> = serde_json::from_str(raw)
        .map_err(|e| DeliveryError(format!("eventData cannot be read: {}", described(&e))))?;
    let Record::Object(record) = &record else {
        return Err(DeliveryError("eventData is not a Monitron record".into()));
    };
    let rules = ForwardingRules {
        model_transitions: true,
        connectivity: true,
        states: None,
    };
    let payload = payload_for(record, &rules).map_err(DeliveryError)?;
    match classify(record, payload.as_ref(), &rules) {
        Verdict::Forward {
            schema,
            event_id,
            change,
        } => {
            let origin = Origin::S3(S3Location::new(
                data.bucket.clone().unwrap_or_default(),
                String::new(),
            ));
            let builder = EventBuilder {
                format: PayloadFormat::CloudEvents,
                ..EventBuilder::default()
            };
            let forwarded = crate::event::Forwarded {
                record,
                payload: payload.as_ref(),
                raw,
                schema,
                event_id: &event_id,
                change: &change,
            };
            let event = builder
                .build(forwarded, source_of(record, schema), &origin)
                .map_err(|e| {
                    DeliveryError(format!("eventData cannot be read: {}", described(&e)))
                })?;
            match parse(event.payload.as_bytes())? {
                Delivery::Event(e) => Ok(Delivery::Event(e)),
                other => Ok(other),
            }
        }
        Verdict::Skip {
            event_id, reason, ..
        } => Ok(Delivery::NotAnAlert {
            id: event_id.into_owned(),
            reason: format!("{reason:?}"),
        }),
        Verdict::Unrecognised => Err(DeliveryError("eventData is not a Monitron record".into())),
        Verdict::Malformed { reason, .. } => Err(DeliveryError(format!("eventData: {reason}"))),
    }
}

#[cfg(test)]
mod tests;
