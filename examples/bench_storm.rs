//! Alarm flood benchmark (run by `bench/storm.sh`).
//!
//! `bench_storm [POSITIONS_PER_SITE] [TICK_SECONDS]` (defaults 1000 and 60): 5 sites, every
//! position goes into ALARM within 60 s of Monitron event time, 95 % recover one to two minutes
//! later (their recoveries delivered among the alerts, as the mesh interleaves them), 5 % stay.
//! 16 processor containers (in this process, each with its own S/4 and DynamoDB clients) take the
//! deliveries, redelivering on 429/503 as the RDP does; DynamoDB is moto; the S/4 test server
//! answers at most 10 requests a second (503 beyond, a Gateway out of work processes) and the
//! processor keeps to 8 (`S4_MAX_REQUESTS_PER_SECOND`). The schedule ticks every TICK_SECONDS.
//! Settings: on_delay 60s, storm_positions 50 in 60s, storm_quiet 30s, storm_max 15m.
//!
//! Prints: notifications created (goal: 5 storm + the positions still in alarm), S/4 requests
//! in total and per notification, the busiest second against the limit, the time from the
//! storms' end to the last notification (goal: under storm_quiet + 2 ticks), and DynamoDB
//! writes per delivered event.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lambda_http::http::HeaderMap;
use serde_json::json;

use e2b::processor::idempotency::DynamoStore;
use e2b::processor::rules::RuleSet;
use e2b::processor::rules::source::RuleSource;
use e2b::processor::s4::limit::RequestGate;
use e2b::processor::schedule::Tick;
use e2b::processor::{InboundAuth, Processor, ProcessorSettings};
use support::s4::TestS4;

const SITES: usize = 5;
const CONTAINERS: usize = 16;
const RATE: u32 = 8;
const CAPACITY: u64 = 10;
const QUIET_S: u64 = 30;

/// DynamoDB calls by kind, counted by an SDK interceptor on the containers' client.
#[derive(Debug, Default)]
struct Calls {
    writes: AtomicU64,
    reads: AtomicU64,
}

#[derive(Debug)]
struct Counter(Arc<Calls>);

