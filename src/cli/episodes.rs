//! `e2b episodes`: the alarm episodes the processor keeps, as a table: per sensor position, its
//! open episode (or every episode with `--all`) and the notification S/4 has for it, held
//! (alarm management) or none because it recovered while held; then the sites alarm management
//! keeps: a storm under way or the last one, and what is held.

use std::fmt::Write as _;
use std::process::ExitCode;

use crate::processor::alarms::site::{SiteRecord, StormSummary};
use crate::processor::episode::group::by_notification;
use crate::processor::episode::sites::SiteStore;
use crate::processor::episode::state::PositionState;
use crate::processor::episode::store::EpisodeStore;
use crate::processor::idempotency::DynamoStore;

#[derive(clap::Args)]
pub struct EpisodesArgs {
    /// The processor's idempotency table. Default: IDEMPOTENCY_TABLE.
    #[arg(long, value_name = "NAME")]
    table: Option<String>,

    /// Ended episodes too, not only the open ones.
    #[arg(long)]
    all: bool,

    /// Each remembered event too, with its trace id (what the logs, the console's search and
    /// X-Ray find it by).
    #[arg(long)]
    events: bool,
}

pub fn run(args: EpisodesArgs) -> ExitCode {
    super::block_on(list(args))
}

async fn list(args: EpisodesArgs) -> ExitCode {
    let Some(table) = args
        .table
        .clone()
        .or_else(|| crate::env::Env::new("CLI", &crate::env::process).text("IDEMPOTENCY_TABLE"))
    else {
        eprintln!("say which table: --table NAME (or set IDEMPOTENCY_TABLE)");
        return ExitCode::from(2);
    };
    let aws = super::aws().await;
    let store = DynamoStore {
        client: aws_sdk_dynamodb::Client::new(&aws),
        table: table.clone(),
        keep_completed: std::time::Duration::ZERO,
    };
    let records = match store.all().await {
        Ok(records) => records,
        Err(e) => {
            eprintln!("cannot read the episodes in {table}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut rows = Vec::new();
    let mut events = Vec::new();
    for (position, json) in &records {
        match PositionState::read(json) {
            Ok(state) => {
                rows.extend(table_rows(&state, args.all));
                if args.events {
                    events.extend(event_lines(&state));
                }
            }
            Err(why) => eprintln!(
                "position {position}: {why}; the processor rebuilds it from S/4 on its next event"
            ),
        }
    }
    rows.sort();
    print!("{}", render(&rows));
    if args.events {
        events.sort();
        println!();
        for line in &events {
            println!("{line}");
        }
    }
    eprintln!("{} episode(s) of {} position(s)", rows.len(), records.len());
    let sites = match store.sites().await {
        Ok(sites) => sites,
        Err(e) => {
            eprintln!("cannot read the sites of alarm management in {table}: {e}");
            return ExitCode::FAILURE;
        }
    };
    for site in sites {
        match store.site(&site).await {
            Ok(record) => println!("{}", site_line(&site, &record)),
            Err(e) => eprintln!("site {site}: cannot be read: {e}"),
        }
    }
    ExitCode::SUCCESS
}

fn at(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// One site of alarm management: its storm under way or its last one, and what it holds.
pub fn site_line(site: &str, record: &SiteRecord) -> String {
    let held = record.held();
    let storm = match (&record.storm, &record.last_storm) {
        (Some(storm), _) => format!(
            "storm since {}: {} positions, notification {}, {} released, {} recovered",
            at(storm.began_ms),
            record.members(storm).count(),
            storm.number.as_deref().unwrap_or("not yet created"),
            storm.released,
            storm.recovered
        ),
        (
            None,
            Some(StormSummary {
                began_ms,
                ended_ms,
                number,
                positions,
                released,
                recovered,
            }),
        ) => format!(
            "last storm {} to {}: {positions} positions, notification {}, {released} released, {recovered} recovered",
            at(*began_ms),
            at(*ended_ms),
            number.as_deref().unwrap_or("none")
        ),
        (None, None) => "no storm".to_string(),
    };
    format!("site {site}: {storm}; {held} episode(s) held")
}

/// Each event a position's record remembers: position, event time, event id, state, trace id.
pub fn event_lines(state: &PositionState) -> Vec<String> {
    state
        .changes
        .iter()
        .map(|seen| {
            format!(
                "{}  {}  {}  {}  trace {}",
                state.place.label,
                seen.change.time.format("%Y-%m-%d %H:%M:%S UTC"),
                seen.change.id,
                seen.change.state,
                seen.trace.as_deref().unwrap_or("-")
            )
        })
        .collect()
}

/// One line of the table: position, technical object, since, last change, state, events,
/// notification (number, priority, phase).
type Row = [String; 7];

/// The rows of one position's record: its open episode, or all of them.
pub fn table_rows(state: &PositionState, all: bool) -> Vec<Row> {
    let time = |t: &chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    by_notification(state)
        .iter()
        .filter(|(e, _, _)| all || e.end.is_none())
        .map(|(episode, filed, held)| {
            let ids: Vec<&str> = episode.changes().map(|c| c.id.as_str()).collect();
            let filed = filed.map(|i| &state.filed[i]);
            let returns = match held {
                0 | 1 => String::new(),
                n => format!(", {n} episodes"),
            };
            let notification = match filed {
                Some(f) => format!(
                    "{} (priority {}{returns}{})",
                    f.number,
                    f.priority.as_deref().unwrap_or("-"),
                    if f.completed { ", completed" } else { "" }
                ),
                None if state.pending.is_some() => "being created".into(),
                None if episode
                    .end
                    .is_some_and(|end| state.quiet_through.is_some_and(|q| end.time <= q)) =>
                {
                    "none (recovered while held)".into()
                }
                None => match &state.hold {
                    Some(hold) => format!("held since {} (alarm management)", time(&hold.since)),
                    None => "none yet".into(),
                },
            };
            let last = episode.changes().last().map(|c| c.time);
            let status = episode.status();
            [
                state.place.label.clone(),
                state.place.technical_object.clone(),
                time(&episode.alerts[0].time),
                last.as_ref().map(time).unwrap_or_default(),
                status,
                // The notification's count when it holds lines of changes no longer remembered.
                filed
                    .map_or(0, |f| f.events())
                    .max(ids.len() as u64)
                    .to_string(),
                notification,
            ]
        })
        .collect()
}

/// The rows under a header, columns as wide as their widest cell.
pub fn render(rows: &[Row]) -> String {
    let header: Row = [
        "POSITION",
        "TECHNICAL OBJECT",
        "SINCE",
        "LAST CHANGE",
        "STATE",
        "EVENTS",
        "NOTIFICATION",
    ]
    .map(str::to_string);
    let mut widths = [0usize; 7];
    for row in std::iter::once(&header).chain(rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}
