//! The forwarder handler against real peers: S3 and Secrets Manager on moto server (real HTTP,
//! the real AWS SDK) and the Solace REST test broker, with faults on demand.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::broker::{Reply, TestBroker};
use crate::support::moto;
use e2b::aws::secrets::{CachedCredentials, SecretLayout};
use e2b::broker::{BrokerConfig, Publisher};
use e2b::forwarder::scan::ScanConfig;
use e2b::forwarder::trigger::KeyFilter;
use e2b::forwarder::{Forwarder, ForwarderSettings, HandlerError};

const USER: &str = "solace-cloud-client";
const PASSWORD: &str = "first-s3cret-value";
const NDJSON_GZ: &[u8] = include_bytes!("../../events/objects/monitron-v2-ndjson.json.gz");
const CONCATENATED: &[u8] = include_bytes!("../../events/objects/monitron-v2-concatenated.json");
const ALARM: &str =
    include_str!("../../events/records/illustrative-v2-asset-state-transition-alarm.json");

pub(crate) type S3Forwarder = Forwarder<aws_sdk_s3::Client, aws_sdk_secretsmanager::Client>;

pub(crate) struct Fixture {
    pub broker: TestBroker,
    pub bucket: String,
    pub secret: String,
    pub s3: aws_sdk_s3::Client,
    secrets: aws_sdk_secretsmanager::Client,
    /// The ETag S3 gave each key's last upload: notifications carry it.
    etags: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl Fixture {
    pub async fn new() -> Fixture {
        let broker = TestBroker::start(USER, PASSWORD).await;
        Self::with_broker(broker, json!({"username": USER, "password": PASSWORD})).await
    }

    /// A fixture around `broker`, whose credentials secret holds `secret`.
    pub async fn with_broker(broker: TestBroker, secret: Value) -> Fixture {
        let value = secret.to_string();
        let s3 = moto::s3().await;
        let secrets = moto::secrets().await;
        let bucket = moto::unique("monitron-export");
        let secret = moto::unique("aem-credentials");
        if let Err(e) = s3.create_bucket().bucket(&bucket).send().await {
            panic!(
                "create bucket: {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            );
        }
        moto::create_secret(&secrets, &secret, &value).await;
        Fixture {
            broker,
            bucket,
            secret,
            s3,
            secrets,
            etags: Default::default(),
        }
    }

    pub async fn put(&self, key: &str, body: &[u8]) {
        let etag = moto::put(&self.s3, &self.bucket, key, body.to_vec()).await;
        if let Ok(mut etags) = self.etags.lock() {
            etags.insert(key.to_string(), etag);
        }
    }

    pub fn mesh(&self) -> BrokerConfig {
        self.broker.mesh_config()
    }

    pub fn forwarder_with(&self, mesh: BrokerConfig, concurrency: usize) -> S3Forwarder {
        self.forwarder_built(mesh, concurrency, &self.secret, KeyFilter::default())
    }

    /// A forwarder reading the broker credentials from `secret`, with `filter` on keys.
    fn forwarder_built(
        &self,
        mesh: BrokerConfig,
        concurrency: usize,
        secret: &str,
        filter: KeyFilter,
    ) -> S3Forwarder {
        self.forwarder_reading(mesh, concurrency, secret, SecretLayout::BrokerLogon, filter)
    }

    /// A forwarder publishing with `mesh`, its secret (`layout`) read from Secrets Manager.
    pub fn forwarder_reading(
        &self,
        mesh: BrokerConfig,
        concurrency: usize,
        secret: &str,
        layout: SecretLayout,
        filter: KeyFilter,
    ) -> S3Forwarder {
        let credentials = Arc::new(
            CachedCredentials::new(self.secrets.clone(), secret, Duration::from_secs(300))
                .with_layout(layout),
        );
        let publisher = Publisher::new(mesh, credentials).expect("publisher (Publisher::new)");
        Forwarder::new(
            self.s3.clone(),
            Arc::new(publisher),
            ForwarderSettings {
                scan: ScanConfig::default(),
                filter,
                concurrency,
            },
        )
    }

    pub fn forwarder(&self) -> S3Forwarder {
        self.forwarder_with(self.mesh(), 16)
    }

    /// A direct S3 notification for these keys, encoded as S3 encodes them, with the ETag of
    /// each key's last upload.
    pub fn s3_event(&self, keys: &[&str]) -> Value {
        let etags = self.etags.lock().map(|e| e.clone()).unwrap_or_default();
        let records: Vec<Value> = keys
            .iter()
            .map(|key| {
                json!({
                    "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
                    "eventTime": "2024-03-01T09:01:02.345Z", "eventName": "ObjectCreated:Put",
                    "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": self.bucket, "arn": format!("arn:aws:s3:::{}", self.bucket)},
                           "object": {"key": e2b::forwarder::replay::form_urlencode(key), "size": 1,
                                      "eTag": etags.get(*key)}}
                })
            })
            .collect();
        json!({ "Records": records })
    }
}

