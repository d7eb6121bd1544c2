//! The processor's actions beyond a single create, against real peers: the S/4 OData V2 test
//! server, a test HTTP destination with an SBPA rule service, DynamoDB, S3, SQS and Secrets
//! Manager on moto, and `e2b reprocess` as a user runs it.

use std::sync::Arc;
use std::time::Duration;

use lambda_http::http::HeaderMap;
use serde_json::{Value, json};

use crate::support::destination::TestDestination;
use crate::support::moto;
use crate::support::s4::TestS4;
use e2b::processor::destination::Destinations;
use e2b::processor::failures::FailureSink;
use e2b::processor::idempotency::DynamoStore;
use e2b::processor::rules::RuleSet;
use e2b::processor::rules::source::RuleSource;
use e2b::processor::{InboundAuth, Processor, ProcessorSettings};

const S4_USER: &str = "E2B_TECH_USER";
const S4_PASSWORD: &str = "s4-s3cret-value";

struct Fixture {
    s4: TestS4,
    dest: TestDestination,
    processor: Processor<Option<DynamoStore>>,
    failures: Option<Failures>,
}

enum Failures {
    Bucket(aws_sdk_s3::Client, String),
    Queue(String),
}

#[derive(PartialEq)]
enum Records {
    None,
    S3,
    Sqs,
}

/// `rules` may name `DEST_URL`, replaced by the test destination's URL.
async fn fixture(rules: &str, with_table: bool, records: Records) -> Fixture {
    let s4 = TestS4::start(S4_USER, S4_PASSWORD).await;
    let dest = TestDestination::start().await;
    let rules = RuleSet::parse("test rules", &rules.replace("DEST_URL", &dest.url))
        .expect("rules (replace)");
    let client = s4.client(S4_USER, S4_PASSWORD, Duration::from_millis(800));
    let (sink, failures) = if records == Records::Sqs {
        let sqs = aws_sdk_sqs::Client::new(&moto::aws_config().await);
        let queue = sqs
            .create_queue()
            .queue_name(moto::unique("e2b-failures"))
            .send()
            .await
            .expect("send in the test set-up");
        let queue_url = queue.queue_url().unwrap_or_default().to_string();
        let sink = FailureSink::Sqs {
            client: sqs,
            queue_url: queue_url.clone(),
        };
        (sink, Some(Failures::Queue(queue_url)))
    } else if records == Records::S3 {
        let s3 = moto::s3().await;
        let bucket = moto::unique("failures");
        assert!(s3.create_bucket().bucket(&bucket).send().await.is_ok());
        let sink = FailureSink::S3 {
            client: s3.clone(),
            at: e2b::aws::s3::S3Location::new(&bucket, "e2b/failures/"),
        };
        (sink, Some(Failures::Bucket(s3, bucket)))
    } else {
        (FailureSink::LogOnly, None)
    };
    let idempotency = if with_table {
        Some(moto::idempotency_store().await)
    } else {
        None
    };
    let processor = Processor::new(
        Arc::new(client),
        idempotency,
        ProcessorSettings {
            failures: Arc::new(sink),
            destinations: Arc::new(Destinations::new(
                Some(moto::secrets().await),
                e2b::processor::destination::DEFAULT_RETRY,
            )),
            ..ProcessorSettings::new(
                RuleSource::fixed(rules),
                InboundAuth::FunctionUrlIam,
                Duration::from_secs(5),
                Duration::from_secs(30),
            )
        },
    );
    Fixture {
        s4,
        dest,
        processor,
        failures,
    }
}

