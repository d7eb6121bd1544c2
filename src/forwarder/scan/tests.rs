use super::*;
use crate::event::PayloadFormat;
use crate::monitron::test_samples::*;

fn local(path: &str) -> Origin {
    Origin::Local { path: path.into() }
}

fn scan_all(scanner: &mut Scanner, objects: &[(&str, String)]) -> Vec<Report> {
    let mut reports = Vec::new();
    for (path, body) in objects {
        let result = scanner.scan(&local(path), body.as_bytes(), |r| {
            reports.push(r);
            Ok::<(), ()>(())
        });
        assert!(result.is_ok(), "{path}");
    }
    reports
}

fn ids(reports: &[Report]) -> Vec<String> {
    reports
        .iter()
        .filter_map(|r| match r {
            Report::Event(e) => Some(e.id.clone()),
            Report::Problem(_) | Report::Measurement(_) => None,
        })
        .collect()
}

fn problems(reports: &[Report]) -> Vec<&Problem> {
    reports
        .iter()
        .filter_map(|r| match r {
            Report::Problem(p) => Some(p),
            Report::Event(_) | Report::Measurement(_) => None,
        })
        .collect()
}

#[test]
fn an_event_id_is_forwarded_once_per_object_and_per_invocation() {
    let mut scanner = Scanner::new(ScanConfig::default());
    let first = format!("{ALARM}{ALARM}\n{CLOSURE}");
    let second = format!("{CLOSURE}\n{ALARM}");
    let reports = scan_all(&mut scanner, &[("a", first), ("b", second)]);
    assert_eq!(ids(&reports), vec!["e-200", "e-201"]);
    let summary = scanner.summary();
    assert_eq!(
        (summary.forwarded, summary.duplicates, summary.records),
        (2, 3, 5)
    );

    // A new invocation forwards them again: Lambda's retries need that.
    let mut next = Scanner::new(ScanConfig::default());
    let reports = scan_all(&mut next, &[("b", format!("{CLOSURE}\n{ALARM}"))]);
    assert_eq!(ids(&reports), vec!["e-201", "e-200"]);
}

#[test]
fn the_same_event_id_in_another_project_is_another_event() {
    let mut scanner = Scanner::new(ScanConfig::default());
    let other = ALARM.replace("111122223333", "444455556666");
    let reports = scan_all(&mut scanner, &[("a", format!("{ALARM}\n{other}"))]);
    assert_eq!(ids(&reports), vec!["e-200", "e-200"]);
    assert_eq!(scanner.summary().duplicates, 0);
}

#[test]
fn broken_records_are_reported_and_the_rest_still_forwarded() {
    let mut scanner = Scanner::new(ScanConfig::default());
    let body = format!("{{\"eventId\":\"cut\",\"eventType\":\n{ALARM}\n@@@\n{CLOSURE}\n{{\"x\":");
    let reports = scan_all(&mut scanner, &[("dump.json", body)]);
    assert_eq!(ids(&reports), vec!["e-200", "e-201"]);
    let problems = problems(&reports);
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(
        problems
            .iter()
            .all(|p| p.object == "dump.json" && p.severity == Severity::Malformed)
    );
    assert_eq!(problems[0].offset, 0);
    let at_garbage = (30 + ALARM.len() + 1) as u64;
    assert_eq!(problems[1].offset, at_garbage);
    assert!(problems[2].reason.contains("truncated"), "{}", problems[2]);
    assert!(problems[1].to_string().starts_with(&format!(
        "malformed record: dump.json at byte {at_garbage}: not valid JSON"
    )));
    let s = scanner.summary();
    assert_eq!((s.records, s.forwarded, s.malformed), (5, 2, 3));
}

#[test]
fn every_record_is_counted_in_one_category() {
    let mut scanner = Scanner::new(ScanConfig::default());
    let wrapper = r#"{"attemptsMade":1,"ErrorCode":"x","rawData":"e30="}"#;
    let no_id = r#"{"eventType":"measurement","eventPayload":{}}"#;
    let body = [
        ALARM,
        ALARM,
        MEASUREMENT,
        V1_SAP,
        wrapper,
        "17",
        no_id,
        "{bad",
    ]
    .join("\n");
    let reports = scan_all(&mut scanner, &[("x", body)]);
    assert_eq!(ids(&reports), vec!["e-200", "409623"]);
    let s = scanner.summary();
    assert_eq!(s.records, 8);
    assert_eq!(s.forwarded, 2);
    assert_eq!(s.duplicates, 1);
    assert_eq!(s.not_forwarded, 1);
    assert_eq!(s.unrecognised, 2);
    assert_eq!(s.malformed, 2);
    assert_eq!(
        s.forwarded + s.duplicates + s.not_forwarded + s.unrecognised + s.malformed,
        s.records
    );
    assert_eq!(
        s.to_string(),
        "1 object (0 not read to the end), 8 records: 2 forwarded, 1 duplicate, 1 not forwarded, 2 unrecognised, 2 malformed, 0 warnings"
    );
}

