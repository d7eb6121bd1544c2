//! The forwarder's delivery ledger and refusal records (issue 13) against real peers: S3,
//! DynamoDB (with atomic conditional writes) and SQS on moto server, the Solace REST test broker
//! with scripted refusals, holds and a publish ACL, and the `e2b` binary for `e2b resend`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::Value;

use crate::forwarder::{Fixture, S3Forwarder, alarms, soon};
use crate::support::broker::Reply;
use crate::support::{cli, moto};
use e2b::aws::records::FailureSink;
use e2b::forwarder::HandlerError;
use e2b::forwarder::ledger::Ledger;
use e2b::forwarder::refusals::RefusedEvent;

/// Where a fixture's forwarders keep their progress and record refusals.
struct Records {
    table: String,
    dynamodb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    /// The queue, or an S3 prefix where a listing must see every record (a queue shows a
    /// reader only some of its messages).
    sink: Arc<FailureSink>,
}

impl Records {
    /// Refusals to an SQS queue, the template's choice.
    async fn new() -> Records {
        let (dynamodb, table) = moto::table("progress").await;
        let (sqs, queue_url) = moto::queue("forwarder-refusals").await;
        let sink = Arc::new(FailureSink::Sqs {
            client: sqs.clone(),
            queue_url: queue_url.clone(),
        });
        Records {
            table,
            dynamodb,
            sqs,
            queue_url,
            sink,
        }
    }

    /// Refusals under an S3 prefix.
    async fn in_bucket(f: &Fixture) -> Records {
        let mut records = Records::new().await;
        records.sink = Arc::new(FailureSink::S3 {
            client: f.s3.clone(),
            at: e2b::aws::s3::S3Location::new(&f.bucket, "refusals/"),
        });
        records
    }

    /// A forwarder ("a warm container") with the ledger and the refusal records.
    fn forwarder(&self, f: &Fixture) -> S3Forwarder {
        f.forwarder()
            .with_ledger(Some(Ledger {
                client: self.dynamodb.clone(),
                table: self.table.clone(),
                keep: Duration::from_secs(3600),
            }))
            .with_refusals(Some(self.sink.clone()))
    }

    /// The refusal records (from a queue: read, then visible again at once).
    async fn refusals(&self) -> Vec<RefusedEvent> {
        match self.sink.list::<RefusedEvent>(1000, 0).await {
            Ok(found) => found.into_iter().map(|f| f.record).collect(),
            Err(e) => panic!("reading the refusals: {e}"),
        }
    }
}

fn not_forwarded(result: Result<Value, HandlerError>) -> e2b::forwarder::ForwardError {
    match result {
        Err(HandlerError::Forward(e)) => e,
        other => panic!("expected a failed invocation, got {other:?}"),
    }
}

