//! Hopeless deliveries at the processor, against real peers: DynamoDB on moto (atomic
//! conditional writes, its 400 KB item limit), the S/4 OData test server (EDMX lengths, a
//! technical object it refuses) and failure records in S3 on moto. The guarantee is a property:
//! poison events (oversized names, control characters, bodies that are not UTF-8, missing
//! fields, an action S/4 refuses for good) interleaved, repeated and delivered in parallel with
//! good events of the same and other sensor positions are never answered 5xx, never hold a
//! position, and the hopeless ones are recorded once each; every good event is in its
//! position's one notification.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lambda_http::http::HeaderMap;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::support::moto;
use crate::support::s4::TestS4;
use e2b::aws::records::FailureSink;
use e2b::aws::s3::S3Location;
use e2b::outcome::{Disposed, Disposition};
use e2b::processor::episode::store::{EpisodeStore, Lease};
use e2b::processor::failures::FailureRecord;
use e2b::processor::idempotency::{DynamoStore, IdempotencyStore};
use e2b::processor::rules::RuleSet;
use e2b::processor::rules::source::RuleSource;
use e2b::processor::{InboundAuth, Processor, ProcessorSettings};

const S4_USER: &str = "E2B_TECH_USER";
const S4_PASSWORD: &str = "s4-s3cret-value";
/// The technical object S/4 refuses (a 400 with SAP's message): no redelivery can help.
const REFUSED_OBJECT: &str = "99999999";
/// Longer than this, a good delivery has waited on someone else's lease (5 s).
const NO_WAIT: Duration = Duration::from_secs(3);

/// The bundled rules, with the asset "Refused pump" mapped to the refused object.
fn rules() -> RuleSet {
    let text = e2b::processor::rules::BUNDLED.replace(
        "[[mapping]]\ntechnical_object = \"10000000\"",
        &format!(
            "[[mapping]]\nasset = \"Refused pump\"\ntechnical_object = \"{REFUSED_OBJECT}\"\n\
             object_kind = \"equipment\"\n\n[[mapping]]\ntechnical_object = \"10000000\""
        ),
    );
    assert!(text.contains(REFUSED_OBJECT), "the bundled mapping moved");
    RuleSet::parse("poison rules", &text).expect("the rules parse")
}

struct Fixture {
    s4: TestS4,
    table: DynamoStore,
    sink: Arc<FailureSink>,
}

impl Fixture {
    async fn new() -> Fixture {
        let s4 = TestS4::start(S4_USER, S4_PASSWORD).await;
        s4.reject_object(REFUSED_OBJECT);
        let s3 = moto::s3().await;
        let bucket = moto::unique("failures");
        s3.create_bucket()
            .bucket(&bucket)
            .send()
            .await
            .expect("bucket in the test set-up");
        Fixture {
            s4,
            table: moto::idempotency_store().await,
            sink: Arc::new(FailureSink::S3 {
                client: s3,
                at: S3Location::new(&bucket, "failures/"),
            }),
        }
    }

    /// A processor as one warm container holds it, sharing S/4, the table and the records.
    fn container(&self, budget: Duration) -> Processor<Option<DynamoStore>> {
        let mut settings = ProcessorSettings::new(
            RuleSource::fixed(rules()),
            InboundAuth::FunctionUrlIam,
            budget,
            Duration::from_secs(30),
        );
        settings.failures = self.sink.clone();
        Processor::new(
            Arc::new(
                self.s4
                    .client(S4_USER, S4_PASSWORD, Duration::from_secs(10)),
            ),
            Some(DynamoStore {
                client: self.table.client.clone(),
                table: self.table.table.clone(),
                keep_completed: self.table.keep_completed,
            }),
            settings,
        )
    }

