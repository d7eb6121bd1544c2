//! `e2b trend`: a position's trend chart (PNG or SVG) from export objects (files, stdin, S3),
//! with the newest alert of the position marked.
//!
//! Rules:
//! - every measurement record of the objects is a point of its position
//!   (`crate::trend::point`); the alerts are the asset state changes the forwarder would
//!   publish as `…asset.alert` (every state, as with `FORWARD_STATES=all`);
//! - the position is the one `--position` names (its `assetPositionId`, its `Asset / Position`
//!   title, or its key; any case), else the only one with points, else the only one with points
//!   and an alert; otherwise the positions are listed and nothing is drawn (exit status 2);
//! - the window ends at the position's newest alert, else at its newest point, and spans
//!   `--days` (default `TREND_DAYS`, else 30);
//! - `--out` ending in `.svg` writes SVG, anything else PNG;
//! - with `--table`, the points are those the forwarder keeps (`TREND_TABLE`) for the position
//!   whose key `--position` gives, over the `--days` before `--end` (default now).

use std::collections::BTreeMap;
use std::process::ExitCode;

use serde_json::Value;

use super::scan::Objects;
use crate::event::{EventBuilder, to_utc};
use crate::forwarder::scan::{Report, ScanConfig, Scanner};
use crate::monitron::ForwardingRules;
use crate::trend::chart::{self, Alert, Chart};
use crate::trend::store::TrendTable;
use crate::trend::{DEFAULT_DAYS, Series, position_key};

#[derive(clap::Args)]
pub struct TrendArgs {
    /// Firehose objects: files (gzip or not), `-` for standard input, or `s3://bucket/key`.
    #[arg(
        required_unless_present = "table",
        conflicts_with = "table",
        value_name = "PATH"
    )]
    paths: Vec<String>,

    /// Read the points the forwarder keeps in this DynamoDB table (its TREND_TABLE) instead of
    /// objects; --position is then the position's key (as `e2b episodes` and the console show it).
    #[arg(long, value_name = "NAME", requires = "position")]
    table: Option<String>,

    /// With --table: the window's end (RFC 3339; default now).
    #[arg(long, value_name = "TIME", requires = "table")]
    end: Option<String>,

    /// The position: its assetPositionId, `Asset / Position`, or its key.
    #[arg(long, value_name = "POSITION")]
    position: Option<String>,

    /// Days shown, ending at the alert (default TREND_DAYS, else 30).
    #[arg(long, value_name = "DAYS")]
    days: Option<u32>,

    /// Where the chart goes: `.svg` for SVG, anything else PNG.
    #[arg(long, value_name = "FILE", default_value = "trend.png")]
    out: String,
}

/// One position's points and alerts.
struct Found {
    series: Series,
    alerts: Vec<Alert>,
}

