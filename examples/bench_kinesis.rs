//! The forwarder on Monitron's Kinesis stream, latency (run by `bench/kinesis.sh`).
//!
//! `bench_kinesis [RECORDS] [LATENCY_MS] [RATE]`: for batch sizes 1, 100 and 1,000, RECORDS
//! alarm records are written to a simulated shard and handed to the forwarder's handler as Lambda
//! hands a shard's batches over (one batch at a time per shard, every waiting record up to the
//! batch size, at once: a batching window of 0), through the Kinesis event's JSON, to the Solace
//! REST test broker answering after LATENCY_MS. Two arrival patterns: steady at RATE records/s,
//! and a burst (every record waiting at once, as after an outage). Prints p50, p99 and the
//! maximum of each record's time from its `approximateArrivalTimestamp` to the broker's 200.
//!
//! Not included: Lambda's own polling of the shard (up to once per second when the shard was
//! idle) and the invocation's network hop; see the README for the figures next to Firehose's.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use e2b::aws::s3::LocalDir;
use e2b::forwarder::scan::ScanConfig;
use e2b::forwarder::trigger::KeyFilter;
use e2b::forwarder::{Forwarder, ForwarderSettings};
use support::broker::{Reply, TestBroker};
use support::kinesis;

const ALARM: &str =
    include_str!("../events/records/illustrative-v2-asset-state-transition-alarm.json");

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number =
        |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (records, latency_ms, rate) = (number(0, 10_000), number(1, 2), number(2, 200));
    let runtime = support::runtime(true);
    runtime.block_on(async {
        let broker = TestBroker::start("bench", "bench-password").await;
        broker.keep_ids_only();
        broker.set_default(Reply::Delay(
            Duration::from_millis(latency_ms),
            Box::new(Reply::Accept),
        ));
        let forwarder = Forwarder::new(
            LocalDir {
                root: std::env::temp_dir(),
            },
            broker.publisher(),
            ForwarderSettings {
                scan: ScanConfig::default(),
                filter: KeyFilter::default(),
                concurrency: 16,
            },
        );
        println!(
            "{records} records per run, broker answering after {latency_ms} ms, publishes in flight 16"
        );
        for batch_size in [1usize, 100, 1000] {
            for steady in [true, false] {
                let run = format!("b{batch_size}{}", if steady { "s" } else { "x" });
                let arrivals =
                    shard(&forwarder, &run, records, batch_size, steady.then_some(rate)).await;
                let stored = broker.first_stored_at();
                let mut millis: Vec<f64> = arrivals
                    .iter()
                    .filter_map(|(id, arrival)| {
                        let at = stored.get(id)?;
                        Some(at.duration_since(*arrival).unwrap_or_default().as_secs_f64() * 1e3)
                    })
                    .collect();
                millis.sort_by(f64::total_cmp);
                let pick = |q: f64| {
                    let at = ((millis.len() as f64 * q).ceil() as usize).saturating_sub(1);
                    millis.get(at).copied().unwrap_or(f64::NAN)
                };
                let pattern = if steady {
                    format!("steady {rate}/s")
                } else {
                    format!("burst of {records}")
                };
                println!(
                    "batch size {batch_size:>4}, {pattern:>15}: p50 {:>8.1} ms, p99 {:>8.1} ms, max {:>8.1} ms ({} of {} delivered)",
                    pick(0.50),
                    pick(0.99),
                    millis.last().copied().unwrap_or(f64::NAN),
                    millis.len(),
                    arrivals.len()
                );
            }
        }
    });
}

/// One shard: `records` arrive (at `rate` per second, or all at once), and a poller hands
/// whatever waits, up to `batch_size`, to the handler, one batch at a time. Returns each event
/// id with its arrival time.
async fn shard<S: e2b::aws::secrets::SecretStore + 'static>(
    forwarder: &Forwarder<LocalDir, S>,
    run: &str,
    records: u64,
    batch_size: usize,
    rate: Option<u64>,
) -> HashMap<String, SystemTime> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(u64, String, SystemTime)>();
    let run_name = run.to_string();
    let producer = tokio::spawn(async move {
        let start = tokio::time::Instant::now();
        for n in 0..records {
            if let Some(rate) = rate {
                tokio::time::sleep_until(start + Duration::from_secs_f64(n as f64 / rate as f64))
                    .await;
            }
            let id = format!("{run_name}-{n:06}");
            if tx.send((n, id, SystemTime::now())).is_err() {
                break;
            }
        }
    });
    let mut arrivals = HashMap::new();
    let mut taken = 0u64;
    while taken < records {
        let Some(first) = rx.recv().await else { break };
        let mut batch = vec![first];
        while batch.len() < batch_size {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        taken += batch.len() as u64;
        let event = kinesis::batch(
            batch
                .iter()
                .map(|(n, id, arrival)| {
                    let data = ALARM.trim().replace("e-200", id);
                    kinesis::record(*n, data.as_bytes(), *arrival)
                })
                .collect(),
        );
        for (_, id, arrival) in batch {
            arrivals.insert(id, arrival);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        if let Err(e) = forwarder.handle(&event, deadline).await {
            eprintln!("batch failed: {e}");
        }
    }
    let _ = producer.await;
    arrivals
}