    async fn recorded(&self) -> Vec<String> {
        let found = self.sink.list::<FailureRecord>(1000, 0).await;
        let found = found.unwrap_or_else(|e| panic!("the failure records cannot be read: {e}"));
        found
            .into_iter()
            .map(|f| {
                // Each keeps the trace it was processed in: the alert's own (none was carried).
                let own = e2b::trace::TraceParent::for_alert(&f.record.source, &f.record.event_id);
                assert_eq!(
                    f.record.traceparent,
                    Some(own.to_string()),
                    "{:?}",
                    f.record
                );
                f.record.event_id
            })
            .collect()
    }
}

/// What is delivered.
#[derive(Debug, Clone)]
enum Kind {
    /// An alarm of sensor position 1 or 2.
    Good(u8),
    /// An alarm of position 1 or 2 whose asset and position names are 100,000 characters.
    Oversized(u8),
    /// An alarm of position 1 or 2 with control characters in its id and names.
    Control(u8),
    /// Bytes that are not UTF-8.
    NotUtf8,
    /// A CloudEvent without its id, or without its data.
    Missing(bool),
    /// An alarm of a position whose technical object S/4 refuses.
    Refused,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        4 => (1u8..=2).prop_map(Kind::Good),
        1 => (1u8..=2).prop_map(Kind::Oversized),
        1 => (1u8..=2).prop_map(Kind::Control),
        1 => Just(Kind::NotUtf8),
        1 => any::<bool>().prop_map(Kind::Missing),
        1 => Just(Kind::Refused),
    ]
}

/// A CloudEvent as the forwarder publishes it.
fn alarm(id: &str, minute: u32, position: &str, asset: &str, name: &str) -> Value {
    json!({
        "specversion": "1.0", "id": id, "source": "monitron/111122223333/Plant%20A",
        "type": "com.amazon.monitron.asset.alert",
        "time": format!("2024-03-04T{:02}:{:02}:00Z", minute / 60 % 24, minute % 60),
        "datacontenttype": "application/json",
        "data": {"schemaVersion": "2", "project": "Plant A", "site": "Site 1",
            "asset": asset, "position": name, "assetPositionId": position,
            "state": {"new": "ALARM", "previous": "HEALTHY"}, "transition": "measurement"}
    })
}

/// The event's id (when it has one) and its body.
fn body(kind: &Kind, n: u32) -> (Option<String>, Vec<u8>) {
    let id = format!("ev-{n}");
    let value = match kind {
        Kind::Good(p) => alarm(&id, n, &format!("pos-{p}"), "Pump 7", "Motor DE"),
        Kind::Oversized(p) => {
            let huge = "X".repeat(100_000);
            alarm(&id, n, &format!("pos-{p}"), &huge, &huge)
        }
        Kind::Control(p) => {
            let odd = format!("ev-{n}\u{0}\n\t\u{1b}[31m\u{7f}");
            let value = alarm(
                &odd,
                n,
                &format!("pos-{p}"),
                "Pump\u{0}\r\n7",
                "Motor\u{8}DE",
            );
            return (Some(odd), value.to_string().into_bytes());
        }
        Kind::NotUtf8 => return (None, vec![b'{', 0xff, 0xfe, b'"', 0x80, b'}']),
        Kind::Missing(without_id) => {
            let mut value = alarm(&id, n, "pos-1", "Pump 7", "Motor DE");
            let field = if *without_id { "id" } else { "data" };
            value.as_object_mut().map(|o| o.remove(field));
            return (None, value.to_string().into_bytes());
        }
        Kind::Refused => alarm(&id, n, "pos-refused", "Refused pump", "Motor NDE"),
    };
    (Some(id), value.to_string().into_bytes())
}

/// One answer: the delivery's kind and id, its status, body and time taken.
struct Answer {
    kind: Kind,
    id: Option<String>,
    status: u16,
    body: Value,
    took: Duration,
}

async fn deliver(processor: &Processor<Option<DynamoStore>>, kind: &Kind, n: u32) -> Answer {
    let (id, bytes) = body(kind, n);
    let started = Instant::now();
    let reply = processor.handle(&HeaderMap::new(), &bytes).await;
    Answer {
        kind: kind.clone(),
        id,
        status: reply.status,
        body: reply.body,
        took: started.elapsed(),
    }
}

