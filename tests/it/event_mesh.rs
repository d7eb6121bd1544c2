//! SAP Event Mesh as the broker (issue 22), against real peers: S3, Secrets Manager, SQS and
//! DynamoDB on moto server, the Event Mesh test peer (`messagingrest`, token endpoint, webhook
//! subscriptions), the processor served over HTTP and the S/4 OData test server.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_json::Value;

use crate::forwarder::{Fixture, S3Forwarder, alarms, soon};
use crate::support::broker::{FixedSecret, TestBroker};
use crate::support::endpoint::ProcessorEndpoint;
use crate::support::event_mesh::{MAX_MESSAGE_BYTES, Reply, TestEventMesh};
use crate::support::s4::TestS4;
use crate::support::{cli, moto};
use e2b::aws::records::FailureSink;
use e2b::aws::secrets::{CachedCredentials, SecretLayout};
use e2b::broker::{Broker, BrokerConfig, EventMeshRest, Message, PublishError, Publisher};
use e2b::forwarder::refusals::RefusedEvent;
use e2b::forwarder::trigger::KeyFilter;
use e2b::http::retry::Backoff;
use e2b::processor::rules::source::RuleSource;
use e2b::processor::{InboundAuth, Processor, ProcessorSettings};

const NAMESPACE: &str = "acme/plant/monitron";
/// Service key clients look like this: `!` and `|` in the id, `$ + / =` in the secret.
const CLIENT_ID: &str = "sb-clone-em!b2436|xbem-service-broker!b2436";
const CLIENT_SECRET: &str = "s3cret$Hq+e/Zk=";
const QUEUE: &str = "acme/plant/monitron/alerts";
const WEBHOOK: (&str, &str) = ("em-webhook", "webhook-s3cret");

fn event_mesh_config(queue: Option<&str>) -> BrokerConfig {
    BrokerConfig {
        broker: Broker::EventMesh(EventMeshRest {
            queue: queue.map(str::to_string),
        }),
        request_timeout: Duration::from_millis(800),
        retry: Backoff {
            base: Duration::from_millis(10),
            cap: Duration::from_millis(100),
            attempts: 5,
        },
    }
}

/// Event Mesh with a queue subscribed to our topics, and moto holding its service key.
async fn setup() -> (TestEventMesh, Fixture) {
    let em = TestEventMesh::start(NAMESPACE, CLIENT_ID, CLIENT_SECRET).await;
    em.create_queue(QUEUE, &[&format!("{NAMESPACE}/monitron/*")]);
    // The AEM test broker of the fixture is not used: every publish goes to Event Mesh.
    let unused = TestBroker::start("unused", "unused").await;
    let f = Fixture::with_broker(unused, em.service_key()).await;
    (em, f)
}

fn forwarder(f: &Fixture, queue: Option<&str>, concurrency: usize) -> S3Forwarder {
    f.forwarder_reading(
        event_mesh_config(queue),
        concurrency,
        &f.secret,
        SecretLayout::EventMeshServiceKey,
        KeyFilter::default(),
    )
}

