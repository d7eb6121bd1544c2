//! `e2b scan s3://...` and `e2b replay` as a user runs them, against moto, the Solace REST test
//! broker and the Lambda Invoke API.

use std::process::Output;

use serde_json::{Value, json};

use crate::support::broker::TestBroker;
use crate::support::lambda_api::LambdaApi;
use crate::support::moto;

const NDJSON_GZ: &[u8] = include_bytes!("../../events/objects/monitron-v2-ndjson.json.gz");
const V1: &[u8] = include_bytes!("../../events/objects/monitron-v1-pretty.json");

pub(crate) struct Store {
    pub(crate) bucket: String,
}

pub(crate) async fn store_with_objects() -> Store {
    let s3 = moto::s3().await;
    let bucket = moto::unique("replay");
    assert!(s3.create_bucket().bucket(&bucket).send().await.is_ok());
    for (key, body) in [
        (
            "project=Plant A/site=Site 1/time=2024-03-01 00:00:00/a.json.gz",
            NDJSON_GZ,
        ),
        (
            "project=Plant A/site=Site 1/time=2024-03-01 01:00:00/b.json",
            V1,
        ),
        ("other/c.json", V1),
    ] {
        assert!(
            s3.put_object()
                .bucket(&bucket)
                .key(key)
                .body(body.to_vec().into())
                .send()
                .await
                .is_ok()
        );
    }
    Store { bucket }
}

async fn e2b(args: Vec<String>, env: Vec<(&'static str, String)>) -> Output {
    crate::support::cli::e2b(args, env).await
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ids(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| v["id"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_reads_s3_objects_like_the_lambda() {
    let store = store_with_objects().await;
    let url = format!(
        "s3://{}/project=Plant A/site=Site 1/time=2024-03-01 00:00:00/a.json.gz",
        store.bucket
    );
    let output = e2b(vec!["scan".into(), url], vec![]).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(ids(&output), vec!["e-199", "e-200", "e-201"]);
    let first: Value = String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    assert_eq!(first["data"]["object"]["bucket"], store.bucket);

    let missing = e2b(
        vec!["scan".into(), format!("s3://{}/nope.json", store.bucket)],
        vec![],
    )
    .await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("nope.json"),
        "{}",
        stderr(&missing)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_counts_what_would_be_sent_within_the_time_range() {
    let store = store_with_objects().await;
    let prefix = format!("s3://{}/project=Plant A/", store.bucket);
    let output = e2b(
        vec!["replay".into(), prefix.clone(), "--dry-run".into()],
        vec![],
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("2 object(s) under"), "{err}");
    assert!(
        err.contains("2 object(s), 4 event(s) would be published (dry run), 0 object(s) failed"),
        "{err}"
    );

    let future = e2b(
        vec![
            "replay".into(),
            prefix.clone(),
            "--dry-run".into(),
            "--since".into(),
            "2999-01-01".into(),
        ],
        vec![],
    )
    .await;
    assert!(
        stderr(&future).contains("0 object(s) under"),
        "{}",
        stderr(&future)
    );
    let past = e2b(
        vec![
            "replay".into(),
            prefix,
            "--dry-run".into(),
            "--until".into(),
            "2001-01-01T00:00:00Z".into(),
        ],
        vec![],
    )
    .await;
    assert!(
        stderr(&past).contains("0 object(s) under"),
        "{}",
        stderr(&past)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_publishes_through_the_same_publisher() {
    let store = store_with_objects().await;
    let broker = TestBroker::start("replayer", "replay-s3cret").await;
    let secrets = moto::secrets().await;
    let secret = moto::unique("replay-aem");
    let value = json!({"username": "replayer", "password": "replay-s3cret"}).to_string();
    moto::create_secret(&secrets, &secret, &value).await;
    let env = vec![
        ("AEM_REST_URL", broker.url.clone()),
        ("AEM_CREDENTIALS_SECRET", secret),
    ];
    let output = e2b(
        vec!["replay".into(), format!("s3://{}/project=", store.bucket)],
        env,
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("2 object(s), 4 event(s) delivered, 0 object(s) failed"),
        "{}",
        stderr(&output)
    );
    let mut stored = broker.stored_ids();
    stored.sort();
    assert_eq!(stored, vec!["409623", "e-199", "e-200", "e-201"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_without_settings_names_what_is_missing() {
    let store = store_with_objects().await;
    let output = e2b(
        vec!["replay".into(), format!("s3://{}/", store.bucket)],
        vec![],
    )
    .await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("AEM_REST_URL is missing"),
        "{}",
        stderr(&output)
    );
    let bad = e2b(
        vec!["replay".into(), "/local/path".into(), "--dry-run".into()],
        vec![],
    )
    .await;
    assert_eq!(bad.status.code(), Some(2));
    let bad_time = e2b(
        vec![
            "replay".into(),
            "s3://b/".into(),
            "--dry-run".into(),
            "--since".into(),
            "soon".into(),
        ],
        vec![],
    )
    .await;
    assert_eq!(bad_time.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_can_hand_each_object_to_the_deployed_forwarder() {
    let store = store_with_objects().await;
    let lambda = LambdaApi::start().await;
    let env = vec![("AWS_ENDPOINT_URL_LAMBDA", lambda.url.clone())];
    let output = e2b(
        vec![
            "replay".into(),
            format!("s3://{}/project=Plant A/", store.bucket),
            "--invoke".into(),
            "monitron-forwarder".into(),
        ],
        env,
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let invocations = lambda
        .invocations
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    assert_eq!(invocations.len(), 2);
    let mut keys = Vec::new();
    for (function, payload) in &invocations {
        assert_eq!(function, "monitron-forwarder");
        let event: Value = serde_json::from_str(payload).unwrap_or(Value::Null);
        match e2b::forwarder::trigger::parse(&event) {
            Ok(e2b::forwarder::trigger::Trigger::Objects(objects)) => {
                keys.extend(objects.into_iter().map(|o| o.location.key))
            }
            other => panic!("{other:?}"),
        }
    }
    keys.sort();
    assert_eq!(
        keys,
        vec![
            "project=Plant A/site=Site 1/time=2024-03-01 00:00:00/a.json.gz",
            "project=Plant A/site=Site 1/time=2024-03-01 01:00:00/b.json",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_counts_with_the_forwarders_selection() {
    let s3 = moto::s3().await;
    let bucket = moto::unique("dryrun");
    assert!(s3.create_bucket().bucket(&bucket).send().await.is_ok());
    let record = include_bytes!("../../events/records/illustrative-v2-sensor-disconnected.json");
    assert!(
        s3.put_object()
            .bucket(&bucket)
            .key("connectivity/a.json")
            .body(record.to_vec().into())
            .send()
            .await
            .is_ok()
    );
    let run = |env: Vec<(&'static str, String)>| {
        e2b(
            vec![
                "replay".into(),
                format!("s3://{bucket}/connectivity/"),
                "--dry-run".into(),
            ],
            env,
        )
    };
    let default = run(vec![]).await;
    assert!(
        stderr(&default).contains("1 object(s), 0 event(s) would be published"),
        "{}",
        stderr(&default)
    );
    let connectivity = run(vec![("FORWARD_CONNECTIVITY", "true".into())]).await;
    assert!(
        stderr(&connectivity).contains("1 object(s), 1 event(s) would be published"),
        "FORWARD_CONNECTIVITY is the forwarder's setting, and the dry run's: {}",
        stderr(&connectivity)
    );
    let wrong = run(vec![("FORWARD_CONNECTIVITY", "sometimes".into())]).await;
    assert_eq!(wrong.status.code(), Some(2), "{}", stderr(&wrong));
}
