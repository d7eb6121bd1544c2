//! `e2b console` page times (run by `bench/console.sh`).
//!
//! `bench_console [EPISODES] [FAILURES] [ROUNDS]` seeds moto (`E2B_MOTO_SERVER`) with EPISODES
//! position records (each one episode, most ended, a tenth open, with its notification) in an
//! idempotency table, and FAILURES processor failure records and as many broker refusals under
//! an S3 prefix; starts the console in process over them, as `e2b console` does; then asks for
//! each page ROUNDS times over HTTP and prints p50 / p95 per page, against the same requests
//! refused by the access guard (no rendering, the baseline of the HTTP round trip).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use chrono::Utc;
use e2b::aws::records::{FailureSink, FailureTarget};
use e2b::cli::console::access::Access;
use e2b::cli::console::snapshot::{Clients, Sources};
use e2b::cli::console::{Console, serve};
use e2b::processor::episode::model::Change;
use e2b::processor::episode::state::{Filed, Place, PositionState, Seen};
use e2b::processor::failures::FailureRecord;
use support::moto;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let episodes = args.first().copied().unwrap_or(10_000);
    let failures = args.get(1).copied().unwrap_or(1_000);
    let rounds = args.get(2).copied().unwrap_or(100);
    support::runtime(true).block_on(bench(episodes, failures, rounds));
}

fn record(i: usize) -> String {
    let now = Utc::now();
    let since = now - chrono::Duration::minutes(i as i64 * 7);
    let site = format!("Site {}", i % 12);
    let asset = format!("Pump {}", i / 3);
    let mut state = PositionState::new(Place {
        label: format!("{site} / {asset} / Motor DE"),
        technical_object: format!("{:08}", 10_000_000 + i / 3),
        object_kind: "EAMS_EQUI".into(),
        position: Some("Motor DE".into()),
        project: Some(format!("Plant {}", i % 3)),
        site: Some(site.to_string()),
    });
    let alert = Change {
        time: since,
        id: format!("a-{i}"),
        state: "ALARM".into(),
        closure: None,
    };
    state.remember(Seen {
        line: format!("{since} WARNING -> ALARM; Monitron event: a-{i}"),
        change: alert,
        priority: Some("1".into()),
        draft: None,
        close: None,
        trace: Some(e2b::trace::TraceParent::for_alert("bench", &format!("a-{i}")).trace_id()),
    });
    let open = i.is_multiple_of(10);
    if !open {
        let end = Change {
            time: since + chrono::Duration::hours(3),
            id: format!("h-{i}"),
            state: "HEALTHY".into(),
            closure: None,
        };
        state.remember(Seen {
            line: format!("recovered; Monitron event: h-{i}"),
            change: end,
            priority: None,
            draft: None,
            close: Some(Default::default()),
            trace: Some(e2b::trace::TraceParent::for_alert("bench", &format!("h-{i}")).trace_id()),
        });
    }
    state.file(Filed {
        number: format!("{}", 20_000_000 + i),
        reference: format!("MON{i:017}"),
        creator: format!("a-{i}"),
        lines: BTreeSet::from([format!("a-{i}")]),
        priority: Some("1".into()),
        titled_by: format!("a-{i}"),
        started_by: None,
        open_seen: None,
        sealed_after: None,
        completed: !open,
        unsure: false,
        forgotten_lines: 0,
        chart: Default::default(),
    });
    state.to_json()
}

async fn seed_episodes(count: usize) -> String {
    let (client, table) = moto::table("console-bench").await;
    let requests: Vec<WriteRequest> = (0..count)
        .filter_map(|i| {
            let item = PutRequest::builder()
                .item("id", AttributeValue::S(format!("episode#position-{i:06}")))
                .item("record", AttributeValue::S(record(i)))
                .build()
                .ok()?;
            Some(WriteRequest::builder().put_request(item).build())
        })
        .collect();
    for batch in requests.chunks(25) {
        if let Err(e) = client
            .batch_write_item()
            .request_items(&table, batch.to_vec())
            .send()
            .await
        {
            panic!("seeding episodes: {e}");
        }
    }
    table
}

