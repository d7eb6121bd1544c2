//! Alarm episodes against real peers: the S/4 OData V2 test server (items, causes and
//! activities checked against the EDMX, a second completion refused) and DynamoDB on moto with
//! atomic conditional writes. The guarantee is a property: any permutation, duplication and
//! parallelism of an episode's deliveries leaves S/4 as one in-order delivery does.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use lambda_http::http::HeaderMap;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::support::moto;
use crate::support::s4::TestS4;
use e2b::processor::idempotency::DynamoStore;
use e2b::processor::rules::RuleSet;
use e2b::processor::rules::source::RuleSource;
use e2b::processor::{InboundAuth, Processor, ProcessorSettings};

const S4_USER: &str = "E2B_TECH_USER";
const S4_PASSWORD: &str = "s4-s3cret-value";

struct Fixture {
    s4: TestS4,
    table: DynamoStore,
    processor: Arc<Processor<Option<DynamoStore>>>,
}

/// The bundled rules (by episodes) with closure codes mapped to catalog codes.
fn rules() -> RuleSet {
    let text = format!(
        "{}\n[closure_codes.failure_mode]\nMISALIGNMENT = {{ group = \"PM-DAMG\", code = \"0010\" }}\n\
         [closure_codes.failure_cause]\nMAINTENANCE = {{ group = \"PM-CAUS\", code = \"0020\" }}\n\
         [closure_codes.action_taken]\nADJUST = {{ group = \"PM-ACTY\", code = \"0030\" }}\n",
        e2b::processor::rules::BUNDLED
    );
    RuleSet::parse("episode rules", &text).expect("the episode rules parse")
}

async fn fixture_timed(s4_timeout: Duration, in_progress_for: Duration) -> Fixture {
    let s4 = TestS4::start(S4_USER, S4_PASSWORD).await;
    let table = moto::idempotency_store().await;
    let processor = Arc::new(container(&s4, &table, s4_timeout, in_progress_for));
    Fixture {
        s4,
        table,
        processor,
    }
}

/// A processor as one warm Lambda container holds it: its own S/4 client (session, token) and
/// table client, sharing S/4 and the table with the others.
fn container(
    s4: &TestS4,
    table: &DynamoStore,
    s4_timeout: Duration,
    in_progress_for: Duration,
) -> Processor<Option<DynamoStore>> {
    Processor::new(
        Arc::new(s4.client(S4_USER, S4_PASSWORD, s4_timeout)),
        Some(DynamoStore {
            client: table.client.clone(),
            table: table.table.clone(),
            keep_completed: table.keep_completed,
        }),
        ProcessorSettings::new(
            RuleSource::fixed(rules()),
            InboundAuth::FunctionUrlIam,
            Duration::from_secs(5),
            in_progress_for,
        ),
    )
}

async fn fixture() -> Fixture {
    fixture_timed(Duration::from_millis(800), Duration::from_secs(30)).await
}

/// A CloudEvent as the forwarder publishes it, `minute` minutes into the week.
fn event(id: &str, minute: u32, new: &str, previous: &str, closed_by_user: bool) -> String {
    let recovered = !matches!(new, "WARNING" | "ALARM" | "NEEDS_MAINTENANCE");
    let mut data = json!({
        "schemaVersion": "2", "project": "Plant A", "site": "Site 1",
        "asset": "Pump 7", "position": "Motor DE", "assetPositionId": "pos-7-de",
        "state": {"new": new, "previous": previous},
        "transition": if closed_by_user { "userInput" } else { "measurement" }
    });
    if closed_by_user {
        data["closureCode"] = json!({"failureMode": "MISALIGNMENT", "failureCause": "MAINTENANCE",
            "actionTaken": "ADJUST"});
    }
    let time = format!(
        "2024-03-{:02}T{:02}:{:02}:00Z",
        4 + minute / 1440,
        minute / 60 % 24,
        minute % 60
    );
    json!({
        "specversion": "1.0", "id": id, "source": "monitron/111122223333/Plant%20A",
        "type": format!("com.amazon.monitron.asset.{}", if recovered { "recovered" } else { "alert" }),
        "time": time, "datacontenttype": "application/json", "data": data
    })
    .to_string()
}

