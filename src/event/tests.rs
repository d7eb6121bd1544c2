use serde_json::{Value as Json, json};

use super::*;
use crate::aws::s3::S3Location;
use crate::monitron::test_samples::*;
use crate::monitron::{Value, Verdict, classify, payload_for};

fn s3() -> Origin {
    Origin::S3(S3Location::new(
        "monitron-export",
        "project=Plant A/site=Site 1/time=2024-03-01 00:00:00/stream-1-2024-03-01-09-00-00-abc",
    ))
}

fn build_with(raw: &str, format: PayloadFormat, origin: &Origin) -> ForwardedEvent {
    let value: Value<'_> = serde_json::from_str(raw).expect("the sample record is JSON");
    let Value::Object(record) = &value else {
        panic!("not an object")
    };
    let payload = payload_for(record, &ALL_ON).expect("payload (payload_for)");
    let Verdict::Forward {
        schema,
        event_id,
        change,
    } = classify(record, payload.as_ref(), &ALL_ON)
    else {
        panic!("not forwarded: {raw}");
    };
    let builder = EventBuilder {
        format,
        topics: TopicTemplate::default(),
    };
    let forwarded = Forwarded {
        record,
        payload: payload.as_ref(),
        raw,
        schema,
        event_id: &event_id,
        change: &change,
    };
    builder
        .build(forwarded, source_of(record, schema), origin)
        .expect("the event builds")
}

fn build(raw: &str) -> (ForwardedEvent, Json) {
    let event = build_with(raw, PayloadFormat::CloudEvents, &s3());
    assert!(!event.payload.contains('\n'), "one line");
    let payload = match serde_json::from_str(&event.payload) {
        Ok(v) => v,
        Err(e) => panic!("{e}: {}", event.payload),
    };
    (event, payload)
}

fn parsed(raw: &str) -> Json {
    serde_json::from_str(raw).unwrap_or(Json::Null)
}

#[test]
fn a_v2_alarm_becomes_the_contract_cloudevent() {
    let (event, payload) = build(ALARM);
    assert_eq!(
        payload,
        json!({
            "specversion": "1.0",
            "id": "e-200",
            "source": "monitron/111122223333/Plant%20A",
            "type": "com.amazon.monitron.asset.alert",
            "subject": "Site 1/Pump 7/Motor DE",
            "time": "2024-03-01T09:00:01.500Z",
            "datacontenttype": "application/json",
            "traceparent": crate::trace::TraceParent::for_alert("monitron/111122223333/Plant%20A", "e-200").to_string(),
            "data": {
                "schemaVersion": "2",
                "project": "Plant A",
                "site": "Site 1",
                "asset": "Pump 7",
                "position": "Motor DE",
                "state": {"new": "ALARM", "previous": "WARNING"},
                "transition": "measurement",
                "sensorId": "45a8b30f6f8f",
                "assetPositionId": "pos-1",
                "assetPositionUrl": "https://app.monitron.aws/#/…",
                "object": {
                    "bucket": "monitron-export",
                    "key": "project=Plant A/site=Site 1/time=2024-03-01 00:00:00/stream-1-2024-03-01-09-00-00-abc"
                },
                "record": parsed(ALARM),
            }
        })
    );
    assert_eq!(event.id, "e-200");
    assert_eq!(event.source, "monitron/111122223333/Plant%20A");
    assert_eq!(event.event_type, "com.amazon.monitron.asset.alert");
    assert_eq!(
        event.topic,
        "monitron/asset/alert/ALARM/Plant A/Site 1/Pump 7/Motor DE"
    );
    assert_eq!(event.warning, None);
    assert_eq!(trace_of(&event.payload), Some(event.trace));
}

#[test]
fn the_record_is_forwarded_byte_for_byte_when_it_is_one_line() {
    let (event, _) = build(ALARM);
    assert!(
        event.payload.contains(ALARM.trim_end()),
        "record embedded unchanged"
    );
}

#[test]
fn a_user_closure_is_a_recovery_with_its_closure_code() {
    let (_, payload) = build(CLOSURE);
    assert_eq!(payload["type"], "com.amazon.monitron.asset.recovered");
    assert_eq!(payload["data"]["transition"], "userInput");
    assert_eq!(
        payload["data"]["closureCode"],
        json!({"failureMode":"MISALIGNMENT","failureCause":"MAINTENANCE","actionTaken":"ADJUST","resolvedModels":["vibrationISO","vibrationML"]})
    );
    assert_eq!(
        payload["data"]["state"],
        json!({"new": "HEALTHY", "previous": "NEEDS_MAINTENANCE"})
    );
}

#[test]
fn a_v1_record_has_a_string_id_a_utc_time_and_no_transition() {
    let (event, payload) = build(V1_SAP);
    assert_eq!(event.id, "409623");
    assert_eq!(payload["id"], "409623");
    assert_eq!(payload["source"], "monitron/unknown/sap-monitron");
    assert_eq!(payload["time"], "2022-11-21T06:44:17Z");
    assert_eq!(payload["subject"], "1017/Motor/Left");
    assert_eq!(payload["data"]["schemaVersion"], "1");
    assert_eq!(payload["data"]["transition"], Json::Null);
    assert!(
        payload["data"]
            .as_object()
            .is_some_and(|d| d.contains_key("transition"))
    );
    assert_eq!(
        payload["data"]["state"],
        json!({"new": "NEEDS_MAINTENANCE", "previous": "WORKING"})
    );
    assert_eq!(payload["data"]["gatewayId"], "XXXCGH1234");
    // Pretty-printed with tabs in the object; one line in the payload, the same JSON value.
    assert_eq!(payload["data"]["record"], parsed(V1_SAP));
}

