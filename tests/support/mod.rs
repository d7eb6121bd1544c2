//! Test peers shared by the integration tests: moto, a Solace REST test broker, the Lambda
//! Invoke API, an S/4HANA OData V2 server, an HTTP destination with an SBPA rule service, an SAP
//! Event Mesh with webhooks, and the processor served over HTTP as its Function URL would be.
#![allow(dead_code)]

pub mod broker;
pub mod browser;
pub mod campaign;
pub mod cli;
pub mod destination;
pub mod edmx;
pub mod endpoint;
pub mod event_mesh;
pub mod http;
pub mod kinesis;
pub mod lambda_api;
pub mod lambda_watch;
pub mod moto;
pub mod otlp;
pub mod proxy;
pub mod s4;
pub mod s4_attachments;
pub mod tls;

/// With `E2B_TEST_LOGS` set (`scripts/test.sh` sets it), the library's logs go, through the
/// subscriber the Lambdas use, to stderr past the test harness's capture, so that
/// `scripts/scan-logs.sh` reads every log line of the suite. Called by the test peers' starts.
pub fn init_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if std::env::var_os("E2B_TEST_LOGS").is_some() {
        ONCE.call_once(|| {
            lambda_http::tracing::init_default_subscriber_with_writer(std::io::stderr);
        });
    }
}

/// Logs of other processes (a Lambda under `cargo lambda watch`, the `e2b` binary), to the same
/// place as [`init_logs`].
pub fn show_log(text: &str) {
    use std::io::Write;
    if std::env::var_os("E2B_TEST_LOGS").is_some() {
        let _ = std::io::stderr().write_all(text.as_bytes());
    }
}

/// The examples' tokio runtime (two workers, or one thread); exits with a message if it cannot
/// start.
pub fn runtime(multi_thread: bool) -> tokio::runtime::Runtime {
    let built = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    built.unwrap_or_else(|e| {
        eprintln!("cannot start tokio: {e}");
        std::process::exit(1);
    })
}

/// The CloudEvents the forwarder makes of an object's bytes, one per forwarded record, built
/// in-process by the forwarder's own scanner with the default settings (what `e2b scan` prints).
pub fn cloudevents(object: &[u8]) -> Vec<String> {
    use e2b::event::Origin;
    use e2b::forwarder::scan::{Report, ScanConfig, Scanner};
    let mut scanner = Scanner::new(ScanConfig::default());
    let origin = Origin::Local {
        path: "test-object.json".into(),
    };
    let mut events = Vec::new();
    scanner
        .scan(&origin, object, |report| {
            if let Report::Event(event) = report {
                events.push(event.payload);
            }
            Ok::<(), String>(())
        })
        .expect("the test object is read to its end");
    events
}

/// The bundled rules with every notification rule set to `per = "event"`: one notification per
/// alert, for the tests of per-event mechanics (tokens, round trips, parallel creates).
pub fn per_event_rules() -> e2b::processor::rules::RuleSet {
    let text =
        e2b::processor::rules::BUNDLED.replace("params = { ", "params = { per = \"event\", ");
    e2b::processor::rules::RuleSet::parse("bundled rules, per event", &text)
        .expect("the bundled rules with per = \"event\" parse")
}

/// The steps of a doctor report (`{"doctor": [{"step": ...}, ...]}`), in order.
pub fn doctor_steps(report: &serde_json::Value) -> Vec<String> {
    report["doctor"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["step"].as_str().map(str::to_string))
        .collect()
}

/// How the benchmarks publish to `broker`: 5 s a request, three attempts with a short backoff.
pub fn bench_broker(broker: e2b::broker::Broker) -> e2b::broker::BrokerConfig {
    e2b::broker::BrokerConfig {
        broker,
        request_timeout: std::time::Duration::from_secs(5),
        retry: e2b::http::retry::Backoff {
            base: std::time::Duration::from_millis(10),
            cap: std::time::Duration::from_millis(100),
            attempts: 3,
        },
    }
}

/// A forwarder reading objects from the local directory `dir` (its buckets are folders),
/// publishing with `config`: the benchmarks' forwarder.
pub fn local_forwarder<S: e2b::aws::secrets::SecretStore + 'static>(
    dir: &std::path::Path,
    config: e2b::broker::BrokerConfig,
    credentials: std::sync::Arc<e2b::aws::secrets::CachedCredentials<S>>,
    concurrency: usize,
) -> e2b::forwarder::Forwarder<e2b::aws::s3::LocalDir, S> {
    let publisher = std::sync::Arc::new(
        e2b::broker::Publisher::new(config, credentials).expect("publisher (Publisher::new)"),
    );
    e2b::forwarder::Forwarder::new(
        e2b::aws::s3::LocalDir {
            root: dir.to_path_buf(),
        },
        publisher,
        e2b::forwarder::ForwarderSettings {
            scan: e2b::forwarder::scan::ScanConfig::default(),
            filter: e2b::forwarder::trigger::KeyFilter::default(),
            concurrency,
        },
    )
}
