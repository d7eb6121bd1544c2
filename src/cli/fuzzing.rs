//! The fuzz targets' bodies (`fuzz/`, `cargo fuzz run <target>`; `e2b::fuzzing`), beside the
//! CLI because, like it, they drive both paths from outside. Kept in the library so that
//! `tests/it/fuzz_regressions.rs` runs every corpus input and crash reproducer through the very
//! same code on the stable toolchain, in CI. Each one feeds untrusted bytes to a parser and
//! checks what must hold whatever the input: no panic, and the invariants named below.

use serde_json::Value;

use crate::event::Origin;
use crate::forwarder::firehose::DecodeOptions;
use crate::forwarder::scan::{Report, ScanConfig, Scanner};
use crate::processor::delivery::{self, Delivery};
use crate::processor::rules::RuleSet;
use crate::processor::rules::template::{JsonTemplate, Template};

fn scan(data: &[u8], chunk_bytes: usize) -> (Vec<String>, crate::forwarder::scan::Summary) {
    let config = ScanConfig {
        decode: DecodeOptions {
            max_record_bytes: 4096,
            chunk_bytes,
        },
        measurements: true,
        ..ScanConfig::default()
    };
    let mut scanner = Scanner::new(config);
    let mut seen = Vec::new();
    let origin = Origin::Local {
        path: "fuzz".into(),
    };
    let ended = scanner.scan(&origin, data, |report| {
        seen.push(match report {
            Report::Event(e) => format!("event {}", e.payload),
            Report::Problem(p) => format!("problem {} {}", p.offset, p.reason),
            Report::Measurement(m) => format!("point {} {:?}", m.0.source, m.1),
        });
        Ok::<(), ()>(())
    });
    seen.push(format!("end {}", ended.is_ok()));
    (seen, scanner.summary())
}

/// Object decoding (gzip or not, any framing): the same reports whatever the chunk size, and
/// the counts add up.
pub fn firehose_object(data: &[u8]) {
    let (small, summary) = scan(data, 61);
    let (large, _) = scan(data, 64 * 1024);
    let corrupt_gzip = data.starts_with(&[0x1f, 0x8b]) && small.last() == Some(&"end false".into());
    if corrupt_gzip {
        // Inflate reports a corrupt stream without the bytes of its last call (at most 16 KiB
        // is asked at once): the larger reads may forward fewer events, never other ones.
        let events = |r: &[String]| {
            r.iter()
                .filter(|l| l.starts_with("event"))
                .cloned()
                .collect::<Vec<_>>()
        };
        let (small, large) = (events(&small), events(&large));
        assert!(
            small.starts_with(&large),
            "different events: {small:?} / {large:?}"
        );
    } else {
        assert_eq!(small, large, "the reports depend on the chunk size");
    }
    assert!(summary.forwarded + summary.malformed <= summary.records);
}

/// A Monitron record, as the SAP envelope carries it: recognised and classified as the
/// forwarder does, built into the CloudEvent, and that read back by the processor. Whatever the
/// forwarder forwards, the processor must understand.
pub fn monitron_record(data: &[u8]) {
    let mut envelope = br#"{"data":{"BUCKETId":"fuzz-bucket","eventData":"#.to_vec();
    envelope.extend_from_slice(data);
    envelope.extend_from_slice(b"}}");
    if let Ok(Delivery::Event(event)) = delivery::parse(&envelope) {
        assert!(!event.id.is_empty());
        assert!(event.event_type.starts_with("com.amazon.monitron."));
    }
}

/// A Lambda invocation's event for the forwarder (S3, EventBridge, SNS, SQS envelopes, and a
/// Kinesis batch, whose records' data is decoded as the stream path decodes it).
pub fn trigger(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let Ok(crate::forwarder::trigger::Trigger::Stream(records)) =
        crate::forwarder::trigger::parse(&value)
    {
        let mut scanner = Scanner::new(ScanConfig::default());
        for record in records {
            let Ok(bytes) = &record.data else { continue };
            let origin = Origin::Kinesis {
                stream: record.stream.clone(),
                shard: record.shard.clone(),
                sequence_number: record.sequence_number.clone(),
            };
            let _ = scanner.scan(&origin, bytes.as_slice(), |_| Ok::<(), ()>(()));
        }
    }
}

/// A processor delivery: parsed, decided under the bundled rules, notification content built.
pub fn delivery(data: &[u8]) {
    let Ok(Delivery::Event(event)) = delivery::parse(data) else {
        return;
    };
    let Ok(rules) = RuleSet::bundled() else {
        panic!("the bundled rules do not load");
    };
    let scope = event.template_scope();
    for rule in rules.decide(&event) {
        let identity = crate::processor::identity_for(&event, rule, &rules);
        if let Ok(n) =
            crate::processor::notification_for(&event, &rule.params, &identity, &rules, &scope)
        {
            assert!(n.external_reference.len() == 20);
            let _ = n.body();
        }
    }
    let _ = crate::processor::recovery_note(&event);
}

/// A rule file: checked; when accepted, every template of every step renders against a sample
/// event (or fails with a reason), and the decisions run.
pub fn rule_file(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(rules) = RuleSet::parse("fuzz.toml", &text) else {
        return;
    };
    let sample = br#"{"specversion":"1.0","id":"e-1","source":"monitron/1/P","type":"com.amazon.monitron.asset.alert","time":"2024-03-01T09:00:00Z","data":{"project":"P","site":"S","asset":"A","position":"X","state":{"new":"ALARM","previous":"HEALTHY"}}}"#;
    let Ok(Delivery::Event(event)) = delivery::parse(sample) else {
        panic!("the sample event does not parse");
    };
    let scope = event.template_scope();
    let _ = rules.decide(&event);
    for action in &rules.actions {
        for step in &action.steps {
            if let crate::processor::rules::actions::StepKind::Http(call)
            | crate::processor::rules::actions::StepKind::Sbpa { call, .. } = &step.kind
            {
                let _ = call.path.render_path(&scope);
                let _ = call.body.as_ref().map(|b| b.render(&scope));
                for (_, header) in &call.headers {
                    let _ = header.render_header(&scope);
                }
            }
        }
    }
}

/// A template and a scope (split at the first NUL byte): every rendering either works or
/// names its problem, a header never holds a line break, and a JSON rendering is valid JSON.
pub fn template(data: &[u8]) {
    let (text, scope) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let text = String::from_utf8_lossy(text);
    let scope: Value = serde_json::from_slice(scope).unwrap_or_else(|_| {
        serde_json::json!({"event": {"id": "e\"1\n", "data": {"a": [1, {"b": null}], "s": "Süd/.."}},
            "steps": {"x": {"Result": [{"y": 2.5}]}}})
    });
    let Ok(template) = Template::parse(&text) else {
        return;
    };
    let _ = template.render_text(&scope);
    let _ = template.render_path(&scope);
    if let Ok(header) = template.render_header(&scope) {
        assert!(!header.contains(['\r', '\n']));
    }
    if let Ok(body) = JsonTemplate::compile(&serde_json::json!({"t": text}))
        && let Ok(value) = body.render(&scope)
    {
        let wire = value.to_string();
        if let Err(e) = serde_json::from_str::<Value>(&wire) {
            panic!("a rendered body is not JSON: {e}: {wire}");
        }
    }
}
