//! One Monitron measurement record → one trend point, and the position it belongs to.
//!
//! Rules:
//! - v2: a record with `eventType` `measurement`; its values under `eventPayload.features`, its
//!   models under `eventPayload.models`, its names in `eventPayload` (`siteName`, `assetName`,
//!   `positionName`, `assetPositionId`);
//! - v1: every record is a measurement; values under `measurement.features` (`resultantVector`
//!   where v2 says `totalVibration`), models and names at the top level;
//! - the time is the record's `timestamp` (UTC; [`crate::event::to_utc`]): a record without a
//!   readable time has no point;
//! - velocity in mm/s and acceleration in m/s² are the 10–1000 Hz band's RMS (total and per
//!   axis); temperature in °C; the ISO class and each model's persistent classification;
//! - a value that is missing, `null` or not a number is absent; a part that is not the object
//!   it should be counts as absent too, so that one odd field never loses the others.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::iso::IsoClass;
use crate::event::{source_of, to_utc};
use crate::monitron::{Record, Schema, schema_of};

/// A model's persistent classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Health {
    Unknown,
    Healthy,
    Warning,
    Alarm,
}

impl Health {
    pub fn from_name(name: &str) -> Option<Health> {
        Some(match name.to_ascii_uppercase().as_str() {
            "UNKNOWN" => Health::Unknown,
            "HEALTHY" => Health::Healthy,
            "WARNING" => Health::Warning,
            "ALARM" => Health::Alarm,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Health::Unknown => "UNKNOWN",
            Health::Healthy => "HEALTHY",
            Health::Warning => "WARNING",
            Health::Alarm => "ALARM",
        }
    }
}

/// One measurement of a position.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub at: DateTime<Utc>,
    /// Velocity RMS, 10–1000 Hz, total (mm/s).
    pub velocity: Option<f64>,
    /// Velocity RMS per axis, x, y, z (mm/s).
    pub velocity_axes: [Option<f64>; 3],
    /// Acceleration RMS, 10–1000 Hz, total (m/s²).
    pub acceleration: Option<f64>,
    /// Temperature (°C).
    pub temperature: Option<f64>,
    pub iso_class: Option<IsoClass>,
    /// The persistent classifications of `vibrationISO`, `vibrationML` and `temperatureML`.
    pub models: [Option<Health>; 3],
}

/// The position a point belongs to, with the names a chart's title shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position {
    /// The record's CloudEvents source (`monitron/<account>/<project>`).
    pub source: String,
    pub asset_position_id: Option<String>,
    pub project: Option<String>,
    pub site: Option<String>,
    pub asset: Option<String>,
    pub position: Option<String>,
}

impl Position {
    /// [`super::position_key`] of this position.
    pub fn key(&self) -> Option<String> {
        let names = match (&self.site, &self.asset, &self.position) {
            (Some(s), Some(a), Some(p)) => Some((s.as_str(), a.as_str(), p.as_str())),
            _ => None,
        };
        super::position_key(&self.source, self.asset_position_id.as_deref(), names)
    }

    /// `Asset / Position`, as a planner names the place.
    pub fn title(&self) -> String {
        let name = |n: &Option<String>| n.clone().unwrap_or_else(|| "?".into());
        format!("{} / {}", name(&self.asset), name(&self.position))
    }
}

