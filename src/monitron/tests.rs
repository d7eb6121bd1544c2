use super::*;
use crate::monitron::test_samples::*;

/// A record read as the scanner reads it: the value, then the payload the rules need.
struct Read<'a> {
    value: Value<'a>,
    payload: Option<Payload<'a>>,
}

impl<'a> Read<'a> {
    fn verdict(&'a self, rules: &ForwardingRules) -> Verdict<'a> {
        match &self.value {
            Value::Object(record) => classify(record, self.payload.as_ref(), rules),
            Value::NotAnObject => Verdict::Unrecognised,
        }
    }
}

fn read<'a>(json: &'a str, rules: &ForwardingRules) -> Read<'a> {
    let value: Value<'a> = match serde_json::from_str(json) {
        Ok(v) => v,
        Err(e) => panic!("{json}: {e}"),
    };
    let payload = match &value {
        Value::Object(record) => match payload_for(record, rules) {
            Ok(p) => p,
            Err(e) => panic!("{json}: {e}"),
        },
        Value::NotAnObject => None,
    };
    Read { value, payload }
}

fn verdict(json: &str, rules: &ForwardingRules) -> String {
    format!("{:?}", read(json, rules).verdict(rules))
}

fn transition(new: &str, previous: &str) -> String {
    format!(
        r#"{{"eventId":"t","eventType":"assetStateTransition","eventPayload":{{"assetState":{{"newState":{new},"previousState":{previous}}}}}}}"#
    )
}

fn is_forwarded(json: &str, rules: &ForwardingRules) -> bool {
    matches!(read(json, rules).verdict(rules), Verdict::Forward { .. })
}

#[test]
fn v2_state_transitions_follow_the_contract_table() {
    let cases = [
        ("\"WARNING\"", "\"HEALTHY\"", true),
        ("\"ALARM\"", "\"WARNING\"", true),
        ("\"WARNING\"", "\"ALARM\"", true),
        ("\"HEALTHY\"", "\"ALARM\"", true),
        ("\"HEALTHY\"", "\"NEEDS_MAINTENANCE\"", true),
        ("\"NEEDS_MAINTENANCE\"", "\"UNKNOWN\"", true),
        ("\"HEALTHY\"", "\"UNKNOWN\"", false),
        ("\"HEALTHY\"", "\"HEALTHY\"", false),
        ("\"ALARM\"", "\"ALARM\"", false),
        ("\"UNKNOWN\"", "\"HEALTHY\"", false),
        // Drift: lower case, missing or null previous state.
        ("\"alarm\"", "\"HEALTHY\"", true),
        ("\"ALARM\"", "null", true),
        ("\"HEALTHY\"", "null", false),
    ];
    for (new, previous, forwarded) in cases {
        let json = transition(new, previous);
        assert_eq!(
            is_forwarded(&json, &ForwardingRules::default()),
            forwarded,
            "{previous} → {new}"
        );
    }
}

#[test]
fn alert_and_recovery_are_told_apart() {
    let record = read(ALARM, &ALL_ON);
    let Verdict::Forward {
        schema,
        event_id,
        change,
    } = record.verdict(&ForwardingRules::default())
    else {
        panic!("the alarm sample is forwarded");
    };
    assert_eq!((schema, event_id.as_ref()), (Schema::V2, "e-200"));
    assert_eq!(
        change,
        Change::AssetState {
            new: "ALARM",
            previous: Some("WARNING")
        }
    );
    assert!(change.is_alert());

    let record = read(CLOSURE, &ALL_ON);
    let Verdict::Forward { change, .. } = record.verdict(&ForwardingRules::default()) else {
        panic!("the user closure is forwarded");
    };
    assert_eq!(
        change,
        Change::AssetState {
            new: "HEALTHY",
            previous: Some("NEEDS_MAINTENANCE")
        }
    );
    assert!(!change.is_alert());
}

#[test]
fn v1_records_use_their_top_level_asset_state() {
    let record = read(V1_SAP, &ALL_ON);
    assert_eq!(
        record.verdict(&ForwardingRules::default()),
        Verdict::Forward {
            schema: Schema::V1,
            event_id: "409623".into(),
            change: Change::AssetState {
                new: "NEEDS_MAINTENANCE",
                previous: Some("WORKING")
            },
        }
    );
    let record = read(V1_PRECURSOR, &ALL_ON);
    assert_eq!(
        record.verdict(&ForwardingRules::default()),
        Verdict::Skip {
            schema: Schema::V1,
            event_id: "409623".into(),
            reason: NotForwarded::NoAlertChange
        }
    );
}

#[test]
fn measurements_and_connectivity_are_not_forwarded_by_default() {
    let default = ForwardingRules::default();
    assert!(verdict(MEASUREMENT, &default).contains("Measurement"));
    assert!(verdict(SENSOR_DOWN, &default).contains("Connectivity"));
    assert!(verdict(GATEWAY_DOWN, &default).contains("Connectivity"));
}