/// Delivers in order, as one connection of the RDP does.
async fn lane(processor: &Processor<Option<DynamoStore>>, part: Vec<(Kind, u32)>) -> Vec<Answer> {
    let mut answers = Vec::new();
    for (kind, n) in part {
        answers.push(deliver(processor, &kind, n).await);
    }
    answers
}

/// The notifications whose long text holds a line of `id`.
fn holding(s4: &TestS4, id: &str) -> Vec<String> {
    let marker = format!("Monitron event: {id}");
    s4.notifications()
        .iter()
        .filter(|n| {
            n["MaintNotifLongTextForEdit"]
                .as_str()
                .is_some_and(|t| t.lines().any(|l| l.ends_with(&marker)))
        })
        .filter_map(|n| n["MaintenanceNotification"].as_str().map(str::to_string))
        .collect()
}

/// Checks every answer and what S/4 and the failure records hold afterwards.
async fn check(f: &Fixture, answers: &[Answer]) {
    let mut per_position: BTreeMap<u8, BTreeSet<String>> = BTreeMap::new();
    for a in answers {
        assert!(
            a.status < 500,
            "{:?} {:?} answered {}: {}",
            a.kind,
            a.id,
            a.status,
            a.body
        );
        match &a.kind {
            Kind::Good(p) | Kind::Oversized(p) => {
                assert_eq!(a.status, 200, "{:?}: {}", a.kind, a.body);
                assert!(a.took < NO_WAIT, "{:?} waited {:?}", a.kind, a.took);
                let id = a.id.clone().unwrap_or_default();
                per_position.entry(*p).or_default().insert(id);
            }
            Kind::Control(_) | Kind::Refused => assert_eq!(a.status, 200, "{}", a.body),
            Kind::NotUtf8 | Kind::Missing(_) => {}
        }
        if let Kind::Refused = a.kind {
            assert_eq!(a.body["results"][0]["status"], "ERROR", "{}", a.body);
        }
    }
    // Every good (and oversized) event is in its position's one notification.
    for (position, ids) in &per_position {
        let numbers: BTreeSet<String> = ids.iter().flat_map(|id| holding(&f.s4, id)).collect();
        assert_eq!(numbers.len(), 1, "position {position}: {numbers:?}");
        for id in ids {
            assert_eq!(holding(&f.s4, id).len(), 1, "{id} in one notification");
        }
    }
    // Each hopeless event is recorded once; nothing else is.
    let mut recorded = f.recorded().await;
    recorded.sort();
    let refused: BTreeSet<String> = answers
        .iter()
        .filter(|a| matches!(a.kind, Kind::Refused))
        .filter_map(|a| a.id.clone())
        .collect();
    assert_eq!(recorded, refused.into_iter().collect::<Vec<_>>());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    /// Poison among good events, some delivered twice, over two containers at once.
    #[test]
    fn poison_events_never_answer_5xx_nor_hold_a_position(
        kinds in prop::collection::vec(kind(), 6..14),
        again in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        let mut deliveries: Vec<(Kind, u32)> =
            kinds.iter().cloned().zip(1u32..).collect();
        for index in &again {
            let repeated = deliveries[index.index(kinds.len())].clone();
            deliveries.push(repeated);
        }
        let runtime = crate::support::runtime(true);
        runtime.block_on(async {
            let f = Fixture::new().await;
            let (a, b) = (f.container(Duration::from_secs(5)), f.container(Duration::from_secs(5)));
            let (odd, even): (Vec<_>, Vec<_>) =
                deliveries.iter().cloned().enumerate().partition(|(i, _)| i % 2 == 1);
            let strip = |v: Vec<(usize, (Kind, u32))>| v.into_iter().map(|(_, d)| d).collect::<Vec<_>>();
            let (mut answers, more) = tokio::join!(lane(&a, strip(even)), lane(&b, strip(odd)));
            answers.extend(more);
            check(&f, &answers).await;
        });
    }
}