/// Delivers as the RDP does: again on anything but 2xx, up to 40 times.
async fn deliver(processor: &Processor<Option<DynamoStore>>, body: &str) -> Value {
    for _ in 0..40 {
        let reply = processor.handle(&HeaderMap::new(), body.as_bytes()).await;
        if reply.status == 200 {
            return reply.body;
        }
        assert_eq!(reply.status, 503, "{}", reply.body);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("not delivered in 40 attempts: {body}");
}

/// What a planner sees in S/4, numbers left out: per notification its text, priority, phase,
/// reference time, set of long-text lines and catalog codes.
fn end_state(s4: &TestS4) -> BTreeSet<String> {
    s4.notifications()
        .iter()
        .map(|n| {
            let number = n["MaintenanceNotification"].as_str().unwrap_or_default();
            let lines: BTreeSet<&str> = n["MaintNotifLongTextForEdit"]
                .as_str()
                .unwrap_or_default()
                .lines()
                .collect();
            let codes: Vec<String> = s4
                .items(number)
                .iter()
                .map(|i| {
                    format!(
                        "{}:{}/{} causes {} activities {}",
                        i["MaintNotifItemText"],
                        i["MaintNotifDamageCodeGroup"],
                        i["MaintNotificationDamageCode"],
                        i["to_ItemCause"]["results"],
                        i["to_ItemActivity"]["results"]
                            .as_array()
                            .map(|a| a.len())
                            .unwrap_or_default()
                    )
                })
                .collect();
            format!(
                "{} since {} {} | priority {} | phase {} | at {} | {:?} | {:?}",
                n["NotificationText"],
                n["MalfunctionStartDate"],
                n["MalfunctionStartTime"],
                n["MaintPriority"],
                n["NotifProcessingPhase"],
                n["NotificationReferenceDateTime"],
                lines,
                codes
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planners_week_is_one_notification_escalated_and_closed_with_its_codes() {
    let f = fixture().await;
    let week = [
        event("w", 0, "WARNING", "HEALTHY", false),
        event("a", 60, "ALARM", "WARNING", false),
        event("n", 120, "NEEDS_MAINTENANCE", "ALARM", false),
        event("c", 180, "HEALTHY", "NEEDS_MAINTENANCE", true),
    ];
    let mut statuses = Vec::new();
    for body in &week {
        let reply = deliver(&f.processor, body).await;
        statuses.push(
            reply["results"][0]["status"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        );
    }
    assert_eq!(statuses, ["COMPLETE", "COMPLETE", "COMPLETE", "COMPLETE"]);
    let all = f.s4.notifications();
    assert_eq!(all.len(), 1, "one notification for the problem: {all:?}");
    let n = &all[0];
    assert_eq!(n["MaintPriority"], "1", "the most severe state reached");
    assert_eq!(n["NotifProcessingPhase"], "4");
    assert_eq!(n["NotificationText"], "Monitron WARNING: Pump 7 / Motor DE");
    assert_eq!(
        n["NotificationReferenceDateTime"],
        "datetimeoffset'2024-03-04T03:00:00Z'"
    );
    let long = n["MaintNotifLongTextForEdit"].as_str().unwrap_or_default();
    for id in ["w", "a", "n", "c"] {
        assert_eq!(
            long.matches(&format!("Monitron event: {id}")).count(),
            1,
            "{long}"
        );
    }
    assert!(
        long.contains("Closure code: failure mode MISALIGNMENT"),
        "{long}"
    );
    let number = n["MaintenanceNotification"].as_str().unwrap_or_default();
    let items = f.s4.items(number);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["MaintNotificationDamageCode"], "0010");
    assert_eq!(f.s4.completions(), 1);
    // Every event again: nothing changes.
    let before = end_state(&f.s4);
    for body in &week {
        let reply = deliver(&f.processor, body).await;
        assert_eq!(reply["results"][0]["status"], "DUPLICATE", "{reply}");
    }
    assert_eq!(end_state(&f.s4), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_end_a_new_alert_opens_a_new_episode_and_an_older_one_never_does() {
    let f = fixture().await;
    deliver(&f.processor, &event("a1", 10, "ALARM", "HEALTHY", false)).await;
    deliver(&f.processor, &event("h1", 20, "HEALTHY", "ALARM", false)).await;
    assert_eq!(f.s4.notifications().len(), 1);
    assert_eq!(
        f.s4.notifications()[0]["NotifProcessingPhase"],
        "1",
        "recovered by the measurements: left open for the planner"
    );
    let late = deliver(&f.processor, &event("w0", 5, "WARNING", "HEALTHY", false)).await;
    assert_eq!(late["results"][0]["status"], "COMPLETE", "{late}");
    assert_eq!(
        f.s4.notifications().len(),
        1,
        "older than the end: same episode"
    );
    let next = deliver(&f.processor, &event("a2", 30, "ALARM", "HEALTHY", false)).await;
    let all = f.s4.notifications();
    assert_eq!(all.len(), 2, "after the end: a new episode");
    assert_eq!(
        next["results"][0]["notification"],
        all[1]["MaintenanceNotification"]
    );
    let first = all[0]["MaintNotifLongTextForEdit"]
        .as_str()
        .unwrap_or_default();
    assert!(first.contains("Monitron event: w0") && !first.contains("Monitron event: a2"));
    assert_eq!(
        all[0]["NotificationText"], "Monitron WARNING: Pump 7 / Motor DE",
        "the earliest alert's text"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_its_record_the_open_notification_in_s4_is_taken_over() {
    let f = fixture().await;
    deliver(&f.processor, &event("a1", 10, "ALARM", "HEALTHY", false)).await;
    // The record is lost (expired, deleted by hand).
    let scanned = f
        .table
        .client
        .scan()
        .table_name(&f.table.table)
        .send()
        .await
        .expect("scan the table");
    for item in scanned.items() {
        if let Some(id) = item.get("id") {
            let deleted = f
                .table
                .client
                .delete_item()
                .table_name(&f.table.table)
                .key("id", id.clone())
                .send()
                .await;
            assert!(deleted.is_ok());
        }
    }
    let reply = deliver(
        &f.processor,
        &event("n2", 20, "NEEDS_MAINTENANCE", "ALARM", false),
    )
    .await;
    assert_eq!(reply["results"][0]["status"], "COMPLETE", "{reply}");
    let all = f.s4.notifications();
    assert_eq!(all.len(), 1, "taken over, not a second one: {all:?}");
    let long = all[0]["MaintNotifLongTextForEdit"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(long.matches("Monitron event: n2").count(), 1, "{long}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_was_lost_is_found_by_the_next_delivery_at_once() {
    // S/4 saves the create after the client gave up; the mesh redelivers every 100 ms.
    let f = fixture_timed(Duration::from_millis(300), Duration::from_secs(60)).await;
    f.s4.set_post_delay(Some(Duration::from_millis(700)));
    let body = event("lost", 10, "ALARM", "HEALTHY", false);
    let first = f.processor.handle(&HeaderMap::new(), body.as_bytes()).await;
    assert_eq!(first.status, 503, "{}", first.body);
    f.s4.set_post_delay(None);
    let mut attempts = 0;
    let reply = loop {
        attempts += 1;
        assert!(
            attempts <= 20,
            "still held after 20 redeliveries: dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let reply = f.processor.handle(&HeaderMap::new(), body.as_bytes()).await;
        if reply.status == 200 {
            break reply;
        }
    };
    assert!(
        attempts < 20,
        "found within {attempts} redeliveries, not after the 60 s hold"
    );
    assert_eq!(
        reply.body["results"][0]["status"], "DUPLICATE",
        "{}",
        reply.body
    );
    assert_eq!(f.s4.notifications().len(), 1);
}

/// One episode: 1 to 4 alerts, then no end, a recovery by the measurements, or a user's
/// closure.
fn episode() -> impl Strategy<Value = Vec<String>> {
    let states = prop::sample::select(vec!["WARNING", "ALARM", "NEEDS_MAINTENANCE"]);
    (prop::collection::vec(states, 1..5), 0u8..3).prop_map(|(alerts, end)| {
        let mut previous = "HEALTHY";
        let mut events = Vec::new();
        for (i, state) in alerts.iter().enumerate() {
            events.push(event(
                &format!("e{i}"),
                10 * i as u32,
                state,
                previous,
                false,
            ));
            previous = state;
        }
        let minute = 10 * alerts.len() as u32;
        match end {
            1 => events.push(event("end", minute, "HEALTHY", previous, false)),
            2 => events.push(event("end", minute, "HEALTHY", previous, true)),
            _ => {}
        }
        events
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Any order, each event up to three times, in parallel batches of up to four spread over
    /// three containers: the end state is the in-order one.
    #[test]
    fn any_order_duplication_and_parallelism_end_as_one_in_order_delivery(
        events in episode(),
        repeats in prop::collection::vec(1usize..=3, 5),
        batches in prop::collection::vec(1usize..=4, 15),
        seed in any::<u64>(),
    ) {
        let runtime = crate::support::runtime(true);
        let (in_order, shuffled) = runtime.block_on(async {
            let f = fixture().await;
            for body in &events {
                deliver(&f.processor, body).await;
            }
            let in_order = end_state(&f.s4);
            let g = fixture().await;
            let containers: Vec<Arc<Processor<Option<DynamoStore>>>> = (0..3)
                .map(|_| {
                    Arc::new(container(
                        &g.s4,
                        &g.table,
                        Duration::from_millis(800),
                        Duration::from_secs(30),
                    ))
                })
                .collect();
            let mut arrived: Vec<String> = events
                .iter()
                .zip(&repeats)
                .flat_map(|(e, n)| std::iter::repeat_n(e.clone(), *n))
                .collect();
            fastrand::Rng::with_seed(seed).shuffle(&mut arrived);
            let mut rest = arrived.as_slice();
            let mut sizes = batches.iter().cycle();
            while !rest.is_empty() {
                let size = (*sizes.next().unwrap_or(&1)).min(rest.len());
                let (batch, after) = rest.split_at(size);
                let mut tasks = tokio::task::JoinSet::new();
                for (i, body) in batch.iter().enumerate() {
                    let p = containers[i % containers.len()].clone();
                    let body = body.clone();
                    tasks.spawn(async move { deliver(&p, &body).await });
                }
                while let Some(done) = tasks.join_next().await {
                    assert!(done.is_ok(), "a delivery panicked");
                }
                rest = after;
            }
            (in_order, end_state(&g.s4))
        });
        prop_assert_eq!(shuffled, in_order.clone());
        prop_assert!(in_order.len() == 1);
    }
}