/// The issue's case: 334 events; the broker refuses two for good (400, 413) and holds a third
/// with 503s for longer than one invocation retries. Invoked as Lambda invokes an asynchronous
/// event: the refusals are recorded, the retry publishes only the held event, and a third
/// notification of the object publishes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_recorded_and_a_retry_sends_only_what_is_missing() {
    let f = Fixture::new().await;
    let r = Records::new().await;
    let key = "project=Pumpe Süd/site=Werk 2/monitron.json";
    f.put(key, alarms("r", 334).as_bytes()).await;
    f.broker
        .script("r-0010", vec![Reply::Status(400, "Bad Request")]);
    f.broker.script(
        "r-0020",
        vec![Reply::Status(413, "Request Entity Too Large")],
    );
    f.broker
        .script("r-0030", vec![Reply::Status(503, "Spool Over Quota"); 6]);
    let forwarder = r.forwarder(&f);
    let event = f.s3_event(&[key]);

    let first = not_forwarded(forwarder.handle(&event, soon()).await);
    assert_eq!(first.failures.len(), 1);
    let failure = &first.failures[0];
    assert_eq!(failure.delivered, 331, "{failure}");
    let undelivered: Vec<&str> = failure
        .undelivered
        .iter()
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(
        undelivered,
        ["r-0030"],
        "only the held event fails the invocation"
    );

    let mut refusals = r.refusals().await;
    refusals.sort_by(|a, b| a.event_id.cmp(&b.event_id));
    let named: Vec<(&str, u16)> = refusals
        .iter()
        .map(|x| (x.event_id.as_str(), x.status))
        .collect();
    assert_eq!(named, [("r-0010", 400), ("r-0020", 413)]);
    let refused = &refusals[0];
    assert_eq!(refused.reason, "Bad Request");
    assert_eq!(refused.message_id, "r-0010");
    assert_eq!(refused.object, format!("s3://{}/{key}", f.bucket));
    assert_eq!(refused.record, 10, "the record's ordinal in the object");
    assert!(refused.offset > 0);
    assert_eq!(
        refused.topic,
        "monitron/asset/alert/ALARM/Plant A/Site 1/Pump 7/Motor DE"
    );
    let payload: Value = serde_json::from_str(&refused.payload).unwrap_or(Value::Null);
    assert_eq!(payload["id"], "r-0010", "the payload as sent");
    assert_eq!(refused.correlation_id, refused.object);
    let first_stored = f.broker.stored();
    let header = first_stored
        .iter()
        .find_map(|m| m.header("Solace-Correlation-ID"))
        .unwrap_or_default();
    assert_eq!(
        header,
        format!(
            "s3://{}/project=Pumpe%20S%C3%BCd/site=Werk%202/monitron.json",
            f.bucket
        ),
        "the key's UTF-8 is percent-encoded in the header"
    );

    let requests = f.broker.requests();
    let second = forwarder.handle(&event, soon()).await;
    let Ok(second) = second else {
        panic!("the retry failed: {second:?}")
    };
    assert_eq!(second["delivered"], 1);
    assert_eq!(second["alreadyDone"], 333);
    assert_eq!(
        f.broker.requests() - requests,
        2,
        "only the held event is published again (its last 503, then its 200)"
    );

    let requests = f.broker.requests();
    let third = forwarder.handle(&event, soon()).await;
    assert!(third.is_ok(), "{third:?}");
    assert_eq!(
        f.broker.requests(),
        requests,
        "a complete object is not read"
    );

    let counts = f.broker.stored_counts();
    assert_eq!(counts.len(), 332);
    assert!(counts.values().all(|n| *n == 1), "no duplicate publishes");
    assert_eq!(
        f.broker.attempts("r-0010"),
        1,
        "a refusal is not sent again"
    );
    assert_eq!(r.refusals().await.len(), 2, "each refusal recorded once");
}

/// S3 notifies an object twice at once, to two containers: each event is published once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_invocations_of_one_object_at_once_publish_each_event_once() {
    let f = Fixture::new().await;
    let r = Records::new().await;
    f.put("twice.json", alarms("t", 200).as_bytes()).await;
    f.broker.set_default(Reply::Delay(
        Duration::from_millis(2),
        Box::new(Reply::Accept),
    ));
    let (a, b) = (Arc::new(r.forwarder(&f)), Arc::new(r.forwarder(&f)));
    let event = f.s3_event(&["twice.json"]);
    let (first, second) = tokio::join!(a.handle(&event, soon()), b.handle(&event, soon()));
    assert!(first.is_ok() && second.is_ok(), "{first:?} {second:?}");
    let counts = f.broker.stored_counts();
    assert_eq!(counts.len(), 200);
    assert!(counts.values().all(|n| *n == 1), "duplicates: {counts:?}");
    assert_eq!(f.broker.requests(), 200);
}