/// A CloudEvent as the forwarder publishes it.
fn event(id: &str, new: &str, previous: &str, transition: &str, names: (&str, &str)) -> String {
    let recovered = !matches!(new, "WARNING" | "ALARM" | "NEEDS_MAINTENANCE");
    let mut data = json!({
        "schemaVersion": "2", "project": "Plant A", "site": "Site 1",
        "asset": names.0, "position": names.1,
        "state": {"new": new, "previous": previous}, "transition": transition
    });
    if transition == "userInput" {
        data["closureCode"] = json!({"failureMode": "MISALIGNMENT", "failureCause": "MAINTENANCE",
            "actionTaken": "ADJUST", "resolvedModels": ["vibrationISO"]});
    }
    json!({
        "specversion": "1.0", "id": id, "source": "monitron/111122223333/Plant%20A",
        "type": format!("com.amazon.monitron.asset.{}", if recovered { "recovered" } else { "alert" }),
        "time": "2024-03-02T10:30:00Z", "datacontenttype": "application/json", "data": data
    })
    .to_string()
}

const PUMP: (&str, &str) = ("Pump 7", "Motor DE");

async fn deliver(f: &Fixture, body: &str) -> (u16, Value) {
    let reply = f.processor.handle(&HeaderMap::new(), body.as_bytes()).await;
    (reply.status, reply.body)
}