#[test]
fn the_real_measurement_has_no_model_transition() {
    assert!(!is_forwarded(MEASUREMENT, &ALL_ON));
}

#[test]
fn model_transitions_are_forwarded_when_switched_on() {
    let changed = MEASUREMENT.replacen(
        r#""previousPersistentClassificationOutput":"HEALTHY","persistentClassificationOutput":"HEALTHY","pointwiseClassificationOutput":"HEALTHY""#,
        r#""previousPersistentClassificationOutput":"HEALTHY","persistentClassificationOutput":"WARNING","pointwiseClassificationOutput":"WARNING""#,
        1,
    );
    assert_ne!(
        changed, MEASUREMENT,
        "the fixture has the vibrationISO outputs"
    );
    assert!(!is_forwarded(&changed, &ForwardingRules::default()));
    let record = read(&changed, &ALL_ON);
    let Verdict::Forward {
        change: Change::Model { changes },
        ..
    } = record.verdict(&ALL_ON)
    else {
        panic!("a HEALTHY → WARNING model change is forwarded");
    };
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].model, "vibrationISO");
    assert_eq!(changes[0].new.as_str(), Some("WARNING"));
    assert_eq!(changes[0].previous.as_str(), Some("HEALTHY"));

    // A change that touches no alert output is not a model transition worth forwarding.
    let quiet = MEASUREMENT.replacen(
        r#""previousPersistentClassificationOutput":"HEALTHY","persistentClassificationOutput":"HEALTHY""#,
        r#""previousPersistentClassificationOutput":"UNKNOWN","persistentClassificationOutput":"HEALTHY""#,
        1,
    );
    assert!(!is_forwarded(&quiet, &ALL_ON));
}

#[test]
fn connectivity_events_are_forwarded_when_switched_on() {
    let cases = [
        ("sensorConnected", DeviceKind::Sensor, true),
        ("sensorDisconnected", DeviceKind::Sensor, false),
        ("gatewayConnected", DeviceKind::Gateway, true),
        ("gatewayDisconnected", DeviceKind::Gateway, false),
    ];
    for (event_type, device, connected) in cases {
        let json = SENSOR_DOWN.replace("sensorDisconnected", event_type);
        let record = read(&json, &ALL_ON);
        let Verdict::Forward { change, .. } = record.verdict(&ALL_ON) else {
            panic!("{event_type} is forwarded when connectivity is on");
        };
        assert_eq!(change, Change::Connectivity { device, connected });
    }
}

#[test]
fn unknown_v2_event_types_are_recognised_but_not_forwarded() {
    let json = SENSOR_DOWN.replace("sensorDisconnected", "batteryLow");
    let record = read(&json, &ALL_ON);
    assert_eq!(
        record.verdict(&ALL_ON),
        Verdict::Skip {
            schema: Schema::V2,
            event_id: "e-123".into(),
            reason: NotForwarded::UnknownEventType("batteryLow".into())
        }
    );
}

#[test]
fn valid_json_that_is_not_monitron_is_unrecognised() {
    let firehose_error = r#"{"attemptsMade":4,"arrivalTimestamp":1700000000000,"ErrorCode":"Lambda.FunctionError","ErrorMessage":"x","rawData":"eyJhIjoxfQ==","sequenceNumber":"1","subSequenceNumber":0}"#;
    for json in [
        firehose_error,
        "42",
        "\"text\"",
        "null",
        "[1,2]",
        "{}",
        r#"{"eventType":7,"eventPayload":{}}"#,
        r#"{"eventType":"measurement","eventPayload":null,"eventId":"x"}"#,
        r#"{"eventId":"x","assetState":"ALARM"}"#,
    ] {
        assert_eq!(
            read(json, &ALL_ON).verdict(&ALL_ON),
            Verdict::Unrecognised,
            "{json}"
        );
    }
}

