//! The full-size fault and load campaigns (`bash bench/campaign.sh`):
//! `campaign forwarder OBJECTS EVENTS_PER_OBJECT [without-ledger | twice]` and `campaign processor ALERTS S4_SERVICE_URL`
//! (the S/4 test server in its own process, so that this one's memory is the processor's).
//! Needs moto (`E2B_MOTO_SERVER` or `E2B_MOTO_ENDPOINT`, as the tests).

#[path = "../tests/support/mod.rs"]
mod support;

use support::campaign;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize| args.get(i).and_then(|a| a.parse::<usize>().ok());
    let runtime = support::runtime(true);
    let ok = match (args.first().map(String::as_str), number(1)) {
        (Some("forwarder"), Some(objects)) => {
            let per_object = number(2).unwrap_or(50);
            let mode = args.get(3).map(String::as_str);
            let ledger = mode != Some("without-ledger");
            let notified = if mode == Some("twice") { 2 } else { 1 };
            let f = runtime.block_on(campaign::forwarder(
                objects, per_object, ledger, notified, true,
            ));
            println!(
                "forwarder campaign ({}, each object notified {}x at once): {} objects, {} events expected, {} delivered, {} duplicate publishes ({:.2}% of events), {} lost, {} refused for good ({} recorded, {} resent, {} mishandled), {} of {} invocations failed in the first round, {} rounds, {} unaccounted, RSS {} KiB after round 1 -> {} KiB at the end -> {} and {} KiB after two more passes over every object, {:.1} s",
                if f.ledger { "ledger on" } else { "ledger off" },
                f.notified,
                f.objects,
                f.expected,
                f.delivered,
                f.duplicates,
                f.duplicate_percent(),
                f.lost,
                f.refused,
                f.recorded,
                f.resent,
                f.refusals_mishandled,
                f.failed_invocations,
                f.objects,
                f.rounds,
                f.unaccounted,
                f.rss_start_kib,
                f.rss_end_kib,
                f.rss_after_more_passes_kib[0],
                f.rss_after_more_passes_kib[1],
                f.seconds
            );
            f.unaccounted == 0 && f.lost == 0 && f.refusals_mishandled == 0
        }
        (Some("processor"), Some(alerts)) => {
            let Some(url) = args.get(2).cloned() else {
                eprintln!("campaign processor ALERTS S4_SERVICE_URL");
                std::process::exit(2);
            };
            let list_url = format!("{url}/MaintenanceNotification?$format=json");
            let list = move || {
                let list_url = list_url.clone();
                std::thread::spawn(move || fetch(&list_url))
                    .join()
                    .unwrap_or_default()
            };
            let f = runtime.block_on(campaign::processor(alerts, &url, list));
            println!(
                "processor campaign: {} alerts, {} deliveries ({} redelivered after a 503), {} notifications, {} alerts without exactly one, {} deliveries without an outcome, RSS {} KiB after 10% -> {} KiB half-way -> {} KiB at the end, {:.1} s",
                f.alerts,
                f.deliveries,
                f.redeliveries,
                f.notifications,
                f.wrong,
                f.without_outcome,
                f.rss_start_kib,
                f.rss_middle_kib,
                f.rss_end_kib,
                f.seconds
            );
            f.wrong == 0 && f.without_outcome == 0
        }
        _ => {
            eprintln!(
                "campaign forwarder OBJECTS [EVENTS_PER_OBJECT] | campaign processor ALERTS S4_SERVICE_URL"
            );
            std::process::exit(2);
        }
    };
    std::process::exit(if ok { 0 } else { 1 });
}

/// Every notification the S/4 test server holds (a blocking GET on a thread of its own).
fn fetch(url: &str) -> Vec<serde_json::Value> {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(_) => return Vec::new(),
    };
    runtime.block_on(async {
        let response = reqwest::Client::new()
            .get(url)
            .basic_auth("CAMPAIGN", Some("campaign-s4-s3cret"))
            .send()
            .await;
        let body: serde_json::Value = match response {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => serde_json::Value::Null,
        };
        body["d"]["results"].as_array().cloned().unwrap_or_default()
    })
}
