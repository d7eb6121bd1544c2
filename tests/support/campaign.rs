//! Fault and load campaigns against real peers, shared by `tests/it/campaigns.rs` (a short form,
//! in CI) and `examples/campaign.rs` (the full size, `bench/campaign.sh`).
//!
//! - Forwarder: objects of alarm records on moto S3, published through the test broker failing
//!   a share of publishes transiently (503) and for good (400) and answering some slowly. Every
//!   event must be delivered or named in its failed invocation; failed invocations are retried
//!   as Lambda (and then `e2b replay`) would, until everything is delivered.
//! - Processor: every alert delivered twice, in parallel, to the handler, with S/4 failing a
//!   share of requests and expiring CSRF tokens; 503s are redelivered as the mesh would. Exactly
//!   one notification per alert, and every delivery ends with an outcome.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

use e2b::aws::records::{FailureSink, Found};
use e2b::aws::secrets::CachedCredentials;
use e2b::broker::Publisher;
use e2b::forwarder::ledger::Ledger;
use e2b::forwarder::refusals::RefusedEvent;
use e2b::forwarder::scan::ScanConfig;
use e2b::forwarder::{Forwarder, ForwarderSettings, HandlerError};
use e2b::http::retry::Backoff;
use e2b::processor::rules::source::RuleSource;
use e2b::processor::{InboundAuth, Processor, ProcessorSettings};

use super::broker::{Chaos, TestBroker};
use super::moto;

const ALARM: &str =
    include_str!("../../events/records/illustrative-v2-asset-state-transition-alarm.json");

/// Resident memory of this process, in KiB (Linux).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[derive(Debug, Default)]
pub struct ForwarderFigures {
    pub ledger: bool,
    /// Notifications of each object at once.
    pub notified: usize,
    pub objects: usize,
    pub expected: usize,
    pub delivered: usize,
    /// Publishes the broker stored beyond the first of each event.
    pub duplicates: u64,
    pub failed_invocations: usize,
    pub rounds: usize,
    /// Events neither delivered nor named in their invocation's failure nor recorded: must be 0.
    pub unaccounted: usize,
    /// Events the broker refused for good (with the ledger: each recorded once, never re-sent).
    pub refused: usize,
    /// Refusal records written (with the ledger).
    pub recorded: usize,
    /// Refused events recorded other than once, or sent again after their refusal: must be 0.
    pub refusals_mishandled: usize,
    /// Recorded refusals sent again once the broker was calm (as `e2b resend` does).
    pub resent: usize,
    /// Events the broker never stored, after the resend: must be 0.
    pub lost: usize,
    pub rss_start_kib: u64,
    pub rss_end_kib: u64,
    /// After two more passes over every object without faults: flat memory means no leak.
    pub rss_after_more_passes_kib: [u64; 2],
    pub seconds: f64,
}

impl ForwarderFigures {
    /// Duplicate publishes per event, in percent.
    pub fn duplicate_percent(&self) -> f64 {
        100.0 * self.duplicates as f64 / self.expected.max(1) as f64
    }
}

/// The broker's faults (issue 7): 10% of publishes refused for now (503), 1% for good (400),
/// 5% answered after 40 ms.
pub const FAULTS: Chaos = Chaos {
    transient: 100,
    permanent: 10,
    slow: 50,
    slow_by: Duration::from_millis(40),
    seed: 7,
};

