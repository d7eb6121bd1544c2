//! The Monitron export record, v1 and v2, as far as the forwarder needs it.
//!
//! Parsed straight from the object's bytes, borrowing strings where it can; everything the
//! forwarder does not look at (features, pointwise outputs, undocumented fields) is skipped by
//! the parser without being built. The record itself is forwarded unchanged from its bytes.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::lenient::{Obj, Text};

/// One JSON value of a Firehose object: an object (maybe Monitron), or anything else.
#[derive(Debug)]
pub enum Value<'a> {
    Object(Box<Record<'a>>),
    /// An array, string, number, boolean or `null`: never Monitron.
    NotAnObject,
}

/// The fields of a record, v1 and v2 together (a v1 record simply has no v2 fields).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Record<'a> {
    #[serde(borrow)]
    pub timestamp: Text<'a>,
    /// Kept as written: a number's exact text is its identity (no float rounding).
    #[serde(rename = "eventId", borrow)]
    pub event_id: Option<&'a RawValue>,
    #[serde(borrow)]
    pub version: Text<'a>,

    // v2
    #[serde(rename = "eventType", borrow)]
    pub event_type: Text<'a>,
    /// Kept as text and parsed only when the rules need it (see [`Record::payload`]): most
    /// records are measurements whose payload the forwarder never looks at.
    #[serde(rename = "eventPayload", borrow)]
    pub event_payload: Option<&'a RawValue>,
    #[serde(rename = "accountId", borrow)]
    pub account_id: Text<'a>,
    #[serde(rename = "projectName", borrow)]
    pub project_name: Text<'a>,
    #[serde(rename = "projectId", borrow)]
    pub project_id: Text<'a>,

    // v1
    #[serde(rename = "projectDisplayName", borrow)]
    pub project_display_name: Text<'a>,
    #[serde(rename = "siteDisplayName", borrow)]
    pub site_display_name: Text<'a>,
    #[serde(rename = "assetDisplayName", borrow)]
    pub asset_display_name: Text<'a>,
    #[serde(rename = "sensorPositionDisplayName", borrow)]
    pub sensor_position_display_name: Text<'a>,
    #[serde(rename = "assetState", borrow)]
    pub asset_state: Obj<AssetState<'a>>,
    #[serde(borrow)]
    pub sensor: Obj<Device<'a>>,
    #[serde(borrow)]
    pub gateway: Obj<Device<'a>>,
}

impl<'a> Record<'a> {
    /// Whether `eventPayload` is a JSON object.
    pub fn has_payload_object(&self) -> bool {
        self.event_payload
            .is_some_and(|raw| raw.get().starts_with('{'))
    }

    /// Parses `eventPayload` when it is an object. The text is valid JSON already, so the only
    /// error is a key given twice.
    pub fn payload(&self) -> Result<Option<Payload<'a>>, serde_json::Error> {
        match self.event_payload {
            Some(raw) if raw.get().starts_with('{') => serde_json::from_str(raw.get()).map(Some),
            _ => Ok(None),
        }
    }
}

/// v2 `eventPayload`, all event types together.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Payload<'a> {
    #[serde(rename = "siteName", borrow)]
    pub site_name: Text<'a>,
    #[serde(rename = "assetName", borrow)]
    pub asset_name: Text<'a>,
    #[serde(rename = "positionName", borrow)]
    pub position_name: Text<'a>,
    #[serde(rename = "assetPositionURL", borrow)]
    pub asset_position_url: Text<'a>,
    #[serde(rename = "assetPositionId", borrow)]
    pub asset_position_id: Text<'a>,
    #[serde(rename = "gatewayName", borrow)]
    pub gateway_name: Text<'a>,
    #[serde(borrow)]
    pub sensor: Obj<Device<'a>>,
    #[serde(borrow)]
    pub gateway: Obj<Device<'a>>,
    #[serde(rename = "assetTransitionType", borrow)]
    pub asset_transition_type: Text<'a>,
    #[serde(rename = "assetState", borrow)]
    pub asset_state: Obj<AssetState<'a>>,
    /// Kept as written, to be forwarded unchanged.
    #[serde(rename = "closureCode", borrow)]
    pub closure_code: Option<&'a RawValue>,
    #[serde(borrow)]
    pub models: Obj<Models<'a>>,
}

/// `assetState.{newState,previousState}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AssetState<'a> {
    #[serde(rename = "newState", borrow)]
    pub new_state: Text<'a>,
    #[serde(rename = "previousState", borrow)]
    pub previous_state: Text<'a>,
}

/// A sensor or gateway: `{physicalId, ...}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Device<'a> {
    #[serde(rename = "physicalId", borrow)]
    pub physical_id: Text<'a>,
}

/// One model's persistent classification, now and before.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ModelOutput<'a> {
    #[serde(rename = "persistentClassificationOutput", borrow)]
    pub persistent: Text<'a>,
    #[serde(rename = "previousPersistentClassificationOutput", borrow)]
    pub previous_persistent: Text<'a>,
}

/// A model whose persistent classification changed in a measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelChange<'a> {
    pub model: std::borrow::Cow<'a, str>,
    pub new: Text<'a>,
    pub previous: Text<'a>,
}

/// `eventPayload.models`: only the models whose persistent output changed are kept, so that the
/// usual measurement (nothing changed) costs no allocation.
#[derive(Debug, Default)]
pub struct Models<'a> {
    pub changed: Vec<ModelChange<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Models<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ModelsVisitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for ModelsVisitor<'a> {
            type Value = Models<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of models")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Models<'a>, A::Error> {
                let mut changed = Vec::new();
                while let Some(model) = map.next_key::<Text<'a>>()? {
                    let output: Obj<ModelOutput<'a>> = map.next_value()?;
                    let (Text::Str(model), Obj::Present(output)) = (model, output) else {
                        continue;
                    };
                    let Some(new) = output.persistent.as_str() else {
                        continue;
                    };
                    // No previous output (a first classification) counts as a change.
                    let previous = output.previous_persistent.as_str();
                    if previous.is_none_or(|p| !p.eq_ignore_ascii_case(new)) {
                        changed.push(ModelChange {
                            model,
                            new: output.persistent,
                            previous: output.previous_persistent,
                        });
                    }
                }
                Ok(Models { changed })
            }
        }
        d.deserialize_map(ModelsVisitor(std::marker::PhantomData))
    }
}

struct ValueVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for ValueVisitor<'a> {
    type Value = Value<'a>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value<'a>, A::Error> {
        Record::deserialize(de::value::MapAccessDeserializer::new(map))
            .map(|r| Value::Object(Box::new(r)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value<'a>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Value::NotAnObject)
    }
    fn visit_borrowed_str<E: de::Error>(self, _: &'de str) -> Result<Value<'a>, E> {
        Ok(Value::NotAnObject)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Value<'a>, E> {
        Ok(Value::NotAnObject)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Value<'a>, E> {
        Ok(Value::NotAnObject)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Value<'a>, E> {
        Ok(Value::NotAnObject)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Value<'a>, E> {
        Ok(Value::NotAnObject)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Value<'a>, E> {
        Ok(Value::NotAnObject)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value<'a>, E> {
        Ok(Value::NotAnObject)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Value<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor(std::marker::PhantomData))
    }
}
