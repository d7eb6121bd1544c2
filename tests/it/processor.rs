//! The processor handler against real peers: the S/4 OData V2 test server and DynamoDB on moto
//! (idempotency records), with deliveries as the mesh's REST Delivery Point makes them.

use std::sync::Arc;
use std::time::Duration;

use lambda_http::http::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

use crate::support::moto;
use crate::support::s4::TestS4;
use e2b::http::retry::Backoff;
use e2b::processor::idempotency::DynamoStore;
use e2b::processor::rules::RuleSet;
use e2b::processor::rules::source::RuleSource;
use e2b::processor::s4::{S4Auth, S4Client, S4Config};
use e2b::processor::{InboundAuth, Processor, ProcessorSettings};

const S4_USER: &str = "E2B_TECH_USER";
const S4_PASSWORD: &str = "s4-s3cret-value";
const RDP_AUTH: &str = "Basic cmRwOnJkcC1zM2NyZXQ="; // rdp:rdp-s3cret
const ALARM: &str =
    include_str!("../../events/records/illustrative-v2-asset-state-transition-alarm.json");
const CLOSURE: &str =
    include_str!("../../events/records/illustrative-v2-asset-state-transition-user-closure.json");
const SAP_ENVELOPE: &str = include_str!("../../events/records/illustrative-sap-mesh-envelope.json");

type Handler = Processor<Option<DynamoStore>>;

struct Fixture {
    s4: TestS4,
    processor: Arc<Handler>,
}

async fn table() -> DynamoStore {
    moto::idempotency_store().await
}

async fn fixture_with(rules: RuleSet, with_table: bool) -> Fixture {
    fixture_timed(
        rules,
        with_table,
        Duration::from_millis(800),
        Duration::from_secs(5),
        Duration::from_secs(30),
    )
    .await
}

async fn fixture_timed(
    rules: RuleSet,
    with_table: bool,
    s4_timeout: Duration,
    budget: Duration,
    in_progress_for: Duration,
) -> Fixture {
    let s4 = TestS4::start(S4_USER, S4_PASSWORD).await;
    let client = s4.client(S4_USER, S4_PASSWORD, s4_timeout);
    let idempotency = if with_table {
        Some(table().await)
    } else {
        None
    };
    let processor = Processor::new(
        Arc::new(client),
        idempotency,
        ProcessorSettings::new(
            RuleSource::fixed(rules),
            InboundAuth::Basic {
                username: "rdp".into(),
                password: "rdp-s3cret".into(),
            },
            budget,
            in_progress_for,
        ),
    );
    Fixture {
        s4,
        processor: Arc::new(processor),
    }
}

async fn fixture() -> Fixture {
    fixture_with(
        RuleSet::bundled().expect("RuleSet::bundled in the test set-up"),
        true,
    )
    .await
}

fn headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("authorization", HeaderValue::from_static(RDP_AUTH));
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h
}

/// The CloudEvent the forwarder publishes for a record.
fn cloudevent(record: &str) -> String {
    crate::support::cloudevents(record.as_bytes())
        .into_iter()
        .next()
        .unwrap_or_default()
}

