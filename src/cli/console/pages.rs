//! The console's pages (GET): episodes, one position's timeline, failures, search (the
//! overview is [`super::overview`]), and what every page shares: the frame, what could not be
//! read, rows of episodes. Each is rendered from the snapshot with its askama template
//! (`templates/console/`).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::Console;
use super::snapshot::{Position, Snapshot, Step};
use crate::aws::records::Record;

/// Rows per page.
pub const PAGE: usize = 50;

/// What every page has: title, where it is, the search text, the token for its forms, what
/// could not be read.
pub struct Frame {
    pub title: String,
    pub here: &'static str,
    pub query: String,
    pub token: String,
    pub problems: Vec<String>,
    pub read_note: String,
    /// Where "Read again" returns to.
    pub back: String,
}

impl Frame {
    pub fn new(console: &Console, snapshot: &Snapshot, title: &str, here: &'static str) -> Frame {
        let age = snapshot.read_at.elapsed().as_secs();
        Frame {
            title: title.to_string(),
            here,
            query: String::new(),
            token: console.access.token().to_string(),
            problems: Vec::new(),
            read_note: format!(
                "at {} ({age} s ago)",
                snapshot.read_at_utc.format("%Y-%m-%d %H:%M:%S UTC")
            ),
            back: "/".into(),
        }
    }
}

/// What could not be read, for the sources a page shows.
pub fn problems(snapshot: &Snapshot, episodes: bool, records: bool) -> Vec<String> {
    let mut out = Vec::new();
    if episodes {
        if let Err(e) = &snapshot.positions {
            out.push(e.clone());
        }
        for (key, why) in &snapshot.unreadable {
            out.push(format!(
                "the record of position {key}: {why} (the processor rebuilds it from S/4 on its next event)"
            ));
        }
    }
    if records {
        for found in [
            &snapshot.failures.as_ref().err(),
            &snapshot.refusals.as_ref().err(),
        ]
        .into_iter()
        .flatten()
        {
            out.push((*found).clone());
        }
    }
    out
}

pub fn render(page: impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("the page could not be rendered: {e}"),
        )
            .into_response(),
    }
}

