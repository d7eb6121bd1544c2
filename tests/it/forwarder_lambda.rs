//! The `forwarder` binary as Lambda runs it: under `cargo lambda watch` (the Lambda runtime API
//! emulator), invoked with `cargo lambda invoke --data-file`, against moto and the test broker.

use serde_json::{Value, json};

use crate::support::broker::{Reply, TestBroker};
use crate::support::lambda_watch::{Watch, watch};
use crate::support::moto;

const USER: &str = "solace-cloud-client";
const PASSWORD: &str = "lambda-test-s3cret";

fn invoke(watch: &Watch, event: &Value) -> (bool, String) {
    crate::support::lambda_watch::invoke(watch, "forwarder", event)
}

/// The forwarder's environment: the broker, its secret, AWS on moto, and `extra`.
fn lambda_env<const N: usize>(
    broker: &TestBroker,
    secret: &str,
    extra: [(&'static str, String); N],
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("AEM_REST_URL", broker.url.clone()),
        ("AEM_CREDENTIALS_SECRET", secret.to_string()),
        ("AWS_ENDPOINT_URL", moto::endpoint().to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_ACCESS_KEY_ID", "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
        ("S3_FORCE_PATH_STYLE", "true".to_string()),
        ("PUBLISH_TIMEOUT_MS", "1000".to_string()),
    ];
    env.extend(extra);
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forwarder_lambda_runs_under_cargo_lambda() {
    let broker = TestBroker::start(USER, PASSWORD).await;
    let s3 = moto::s3().await;
    let secrets = moto::secrets().await;
    let bucket = moto::unique("lambda-export");
    let secret = moto::unique("lambda-aem");
    assert!(s3.create_bucket().bucket(&bucket).send().await.is_ok());
    let credentials = json!({"username": USER, "password": PASSWORD}).to_string();
    moto::create_secret(&secrets, &secret, &credentials).await;
    let key = "project=Plant A/site=Site 1/time=2024-03-01 00:00:00/monitron-v2-ndjson.json.gz";
    let object = include_bytes!("../../events/objects/monitron-v2-ndjson.json.gz").to_vec();
    moto::put(&s3, &bucket, key, object).await;

    // The S3 notification sample from events/, pointed at this test's bucket.
    let mut event: Value =
        serde_json::from_str(include_str!("../../events/s3/s3-object-created.json"))
            .unwrap_or(Value::Null);
    event["Records"][0]["s3"]["bucket"]["name"] = json!(bucket);

    let env = lambda_env(&broker, &secret, []);
    let log_path = std::env::temp_dir().join(format!("e2b-watch-{}.log", std::process::id()));
    let watch_log = log_path.clone();
    let lambda = tokio::task::spawn_blocking(move || watch("forwarder", &env, &watch_log))
        .await
        .expect("lambda (watch)");

    let ok_event = event.clone();
    let lambda = std::sync::Arc::new(lambda);
    let first = lambda.clone();
    let (ok, output) = tokio::task::spawn_blocking(move || invoke(&first, &ok_event))
        .await
        .expect("invoke in the test set-up");
    assert!(ok, "invocation failed: {output}");
    assert!(output.contains("\"delivered\":3"), "{output}");
    let mut stored = broker.stored_ids();
    stored.sort();
    assert_eq!(stored, vec!["e-199", "e-200", "e-201"]);

    // A refused event fails the invocation, naming it, so that Lambda would retry.
    broker.script("e-201", vec![Reply::Status(403, "Publish ACL Denied")]);
    let second = lambda.clone();
    let (ok, output) = tokio::task::spawn_blocking(move || invoke(&second, &event))
        .await
        .expect("invoke in the test set-up");
    assert!(!ok, "the invocation should fail: {output}");
    assert!(
        output.contains("e-201") && output.contains("403 Publish ACL Denied"),
        "{output}"
    );
    assert!(!output.contains(PASSWORD));

    // The function's own log (what CloudWatch would hold) names the failure, never the secret.
    drop(lambda);
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    crate::support::show_log(&log);
    let _ = std::fs::remove_file(&log_path);
    assert!(
        log.contains("event not delivered"),
        "the function logged nothing useful:\n{log}"
    );
    assert!(
        !log.contains(PASSWORD),
        "the password reached the function's log"
    );
    assert!(
        !log.contains("Authorization"),
        "an Authorization header reached the function's log"
    );
    // One CloudWatch Embedded Metric Format line per invocation, by function and by broker.
    assert!(
        log.contains("\"_aws\"") && log.contains("\"EventsForwarded\":3"),
        "no EMF metrics:\n{log}"
    );
    assert!(
        log.contains("\"Broker\":\"AEM\"") && log.contains("[\"Function\",\"Broker\"]"),
        "no Broker dimension:\n{log}"
    );
}

/// The delivery ledger and the refusal records as Lambda runs them (issue 13): invoked again
/// after a failure, as Lambda retries an asynchronous event, the retry publishes only the held
/// event; the refused one is in the queue; the metrics count what the broker got, also for the
/// failed invocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_invocation_sends_only_what_is_missing_under_cargo_lambda() {
    let broker = TestBroker::start(USER, PASSWORD).await;
    let s3 = moto::s3().await;
    let secrets = moto::secrets().await;
    let bucket = moto::unique("ledger-export");
    let secret = moto::unique("ledger-aem");
    let (_, table) = moto::table("progress").await;
    let (sqs, queue_url) = moto::queue("forwarder-refusals").await;
    assert!(s3.create_bucket().bucket(&bucket).send().await.is_ok());
    let credentials = json!({"username": USER, "password": PASSWORD}).to_string();
    moto::create_secret(&secrets, &secret, &credentials).await;
    let key = "project=Plant A/site=Site 1/ledger.json";
    let body = crate::forwarder::alarms("w", 50);
    let put = s3
        .put_object()
        .bucket(&bucket)
        .key(key)
        .body(body.into_bytes().into());
    let etag = match put.send().await {
        Ok(out) => out
            .e_tag()
            .unwrap_or_default()
            .trim_matches('"')
            .to_string(),
        Err(e) => panic!("put: {}", aws_sdk_s3::error::DisplayErrorContext(&e)),
    };
    let mut event: Value =
        serde_json::from_str(include_str!("../../events/s3/s3-object-created.json"))
            .unwrap_or(Value::Null);
    event["Records"][0]["s3"]["bucket"]["name"] = json!(bucket);
    event["Records"][0]["s3"]["object"]["key"] = json!(e2b::forwarder::replay::form_urlencode(key));
    event["Records"][0]["s3"]["object"]["eTag"] = json!(etag);
    broker.script("w-0003", vec![Reply::Status(400, "Bad Request")]);
    broker.script("w-0007", vec![Reply::Status(503, "Spool Over Quota"); 4]);

    let env = lambda_env(
        &broker,
        &secret,
        [
            ("PROGRESS_TABLE", table),
            ("FAILURE_RECORDS", queue_url.clone()),
            ("PUBLISH_MAX_ATTEMPTS", "3".to_string()),
        ],
    );
    let log_path =
        std::env::temp_dir().join(format!("e2b-watch-ledger-{}.log", std::process::id()));
    let watch_log = log_path.clone();
    let lambda = tokio::task::spawn_blocking(move || watch("forwarder", &env, &watch_log))
        .await
        .expect("lambda (watch)");
    let lambda = std::sync::Arc::new(lambda);
    let mut outputs = Vec::new();
    for _ in 0..2 {
        let (this, event) = (lambda.clone(), event.clone());
        let result = tokio::task::spawn_blocking(move || invoke(&this, &event)).await;
        outputs.push(result.expect("invoke in the test set-up"));
    }
    let (ok, output) = &outputs[0];
    assert!(
        !ok,
        "the held event should fail the first invocation: {output}"
    );
    assert!(
        output.contains("w-0007") && !output.contains("w-0003"),
        "{output}"
    );
    let (ok, output) = &outputs[1];
    assert!(ok, "the retry failed: {output}");
    assert!(
        output.contains("\"delivered\":1") && output.contains("\"alreadyDone\":49"),
        "{output}"
    );
    let counts = broker.stored_counts();
    assert_eq!(counts.len(), 49);
    assert!(counts.values().all(|n| *n == 1), "duplicates: {counts:?}");
    let bodies = moto::queue_bodies(&sqs, &queue_url).await;
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert!(bodies[0].contains("\"event_id\":\"w-0003\"") && bodies[0].contains("\"status\":400"));

    drop(lambda);
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    crate::support::show_log(&log);
    let _ = std::fs::remove_file(&log_path);
    // The failed invocation counts the 48 events the broker got, and the one recorded.
    assert!(
        log.contains("\"EventsForwarded\":48") && log.contains("\"EventsRefused\":1"),
        "metrics of the failed invocation:\n{log}"
    );
    assert!(
        log.contains("\"EventsAlreadyDone\":49"),
        "metrics of the retry:\n{log}"
    );
}

/// Monitron's Kinesis stream as Lambda hands it over (issue 14): the sample batch from
/// `events/kinesis/` with `cargo lambda invoke --data-file`; then a batch with a held event (the
/// partial batch response names its record) and a refused one (a failure record; the batch
/// goes on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forwarder_lambda_answers_a_kinesis_batch_under_cargo_lambda() {
    let broker = TestBroker::start(USER, PASSWORD).await;
    let secrets = moto::secrets().await;
    let secret = moto::unique("kinesis-aem");
    let credentials = json!({"username": USER, "password": PASSWORD}).to_string();
    moto::create_secret(&secrets, &secret, &credentials).await;
    let (sqs, queue_url) = moto::queue("kinesis-refusals").await;
    let env = lambda_env(
        &broker,
        &secret,
        [
            ("FAILURE_RECORDS", queue_url.clone()),
            ("PUBLISH_MAX_ATTEMPTS", "2".to_string()),
        ],
    );
    let log_path =
        std::env::temp_dir().join(format!("e2b-watch-kinesis-{}.log", std::process::id()));
    let watch_log = log_path.clone();
    let lambda = tokio::task::spawn_blocking(move || watch("forwarder", &env, &watch_log))
        .await
        .expect("lambda (watch)");
    let lambda = std::sync::Arc::new(lambda);
    let sample: Value = serde_json::from_str(include_str!(
        "../../events/kinesis/kinesis-monitron-batch.json"
    ))
    .unwrap_or(Value::Null);
    let now = std::time::SystemTime::now();
    let alarm =
        include_str!("../../events/records/illustrative-v2-asset-state-transition-alarm.json");
    let held = crate::support::kinesis::batch(
        (0..4)
            .map(|n| {
                let data = alarm.trim().replace("e-200", &format!("s-{n}"));
                crate::support::kinesis::record(n, data.as_bytes(), now)
            })
            .collect(),
    );
    broker.script("s-1", vec![Reply::Status(400, "Bad Request")]);
    broker.script("s-2", vec![Reply::Status(503, "Spool Over Quota"); 2]);
    let mut outputs = Vec::new();
    for event in [sample, held] {
        let this = lambda.clone();
        let result = tokio::task::spawn_blocking(move || invoke(&this, &event)).await;
        outputs.push(result.expect("invoke in the test set-up"));
    }
    let (ok, output) = &outputs[0];
    assert!(ok, "{output}");
    assert!(output.contains("\"batchItemFailures\":[]"), "{output}");
    let (ok, output) = &outputs[1];
    assert!(ok, "a Kinesis batch never fails the invocation: {output}");
    let resume = crate::support::kinesis::sequence_number(2);
    assert!(
        output.contains(&format!("\"itemIdentifier\":\"{resume}\"")),
        "the held event's record: {output}"
    );
    let mut stored = broker.stored_ids();
    stored.sort();
    assert_eq!(stored, ["e-199", "e-200", "e-202", "s-0", "s-3"]);
    let bodies = moto::queue_bodies(&sqs, &queue_url).await;
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert!(bodies[0].contains("\"event_id\":\"s-1\""), "{}", bodies[0]);

    drop(lambda);
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    crate::support::show_log(&log);
    let _ = std::fs::remove_file(&log_path);
    // Broken records are logged with their shard and sequence number.
    assert!(
        log.contains("malformed Kinesis record skipped")
            && log.contains("49590338271490256608559692538361571095921575989136580004"),
        "{log}"
    );
}