/// The issue's case: an alarm whose asset and position names are 100,000 characters is
/// processed with its texts cut, and the next alarm of the same position goes on at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_alarm_is_processed_and_the_next_one_of_its_position_goes_on_at_once() {
    let f = Fixture::new().await;
    let processor = f.container(Duration::from_secs(5));
    let first = deliver(&processor, &Kind::Oversized(1), 1).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(
        first.body["results"][0]["status"], "COMPLETE",
        "{}",
        first.body
    );
    let next = deliver(&processor, &Kind::Good(1), 2).await;
    assert_eq!(next.status, 200, "{}", next.body);
    assert!(next.took < NO_WAIT, "waited {:?}", next.took);
    let notifications = f.s4.notifications();
    assert_eq!(notifications.len(), 1);
    let text = notifications[0]["MaintNotifLongTextForEdit"]
        .as_str()
        .unwrap_or_default();
    assert!(text.len() <= 1333 && text.contains("Asset: XXX"), "{text}");
    assert_eq!(
        holding(&f.s4, "ev-1").len(),
        1,
        "the oversized alarm's line: {text}"
    );
    assert!(f.recorded().await.is_empty(), "nothing given up");
}

/// Real DynamoDB errors (moto): an item over 400 KB is refused for good, a missing table is
/// retried (its name is a setting to fix, not a fault of the event).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_errors_say_whether_a_retry_can_help() {
    let store = moto::idempotency_store().await;
    assert!(matches!(
        store.begin("MON-1", Duration::from_secs(30)).await,
        Ok(e2b::processor::idempotency::Begin::Started)
    ));
    let too_large = store.pause("MON-1", &"p".repeat(500_000)).await;
    let Err(e) = too_large else {
        panic!("moto took an item over 400 KB")
    };
    assert_eq!(e.disposition(), Disposition::GiveUp, "{e}");
    assert!(e.to_string().contains("ValidationException"), "{e}");

    let missing = DynamoStore {
        client: store.client.clone(),
        table: "no-such-table".into(),
        keep_completed: store.keep_completed,
    };
    let Err(e) = missing.begin("MON-2", Duration::from_secs(30)).await else {
        panic!("a missing table answered")
    };
    assert_eq!(e.disposition(), Disposition::Retry, "{e}");
    assert!(e.to_string().contains("ResourceNotFoundException"), "{e}");
}

/// A lease whose record cannot be written is given back: the next holder takes it at once and
/// is told the last one stopped mid-way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_whose_record_cannot_be_written_is_given_back() {
    let store = moto::idempotency_store().await;
    let long = Duration::from_secs(60);
    assert!(matches!(
        store.lease("pos-x", "first", long).await,
        Ok(Lease::Taken { record: None, .. })
    ));
    store
        .save("pos-x", "first", "{\"kept\":1}", false)
        .await
        .expect("a small record (moto)");
    let refused = store
        .save("pos-x", "first", &"r".repeat(500_000), true)
        .await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.disposition() == Disposition::GiveUp),
        "{refused:?}"
    );
    assert_eq!(store.lease("pos-x", "second", long).await, Ok(Lease::Busy));
    store
        .give_back("pos-x", "first")
        .await
        .expect("given back (moto)");
    assert_eq!(
        store.lease("pos-x", "second", long).await,
        Ok(Lease::Taken {
            record: Some("{\"kept\":1}".into()),
            unclean: true
        })
    );
    // Someone else's lease is not given back by a late holder.
    store
        .give_back("pos-x", "first")
        .await
        .expect("a no-op (moto)");
    assert_eq!(store.lease("pos-x", "third", long).await, Ok(Lease::Busy));
}