/// Without the table the forwarder cannot know what was done: it publishes nothing and fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_progress_table_fails_the_object_before_publishing() {
    let f = Fixture::new().await;
    let r = Records::new().await;
    f.put("a.json", alarms("u", 5).as_bytes()).await;
    let forwarder = f.forwarder().with_ledger(Some(Ledger {
        client: r.dynamodb.clone(),
        table: "no-such-table".into(),
        keep: Duration::from_secs(3600),
    }));
    let error = not_forwarded(forwarder.handle(&f.s3_event(&["a.json"]), soon()).await);
    let text = error.to_string();
    assert!(
        text.contains("progress table no-such-table") && text.contains("not read"),
        "{text}"
    );
    assert_eq!(f.broker.requests(), 0);
}

/// A refusal that cannot be recorded is not lost: the invocation fails naming the event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_that_cannot_be_recorded_fails_the_invocation() {
    let f = Fixture::new().await;
    let r = Records::new().await;
    f.put("a.json", alarms("n", 3).as_bytes()).await;
    f.broker
        .script("n-0001", vec![Reply::Status(400, "Bad Request")]);
    let missing_queue = format!("{}-gone", r.queue_url);
    let forwarder = f.forwarder().with_refusals(Some(Arc::new(FailureSink::Sqs {
        client: r.sqs.clone(),
        queue_url: missing_queue,
    })));
    let error = not_forwarded(forwarder.handle(&f.s3_event(&["a.json"]), soon()).await);
    let (id, why) = &error.failures[0].undelivered[0];
    assert_eq!(id, "n-0001");
    assert!(
        why.contains("refused by the broker: 400 Bad Request; not recorded"),
        "{why}"
    );
}

/// A topic the client may not publish to: every event is recorded and the invocation succeeds;
/// once the ACL allows the topic, `e2b resend` sends them with their message ids and empties
/// the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_topics_are_recorded_then_resent_by_e2b_resend() {
    let f = Fixture::new().await;
    let r = Records::new().await;
    f.put("acl.json", alarms("acl", 3).as_bytes()).await;
    f.broker.deny_topics(&["monitron/asset/alert/"]);
    let result = r
        .forwarder(&f)
        .handle(&f.s3_event(&["acl.json"]), soon())
        .await;
    let Ok(summary) = result else {
        panic!("refusals failed the invocation: {result:?}")
    };
    assert_eq!(
        (summary["delivered"].as_u64(), summary["refused"].as_u64()),
        (Some(0), Some(3))
    );
    let refusals = r.refusals().await;
    assert_eq!(refusals.len(), 3);
    assert!(
        refusals
            .iter()
            .all(|x| x.status == 403 && x.reason == "Publish ACL Denied")
    );

    let listed = cli::e2b(
        vec![
            "resend".into(),
            "--list".into(),
            "--from".into(),
            r.queue_url.clone(),
        ],
        vec![],
    )
    .await;
    let stdout = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success());
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(stdout.contains("event acl-0002") && stdout.contains("403 Publish ACL Denied"));

    f.broker.deny_topics(&[]);
    let secret = f.secret.clone();
    let env = vec![
        ("AEM_REST_URL", f.broker.url.clone()),
        ("AEM_CREDENTIALS_SECRET", secret),
        ("FAILURE_RECORDS", r.queue_url.clone()),
    ];
    let resent = cli::e2b(vec!["resend".into(), "--metrics".into()], env.clone()).await;
    let stderr = String::from_utf8_lossy(&resent.stderr);
    assert!(resent.status.success(), "{stderr}");
    assert!(stderr.contains("3 resent, 0 kept"), "{stderr}");
    let emf = String::from_utf8_lossy(&resent.stdout);
    assert!(emf.contains("\"EventsResent\":3"), "{emf}");
    let mut stored = f.broker.stored_ids();
    stored.sort();
    assert_eq!(stored, ["acl-0000", "acl-0001", "acl-0002"]);
    // A resend continues each alert's trace: the header and the payload carry it.
    for message in f.broker.stored() {
        let payload: serde_json::Value = serde_json::from_str(&message.body).unwrap_or_default();
        let id = payload["id"].as_str().unwrap_or_default();
        let own = e2b::trace::TraceParent::for_alert("monitron/111122223333/Plant%20A", id);
        assert_eq!(
            message.header("traceparent"),
            Some(own.to_string().as_str())
        );
        assert_eq!(payload["traceparent"], own.to_string());
    }
    assert!(r.refusals().await.is_empty(), "resent records are removed");
    let again = cli::e2b(vec!["resend".into()], env).await;
    assert!(String::from_utf8_lossy(&again.stderr).contains("0 resent, 0 kept"));
}