/// `objects` objects of `per_object` alarm records each. With `ledger`, the forwarder keeps its
/// progress in DynamoDB and records refusals in SQS (issue 13), which are resent at the end;
/// without, failed invocations are retried whole until every event got through. Each object is
/// `notified` times at once (S3 may notify twice).
/// With `more_passes`, two more passes over every object follow, without faults, for memory.
pub async fn forwarder(
    objects: usize,
    per_object: usize,
    ledger: bool,
    notified: usize,
    more_passes: bool,
) -> ForwarderFigures {
    let started = Instant::now();
    let broker = TestBroker::start("campaign", "campaign-s3cret").await;
    broker.keep_ids_only();
    let s3 = moto::s3().await;
    let secrets = moto::secrets().await;
    let bucket = moto::unique("campaign");
    let secret = moto::unique("campaign-aem");
    assert!(s3.create_bucket().bucket(&bucket).send().await.is_ok());
    let login = json!({"username": "campaign", "password": "campaign-s3cret"}).to_string();
    moto::create_secret(&secrets, &secret, &login).await;
    let keys: Vec<String> = (0..objects)
        .map(|o| format!("campaign/{o:05}.json"))
        .collect();
    let mut expected: HashMap<String, HashSet<String>> = HashMap::new();
    let etags: HashMap<String, String> = futures::stream::iter(keys.iter().enumerate())
        .map(|(o, key)| {
            let ids: Vec<String> = (0..per_object).map(|i| format!("o{o}-{i}")).collect();
            let body = ids
                .iter()
                .map(|id| ALARM.trim().replace("e-200", id))
                .collect::<Vec<_>>()
                .join("\n");
            expected.insert(format!("s3://{bucket}/{key}"), ids.into_iter().collect());
            let (s3, bucket) = (s3.clone(), bucket.clone());
            async move {
                let etag = moto::put(&s3, &bucket, key, body.into_bytes()).await;
                (key.clone(), etag)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    broker.set_chaos(FAULTS);
    let mesh = broker.mesh_config();
    let credentials = Arc::new(CachedCredentials::new(
        secrets,
        &secret,
        Duration::from_secs(300),
    ));
    let publisher =
        Arc::new(Publisher::new(mesh, credentials).expect("publisher (Publisher::new)"));
    let records = if ledger {
        let (dynamodb, table) = moto::table("campaign-progress").await;
        // An S3 prefix: a listing sees every record (a queue shows a reader only some).
        Some((
            Ledger {
                client: dynamodb,
                table,
                keep: Duration::from_secs(3600),
            },
            Arc::new(FailureSink::S3 {
                client: s3.clone(),
                at: e2b::aws::s3::S3Location::new(&bucket, "refusals/"),
            }),
        ))
    } else {
        None
    };
    let forwarder = Arc::new(
        Forwarder::new(
            s3,
            publisher.clone(),
            ForwarderSettings {
                scan: ScanConfig::default(),
                filter: Default::default(),
                concurrency: 16,
            },
        )
        .with_ledger(records.as_ref().map(|(l, _)| l.clone()))
        .with_refusals(records.as_ref().map(|(_, r)| r.clone())),
    );
    let event = |key: &str| {
        json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": bucket}, "object": {"key": e2b::forwarder::replay::form_urlencode(key), "size": 1,
                   "eTag": etags.get(key)}}}]})
    };
    let mut figures = ForwarderFigures {
        ledger,
        notified,
        objects,
        expected: objects * per_object,
        ..ForwarderFigures::default()
    };
    let mut pending: Vec<String> = keys.clone();
    while !pending.is_empty() && figures.rounds < 12 {
        figures.rounds += 1;
        // Four invocations at a time, as several warm containers would run them; the copies of
        // one notification run side by side.
        let notifications = pending
            .iter()
            .flat_map(|key| std::iter::repeat_n(key.clone(), notified.max(1)));
        let outcomes: Vec<(String, Result<Value, HandlerError>)> =
            futures::stream::iter(notifications)
                .map(|key| {
                    let (forwarder, event) = (forwarder.clone(), event(&key));
                    async move {
                        let deadline = Instant::now() + Duration::from_secs(60);
                        (key, forwarder.handle(&event, deadline).await)
                    }
                })
                .buffer_unordered(4)
                .collect()
                .await;
        if figures.rounds == 1 {
            figures.rss_start_kib = rss_kib();
        }
        let stored = broker.stored_counts();
        let recorded = match &records {
            Some((_, sink)) => refused_ids(sink).await,
            None => HashMap::new(),
        };
        pending.clear();
        for (key, outcome) in outcomes {
            if pending.contains(&key) {
                continue;
            }
            let Err(error) = outcome else { continue };
            if figures.rounds == 1 {
                figures.failed_invocations += 1;
            }
            pending.push(key.clone());
            let HandlerError::Forward(error) = error else {
                panic!("{key}: {error}");
            };
            for failure in &error.failures {
                let named: HashSet<&str> = failure
                    .undelivered
                    .iter()
                    .map(|(id, _)| id.as_str())
                    .collect();
                let ids = expected.get(&failure.object).cloned().unwrap_or_default();
                figures.unaccounted += ids
                    .iter()
                    .filter(|id| {
                        !stored.contains_key(*id)
                            && !named.contains(id.as_str())
                            && !recorded.contains_key(*id)
                    })
                    .count();
            }
        }
    }
    let refused = broker.refused_counts();
    figures.refused = refused.len();
    if let Some((_, sink)) = &records {
        let recorded = refused_ids(sink).await;
        figures.recorded = recorded.values().sum();
        figures.refusals_mishandled = refused
            .iter()
            .filter(|(id, times)| **times != 1 || recorded.get(*id) != Some(&1))
            .count();
        // The operator fixes the cause, then runs `e2b resend`.
        broker.calm();
        let found: Vec<Found<RefusedEvent>> = sink.list(100_000, 60).await.unwrap_or_default();
        for f in found {
            let deadline = Instant::now() + Duration::from_secs(30);
            let message = f.record.message();
            if publisher
                .send(message, &f.record.correlation_id, deadline)
                .await
                .is_ok()
                && sink.remove(&f.handle).await.is_ok()
            {
                figures.resent += 1;
            }
        }
    }
    let stored = broker.stored_counts();
    figures.delivered = expected
        .values()
        .flatten()
        .filter(|id| stored.contains_key(*id))
        .count();
    figures.lost = figures.expected - figures.delivered;
    figures.duplicates = stored
        .values()
        .map(|n| u64::from(n.saturating_sub(1)))
        .sum();
    figures.rss_end_kib = rss_kib();
    figures.seconds = started.elapsed().as_secs_f64();
    if more_passes {
        broker.calm();
        for pass in 0..2 {
            futures::stream::iter(keys.iter().cloned())
                .map(|key| {
                    let (forwarder, event) = (forwarder.clone(), event(&key));
                    async move {
                        let deadline = Instant::now() + Duration::from_secs(60);
                        let _ = forwarder.handle(&event, deadline).await;
                    }
                })
                .buffer_unordered(4)
                .collect::<Vec<_>>()
                .await;
            figures.rss_after_more_passes_kib[pass] = rss_kib();
        }
    }
    figures
}

