use super::*;
use crate::aws::s3::S3Location;
use crate::monitron::test_samples::*;
use serde_json::json;

fn cloudevent_of(record: &str) -> String {
    let value: Record<'_> = serde_json::from_str(record).expect("value (serde_json::from_str)");
    let Record::Object(record_fields) = &value else {
        panic!()
    };
    let payload = payload_for(record_fields, &ALL_ON).expect("payload (payload_for)");
    let Verdict::Forward {
        schema,
        event_id,
        change,
    } = classify(record_fields, payload.as_ref(), &ALL_ON)
    else {
        panic!("not forwarded")
    };
    let forwarded = crate::event::Forwarded {
        record: record_fields,
        payload: payload.as_ref(),
        raw: record,
        schema,
        event_id: &event_id,
        change: &change,
    };
    let origin = Origin::S3(S3Location::new("b", "k"));
    EventBuilder::default()
        .build(forwarded, source_of(record_fields, schema), &origin)
        .expect("source_of in the test set-up")
        .payload
}

fn event(body: &str) -> AlertEvent {
    match parse(body.as_bytes()) {
        Ok(Delivery::Event(e)) => *e,
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_forwarders_cloudevent_reads_back_whole() {
    let e = event(&cloudevent_of(ALARM));
    assert_eq!(e.id, "e-200");
    assert_eq!(e.source, "monitron/111122223333/Plant%20A");
    assert_eq!((e.category.as_str(), e.kind.as_str()), ("asset", "alert"));
    assert_eq!(e.new_state.as_deref(), Some("ALARM"));
    assert_eq!(e.previous_state.as_deref(), Some("WARNING"));
    assert_eq!(e.site.as_deref(), Some("Site 1"));
    assert_eq!(e.position.as_deref(), Some("Motor DE"));
    assert_eq!(e.time.as_deref(), Some("2024-03-01T09:00:01.500Z"));
    assert_eq!(e.transition.as_deref(), Some("measurement"));

    let closure = event(&cloudevent_of(CLOSURE));
    assert_eq!(closure.kind, "recovered");
    assert_eq!(
        closure
            .closure_code
            .as_ref()
            .and_then(|c| c.get("failureMode"))
            .and_then(|v| v.as_str()),
        Some("MISALIGNMENT")
    );
}

#[test]
fn the_sap_envelope_gives_the_same_event_as_the_cloudevent() {
    let from_envelope = event(SAP_ENVELOPE);
    let from_cloudevent = event(&cloudevent_of(V1_SAP));
    assert_eq!(from_envelope.id, "409623");
    assert_eq!(from_envelope.new_state, from_cloudevent.new_state);
    assert_eq!(from_envelope.site, from_cloudevent.site);
    assert_eq!(from_envelope.kind, "alert");
}

#[test]
fn an_envelope_without_an_alert_change_is_not_an_alert() {
    let quiet = SAP_ENVELOPE.replace(
        "\"previousState\":\"WORKING\"",
        "\"previousState\":\"NEEDS_MAINTENANCE\"",
    );
    assert!(matches!(
        parse(quiet.as_bytes()),
        Ok(Delivery::NotAnAlert { .. })
    ));
}

#[test]
fn other_bodies_are_refused_with_a_reason() {
    for (body, reason) in [
        (&b"\xff"[..], "not UTF-8"),
        (b"[1]", "neither a CloudEvent"),
        (br#"{"specversion":"0.3","id":"a","source":"s","type":"com.amazon.monitron.asset.alert"}"#, "not 1.0"),
        (br#"{"specversion":"1.0","id":"","source":"s","type":"com.amazon.monitron.asset.alert"}"#, "empty id"),
        (br#"{"specversion":"1.0","source":"s","type":"com.amazon.monitron.asset.alert"}"#, "missing field `id`"),
        (br#"{"data":{"eventData":{"x":1}}}"#, "not a Monitron record"),
    ] {
        match parse(body) {
            Err(e) => assert!(e.0.contains(reason), "{}: {e}", String::from_utf8_lossy(body)),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn the_trace_is_the_events_then_the_headers_then_the_alerts_own() {
    let forwarded = cloudevent_of(ALARM);
    let own = TraceParent::for_alert("monitron/111122223333/Plant%20A", "e-200");
    let e = event(&forwarded);
    assert_eq!((e.trace, e.carried), (own, Carried::InEvent));

    let other = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let mut value: Value = serde_json::from_str(&forwarded).unwrap_or_default();
    value["traceparent"] = Value::String(other.into());
    let mut e = event(&value.to_string());
    e.continue_from_header(Some(GOOD_HEADER));
    assert_eq!(e.trace.to_string(), other, "the event's own attribute wins");

    value.as_object_mut().map(|o| o.remove("traceparent"));
    let mut e = event(&value.to_string());
    assert_eq!((e.trace, &e.carried), (own, &Carried::Absent));
    e.continue_from_header(Some(GOOD_HEADER));
    assert_eq!(
        (e.trace.to_string().as_str(), &e.carried),
        (GOOD_HEADER, &Carried::InHeader)
    );

    let mut e = event(&value.to_string());
    e.continue_from_header(Some("00-zz"));
    assert_eq!(e.trace, own);
    assert!(matches!(&e.carried, Carried::Refused(why) if why.contains("header")));

    for bad in [
        json!("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        json!(7),
        json!("x".repeat(10_000)),
    ] {
        value["traceparent"] = bad.clone();
        let mut e = event(&value.to_string());
        e.continue_from_header(Some(GOOD_HEADER));
        assert_eq!(e.trace, own, "{bad:.40}");
        assert!(
            matches!(&e.carried, Carried::Refused(why) if why.contains("event") && why.len() < 200),
            "{bad:.40}"
        );
    }
}

#[test]
fn a_sap_envelope_carries_its_trace_beside_data() {
    let own = event(SAP_ENVELOPE);
    assert_eq!(own.carried, Carried::Absent);
    assert_eq!(own.trace, TraceParent::for_alert(&own.source, "409623"));
    let mut value: Value = serde_json::from_str(SAP_ENVELOPE).unwrap_or_default();
    value["traceparent"] = Value::String(GOOD_HEADER.into());
    let carried = event(&value.to_string());
    assert_eq!(
        (carried.trace.to_string().as_str(), carried.carried),
        (GOOD_HEADER, Carried::InEvent)
    );
}

const GOOD_HEADER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
