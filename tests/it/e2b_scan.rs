//! `e2b scan` as a user runs it: the real binary on the sample objects in `events/`.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn e2b(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_e2b"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    match output {
        Ok(o) => o,
        Err(e) => panic!("cannot run e2b: {e}"),
    }
}

fn stdout_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn payloads(output: &Output) -> Vec<Value> {
    stdout_lines(output)
        .iter()
        .map(|line| match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => panic!("stdout line is not JSON ({e}): {line}"),
        })
        .collect()
}

/// `(id, type)` of each payload, the object path left out.
fn ids_and_types(output: &Output) -> Vec<(String, String)> {
    payloads(output)
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap_or("?").to_string(),
                p["type"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

fn expected_v2() -> Vec<(String, String)> {
    [
        ("e-199", "com.amazon.monitron.asset.alert"),
        ("e-200", "com.amazon.monitron.asset.alert"),
        ("e-201", "com.amazon.monitron.asset.recovered"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect()
}

#[test]
fn ndjson_concatenated_and_gzip_objects_give_the_same_events() {
    for object in [
        "events/objects/monitron-v2-ndjson.json",
        "events/objects/monitron-v2-concatenated.json",
        "events/objects/monitron-v2-ndjson.json.gz",
    ] {
        let output = e2b(&["scan", object]);
        assert!(output.status.success(), "{object}: {}", stderr(&output));
        assert_eq!(ids_and_types(&output), expected_v2(), "{object}");
        let summary = stderr(&output);
        assert!(
            summary.contains("1 object (0 not read to the end), 8 records: 3 forwarded, 1 duplicate, 4 not forwarded, 0 unrecognised, 0 malformed"),
            "{object}: {summary}"
        );
        for payload in payloads(&output) {
            assert_eq!(payload["specversion"], "1.0");
            assert_eq!(payload["data"]["object"]["path"], object);
        }
    }
}

#[test]
fn events_are_forwarded_once_across_the_objects_of_one_run() {
    let output = e2b(&[
        "scan",
        "events/objects/monitron-v2-ndjson.json",
        "events/objects/monitron-v2-concatenated.json",
        "events/objects/monitron-v1-pretty.json",
    ]);
    assert!(output.status.success());
    let mut expected = expected_v2();
    expected.push(("409623".into(), "com.amazon.monitron.asset.alert".into()));
    assert_eq!(ids_and_types(&output), expected);
    assert!(
        stderr(&output)
            .contains("3 objects (0 not read to the end), 18 records: 4 forwarded, 5 duplicates"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn topics_are_printed_before_the_payload_on_request() {
    let output = e2b(&["scan", "--topics", "events/objects/monitron-v2-ndjson.json"]);
    let lines = stdout_lines(&output);
    let topics: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.split_once('\t').map(|(t, _)| t))
        .collect();
    assert_eq!(
        topics,
        vec![
            "monitron/asset/alert/WARNING/Plant A/Site 1/Pump 7/Motor DE",
            "monitron/asset/alert/ALARM/Plant A/Site 1/Pump 7/Motor DE",
            "monitron/asset/recovered/HEALTHY/Plant A/Site 1/Pump 7/Motor DE",
        ]
    );
    let custom = e2b(&[
        "scan",
        "--topics",
        "--topic-template",
        "plant/{site}/{kind}",
        "events/objects/monitron-v2-ndjson.json",
    ]);
    assert!(stdout_lines(&custom)[0].starts_with("plant/Site 1/alert\t{"));
    // As SAP Event Mesh takes them: under the namespace, in its alphabet, spaces mapped.
    let event_mesh = e2b(&[
        "scan",
        "--topics",
        "--event-mesh-namespace",
        "acme/s4/monitron",
        "events/objects/monitron-v2-ndjson.json",
    ]);
    let first = stdout_lines(&event_mesh)[0].clone();
    let (topic, _) = first.split_once('\t').unwrap_or_default();
    assert!(
        topic.starts_with("acme/s4/monitron/monitron/asset/alert/WARNING/Plant_A-"),
        "{topic}"
    );
    assert!(
        topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c)),
        "{topic}"
    );
}

#[test]
fn the_sap_envelope_and_the_opt_in_kinds_are_switches() {
    let output = e2b(&[
        "scan",
        "--format",
        "sap-e2b",
        "events/objects/monitron-v1-pretty.json",
    ]);
    let payloads = payloads(&output);
    assert_eq!(payloads.len(), 1);
    assert_eq!(payloads[0]["data"]["SourceSystem"], "sap-monitron");
    assert_eq!(payloads[0]["data"]["eventData"]["eventId"], 409623);

    let output = e2b(&[
        "scan",
        "--connectivity",
        "events/objects/monitron-v2-ndjson.json",
    ]);
    let types: Vec<String> = ids_and_types(&output).into_iter().map(|(_, t)| t).collect();
    assert!(
        types.contains(&"com.amazon.monitron.sensor.disconnected".to_string()),
        "{types:?}"
    );
    assert!(
        types.contains(&"com.amazon.monitron.gateway.disconnected".to_string()),
        "{types:?}"
    );
}

#[test]
fn broken_records_are_reported_and_their_neighbours_forwarded() {
    let output = e2b(&["scan", "events/objects/broken-records.json"]);
    assert!(output.status.success(), "the object was read to its end");
    assert_eq!(ids_and_types(&output), expected_v2());
    let err = stderr(&output);
    let malformed: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("malformed record: events/objects/broken-records.json at byte "))
        .collect();
    assert_eq!(malformed.len(), 3, "{err}");
    assert!(malformed[0].contains("not valid JSON"), "{err}");
    assert!(malformed[1].contains("not valid JSON"), "{err}");
    assert!(malformed[2].contains("invalid UTF-8"), "{err}");
    assert!(err.contains("2 unrecognised, 3 malformed"), "{err}");

    let quiet = e2b(&["scan", "--quiet", "events/objects/broken-records.json"]);
    assert!(!stderr(&quiet).contains("malformed record:"));
}

#[test]
fn a_truncated_gzip_object_fails_after_its_readable_records() {
    let output = e2b(&["scan", "events/objects/truncated.json.gz"]);
    assert_eq!(output.status.code(), Some(1));
    let events = payloads(&output);
    assert!(events.len() > 50, "{} events before the cut", events.len());
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event["id"], format!("cut-{i:04}"));
    }
    let err = stderr(&output);
    assert!(
        err.contains("events/objects/truncated.json.gz: the gzip stream is broken after"),
        "{err}"
    );
    assert!(
        err.contains("not every object could be read to its end"),
        "{err}"
    );
}

#[test]
fn standard_input_is_read_with_a_dash() {
    let child = Command::new(env!("CARGO_BIN_EXE_e2b"))
        .args(["scan", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = child.expect("the e2b binary starts");
    let data = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/events/objects/monitron-v2-ndjson.json.gz"
    ))
    .unwrap_or_default();
    if let Some(mut stdin) = child.stdin.take() {
        assert!(stdin.write_all(&data).is_ok());
    }
    let output = child.wait_with_output().expect("e2b scan ends");
    assert!(output.status.success());
    assert_eq!(ids_and_types(&output), expected_v2());
    assert_eq!(payloads(&output)[0]["data"]["object"]["path"], "-");
}

#[test]
fn a_missing_file_is_an_error_but_the_others_are_still_scanned() {
    let output = e2b(&[
        "scan",
        "events/objects/nope.json",
        "events/objects/monitron-v2-ndjson.json",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("cannot open events/objects/nope.json"));
    assert_eq!(ids_and_types(&output), expected_v2());
}

#[test]
fn wrong_settings_are_refused_before_any_work() {
    let output = e2b(&[
        "scan",
        "--topic-template",
        "a//b",
        "events/objects/monitron-v2-ndjson.json",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("level 2 is empty"));
    assert!(output.stdout.is_empty());
    let output = e2b(&["scan", "--format", "xml", "x"]);
    assert_eq!(output.status.code(), Some(2));
    let output = e2b(&["scan"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn oversized_records_are_skipped_with_their_offset() {
    let output = e2b(&[
        "scan",
        "--max-record-bytes",
        "1000",
        "events/objects/monitron-v2-ndjson.json",
    ]);
    assert!(output.status.success());
    let err = stderr(&output);
    // The real measurement record is longer than 1000 bytes; the transitions are not.
    assert!(err.contains("malformed record: events/objects/monitron-v2-ndjson.json at byte 0: record larger than the limit of 1000 bytes"), "{err}");
    assert_eq!(ids_and_types(&output), expected_v2());
}

#[test]
fn a_gzip_bomb_with_a_100_mib_line_is_skipped_and_what_follows_is_forwarded() {
    // 100 KiB of gzip holding a 100 MiB record: inflated as a stream, the record dropped as it
    // streams by (never held), the alarm after it forwarded.
    let output = e2b(&["scan", "events/objects/bomb-100MiB-line.json.gz"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("at byte 0: record larger than the limit of 1048576 bytes"),
        "{err}"
    );
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("\"id\":\"after-the-bomb\""), "{out}");
}

/// A conformance oracle: the CloudEvents SDK reads every payload `e2b scan` prints, for every
/// bundled object and with every optional selection on, and finds the same attributes.
#[test]
fn every_printed_payload_is_a_cloudevent_to_the_cloudevents_sdk() {
    use cloudevents::AttributesReader;
    let mut checked = 0;
    for object in [
        "events/objects/monitron-v1-pretty.json",
        "events/objects/monitron-v2-concatenated.json",
        "events/objects/monitron-v2-ndjson.json",
        "events/objects/monitron-v2-ndjson.json.gz",
        "events/objects/monitron-v2-user-closure.json",
        "events/objects/broken-records.json",
        "events/records/illustrative-v2-sensor-disconnected.json",
        "events/records/illustrative-v2-gateway-disconnected.json",
        "events/records/monitron-v2-measurement.json",
    ] {
        let output = e2b(&["scan", "--model-transitions", "--connectivity", object]);
        for line in stdout_lines(&output) {
            let event: cloudevents::Event = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("{object}: not a CloudEvent ({e}): {line}"));
            let ours: Value = serde_json::from_str(&line).expect("the payload is JSON");
            assert_eq!(event.specversion().as_str(), "1.0");
            assert_eq!(Some(event.id()), ours["id"].as_str(), "{line}");
            assert_eq!(Some(event.source().as_str()), ours["source"].as_str());
            assert_eq!(Some(event.ty()), ours["type"].as_str());
            assert_eq!(event.datacontenttype(), Some("application/json"));
            assert_eq!(
                event.time().map(|t| t.timestamp_millis()),
                ours["time"]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.timestamp_millis()),
                "{line}"
            );
            match event.data() {
                Some(cloudevents::Data::Json(data)) => assert_eq!(data, &ours["data"]),
                other => panic!("{object}: data is not JSON to the SDK: {other:?}"),
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked} payloads checked");
}

#[test]
fn the_state_selection_follows_the_forwarders_default_for_the_sap_envelope() {
    // The SAP sample's processor cannot tell an alarm from a recovery: with its envelope only a
    // change into NEEDS_MAINTENANCE goes, as the forwarder's FORWARD_STATES default says.
    let sample = "events/objects/monitron-v2-ndjson.json";
    let sap = payloads(&e2b(&["scan", "--format", "sap-e2b", sample]));
    assert!(sap.is_empty(), "{sap:?}");
    let all = payloads(&e2b(&[
        "scan", "--format", "sap-e2b", "--states", "all", sample,
    ]));
    assert_eq!(all.len(), 3);
    let alarms = e2b(&["scan", "--states", "ALARM", sample]);
    let ids: Vec<String> = ids_and_types(&alarms)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, ["e-200"]);
    let wrong = e2b(&["scan", "--states", "MAINTENANCE", sample]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("--states `MAINTENANCE` must be"));
}