/// A Firehose object through Event Mesh with its token revoked after `revoke_after` messages,
/// `concurrency` publishes at a time: what the property below checks.
async fn once_per_alert_with_a_revoked_token(
    alerts: usize,
    revoke_after: usize,
    concurrency: usize,
) {
    let (em, f) = setup().await;
    f.put("2024/03/01/export.json", alarms("em", alerts).as_bytes())
        .await;
    em.revoke_tokens_after(revoke_after);
    let result = forwarder(&f, None, concurrency)
        .handle(&f.s3_event(&["2024/03/01/export.json"]), soon())
        .await;
    let Ok(summary) = result else {
        panic!("not forwarded: {result:?}")
    };
    assert_eq!(
        summary["delivered"].as_u64(),
        Some(alerts as u64),
        "{summary}"
    );

    let accepted = em.accepted_counts();
    assert_eq!(accepted.len(), alerts, "every event once: {accepted:?}");
    assert!(accepted.values().all(|n| *n == 1), "{accepted:?}");
    assert_eq!(
        em.token_requests(),
        2,
        "one token, and one more after the revocation, however many publishes saw the 401"
    );
    for message in em.published() {
        assert_eq!(message.kind, "topics");
        assert!(
            message
                .destination
                .starts_with(&format!("{NAMESPACE}/monitron/asset/alert/ALARM/")),
            "{}",
            message.destination
        );
        assert_eq!(message.headers.get("x-qos").map(String::as_str), Some("1"));
        assert_eq!(
            message.headers.get("content-type").map(String::as_str),
            Some("application/json")
        );
        let event: Value = serde_json::from_str(&message.body).unwrap_or_default();
        assert_eq!(event["specversion"], "1.0", "{}", message.body);
    }
    assert_eq!(
        em.depth(QUEUE),
        alerts,
        "the queue's subscription took them all"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    /// Tokens revoked again and again, every 1 to 50 messages, 1 to 16 publishes at a time: one
    /// invocation publishes the whole object, every alert once.
    #[test]
    fn a_token_revoked_again_and_again_is_replaced_each_time(
        every in 1usize..51,
        concurrency in 1usize..17,
    ) {
        crate::support::runtime(true)
            .block_on(one_invocation_whenever_tokens_are_revoked(200, every, concurrency));
    }

    /// Whenever the token is revoked mid-object and however many publishes are in flight,
    /// every alert is one message, and one new token serves them all.
    #[test]
    fn an_object_becomes_one_event_mesh_message_per_alert_whenever_the_token_is_revoked(
        alerts in 2usize..60,
        revoke_at in 0.0f64..1.0,
        concurrency in 1usize..17,
    ) {
        let revoke_after = 1 + ((alerts - 1) as f64 * revoke_at) as usize % (alerts - 1);
        crate::support::runtime(true)
            .block_on(once_per_alert_with_a_revoked_token(alerts, revoke_after, concurrency));
    }
}

/// Issue 29: tokens that worked and were then revoked (each after `every` messages), with
/// `concurrency` publishes at a time: the whole object in one invocation, every alert once, one
/// token request per token used up, and the secret read once.
async fn one_invocation_whenever_tokens_are_revoked(
    alerts: usize,
    every: usize,
    concurrency: usize,
) {
    let (em, f) = setup().await;
    f.put("2024/03/01/export.json", alarms("rv", alerts).as_bytes())
        .await;
    em.revoke_every_token_after(every);
    let result = forwarder(&f, None, concurrency)
        .handle(&f.s3_event(&["2024/03/01/export.json"]), soon())
        .await;
    let Ok(summary) = result else {
        panic!("not forwarded in one invocation: {result:?}")
    };
    assert_eq!(
        summary["delivered"].as_u64(),
        Some(alerts as u64),
        "{summary}"
    );
    let accepted = em.accepted_counts();
    assert_eq!(accepted.len(), alerts, "every event: {accepted:?}");
    assert!(accepted.values().all(|n| *n == 1), "once: {accepted:?}");
    assert_eq!(
        em.token_requests() as usize,
        alerts.div_ceil(every),
        "a new token for each one used up, one request however many publishes saw the 401"
    );
}

/// The issue's case: each token revoked after 7 messages, a 334-event object, 16 at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_revoked_every_seven_messages_cost_no_invocation() {
    one_invocation_whenever_tokens_are_revoked(334, 7, 16).await;
}