#[test]
fn invalid_utf8_anywhere_in_a_record_makes_it_malformed() {
    let mut scanner = Scanner::new(ScanConfig::default());
    let mut body = ALARM
        .trim_end()
        .replacen('{', "{\"unknownField\":\"\u{1}\",", 1)
        .into_bytes();
    let at = body.iter().position(|b| *b == 1).unwrap_or(0);
    body[at] = 0xff;
    body.extend_from_slice(b"\n");
    body.extend_from_slice(CLOSURE.as_bytes());
    let mut reports = Vec::new();
    let result = scanner.scan(&local("u"), &body[..], |r| {
        reports.push(r);
        Ok::<(), ()>(())
    });
    assert!(result.is_ok());
    assert_eq!(ids(&reports), vec!["e-201"]);
    let problems = problems(&reports);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].reason, format!("invalid UTF-8 at byte {at}"));
}

#[test]
fn a_key_given_twice_makes_the_record_malformed_not_lost_silently() {
    let mut scanner = Scanner::new(ScanConfig::default());
    let body = format!(
        "{}\n{ALARM}",
        ALARM.replacen(
            "\"eventId\":\"e-200\"",
            "\"eventId\":\"e-1\",\"eventId\":\"e-2\"",
            1
        )
    );
    let reports = scan_all(&mut scanner, &[("d", body)]);
    assert_eq!(ids(&reports), vec!["e-200"]);
    let problems = problems(&reports);
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].reason.contains("duplicate field `eventId`"),
        "{}",
        problems[0]
    );
}

#[test]
fn unknown_event_types_are_warned_about_once() {
    let mut scanner = Scanner::new(ScanConfig::default());
    let odd = ALARM.replace("assetStateTransition", "batteryLow");
    let odd2 = odd.replace("e-200", "e-300");
    let reports = scan_all(&mut scanner, &[("o", format!("{odd}\n{odd2}"))]);
    let problems = problems(&reports);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].severity, Severity::Warning);
    assert!(problems[0].reason.contains("batteryLow"));
    assert_eq!(scanner.summary().not_forwarded, 2);
}

#[test]
fn events_come_in_the_configured_format() {
    let config = ScanConfig {
        events: crate::event::EventBuilder {
            format: PayloadFormat::SapE2b,
            ..Default::default()
        },
        ..ScanConfig::default()
    };
    let mut scanner = Scanner::new(config);
    let reports = scan_all(&mut scanner, &[("s", V1_SAP.to_string())]);
    let Some(Report::Event(event)) = reports.first() else {
        panic!("{reports:?}")
    };
    assert!(
        event
            .payload
            .starts_with("{\"data\":{\"SourceSystem\":\"sap-monitron\""),
        "{}",
        event.payload
    );
}

#[test]
fn an_error_from_the_caller_stops_the_scan() {
    let mut scanner = Scanner::new(ScanConfig::default());
    let body = format!("{ALARM}\n{CLOSURE}");
    let mut calls = 0;
    let result = scanner.scan(&local("s"), body.as_bytes(), |_| {
        calls += 1;
        Err("stdout closed")
    });
    assert!(matches!(
        result,
        Err(crate::forwarder::firehose::ObjectError::Stopped(
            "stdout closed"
        ))
    ));
    assert_eq!(calls, 1);
    assert_eq!(scanner.summary().objects_failed, 1);
}

#[test]
fn deep_nesting_is_neither_a_crash_nor_a_reason_to_lose_the_neighbours() {
    let mut scanner = Scanner::new(ScanConfig::default());
    let depth = 400_000;
    let deep_field = format!(
        "{{\"eventId\":\"deep\",\"x\":{}{}}}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let deep_top = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let deep_payload = ALARM.replacen(
        "\"siteName\"",
        &format!(
            "\"deep\":{}1{},\"siteName\"",
            "{\"a\":".repeat(1000),
            "}".repeat(1000)
        ),
        1,
    );
    let body = [deep_field.as_str(), &deep_top, &deep_payload, CLOSURE].join("\n");
    let reports = scan_all(&mut scanner, &[("deep", body)]);
    // A deeply nested unknown field does not spoil a good record; the others are valid JSON but
    // not Monitron. Nothing recurses on the stack, so no depth is too deep.
    assert_eq!(ids(&reports), vec!["e-200", "e-201"]);
    let s = scanner.summary();
    assert_eq!(s.records, 4);
    assert_eq!((s.unrecognised, s.malformed), (2, 0), "{reports:?}");
}