impl aws_sdk_dynamodb::config::Intercept for Counter {
    fn name(&self) -> &'static str {
        "bench call counter"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or_default();
        let write = ["UpdateItem", "PutItem", "DeleteItem", "TransactWriteItems"]
            .iter()
            .any(|op| target.ends_with(op));
        let counter = if write { &self.0.writes } else { &self.0.reads };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn rules() -> RuleSet {
    let catch_all = "[[mapping]]\ntechnical_object = \"10000000\"\nobject_kind = \"equipment\"";
    let mut mappings =
        "[[mapping]]\nasset = \"Pump*\"\ntechnical_object = \"10000000\"\nobject_kind = \"equipment\"\n"
            .to_string();
    for s in 1..=SITES {
        mappings.push_str(&format!(
            "\n[[mapping]]\nsite = \"Site {s}\"\ntechnical_object = \"FL-SITE-{s}\"\nobject_kind = \"functional_location\"\n"
        ));
    }
    let text = format!(
        "{}\n[alarm_management]\non_delay = \"60s\"\nstorm_positions = 50\nstorm_window = \"60s\"\nstorm_quiet = \"{QUIET_S}s\"\nstorm_max = \"15m\"\n",
        e2b::processor::rules::BUNDLED.replace(catch_all, &mappings)
    );
    RuleSet::parse("storm bench rules", &text).expect("the bench rules parse")
}

fn event(site: usize, n: usize, second: u32, new: &str, previous: &str) -> String {
    let recovered = new == "HEALTHY";
    json!({
        "specversion": "1.0",
        "id": format!("s{site}-{n}-{new}"),
        "source": "monitron/111122223333/Plant%20A",
        "type": format!("com.amazon.monitron.asset.{}", if recovered { "recovered" } else { "alert" }),
        "time": format!("2024-05-01T09:{:02}:{:02}Z", second / 60, second % 60),
        "datacontenttype": "application/json",
        "data": {
            "schemaVersion": "2", "project": "Plant A", "site": format!("Site {site}"),
            "asset": format!("Pump {n:04}"), "position": format!("Motor {site}-{n:04}"),
            "assetPositionId": format!("s{site}-pos-{n}"),
            "state": {"new": new, "previous": previous}, "transition": "measurement"
        }
    })
    .to_string()
}

async fn deliver(processor: &Processor<Option<DynamoStore>>, body: &str) -> (u64, u64) {
    let (mut throttled, mut unavailable) = (0, 0);
    loop {
        let reply = processor.handle(&HeaderMap::new(), body.as_bytes()).await;
        match reply.status {
            200 => return (throttled, unavailable),
            429 => {
                throttled += 1;
                tokio::time::sleep(Duration::from_millis(500 + fastrand::u64(..1000))).await;
            }
            503 => {
                unavailable += 1;
                tokio::time::sleep(Duration::from_millis(100 + fastrand::u64(..200))).await;
            }
            other => panic!("answered {other}: {}", reply.body),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let per_site: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let tick_s: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(60);
    let runtime = support::runtime(true);
    runtime.block_on(run(per_site, tick_s));
}

async fn run(per_site: usize, tick_s: u64) {
    let s4 = TestS4::start("E2B_TECH_USER", "bench-s3cret").await;
    s4.set_capacity(Some(CAPACITY));
    let (_, table) = support::moto::table("storm-bench").await;
    let calls = Arc::new(Calls::default());
    let config = aws_sdk_dynamodb::config::Builder::from(&support::moto::aws_config().await)
        .interceptor(Counter(calls.clone()))
        .build();
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(config);
    let rules = rules();
    let containers: Vec<Arc<Processor<Option<DynamoStore>>>> = (0..CONTAINERS)
        .map(|_| {
            let gate = RequestGate::new(dynamodb.clone(), &table, "bench-s4/100", RATE);
            let client = s4
                .client("E2B_TECH_USER", "bench-s3cret", Duration::from_secs(5))
                .limited_by(gate);
            let settings = ProcessorSettings::new(
                RuleSource::fixed(rules.clone()),
                InboundAuth::FunctionUrlIam,
                Duration::from_secs(25),
                Duration::from_secs(60),
            );
            Arc::new(Processor::new(
                Arc::new(client),
                Some(DynamoStore {
                    client: dynamodb.clone(),
                    table: table.clone(),
                    keep_completed: Duration::from_secs(3600),
                }),
                settings,
            ))
        })
        .collect();

    // Every position alarms within 60 s; 95 % recover 60 to 120 s later (event time). Each
    // recovery is delivered after its alert, interleaved with the others.
    let mut alerts = Vec::new();
    let mut stays = 0;
    for site in 1..=SITES {
        for n in 0..per_site {
            let at = fastrand::u32(..60);
            let recovers = n % 20 != 0;
            stays += usize::from(!recovers);
            let recovery =
                recovers.then(|| event(site, n, at + 60 + fastrand::u32(..60), "HEALTHY", "ALARM"));
            alerts.push((event(site, n, at, "ALARM", "HEALTHY"), recovery));
        }
    }
    fastrand::shuffle(&mut alerts);
    let mut deliveries: Vec<(String, bool)> = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    for (alert, recovery) in alerts {
        deliveries.push((alert, true));
        if let Some(r) = recovery {
            pending.push(r);
        }
        // Recoveries trail their alerts by a few hundred deliveries.
        while pending.len() > 200 {
            let r = pending.remove(fastrand::usize(..pending.len()));
            deliveries.push((r, false));
        }
    }
    deliveries.extend(pending.into_iter().map(|r| (r, false)));
    let events = deliveries.len();
    let alerts_total = deliveries.iter().filter(|(_, a)| *a).count();
    println!(
        "{SITES} sites x {per_site} positions: {alerts_total} alerts, {} recoveries, {stays} stay in alarm; \
         {CONTAINERS} containers, S/4 capacity {CAPACITY}/s, S4_MAX_REQUESTS_PER_SECOND={RATE}, tick every {tick_s} s",
        events - alerts_total
    );

    let started = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let ticker = {
        let (done, processor) = (done.clone(), containers[0].clone());
        tokio::spawn(async move {
            let mut ticks: Vec<(f64, Tick)> = Vec::new();
            let mut idle = 0;
            // Every TICK_SECONDS from the start, as EventBridge's schedule (a tick that overruns
            // is followed at once by the next).
            let mut every = tokio::time::interval(Duration::from_secs(tick_s));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            every.tick().await;
            loop {
                every.tick().await;
                let tick = processor.tick().await;
                let at = started.elapsed().as_secs_f64();
                println!(
                    "  tick ending at {at:6.1} s: released {}, recovered {}, later {}, storms ended {}, storm notifications {}, lines {}, errors {}",
                    tick.released,
                    tick.recovered,
                    tick.later.len(),
                    tick.storms_ended,
                    tick.storm_notifications,
                    tick.storm_lines,
                    tick.errors.len()
                );
                let quiet =
                    tick.released + tick.recovered + tick.later.len() + tick.storm_lines == 0;
                ticks.push((at, tick));
                let ended: usize = ticks.iter().map(|(_, t)| t.storms_ended).sum();
                idle = if quiet { idle + 1 } else { 0 };
                if done.load(Ordering::Relaxed) && ended >= SITES && idle >= 1 {
                    return ticks;
                }
            }
        })
    };

    let queue = Arc::new(std::sync::Mutex::new(deliveries.into_iter()));
    let last_alert = Arc::new(std::sync::Mutex::new(0f64));
    let workers: Vec<_> = containers
        .iter()
        .map(|processor| {
            let (processor, queue, last_alert) =
                (processor.clone(), queue.clone(), last_alert.clone());
            tokio::spawn(async move {
                let (mut throttled, mut unavailable) = (0, 0);
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.next());
                    let Some((body, alert)) = next else { break };
                    let (t, u) = deliver(&processor, &body).await;
                    throttled += t;
                    unavailable += u;
                    if alert && let Ok(mut last) = last_alert.lock() {
                        *last = started.elapsed().as_secs_f64();
                    }
                }
                (throttled, unavailable)
            })
        })
        .collect();
    let (mut throttled, mut unavailable) = (0, 0);
    for w in workers {
        let (t, u) = w.await.unwrap_or_default();
        throttled += t;
        unavailable += u;
    }
    let delivered_in = started.elapsed().as_secs_f64();
    let delivery_writes = calls.writes.load(Ordering::Relaxed);
    let delivery_reads = calls.reads.load(Ordering::Relaxed);
    done.store(true, Ordering::Relaxed);
    let ticks = ticker.await.unwrap_or_default();
    let last_alert = last_alert.lock().map(|l| *l).unwrap_or_default();

    let notifications = s4.notifications();
    let storm = notifications
        .iter()
        .filter(|n| {
            n["TechnicalObject"]
                .as_str()
                .is_some_and(|o| o.starts_with("FL-SITE"))
        })
        .count();
    let arrivals = s4.arrivals();
    let busiest_second = s4.busiest(1000);
    let busiest_ten = s4.busiest(10_000);
    let storms_end = last_alert + QUIET_S as f64;
    let last_notification = ticks
        .iter()
        .filter(|(_, t)| t.released > 0 || t.storm_notifications > 0)
        .map(|(at, _)| *at)
        .fold(0f64, f64::max);
    let writes = calls.writes.load(Ordering::Relaxed);
    println!(
        "deliveries: {events} in {delivered_in:.1} s; answered 429 {throttled} times, 503 {unavailable} times (redelivered)"
    );
    println!(
        "notifications created: {} ({storm} storm + {} own; goal {SITES} storm + {stays})",
        notifications.len(),
        notifications.len() - storm
    );
    println!(
        "S/4 requests: {} in total, {:.2} per notification; answered 503 for capacity: {}",
        arrivals.len(),
        arrivals.len() as f64 / notifications.len().max(1) as f64,
        s4.overloaded()
    );
    println!(
        "busiest second at S/4: {busiest_second} requests (limit {RATE}/s, capacity {CAPACITY}/s); busiest 10 s: {busiest_ten} (at most {})",
        11 * RATE
    );
    println!(
        "storms' end (last new episode + storm_quiet) at {storms_end:.1} s; last notification at {last_notification:.1} s: {:.1} s later = {:.2} ticks (goal: under 2 ticks after storm_quiet)",
        last_notification - storms_end,
        (last_notification - storms_end) / tick_s as f64
    );
    println!(
        "DynamoDB: {:.2} writes and {:.2} reads per delivered event (deliveries: {delivery_writes} writes, {delivery_reads} reads); {:.2} writes per event with the ticks",
        delivery_writes as f64 / events as f64,
        delivery_reads as f64 / events as f64,
        writes as f64 / events as f64
    );
    println!(
        "without alarm management: {alerts_total} notifications, one per alert, each at least 2 S/4 requests (look-up, create): {} requests, {:.0} s at {RATE}/s",
        2 * alerts_total,
        2.0 * alerts_total as f64 / RATE as f64
    );
}
