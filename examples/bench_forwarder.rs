//! Forwarder benchmarks (run by `bench/forwarder.sh`).
//!
//! `bench_forwarder publish [EVENTS] [LATENCY_MS] [CONCURRENCY]`: one object of EVENTS alert
//! transitions goes through the real forwarder path (local object store → decoder → publisher)
//! to the Solace REST test broker answering after LATENCY_MS; then the same number of plain
//! `reqwest` POSTs with the same concurrency, as a baseline. Prints events/s, the ratio to the
//! bound `concurrency / latency`, and the ratio to the baseline.
//!
//! `bench_forwarder publish-event-mesh [EVENTS] [LATENCY_MS] [CONCURRENCY]`: the same through
//! the Event Mesh test peer (`messagingrest`, a bearer token from its token endpoint), against
//! plain `reqwest` POSTs with the same token and headers.
//!
//! `bench_forwarder publish-traced off|on [EVENTS] [LATENCY_MS] [CONCURRENCY]` (issue 31): the
//! same object through the forwarder, set up as the Lambda is (its log layer; with `on`, the
//! OpenTelemetry layer exporting over OTLP/HTTP to the collector test peer, flushed after each
//! pass inside the time measured); prints the best of three passes and the spans exported, and
//! with `off` what making an alert's trace context costs per event (the only tracing work then).
//! `bench/forwarder.sh` runs off and on alternately, each in a process of its own (the
//! subscriber is global), and prints their ratio.
//!
//! `bench_forwarder publish-series [POSITIONS] [LATENCY_MS] [CONCURRENCY]` (issue 32): one object
//! as Firehose writes it in a few minutes of a plant's export (one hourly measurement of each of
//! POSITIONS positions, and an alarm for every twentieth) through the forwarder with the trend
//! series off, then on (DynamoDB on moto), then on through the trend queue (SQS on moto),
//! alternately, three times each; prints the records per
//! second of the best pass of each and their ratio (target >= 0.8).
//!
//! `bench_forwarder cold-start FORWARDER_BINARY`: runs the Lambda binary against a minimal Lambda
//! Runtime API on 127.0.0.1, hands it one `s3:TestEvent`, and prints the time from process start
//! to the response, and the idle RSS after it.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use e2b::aws::s3::LocalDir;
use e2b::aws::secrets::{CachedCredentials, SecretError, SecretLayout, SecretStore};
use e2b::broker::{AemRest, Broker, EventMeshRest};
use e2b::forwarder::ledger::Ledger;
use e2b::forwarder::scan::{ScanConfig, Scanner};
use e2b::forwarder::trigger::ObjectRef;
use e2b::forwarder::{Forwarder, ObjectOutcome};
use support::broker::{Reply, TestBroker};

const ALARM: &str =
    include_str!("../events/records/illustrative-v2-asset-state-transition-alarm.json");
const MEASUREMENT: &str = include_str!("../events/records/monitron-v2-measurement.json");

struct FixedSecret;

