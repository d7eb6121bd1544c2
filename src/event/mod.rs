//! Forwarded events: a Monitron record that is forwarded → its payload and its mesh topic.
//!
//! Two payload formats (the event contract, sections 3 and 4): a CloudEvents 1.0 event in
//! structured JSON mode (default), or the SAP sample's envelope for customers who keep the SAP
//! `action-management` processor.
//!
//! Every event carries the alert's trace (`crate::trace`, W3C `traceparent`): the CloudEvents
//! distributed tracing extension's `traceparent` attribute, and in the SAP envelope a top-level
//! `traceparent` beside `data`, which the SAP sample's processor does not read.

mod names;
mod time;
pub mod topic;

use serde::Serialize;
use serde_json::value::RawValue;

use crate::aws::s3::S3Location;
use crate::monitron::{Change, DeviceKind, ModelChange, Payload, Record, Schema};
use crate::trace::TraceParent;

pub use names::Names;
pub use time::{to_rfc3339_utc, to_utc};
pub use topic::{DEFAULT_TOPIC_TEMPLATE, TemplateError, TopicTemplate};

/// Which payload is published.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PayloadFormat {
    /// CloudEvents 1.0, structured JSON mode (`cloudevents`).
    #[default]
    CloudEvents,
    /// The SAP sample's envelope `{"data":{SourceSystem, DeviceLocation, ...}}` (`sap-e2b`).
    SapE2b,
}

impl PayloadFormat {
    /// Parses the configuration name: `cloudevents` or `sap-e2b`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "cloudevents" => Some(PayloadFormat::CloudEvents),
            "sap-e2b" => Some(PayloadFormat::SapE2b),
            _ => None,
        }
    }
}

/// Where a record came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// An S3 object (the key decoded).
    S3(S3Location),
    /// A local file (`-` for standard input).
    Local { path: String },
    /// A record of a Kinesis data stream (Monitron's live export).
    Kinesis {
        /// The stream's name (from its ARN).
        stream: String,
        shard: String,
        sequence_number: String,
    },
}

impl Origin {
    /// How the object is named in reports: `s3://bucket/key`, the path, or
    /// `kinesis://stream/shard/sequence-number`.
    pub fn label(&self) -> String {
        match self {
            Origin::S3(at) => at.to_string(),
            Origin::Kinesis {
                stream,
                shard,
                sequence_number,
            } => format!("kinesis://{stream}/{shard}/{sequence_number}"),
            Origin::Local { path } if path == "-" => "<stdin>".to_string(),
            Origin::Local { path } => path.clone(),
        }
    }
}

/// One event ready to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardedEvent {
    /// The Monitron eventId as a string: the CloudEvents `id` and the mesh message id.
    pub id: String,
    /// The CloudEvents `source`: with `id`, what makes the event unique.
    pub source: String,
    /// The CloudEvents `type`.
    pub event_type: &'static str,
    /// The mesh topic.
    pub topic: String,
    /// The JSON payload.
    pub payload: String,
    /// The alert's trace: in the payload, and the publish request's `traceparent` header.
    pub trace: TraceParent,
    /// Something worth saying about the event that did not stop it (e.g. an unreadable time).
    pub warning: Option<String>,
    /// Where its record is in the object (set by the scanner).
    pub record: RecordAt,
}

/// Where a record is in its object: what the forwarder's progress record and failure records
/// name it by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordAt {
    /// Records before it in the object, broken ones included (0 for the first). The same for
    /// every read of one object version, whatever the forwarder's settings.
    pub ordinal: u64,
    /// Its byte offset in the (decompressed) object.
    pub offset: u64,
}

/// Builds events in one format with one topic template.
#[derive(Debug, Clone, Default)]
pub struct EventBuilder {
    pub format: PayloadFormat,
    pub topics: TopicTemplate,
}

/// The CloudEvents `source` of a record: `monitron/<accountId or unknown>/<project>`, the project
/// name percent-encoded so that the source is a valid URI reference.
pub fn source_of(record: &Record<'_>, schema: Schema) -> String {
    let (account, project) = match schema {
        Schema::V1 => (None, record.project_display_name.as_str()),
        Schema::V2 => (record.account_id.as_str(), record.project_name.as_str()),
    };
    format!(
        "monitron/{}/{}",
        uri_segment(account.unwrap_or("unknown")),
        uri_segment(project.unwrap_or("unknown"))
    )
}

