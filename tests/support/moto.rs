//! moto server (S3, Secrets Manager, DynamoDB, SQS, CloudWatch over real HTTP) for the integration tests.
//!
//! `scripts/test.sh` starts one and exports `E2B_MOTO_ENDPOINT`; without it, the first test that
//! needs moto starts `moto_server` (from `$E2B_MOTO_SERVER`, `PATH` or `.venv/bin`) on a free
//! port, watched so that it stops with the test process.

use std::net::TcpStream;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

static ENDPOINT: OnceLock<String> = OnceLock::new();

/// The moto endpoint, e.g. `http://127.0.0.1:5000`.
pub fn endpoint() -> &'static str {
    ENDPOINT.get_or_init(|| {
        if let Ok(endpoint) = std::env::var("E2B_MOTO_ENDPOINT") {
            return endpoint;
        }
        let server = find_moto_server().unwrap_or_else(|| {
            panic!(
                "moto_server not found: run the tests with `bash scripts/test.sh` (it installs moto \
                 into .venv), or set E2B_MOTO_ENDPOINT to a running moto server"
            )
        });
        let port = free_port();
        let parent = std::process::id();
        // With the venv's python beside it, DynamoDB's conditional writes are made atomic
        // (tests/support/moto_atomic.py), as in DynamoDB.
        let python = std::path::Path::new(&server).with_file_name("python");
        let command = if python.exists() {
            format!(
                "'{}' '{}'",
                python.display(),
                concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/moto_atomic.py")
            )
        } else {
            format!("'{server}'")
        };
        let script = format!(
            "{command} -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; \
             while kill -0 {parent} 2>/dev/null; do sleep 1; done; kill $m"
        );
        if let Err(e) = Command::new("sh").arg("-c").arg(script).spawn() {
            panic!("cannot start moto_server: {e}");
        }
        wait_for(port);
        format!("http://127.0.0.1:{port}")
    })
}

fn find_moto_server() -> Option<String> {
    if let Ok(path) = std::env::var("E2B_MOTO_SERVER") {
        return Some(path);
    }
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/moto_server");
    if std::path::Path::new(venv).exists() {
        return Some(venv.to_string());
    }
    let paths = std::env::var("PATH").unwrap_or_default();
    paths
        .split(':')
        .map(|dir| format!("{dir}/moto_server"))
        .find(|candidate| std::path::Path::new(candidate).exists())
}

fn free_port() -> u16 {
    match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(addr) => addr.port(),
        Err(e) => panic!("no free port: {e}"),
    }
}

fn wait_for(port: u16) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("moto_server did not start on port {port} within 60 s");
}

/// AWS configuration pointing at moto, with dummy credentials.
pub async fn aws_config() -> aws_config::SdkConfig {
    super::init_logs();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .load()
        .await
}

pub async fn s3() -> aws_sdk_s3::Client {
    let config = aws_config().await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    )
}

pub async fn secrets() -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&aws_config().await)
}

/// Creates secret `name` holding `value`, as an operator would.
pub async fn create_secret(client: &aws_sdk_secretsmanager::Client, name: &str, value: &str) {
    let created = client.create_secret().name(name).secret_string(value);
    if let Err(e) = created.send().await {
        panic!(
            "create secret {name}: {}",
            aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
        );
    }
}

/// Puts a new value into secret `name`: a rotation.
pub async fn put_secret(client: &aws_sdk_secretsmanager::Client, name: &str, value: &str) {
    let put = client
        .put_secret_value()
        .secret_id(name)
        .secret_string(value);
    if let Err(e) = put.send().await {
        panic!(
            "put secret {name}: {}",
            aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
        );
    }
}

/// A bucket and a secret name no other test uses.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A new DynamoDB table with partition key `id`, as the template creates the idempotency table
/// (which serves as the forwarder's progress table too).
pub async fn table(prefix: &str) -> (aws_sdk_dynamodb::Client, String) {
    let client = aws_sdk_dynamodb::Client::new(&aws_config().await);
    let table = unique(prefix);
    let created = client
        .create_table()
        .table_name(&table)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                .build()
                .expect("build in the test set-up"),
        )
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                .build()
                .expect("build in the test set-up"),
        )
        .send()
        .await;
    if let Err(e) = created {
        panic!(
            "create table: {}",
            aws_sdk_dynamodb::error::DisplayErrorContext(&e)
        );
    }
    (client, table)
}

/// A data point of the functions' metrics in moto's CloudWatch (which speaks the SDK's Smithy RPC
/// v2 CBOR since moto 5.2.6), as their EMF lines become in CloudWatch: `metric` in namespace `e2b`
/// with dimension `Function`, at `at` (epoch seconds).
pub async fn put_metric(metric: &str, function: &str, at: i64, value: f64) {
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
    let client = aws_sdk_cloudwatch::Client::new(&aws_config().await);
    let datum = MetricDatum::builder()
        .metric_name(metric)
        .dimensions(
            Dimension::builder()
                .name("Function")
                .value(function)
                .build(),
        )
        .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from_secs(at))
        .value(value)
        .build();
    let put = client
        .put_metric_data()
        .namespace(e2b::metrics::NAMESPACE)
        .metric_data(datum);
    if let Err(e) = put.send().await {
        panic!(
            "put metric {metric} of {function}: {}",
            aws_sdk_cloudwatch::error::DisplayErrorContext(&e)
        );
    }
}

/// The bodies of up to ten messages in a queue (they stay in it, hidden for its visibility
/// timeout).
pub async fn queue_bodies(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Vec<String> {
    let received = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .send()
        .await;
    received
        .map(|r| {
            r.messages()
                .iter()
                .filter_map(|m| m.body().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Puts an object; its ETag as S3 notifications carry it (without quotes).
pub async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: Vec<u8>) -> String {
    let put = s3.put_object().bucket(bucket).key(key).body(body.into());
    match put.send().await {
        Ok(out) => out
            .e_tag()
            .unwrap_or_default()
            .trim_matches('"')
            .to_string(),
        Err(e) => panic!("put {key}: {}", aws_sdk_s3::error::DisplayErrorContext(&e)),
    }
}

/// A new SQS queue: its client and URL.
pub async fn queue(prefix: &str) -> (aws_sdk_sqs::Client, String) {
    let sqs = aws_sdk_sqs::Client::new(&aws_config().await);
    let created = sqs.create_queue().queue_name(unique(prefix)).send().await;
    match created {
        Ok(out) => (sqs, out.queue_url().unwrap_or_default().to_string()),
        Err(e) => panic!(
            "create queue: {}",
            aws_sdk_sqs::error::DisplayErrorContext(&e)
        ),
    }
}

/// A new DynamoDB idempotency table (partition key `id`), as the template creates it.
pub async fn idempotency_store() -> e2b::processor::idempotency::DynamoStore {
    let (client, table) = table("idempotency").await;
    e2b::processor::idempotency::DynamoStore {
        client,
        table,
        keep_completed: Duration::from_secs(3600),
    }
}