async fn seed_failures(count: usize, bucket: &str) {
    let s3 = moto::s3().await;
    let aws = moto::aws_config().await;
    let sink = FailureSink::new(
        Some(&FailureTarget::parse(&format!("s3://{bucket}/failures/")).expect("a target")),
        s3.clone(),
        &aws,
    );
    for i in 0..count {
        let record = FailureRecord {
            version: 1,
            recorded_at: e2b::aws::records::recorded_now(),
            event_id: format!("f-{i}"),
            source: "monitron/111122223333/Plant%20A".into(),
            rule: Some("alarm".into()),
            action: Some("create_notification".into()),
            step: None,
            reason: "S/4 refused the request: 400 IW/123: Technical object is invalid".into(),
            request: None,
            completed_steps: Default::default(),
            delivery: "{}".into(),
            traceparent: None,
        };
        if let Err(e) = sink.record(&record).await {
            panic!("seeding failures: {e}");
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(at).copied().unwrap_or_default()
}

async fn bench(episodes: usize, failures: usize, rounds: usize) {
    let started = Instant::now();
    let table = seed_episodes(episodes).await;
    let s3 = moto::s3().await;
    let bucket = moto::unique("console-bench");
    if let Err(e) = s3.create_bucket().bucket(&bucket).send().await {
        panic!("bucket: {e}");
    }
    seed_failures(failures, &bucket).await;
    eprintln!(
        "seeded {episodes} episodes and {failures} failures in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let aws = moto::aws_config().await;
    let clients = Clients {
        dynamodb: aws_sdk_dynamodb::Client::new(&aws),
        cloudwatch: aws_sdk_cloudwatch::Client::new(&aws),
        s3: s3.clone(),
        aws,
    };
    let sources = Sources {
        episodes_table: Some(table),
        failures: FailureTarget::parse(&format!("s3://{bucket}/failures/")).ok(),
        refusals: None,
        trend_table: None,
    };
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("listen: {e}"),
    };
    let port = listener.local_addr().map_or(0, |a| a.port());
    let access = Access::new(port).expect("a token");
    let token = access.token().to_string();
    let console = Arc::new(Console::new(access, sources, clients));
    let read = Instant::now();
    let snapshot = console.read().await;
    let positions = snapshot.positions.as_ref().map_or(0, Vec::len);
    eprintln!(
        "first read: {positions} positions, {} failures in {:.1} s",
        snapshot.failures.as_ref().map_or(0, Vec::len),
        read.elapsed().as_secs_f64()
    );
    tokio::spawn(serve(listener, console));
    let http = reqwest::Client::new();
    let origin = format!("http://127.0.0.1:{port}");
    let pages = [
        "/",
        "/episodes",
        "/episodes?all=1&page=150",
        "/position?key=position-004242",
        "/failures",
        "/search?q=Pump%201234",
    ];
    let time = |path: &str, with_token: bool| {
        let request = http.get(format!("{origin}{path}"));
        let request = if with_token {
            request.header("Cookie", format!("e2b_console={token}"))
        } else {
            request
        };
        async move {
            let start = Instant::now();
            let answer = request.send().await;
            let ok = match answer {
                Ok(a) => {
                    let status = a.status().as_u16();
                    let _ = a.bytes().await;
                    status
                }
                Err(_) => 0,
            };
            (start.elapsed(), ok)
        }
    };
    println!("{episodes} episodes, {failures} failures, {rounds} requests per page");
    let mut worst = Duration::ZERO;
    for page in pages {
        let (mut served, mut refused) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let (took, status) = time(page, true).await;
            assert_eq!(status, 200, "{page}");
            served.push(took);
            let (took, status) = time(page, false).await;
            assert_eq!(status, 401, "{page}");
            refused.push(took);
        }
        served.sort();
        refused.sort();
        let p95 = percentile(&served, 0.95);
        worst = worst.max(p95);
        println!(
            "{page:32} p50 {:7.2} ms  p95 {:7.2} ms  (refused by the guard: p95 {:.2} ms, ratio {:.1})",
            percentile(&served, 0.5).as_secs_f64() * 1000.0,
            p95.as_secs_f64() * 1000.0,
            percentile(&refused, 0.95).as_secs_f64() * 1000.0,
            p95.as_secs_f64() / percentile(&refused, 0.95).as_secs_f64().max(1e-6)
        );
    }
    println!(
        "slowest page p95: {:.1} ms (target < 300 ms)",
        worst.as_secs_f64() * 1000.0
    );
}
