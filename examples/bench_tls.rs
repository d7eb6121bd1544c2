//! TLS cost of the forwarder (run by `bench/tls.sh`; issue 21): one object of EVENTS alarms goes
//! through the real forwarder path to the Solace REST test broker over TLS with a private CA
//! (`ca_pem`, Basic logon), then over mutual TLS (client certificate logon), interleaved
//! ROUNDS times on the same machine. Prints each rate, the mutual-TLS rate as a ratio of the
//! plain-TLS one (target >= 0.9), and the requests per TLS handshake the broker saw (target >=
//! 100: one handshake per kept connection, not per request).
//!
//! `bench_tls [EVENTS] [LATENCY_MS] [CONCURRENCY] [ROUNDS]`   (defaults: 5000 2 16 3)

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use e2b::aws::secrets::CachedCredentials;
use e2b::broker::{AemRest, Broker};
use e2b::forwarder::ObjectOutcome;
use e2b::forwarder::scan::{ScanConfig, Scanner};
use e2b::forwarder::trigger::ObjectRef;
use serde_json::json;
use support::broker::{FixedSecret, Reply, TestBroker};
use support::tls::TestCa;

const ALARM: &str =
    include_str!("../events/records/illustrative-v2-asset-state-transition-alarm.json");

fn arg(n: usize, default: u64) -> u64 {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let (events, latency, concurrency, rounds) = (arg(1, 5000), arg(2, 2), arg(3, 16), arg(4, 3));
    support::runtime(true).block_on(bench(events, latency, concurrency as usize, rounds));
}

/// One run: (events delivered, seconds) through a fresh forwarder and connection pool.
async fn run(
    broker: &TestBroker,
    secret: String,
    dir: &std::path::Path,
    concurrency: usize,
) -> (u64, f64) {
    let mesh = support::bench_broker(Broker::Aem(AemRest::topics(
        reqwest::Url::parse(&broker.url).expect("the broker's URL"),
    )));
    let credentials = Arc::new(CachedCredentials::new(
        FixedSecret(secret),
        "bench-broker",
        Duration::from_secs(300),
    ));
    let forwarder = support::local_forwarder(dir, mesh, credentials, concurrency);
    let object = ObjectRef {
        location: e2b::aws::s3::S3Location::new("bench-bucket", "bench.json"),
        version_id: None,
        etag: None,
        size: None,
    };
    let mut scanner = Some(Scanner::new(ScanConfig::default()));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(600);
    let outcome = forwarder
        .forward_object(&mut scanner, &object, deadline)
        .await;
    let seconds = started.elapsed().as_secs_f64();
    match outcome {
        ObjectOutcome::Done { delivered, .. } => (delivered, seconds),
        other => {
            eprintln!("bench failed: {other:?}");
            std::process::exit(1);
        }
    }
}

async fn bench(events: u64, latency_ms: u64, concurrency: usize, rounds: u64) {
    let ca = TestCa::new("Bench Plant CA");
    let server = ca.server();
    let plain = TestBroker::start_tls("bench", "bench-s3cret", ca.server_tls(&server)).await;
    let mutual = TestBroker::start_tls("bench", "unused", ca.mutual_tls(&server)).await;
    for broker in [&plain, &mutual] {
        broker.keep_ids_only();
        broker.set_default(Reply::Delay(
            Duration::from_millis(latency_ms),
            Box::new(Reply::Accept),
        ));
    }
    let client = ca.client("bench");
    let plain_secret =
        json!({"username": "bench", "password": "bench-s3cret", "ca_pem": ca.pem()}).to_string();
    let mutual_secret = json!({"ca_pem": ca.pem(), "client_cert_pem": client.cert_pem,
        "client_key_pem": client.key_pem})
    .to_string();
    let dir = std::env::temp_dir().join(format!("e2b-bench-tls-{}", std::process::id()));
    let object = dir.join("bench-bucket").join("bench.json");
    let body: Vec<String> = (0..events)
        .map(|i| ALARM.trim().replace("e-200", &format!("tls-{i:06}")))
        .collect();
    if let Err(e) = std::fs::create_dir_all(dir.join("bench-bucket"))
        .and_then(|()| std::fs::write(&object, body.join("\n")))
    {
        eprintln!("cannot write the bench object: {e}");
        return;
    }
    let (mut plain_rates, mut mutual_rates) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        for (name, broker, secret, rates) in [
            (
                "TLS, ca_pem, Basic",
                &plain,
                &plain_secret,
                &mut plain_rates,
            ),
            (
                "mutual TLS, certificate logon",
                &mutual,
                &mutual_secret,
                &mut mutual_rates,
            ),
        ] {
            let (delivered, seconds) = run(broker, secret.clone(), &dir, concurrency).await;
            let rate = delivered as f64 / seconds;
            println!(
                "round {round}: {name:<30} {delivered} events in {seconds:.2} s = {rate:.0} events/s"
            );
            rates.push(rate);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (p, m) = (median(&mut plain_rates), median(&mut mutual_rates));
    println!("median TLS:               {p:.0} events/s");
    println!("median mutual TLS:        {m:.0} events/s");
    println!("mutual TLS / TLS:         {:.2} (target >= 0.9)", m / p);
    for (name, broker) in [("TLS", &plain), ("mutual TLS", &mutual)] {
        let (requests, handshakes) = (broker.requests(), broker.handshakes().max(1));
        println!(
            "{name:<10} requests per handshake: {:.0} ({requests} requests, {handshakes} handshakes; target >= 100)",
            requests as f64 / handshakes as f64
        );
    }
}