/// What one event meets at the broker in a property case.
#[derive(Debug, Clone)]
enum Fate {
    Accepted,
    /// This many 503s first (more than one invocation's five attempts holds it over).
    Held(usize),
    Refused,
}

fn fates() -> impl Strategy<Value = Vec<Fate>> {
    prop::collection::vec(
        prop_oneof![
            6 => Just(Fate::Accepted),
            3 => (1usize..9).prop_map(Fate::Held),
            1 => Just(Fate::Refused),
        ],
        1..40,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Any mix of holds and refusals, the object notified up to three times at once to two
    /// containers, and failed invocations retried: every event is stored exactly once or
    /// recorded exactly once, and nothing is sent again once done.
    #[test]
    fn every_event_is_delivered_once_or_recorded_once(
        fates in fates(),
        notified in 1usize..=3,
    ) {
        let runtime = crate::support::runtime(true);
        let (stored, refusals, attempts, rounds) = runtime.block_on(async {
            let f = Fixture::new().await;
            let r = Records::in_bucket(&f).await;
            f.put("p.json", alarms("p", fates.len()).as_bytes()).await;
            for (i, fate) in fates.iter().enumerate() {
                let id = format!("p-{i:04}");
                match fate {
                    Fate::Accepted => {}
                    Fate::Held(n) => f.broker.script(&id, vec![Reply::Status(503, "Spool Over Quota"); *n]),
                    Fate::Refused => f.broker.script(&id, vec![Reply::Status(400, "Bad Request")]),
                }
            }
            let containers = [Arc::new(r.forwarder(&f)), Arc::new(r.forwarder(&f))];
            let event = f.s3_event(&["p.json"]);
            let mut rounds = 0;
            loop {
                rounds += 1;
                let mut tasks = tokio::task::JoinSet::new();
                for n in 0..notified {
                    let (forwarder, event) = (containers[n % 2].clone(), event.clone());
                    tasks.spawn(async move { forwarder.handle(&event, soon()).await.is_ok() });
                }
                let mut all_ok = true;
                while let Some(ok) = tasks.join_next().await {
                    all_ok &= ok.unwrap_or(false);
                }
                if all_ok || rounds == 6 {
                    break;
                }
            }
            let attempts: HashMap<String, u32> = (0..fates.len())
                .map(|i| format!("p-{i:04}"))
                .map(|id| (id.clone(), f.broker.attempts(&id)))
                .collect();
            (f.broker.stored_counts(), r.refusals().await, attempts, rounds)
        });
        prop_assert!(rounds < 6, "still failing after 6 rounds");
        for (i, fate) in fates.iter().enumerate() {
            let id = format!("p-{i:04}");
            let recorded = refusals.iter().filter(|x| x.event_id == id).count();
            let times = stored.get(&id).copied().unwrap_or(0);
            let sent = attempts.get(&id).copied().unwrap_or(0) as usize;
            match fate {
                Fate::Refused => {
                    prop_assert_eq!((times, recorded, sent), (0, 1, 1), "{}", id);
                }
                Fate::Accepted => prop_assert_eq!((times, recorded, sent), (1, 0, 1), "{}", id),
                Fate::Held(n) => prop_assert_eq!((times, recorded, sent), (1, 0, n + 1), "{}", id),
            }
        }
    }
}