/// A token endpoint whose tokens the broker never accepts (a key of another instance): the
/// invocation fails within seconds, naming the secret, after two token requests (the first,
/// and one after reading the secret again), never one per event; nothing is marked done, so
/// the retry, once the tokens are good, publishes every alert once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_never_accepted_fail_the_invocation_fast_by_name_with_two_token_requests() {
    let (em, f) = setup().await;
    let (dynamodb, table) = moto::table("em-refused").await;
    let ledger = || e2b::forwarder::ledger::Ledger {
        client: dynamodb.clone(),
        table: table.clone(),
        keep: Duration::from_secs(3600),
    };
    f.put("never.json", alarms("nv", 40).as_bytes()).await;
    em.refuse_every_token(true);
    let started = Instant::now();
    let result = forwarder(&f, None, 16)
        .with_ledger(Some(ledger()))
        .handle(&f.s3_event(&["never.json"]), soon())
        .await;
    let took = started.elapsed();
    let text = format!("{result:?}");
    assert!(result.is_err(), "{text}");
    assert!(took < Duration::from_secs(5), "{took:?}: {text}");
    assert!(
        em.token_requests() <= 2,
        "{} token requests",
        em.token_requests()
    );
    assert!(
        text.contains(&format!("secret {}", f.secret)) && text.contains("401"),
        "{text}"
    );
    assert!(!text.contains(CLIENT_SECRET), "{text}");
    assert!(em.published().is_empty());
    em.refuse_every_token(false);
    let retried = forwarder(&f, None, 16)
        .with_ledger(Some(ledger()))
        .handle(&f.s3_event(&["never.json"]), soon())
        .await;
    assert!(retried.is_ok(), "{retried:?}");
    let accepted = em.accepted_counts();
    assert_eq!(accepted.len(), 40);
    assert!(accepted.values().all(|n| *n == 1), "{accepted:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_takes_every_message_when_configured() {
    let (em, f) = setup().await;
    f.put("q.json", alarms("q", 3).as_bytes()).await;
    let result = forwarder(&f, Some(QUEUE), 4)
        .handle(&f.s3_event(&["q.json"]), soon())
        .await;
    assert!(result.is_ok(), "{result:?}");
    let published = em.published();
    assert_eq!(published.len(), 3);
    assert!(
        published
            .iter()
            .all(|m| m.kind == "queues" && m.destination == QUEUE)
    );
}

