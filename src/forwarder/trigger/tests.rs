use serde_json::{Value, json};

use super::*;

fn event(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

fn objects(trigger: Result<Trigger, TriggerError>) -> Vec<ObjectRef> {
    match trigger {
        Ok(Trigger::Objects(objects)) => objects,
        other => panic!("expected objects, got {other:?}"),
    }
}

const BUCKET: &str = "monitron-export-111122223333";

#[test]
fn direct_s3_notifications_decode_form_urlencoded_keys() {
    let found = objects(parse(&event(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/events/s3/s3-object-created.json"
    )))));
    assert_eq!(
        found,
        vec![ObjectRef {
            location: S3Location::new(
                BUCKET,
                "project=Plant A/site=Site 1/time=2024-03-01 00:00:00/monitron-v2-ndjson.json.gz",
            ),
            version_id: None,
            etag: Some("0f343b0931126a20f133d67c2b018a3b".into()),
            size: Some(1817),
        }]
    );
}

#[test]
fn every_record_of_a_batch_is_read() {
    let found = objects(parse(&event(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/events/s3/s3-object-created-batch.json"
    )))));
    let keys: Vec<&str> = found.iter().map(|o| o.location.key.as_str()).collect();
    assert_eq!(
        keys,
        vec![
            "project=Plant A/site=Werk Süd/time=2024-03-01 00:00:00/monitron-v2-concatenated-1+1.json",
            "sap-monitron/monitron-v1-pretty.json",
        ]
    );
}

#[test]
fn the_aws_documentation_example_is_read_with_its_version() {
    let found = objects(parse(&event(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/events/s3/s3-object-created-aws-doc.json"
    )))));
    assert_eq!(found[0].location.bucket, "amzn-s3-demo-bucket");
    assert_eq!(found[0].location.key, "HappyFace.jpg");
    assert_eq!(
        found[0].version_id.as_deref(),
        Some("096fKKXTRTtl3on89fVO.nfljtsv6qko")
    );
}

#[test]
fn eventbridge_keys_are_not_decoded() {
    let found = objects(parse(&event(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/events/s3/eventbridge-object-created.json"
    )))));
    assert_eq!(
        found[0].location.key,
        "project=Plant A/site=Site 1/time=2024-03-01 00:00:00/monitron-v2-ndjson.json.gz"
    );
    let mut plus = event(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/events/s3/eventbridge-object-created.json"
    )));
    plus["detail"]["object"]["key"] = json!("a+b%20c");
    assert_eq!(objects(parse(&plus))[0].location.key, "a+b%20c");
}

#[test]
fn sqs_batches_keep_each_message_apart() {
    let trigger = parse(&event(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/events/s3/sqs-s3-object-created.json"
    ))));
    let Ok(Trigger::Sqs(messages)) = trigger else {
        panic!("{trigger:?}")
    };
    assert_eq!(messages.len(), 2);
    assert_eq!(
        messages[0].message_id,
        "059f36b4-87a3-44ab-83d2-661975830a7d"
    );
    let first = messages[0].objects.clone().unwrap_or_default();
    assert_eq!(first.len(), 1);
    assert!(first[0].location.key.starts_with("project=Plant A/"));
    // The test event inside SQS names no object.
    assert_eq!(messages[1].objects, Ok(vec![]));
}

#[test]
fn a_broken_sqs_body_fails_only_its_message() {
    let mut batch = event(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/events/s3/sqs-s3-object-created.json"
    )));
    batch["Records"][1]["body"] = json!("not json");
    let Ok(Trigger::Sqs(messages)) = parse(&batch) else {
        panic!()
    };
    assert!(messages[0].objects.is_ok());
    assert!(
        messages[1]
            .objects
            .as_ref()
            .is_err_and(|e| e.contains("not JSON"))
    );
}

#[test]
fn sns_envelopes_are_opened_directly_and_inside_sqs() {
    let s3 = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/events/s3/s3-object-created.json"
    ));
    let sns = json!({"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0",
        "Sns": {"Type": "Notification", "MessageId": "m", "Message": s3}}]});
    assert_eq!(objects(parse(&sns)).len(), 1);
    let sns_envelope = json!({"Type": "Notification", "MessageId": "m", "Message": s3}).to_string();
    let sqs =
        json!({"Records": [{"eventSource": "aws:sqs", "messageId": "q1", "body": sns_envelope}]});
    let Ok(Trigger::Sqs(messages)) = parse(&sqs) else {
        panic!()
    };
    assert_eq!(messages[0].objects.as_ref().map(Vec::len), Ok(1));
}

#[test]
fn the_s3_test_event_is_acknowledged() {
    assert_eq!(
        parse(&event(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/events/s3/s3-test-event.json"
        )))),
        Ok(Trigger::TestEvent)
    );
}

#[test]
fn keys_with_spaces_plus_equals_colons_and_non_ascii_reach_s3_exactly() {
    for (encoded, decoded) in [
        ("a+b", "a b"),
        ("a%2Bb", "a+b"),
        (
            "project%3DPlant+A%2Ftime%3D10%3A47%3A07",
            "project=Plant A/time=10:47:07",
        ),
        ("Werk+S%C3%BCd/%E6%B3%B5", "Werk Süd/泵"),
        ("plain/key.json.gz", "plain/key.json.gz"),
        ("100%25", "100%"),
    ] {
        assert_eq!(
            decode_form_urlencoded(encoded).as_deref(),
            Some(decoded),
            "{encoded}"
        );
    }
    assert_eq!(decode_form_urlencoded("bad%FF"), None);
}

#[test]
fn other_events_and_versions_are_refused_or_ignored_with_a_reason() {
    let mut removed = event(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/events/s3/s3-object-created.json"
    )));
    removed["Records"][0]["eventName"] = json!("ObjectRemoved:Delete");
    assert_eq!(objects(parse(&removed)), vec![]);

    let mut v3 = event(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/events/s3/s3-object-created.json"
    )));
    v3["Records"][0]["eventVersion"] = json!("3.0");
    assert!(parse(&v3).is_err_and(|e| e.to_string().contains("eventVersion `3.0`")));
    let mut v25 = event(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/events/s3/s3-object-created.json"
    )));
    v25["Records"][0]["eventVersion"] = json!("2.5");
    assert_eq!(objects(parse(&v25)).len(), 1);

    for other in [
        json!({}),
        json!({"Records": "x"}),
        json!([1]),
        json!({"Records": [{"eventSource": "aws:dynamodb"}]}),
    ] {
        assert!(parse(&other).is_err(), "{other}");
    }
    // A Kinesis record without data is a record of the batch, kept with its reason.
    let Ok(Trigger::Stream(records)) = parse(&json!({"Records": [{"eventSource": "aws:kinesis"}]}))
    else {
        panic!("a Kinesis batch")
    };
    assert!(records[0].data.is_err());
}

#[test]
fn a_huge_batch_is_read_whole() {
    let record = |i: usize| {
        serde_json::json!({"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "b"}, "object": {"key": format!("k/{i}.json"), "size": 1}}})
    };
    let event = serde_json::json!({"Records": (0..10_000).map(record).collect::<Vec<_>>()});
    match parse(&event) {
        Ok(Trigger::Objects(objects)) => {
            assert_eq!(objects.len(), 10_000);
            assert_eq!(objects[9_999].location.key, "k/9999.json");
        }
        other => panic!("{other:?}"),
    }
}