pub fn run(args: TrendArgs) -> ExitCode {
    let days = match args.days {
        Some(days) => days,
        None => {
            let mut env = crate::env::Env::new("CLI", &crate::env::process);
            let days = env.number("TREND_DAYS", u64::from(DEFAULT_DAYS), 1, 3650);
            if let Err(e) = env.finish() {
                eprintln!("e2b trend: {e}");
                return ExitCode::from(2);
            }
            u32::try_from(days).unwrap_or(DEFAULT_DAYS)
        }
    };
    if let Some(table) = &args.table {
        return super::block_on(from_table(&args, table, days));
    }
    let mut scanner = Scanner::new(ScanConfig {
        rules: ForwardingRules::default(),
        events: EventBuilder::default(),
        measurements: true,
        ..ScanConfig::default()
    });
    let mut positions: BTreeMap<String, Found> = BTreeMap::new();
    let mut objects = Objects::default();
    let mut failed = false;
    for path in &args.paths {
        let (origin, reader) = match objects.open(path) {
            Ok(opened) => opened,
            Err(e) => {
                eprintln!("e2b trend: {e}");
                failed = true;
                continue;
            }
        };
        let result = scanner.scan(&origin, reader, |report| {
            collect(&mut positions, report);
            Ok::<(), std::convert::Infallible>(())
        });
        if let Err(e) = result {
            eprintln!("e2b trend: {}: {e}", origin.label());
            failed = true;
        }
    }
    let Some(found) = choose(&mut positions, args.position.as_deref()) else {
        return ExitCode::from(2);
    };
    let alert = found.alerts.iter().max_by_key(|a| a.at).cloned();
    let chart = Chart {
        series: &found.series,
        days,
        alert,
    };
    if let Err(code) = write(&chart, &args.out) {
        return code;
    }
    if failed {
        eprintln!("e2b trend: not every object could be read to its end (see above)");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Writes the chart to `out` (SVG for `.svg`, else PNG) and says what it shows.
fn write(chart: &Chart<'_>, out: &str) -> Result<(), ExitCode> {
    let written = if out.to_ascii_lowercase().ends_with(".svg") {
        std::fs::write(out, chart::svg::render(chart)).map_err(|e| e.to_string())
    } else {
        chart::png::render(chart)
            .and_then(|png| std::fs::write(out, png).map_err(|e| e.to_string()))
    };
    if let Err(e) = written {
        eprintln!("e2b trend: cannot write {out}: {e}");
        return Err(ExitCode::FAILURE);
    }
    let (from, to) = chart.window();
    let shown = chart
        .series
        .points()
        .iter()
        .filter(|p| p.at >= from && p.at <= to)
        .count();
    let marked = match &chart.alert {
        Some(a) => format!(
            "{} at {} marked",
            a.state,
            a.at.format("%Y-%m-%d %H:%M:%S UTC")
        ),
        None => "no alert marked".into(),
    };
    eprintln!(
        "e2b trend: {}: {} from {} to {} UTC, {marked}; written to {out}",
        chart.series.position.title(),
        counted(shown, "measurement"),
        from.format("%Y-%m-%d %H:%M"),
        to.format("%Y-%m-%d %H:%M"),
    );
    Ok(())
}

/// The chart of the points kept in `table` for the position whose key `--position` gives.
async fn from_table(args: &TrendArgs, table: &str, days: u32) -> ExitCode {
    let key = args.position.clone().unwrap_or_default();
    let end = match args.end.as_deref().map(to_utc) {
        None => chrono::Utc::now(),
        Some(Some(end)) => end,
        Some(None) => {
            eprintln!("e2b trend: --end is not a time (RFC 3339, e.g. 2024-03-01T09:00:00Z)");
            return ExitCode::from(2);
        }
    };
    let table = TrendTable {
        client: aws_sdk_dynamodb::Client::new(&super::aws().await),
        table: table.to_string(),
    };
    let from = end - chrono::Duration::days(i64::from(days));
    let series = match table.read(&key, from, end).await {
        Ok(series) => series,
        Err(e) => {
            eprintln!("e2b trend: the table {} cannot be read: {e}", table.table);
            return ExitCode::FAILURE;
        }
    };
    if series.points().is_empty() {
        eprintln!(
            "e2b trend: no measurements of position {key} kept in {} from {} to {} UTC: nothing to draw",
            table.table,
            from.format("%Y-%m-%d %H:%M"),
            end.format("%Y-%m-%d %H:%M")
        );
        return ExitCode::from(2);
    }
    // The window ends at the newest point kept before `end`.
    let chart = Chart {
        series: &series,
        days,
        alert: None,
    };
    match write(&chart, &args.out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}

fn collect(positions: &mut BTreeMap<String, Found>, report: Report) {
    let new = |series| Found {
        series,
        alerts: Vec::new(),
    };
    match report {
        Report::Measurement(measured) => {
            let (position, point) = *measured;
            let Some(key) = position.key() else {
                return;
            };
            positions
                .entry(key)
                .or_insert_with(|| new(Series::new(position)))
                .series
                .push(point);
        }
        Report::Event(event) if event.event_type == "com.amazon.monitron.asset.alert" => {
            let Ok(payload) = serde_json::from_str::<Value>(&event.payload) else {
                return;
            };
            let data = &payload["data"];
            let text = |name: &str| data[name].as_str();
            let names = match (text("site"), text("asset"), text("position")) {
                (Some(s), Some(a), Some(p)) => Some((s, a, p)),
                _ => None,
            };
            let Some(key) = position_key(&event.source, text("assetPositionId"), names) else {
                return;
            };
            let (Some(at), Some(state)) = (
                payload["time"].as_str().and_then(to_utc),
                data["state"]["new"].as_str(),
            ) else {
                return;
            };
            let alert = Alert {
                at,
                state: state.to_string(),
            };
            if let Some(found) = positions.get_mut(&key) {
                found.alerts.push(alert);
            }
        }
        Report::Event(_) | Report::Problem(_) => {}
    }
}

/// The position asked for, or the only one there can be; otherwise says which there are.
fn choose(positions: &mut BTreeMap<String, Found>, asked: Option<&str>) -> Option<Found> {
    let matches = |key: &str, found: &Found| {
        let Some(asked) = asked else {
            return true;
        };
        let position = &found.series.position;
        key.eq_ignore_ascii_case(asked)
            || position
                .asset_position_id
                .as_deref()
                .is_some_and(|id| id.eq_ignore_ascii_case(asked))
            || position.title().eq_ignore_ascii_case(asked.trim())
    };
    let mut keys: Vec<String> = positions
        .iter()
        .filter(|(key, found)| matches(key, found))
        .map(|(key, _)| key.clone())
        .collect();
    if keys.len() > 1 && asked.is_none() {
        keys.retain(|key| positions.get(key).is_some_and(|f| !f.alerts.is_empty()));
    }
    if let [key] = keys.as_slice() {
        return positions.remove(key);
    }
    if positions.is_empty() {
        eprintln!("e2b trend: no measurement records in the objects: nothing to draw");
    } else {
        let what = match asked {
            Some(asked) => format!("no single position is `{asked}`"),
            None => "the objects hold several positions".to_string(),
        };
        eprintln!("e2b trend: {what}; name one with --position:");
        for (key, found) in positions.iter() {
            let position = &found.series.position;
            eprintln!(
                "  {key}  {} (assetPositionId {}), {}, {}",
                position.title(),
                position.asset_position_id.as_deref().unwrap_or("none"),
                counted(found.series.points().len(), "measurement"),
                counted(found.alerts.len(), "alert")
            );
        }
    }
    None
}

/// `1 measurement`, `2 measurements`.
fn counted(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}