/// `count` copies of the alarm record, one per line, with ids `{prefix}-0000`, `{prefix}-0001`, ...
pub(crate) fn alarms(prefix: &str, count: usize) -> String {
    (0..count)
        .map(|i| ALARM.trim().replace("e-200", &format!("{prefix}-{i:04}")))
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) fn soon() -> Instant {
    Instant::now() + Duration::from_secs(20)
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_becomes_one_persistent_message_per_alert_change() {
    let f = Fixture::new().await;
    let key = "project=Plant A/site=Site 1/time=2024-03-01 00:00:00/monitron-v2-ndjson.json.gz";
    f.put(key, NDJSON_GZ).await;
    let result = f.forwarder().handle(&f.s3_event(&[key]), soon()).await;
    let summary = result.expect("result (soon)");
    assert_eq!(summary["delivered"], 3);
    assert_eq!(summary["duplicates"], 1);
    assert_eq!(
        sorted(f.broker.stored_ids()),
        ids(&["e-199", "e-200", "e-201"])
    );
    let stored = f.broker.stored();
    let alarm = stored
        .iter()
        .find(|m| m.header("Solace-Message-ID") == Some("e-200"))
        .unwrap_or_else(|| panic!("e-200 not stored"));
    assert_eq!(alarm.kind, "TOPIC");
    assert_eq!(
        alarm.destination,
        "monitron/asset/alert/ALARM/Plant A/Site 1/Pump 7/Motor DE"
    );
    assert_eq!(alarm.header("Content-Type"), Some("application/json"));
    assert_eq!(alarm.header("Solace-Delivery-Mode"), Some("persistent"));
    assert_eq!(alarm.header("Solace-DMQ-Eligible"), Some("true"));
    assert_eq!(
        alarm.header("Solace-Correlation-ID"),
        Some(e2b::broker::ascii_header(&format!("s3://{}/{key}", f.bucket)).as_str())
    );
    let payload: Value = serde_json::from_str(&alarm.body).unwrap_or(Value::Null);
    assert_eq!(payload["id"], "e-200");
    assert_eq!(
        payload["data"]["object"],
        json!({"bucket": f.bucket, "key": key})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_until_the_broker_takes_the_message() {
    let f = Fixture::new().await;
    f.put("a.json", CONCATENATED).await;
    f.broker.script(
        "e-200",
        vec![
            Reply::Status(503, "Spool Over Quota"),
            Reply::Status(503, "Spool Over Quota"),
        ],
    );
    f.broker.script(
        "e-201",
        vec![Reply::Drop, Reply::Status(429, "Too Many Requests")],
    );
    let result = f.forwarder().handle(&f.s3_event(&["a.json"]), soon()).await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(f.broker.attempts("e-200"), 3);
    assert_eq!(f.broker.attempts("e-201"), 3);
    assert_eq!(
        sorted(f.broker.stored_ids()),
        ids(&["e-199", "e-200", "e-201"]),
        "each stored once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_does_not_answer_in_time_is_tried_again() {
    let f = Fixture::new().await;
    f.put("slow.json", CONCATENATED).await;
    f.broker.script(
        "e-199",
        vec![Reply::Delay(
            Duration::from_secs(3),
            Box::new(Reply::Status(503, "Late")),
        )],
    );
    let result = f
        .forwarder()
        .handle(&f.s3_event(&["slow.json"]), soon())
        .await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(f.broker.attempts("e-199"), 2);
    assert_eq!(
        sorted(f.broker.stored_ids()),
        ids(&["e-199", "e-200", "e-201"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_failure_records_a_refused_event_fails_the_invocation_by_name() {
    let f = Fixture::new().await;
    f.put("b.json", CONCATENATED).await;
    f.broker
        .script("e-200", vec![Reply::Status(400, "Queue Not Found")]);
    let result = f.forwarder().handle(&f.s3_event(&["b.json"]), soon()).await;
    let Err(HandlerError::Forward(error)) = result else {
        panic!("{result:?}")
    };
    let message = error.to_string();
    assert!(
        message.contains(&format!("s3://{}/b.json", f.bucket)),
        "{message}"
    );
    assert!(
        message.contains(
            "e-200 (refused by the broker: 400 Queue Not Found (FAILURE_RECORDS is not set, so it is not recorded))"
        ),
        "{message}"
    );
    assert!(message.contains("2 delivered"), "{message}");
    assert_eq!(f.broker.attempts("e-200"), 1, "a 4xx is not retried");
    assert_eq!(sorted(f.broker.stored_ids()), ids(&["e-199", "e-201"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_is_read_again_after_a_401() {
    let f = Fixture::new().await;
    f.put("c.json", CONCATENATED).await;
    let forwarder = f.forwarder();
    // Warm: the first invocation caches the first password.
    assert!(
        forwarder
            .handle(&f.s3_event(&["c.json"]), soon())
            .await
            .is_ok()
    );
    // The password is rotated in the secret and on the broker.
    let rotated = json!({"username": USER, "password": "second-s3cret-value"}).to_string();
    moto::put_secret(&f.secrets, &f.secret, &rotated).await;
    f.broker.set_credentials(USER, "second-s3cret-value");
    f.put("d.json", ALARM.replace("e-200", "e-300").as_bytes())
        .await;
    let result = forwarder.handle(&f.s3_event(&["d.json"]), soon()).await;
    assert!(result.is_ok(), "{result:?}");
    assert!(f.broker.stored_ids().contains(&"e-300".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_fail_after_one_fresh_read_of_the_secret() {
    let f = Fixture::new().await;
    f.put("e.json", ALARM.as_bytes()).await;
    f.broker.set_credentials(USER, "rotated-s3cret-nobody-has");
    let result = f.forwarder().handle(&f.s3_event(&["e.json"]), soon()).await;
    let Err(error) = result else {
        panic!("delivered with wrong credentials")
    };
    let message = error.to_string();
    assert!(message.contains("e-200 (401 Unauthorized"), "{message}");
    assert!(
        !message.contains(PASSWORD),
        "the password leaked: {message}"
    );
    assert_eq!(
        f.broker.attempts("e-200"),
        0,
        "401s are answered before a message id counts"
    );
    assert_eq!(
        f.broker.requests(),
        2,
        "one try, one more after reading the secret again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_deleted_before_it_is_read_is_skipped() {
    let f = Fixture::new().await;
    let result = f
        .forwarder()
        .handle(&f.s3_event(&["gone.json"]), soon())
        .await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(f.broker.requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_with_special_characters_reach_s3_exactly() {
    let f = Fixture::new().await;
    let key = "project=Plant A/site=Werk Süd/time=2024-03-01 10:47:07/a+b (1)&c.json";
    f.put(key, ALARM.as_bytes()).await;
    let result = f.forwarder().handle(&f.s3_event(&[key]), soon()).await;
    assert!(result.is_ok(), "{result:?}");
    let stored = f.broker.stored();
    assert_eq!(stored.len(), 1);
    let payload: Value = serde_json::from_str(&stored[0].body).unwrap_or(Value::Null);
    assert_eq!(payload["data"]["object"]["key"], key);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_records_go_out_sixteen_at_a_time() {
    let f = Fixture::new().await;
    let object = alarms("bulk", 500);
    f.put("bulk.json", object.as_bytes()).await;
    f.broker.set_default(Reply::Delay(
        Duration::from_millis(20),
        Box::new(Reply::Accept),
    ));
    let result = f
        .forwarder()
        .handle(&f.s3_event(&["bulk.json"]), soon())
        .await;
    let summary = result.expect("summary (soon)");
    assert_eq!(summary["delivered"], 500);
    let stored = f.broker.stored_ids();
    assert_eq!(stored.len(), 500);
    let mut unique = stored.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 500, "no event stored twice");
    let peak = f.broker.max_in_flight();
    assert!(peak <= 16, "at most 16 in flight, saw {peak}");
    assert!(peak >= 8, "publishes overlap: peak {peak}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_fails_the_invocation_before_the_deadline() {
    let f = Fixture::new().await;
    f.put("f.json", ALARM.as_bytes()).await;
    let mut mesh = f.mesh();
    mesh.broker = e2b::broker::Broker::Aem(e2b::broker::AemRest::topics(
        reqwest::Url::parse("http://127.0.0.1:9").expect("reqwest::Url::parse in the test set-up"),
    ));
    mesh.retry.attempts = 100;
    let start = Instant::now();
    let result = f
        .forwarder_with(mesh, 4)
        .handle(
            &f.s3_event(&["f.json"]),
            Instant::now() + Duration::from_secs(2),
        )
        .await;
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "took {:?}",
        start.elapsed()
    );
    let Err(error) = result else {
        panic!("delivered to nobody")
    };
    assert!(
        error.to_string().contains("e-200 (not delivered after"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_batches_report_only_the_failed_messages() {
    let f = Fixture::new().await;
    f.put("good.json", ALARM.as_bytes()).await;
    f.put("bad.json", ALARM.replace("e-200", "e-400").as_bytes())
        .await;
    f.broker
        .script("e-400", vec![Reply::Status(403, "Publish ACL Denied")]);
    let body = |key: &str| f.s3_event(&[key]).to_string();
    let batch = json!({"Records": [
        {"messageId": "m-good", "eventSource": "aws:sqs", "body": body("good.json")},
        {"messageId": "m-bad", "eventSource": "aws:sqs", "body": body("bad.json")},
        {"messageId": "m-junk", "eventSource": "aws:sqs", "body": "not json"}
    ]});
    let result = f.forwarder().handle(&batch, soon()).await;
    let response = result.expect("result (soon)");
    assert_eq!(
        response,
        json!({"batchItemFailures": [{"itemIdentifier": "m-bad"}, {"itemIdentifier": "m-junk"}]})
    );
    assert_eq!(f.broker.stored_ids(), ids(&["e-200"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventbridge_and_the_test_event_are_understood() {
    let f = Fixture::new().await;
    let key = "project=Plant A/x y.json";
    f.put(key, ALARM.as_bytes()).await;
    let event = json!({"version": "0", "id": "1", "detail-type": "Object Created", "source": "aws.s3",
        "detail": {"bucket": {"name": f.bucket}, "object": {"key": key, "size": 1}}});
    assert!(f.forwarder().handle(&event, soon()).await.is_ok());
    assert_eq!(f.broker.stored_ids(), ids(&["e-200"]));
    let test_event = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": f.bucket});
    assert_eq!(
        f.forwarder().handle(&test_event, soon()).await.ok(),
        Some(json!({"testEvent": "acknowledged"}))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_is_named_in_the_failure() {
    let f = Fixture::new().await;
    f.put("g.json", ALARM.as_bytes()).await;
    let forwarder = f.forwarder_built(f.mesh(), 4, "no-such-secret", KeyFilter::default());
    let Err(error) = forwarder.handle(&f.s3_event(&["g.json"]), soon()).await else {
        panic!()
    };
    assert!(
        error
            .to_string()
            .contains("cannot read secret no-such-secret"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_filter_skips_firehose_error_objects() {
    let f = Fixture::new().await;
    f.put("error/processing-failed/x.json", ALARM.as_bytes())
        .await;
    let filter = KeyFilter {
        exclude_prefixes: vec!["error/".into()],
        ..KeyFilter::default()
    };
    let forwarder = f.forwarder_built(f.mesh(), 4, &f.secret, filter);
    assert!(
        forwarder
            .handle(&f.s3_event(&["error/processing-failed/x.json"]), soon())
            .await
            .is_ok()
    );
    assert_eq!(f.broker.requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_stops_at_the_deadline_and_says_so() {
    let f = Fixture::new().await;
    let object = alarms("late", 2000);
    f.put("late.json", object.as_bytes()).await;
    f.put("never.json", ALARM.as_bytes()).await;
    f.broker.set_default(Reply::Delay(
        Duration::from_millis(50),
        Box::new(Reply::Accept),
    ));
    let start = Instant::now();
    let result = f
        .forwarder_with(f.mesh(), 4)
        .handle(
            &f.s3_event(&["late.json", "never.json"]),
            Instant::now() + Duration::from_secs(1),
        )
        .await;
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "took {:?}",
        start.elapsed()
    );
    let Err(HandlerError::Forward(error)) = result else {
        panic!("{result:?}")
    };
    let message = error.to_string();
    assert!(
        message.contains(
            "late.json: stopped at the invocation's deadline before the end of the object"
        ),
        "{message}"
    );
    assert!(
        message.contains("never.json: not read: no time left before the invocation's deadline"),
        "{message}"
    );
    let delivered = f.broker.stored_ids().len();
    assert!(
        delivered > 0 && delivered < 2000,
        "{delivered} delivered before the deadline"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqs_batch_where_nothing_went_through_fails_whole() {
    let f = Fixture::new().await;
    f.put("refused.json", ALARM.as_bytes()).await;
    f.broker
        .script("e-200", vec![Reply::Status(403, "Publish ACL Denied")]);
    let batch = json!({"Records": [
        {"messageId": "m-1", "eventSource": "aws:sqs", "body": f.s3_event(&["refused.json"]).to_string()},
        {"messageId": "m-2", "eventSource": "aws:sqs", "body": "not json"}
    ]});
    let result = f.forwarder().handle(&batch, soon()).await;
    let Err(HandlerError::Forward(error)) = result else {
        panic!("{result:?}")
    };
    let message = error.to_string();
    assert!(
        message.contains("403 Publish ACL Denied") && message.contains("SQS message m-2"),
        "{message}"
    );
}