impl SecretStore for FixedSecret {
    async fn secret_string(&self, _id: &str) -> Result<String, SecretError> {
        Ok(r#"{"username":"bench","password":"bench-password"}"#.to_string())
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = support::runtime(true);
    let number =
        |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    match args.first().map(String::as_str) {
        Some("publish") => runtime.block_on(publish(
            number(1, 10_000),
            number(2, 2),
            number(3, 16) as usize,
        )),
        Some("publish-event-mesh") => runtime.block_on(publish_event_mesh(
            number(1, 10_000),
            number(2, 2),
            number(3, 16) as usize,
        )),
        Some("publish-traced") => runtime.block_on(publish_traced(
            args.get(1).is_some_and(|a| a == "on"),
            number(2, 10_000),
            number(3, 2),
            number(4, 16),
        )),
        Some("publish-series") => runtime.block_on(publish_series(
            number(1, 2000),
            number(2, 2),
            number(3, 16) as usize,
        )),
        Some("cold-start") => match args.get(1) {
            Some(binary) => runtime.block_on(cold_start(binary)),
            None => eprintln!("usage: bench_forwarder cold-start FORWARDER_BINARY"),
        },
        _ => eprintln!(
            "usage: bench_forwarder publish|publish-event-mesh [EVENTS] [LATENCY_MS] [CONCURRENCY] | cold-start BINARY"
        ),
    }
}

/// The Solace REST test broker answering every publish after `latency_ms`.
async fn slow_broker(latency_ms: u64) -> TestBroker {
    let broker = TestBroker::start("bench", "bench-password").await;
    broker.set_default(Reply::Delay(
        Duration::from_millis(latency_ms),
        Box::new(Reply::Accept),
    ));
    broker
}

/// The forwarder reading the bench object in `dir` and publishing to `broker` over AEM's REST.
fn aem_forwarder(
    dir: &std::path::Path,
    broker: &TestBroker,
    concurrency: usize,
) -> Forwarder<LocalDir, FixedSecret> {
    let mesh = support::bench_broker(Broker::Aem(AemRest::topics(
        reqwest::Url::parse(&broker.url).expect("reqwest::Url::parse in the test set-up"),
    )));
    let credentials = Arc::new(CachedCredentials::new(
        FixedSecret,
        "bench",
        Duration::from_secs(300),
    ));
    support::local_forwarder(dir, mesh, credentials, concurrency)
}

async fn publish(events: u64, latency_ms: u64, concurrency: usize) {
    let broker = slow_broker(latency_ms).await;
    let Some(dir) = bench_object(events) else {
        return;
    };
    let forwarder = aem_forwarder(&dir, &broker, concurrency);
    let Some((delivered, elapsed)) = run(&forwarder, None).await else {
        return;
    };
    // The same object again with the delivery ledger on (DynamoDB on moto), as a first read:
    // every acknowledgement is noted.
    let with_ledger = if std::env::var_os("E2B_MOTO_SERVER").is_some() {
        let (client, table) = support::moto::table("bench-progress").await;
        let ledger = Ledger {
            client,
            table,
            keep: Duration::from_secs(3600),
        };
        let forwarder = forwarder.with_ledger(Some(ledger));
        run(&forwarder, Some("bench-etag")).await
    } else {
        None
    };
    let _ = std::fs::remove_dir_all(&dir);
    let rate = delivered as f64 / elapsed.as_secs_f64();
    let bound = concurrency as f64 / (latency_ms as f64 / 1000.0);

    // Baseline: the same POSTs straight from reqwest, same concurrency, no decoding.
    let client = reqwest::Client::new();
    let (baseline_ok, baseline_rate) = baseline(events, concurrency, |i| {
        client
            .post(format!("{}/TOPIC/bench/baseline", broker.url))
            .basic_auth("bench", Some("bench-password"))
            .header("Solace-Message-ID", format!("baseline-{i}"))
            .body(ALARM.to_string())
    })
    .await;

    // What one request really takes with this broker on this machine (timer granularity and
    // the shared cores add to the nominal latency): sequential requests.
    let start = Instant::now();
    let rounds = 200u32;
    for i in 0..rounds {
        let _ = client
            .post(format!("{}/TOPIC/bench/latency", broker.url))
            .basic_auth("bench", Some("bench-password"))
            .header("Solace-Message-ID", format!("latency-{i}"))
            .body(ALARM.to_string())
            .send()
            .await;
    }
    let round_trip = start.elapsed() / rounds;
    let effective_bound = concurrency as f64 / round_trip.as_secs_f64();

    println!(
        "events:            {delivered} delivered in {:.3} s (broker latency {latency_ms} ms, concurrency {concurrency})",
        elapsed.as_secs_f64()
    );
    println!("forwarder:         {rate:.0} events/s");
    println!("bound:             {bound:.0} events/s (concurrency / latency)");
    println!("ratio to bound:    {:.2} (target >= 0.5)", rate / bound);
    println!(
        "baseline:          {baseline_rate:.0} events/s (plain reqwest POSTs, {baseline_ok} ok)"
    );
    println!("ratio to baseline: {:.2}", rate / baseline_rate);
    match with_ledger {
        Some((n, took)) => {
            let ledger_rate = n as f64 / took.as_secs_f64();
            println!(
                "with the ledger:   {ledger_rate:.0} events/s ({n} delivered and noted in DynamoDB on moto), ratio to bound {:.2}, ratio to the ledger off {:.2} (target >= 0.5)",
                ledger_rate / bound,
                ledger_rate / rate
            );
        }
        None => println!("with the ledger:   not measured (E2B_MOTO_SERVER is not set)"),
    }
    println!(
        "round trip:        {:.2} ms measured one at a time → effective bound {effective_bound:.0} events/s, ratio {:.2}",
        round_trip.as_secs_f64() * 1000.0,
        rate / effective_bound
    );
}

/// The trend series' cost: the same object of measurements (and a few alarms) with the series
/// off and on, alternately.
async fn publish_series(positions: u64, latency_ms: u64, concurrency: usize) {
    use e2b::forwarder::series::SeriesKeeper;
    use e2b::trend::store::TrendTable;
    if std::env::var_os("E2B_MOTO_SERVER").is_none() {
        eprintln!("publish-series needs E2B_MOTO_SERVER (DynamoDB on moto)");
        return;
    }
    let broker = slow_broker(latency_ms).await;
    let dir = std::env::temp_dir().join(format!("e2b-bench-series-{}", std::process::id()));
    let object_path = dir.join("bench-bucket").join("bench.json");
    let mut body = Vec::new();
    for p in 0..positions {
        let position = format!("\"positionName\":\"Bearing {p:05}\"");
        body.push(
            MEASUREMENT
                .trim()
                .replace("\"eventId\":\"180\"", &format!("\"eventId\":\"m-{p}\""))
                .replace("\"positionName\":\"Anders\"", &position),
        );
        if p % 20 == 0 {
            body.push(ALARM.trim().replace("e-200", &format!("a-{p}")));
        }
    }
    let records = body.len() as u64;
    if let Some(parent) = object_path.parent()
        && let Err(e) = std::fs::create_dir_all(parent)
            .and_then(|()| std::fs::write(&object_path, body.join("\n")))
    {
        eprintln!("cannot write the bench object: {e}");
        return;
    }
    let (client, table) = support::moto::table("bench-trend").await;
    let table = TrendTable { client, table };
    let keeper = SeriesKeeper::new(table.clone());
    let (sqs, url) = support::moto::queue("bench-trend-points").await;
    let queue = e2b::forwarder::series::queue::TrendQueue { client: sqs, url };
    let queued = SeriesKeeper::new(table).with_queue(Some(queue));
    let off = aem_forwarder(&dir, &broker, concurrency);
    let on = aem_forwarder(&dir, &broker, concurrency).with_series(Some(keeper.clone()));
    let via_queue = aem_forwarder(&dir, &broker, concurrency).with_series(Some(queued.clone()));
    let mut bests = [Duration::MAX; 3];
    for _ in 0..3 {
        for series in [0, 1, 2] {
            let object = ObjectRef {
                location: e2b::aws::s3::S3Location::new("bench-bucket", "bench.json"),
                version_id: None,
                etag: None,
                size: None,
            };
            let forwarder = [&off, &on, &via_queue][series];
            // Each pass a new invocation: the forwarder makes its scanner from its settings.
            let mut scanner = None;
            let start = Instant::now();
            let deadline = start + Duration::from_secs(600);
            let outcome = forwarder
                .forward_object(&mut scanner, &object, deadline)
                .await;
            let took = start.elapsed();
            if !matches!(outcome, ObjectOutcome::Done { .. }) {
                eprintln!("bench failed: {outcome:?}");
                return;
            }
            bests[series] = bests[series].min(took);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let [best_off, best_on, best_queued] = bests;
    let rate = |d: Duration| records as f64 / d.as_secs_f64();
    let (kept, not_kept) = keeper.counts();
    println!(
        "series off: {:.0} records/s ({records} records: {positions} measurements, {} alarms; best of 3 {:.1} ms)",
        rate(best_off),
        records - positions,
        best_off.as_secs_f64() * 1000.0
    );
    println!(
        "series on:  {:.0} records/s (best of 3 {:.1} ms; points kept {kept}, not kept {not_kept}, DynamoDB on moto)",
        rate(best_on),
        best_on.as_secs_f64() * 1000.0
    );
    println!(
        "series on, through the trend queue: {:.0} records/s (best of 3 {:.1} ms; points queued {}, SQS on moto)",
        rate(best_queued),
        best_queued.as_secs_f64() * 1000.0,
        queued.queued()
    );
    println!(
        "series on / off, written directly: {:.2}",
        rate(best_on) / rate(best_off)
    );
    println!(
        "series on / off, through the trend queue (the template's): {:.2} (target >= 0.8)",
        rate(best_queued) / rate(best_off)
    );
}

/// The bench object of `events` alarms, in a fresh directory (the local object store's root).
fn bench_object(events: u64) -> Option<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("e2b-bench-{}", std::process::id()));
    let object_path = dir.join("bench-bucket").join("bench.json");
    let body: Vec<String> = (0..events)
        .map(|i| ALARM.trim().replace("e-200", &format!("bench-{i:06}")))
        .collect();
    if let Some(parent) = object_path.parent()
        && let Err(e) = std::fs::create_dir_all(parent)
            .and_then(|()| std::fs::write(&object_path, body.join("\n")))
    {
        eprintln!("cannot write the bench object: {e}");
        return None;
    }
    Some(dir)
}

/// `events` requests made by `request`, `concurrency` at a time: (answered 2xx, per second).
async fn baseline(
    events: u64,
    concurrency: usize,
    request: impl Fn(u64) -> reqwest::RequestBuilder,
) -> (u64, f64) {
    let limit = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    let start = Instant::now();
    for i in 0..events {
        let Ok(permit) = limit.clone().acquire_owned().await else {
            break;
        };
        let request = request(i);
        tasks.spawn(async move {
            let ok = request.send().await.is_ok_and(|r| r.status().is_success());
            drop(permit);
            ok
        });
    }
    let mut ok = 0u64;
    while let Some(done) = tasks.join_next().await {
        ok += u64::from(done.unwrap_or(false));
    }
    (ok, ok as f64 / start.elapsed().as_secs_f64())
}

/// The publish rate through SAP Event Mesh's `messagingrest` (the test peer answering after
/// `latency_ms`), against plain reqwest POSTs with the same bearer token and headers.
async fn publish_event_mesh(events: u64, latency_ms: u64, concurrency: usize) {
    let em = support::event_mesh::TestEventMesh::start("acme/plant/bench", "bench", "bench-s3cret")
        .await;
    em.set_latency(Duration::from_millis(latency_ms));
    let Some(dir) = bench_object(events) else {
        return;
    };
    let config = support::bench_broker(Broker::EventMesh(EventMeshRest::default()));
    let credentials = Arc::new(
        CachedCredentials::new(
            support::broker::FixedSecret(em.service_key().to_string()),
            "bench",
            Duration::from_secs(300),
        )
        .with_layout(SecretLayout::EventMeshServiceKey),
    );
    let forwarder = support::local_forwarder(&dir, config, credentials, concurrency);
    let Some((delivered, elapsed)) = run(&forwarder, None).await else {
        return;
    };
    let _ = std::fs::remove_dir_all(&dir);
    let rate = delivered as f64 / elapsed.as_secs_f64();

    let client = reqwest::Client::new();
    let token: serde_json::Value = match client
        .post(format!("{}/oauth/token", em.url))
        .basic_auth("bench", Some("bench-s3cret"))
        .body("grant_type=client_credentials")
        .send()
        .await
    {
        Ok(answer) => answer.json().await.unwrap_or_default(),
        Err(e) => {
            eprintln!("no token for the baseline: {e}");
            return;
        }
    };
    let token = token["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let url = format!(
        "{}/messagingrest/v1/topics/acme%2Fplant%2Fbench%2Fbaseline/messages",
        em.url
    );
    let (baseline_ok, baseline_rate) = baseline(events, concurrency, |_| {
        client
            .post(&url)
            .bearer_auth(&token)
            .header("x-qos", "1")
            .header("Content-Type", "application/json")
            .body(ALARM.to_string())
    })
    .await;
    let bound = concurrency as f64 / (latency_ms.max(1) as f64 / 1000.0);
    println!(
        "events:            {delivered} delivered to SAP Event Mesh in {:.3} s (latency {latency_ms} ms, concurrency {concurrency}, {} token requests)",
        elapsed.as_secs_f64(),
        em.token_requests()
    );
    println!("forwarder:         {rate:.0} events/s");
    println!(
        "ratio to bound:    {:.2} (concurrency / latency: {bound:.0} events/s)",
        rate / bound
    );
    println!(
        "baseline:          {baseline_rate:.0} events/s (plain reqwest POSTs, {baseline_ok} ok)"
    );
    println!("ratio to baseline: {:.2}", rate / baseline_rate);
}

async fn publish_traced(export: bool, events: u64, latency_ms: u64, concurrency: u64) {
    let broker = slow_broker(latency_ms).await;
    let Some(dir) = bench_object(events) else {
        return;
    };
    let collector = support::otlp::TestCollector::start().await;
    // As the Lambda sets it up: its log layer (errors only here), and with export on the
    // OpenTelemetry layer exporting to the collector.
    let endpoint = collector.url.clone();
    let telemetry = e2b::trace::Telemetry::init_with("bench-forwarder", move |name| match name {
        "OTEL_EXPORTER_OTLP_ENDPOINT" if export => Some(endpoint.clone()),
        "AWS_LAMBDA_LOG_LEVEL" => Some("error".into()),
        _ => None,
    });
    assert_eq!(e2b::trace::exporting(), export, "span export");
    let forwarder = aem_forwarder(&dir, &broker, concurrency as usize);
    let mut best = 0f64;
    for _ in 0..3 {
        let start = Instant::now();
        let Some((n, _)) = run(&forwarder, None).await else {
            return;
        };
        // The end of an invocation: spans exported (a no-op with export off).
        telemetry.flush();
        best = best.max(n as f64 / start.elapsed().as_secs_f64());
    }
    let _ = std::fs::remove_dir_all(&dir);
    let publishes = collector
        .spans()
        .iter()
        .filter(|s| s.name.starts_with("publish"))
        .count();
    let state = if export { "on" } else { "off" };
    println!(
        "export {state}: {best:.0} events/s (best of 3 passes of {events} events, flush included), {publishes} publish spans exported"
    );
    if !export {
        // What export off still does per event: derive the alert's trace and write it.
        let rounds = 100_000u32;
        let start = Instant::now();
        let mut bytes = 0usize;
        for i in 0..rounds {
            let trace = e2b::trace::TraceParent::for_alert(
                "monitron/111122223333/Plant%20A",
                &i.to_string(),
            );
            bytes += trace.to_string().len();
        }
        let per_event = start.elapsed() / rounds;
        println!(
            "trace context: {:.2} us per event to derive and write ({bytes} bytes), {:.3}% of an event's time at this rate",
            per_event.as_secs_f64() * 1e6,
            per_event.as_secs_f64() * best * 100.0
        );
    }
}

/// One pass of the bench object through `forwarder`; the ETag names the object to the ledger.
async fn run<S: SecretStore + 'static>(
    forwarder: &Forwarder<LocalDir, S>,
    etag: Option<&str>,
) -> Option<(u64, Duration)> {
    let object = ObjectRef {
        location: e2b::aws::s3::S3Location::new("bench-bucket", "bench.json"),
        version_id: None,
        etag: etag.map(str::to_string),
        size: None,
    };
    let mut scanner = Some(Scanner::new(ScanConfig::default()));
    let start = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(600);
    let outcome = forwarder
        .forward_object(&mut scanner, &object, deadline)
        .await;
    match outcome {
        ObjectOutcome::Done { delivered, .. } => Some((delivered, start.elapsed())),
        other => {
            eprintln!("bench failed: {other:?}");
            None
        }
    }
}

async fn cold_start(binary: &str) {
    use tokio::io::{AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listener (tokio::net::TcpListener::bind)");
    let address = listener.local_addr().expect("address (local_addr)");
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<Instant>(4);
    // A minimal Lambda Runtime API: one s3:TestEvent, then hold the next poll open.
    tokio::spawn(async move {
        let mut served = false;
        while let Ok((stream, _)) = listener.accept().await {
            let done = done_tx.clone();
            let first = !served;
            served = true;
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut reader = BufReader::new(read);
                let mut handed_out = !first;
                while let Ok(Some(request)) = support::http::read_request(&mut reader).await {
                    if request.target.ends_with("/invocation/next") {
                        if handed_out {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            return;
                        }
                        handed_out = true;
                        let body = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"b"}"#;
                        let deadline = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_millis() + 30_000);
                        let reply = format!(
                            "HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: cold-1\r\nLambda-Runtime-Deadline-Ms: {deadline}\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:111122223333:function:forwarder\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if write.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    } else {
                        if request.target.contains("/response") {
                            let _ = done.send(Instant::now()).await;
                        }
                        let _ = write
                            .write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
                            .await;
                    }
                }
            });
        }
    });
    let start = Instant::now();
    let child = std::process::Command::new(binary)
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env(
            "AEM_REST_URL",
            "https://mr-connection-bench.messaging.solace.cloud:9443",
        )
        .env("AEM_CREDENTIALS_SECRET", "bench")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_LAMBDA_FUNCTION_NAME", "forwarder")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_LEVEL", "warn")
        .stdout(std::process::Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot start {binary}: {e}");
            return;
        }
    };
    let answered = tokio::time::timeout(Duration::from_secs(30), done_rx.recv()).await;
    let Ok(Some(at)) = answered else {
        eprintln!("the function did not answer within 30 s");
        let _ = child.kill();
        return;
    };
    let cold = at.duration_since(start);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_kib = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0);
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "cold start:        {:.1} ms (process start → first response; target <= 50)",
        cold.as_secs_f64() * 1000.0
    );
    println!(
        "idle RSS:          {:.1} MiB (target <= 24)",
        rss_kib as f64 / 1024.0
    );
}