/// Event id → refusal records of it in the queue.
async fn refused_ids(sink: &FailureSink) -> HashMap<String, usize> {
    let found: Vec<Found<RefusedEvent>> = sink.list(100_000, 0).await.unwrap_or_default();
    let mut ids = HashMap::new();
    for f in found {
        *ids.entry(f.record.event_id).or_default() += 1;
    }
    ids
}

#[derive(Debug, Default)]
pub struct ProcessorFigures {
    pub alerts: usize,
    pub deliveries: u64,
    pub redeliveries: u64,
    pub notifications: usize,
    /// Alerts with no notification, or more than one: must be 0.
    pub wrong: usize,
    /// Deliveries that ended without COMPLETE or DUPLICATE: must be 0.
    pub without_outcome: usize,
    pub rss_start_kib: u64,
    /// Half-way: with the start and the end, whether memory levels off or keeps growing.
    pub rss_middle_kib: u64,
    pub rss_end_kib: u64,
    pub seconds: f64,
}

/// `alerts` alerts, each delivered twice at once, to a processor whose S/4 is at `s4_url`
/// (a test server, possibly in another process, failing as it was told).
pub async fn processor(
    alerts: usize,
    s4_url: &str,
    list: impl Fn() -> Vec<Value>,
) -> ProcessorFigures {
    let started = Instant::now();
    let config = e2b::processor::s4::S4Config {
        service_url: reqwest::Url::parse(s4_url).expect("reqwest::Url::parse in the test set-up"),
        sap_client: Some("100".into()),
        request_timeout: Duration::from_secs(2),
        retry: Backoff {
            base: Duration::from_millis(5),
            cap: Duration::from_millis(5) * 64,
            attempts: 3,
        },
    };
    let credentials = e2b::processor::s4::S4Credentials {
        username: "CAMPAIGN".into(),
        password: "campaign-s4-s3cret".into(),
    };
    let client =
        e2b::processor::s4::S4Client::new(config, e2b::processor::s4::S4Auth::Basic(credentials))
            .expect("e2b::processor::s4::S4Auth::Basic in the test set-up");
    // One notification per alert: the campaign counts notifications against alerts.
    let rules = super::per_event_rules();
    let processor = Arc::new(Processor::new(
        Arc::new(client),
        Some(moto::idempotency_store().await),
        // A short budget and hold, so that the run is short; the hold exceeds the budget by
        // 5 s, as the configuration demands.
        ProcessorSettings::new(
            RuleSource::fixed(rules),
            InboundAuth::FunctionUrlIam,
            Duration::from_secs(2),
            Duration::from_secs(7),
        ),
    ));
    let body = |i: usize| {
        json!({"specversion": "1.0", "id": format!("c-{i}"), "source": "monitron/111122223333/Plant%20A",
            "type": "com.amazon.monitron.asset.alert", "time": "2024-03-01T09:00:01Z",
            "data": {"schemaVersion": "2", "project": "Plant A", "site": "Site 1", "asset": format!("Pump {}", i % 50),
                "position": "Motor DE", "state": {"new": "ALARM", "previous": "WARNING"}, "transition": "measurement"}})
        .to_string()
    };
    let mut figures = ProcessorFigures {
        alerts,
        ..ProcessorFigures::default()
    };
    let headers = lambda_http::http::HeaderMap::new();
    // Every alert twice, at once; a 503 is redelivered (after a growing pause, as the RDP
    // does) until an outcome comes, for up to two minutes.
    let outcomes: Vec<(u64, u64, bool)> = futures::stream::iter(0..alerts)
        .map(|i| {
            let (processor, body, headers) = (processor.clone(), body(i), headers.clone());
            async move {
                let deliver = || async {
                    let (mut attempts, mut pause) = (0u64, Duration::from_millis(50));
                    let give_up = Instant::now() + Duration::from_secs(120);
                    loop {
                        attempts += 1;
                        let reply = processor.handle(&headers, body.as_bytes()).await;
                        let status = reply.body["results"][0]["status"].as_str().unwrap_or("");
                        if reply.status == 200 {
                            return (attempts, matches!(status, "COMPLETE" | "DUPLICATE"));
                        }
                        if Instant::now() > give_up {
                            return (attempts, false);
                        }
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_secs(1));
                    }
                };
                let ((a, ok_a), (b, ok_b)) = tokio::join!(deliver(), deliver());
                (a + b, a + b - 2, ok_a && ok_b)
            }
        })
        .buffer_unordered(16)
        .enumerate()
        .map(|(n, outcome)| {
            if n == alerts / 10 {
                figures.rss_start_kib = rss_kib();
            }
            if n == alerts / 2 {
                figures.rss_middle_kib = rss_kib();
            }
            outcome
        })
        .collect()
        .await;
    for (deliveries, redeliveries, ok) in outcomes {
        figures.deliveries += deliveries;
        figures.redeliveries += redeliveries;
        figures.without_outcome += usize::from(!ok);
    }
    // Before the check reads every notification into this process.
    figures.rss_end_kib = rss_kib();
    let notifications = list();
    figures.notifications = notifications.len();
    let mut per_reference: HashMap<String, usize> = HashMap::new();
    for n in &notifications {
        let reference = n["MaintNotifExtReferenceNumber"].as_str().unwrap_or("");
        *per_reference.entry(reference.to_string()).or_default() += 1;
    }
    let expected: HashSet<String> = (0..alerts)
        .map(|i| {
            e2b::processor::external_reference("monitron/111122223333/Plant%20A", &format!("c-{i}"))
        })
        .collect();
    figures.wrong = expected
        .iter()
        .filter(|r| per_reference.get(*r) != Some(&1))
        .count()
        + per_reference
            .keys()
            .filter(|r| !expected.contains(*r))
            .count();
    figures.seconds = started.elapsed().as_secs_f64();
    figures
}
