//! One alert, one trace (issue 31): the trace id the forwarder puts in the published CloudEvent
//! (attribute and publish header) is the one on every S/4 request the processor makes for it,
//! and on the processor's log lines about it; a malformed incoming `traceparent` starts the
//! alert's own trace, logged once, never refused. Real parts: the forwarder over moto's S3 and
//! Secrets Manager and the Solace test broker, whose REST Delivery Point pushes to the processor
//! binary under `cargo lambda watch`, acting on the S/4 test server.

use serde_json::{Value, json};

use crate::forwarder::{Fixture, soon};
use crate::support::lambda_watch::watch;
use crate::support::moto;
use crate::support::s4::TestS4;
use e2b::trace::TraceParent;

const ALARM: &str =
    include_str!("../../events/records/illustrative-v2-asset-state-transition-alarm.json");
const S4_USER: &str = "E2B_TECH_USER";
const S4_PASSWORD: &str = "s4-trace-s3cret";
const RDP_PASSWORD: &str = "rdp-trace-s3cret";

fn trace_id_of(traceparent: &str) -> String {
    TraceParent::parse(traceparent)
        .map(|t| t.trace_id())
        .unwrap_or_else(|e| panic!("{traceparent}: {e}"))
}

/// The trace ids of S/4's requests since the `from`-th; every one must carry a trace.
fn s4_trace_ids(s4: &TestS4, from: usize) -> Vec<String> {
    s4.traceparents()[from..]
        .iter()
        .map(|t| trace_id_of(t.as_deref().unwrap_or("a request without traceparent")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_keeps_its_trace_id_from_the_s3_object_to_the_s4_requests() {
    let s4 = TestS4::start(S4_USER, S4_PASSWORD).await;
    let env = processor_env(&s4, vec![]).await;
    let log_path = std::env::temp_dir().join(format!("e2b-trace-watch-{}.log", std::process::id()));
    let watch_log = log_path.clone();
    let lambda = tokio::task::spawn_blocking(move || watch("processor", &env, &watch_log))
        .await
        .expect("lambda (watch)");
    let url = format!("http://127.0.0.1:{}/lambda-url/processor/", lambda.port);

    // Forwarded from an S3 object: the attribute and the publish request's header agree.
    let f = Fixture::new().await;
    let key = "project=Plant A/site=Site 1/time=2024-03-01 00:00:00/trace.json";
    f.put(key, ALARM.as_bytes()).await;
    f.forwarder()
        .handle(&f.s3_event(&[key]), soon())
        .await
        .expect("forwarded");
    let stored = f.broker.stored();
    assert_eq!(stored.len(), 1, "one alert");
    let published: Value = serde_json::from_str(&stored[0].body).unwrap_or_default();
    let attribute = published["traceparent"].as_str().unwrap_or_default();
    assert_eq!(stored[0].header("traceparent"), Some(attribute));
    let trace_id = trace_id_of(attribute);
    assert_eq!(
        trace_id,
        TraceParent::for_alert("monitron/111122223333/Plant%20A", "e-200").trace_id(),
        "an alert's trace comes from its identity"
    );

    // The broker's RDP pushes it (no trace header: the event carries its own).
    let answers = f.broker.push(&url, "rdp", RDP_PASSWORD).await;
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );
    assert_eq!(s4.notifications().len(), 1);
    let first = s4_trace_ids(&s4, 0);
    assert!(!first.is_empty());
    assert!(
        first.iter().all(|t| *t == trace_id),
        "{first:?} against {trace_id}"
    );
    let spans: std::collections::HashSet<Option<String>> = s4.traceparents().into_iter().collect();
    assert_eq!(
        spans.len(),
        first.len(),
        "each S/4 request is a span of its own"
    );

    // Malformed trace contexts start the alert's own trace; never a 4xx or 5xx for them.
    let client = reqwest::Client::new();
    let malformed = [
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_string(),
        format!("00-{}-00f067aa0ba902b7-01", "0".repeat(32)),
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0".to_string(),
        "x".repeat(10_000),
    ];
    for (n, value) in malformed.iter().enumerate() {
        let id = format!("e-trace-{n}");
        let mut event = published.clone();
        event["id"] = json!(id);
        event["traceparent"] = json!(value);
        let before = s4.traceparents().len();
        let answer = client
            .post(&url)
            .basic_auth("rdp", Some(RDP_PASSWORD))
            .header("content-type", "application/json")
            .body(event.to_string())
            .send()
            .await
            .expect("delivered");
        let status = answer.status().as_u16();
        assert_eq!(
            status,
            200,
            "{value:.60}: {}",
            answer.text().await.unwrap_or_default()
        );
        let own = TraceParent::for_alert("monitron/111122223333/Plant%20A", &id).trace_id();
        let ids = s4_trace_ids(&s4, before);
        assert!(
            !ids.is_empty() && ids.iter().all(|t| *t == own),
            "{value:.60}: {ids:?}"
        );
    }
    // Without the attribute, the push's header is continued.
    let header = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let mut event = published.clone();
    event["id"] = json!("e-trace-header");
    event.as_object_mut().map(|e| e.remove("traceparent"));
    let before = s4.traceparents().len();
    let answer = client
        .post(&url)
        .basic_auth("rdp", Some(RDP_PASSWORD))
        .header("content-type", "application/json")
        .header("traceparent", header)
        .body(event.to_string())
        .send()
        .await
        .expect("delivered");
    assert_eq!(answer.status().as_u16(), 200);
    let ids = s4_trace_ids(&s4, before);
    assert!(
        !ids.is_empty() && ids.iter().all(|t| t == "0af7651916cd43dd8448eb211c80319c"),
        "{ids:?}"
    );

    drop(lambda);
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    crate::support::show_log(&log);
    let _ = std::fs::remove_file(&log_path);
    let records: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    // Every log line about the alert carries its trace id.
    let about = |id: &str| -> Vec<&Value> {
        records
            .iter()
            .filter(|r| r.pointer("/fields/event_id").and_then(Value::as_str) == Some(id))
            .collect()
    };
    let alert = about("e-200");
    assert!(!alert.is_empty(), "no log line about e-200:\n{log}");
    for record in alert {
        assert_eq!(
            record.pointer("/span/trace_id").and_then(Value::as_str),
            Some(trace_id.as_str()),
            "{record}"
        );
    }
    // Each malformed value is said once.
    for n in 0..malformed.len() {
        let said = about(&format!("e-trace-{n}"))
            .into_iter()
            .filter(|r| {
                r.pointer("/fields/message")
                    .and_then(Value::as_str)
                    .is_some_and(|m| m.contains("not W3C Trace Context"))
            })
            .count();
        assert_eq!(said, 1, "e-trace-{n}:\n{log}");
    }
    assert!(
        !log.contains(&"x".repeat(300)),
        "a 10 kB value reached the log"
    );
}

/// The processor's (or forwarder's) environment for a Lambda under `cargo lambda watch`.
fn aws_env(extra: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("AWS_ENDPOINT_URL", moto::endpoint().to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_ACCESS_KEY_ID", "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_string()),
    ];
    env.extend(extra);
    env
}

/// The processor's environment: S/4 and the delivery credentials in new secrets on moto, and
/// `extra`.
async fn processor_env(
    s4: &TestS4,
    extra: Vec<(&'static str, String)>,
) -> Vec<(&'static str, String)> {
    let secrets = moto::secrets().await;
    let (s4_login, rdp) = (moto::unique("s4-login"), moto::unique("rdp-login"));
    let logins = [
        (
            &s4_login,
            json!({"username": S4_USER, "password": S4_PASSWORD}),
        ),
        (&rdp, json!({"username": "rdp", "password": RDP_PASSWORD})),
    ];
    for (name, value) in logins {
        moto::create_secret(&secrets, name, &value.to_string()).await;
    }
    let mut env = aws_env(vec![
        ("S4_BASE_URL", s4.service_url()),
        ("S4_CREDENTIALS_SECRET", s4_login),
        ("PROCESSOR_AUTH", "basic".to_string()),
        ("PROCESSOR_CREDENTIALS_SECRET", rdp),
        ("AWS_LAMBDA_LOG_LEVEL", "INFO".to_string()),
    ]);
    env.extend(extra);
    env
}

/// With a collector (OTLP/HTTP protobuf), one alert is one trace: the forwarder's publish span,
/// the processor's delivery span its child, the S/4 requests' spans the delivery's children, each
/// S/4 request's `traceparent` naming its own span.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_collector_one_alert_is_one_parent_linked_trace() {
    use crate::support::broker::TestBroker;
    use crate::support::otlp::TestCollector;
    let collector = TestCollector::start().await;
    let s4 = TestS4::start(S4_USER, S4_PASSWORD).await;
    let broker = TestBroker::start("aem", "aem-trace-s3cret").await;
    let s3 = moto::s3().await;
    let secrets = moto::secrets().await;
    let bucket = moto::unique("trace-export");
    assert!(s3.create_bucket().bucket(&bucket).send().await.is_ok());
    let aem = moto::unique("aem");
    let login = json!({"username": "aem", "password": "aem-trace-s3cret"}).to_string();
    moto::create_secret(&secrets, &aem, &login).await;
    let key = "project=Plant A/site=Site 1/time=2024-03-01 00:00:00/monitron-v2-ndjson.json.gz";
    let object = include_bytes!("../../events/objects/monitron-v2-ndjson.json.gz").to_vec();
    moto::put(&s3, &bucket, key, object).await;
    let otel = ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url.clone());

    let forwarder_env = aws_env(vec![
        ("AEM_REST_URL", broker.url.clone()),
        ("AEM_CREDENTIALS_SECRET", aem),
        ("S3_FORCE_PATH_STYLE", "true".to_string()),
        otel.clone(),
    ]);
    let episodes = moto::idempotency_store().await;
    let table = ("IDEMPOTENCY_TABLE", episodes.table.clone());
    let processor_env = processor_env(&s4, vec![table, otel]).await;
    let logs = std::env::temp_dir().join(format!("e2b-otel-{}", std::process::id()));
    let (forwarder_log, processor_log) =
        (logs.with_extension("f.log"), logs.with_extension("p.log"));
    let (fl, pl) = (forwarder_log.clone(), processor_log.clone());
    let forwarder = tokio::task::spawn_blocking(move || watch("forwarder", &forwarder_env, &fl))
        .await
        .expect("forwarder (watch)");
    let processor = tokio::task::spawn_blocking(move || watch("processor", &processor_env, &pl))
        .await
        .expect("processor (watch)");

    let mut event: Value =
        serde_json::from_str(include_str!("../../events/s3/s3-object-created.json"))
            .unwrap_or(Value::Null);
    event["Records"][0]["s3"]["bucket"]["name"] = json!(bucket);
    let forwarder = std::sync::Arc::new(forwarder);
    let invoked = forwarder.clone();
    let (ok, output) = tokio::task::spawn_blocking(move || {
        crate::support::lambda_watch::invoke(&invoked, "forwarder", &event)
    })
    .await
    .expect("invoke in the test set-up");
    assert!(ok, "{output}");
    let url = format!("http://127.0.0.1:{}/lambda-url/processor/", processor.port);
    let answers = broker.push(&url, "rdp", RDP_PASSWORD).await;
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );

    let alert = TraceParent::for_alert("monitron/111122223333/Plant%20A", "e-200").trace_id();
    let published = broker
        .stored()
        .into_iter()
        .find(|m| m.header("Solace-Message-ID") == Some("e-200"))
        .expect("e-200 published");
    let sent = TraceParent::parse(published.header("traceparent").unwrap_or_default())
        .expect("a traceparent header");
    let payload: Value = serde_json::from_str(&published.body).unwrap_or_default();
    assert_eq!(
        payload["traceparent"],
        json!(sent.to_string()),
        "attribute = header"
    );
    assert_eq!(sent.trace_id(), alert);

    // Spans are exported at the end of each invocation: wait for the processor's.
    let mut spans = Vec::new();
    for _ in 0..100 {
        spans = collector.spans();
        let s4_spans = spans
            .iter()
            .filter(|s| s.trace_id == alert && s.name.starts_with("S/4"))
            .count();
        if s4_spans > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    drop(processor);
    drop(forwarder);
    for log in [&forwarder_log, &processor_log] {
        crate::support::show_log(&std::fs::read_to_string(log).unwrap_or_default());
        let _ = std::fs::remove_file(log);
    }
    let trace: Vec<_> = spans.iter().filter(|s| s.trace_id == alert).collect();
    let publish = trace
        .iter()
        .find(|s| s.name.starts_with("publish"))
        .unwrap_or_else(|| panic!("no publish span in {trace:#?}"));
    assert_eq!(
        publish.span_id,
        sent.span_id(),
        "the traceparent sent is the publish span's"
    );
    assert!(publish.service.contains("e2b-forwarder"), "{publish:?}");
    assert_eq!(
        publish.links.len(),
        1,
        "linked to its invocation: {publish:?}"
    );
    let delivery = trace
        .iter()
        .find(|s| s.name == "alert" && s.parent_span_id == publish.span_id)
        .unwrap_or_else(|| panic!("no delivery span under the publish span in {trace:#?}"));
    assert!(delivery.service.contains("e2b-processor"), "{delivery:?}");
    let requests: Vec<_> = trace.iter().filter(|s| s.name.starts_with("S/4")).collect();
    assert!(!requests.is_empty(), "{trace:#?}");
    assert!(
        requests
            .iter()
            .all(|s| s.parent_span_id == delivery.span_id),
        "{requests:#?}"
    );
    let sent_to_s4: Vec<String> = s4
        .traceparents()
        .into_iter()
        .flatten()
        .filter_map(|t| TraceParent::parse(&t).ok())
        .filter(|t| t.trace_id() == alert)
        .map(|t| t.span_id())
        .collect();
    assert_eq!(sent_to_s4.len(), requests.len());
    for span_id in &sent_to_s4 {
        assert!(
            requests.iter().any(|s| s.span_id == *span_id),
            "{span_id} is no S/4 span"
        );
    }
    // The episode table's calls are the AWS SDK's operation spans, in the alert's trace under
    // its delivery.
    let below_delivery = |span: &crate::support::otlp::Received| {
        let mut parent = span.parent_span_id.clone();
        for _ in 0..10 {
            if parent == delivery.span_id {
                return true;
            }
            match trace.iter().find(|s| s.span_id == parent) {
                Some(up) => parent = up.parent_span_id.clone(),
                None => return false,
            }
        }
        false
    };
    let table_calls: Vec<_> = trace
        .iter()
        .filter(|s| s.name.starts_with("DynamoDB."))
        .collect();
    assert!(!table_calls.is_empty(), "no DynamoDB span in {trace:#?}");
    assert!(
        table_calls.iter().all(|s| below_delivery(s)),
        "{table_calls:#?}"
    );
    assert_eq!(collector.refused(), 0);
}

