//! The console's storms page: the sites alarm management keeps (a storm under way, or the last
//! one, and its counts) and the episodes held now, read from the snapshot.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::Console;
use super::pages::{Frame, render};
use super::snapshot::Snapshot;
use crate::processor::alarms::site::SiteRecord;

pub struct SiteRow {
    pub site: String,
    pub storm: String,
    pub under_way: bool,
    pub positions: usize,
    pub notification: String,
    pub held: usize,
    pub released: usize,
    pub recovered: usize,
}

pub struct HeldRow {
    pub site: String,
    pub label: String,
    pub state: String,
    pub since: String,
    pub until: String,
}

#[derive(Template)]
#[template(path = "console/storms.html")]
pub struct Storms {
    pub frame: Frame,
    pub sites: Vec<SiteRow>,
    pub held: Vec<HeldRow>,
}

fn at(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

fn site_row(site: &str, record: &SiteRecord) -> SiteRow {
    let held = record.held();
    match (&record.storm, &record.last_storm) {
        (Some(storm), _) => SiteRow {
            site: site.to_string(),
            storm: format!("under way since {}", at(storm.began_ms)),
            under_way: true,
            positions: record.members(storm).count(),
            notification: storm
                .number
                .clone()
                .unwrap_or_else(|| "not yet created".into()),
            held,
            released: storm.released,
            recovered: storm.recovered,
        },
        (None, Some(last)) => SiteRow {
            site: site.to_string(),
            storm: format!("last: {} to {}", at(last.began_ms), at(last.ended_ms)),
            under_way: false,
            positions: last.positions,
            notification: last.number.clone().unwrap_or_else(|| "none".into()),
            held,
            released: last.released,
            recovered: last.recovered,
        },
        (None, None) => SiteRow {
            site: site.to_string(),
            storm: "none".into(),
            under_way: false,
            positions: 0,
            notification: "-".into(),
            held,
            released: 0,
            recovered: 0,
        },
    }
}

/// The storms page from a snapshot.
pub fn storms_page(console: &Console, snapshot: &Snapshot) -> Storms {
    let mut frame = Frame::new(console, snapshot, "Storms", "storms");
    frame.back = "/storms".into();
    let mut sites = Vec::new();
    let mut held = Vec::new();
    match &snapshot.sites {
        Ok(list) => {
            for (site, record) in list {
                sites.push(site_row(site, record));
                let storm = record.storm.as_ref();
                for (entry, _) in record.entries.values().filter(|(e, _)| e.held) {
                    let member = storm.is_some_and(|s| s.has(entry));
                    held.push(HeldRow {
                        site: site.clone(),
                        label: entry.label.clone(),
                        state: entry.state.clone(),
                        since: at(entry.event_ms),
                        until: if member {
                            "the storm's end".into()
                        } else {
                            at(entry.until_ms)
                        },
                    });
                }
            }
        }
        Err(e) => frame.problems.push(e.clone()),
    }
    held.sort_by(|a, b| (&a.site, &a.since, &a.label).cmp(&(&b.site, &b.since, &b.label)));
    Storms { frame, sites, held }
}

/// `GET /storms`.
pub async fn storms(State(console): State<Arc<Console>>) -> Response {
    let snapshot = console.snapshot().await;
    render(storms_page(&console, &snapshot))
}