/// 400, 403 and 413 are refusals, recorded per event with Event Mesh's reason; 429 and 5xx are
/// retried until accepted; Event Mesh's own 1 MB limit is a refusal too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_recorded_with_event_mesh_s_reason_and_the_rest_retried() {
    let (em, f) = setup().await;
    let (sqs, queue_url) = moto::queue("em-refusals").await;
    let sink = Arc::new(FailureSink::Sqs {
        client: sqs,
        queue_url: queue_url.clone(),
    });
    f.put("r.json", alarms("r", 6).as_bytes()).await;
    em.script("r-0000", vec![Reply::Status(400, "Bad Request")]);
    em.script("r-0001", vec![Reply::Status(403, "Forbidden")]);
    em.script("r-0002", vec![Reply::Status(413, "Payload Too Large")]);
    em.script(
        "r-0003",
        vec![
            Reply::Status(503, "Service Unavailable"),
            Reply::Status(429, "Too Many Requests"),
        ],
    );
    em.script("r-0004", vec![Reply::Status(500, "Internal Server Error")]);
    let result = forwarder(&f, None, 4)
        .with_refusals(Some(sink.clone()))
        .handle(&f.s3_event(&["r.json"]), soon())
        .await;
    let Ok(summary) = result else {
        panic!("refusals failed the invocation: {result:?}")
    };
    assert_eq!(
        (summary["delivered"].as_u64(), summary["refused"].as_u64()),
        (Some(3), Some(3)),
        "{summary}"
    );
    let found = match sink.list::<RefusedEvent>(100, 0).await {
        Ok(found) => found,
        Err(e) => panic!("reading the refusals: {e}"),
    };
    let refusals: HashMap<String, (u16, String)> = found
        .into_iter()
        .map(|f| {
            (
                f.record.event_id.clone(),
                (f.record.status, f.record.reason.clone()),
            )
        })
        .collect();
    assert_eq!(
        refusals,
        HashMap::from([
            ("r-0000".to_string(), (400, "Bad Request".to_string())),
            ("r-0001".to_string(), (403, "Forbidden".to_string())),
            ("r-0002".to_string(), (413, "Payload Too Large".to_string())),
        ])
    );
    let accepted = em.accepted_counts();
    for id in ["r-0003", "r-0004", "r-0005"] {
        assert_eq!(accepted.get(id), Some(&1), "{id}: {accepted:?}");
    }

    // Once Event Mesh takes them (the scripts are used up), `e2b resend` sends them.
    let env = vec![
        ("EVENT_MESH_SERVICE_KEY_SECRET", f.secret.clone()),
        ("FAILURE_RECORDS", queue_url.clone()),
    ];
    let resent = cli::e2b(vec!["resend".into()], env).await;
    let stderr = String::from_utf8_lossy(&resent.stderr);
    assert!(resent.status.success(), "{stderr}");
    assert!(stderr.contains("3 resent, 0 kept"), "{stderr}");
    let accepted = em.accepted_counts();
    for id in ["r-0000", "r-0001", "r-0002"] {
        assert_eq!(accepted.get(id), Some(&1), "{id}: {accepted:?}");
    }

    // Over 1 MB: Event Mesh refuses it, and the publisher says so for good.
    let credentials = Arc::new(
        CachedCredentials::new(
            FixedSecret(em.service_key().to_string()),
            "em-key",
            Duration::from_secs(300),
        )
        .with_layout(SecretLayout::EventMeshServiceKey),
    );
    let publisher = Publisher::new(event_mesh_config(None), credentials).expect("a publisher");
    let payload = format!(
        "{{\"id\":\"big\",\"data\":\"{}\"}}",
        "x".repeat(MAX_MESSAGE_BYTES)
    );
    let big = Message {
        id: "big",
        topic: "monitron/asset/alert/ALARM/big",
        payload: &payload,
        trace: None,
    };
    let sent = publisher.send(big, "s3://b/k", soon()).await;
    assert!(
        matches!(sent, Err(PublishError::Rejected { status: 413, .. })),
        "{sent:?}"
    );
}

/// A wrong service key secret is a refused logon: the invocation fails (Lambda retries) and
/// says which secret; nothing is recorded as refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_key_with_a_wrong_client_fails_the_invocation_by_name() {
    let em = TestEventMesh::start(NAMESPACE, CLIENT_ID, CLIENT_SECRET).await;
    let mut key = em.service_key();
    key["messaging"][1]["oa2"]["clientsecret"] = Value::from("not-the-s3cret");
    let unused = TestBroker::start("unused", "unused").await;
    let f = Fixture::with_broker(unused, key).await;
    f.put("w.json", alarms("w", 2).as_bytes()).await;
    let result = forwarder(&f, None, 2)
        .handle(&f.s3_event(&["w.json"]), soon())
        .await;
    let text = format!("{result:?}");
    assert!(result.is_err(), "{text}");
    assert!(
        text.contains("OAuth2 token endpoint") && text.contains("401"),
        "{text}"
    );
    assert!(!text.contains("not-the-s3cret"), "{text}");
    assert!(em.published().is_empty());
}