#[test]
fn an_unreadable_timestamp_leaves_time_out_with_a_warning() {
    let raw = ALARM.replace("2024-03-01 09:00:01.500", "last tuesday");
    let (event, payload) = build(&raw);
    assert!(payload.get("time").is_none());
    assert!(
        event
            .warning
            .is_some_and(|w| w.contains("last tuesday") && w.contains("e-200"))
    );
}

#[test]
fn a_local_file_is_named_by_its_path() {
    let event = build_with(
        ALARM,
        PayloadFormat::CloudEvents,
        &Origin::Local {
            path: "x/y.json".into(),
        },
    );
    let payload = parsed(&event.payload);
    assert_eq!(payload["data"]["object"], json!({"path": "x/y.json"}));
}

#[test]
fn the_sap_envelope_matches_the_sample() {
    let origin = Origin::S3(S3Location::new("<s3-bucket-name>", "k"));
    let event = build_with(V1_SAP, PayloadFormat::SapE2b, &origin);
    assert!(!event.payload.contains('\n'));
    // The sample's envelope, and the alert's trace beside `data` (the SAP processor reads `data`).
    let mut expected = parsed(SAP_ENVELOPE);
    expected["traceparent"] = Json::String(event.trace.to_string());
    assert_eq!(parsed(&event.payload), expected);
    assert_eq!(event.id, "409623");
    assert_eq!(trace_of(&event.payload), Some(event.trace));
    assert_eq!(
        event.trace,
        crate::trace::TraceParent::for_alert(&event.source, "409623")
    );
}

#[test]
fn connectivity_events_get_their_own_type_and_subject() {
    let (event, payload) = build(GATEWAY_DOWN);
    assert_eq!(payload["type"], "com.amazon.monitron.gateway.disconnected");
    assert_eq!(payload["subject"], "Site 1/GW hall 2");
    assert_eq!(payload["data"]["gatewayName"], "GW hall 2");
    assert_eq!(payload["data"]["gatewayId"], "cd9e483858ae");
    assert!(payload["data"].get("state").is_none());
    assert_eq!(
        event.topic,
        "monitron/gateway/disconnected/DISCONNECTED/Plant A/Site 1/_/_"
    );
}

#[test]
fn model_transitions_list_the_models_that_changed() {
    let raw = MEASUREMENT.replacen(
        r#""previousPersistentClassificationOutput":"HEALTHY","persistentClassificationOutput":"HEALTHY","pointwiseClassificationOutput":"INITIALIZING""#,
        r#""previousPersistentClassificationOutput":"ALARM","persistentClassificationOutput":"HEALTHY","pointwiseClassificationOutput":"HEALTHY""#,
        1,
    );
    let (event, payload) = build(&raw);
    assert_eq!(payload["type"], "com.amazon.monitron.model.recovered");
    assert_eq!(
        payload["data"]["models"],
        json!({"temperatureML": {"new": "HEALTHY", "previous": "ALARM"}})
    );
    assert_eq!(
        event.topic,
        "monitron/model/recovered/HEALTHY/adfsmarthome/Site 1/Heizung 1/Anders"
    );
}

#[test]
fn compacting_keeps_strings_intact() {
    let pretty = "{\n  \"a b\": \"x \\\" y\\n\",\n\t\"c\": [1, 2]\n}";
    assert_eq!(
        compact_json(pretty),
        "{\"a b\":\"x \\\" y\\n\",\"c\":[1,2]}"
    );
    assert!(matches!(
        compact_json("{\"a\": 1}"),
        std::borrow::Cow::Borrowed(_)
    ));
}

#[test]
fn payload_formats_have_configuration_names() {
    assert_eq!(
        PayloadFormat::from_name("cloudevents"),
        Some(PayloadFormat::CloudEvents)
    );
    assert_eq!(
        PayloadFormat::from_name("sap-e2b"),
        Some(PayloadFormat::SapE2b)
    );
    assert_eq!(PayloadFormat::from_name("xml"), None);
}

#[test]
fn a_pretty_printed_closure_code_is_one_line_in_the_payload() {
    let one_line = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/events/records/illustrative-v2-asset-state-transition-user-closure.json"
    ));
    let record: Json = serde_json::from_str(one_line).expect("record (serde_json::from_str)");
    let pretty =
        serde_json::to_string_pretty(&record).expect("pretty (serde_json::to_string_pretty)");
    assert!(pretty.contains("\n"));
    let (event, payload) = build(&pretty);
    assert!(!event.payload.contains('\n'), "{}", event.payload);
    let closure = &payload["data"]["closureCode"];
    assert!(closure.is_object(), "{payload}");
    assert_eq!(
        Some(closure),
        record.pointer("/eventPayload/closureCode"),
        "the same code, compact"
    );
}