/// Operators find an alert by its trace id: `e2b episodes --events` lists each remembered
/// event's, the console's search finds its position by it and the position's timeline shows it;
/// a failure record keeps the trace it was processed in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_find_an_alert_by_its_trace_id() {
    use crate::alarms::{S4_PASSWORD, S4_USER, container, deliver, event, rules};
    let s4 = TestS4::start(S4_USER, S4_PASSWORD).await;
    let table = moto::idempotency_store().await;
    let processor = container(&s4, &table, rules(""), None);
    let carried = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let mut alarm: Value =
        serde_json::from_str(&event("Site 9", 1, 0, "ALARM", "HEALTHY")).unwrap_or_default();
    alarm["traceparent"] = json!(carried);
    let (answer, _) = deliver(&processor, &alarm.to_string()).await;
    assert_eq!(answer["results"][0]["status"], "COMPLETE", "{answer}");
    let recovery = event("Site 9", 1, 30, "HEALTHY", "ALARM");
    deliver(&processor, &recovery).await;
    let own = TraceParent::for_alert("monitron/111122223333/Plant%20A", "Site-9-1-HEALTHY-30");

    let listed = crate::support::cli::e2b(
        vec![
            "episodes".into(),
            "--all".into(),
            "--events".into(),
            "--table".into(),
            table.table.clone(),
        ],
        vec![],
    )
    .await;
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(
        listed.contains("Site-9-1-ALARM-0  ALARM  trace 0af7651916cd43dd8448eb211c80319c"),
        "{listed}"
    );
    assert!(
        listed.contains(&format!("HEALTHY  trace {}", own.trace_id())),
        "{listed}"
    );

    let console = crate::support::browser::ConsoleProcess::start(vec![(
        "IDEMPOTENCY_TABLE",
        table.table.clone(),
    )])
    .await;
    let token = console.url.rsplit("token=").next().unwrap_or_default();
    let get = |path: String| {
        let cookie = format!("e2b_console={token}");
        async move {
            reqwest::Client::new()
                .get(path)
                .header("Cookie", cookie)
                .send()
                .await
                .expect("the console answers")
                .text()
                .await
                .unwrap_or_default()
        }
    };
    let found = get(format!(
        "{}/search?q=0af7651916cd43dd8448eb211c80319c",
        console.origin
    ))
    .await;
    assert!(
        found.contains("the trace of event Site-9-1-ALARM-0"),
        "{found}"
    );
    assert!(
        found.contains("alert&#x27;s way") || found.contains("alert's way"),
        "{found}"
    );
    assert!(found.contains("Site 9 / Pump 001 / Motor 001"), "{found}");
    let key = found
        .split("/position?key=")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_string();
    let page = get(format!("{}/position?key={key}", console.origin)).await;
    assert!(page.contains(&own.trace_id()), "{page}");
    assert!(page.contains("0af7651916cd43dd8448eb211c80319c"), "{page}");
    let nothing = get(format!("{}/search?q={}", console.origin, "1".repeat(32))).await;
    assert!(!nothing.contains("the trace of event"), "{nothing}");
    assert!(!nothing.contains("Pump 001"), "{nothing}");
}
