//! The overview page: the last 24 hours and 7 days from the functions' CloudWatch metrics (or,
//! where there are none, from the episode and failure records, saying why), a chart per day,
//! and what needs attention now (failures waiting, refusals, the episodes open longest).

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, Duration, Utc};

use super::Console;
use super::pages::{EpisodeRow, Frame, problems, render, rows_of};
use super::snapshot::Position;

pub struct Bar {
    pub x: usize,
    pub day: String,
    pub alerts: u64,
    pub ends: u64,
    pub alert_y: u64,
    pub alert_h: u64,
    pub end_y: u64,
    pub end_h: u64,
}

#[derive(Template)]
#[template(path = "console/overview.html")]
struct Overview {
    frame: Frame,
    counts: Vec<(&'static str, u64, u64)>,
    source_note: String,
    chart_title: &'static str,
    chart_legend: &'static str,
    bars: Vec<Bar>,
    chart_width: usize,
    failures_waiting: String,
    refusals_waiting: String,
    open_episodes: usize,
    longest: Vec<EpisodeRow>,
}

pub async fn overview(State(console): State<Arc<Console>>) -> Response {
    let snapshot = console.snapshot().await;
    let mut frame = Frame::new(&console, &snapshot, "Overview", "overview");
    frame.problems = problems(&snapshot, true, true);
    let positions: &[Position] = snapshot.positions.as_deref().unwrap_or_default();
    let now = Utc::now();
    let windows = [now - Duration::hours(24), now - Duration::days(7)];
    let count = |f: &dyn Fn(DateTime<Utc>) -> u64| (f(windows[0]), f(windows[1]));
    let episodes = || positions.iter().flat_map(|p| p.episodes.iter());
    let alerts = count(&|from| {
        positions
            .iter()
            .flat_map(|p| &p.timeline)
            .filter(|s| s.time >= from && s.decided.starts_with("alert"))
            .count() as u64
    });
    let created = count(&|from| {
        episodes()
            .filter(|e| e.since >= from && e.notification.is_some())
            .count() as u64
    });
    let escalated = count(&|from| {
        episodes()
            .filter(|e| e.last >= from && e.escalations > 0)
            .count() as u64
    });
    let completed = count(&|from| {
        episodes()
            .filter(|e| e.completed && e.ended.is_some_and(|t| t >= from))
            .count() as u64
    });
    let recorded = |list: Option<Vec<String>>| {
        count(&|from| {
            list.iter()
                .flatten()
                .filter(|t| {
                    DateTime::parse_from_rfc3339(t).is_ok_and(|t| t.with_timezone(&Utc) >= from)
                })
                .count() as u64
        })
    };
    let failure_times = snapshot
        .failures
        .as_ref()
        .ok()
        .map(|l| l.iter().map(|f| f.record.recorded_at.clone()).collect());
    let refusal_times = snapshot
        .refusals
        .as_ref()
        .ok()
        .map(|l| l.iter().map(|f| f.record.recorded_at.clone()).collect());
    let failed = recorded(failure_times);
    let refused = recorded(refusal_times);
    let mut counts = vec![
        ("alert changes received", alerts.0, alerts.1),
        ("notifications created", created.0, created.1),
        ("episodes escalated", escalated.0, escalated.1),
        ("notifications completed", completed.0, completed.1),
        ("processor failures recorded", failed.0, failed.1),
        ("events refused by the broker", refused.0, refused.1),
    ];
    // Alerts and ends per day, the last 7 days.
    let days: Vec<DateTime<Utc>> = (0..7).rev().map(|d| now - Duration::days(d)).collect();
    let mut per_day: Vec<(String, u64, u64)> = days
        .iter()
        .map(|day| {
            let date = day.date_naive();
            let steps = positions
                .iter()
                .flat_map(|p| &p.timeline)
                .filter(|s| s.time.date_naive() == date);
            let (a, e) = steps.fold((0, 0), |(a, e), s| {
                if s.decided.starts_with("alert") {
                    (a + 1, e)
                } else {
                    (a, e + 1)
                }
            });
            (date.format("%m-%d").to_string(), a, e)
        })
        .collect();
    // The functions' metrics where there are any; the records otherwise.
    let (source_note, chart_title, chart_legend) = match &snapshot.metrics {
        Ok(metrics) => {
            counts = super::metrics::SHOWN
                .iter()
                .zip(&metrics.totals)
                .map(|((_, _, label), (day, week))| (*label, *day, *week))
                .collect();
            per_day = metrics
                .days
                .iter()
                .map(|(day, forwarded, closed)| {
                    (day.format("%m-%d").to_string(), *forwarded, *closed)
                })
                .collect();
            (
                "From the functions' CloudWatch metrics (namespace e2b, by Function), summed by the hour.".to_string(),
                "Events forwarded and episodes closed per day",
                "Red: events the forwarder delivered; green: episodes the processor closed.",
            )
        }
        Err(why) => (
            format!(
                "Counted from the episode records (what the processor keeps per sensor position) and the failure records: {why}."
            ),
            "Alerts and ends per day",
            "Red: alert changes (warnings, alarms); green: recoveries and users' closures.",
        ),
    };
    let top = per_day
        .iter()
        .map(|(_, a, e)| (*a).max(*e))
        .max()
        .unwrap_or(0)
        .max(1);
    let bars = per_day
        .into_iter()
        .enumerate()
        .map(|(i, (day, alerts, ends))| {
            let h = |n: u64| n * 140 / top;
            Bar {
                x: 10 + i * 60,
                day,
                alerts,
                ends,
                alert_y: 150 - h(alerts),
                alert_h: h(alerts),
                end_y: 150 - h(ends),
                end_h: h(ends),
            }
        })
        .collect();
    let mut open: Vec<(&Position, EpisodeRow)> = rows_of(&console, positions, false).collect();
    let open_episodes = open.len();
    open.sort_by(|a, b| a.1.since.cmp(&b.1.since));
    let waiting = |r: &Result<usize, &String>| match r {
        Ok(n) => n.to_string(),
        Err(_) => "?".into(),
    };
    render(Overview {
        frame,
        counts,
        source_note,
        chart_title,
        chart_legend,
        bars,
        chart_width: 10 + 7 * 60,
        failures_waiting: waiting(&snapshot.failures.as_ref().map(Vec::len)),
        refusals_waiting: waiting(&snapshot.refusals.as_ref().map(Vec::len)),
        open_episodes,
        longest: open.into_iter().take(10).map(|(_, row)| row).collect(),
    })
}