/// Forwarder → Event Mesh → webhook → processor → S/4, with S/4 failing a share of requests
/// and the object forwarded twice: every alert becomes its notification once, and every push
/// is answered 2xx in the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_alert_reaches_s4_once_through_event_mesh_and_its_webhook() {
    const ALERTS: usize = 24;
    let (mut em, f) = setup().await;
    let s4 = TestS4::start("E2B_TECH_USER", "s4-em-s3cret").await;
    s4.set_chaos(150, 9, 22);
    let processor = Processor::new(
        Arc::new(s4.client("E2B_TECH_USER", "s4-em-s3cret", Duration::from_secs(2))),
        Some(moto::idempotency_store().await),
        ProcessorSettings::new(
            // One notification per alert (the bundled rules' episodes would join alerts of one
            // technical object, and the test peer maps every asset to one).
            RuleSource::fixed(crate::support::per_event_rules()),
            InboundAuth::Basic {
                username: WEBHOOK.0.into(),
                password: WEBHOOK.1.into(),
            },
            Duration::from_secs(3),
            Duration::from_secs(8),
        ),
    );
    let endpoint = ProcessorEndpoint::serve(Arc::new(processor)).await;
    em.subscribe_webhook(QUEUE, &endpoint.url, WEBHOOK, 4);

    f.put("e2e.json", alarms("x", ALERTS).as_bytes()).await;
    // Forwarded twice (a redelivered S3 notification without a ledger): every event twice.
    for _ in 0..2 {
        let result = forwarder(&f, None, 8)
            .handle(&f.s3_event(&["e2e.json"]), soon())
            .await;
        assert!(result.is_ok(), "{result:?}");
    }
    let until = Instant::now() + Duration::from_secs(90);
    while (em.depth(QUEUE) > 0 || s4.notifications().len() < ALERTS) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let any push in flight finish.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let handshakes = em.handshakes();
    assert_eq!(handshakes.len(), 1);
    assert!(handshakes[0].0.starts_with("200"), "{handshakes:?}");
    assert_eq!(em.depth(QUEUE), 0, "every push answered 2xx in the end");
    let pushes = em.pushes();
    assert_eq!(pushes.len(), ALERTS, "{pushes:?}");
    for (id, statuses) in &pushes {
        assert_eq!(
            statuses.iter().filter(|s| (200..300).contains(*s)).count(),
            2,
            "{id}: each of its two messages acknowledged once: {statuses:?}"
        );
    }
    let notifications = s4.notifications();
    assert_eq!(notifications.len(), ALERTS, "one notification per alert");
    let redelivered = pushes.values().any(|s| s.iter().any(|s| *s >= 500));
    assert!(redelivered, "the S/4 faults did not bite: {pushes:?}");
}

/// `e2b doctor` with the forwarder's Event Mesh settings: the secret (a service key, its
/// namespace), the network to the key's `uri`, the logon (a token, then a probe that is not
/// stored); a wrong key is named at the logon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_doctor_checks_event_mesh_step_by_step() {
    let (em, f) = setup().await;
    let env = vec![("EVENT_MESH_SERVICE_KEY_SECRET", f.secret.clone())];
    let output = cli::e2b(vec!["doctor".into(), "--json".into()], env).await;
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
    assert!(output.status.success(), "{report}");
    let steps = crate::support::doctor_steps(&report);
    assert_eq!(steps, ["secret", "dns", "tcp", "logon"], "{report}");
    let said = report.to_string();
    assert!(
        said.contains("SAP Event Mesh") && said.contains(NAMESPACE),
        "{said}"
    );
    assert!(!said.contains(CLIENT_SECRET), "{said}");
    assert!(em.published().is_empty(), "the probe is not stored");
    assert_eq!(em.token_requests(), 1);

    em.revoke_tokens();
    let mut key = em.service_key();
    key["messaging"][1]["oa2"]["clientsecret"] = Value::from("rotated-s3cret");
    let unused = TestBroker::start("unused", "unused").await;
    let wrong = Fixture::with_broker(unused, key).await;
    let env = vec![("EVENT_MESH_SERVICE_KEY_SECRET", wrong.secret.clone())];
    let output = cli::e2b(vec!["doctor".into()], env).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    assert!(
        stdout.contains("logon") && stdout.contains("401"),
        "{stdout}"
    );
    assert!(!stdout.contains("rotated-s3cret"), "{stdout}");
}