fn alarm(id: &str) -> String {
    cloudevent(&ALARM.replace("e-200", id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_becomes_one_maintenance_notification() {
    let f = fixture().await;
    let reply = f
        .processor
        .handle(&headers(), alarm("e-200").as_bytes())
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["results"][0]["status"], "COMPLETE");
    assert_eq!(reply.body["results"][0]["rule"], "alarm");
    let notifications = f.s4.notifications();
    assert_eq!(notifications.len(), 1);
    let n = &notifications[0];
    assert_eq!(
        reply.body["results"][0]["notification"],
        n["MaintenanceNotification"]
    );
    assert_eq!(n["NotificationText"], "Monitron ALARM: Pump 7 / Motor DE");
    assert_eq!(n["NotificationType"], "M2");
    assert_eq!(n["MaintPriority"], "1");
    assert_eq!(n["TechnicalObject"], "10000000");
    assert_eq!(n["TechObjIsEquipOrFuncnlLoc"], "EAMS_EQUI");
    let reference = n["MaintNotifExtReferenceNumber"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reference.starts_with("MON") && reference.len() == 20,
        "{reference}"
    );
    assert_eq!(n["MalfunctionStartTime"], "PT09H00M01S");
    let long = n["MaintNotifLongTextForEdit"].as_str().unwrap_or_default();
    assert!(
        long.contains("WARNING -> ALARM; Monitron event: e-200")
            && long.contains("Position: Motor DE")
            && long.contains("Position URL: https://app.monitron.aws/"),
        "{long}"
    );
    assert_eq!(
        f.s4.sap_clients(),
        ["100".to_string()].into_iter().collect()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_event_five_times_makes_one_notification() {
    let f = fixture().await;
    let body = alarm("e-5x");
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let reply = f.processor.handle(&headers(), body.as_bytes()).await;
        assert_eq!(reply.status, 200);
        statuses.push(
            reply.body["results"][0]["status"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        );
    }
    assert_eq!(
        statuses,
        vec![
            "COMPLETE",
            "DUPLICATE",
            "DUPLICATE",
            "DUPLICATE",
            "DUPLICATE"
        ]
    );
    assert_eq!(f.s4.notifications().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deliveries_of_one_event_make_one_notification() {
    let f = fixture().await;
    f.s4.set_delay(Some(Duration::from_millis(30)));
    let body = Arc::new(alarm("e-concurrent"));
    // Five deliveries at once, each redelivered (as the RDP does) until it gets a 2xx.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let (processor, body) = (f.processor.clone(), body.clone());
        tasks.spawn(async move {
            for _ in 0..50 {
                let reply = processor.handle(&headers(), body.as_bytes()).await;
                if reply.status == 200 {
                    return reply.body["results"][0]["status"]
                        .as_str()
                        .unwrap_or("")
                        .to_string();
                }
                assert_eq!(reply.status, 503, "{}", reply.body);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            "NEVER ANSWERED 200".to_string()
        });
    }
    let mut statuses = Vec::new();
    while let Some(done) = tasks.join_next().await {
        statuses.push(done.unwrap_or_default());
    }
    statuses.sort();
    assert_eq!(
        statuses,
        vec![
            "COMPLETE",
            "DUPLICATE",
            "DUPLICATE",
            "DUPLICATE",
            "DUPLICATE"
        ]
    );
    assert_eq!(f.s4.notifications().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_events_in_parallel_make_fifty_notifications_with_one_token_fetch() {
    // Per event: one notification per alert, whatever the position.
    let f = fixture_with(crate::support::per_event_rules(), true).await;
    let bodies: Vec<String> = (0..50).map(|i| alarm(&format!("p-{i:02}"))).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for body in bodies {
        let processor = f.processor.clone();
        tasks.spawn(async move { processor.handle(&headers(), body.as_bytes()).await.status });
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.unwrap_or(0), 200);
    }
    assert_eq!(f.s4.notifications().len(), 50);
    assert_eq!(f.s4.csrf_fetches(), 1, "one CSRF token for the warm client");
    assert_eq!(f.processor.s4().csrf_fetches(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_from_s4_is_logged_with_sap_s_message_and_answered_200() {
    let f = fixture().await;
    f.s4.reject_object("10000000");
    let reply = f
        .processor
        .handle(&headers(), alarm("e-400").as_bytes())
        .await;
    assert_eq!(
        reply.status, 200,
        "a redelivery cannot help: {}",
        reply.body
    );
    assert_eq!(reply.body["results"][0]["status"], "ERROR");
    let reason = reply.body["results"][0]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains("400 IW/123: Technical object is invalid"),
        "{reason}"
    );
    assert!(f.s4.notifications().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s4_down_is_answered_503_and_the_redelivery_succeeds() {
    let f = fixture().await;
    f.s4.fail_next(100);
    let body = alarm("e-503");
    let reply = f.processor.handle(&headers(), body.as_bytes()).await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.body["results"][0]["status"], "RETRY");
    f.s4.fail_next(0);
    let reply = f.processor.handle(&headers(), body.as_bytes()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(f.s4.notifications().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_csrf_token_is_fetched_again_once() {
    // Per event: one notification per alert, whatever the position.
    let f = fixture_with(crate::support::per_event_rules(), true).await;
    assert_eq!(
        f.processor
            .handle(&headers(), alarm("t-1").as_bytes())
            .await
            .status,
        200
    );
    f.s4.expire_tokens();
    assert_eq!(
        f.processor
            .handle(&headers(), alarm("t-2").as_bytes())
            .await
            .status,
        200
    );
    assert_eq!(f.s4.csrf_fetches(), 2);
    assert_eq!(f.s4.notifications().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_s4_is_retried_within_the_budget() {
    let f = fixture().await;
    f.s4.fail_next(1);
    let reply = f
        .processor
        .handle(&headers(), alarm("slow-1").as_bytes())
        .await;
    assert_eq!(reply.status, 200, "one 503 is retried: {}", reply.body);
    f.s4.set_delay(Some(Duration::from_secs(2)));
    let start = std::time::Instant::now();
    let reply = f
        .processor
        .handle(&headers(), alarm("slow-2").as_bytes())
        .await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "answered within the budget: {:?}",
        start.elapsed()
    );
    assert_eq!(
        f.s4.notifications().len(),
        1,
        "the slow lookup created nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_without_valid_credentials_do_nothing() {
    let f = fixture().await;
    let body = alarm("auth-1");
    let mut wrong = HeaderMap::new();
    wrong.insert(
        "authorization",
        HeaderValue::from_static("Basic cmRwOndyb25n"),
    );
    for h in [HeaderMap::new(), wrong] {
        let reply = f.processor.handle(&h, body.as_bytes()).await;
        assert_eq!(reply.status, 401);
        assert!(!reply.body.to_string().contains("rdp-s3cret"));
    }
    assert_eq!(f.s4.requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anything_but_an_event_is_answered_400_with_a_reason() {
    let f = fixture().await;
    for (body, reason) in [
        ("not json", "not JSON"),
        ("{\"hello\":1}", "neither a CloudEvent"),
        (
            "{\"specversion\":\"1.0\",\"id\":\"x\",\"source\":\"s\",\"type\":\"com.example.other\"}",
            "not a Monitron event",
        ),
    ] {
        let reply = f.processor.handle(&headers(), body.as_bytes()).await;
        assert_eq!(reply.status, 400, "{body}");
        assert!(
            reply.body["error"]
                .as_str()
                .unwrap_or_default()
                .contains(reason),
            "{}",
            reply.body
        );
    }
    let huge = vec![b' '; e2b::processor::MAX_BODY_BYTES + 1];
    assert_eq!(f.processor.handle(&headers(), &huge).await.status, 413);
    assert_eq!(f.s4.requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sap_sample_envelope_is_understood_too() {
    let f = fixture().await;
    let reply = f
        .processor
        .handle(&headers(), SAP_ENVELOPE.as_bytes())
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["id"], "409623");
    assert_eq!(reply.body["results"][0]["rule"], "needs-maintenance");
    let notifications = f.s4.notifications();
    assert_eq!(notifications.len(), 1);
    assert_eq!(
        notifications[0]["NotificationText"],
        "Monitron NEEDS_MAINTENANCE: Motor / Left"
    );
    assert_eq!(notifications[0]["MaintPriority"], "3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closure_with_nothing_open_creates_and_completes_nothing() {
    let f = fixture().await;
    let reply = f
        .processor
        .handle(&headers(), cloudevent(CLOSURE).as_bytes())
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body["results"][0],
        json!({"rule": "closed-by-user", "status": "SKIPPED",
            "reason": "a recovery while no episode is open; kept, it ends the episode of alerts that arrive later"})
    );
    assert!(f.s4.notifications().is_empty());
    assert_eq!(f.s4.completions(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_table_the_s4_lookup_still_prevents_duplicates() {
    let f = fixture_with(RuleSet::bundled().expect("f (RuleSet::bundled)"), false).await;
    let body = alarm("no-table");
    for _ in 0..3 {
        assert_eq!(
            f.processor.handle(&headers(), body.as_bytes()).await.status,
            200
        );
    }
    assert_eq!(f.s4.notifications().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_notification_takes_two_round_trips_once_warm() {
    // Per event: one notification per alert, whatever the position.
    let f = fixture_with(crate::support::per_event_rules(), true).await;
    assert_eq!(
        f.processor
            .handle(&headers(), alarm("warm-0").as_bytes())
            .await
            .status,
        200
    );
    let before = f.processor.s4().round_trips();
    assert_eq!(
        f.processor
            .handle(&headers(), alarm("warm-1").as_bytes())
            .await
            .status,
        200
    );
    assert_eq!(
        f.processor.s4().round_trips() - before,
        2,
        "lookup + create"
    );
    let value: Value = json!(f.s4.notifications().len());
    assert_eq!(value, json!(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_read_from_s3_change_without_a_redeploy() {
    let s3 = moto::s3().await;
    let bucket = moto::unique("rules");
    assert!(s3.create_bucket().bucket(&bucket).send().await.is_ok());
    let put = |text: String| {
        let (s3, bucket) = (s3.clone(), bucket.clone());
        async move {
            assert!(
                s3.put_object()
                    .bucket(&bucket)
                    .key("rules.toml")
                    .body(text.into_bytes().into())
                    .send()
                    .await
                    .is_ok()
            );
        }
    };
    let log_only = "[[rule]]\nname = \"log-all\"\naction = \"log\"\n".to_string();
    put(log_only).await;
    let origin = e2b::processor::rules::source::RuleOrigin::S3(e2b::aws::s3::S3Location::new(
        bucket.clone(),
        "rules.toml",
    ));
    let source = RuleSource::load(origin, Duration::from_millis(300), Some(s3.clone()))
        .await
        .expect("source (clone)");
    let rules = source.current().await;
    let event_body = alarm("s3-rules");
    let event = match e2b::processor::delivery::parse(event_body.as_bytes()) {
        Ok(e2b::processor::delivery::Delivery::Event(e)) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(rules.decide(&event)[0].name, "log-all");

    put(e2b::processor::rules::BUNDLED.to_string()).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        source.current().await.decide(&event)[0].name,
        "alarm",
        "new rules after the TTL"
    );

    put("[[rule]]\nname = broken".to_string()).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        source.current().await.decide(&event)[0].name,
        "alarm",
        "a broken file keeps the last good rules"
    );
}

fn rules_with_if_open(policy: &str) -> RuleSet {
    let text = e2b::processor::rules::BUNDLED.replace(
        "params = { priority = \"1\" }",
        &format!("params = {{ priority = \"1\", if_open = \"{policy}\" }}"),
    );
    RuleSet::parse("test", &text).expect("RuleSet::parse in the test set-up")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_notification_can_take_new_alarms_instead_of_a_second_one() {
    let f = fixture_with(rules_with_if_open("append"), true).await;
    assert_eq!(
        f.processor
            .handle(&headers(), alarm("open-1").as_bytes())
            .await
            .status,
        200
    );
    let reply = f
        .processor
        .handle(&headers(), alarm("open-2").as_bytes())
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let notifications = f.s4.notifications();
    assert_eq!(
        notifications.len(),
        1,
        "the second alarm joined the open notification"
    );
    assert_eq!(
        reply.body["results"][0]["notification"],
        notifications[0]["MaintenanceNotification"]
    );
    let long = notifications[0]["MaintNotifLongTextForEdit"]
        .as_str()
        .unwrap_or_default();
    assert!(
        long.contains("Monitron event: open-1") && long.contains("Monitron event: open-2"),
        "{long}"
    );
    // The same second alarm again is not appended twice (the idempotency record knows it).
    assert_eq!(
        f.processor
            .handle(&headers(), alarm("open-2").as_bytes())
            .await
            .body["results"][0]["status"],
        "DUPLICATE"
    );
    assert_eq!(
        f.s4.notifications()[0]["MaintNotifLongTextForEdit"]
            .as_str()
            .map(|t| t.matches("open-2").count()),
        Some(1)
    );

    // Once the planner closes it, the next alarm opens a new notification.
    let first = notifications[0]["MaintenanceNotification"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    f.s4.complete(&first);
    assert_eq!(
        f.processor
            .handle(&headers(), alarm("open-3").as_bytes())
            .await
            .status,
        200
    );
    assert_eq!(f.s4.notifications().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_notification_can_make_new_alarms_skip() {
    let f = fixture_with(rules_with_if_open("skip"), true).await;
    assert_eq!(
        f.processor
            .handle(&headers(), alarm("skip-1").as_bytes())
            .await
            .status,
        200
    );
    let reply = f
        .processor
        .handle(&headers(), alarm("skip-2").as_bytes())
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["results"][0]["status"], "SKIPPED");
    assert!(
        reply.body["results"][0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("is already open for 10000000")
    );
    assert_eq!(f.s4.notifications().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s4_can_be_reached_with_oauth2_client_credentials() {
    let s4 = TestS4::start("nobody", "unused").await;
    s4.enable_oauth("e2b-client", "client-s3cret");
    let secret = serde_json::json!({"client_id": "e2b-client", "client_secret": "client-s3cret", "token_url": format!("{}/oauth/token", s4.url)}).to_string();
    let auth = S4Auth::from_secret("s4-oauth", &secret).expect("auth (S4Auth::from_secret)");
    assert!(!format!("{auth:?}").contains("client-s3cret"));
    let client = Arc::new(S4Client::new(s4_config(&s4, 3), auth).expect("client (s4_config)"));
    let processor = Processor::new(
        client.clone(),
        None::<DynamoStore>,
        ProcessorSettings::new(
            RuleSource::fixed(RuleSet::bundled().expect("RuleSet::bundled in the test set-up")),
            InboundAuth::FunctionUrlIam,
            Duration::from_secs(5),
            Duration::from_secs(30),
        ),
    );
    for id in ["o-1", "o-2"] {
        assert_eq!(
            processor
                .handle(&HeaderMap::new(), alarm(id).as_bytes())
                .await
                .status,
            200
        );
    }
    assert_eq!(s4.token_requests(), 1, "the token is cached");
    s4.revoke_tokens();
    assert_eq!(
        processor
            .handle(&HeaderMap::new(), alarm("o-3").as_bytes())
            .await
            .status,
        200
    );
    assert_eq!(s4.token_requests(), 2, "a 401 gets one new token");
    // Issue 29: revoked again and again (a lifetime shorter than `expires_in` said), the token
    // S/4 had accepted is replaced each time, by the same warm client.
    for id in ["o-4", "o-5"] {
        s4.revoke_tokens();
        assert_eq!(
            processor
                .handle(&HeaderMap::new(), alarm(id).as_bytes())
                .await
                .status,
            200
        );
    }
    assert_eq!(s4.token_requests(), 4, "one new token a revocation");
    assert_eq!(s4.notifications().len(), 5);

    let wrong = serde_json::json!({"client_id": "e2b-client", "client_secret": "wrong", "token_url": format!("{}/oauth/token", s4.url)}).to_string();
    let bad = S4Client::new(
        s4_config(&s4, 1),
        S4Auth::from_secret("s4-oauth", &wrong).expect("S4Auth::from_secret in the test set-up"),
    )
    .expect("expect in the test set-up");
    let refused = bad
        .find_by_reference("X", std::time::Instant::now() + Duration::from_secs(2))
        .await;
    // Nothing was written: answered 503 so the mesh redelivers once the client is fixed.
    assert!(
        matches!(&refused, Err(e2b::processor::s4::S4Error::Transient(message)) if message.contains("Bad credentials")),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_that_s4_saves_after_the_timeout_is_not_made_twice() {
    let f = fixture_timed(
        RuleSet::bundled().expect("RuleSet::bundled in the test set-up"),
        true,
        Duration::from_millis(300),
        Duration::from_secs(2),
        Duration::from_secs(1),
    )
    .await;
    f.s4.set_post_delay(Some(Duration::from_millis(700)));
    let body = alarm("late-save");
    let first = f.processor.handle(&headers(), body.as_bytes()).await;
    assert_eq!(
        first.status, 503,
        "the outcome of the POST is unknown: {}",
        first.body
    );
    let early = f.processor.handle(&headers(), body.as_bytes()).await;
    assert_eq!(
        early.status, 503,
        "a redelivery waits while the first may still be saved: {}",
        early.body
    );
    f.s4.set_post_delay(None);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let later = f.processor.handle(&headers(), body.as_bytes()).await;
    assert_eq!(later.status, 200, "{}", later.body);
    assert_eq!(later.body["results"][0]["status"], "DUPLICATE");
    assert_eq!(
        f.s4.notifications().len(),
        1,
        "S/4 saved the first POST; no second one was sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appending_is_once_per_event_even_without_a_table() {
    let f = fixture_with(rules_with_if_open("append"), false).await;
    for id in ["na-1", "na-2", "na-2", "na-2"] {
        assert_eq!(
            f.processor
                .handle(&headers(), alarm(id).as_bytes())
                .await
                .status,
            200
        );
    }
    let notifications = f.s4.notifications();
    assert_eq!(notifications.len(), 1);
    let long = notifications[0]["MaintNotifLongTextForEdit"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(long.matches("Monitron event: na-2").count(), 1, "{long}");
}

fn processor_with_auth(
    s4: &TestS4,
    auth: InboundAuth,
    source: Option<Arc<e2b::processor::AuthSource>>,
) -> Handler {
    Processor::new(
        Arc::new(s4.client(S4_USER, S4_PASSWORD, Duration::from_millis(800))),
        None,
        ProcessorSettings {
            auth_source: source,
            ..ProcessorSettings::new(
                RuleSource::fixed(RuleSet::bundled().expect("RuleSet::bundled in the test set-up")),
                auth,
                Duration::from_secs(5),
                Duration::from_secs(30),
            )
        },
    )
}

fn with_header(name: &'static str, value: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        name,
        HeaderValue::from_str(value).expect("HeaderValue::from_str in the test set-up"),
    );
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scheme_refuses_missing_and_wrong_credentials_and_says_nothing_of_them() {
    let s4 = TestS4::start(S4_USER, S4_PASSWORD).await;
    let basic = InboundAuth::Basic {
        username: "rdp".into(),
        password: "rdp-s3cret".into(),
    };
    let bearer = InboundAuth::Bearer {
        token: "token-s3cret".into(),
    };
    let key = InboundAuth::ApiKey {
        header: "x-api-key".into(),
        key: "key-s3cret".into(),
    };
    let cases = [
        (
            basic,
            with_header("authorization", RDP_AUTH),
            with_header("authorization", "Basic cmRwOnJkcC1zM2NyZXR4"),
        ),
        (
            bearer,
            with_header("authorization", "Bearer token-s3cret"),
            with_header("authorization", "Bearer token-s3cre"),
        ),
        (
            key,
            with_header("x-api-key", "key-s3cret"),
            with_header("authorization", "key-s3cret"),
        ),
    ];
    for (n, (auth, right, wrong)) in cases.into_iter().enumerate() {
        let processor = processor_with_auth(&s4, auth, None);
        let before = s4.requests();
        for refused in [HeaderMap::new(), wrong] {
            let reply = processor
                .handle(&refused, alarm(&format!("s-{n}")).as_bytes())
                .await;
            assert_eq!(reply.status, 401);
            assert!(!reply.body.to_string().contains("s3cre"), "{}", reply.body);
        }
        assert_eq!(
            s4.requests(),
            before,
            "nothing reaches S/4 without credentials"
        );
        let reply = processor
            .handle(&right, alarm(&format!("s-{n}")).as_bytes())
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    assert_eq!(s4.notifications().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_never_echo_the_body() {
    let f = fixture().await;
    for body in [
        r#"{"specversion":"9-leak-s3cret","id":"x","source":"s","type":"com.amazon.monitron.asset.alert"}"#,
        r#"{"specversion":"1.0","id":"x","source":"s","type":"leak-s3cret"}"#,
        r#"{"specversion":"1.0","id":7,"source":"leak-s3cret","type":"t"}"#,
        r#"{"specversion":"1.0","id":["leak-s3cret"],"source":"s","type":"t"}"#,
        r#"{"data":{"eventData":{"eventId":["leak-s3cret"],"eventType":"assetStateTransition","eventPayload":{}}}}"#,
        r#"{"specversion":"1.0","id":"leak-s3cret"#,
    ] {
        let reply = f.processor.handle(&headers(), body.as_bytes()).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        let text = reply.body.to_string();
        assert!(!text.contains("leak-s3cret"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_credentials_rotate_without_a_refused_delivery() {
    let s4 = TestS4::start(S4_USER, S4_PASSWORD).await;
    let secrets = moto::secrets().await;
    let secret = moto::unique("rdp-rotation");
    let first = json!({"username": "rdp", "password": "old-s3cret"}).to_string();
    moto::create_secret(&secrets, &secret, &first).await;
    let scheme = e2b::processor::config::AuthScheme::Basic;
    let auth = InboundAuth::from_secret(scheme, &secret, &first, "x-api-key")
        .expect("auth (InboundAuth::from_secret)");
    let source =
        e2b::processor::AuthSource::new(secrets.clone(), &secret, scheme, "x-api-key", false);
    let processor = processor_with_auth(&s4, auth, Some(Arc::new(source)));
    let basic = |password: &str| {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            HeaderValue::from_str(&format!(
                "Basic {}",
                crate::support::http::base64(format!("rdp:{password}").as_bytes())
            ))
            .expect("as_bytes in the test set-up"),
        );
        h
    };
    // The new password beside the old; the RDP switches; the warm processor reads it again.
    let both =
        json!({"username": "rdp", "password": "new-s3cret", "previous_password": "old-s3cret"});
    moto::put_secret(&secrets, &secret, &both.to_string()).await;
    for (id, password) in [
        ("r-1", "new-s3cret"),
        ("r-2", "old-s3cret"),
        ("r-3", "new-s3cret"),
    ] {
        let reply = processor
            .handle(&basic(password), alarm(id).as_bytes())
            .await;
        assert_eq!(reply.status, 200, "{password}: {}", reply.body);
    }
    // The old one removed: refused once the secret is read again (at most once a minute).
    let new = json!({"username": "rdp", "password": "new-s3cret"});
    moto::put_secret(&secrets, &secret, &new.to_string()).await;
    assert_eq!(
        processor
            .handle(&basic("wrong-s3cret"), alarm("r-4").as_bytes())
            .await
            .status,
        401
    );
    assert_eq!(
        processor
            .handle(&basic("new-s3cret"), alarm("r-5").as_bytes())
            .await
            .status,
        200
    );
}

fn s4_config(s4: &TestS4, max_attempts: u32) -> S4Config {
    S4Config {
        service_url: reqwest::Url::parse(&s4.service_url())
            .expect("service_url in the test set-up"),
        sap_client: None,
        request_timeout: Duration::from_millis(800),
        retry: Backoff {
            base: Duration::from_millis(20),
            cap: Duration::from_millis(20) * 64,
            attempts: max_attempts,
        },
    }
}

/// A processor whose S/4 credentials come from a Secrets Manager secret on moto.
async fn processor_with_s4_secret(
    s4: &TestS4,
    secrets: &aws_sdk_secretsmanager::Client,
    secret: &str,
    credentials: Value,
) -> Handler {
    let credentials = credentials.to_string();
    moto::create_secret(secrets, secret, &credentials).await;
    let auth = S4Auth::from_secret(secret, &credentials).expect("auth (S4Auth::from_secret)");
    let client = S4Client::new(s4_config(s4, 3), auth)
        .expect("client (s4_config)")
        .reread_secret_on_refusal(secrets.clone(), secret);
    Processor::new(
        Arc::new(client),
        None,
        ProcessorSettings::new(
            RuleSource::fixed(RuleSet::bundled().expect("RuleSet::bundled in the test set-up")),
            InboundAuth::FunctionUrlIam,
            Duration::from_secs(5),
            Duration::from_secs(30),
        ),
    )
}

async fn deliver(processor: &Handler, id: &str) -> u16 {
    processor
        .handle(&HeaderMap::new(), alarm(id).as_bytes())
        .await
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_s4_credentials_are_read_again_at_the_first_refusal() {
    let secrets = moto::secrets().await;

    // Basic: a second technical user replaces the first.
    let s4 = TestS4::start("E2B_OLD", "old-s4-s3cret").await;
    let secret = moto::unique("s4-rotation");
    let old = json!({"username": "E2B_OLD", "password": "old-s4-s3cret"});
    let processor = processor_with_s4_secret(&s4, &secrets, &secret, old).await;
    assert_eq!(deliver(&processor, "k-1").await, 200);
    let new = json!({"username": "E2B_NEW", "password": "new-s4-s3cret"});
    moto::put_secret(&secrets, &secret, &new.to_string()).await;
    s4.set_user("E2B_NEW", "new-s4-s3cret");
    assert_eq!(
        deliver(&processor, "k-2").await,
        200,
        "the warm client switched"
    );
    assert_eq!(s4.notifications().len(), 2);
    // A user changed in S/4 but not in the secret: nothing is done, the mesh redelivers.
    s4.set_user("E2B_THIRD", "third-s4-s3cret");
    assert_eq!(deliver(&processor, "k-3").await, 503);
    assert_eq!(s4.notifications().len(), 2);

    // OAuth2: a new client secret, the old one deleted and its tokens revoked.
    let s4 = TestS4::start("nobody", "unused").await;
    s4.enable_oauth("e2b-client", "old-client-s3cret");
    let secret = moto::unique("s4-oauth-rotation");
    let token_url = format!("{}/oauth/token", s4.url);
    let client = |client_secret: &str| json!({"client_id": "e2b-client", "client_secret": client_secret, "token_url": token_url});
    let processor =
        processor_with_s4_secret(&s4, &secrets, &secret, client("old-client-s3cret")).await;
    assert_eq!(deliver(&processor, "o-1").await, 200);
    s4.enable_oauth("e2b-client", "new-client-s3cret");
    s4.revoke_tokens();
    moto::put_secret(&secrets, &secret, &client("new-client-s3cret").to_string()).await;
    assert_eq!(
        deliver(&processor, "o-2").await,
        200,
        "the warm client switched"
    );
    assert_eq!(s4.notifications().len(), 2);
    // The first token, one refused with the old client secret, one with the new.
    assert_eq!(s4.token_requests(), 3);
}