/// A change acted on in S/4 whose record could not be saved (the position's lease taken by
/// another holder meanwhile) is answered 503, not 2xx: the redelivery remembers it, reads S/4
/// again and writes nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_whose_record_was_not_saved_is_answered_503_and_remembered_on_redelivery() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let f = Fixture::new().await;
    let processor = Arc::new(f.container(Duration::from_secs(10)));
    let first = deliver(&processor, &Kind::Good(1), 1).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let records = f.table.all().await.expect("episode records (moto)");
    let [(position, _)] = records.as_slice() else {
        panic!("one position expected: {records:?}")
    };
    let key = AttributeValue::S(format!("episode#{position}"));
    f.s4.set_delay(Some(Duration::from_millis(1500)));
    let slow = tokio::spawn({
        let processor = processor.clone();
        async move { deliver(&processor, &Kind::Good(1), 2).await }
    });
    // Once the delivery holds the lease, another holder takes it (as after an expired lease).
    let mut stolen = false;
    for _ in 0..200 {
        let item = f
            .table
            .client
            .get_item()
            .table_name(&f.table.table)
            .key("id", key.clone())
            .consistent_read(true)
            .send()
            .await
            .expect("the record (moto)");
        if item.item().is_some_and(|i| i.contains_key("lease_until")) {
            f.table
                .client
                .update_item()
                .table_name(&f.table.table)
                .key("id", key.clone())
                .update_expression("SET lease_owner = :thief")
                .expression_attribute_values(":thief", AttributeValue::S("thief".into()))
                .send()
                .await
                .expect("the lease taken (moto)");
            stolen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(stolen, "the delivery never held the lease");
    let cut = slow.await.expect("the slow delivery");
    assert_eq!(cut.status, 503, "{}", cut.body);
    assert!(
        cut.body.to_string().contains("could not be saved"),
        "{}",
        cut.body
    );
    assert_eq!(holding(&f.s4, "ev-2").len(), 1, "S/4 has the line already");

    f.table
        .give_back(position, "thief")
        .await
        .expect("given back (moto)");
    f.s4.set_delay(None);
    let again = deliver(&processor, &Kind::Good(1), 2).await;
    assert_eq!(again.status, 200, "{}", again.body);
    let once_more = deliver(&processor, &Kind::Good(1), 2).await;
    assert_eq!(once_more.status, 200, "{}", once_more.body);
    assert!(
        once_more.body.to_string().contains("DUPLICATE"),
        "remembered: {}",
        once_more.body
    );
    let notifications = f.s4.notifications();
    assert_eq!(notifications.len(), 1);
    let text = notifications[0]["MaintNotifLongTextForEdit"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(text.matches("Monitron event: ev-2").count(), 1, "{text}");
}

/// S/4 slower than the reply budget: the delivery is answered 503 within the budget, and the
/// position is free for the next event at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_cut_at_the_reply_budget_gives_its_position_back() {
    let f = Fixture::new().await;
    let processor = f.container(Duration::from_secs(1));
    f.s4.set_delay(Some(Duration::from_secs(4)));
    let cut = deliver(&processor, &Kind::Good(1), 1).await;
    assert_eq!(cut.status, 503, "{}", cut.body);
    assert!(
        cut.took < Duration::from_secs(3),
        "answered after {:?}",
        cut.took
    );
    f.s4.set_delay(None);
    let next = deliver(&processor, &Kind::Good(1), 2).await;
    assert_eq!(next.status, 200, "{}", next.body);
    assert!(next.took < NO_WAIT, "waited {:?}", next.took);
    // The first is delivered again, as the mesh does after a 503: both in one notification.
    let again = deliver(&processor, &Kind::Good(1), 1).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(holding(&f.s4, "ev-1"), holding(&f.s4, "ev-2"));
    assert_eq!(f.s4.notifications().len(), 1);
}

/// Real Secrets Manager errors (moto): a missing secret is given up, with its code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_is_given_up_with_its_code() {
    use e2b::aws::secrets::SecretStore;
    let secrets = moto::secrets().await;
    let Err(e) = secrets.secret_string(&moto::unique("no-such-secret")).await else {
        panic!("a missing secret was read")
    };
    assert_eq!(e.disposition(), Disposition::GiveUp, "{e}");
    assert!(e.to_string().contains("ResourceNotFoundException"), "{e}");
}