fn when(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A value for a URL's query.
fn query_value(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A notification as a cell of a table (`templates/console/notification.html`): its number,
/// a link when `S4_NOTIFICATION_URL` gives one, whether it is completed; the template escapes.
pub struct NotificationCell {
    pub number: Option<String>,
    pub link: Option<String>,
    pub completed: bool,
}

fn notification_cell(console: &Console, number: Option<&str>, completed: bool) -> NotificationCell {
    NotificationCell {
        number: number.map(str::to_string),
        link: number.and_then(|n| {
            console
                .notification_url
                .as_ref()
                .map(|url| url.replace("{number}", &query_value(n)))
        }),
        completed,
    }
}

/// One episode as a row of the lists.
pub struct EpisodeRow {
    pub key_query: String,
    pub plant: String,
    pub site: String,
    pub asset: String,
    pub position: String,
    pub technical_object: String,
    pub since: String,
    pub last: String,
    pub state: String,
    pub open: bool,
    pub events: u64,
    pub notification: NotificationCell,
}

pub(super) fn rows_of<'a>(
    console: &'a Console,
    positions: &'a [Position],
    all: bool,
) -> impl Iterator<Item = (&'a Position, EpisodeRow)> + 'a {
    positions.iter().flat_map(move |p| {
        p.episodes
            .iter()
            .filter(move |e| all || e.open)
            .map(move |e| {
                (
                    p,
                    EpisodeRow {
                        key_query: query_value(&p.key),
                        plant: p.plant.clone(),
                        site: p.site.clone(),
                        asset: p.asset.clone(),
                        position: p.position.clone(),
                        technical_object: p.technical_object.clone(),
                        since: when(&e.since),
                        last: when(&e.last),
                        state: e.state.clone(),
                        open: e.open,
                        events: e.events,
                        notification: notification_cell(
                            console,
                            e.notification.as_deref(),
                            e.completed,
                        ),
                    },
                )
            })
    })
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    all: Option<String>,
    #[serde(default)]
    page: Option<usize>,
}

#[derive(Template)]
#[template(path = "console/episodes.html")]
struct Episodes {
    frame: Frame,
    filter: String,
    all: bool,
    total: usize,
    page: usize,
    pages: usize,
    keep: String,
    rows: Vec<EpisodeRow>,
}

fn matches(p: &Position, needle: &str) -> bool {
    needle.is_empty()
        || [
            &p.plant,
            &p.site,
            &p.asset,
            &p.position,
            &p.technical_object,
            &p.key,
        ]
        .iter()
        .any(|f| f.to_lowercase().contains(needle))
}

pub async fn episodes(
    State(console): State<Arc<Console>>,
    Query(query): Query<ListQuery>,
) -> Response {
    let snapshot = console.snapshot().await;
    let mut frame = Frame::new(&console, &snapshot, "Episodes", "episodes");
    frame.problems = problems(&snapshot, true, false);
    frame.back = "/episodes".into();
    let all = query.all.is_some();
    let needle = query.q.trim().to_lowercase();
    let positions: &[Position] = snapshot.positions.as_deref().unwrap_or_default();
    let chosen: Vec<&Position> = positions.iter().filter(|p| matches(p, &needle)).collect();
    let total: usize = chosen
        .iter()
        .map(|p| p.episodes.iter().filter(|e| all || e.open).count())
        .sum();
    let pages = total.div_ceil(PAGE).max(1);
    let page = query.page.unwrap_or(1).clamp(1, pages);
    let rows: Vec<EpisodeRow> = chosen
        .iter()
        .flat_map(|p| rows_of(&console, std::slice::from_ref(*p), all).map(|(_, row)| row))
        .skip((page - 1) * PAGE)
        .take(PAGE)
        .collect();
    let mut keep = String::new();
    if !query.q.is_empty() {
        keep.push_str(&format!("&q={}", query_value(&query.q)));
    }
    if all {
        keep.push_str("&all=1");
    }
    render(Episodes {
        frame,
        filter: query.q.clone(),
        all,
        total,
        page,
        pages,
        keep,
        rows,
    })
}

#[derive(Deserialize)]
pub struct PositionQuery {
    #[serde(default)]
    key: String,
}

pub struct FiledRow {
    pub notification: NotificationCell,
    pub priority: String,
    pub events: u64,
    /// How many episodes it holds: 1, plus how often the position returned.
    pub episodes: u64,
    pub completed: bool,
    pub reference: String,
}

pub struct StepRow {
    pub time: String,
    pub event_id: String,
    pub state: String,
    pub decided: String,
    pub notification: String,
    pub line: String,
    pub trace: String,
}

#[derive(Template)]
#[template(path = "console/position.html")]
struct PositionPage {
    frame: Frame,
    technical_object: String,
    pending: bool,
    /// The trend chart (SVG, its names escaped), or empty.
    chart: String,
    /// Why there is no chart.
    chart_note: String,
    episodes: Vec<EpisodeRow>,
    filed: Vec<FiledRow>,
    timeline: Vec<StepRow>,
}

fn step_row(s: &Step) -> StepRow {
    StepRow {
        time: s.time.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        event_id: s.event_id.clone(),
        state: s.state.clone(),
        decided: s.decided.clone(),
        notification: s.notification.clone().unwrap_or_else(|| "-".into()),
        line: s.line.clone(),
        trace: s.trace.clone(),
    }
}

pub async fn position(
    State(console): State<Arc<Console>>,
    Query(query): Query<PositionQuery>,
) -> Response {
    let snapshot = console.snapshot().await;
    let positions: &[Position] = snapshot.positions.as_deref().unwrap_or_default();
    let Some(p) = positions.iter().find(|p| p.key == query.key) else {
        let mut frame = Frame::new(&console, &snapshot, "No such position", "episodes");
        frame.problems = problems(&snapshot, true, false);
        frame.problems.push(format!(
            "a position with key `{}`: not in the episodes read",
            query.key
        ));
        return render(PositionPage {
            frame,
            technical_object: String::new(),
            pending: false,
            chart: String::new(),
            chart_note: String::new(),
            episodes: Vec::new(),
            filed: Vec::new(),
            timeline: Vec::new(),
        });
    };
    let mut frame = Frame::new(&console, &snapshot, &p.title(), "episodes");
    frame.back = format!("/position?key={}", query_value(&p.key));
    let (chart, chart_note) =
        match super::trend::of_position(&console, p, crate::trend::DEFAULT_DAYS).await {
            Ok(svg) => (svg, String::new()),
            Err(note) => (String::new(), note),
        };
    render(PositionPage {
        frame,
        technical_object: p.technical_object.clone(),
        pending: p.pending,
        chart,
        chart_note,
        episodes: rows_of(&console, std::slice::from_ref(p), true)
            .map(|(_, row)| row)
            .collect(),
        filed: p
            .filed
            .iter()
            .map(|f| FiledRow {
                notification: notification_cell(&console, Some(&f.number), false),
                priority: f.priority.clone(),
                events: f.events,
                episodes: f.episodes,
                completed: f.completed,
                reference: f.reference.clone(),
            })
            .collect(),
        timeline: p.timeline.iter().map(step_row).collect(),
    })
}

pub struct FailureRow {
    pub id: String,
    pub recorded_at: String,
    pub event_id: String,
    pub rule: String,
    pub step: String,
    pub reason: String,
}

pub struct RefusalRow {
    pub id: String,
    pub recorded_at: String,
    pub event_id: String,
    pub topic: String,
    pub reason: String,
    pub from: String,
}

#[derive(Template)]
#[template(path = "console/failures.html")]
pub struct Failures {
    pub frame: Frame,
    pub page: usize,
    pub pages: usize,
    pub failures_total: usize,
    pub refusals_total: usize,
    /// (worked, what happened) of the last action.
    pub results: Vec<(bool, String)>,
    pub failures: Vec<FailureRow>,
    pub refusals: Vec<RefusalRow>,
}

/// The failures page from a snapshot (page `page` of each list, [`PAGE`] rows a page), with
/// the results of an action.
pub fn failures_page(
    console: &Console,
    snapshot: &Snapshot,
    results: Vec<(bool, String)>,
    page: usize,
) -> Failures {
    let failures_total = snapshot.failures.as_ref().map_or(0, Vec::len);
    let refusals_total = snapshot.refusals.as_ref().map_or(0, Vec::len);
    let pages = failures_total.max(refusals_total).div_ceil(PAGE).max(1);
    let page = page.clamp(1, pages);
    let skip = (page - 1) * PAGE;
    let mut frame = Frame::new(console, snapshot, "Failures", "failures");
    frame.problems = problems(snapshot, false, true);
    frame.back = "/failures".into();
    let failures = snapshot
        .failures
        .as_ref()
        .map(|list| {
            list.iter()
                .skip(skip)
                .take(PAGE)
                .map(|f| FailureRow {
                    id: f.record.file_name(),
                    recorded_at: f.record.recorded_at.clone(),
                    event_id: f.record.event_id.clone(),
                    rule: f.record.rule.clone().unwrap_or_else(|| "-".into()),
                    step: f.record.step.clone().unwrap_or_else(|| "-".into()),
                    reason: f.record.reason.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let refusals = snapshot
        .refusals
        .as_ref()
        .map(|list| {
            list.iter()
                .skip(skip)
                .take(PAGE)
                .map(|f| RefusalRow {
                    id: f.record.file_name(),
                    recorded_at: f.record.recorded_at.clone(),
                    event_id: f.record.event_id.clone(),
                    topic: f.record.topic.clone(),
                    reason: format!("{} {}", f.record.status, f.record.reason),
                    from: f.record.object.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    Failures {
        frame,
        page,
        pages,
        failures_total,
        refusals_total,
        results,
        failures,
        refusals,
    }
}

pub async fn failures(
    State(console): State<Arc<Console>>,
    Query(query): Query<ListQuery>,
) -> Response {
    let snapshot = console.snapshot().await;
    render(failures_page(
        &console,
        &snapshot,
        Vec::new(),
        query.page.unwrap_or(1),
    ))
}

pub struct Found {
    pub key_query: String,
    pub site: String,
    pub asset: String,
    pub position: String,
    pub technical_object: String,
    pub why: String,
}

#[derive(Template)]
#[template(path = "console/search.html")]
struct Search {
    frame: Frame,
    positions: Vec<Found>,
    records: Vec<(&'static str, String, String, String)>,
    /// A trace id's alert: each of its events as the processor kept it (position, then the
    /// step).
    way: Vec<(String, StepRow)>,
}

pub async fn search(
    State(console): State<Arc<Console>>,
    Query(query): Query<ListQuery>,
) -> Response {
    let snapshot = console.snapshot().await;
    let mut frame = Frame::new(&console, &snapshot, "Search", "search");
    frame.problems = problems(&snapshot, true, true);
    frame.query = query.q.clone();
    frame.back = format!("/search?q={}", query_value(&query.q));
    let needle = query.q.trim().to_lowercase();
    if needle.is_empty() {
        return render(Search {
            frame,
            positions: Vec::new(),
            records: Vec::new(),
            way: Vec::new(),
        });
    }
    let positions: &[Position] = snapshot.positions.as_deref().unwrap_or_default();
    let found: Vec<Found> = positions
        .iter()
        .filter_map(|p| {
            let why = if matches(p, &needle) {
                Some("its names or technical object".to_string())
            } else if let Some(s) = p
                .timeline
                .iter()
                .find(|s| s.event_id.to_lowercase() == needle)
            {
                Some(format!("event {}", s.event_id))
            } else if let Some(s) = p.timeline.iter().find(|s| s.trace == needle) {
                Some(format!("the trace of event {}", s.event_id))
            } else {
                p.filed
                    .iter()
                    .find(|f| f.number.to_lowercase() == needle)
                    .map(|f| format!("notification {}", f.number))
            }?;
            Some(Found {
                key_query: query_value(&p.key),
                site: p.site.clone(),
                asset: p.asset.clone(),
                position: p.position.clone(),
                technical_object: p.technical_object.clone(),
                why,
            })
        })
        .take(PAGE)
        .collect();
    let mut records = Vec::new();
    for f in snapshot.failures.as_deref().unwrap_or_default() {
        let trace = f.record.traceparent.as_deref().unwrap_or_default();
        if f.record.event_id.to_lowercase().contains(&needle) || trace.contains(&needle) {
            records.push((
                "processor failure",
                f.record.event_id.clone(),
                f.record.recorded_at.clone(),
                f.record.reason.clone(),
            ));
        }
    }
    for f in snapshot.refusals.as_deref().unwrap_or_default() {
        if f.record.event_id.to_lowercase().contains(&needle)
            || f.record.topic.to_lowercase().contains(&needle)
        {
            records.push((
                "broker refusal",
                f.record.event_id.clone(),
                f.record.recorded_at.clone(),
                format!("{} {}", f.record.status, f.record.reason),
            ));
        }
    }
    records.truncate(PAGE);
    let way = positions
        .iter()
        .flat_map(|p| {
            p.timeline
                .iter()
                .filter(|s| s.trace == needle)
                .map(|s| (p.title(), step_row(s)))
        })
        .take(PAGE)
        .collect();
    render(Search {
        frame,
        positions: found,
        records,
        way,
    })
}
