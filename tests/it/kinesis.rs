//! The forwarder on Monitron's Kinesis data stream (issue 14), in process, against the Solace
//! REST test broker and moto: what a batch publishes, what it reports back for the shard to
//! resume from, and that an event reaching the mesh both ways carries one message id.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use crate::forwarder::{Fixture, S3Forwarder, soon};
use crate::support::broker::Reply;
use crate::support::kinesis;
use e2b::aws::records::FailureSink;
use e2b::forwarder::refusals::RefusedEvent;

const BATCH: &str = include_str!("../../events/kinesis/kinesis-monitron-batch.json");
const ALARM: &str =
    include_str!("../../events/records/illustrative-v2-asset-state-transition-alarm.json");

/// `count` records of one alarm each, ids `k-0` …
fn alarms(count: u64) -> Value {
    let now = SystemTime::now();
    kinesis::batch(
        (0..count)
            .map(|n| {
                let data = ALARM.trim().replace("e-200", &format!("k-{n}"));
                kinesis::record(n, data.as_bytes(), now)
            })
            .collect(),
    )
}

fn resumes_from(response: &Value) -> Vec<String> {
    response["batchItemFailures"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["itemIdentifier"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn handle(forwarder: &S3Forwarder, event: &Value, deadline: Instant) -> Value {
    match forwarder.handle(event, deadline).await {
        Ok(response) => response,
        Err(e) => panic!("a Kinesis batch failed the invocation: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_publishes_each_alert_once_and_counts_what_is_broken() {
    let f = Fixture::new().await;
    let event: Value = serde_json::from_str(BATCH).unwrap_or(Value::Null);
    let response = handle(&f.forwarder(), &event, soon()).await;
    assert_eq!(response, json!({"batchItemFailures": []}));
    let counts = f.broker.stored_counts();
    let mut ids: Vec<&String> = counts.keys().collect();
    ids.sort();
    assert_eq!(
        ids,
        ["e-199", "e-200", "e-202"],
        "a repeat is published once"
    );
    assert!(counts.values().all(|n| *n == 1));
    let stored = f.broker.stored();
    let alarm = stored
        .iter()
        .find(|m| m.header("Solace-Message-ID") == Some("e-200"))
        .unwrap_or_else(|| panic!("e-200 not stored"));
    let payload: Value = serde_json::from_str(&alarm.body).unwrap_or(Value::Null);
    let sequence = "49590338271490256608559692538361571095921575989136580002";
    assert_eq!(
        payload["data"]["object"],
        json!({"stream": "monitron-live-export", "shard": "shardId-000000000000", "sequenceNumber": sequence})
    );
    assert_eq!(
        alarm.header("Solace-Correlation-ID"),
        Some(format!("kinesis://monitron-live-export/shardId-000000000000/{sequence}").as_str())
    );
    assert_eq!(
        alarm.destination,
        "monitron/asset/alert/ALARM/Plant A/Site 1/Pump 7/Motor DE"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_event_names_its_record_and_the_retry_from_there_delivers_it() {
    let f = Fixture::new().await;
    f.broker
        .script("k-2", vec![Reply::Status(503, "Spool Over Quota"); 5]);
    f.broker
        .script("k-4", vec![Reply::Status(503, "Spool Over Quota"); 5]);
    let forwarder = f.forwarder();
    let event = alarms(6);
    let response = handle(&forwarder, &event, soon()).await;
    assert_eq!(
        resumes_from(&response),
        [kinesis::sequence_number(2)],
        "the earliest record not done"
    );
    let mut stored = f.broker.stored_ids();
    stored.sort();
    assert_eq!(stored, ["k-0", "k-1", "k-3", "k-5"]);

    // Lambda resumes the shard at k-2: the records from there come again.
    let records = event["Records"].as_array().cloned().unwrap_or_default();
    let again = kinesis::batch(records[2..].to_vec());
    let response = handle(&forwarder, &again, soon()).await;
    assert!(resumes_from(&response).is_empty(), "{response}");
    let counts = f.broker.stored_counts();
    assert_eq!(counts.len(), 6);
    assert_eq!(counts.get("k-2"), Some(&1));
    // k-3 and k-5 come again with the shard: the same message id, for subscribers to drop.
    assert_eq!(counts.get("k-3"), Some(&2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_event_is_recorded_and_does_not_hold_the_shard() {
    let f = Fixture::new().await;
    f.broker
        .script("k-1", vec![Reply::Status(400, "Bad Request")]);
    let sink = Arc::new(FailureSink::S3 {
        client: f.s3.clone(),
        at: e2b::aws::s3::S3Location::new(&f.bucket, "refusals/"),
    });
    let forwarder = f.forwarder().with_refusals(Some(sink.clone()));
    let response = handle(&forwarder, &alarms(3), soon()).await;
    assert!(resumes_from(&response).is_empty(), "{response}");
    let records: Vec<RefusedEvent> = match sink.list(10, 0).await {
        Ok(found) => found.into_iter().map(|f| f.record).collect(),
        Err(e) => panic!("{e}"),
    };
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].event_id, "k-1");
    assert_eq!(
        records[0].object,
        format!(
            "kinesis://monitron-live-export/shardId-000000000000/{}",
            kinesis::sequence_number(1)
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_not_reached_by_the_deadline_are_handed_back() {
    let f = Fixture::new().await;
    let response = handle(&f.forwarder(), &alarms(3), Instant::now()).await;
    assert_eq!(resumes_from(&response), [kinesis::sequence_number(0)]);
    assert_eq!(f.broker.requests(), 0);
}

/// Firehose copies the stream to S3: the record read from the object and from the stream is
/// one event, one message id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_reaching_the_mesh_both_ways_carries_one_message_id() {
    let f = Fixture::new().await;
    f.put("copy.json", ALARM.as_bytes()).await;
    let forwarder = f.forwarder();
    assert!(
        forwarder
            .handle(&f.s3_event(&["copy.json"]), soon())
            .await
            .is_ok()
    );
    let stream = kinesis::batch(vec![kinesis::record(
        7,
        ALARM.as_bytes(),
        SystemTime::now() - Duration::from_secs(1),
    )]);
    handle(&forwarder, &stream, soon()).await;
    let stored = f.broker.stored();
    assert_eq!(stored.len(), 2);
    let ids: Vec<Option<&str>> = stored
        .iter()
        .map(|m| m.header("Solace-Message-ID"))
        .collect();
    assert_eq!(ids, [Some("e-200"), Some("e-200")]);
    let payloads: Vec<Value> = stored
        .iter()
        .map(|m| serde_json::from_str(&m.body).unwrap_or(Value::Null))
        .collect();
    assert_eq!(payloads[0]["id"], payloads[1]["id"]);
    assert_eq!(payloads[0]["source"], payloads[1]["source"]);
    assert_eq!(stored[0].destination, stored[1].destination);
}

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// Any mix of holds (503s, some longer than one invocation retries) and refusals, the
    /// batch retried from where the response says, as Lambda does: every event ends delivered
    /// or recorded, order per shard is kept (nothing before the reported record is sent again),
    /// and a refusal never holds the shard. (A refused record after a held one in its batch is
    /// read again with the shard, refused again and recorded again: at least once.)
    #[test]
    fn the_shard_resumes_at_the_earliest_record_not_done(
        holds in prop::collection::vec(prop_oneof![6 => Just(0usize), 3 => 1usize..8, 1 => Just(99usize)], 1..25),
        batch_size in 1usize..10,
    ) {
        let runtime = crate::support::runtime(true);
        let (stored, refused, resumed_correctly, rounds) = runtime.block_on(async {
            let f = Fixture::new().await;
            for (n, hold) in holds.iter().enumerate() {
                let id = format!("k-{n}");
                match hold {
                    0 => {}
                    99 => f.broker.script(&id, vec![Reply::Status(400, "Bad Request"); 99]),
                    n => f.broker.script(&id, vec![Reply::Status(503, "Spool Over Quota"); *n]),
                }
            }
            let sink = Arc::new(FailureSink::S3 {
                client: f.s3.clone(),
                at: e2b::aws::s3::S3Location::new(&f.bucket, "refusals/"),
            });
            let forwarder = f.forwarder().with_refusals(Some(sink.clone()));
            let records = alarms(holds.len() as u64)["Records"].as_array().cloned().unwrap_or_default();
            let mut next = 0usize;
            let mut rounds = 0;
            let mut resumed_correctly = true;
            while next < records.len() && rounds < 40 {
                rounds += 1;
                let end = (next + batch_size).min(records.len());
                let before = f.broker.stored_counts();
                let response = handle(&forwarder, &kinesis::batch(records[next..end].to_vec()), soon()).await;
                let after = f.broker.stored_counts();
                // Records before the batch were checkpointed: never sent again.
                resumed_correctly &= (0..next).all(|i| {
                    let id = format!("k-{i}");
                    before.get(&id) == after.get(&id)
                });
                next = match resumes_from(&response).first() {
                    Some(sequence) => records
                        .iter()
                        .position(|r| r["kinesis"]["sequenceNumber"].as_str() == Some(sequence))
                        .unwrap_or(end),
                    None => end,
                };
            }
            let refused: Vec<String> = match sink.list::<RefusedEvent>(100, 0).await {
                Ok(found) => found.into_iter().map(|f| f.record.event_id).collect(),
                Err(e) => panic!("{e}"),
            };
            (f.broker.stored_counts(), refused, resumed_correctly, rounds)
        });
        prop_assert!(rounds < 40, "the shard never got through");
        prop_assert!(resumed_correctly, "a checkpointed record was sent again");
        for (n, hold) in holds.iter().enumerate() {
            let id = format!("k-{n}");
            if *hold == 99 {
                prop_assert!(refused.contains(&id), "{} not recorded", id);
                prop_assert!(!stored.contains_key(&id));
            } else {
                prop_assert!(stored.get(&id).copied().unwrap_or(0) >= 1, "{} lost", id);
            }
        }
    }
}