/// The point and position of a measurement record; `None` for any other record, or one
/// without a readable time.
pub fn of_record(record: &Record<'_>, raw: &str) -> Option<(Position, Point)> {
    let schema = schema_of(record)?;
    let at = to_utc(record.timestamp.as_str()?)?;
    let (features, models, names) = match schema {
        Schema::V2 => {
            if record.event_type.as_json_string() != Some("measurement") {
                return None;
            }
            let payload: V2Payload = serde_json::from_str(record.event_payload?.get()).ok()?;
            let names = (
                payload.site_name,
                payload.asset_name,
                payload.position_name,
                payload.asset_position_id,
            );
            (payload.features.0, payload.models, names)
        }
        Schema::V1 => {
            let v1: V1Record = serde_json::from_str(raw).ok()?;
            let names = (v1.site, v1.asset, v1.position, Lenient(None));
            (
                v1.measurement.0.and_then(|m| m.features.0),
                v1.models,
                names,
            )
        }
    };
    let project = match schema {
        Schema::V1 => record.project_display_name.as_str(),
        Schema::V2 => record.project_name.as_str(),
    };
    let position = Position {
        source: source_of(record, schema),
        asset_position_id: names.3.0,
        project: project.map(str::to_string),
        site: names.0.0,
        asset: names.1.0,
        position: names.2.0,
    };
    let features = features.unwrap_or_default();
    let velocity = features
        .velocity
        .0
        .and_then(|v| v.band.0)
        .unwrap_or_default();
    let acceleration = features
        .acceleration
        .0
        .and_then(|a| a.band.0)
        .unwrap_or_default();
    let models = models.0.unwrap_or_default();
    let iso = models.vibration_iso.0.unwrap_or_default();
    let health = |m: Option<ModelRaw>| {
        m.and_then(|m| m.persistent.0)
            .and_then(|s| Health::from_name(&s))
    };
    let point = Point {
        at,
        velocity: velocity.total.rms(),
        velocity_axes: [velocity.x.rms(), velocity.y.rms(), velocity.z.rms()],
        acceleration: acceleration.total.rms(),
        temperature: features.temperature.0,
        iso_class: iso.iso_class.0.as_deref().and_then(IsoClass::from_name),
        models: [
            iso.persistent.0.as_deref().and_then(Health::from_name),
            health(models.vibration_ml.0),
            health(models.temperature_ml.0),
        ],
    };
    Some((position, point))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct V2Payload {
    #[serde(rename = "siteName")]
    site_name: Lenient<String>,
    #[serde(rename = "assetName")]
    asset_name: Lenient<String>,
    #[serde(rename = "positionName")]
    position_name: Lenient<String>,
    #[serde(rename = "assetPositionId")]
    asset_position_id: Lenient<String>,
    features: Lenient<Features>,
    models: Lenient<ModelsRaw>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct V1Record {
    #[serde(rename = "siteDisplayName")]
    site: Lenient<String>,
    #[serde(rename = "assetDisplayName")]
    asset: Lenient<String>,
    #[serde(rename = "sensorPositionDisplayName")]
    position: Lenient<String>,
    measurement: Lenient<Measurement>,
    models: Lenient<ModelsRaw>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Measurement {
    features: Lenient<Features>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Features {
    acceleration: Lenient<Bands>,
    velocity: Lenient<Bands>,
    temperature: Lenient<f64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Bands {
    #[serde(rename = "band10To1000Hz")]
    band: Lenient<Band>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Band {
    #[serde(rename = "totalVibration", alias = "resultantVector")]
    total: Lenient<Rms>,
    #[serde(rename = "xAxis")]
    x: Lenient<Rms>,
    #[serde(rename = "yAxis")]
    y: Lenient<Rms>,
    #[serde(rename = "zAxis")]
    z: Lenient<Rms>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Rms {
    rms: Lenient<f64>,
}

impl Lenient<Rms> {
    fn rms(&self) -> Option<f64> {
        self.0.as_ref().and_then(|r| r.rms.0)
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ModelsRaw {
    #[serde(rename = "vibrationISO")]
    vibration_iso: Lenient<IsoModelRaw>,
    #[serde(rename = "vibrationML")]
    vibration_ml: Lenient<ModelRaw>,
    #[serde(rename = "temperatureML")]
    temperature_ml: Lenient<ModelRaw>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct IsoModelRaw {
    #[serde(rename = "isoClass")]
    iso_class: Lenient<String>,
    #[serde(rename = "persistentClassificationOutput")]
    persistent: Lenient<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ModelRaw {
    #[serde(rename = "persistentClassificationOutput")]
    persistent: Lenient<String>,
}

/// A value of the expected shape, or `None` for anything else (skipped without failing the
/// record): a finite number, a string, or an object.
struct Lenient<T>(Option<T>);

impl<T> Default for Lenient<T> {
    fn default() -> Self {
        Lenient(None)
    }
}

/// What a [`Lenient`] accepts.
trait Shape: Sized {
    fn from_number(_: f64) -> Option<Self> {
        None
    }
    fn from_text(_: &str) -> Option<Self> {
        None
    }
    /// An object read as `Self`; `None` when it is not one.
    fn from_map<'de, A: MapAccess<'de>>(map: A) -> Result<Option<Self>, A::Error> {
        drain_map(map).map(|()| None)
    }
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

impl Shape for f64 {
    fn from_number(n: f64) -> Option<f64> {
        n.is_finite().then_some(n)
    }
}

impl Shape for String {
    fn from_text(text: &str) -> Option<String> {
        (!text.is_empty()).then(|| text.to_string())
    }
}

macro_rules! object_shape {
    ($($t:ty),*) => {$(
        impl Shape for $t {
            fn from_map<'de, A: MapAccess<'de>>(map: A) -> Result<Option<Self>, A::Error> {
                <$t>::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Some)
            }
        }
    )*};
}
object_shape!(
    Measurement,
    Features,
    Bands,
    Band,
    Rms,
    ModelsRaw,
    IsoModelRaw,
    ModelRaw
);

impl<'de, T: Shape> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Shape> Visitor<'de> for V<T> {
            type Value = Lenient<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_f64<E>(self, n: f64) -> Result<Self::Value, E> {
                Ok(Lenient(T::from_number(n)))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
                Ok(Lenient(T::from_number(n as f64)))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
                Ok(Lenient(T::from_number(n as f64)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Lenient(T::from_text(s)))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Lenient(None))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Lenient(None))
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Lenient(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Lenient(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::from_map(map).map(Lenient)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}
