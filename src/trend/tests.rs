use chrono::{TimeZone, Utc};

use super::point::of_record;
use super::*;
use crate::monitron::Value;

fn point_of(raw: &str) -> Option<(Position, Point)> {
    let value: Value<'_> = serde_json::from_str(raw).ok()?;
    match value {
        Value::Object(record) => of_record(&record, raw),
        Value::NotAnObject => None,
    }
}

const V2: &str = include_str!("../../events/records/monitron-v2-measurement.json");
const V1: &str = include_str!("../../events/records/monitron-v1-precursor-sample.json");

#[test]
fn a_v2_measurement_is_a_point_with_every_value() {
    let (position, point) = point_of(V2).expect("the sample is a measurement");
    assert_eq!(
        point.at,
        Utc.with_ymd_and_hms(2023, 10, 29, 16, 38, 7).unwrap()
            + chrono::Duration::milliseconds(476)
    );
    assert_eq!(point.velocity, Some(0.14));
    assert_eq!(
        point.velocity_axes,
        [Some(0.0748), Some(0.0374), Some(0.1123)]
    );
    assert_eq!(point.acceleration, Some(0.0528));
    assert_eq!(point.temperature, Some(45.15));
    assert_eq!(point.iso_class, Some(IsoClass::IV));
    assert_eq!(point.models, [Some(Health::Healthy); 3]);
    assert_eq!(position.source, "monitron/096573865771/adfsmarthome");
    assert_eq!(position.site.as_deref(), Some("Site 1"));
    assert_eq!(position.asset.as_deref(), Some("Heizung 1"));
    assert_eq!(position.position.as_deref(), Some("Anders"));
    assert_eq!(position.title(), "Heizung 1 / Anders");
}

#[test]
fn a_v1_record_is_a_point_read_from_its_measurement() {
    let (position, point) = point_of(V1).expect("v1 records are measurements");
    assert_eq!(point.velocity, Some(10.0));
    assert_eq!(point.temperature, Some(35.0));
    assert_eq!(point.iso_class, Some(IsoClass::IV));
    assert_eq!(point.models[0], Some(Health::Warning));
    assert_eq!(position.site.as_deref(), Some("1017"));
    assert_eq!(position.title(), "Motor / Left");
    assert_eq!(position.source, "monitron/unknown/sap-monitron");
}

#[test]
fn other_records_and_records_without_a_time_have_no_point() {
    let alarm =
        include_str!("../../events/records/illustrative-v2-asset-state-transition-alarm.json");
    assert!(point_of(alarm).is_none());
    let no_time = V2.replacen(
        "\"timestamp\":\"2023-10-29 16:38:07.476\"",
        "\"timestamp\":\"soon\"",
        1,
    );
    assert!(point_of(&no_time).is_none());
}

#[test]
fn odd_values_are_absent_and_never_lose_the_others() {
    let odd = V2
        .replacen("\"temperature\":45.15", "\"temperature\":\"hot\"", 1)
        .replacen("\"xAxis\":{\"rms\":0.0748}", "\"xAxis\":[1,2]", 1)
        .replacen("\"isoClass\":\"CLASS4\"", "\"isoClass\":{\"a\":1}", 1);
    let (_, point) = point_of(&odd).expect("still a point");
    assert_eq!(point.temperature, None);
    assert_eq!(point.velocity_axes[0], None);
    assert_eq!(point.iso_class, None);
    assert_eq!(point.velocity, Some(0.14));
}

#[test]
fn positions_are_keyed_as_the_processor_keys_them() {
    let by_id = position_key("monitron/1/p", Some("pos-1"), Some(("s", "a", "p")));
    assert_eq!(by_id, position_key("monitron/1/p", Some("pos-1"), None));
    let by_names = position_key("monitron/1/p", None, Some(("s", "a", "p")));
    assert_ne!(by_id, by_names);
    assert_eq!(
        by_names,
        position_key("monitron/1/p", Some(""), Some(("s", "a", "p")))
    );
    assert_eq!(position_key("monitron/1/p", None, None), None);
    assert_eq!(by_id.map(|k| k.len()), Some(32));
}

#[test]
fn a_series_holds_one_point_per_time_in_order() {
    let at = |h| Utc.with_ymd_and_hms(2024, 1, 1, h, 0, 0).unwrap();
    let point = |h, v| Point {
        at: at(h),
        velocity: Some(v),
        velocity_axes: [None; 3],
        acceleration: None,
        temperature: None,
        iso_class: None,
        models: [None; 3],
    };
    let mut series = Series::default();
    for (h, v) in [(3, 3.0), (1, 1.0), (2, 2.0), (1, 9.0)] {
        series.push(point(h, v));
    }
    let values: Vec<_> = series.points().iter().map(|p| p.velocity).collect();
    assert_eq!(values, [Some(1.0), Some(2.0), Some(3.0)]);
    series.keep_between(at(2), at(3));
    assert_eq!(series.points().len(), 2);
}