fn notification(reply: &Value) -> String {
    reply["results"][0]["notification"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Recorded failures in the fixture's bucket.
async fn recorded(f: &Fixture) -> Vec<Value> {
    let Some(Failures::Bucket(s3, bucket)) = &f.failures else {
        return vec![];
    };
    let listed = s3
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .expect("send in the test set-up");
    let mut records = Vec::new();
    for object in listed.contents() {
        let got = s3
            .get_object()
            .bucket(bucket)
            .key(object.key().unwrap_or_default())
            .send()
            .await
            .expect("send in the test set-up");
        let bytes = got.body.collect().await.expect("bytes (collect)");
        records.push(
            serde_json::from_slice(&bytes.into_bytes()).expect("into_bytes in the test set-up"),
        );
    }
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_completes_the_alert_s_notification_exactly_once() {
    let f = fixture(e2b::processor::rules::BUNDLED, true, Records::None).await;
    let (status, reply) = deliver(&f, &event("a-1", "ALARM", "HEALTHY", "measurement", PUMP)).await;
    assert_eq!(status, 200, "{reply}");
    let number = notification(&reply);
    // Another position on the same equipment keeps its own notification open.
    let (_, other) = deliver(
        &f,
        &event(
            "a-2",
            "WARNING",
            "HEALTHY",
            "measurement",
            ("Pump 7", "Motor NDE"),
        ),
    )
    .await;
    let other = notification(&other);

    let closure = event("c-1", "HEALTHY", "ALARM", "userInput", PUMP);
    let (first, second) = tokio::join!(deliver(&f, &closure), deliver(&f, &closure));
    let third = deliver(&f, &closure).await;
    let statuses: Vec<&str> = [&first, &second, &third]
        .iter()
        .filter_map(|(_, r)| r["results"][0]["status"].as_str())
        .collect();
    assert_eq!(f.s4.completions(), 1, "completed once: {statuses:?}");
    assert!(statuses.contains(&"COMPLETE"), "{statuses:?}");
    assert_eq!(third.0, 200);
    assert_eq!(third.1["results"][0]["status"], "DUPLICATE");
    assert_eq!(third.1["results"][0]["notification"], number.as_str());

    let all = f.s4.notifications();
    let find = |n: &str| {
        all.iter()
            .find(|x| x["MaintenanceNotification"] == n)
            .cloned()
            .unwrap_or_default()
    };
    let closed = find(&number);
    assert_eq!(closed["NotifProcessingPhase"], "4");
    assert_eq!(
        closed["NotificationReferenceDateTime"],
        "datetimeoffset'2024-03-02T10:30:00Z'"
    );
    let text = closed["MaintNotifLongTextForEdit"]
        .as_str()
        .unwrap_or_default();
    assert!(
        text.contains(
            "Closure code: failure mode MISALIGNMENT, cause MAINTENANCE, action taken ADJUST"
        ),
        "{text}"
    );
    assert_eq!(text.matches("Monitron event: c-1").count(), 1, "{text}");
    assert_eq!(
        find(&other)["NotifProcessingPhase"],
        "1",
        "the other position stays open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_automatic_recovery_only_adds_a_note_and_manual_notifications_are_left_alone() {
    let f = fixture(e2b::processor::rules::BUNDLED, false, Records::None).await;
    let (_, reply) = deliver(&f, &event("a-10", "ALARM", "HEALTHY", "measurement", PUMP)).await;
    let number = notification(&reply);
    let recovery = event("r-10", "HEALTHY", "ALARM", "measurement", PUMP);
    for _ in 0..2 {
        let (status, reply) = deliver(&f, &recovery).await;
        assert_eq!(status, 200);
        assert_eq!(reply["results"][0]["change"], "closed", "{reply}");
    }
    assert_eq!(
        f.s4.completions(),
        0,
        "the bundled rules complete only on a user's closure"
    );
    let n = f.s4.notifications();
    let text = n[0]["MaintNotifLongTextForEdit"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(
        text.matches("Monitron event: r-10").count(),
        1,
        "one note for two deliveries: {text}"
    );
    assert_eq!(n[0]["MaintenanceNotification"], number.as_str());

    // With nothing from Monitron open, a closure touches nothing.
    let g = fixture(e2b::processor::rules::BUNDLED, false, Records::None).await;
    let (status, reply) = deliver(&g, &event("c-11", "HEALTHY", "ALARM", "userInput", PUMP)).await;
    assert_eq!(
        (status, reply["results"][0]["status"].as_str()),
        (200, Some("SKIPPED")),
        "{reply}"
    );
    assert_eq!(g.s4.completions(), 0);
}

const ESCALATE: &str = r#"
[[rule]]
name = "alert"
when = { kind = "alert", new_state = "ALARM" }
action = "create_notification"
params = { priority = "1", if_open = "escalate" }
[[rule]]
name = "warning"
when = { kind = "alert", new_state = "WARNING" }
action = "create_notification"
params = { priority = "2", if_open = "escalate" }
[[mapping]]
technical_object = "10000042"
object_kind = "equipment"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escalation_raises_the_open_notification_instead_of_a_second_one() {
    let f = fixture(ESCALATE, true, Records::None).await;
    let (_, first) = deliver(&f, &event("w-1", "WARNING", "HEALTHY", "measurement", PUMP)).await;
    let number = notification(&first);
    let (status, second) =
        deliver(&f, &event("w-2", "ALARM", "WARNING", "measurement", PUMP)).await;
    assert_eq!(status, 200);
    assert_eq!(second["results"][0]["change"], "updated", "{second}");
    assert_eq!(notification(&second), number);
    // Back to WARNING: noted, but the priority is not lowered.
    deliver(&f, &event("w-3", "WARNING", "ALARM", "measurement", PUMP)).await;
    let all = f.s4.notifications();
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["MaintPriority"], "1");
    let text = all[0]["MaintNotifLongTextForEdit"]
        .as_str()
        .unwrap_or_default();
    assert!(
        text.contains("Monitron event: w-2") && text.contains("Monitron event: w-3"),
        "{text}"
    );
    // A redelivery of the escalation changes nothing more.
    let updates = f.s4.updates();
    let (_, again) = deliver(&f, &event("w-2", "ALARM", "WARNING", "measurement", PUMP)).await;
    assert_eq!(again["results"][0]["status"], "DUPLICATE", "{again}");
    assert_eq!(f.s4.updates(), updates);
}

const THREE_STEPS: &str = r#"
[[rule]]
name = "ticket"
action = "open-ticket"
[destination.itsm]
url = "DEST_URL/api"
headers = { "X-Tenant" = "plant-a" }
[[action]]
name = "open-ticket"
[[action.step]]
name = "announce"
phase = "post"
type = "http"
destination = "itsm"
method = "POST"
path = "/tickets/${{steps.ticket.id}}/comments"
csrf = true
body = { text = "Ticket ${{steps.ticket.id}} for ${{event.data.asset}}: ${{steps.note.message}}", ticket = "${{steps.ticket.id}}", state = "${{event.data.state}}" }
[[action.step]]
name = "note"
phase = "main"
type = "log"
message = "ticket ${{steps.ticket.id}} opened"
[[action.step]]
name = "ticket"
phase = "pre"
type = "http"
destination = "itsm"
method = "POST"
path = "/tickets"
csrf = true
expect = [201]
body_json = '{"title": "Monitron ${{event.data.state.new}} at ${{event.data.site}} / ${{event.data.asset}}", "position": "${{event.data.position}}", "event": "${{event.id}}"}'
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_steps_run_in_order_and_pass_a_value_from_the_first_to_the_third() {
    let f = fixture(THREE_STEPS, true, Records::None).await;
    f.dest.require_csrf();
    let names = ("Pump \"7\"\nNord", "Lager Süd ⚙");
    let (status, reply) =
        deliver(&f, &event("s-1", "ALARM", "HEALTHY", "measurement", names)).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["results"][0]["status"], "COMPLETE", "{reply}");
    let seen = f.dest.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].target, "/api/tickets");
    assert_eq!(
        seen[0].body["title"],
        "Monitron ALARM at Site 1 / Pump \"7\"\nNord"
    );
    assert_eq!(seen[0].body["position"], "Lager Süd ⚙");
    assert_eq!(
        seen[0].headers.get("x-tenant").map(String::as_str),
        Some("plant-a")
    );
    let id = "R-2"; // the destination's answer to step 1 (after one CSRF fetch)
    assert_eq!(seen[1].target, format!("/api/tickets/{id}/comments"));
    assert_eq!(
        seen[1].body["text"],
        format!("Ticket {id} for Pump \"7\"\nNord: ticket {id} opened")
    );
    assert_eq!(seen[1].body["ticket"], id);
    assert_eq!(
        seen[1].body["state"],
        json!({"new": "ALARM", "previous": "HEALTHY"}),
        "typed, not text"
    );
    // Redelivered: the action ran once; nothing is sent again.
    let (status, again) =
        deliver(&f, &event("s-1", "ALARM", "HEALTHY", "measurement", names)).await;
    assert_eq!(
        (status, again["results"][0]["status"].as_str()),
        (200, Some("DUPLICATE")),
        "{again}"
    );
    assert_eq!(f.dest.seen().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_fault_mid_action_resumes_without_repeating_what_was_done() {
    let f = fixture(THREE_STEPS, true, Records::None).await;
    f.dest.require_csrf();
    f.dest.fail_matching("/api/tickets/", &[503]);
    let alarm = event("t-1", "ALARM", "HEALTHY", "measurement", PUMP);
    let (status, reply) = deliver(&f, &alarm).await;
    assert_eq!(status, 503, "the mesh redelivers: {reply}");
    assert_eq!(reply["results"][0]["status"], "RETRY");
    let (status, reply) = deliver(&f, &alarm).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["results"][0]["status"], "COMPLETE");
    let targets: Vec<String> = f.dest.seen().into_iter().map(|s| s.target).collect();
    assert_eq!(
        targets,
        [
            "/api/tickets",
            "/api/tickets/R-2/comments",
            "/api/tickets/R-2/comments"
        ],
        "the ticket is opened once; only the refused comment is sent again"
    );
}

const MISSING_PATH: &str = r#"
no_match = "error"
[[rule]]
name = "ticket"
when = { new_state = "ALARM" }
action = "open-ticket"
[destination.itsm]
url = "DEST_URL"
[[action]]
name = "open-ticket"
[[action.step]]
name = "ticket"
type = "http"
destination = "itsm"
method = "POST"
path = "/tickets"
body = { title = "x" }
[[action.step]]
name = "link"
type = "http"
destination = "itsm"
method = "PUT"
path = "/links/${{steps.ticket.received.number}}"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_template_path_fails_with_its_name_and_is_recorded() {
    let f = fixture(MISSING_PATH, false, Records::S3).await;
    let (status, reply) = deliver(&f, &event("m-1", "ALARM", "HEALTHY", "measurement", PUMP)).await;
    assert_eq!(status, 200, "recorded, so done: {reply}");
    let result = &reply["results"][0];
    assert_eq!(result["status"], "ERROR");
    assert_eq!(result["step"], "link");
    assert_eq!(
        result["reason"],
        "step `link`: template path `steps.ticket.received.number`: `steps.ticket.received` has no `number`"
    );
    // No rule for a WARNING, and the file says that is an error.
    let (status, reply) =
        deliver(&f, &event("m-2", "WARNING", "HEALTHY", "measurement", PUMP)).await;
    assert_eq!(
        (status, reply["results"][0]["status"].as_str()),
        (200, Some("ERROR"))
    );

    let records = recorded(&f).await;
    assert_eq!(records.len(), 2, "{records:?}");
    let link = records
        .iter()
        .find(|r| r["event_id"] == "m-1")
        .cloned()
        .unwrap_or_default();
    assert_eq!(link["step"], "link");
    assert_eq!(link["rule"], "ticket");
    assert_eq!(
        link["completed_steps"]["ticket"]["id"], "R-1",
        "step 1's result is kept"
    );
    let delivery: Value = serde_json::from_str(link["delivery"].as_str().unwrap_or_default())
        .expect("delivery (as_str)");
    assert_eq!(delivery["id"], "m-1");
    let unmatched = records
        .iter()
        .find(|r| r["event_id"] == "m-2")
        .cloned()
        .unwrap_or_default();
    assert!(
        unmatched["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("no rule matches")
    );
}

const SBPA: &str = r#"
[[rule]]
name = "decide"
when = { kind = "alert" }
action = "determine-action"
[destination.sbpa]
url = "DEST_URL/public/rule/runtime"
auth = "oauth2"
secret = "SBPA_SECRET"
[[action]]
name = "determine-action"
[[action.step]]
name = "decision"
type = "sbpa"
destination = "sbpa"
rule_service_id = "e2b-decision"
vocabulary = [{ EventInfo = { SourceSystem = "${{event.data.project}}", DeviceType = "${{event.data.asset}}", DeviceLocation = "${{event.data.site}}" } }]
choose_action = "Result[0].ActionInfo.ActionId"
[[action]]
name = "create-pm-notification"
id = "8f7d2c1e-5b7a-4c2e-9d51-3a6f0e4b9c10"
[[action.step]]
name = "equipment"
phase = "pre"
type = "sbpa"
destination = "sbpa"
rule_service_id = "plant-details"
vocabulary = [{ BucketInfo = { BucketName = "${{event.data.project}}" } }]
[[action.step]]
name = "notification"
type = "create_notification"
params = { technical_object = "${{steps.equipment.Result[0].EquipmentDetails.Equipment}}", text = "Monitron: ${{event.data.asset}} at ${{steps.equipment.Result[0].EquipmentDetails.Location}}", priority = "1" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sbpa_decision_chooses_the_action_and_its_equipment() {
    let secrets = moto::secrets().await;
    let secret = moto::unique("sbpa");
    let f = fixture(&SBPA.replace("SBPA_SECRET", &secret), false, Records::None).await;
    let key = json!({"clientid": "sb-e2b", "clientsecret": "sbpa-s3cret", "url": f.dest.url});
    moto::create_secret(&secrets, &secret, &key.to_string()).await;
    f.dest.require_oauth("sb-e2b", "sbpa-s3cret");
    f.dest.add_decision(
        "e2b-decision",
        vec![(
            json!({"SourceSystem": "Plant A", "DeviceType": "Pump 7", "DeviceLocation": "Site 1"}),
            json!({"ActionInfo": {"ActionId": "8f7d2c1e-5b7a-4c2e-9d51-3a6f0e4b9c10"}}),
        )],
    );
    f.dest.add_decision(
        "plant-details",
        vec![(
            json!({"BucketName": "Plant A"}),
            json!({"EquipmentDetails": {"Location": "1010-SPA-SAC", "Equipment": "210100019"}}),
        )],
    );
    for id in ["d-1", "d-2"] {
        let (status, reply) =
            deliver(&f, &event(id, "ALARM", "HEALTHY", "measurement", PUMP)).await;
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["results"][0]["status"], "COMPLETE", "{reply}");
    }
    let n = f.s4.notifications();
    assert_eq!(n.len(), 2);
    assert_eq!(n[0]["TechnicalObject"], "210100019");
    assert_eq!(n[0]["NotificationText"], "Monitron: Pump 7 at 1010-SPA-SAC");
    assert_eq!(f.dest.token_requests(), 1, "the token is cached");
    let seen = f.dest.seen();
    assert_eq!(seen[0].target, "/public/rule/runtime/rest/v2/rule-services");
    assert_eq!(
        seen[0].body,
        json!({"RuleServiceId": "e2b-decision", "Vocabulary": [{"EventInfo": {"SourceSystem": "Plant A", "DeviceType": "Pump 7", "DeviceLocation": "Site 1"}}]})
    );

    // A decision that chooses nothing fails for good, naming the path.
    let (_, reply) = deliver(
        &f,
        &event("d-3", "ALARM", "HEALTHY", "measurement", ("Fan 1", "NDE")),
    )
    .await;
    assert_eq!(reply["results"][0]["status"], "ERROR");
    assert!(
        reply["results"][0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("`Result` has no `[0]`"),
        "{reply}"
    );
}

const CREATE_THEN_NOTIFY: &str = r#"
[[rule]]
name = "alarm"
when = { new_state = "ALARM" }
action = "notify-and-tell"
[destination.itsm]
url = "DEST_URL"
[[action]]
name = "notify-and-tell"
[[action.step]]
name = "notification"
type = "create_notification"
params = { priority = "1" }
[[action.step]]
name = "tell"
phase = "post"
type = "http"
destination = "itsm"
method = "POST"
path = "/notices"
body = { notification = "${{steps.notification.MaintenanceNotification}}" }
[[mapping]]
technical_object = "10000042"
object_kind = "equipment"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_failure_reprocessed_after_the_destination_recovers_makes_one_notification() {
    let f = fixture(CREATE_THEN_NOTIFY, false, Records::S3).await;
    f.dest.fail_with(&[422]);
    // The push carries a trace (the event none): the record keeps it, the reprocess goes on in it.
    const TRACE: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let mut headers = HeaderMap::new();
    headers.insert(
        "traceparent",
        lambda_http::http::HeaderValue::from_static(TRACE),
    );
    let body = event("p-1", "ALARM", "HEALTHY", "measurement", PUMP);
    let reply = f.processor.handle(&headers, body.as_bytes()).await;
    let (status, reply) = (reply.status, reply.body);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["results"][0]["status"], "ERROR", "{reply}");
    assert_eq!(f.s4.notifications().len(), 1, "step 1 created it");
    let records = recorded(&f).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["traceparent"], TRACE, "{records:?}");
    assert_eq!(
        records[0]["request"]["url"],
        format!("{}/notices", f.dest.url)
    );
    assert!(
        records[0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("422"),
        "{records:?}"
    );

    // The destination recovers; the user re-processes with the processor's settings.
    let Some(Failures::Bucket(_, bucket)) = &f.failures else {
        panic!("no bucket")
    };
    let rules = std::env::temp_dir().join(format!("{}.toml", moto::unique("rules")));
    std::fs::write(&rules, CREATE_THEN_NOTIFY.replace("DEST_URL", &f.dest.url))
        .expect("replace in the test set-up");
    let secrets = moto::secrets().await;
    let s4_secret = moto::unique("s4");
    let creds = json!({"username": S4_USER, "password": S4_PASSWORD}).to_string();
    moto::create_secret(&secrets, &s4_secret, &creds).await;
    let from = format!("s3://{bucket}/e2b/failures");
    let env = vec![
        ("S4_BASE_URL", f.s4.service_url()),
        ("S4_CREDENTIALS_SECRET", s4_secret),
        ("PROCESSOR_AUTH", "iam".to_string()),
        ("RULES_SOURCE", rules.display().to_string()),
    ];
    let listed = crate::support::cli::e2b(
        vec![
            "reprocess".into(),
            "--list".into(),
            "--from".into(),
            from.clone(),
        ],
        env.clone(),
    )
    .await;
    let text = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(
        text.contains("event p-1  rule alarm  step tell"),
        "{text}\n{}",
        String::from_utf8_lossy(&listed.stderr)
    );

    // Re-processed while the destination still refuses: failed again, the record is written
    // again in its place and stays for the next run.
    f.dest.fail_with(&[422]);
    let again = crate::support::cli::e2b(
        vec!["reprocess".into(), "--from".into(), from.clone()],
        env.clone(),
    )
    .await;
    let out = String::from_utf8_lossy(&again.stdout).to_string();
    assert!(!again.status.success(), "{out}");
    assert!(out.contains("event p-1  rule alarm  ERROR"), "{out}");
    assert_eq!(recorded(&f).await.len(), 1, "the failure is still recorded");

    let run = crate::support::cli::e2b(
        vec!["reprocess".into(), "--from".into(), from.clone()],
        env.clone(),
    )
    .await;
    let out = String::from_utf8_lossy(&run.stdout).to_string();
    assert!(
        run.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(out.contains("event p-1  rule alarm  COMPLETE"), "{out}");
    let _ = std::fs::remove_file(&rules);

    assert_eq!(f.s4.notifications().len(), 1, "exactly one notification");
    let told: Vec<_> = f
        .dest
        .seen()
        .into_iter()
        .filter(|s| s.body.get("notification").is_some())
        .collect();
    assert_eq!(told.len(), 3, "refused twice, then delivered");
    // Every call, those refused and the one reprocessed, is a span of the push's trace.
    for call in &told {
        let sent = call.headers.get("traceparent").cloned().unwrap_or_default();
        assert!(
            sent.starts_with("00-0af7651916cd43dd8448eb211c80319c-") && sent != TRACE,
            "{sent}"
        );
    }
    assert_eq!(
        told[2].body["notification"],
        f.s4.notifications()[0]["MaintenanceNotification"]
    );
    assert!(
        recorded(&f).await.is_empty(),
        "the record is removed once resolved"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_can_be_recorded_in_an_sqs_queue_and_listed() {
    let f = fixture(MISSING_PATH, false, Records::Sqs).await;
    let (status, _) = deliver(&f, &event("q-1", "ALARM", "HEALTHY", "measurement", PUMP)).await;
    assert_eq!(status, 200);
    let Some(Failures::Queue(queue_url)) = &f.failures else {
        panic!("no queue")
    };
    let listed = crate::support::cli::e2b(
        vec![
            "reprocess".into(),
            "--list".into(),
            "--from".into(),
            queue_url.clone(),
        ],
        vec![],
    )
    .await;
    let text = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(
        text.contains("event q-1  rule ticket  step link"),
        "{text}\n{}",
        String::from_utf8_lossy(&listed.stderr)
    );
}

/// The bundled rules with closure-code tables: the Monitron codes of `event`'s closure map to
/// SAP catalog codes, as a plant's rule file would say.
fn rules_with_closure_codes(group: &str) -> String {
    format!(
        "{}\n[closure_codes.failure_mode]\nMISALIGNMENT = {{ group = \"{group}\", code = \"0010\" }}\n\
         [closure_codes.failure_cause]\nMAINTENANCE = {{ group = \"PM-CAUS\", code = \"0020\" }}\n\
         [closure_codes.action_taken]\nADJUST = {{ group = \"PM-ACTY\", code = \"0030\" }}\n",
        e2b::processor::rules::BUNDLED
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_closure_is_written_as_sap_catalog_codes_once_then_completes() {
    let f = fixture(&rules_with_closure_codes("PM-DAMG"), true, Records::None).await;
    let (_, reply) = deliver(&f, &event("a-1", "ALARM", "HEALTHY", "measurement", PUMP)).await;
    let number = notification(&reply);
    let closure = event("c-1", "HEALTHY", "ALARM", "userInput", PUMP);
    // Two deliveries at once (one is told to wait), then the mesh's redelivery.
    let (first, second) = tokio::join!(deliver(&f, &closure), deliver(&f, &closure));
    let statuses = [first.0, second.0];
    assert!(
        statuses.contains(&200) && statuses.iter().all(|s| [200, 503].contains(s)),
        "{} {}",
        first.1,
        second.1
    );
    let again = deliver(&f, &closure).await;
    assert_eq!(again.0, 200, "{}", again.1);
    let items = f.s4.items(&number);
    assert_eq!(items.len(), 1, "one item: {items:?}");
    let item = &items[0];
    assert_eq!(item["MaintNotifItemText"], "Monitron closure");
    assert_eq!(item["MaintNotifDamageCodeGroup"], "PM-DAMG");
    assert_eq!(item["MaintNotificationDamageCode"], "0010");
    let causes = item["to_ItemCause"]["results"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let activities = item["to_ItemActivity"]["results"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(causes.len(), 1, "{item}");
    assert_eq!(causes[0]["MaintNotifCauseCodeGroup"], "PM-CAUS");
    assert_eq!(causes[0]["MaintNotificationCauseCode"], "0020");
    assert_eq!(activities.len(), 1, "{item}");
    assert_eq!(activities[0]["MaintNotificationActivityCode"], "0030");
    assert_eq!(f.s4.completions(), 1);
    let done =
        f.s4.notifications()
            .into_iter()
            .find(|n| n["MaintenanceNotification"] == number.as_str())
            .expect("the notification is there");
    assert_eq!(done["NotifProcessingPhase"], "4");
    let long_text = done["MaintNotifLongTextForEdit"]
        .as_str()
        .unwrap_or_default();
    assert!(
        long_text.contains("Closure code: failure mode MISALIGNMENT"),
        "the code is in the long text too: {long_text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_server_refuses_catalog_codes_longer_than_the_edmx_allows() {
    // `e2b rules check` refuses a 9-character group; S/4 would refuse it too.
    let refused = RuleSet::parse("too long", &rules_with_closure_codes("PM-DAMAGE"));
    assert!(refused.is_err_and(|e| e.to_string().contains(
        "closure_codes.failure_mode.MISALIGNMENT: group `PM-DAMAGE` is longer than the 8"
    )),);
    let s4 = TestS4::start(S4_USER, S4_PASSWORD).await;
    let client = s4.client(S4_USER, S4_PASSWORD, Duration::from_millis(800));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let n = e2b::processor::s4::NewNotification {
        text: "t".into(),
        long_text: String::new(),
        notification_type: "M2".into(),
        technical_object: "10000000".into(),
        object_kind: "EAMS_EQUI".into(),
        priority: None,
        planning_plant: None,
        malfunction_start: None,
        external_reference: "MON1".into(),
    };
    let number = client.create(&n, deadline).await.expect("a notification");
    let too_long = client
        .requests()
        .create_item(&number, "x", None)
        .expect("a request");
    let mut body = too_long.body.clone().unwrap_or_default();
    body["MaintNotifDamageCodeGroup"] = json!("PM-DAMAGE");
    let request = e2b::processor::s4::S4Request {
        body: Some(body),
        ..too_long
    };
    let refused = client.write(&request, deadline).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("too long (maximum 8)")),
        "{refused:?}"
    );
    let not_creatable = client
        .requests()
        .create_item(&number, "x", None)
        .expect("a request");
    let mut body = not_creatable.body.clone().unwrap_or_default();
    body["MaintNotifDamageCodeGroupName"] = json!("read-only");
    let refused = client
        .write(
            &e2b::processor::s4::S4Request {
                body: Some(body),
                ..not_creatable
            },
            deadline,
        )
        .await;
    assert!(refused.is_err_and(|e| e.to_string().contains("cannot be set")));
    let orphan = client
        .requests()
        .create_item_code(
            e2b::processor::s4::ItemCode::Cause,
            &number,
            "0009",
            "x",
            ("PM-CAUS", "0020"),
        )
        .expect("a request");
    assert!(
        client.write(&orphan, deadline).await.is_err(),
        "no item 0009"
    );
    assert!(s4.items(&number).is_empty());
}