/// The CloudEvents `type` for a change.
pub fn type_of(change: &Change<'_>) -> &'static str {
    match change {
        Change::AssetState { .. } if change.is_alert() => "com.amazon.monitron.asset.alert",
        Change::AssetState { .. } => "com.amazon.monitron.asset.recovered",
        Change::Model { .. } if change.is_alert() => "com.amazon.monitron.model.alert",
        Change::Model { .. } => "com.amazon.monitron.model.recovered",
        Change::Connectivity {
            device: DeviceKind::Sensor,
            connected: true,
        } => "com.amazon.monitron.sensor.connected",
        Change::Connectivity {
            device: DeviceKind::Sensor,
            connected: false,
        } => "com.amazon.monitron.sensor.disconnected",
        Change::Connectivity {
            device: DeviceKind::Gateway,
            connected: true,
        } => "com.amazon.monitron.gateway.connected",
        Change::Connectivity {
            device: DeviceKind::Gateway,
            connected: false,
        } => "com.amazon.monitron.gateway.disconnected",
    }
}

/// A forwarded record, as [`EventBuilder::build`] needs it.
#[derive(Debug, Clone, Copy)]
pub struct Forwarded<'r> {
    pub record: &'r Record<'r>,
    /// The parsed `eventPayload` (v2).
    pub payload: Option<&'r Payload<'r>>,
    /// The record's exact JSON text, forwarded unchanged.
    pub raw: &'r str,
    pub schema: Schema,
    pub event_id: &'r str,
    pub change: &'r Change<'r>,
}

impl EventBuilder {
    /// Builds the payload and topic of a forwarded record. `source` is [`source_of`] the record.
    pub fn build(
        &self,
        forwarded: Forwarded<'_>,
        source: String,
        origin: &Origin,
    ) -> Result<ForwardedEvent, serde_json::Error> {
        let Forwarded {
            record,
            payload,
            raw,
            schema,
            event_id,
            change,
        } = forwarded;
        let names = Names::of(record, payload, schema);
        // The record unchanged as a JSON value; whitespace between tokens is dropped so that a
        // pretty-printed record still makes a one-line payload.
        let compact = compact_json(raw);
        let raw_record: &RawValue = serde_json::from_str(&compact)?;
        // A user's closure code is an object in the record: compact too, one event per line.
        let closure = names.closure_code.map(|c| compact_json(c.get()));
        let closure_code: Option<&RawValue> =
            closure.as_deref().map(serde_json::from_str).transpose()?;
        let event_type = type_of(change);
        let trace = TraceParent::for_alert(&source, event_id);
        let traceparent = trace.to_string();
        let timestamp = record.timestamp.as_str();
        let time = timestamp.and_then(to_rfc3339_utc);
        let warning = match (timestamp, &time) {
            (_, Some(_)) => None,
            (Some(ts), None) => Some(format!(
                "eventId {event_id}: timestamp `{ts}` is not a time; the event has no `time`"
            )),
            (None, None) => Some(format!(
                "eventId {event_id}: no timestamp; the event has no `time`"
            )),
        };
        let payload = match self.format {
            PayloadFormat::CloudEvents => {
                let event = CloudEvent {
                    specversion: "1.0",
                    id: event_id,
                    source: &source,
                    event_type,
                    subject: names.subject(),
                    time,
                    datacontenttype: "application/json",
                    traceparent: &traceparent,
                    data: Data {
                        closure_code,
                        ..Data::new(&names, schema, change, origin, raw_record)
                    },
                };
                serde_json::to_string(&event)?
            }
            PayloadFormat::SapE2b => {
                let bucket = match origin {
                    Origin::S3(at) => at.bucket.as_str(),
                    Origin::Local { path } => path.as_str(),
                    Origin::Kinesis { stream, .. } => stream.as_str(),
                };
                serde_json::to_string(&SapEnvelope {
                    data: SapData {
                        source_system: names.project.unwrap_or_default(),
                        device_location: names.site.unwrap_or_default(),
                        device_type: names.asset.unwrap_or_default(),
                        bucket_id: bucket,
                        event_data: raw_record,
                    },
                    traceparent: &traceparent,
                })?
            }
        };
        let topic = self
            .topics
            .render(|placeholder| names.placeholder(placeholder, schema, change));
        Ok(ForwardedEvent {
            id: event_id.to_string(),
            source,
            event_type,
            topic,
            payload,
            trace,
            warning,
            record: RecordAt::default(),
        })
    }
}