#[test]
fn monitron_records_without_a_usable_identity_are_malformed() {
    for (id, reason) in [
        (None, "no eventId"),
        (Some("null"), "no eventId (missing or null)"),
        (Some("\"\""), "eventId is empty"),
        (Some("true"), "neither a string nor a number"),
        (Some("{\"a\":1}"), "neither a string nor a number"),
    ] {
        let id_field = id.map(|v| format!(r#""eventId":{v},"#)).unwrap_or_default();
        let json = format!(
            r#"{{{id_field}"eventType":"assetStateTransition","eventPayload":{{"assetState":{{"newState":"ALARM"}}}}}}"#
        );
        match read(&json, &ALL_ON).verdict(&ALL_ON) {
            Verdict::Malformed {
                schema: Schema::V2,
                reason: got,
            } => {
                assert!(got.contains(reason), "{json}: {got}");
            }
            other => panic!("{json}: {other:?}"),
        }
    }
}

#[test]
fn a_transition_without_a_new_state_is_malformed() {
    for payload in [
        r#"{}"#,
        r#"{"assetState":{"previousState":"ALARM"}}"#,
        r#"{"assetState":{"newState":5}}"#,
    ] {
        let json = format!(
            r#"{{"eventId":"x","eventType":"assetStateTransition","eventPayload":{payload}}}"#
        );
        assert!(
            matches!(
                read(&json, &ALL_ON).verdict(&ALL_ON),
                Verdict::Malformed { .. }
            ),
            "{json}"
        );
    }
}

#[test]
fn drift_is_tolerated() {
    // Unknown fields everywhere, nulls, numbers where strings are documented, no optional fields.
    let json = r#"{"timestamp":null,"eventId":12,"newTopLevel":{"deep":[1,{"x":null}]},
        "eventType":"assetStateTransition","accountId":null,"projectName":3,
        "eventPayload":{"siteName":null,"assetName":7,"extra":true,"sensor":null,
        "assetTransitionType":null,"assetState":{"newState":"ALARM","previousState":"HEALTHY","why":"x"},
        "closureCode":null,"models":"n/a"}}"#;
    let record = read(json, &ALL_ON);
    assert_eq!(
        record.verdict(&ALL_ON),
        Verdict::Forward {
            schema: Schema::V2,
            event_id: "12".into(),
            change: Change::AssetState {
                new: "ALARM",
                previous: Some("HEALTHY")
            },
        }
    );
}

#[test]
fn numeric_event_ids_keep_their_exact_text() {
    for (id, text) in [
        ("409623", "409623"),
        ("1e3", "1e3"),
        ("123456789012345678901", "123456789012345678901"),
        ("-7.50", "-7.50"),
        (r#""a\"b""#, "a\"b"),
        (r#""caf\u00e9""#, "café"),
    ] {
        let json = format!(r#"{{"eventId":{id},"assetState":{{"newState":"ALARM"}}}}"#);
        let read = read(&json, &ALL_ON);
        let Verdict::Forward { event_id, .. } = read.verdict(&ALL_ON) else {
            panic!("{json}");
        };
        assert_eq!(event_id, text, "{json}");
    }
}

#[test]
fn a_first_model_classification_counts_as_a_change_whatever_its_case() {
    let first_alarm = MEASUREMENT.replacen(
        r#""previousPersistentClassificationOutput":"HEALTHY","persistentClassificationOutput":"HEALTHY","pointwiseClassificationOutput":"HEALTHY""#,
        r#""persistentClassificationOutput":"ALARM","pointwiseClassificationOutput":"ALARM""#,
        1,
    );
    assert_ne!(first_alarm, MEASUREMENT);
    assert!(is_forwarded(&first_alarm, &ALL_ON));
    let only_case = MEASUREMENT.replacen(
        r#""previousPersistentClassificationOutput":"HEALTHY","persistentClassificationOutput":"HEALTHY""#,
        r#""previousPersistentClassificationOutput":"alarm","persistentClassificationOutput":"ALARM""#,
        1,
    );
    assert_ne!(only_case, MEASUREMENT);
    assert!(!is_forwarded(&only_case, &ALL_ON));
}

#[test]
fn a_state_selection_forwards_only_changes_into_its_states() {
    let original = ForwardingRules {
        states: Some(vec!["NEEDS_MAINTENANCE".into()]),
        ..ForwardingRules::default()
    };
    let cases = [
        ("\"NEEDS_MAINTENANCE\"", "\"HEALTHY\"", true),
        ("\"needs_maintenance\"", "\"WARNING\"", true),
        ("\"ALARM\"", "\"HEALTHY\"", false),
        ("\"WARNING\"", "\"HEALTHY\"", false),
        // A recovery: the SAP sample's processor would raise a notification for it too.
        ("\"HEALTHY\"", "\"NEEDS_MAINTENANCE\"", false),
    ];
    for (new, previous, forwarded) in cases {
        let json = transition(new, previous);
        assert_eq!(
            is_forwarded(&json, &original),
            forwarded,
            "{previous} → {new}"
        );
        if !forwarded {
            assert!(
                verdict(&json, &original).contains("StateNotSelected"),
                "{previous} → {new}: {}",
                verdict(&json, &original)
            );
        }
    }
    // v1 records follow the same selection (the SAP sample's own test record goes through).
    assert!(is_forwarded(V1_SAP, &original));
    // Model transitions and connectivity keep their own switches.
    let with_models = ForwardingRules {
        model_transitions: true,
        connectivity: true,
        ..original
    };
    assert!(is_forwarded(SENSOR_DOWN, &with_models));
}