/// Monitron's Kinesis stream through Event Mesh: a batch publishes each alert, a record Event
/// Mesh keeps answering 503 is where the shard resumes, nothing before it is sent again, and
/// the records from it come again as Lambda hands them back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kinesis_batch_reaches_event_mesh_and_the_shard_resumes_at_what_is_missing() {
    use crate::support::kinesis;
    let (em, f) = setup().await;
    let now = std::time::SystemTime::now();
    let lines = alarms("k", 5);
    let records: Vec<Value> = lines
        .lines()
        .enumerate()
        .map(|(n, data)| kinesis::record(n as u64, data.as_bytes(), now))
        .collect();
    em.script("k-0003", vec![Reply::Status(503, "Service Unavailable"); 5]);
    let forwarder = forwarder(&f, None, 1);
    let first = forwarder
        .handle(&kinesis::batch(records.clone()), soon())
        .await;
    let Ok(first) = first else {
        panic!("the batch failed the invocation: {first:?}")
    };
    assert_eq!(
        first["batchItemFailures"][0]["itemIdentifier"],
        Value::from(kinesis::sequence_number(3)),
        "{first}"
    );
    let again = forwarder
        .handle(&kinesis::batch(records[3..].to_vec()), soon())
        .await;
    assert_eq!(
        again.ok(),
        Some(serde_json::json!({"batchItemFailures": []}))
    );
    let accepted = em.accepted_counts();
    assert_eq!(accepted.len(), 5, "{accepted:?}");
    for id in ["k-0000", "k-0001", "k-0002", "k-0003"] {
        assert_eq!(accepted.get(id), Some(&1), "{id}: {accepted:?}");
    }
}

/// The delivery ledger holds for Event Mesh: a real Firehose object (gzip, newline-delimited)
/// whose one event Event Mesh holds back (503 beyond an invocation's attempts) fails its
/// invocation; the retry sends only that event. `e2b replay` then re-sends the object on purpose
/// with the Event Mesh settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_sends_only_what_is_missing_and_replay_sends_again_on_purpose() {
    let (em, f) = setup().await;
    let (dynamodb, table) = moto::table("em-progress").await;
    let key = "project=Plant A/2024/03/01/export.json.gz";
    f.put(
        key,
        include_bytes!("../../events/objects/monitron-v2-ndjson.json.gz"),
    )
    .await;
    let ledger = || e2b::forwarder::ledger::Ledger {
        client: dynamodb.clone(),
        table: table.clone(),
        keep: Duration::from_secs(3600),
    };
    // The object's three events (`e2b scan` shows them); e-200 held back for an invocation.
    em.script("e-200", vec![Reply::Status(503, "Service Unavailable"); 5]);
    let held = forwarder(&f, None, 2)
        .with_ledger(Some(ledger()))
        .handle(&f.s3_event(&[key]), soon())
        .await;
    let text = format!("{held:?}");
    assert!(held.is_err() && text.contains("e-200"), "{text}");
    let retried = forwarder(&f, None, 2)
        .with_ledger(Some(ledger()))
        .handle(&f.s3_event(&[key]), soon())
        .await;
    assert!(retried.is_ok(), "{retried:?}");
    let ids = ["e-199", "e-200", "e-201"];
    let accepted = em.accepted_counts();
    assert!(
        ids.iter().all(|id| accepted.get(*id) == Some(&1)),
        "each once, the held one by the retry: {accepted:?}"
    );

    let replayed = cli::e2b(
        vec![
            "replay".into(),
            format!("s3://{}/project=Plant A/", f.bucket),
        ],
        vec![("EVENT_MESH_SERVICE_KEY_SECRET", f.secret.clone())],
    )
    .await;
    let stderr = String::from_utf8_lossy(&replayed.stderr);
    assert!(replayed.status.success(), "{stderr}");
    let accepted = em.accepted_counts();
    assert!(
        ids.iter().all(|id| accepted.get(*id) == Some(&2)),
        "replayed once more: {accepted:?}"
    );
}