/// The trace a published payload carries (its top-level `traceparent`, in either format), if
/// it is valid: what a resend of a recorded payload continues.
pub fn trace_of(payload: &str) -> Option<TraceParent> {
    #[derive(serde::Deserialize)]
    struct Carried {
        traceparent: Option<String>,
    }
    let carried: Carried = serde_json::from_str(payload).ok()?;
    TraceParent::parse(carried.traceparent.as_deref()?).ok()
}

/// Valid JSON text on one line: when it spans lines, the whitespace between tokens is dropped
/// (strings are left as they are; JSON strings cannot hold a raw line break).
pub fn compact_json(json: &str) -> std::borrow::Cow<'_, str> {
    let is_space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r');
    if !json.bytes().any(|b| matches!(b, b'\t' | b'\n' | b'\r')) {
        return std::borrow::Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else if is_space(c) {
            continue;
        }
        out.push(c);
    }
    std::borrow::Cow::Owned(out)
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn uri_segment(text: &str) -> String {
    const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, UNRESERVED).to_string()
}

#[derive(Serialize)]
struct CloudEvent<'a> {
    specversion: &'static str,
    id: &'a str,
    source: &'a str,
    #[serde(rename = "type")]
    event_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<String>,
    datacontenttype: &'static str,
    /// The CloudEvents distributed tracing extension.
    traceparent: &'a str,
    data: Data<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Data<'a> {
    schema_version: &'static str,
    project: Option<&'a str>,
    site: Option<&'a str>,
    asset: Option<&'a str>,
    position: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<State<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    models: Option<ModelStates<'a>>,
    transition: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    closure_code: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sensor_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gateway_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gateway_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    asset_position_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    asset_position_url: Option<&'a str>,
    object: ObjectRef<'a>,
    record: &'a RawValue,
}

impl<'a> Data<'a> {
    fn new(
        names: &Names<'a>,
        schema: Schema,
        change: &'a Change<'a>,
        origin: &'a Origin,
        record: &'a RawValue,
    ) -> Self {
        let (state, models) = match change {
            Change::AssetState { new, previous } => (
                Some(State {
                    new,
                    previous: *previous,
                }),
                None,
            ),
            Change::Model { changes } => (None, Some(ModelStates(changes))),
            Change::Connectivity { .. } => (None, None),
        };
        Data {
            schema_version: schema.as_str(),
            project: names.project,
            site: names.site,
            asset: names.asset,
            position: names.position,
            state,
            models,
            transition: names.transition,
            closure_code: names.closure_code,
            sensor_id: names.sensor_id,
            gateway_id: names.gateway_id,
            gateway_name: names.gateway_name,
            asset_position_id: names.asset_position_id,
            asset_position_url: names.asset_position_url,
            object: match origin {
                Origin::S3(at) => ObjectRef::S3 {
                    bucket: &at.bucket,
                    key: &at.key,
                },
                Origin::Local { path } => ObjectRef::Local { path },
                Origin::Kinesis {
                    stream,
                    shard,
                    sequence_number,
                } => ObjectRef::Kinesis {
                    stream,
                    shard,
                    sequence_number,
                },
            },
            record,
        }
    }
}

#[derive(Serialize)]
struct State<'a> {
    new: &'a str,
    previous: Option<&'a str>,
}

/// `{"vibrationISO": {"new": "WARNING", "previous": "HEALTHY"}, ...}`
struct ModelStates<'a>(&'a [ModelChange<'a>]);

impl Serialize for ModelStates<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for change in self.0 {
            map.serialize_entry(
                change.model.as_ref(),
                &State {
                    new: change.new.as_str().unwrap_or_default(),
                    previous: change.previous.as_str(),
                },
            )?;
        }
        map.end()
    }
}

#[derive(Serialize)]
#[serde(untagged)]
enum ObjectRef<'a> {
    S3 {
        bucket: &'a str,
        key: &'a str,
    },
    Local {
        path: &'a str,
    },
    #[serde(rename_all = "camelCase")]
    Kinesis {
        stream: &'a str,
        shard: &'a str,
        sequence_number: &'a str,
    },
}

#[derive(Serialize)]
struct SapEnvelope<'a> {
    data: SapData<'a>,
    traceparent: &'a str,
}

#[derive(Serialize)]
struct SapData<'a> {
    #[serde(rename = "SourceSystem")]
    source_system: &'a str,
    #[serde(rename = "DeviceLocation")]
    device_location: &'a str,
    #[serde(rename = "DeviceType")]
    device_type: &'a str,
    #[serde(rename = "BUCKETId")]
    bucket_id: &'a str,
    #[serde(rename = "eventData")]
    event_data: &'a RawValue,
}

#[cfg(test)]
mod tests;
