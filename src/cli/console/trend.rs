//! The position page's trend chart: the position's series from the trend table, drawn as SVG.
//!
//! Rules:
//! - the table is `TREND_TABLE`, else the processor's idempotency table (where the template
//!   keeps the forwarder's trend points, beside the episodes);
//! - the window is the 30 days (`TREND_DAYS`) before the position's newest alert, else before
//!   its newest change; that alert is marked;
//! - a position without points in the window, or a table that cannot be read, gets a line that
//!   says so instead of a chart.

use chrono::{DateTime, Duration, Utc};

use super::Console;
use super::snapshot::Position;
use crate::processor::episode::model::is_alert;
use crate::trend::chart::{self, Alert, Chart};
use crate::trend::store::TrendTable;

/// The chart as SVG, or the line that says why there is none.
pub async fn of_position(
    console: &Console,
    position: &Position,
    days: u32,
) -> Result<String, String> {
    let Some(table) = console
        .sources
        .trend_table
        .clone()
        .or_else(|| console.sources.episodes_table.clone())
    else {
        return Err("No trend chart: set TREND_TABLE (or IDEMPOTENCY_TABLE) to the table the forwarder keeps the measurements in.".into());
    };
    let alert = position
        .timeline
        .iter()
        .rev()
        .find(|s| is_alert(&s.state))
        .map(|s| Alert {
            at: s.time,
            state: s.state.clone(),
        });
    let end: DateTime<Utc> = alert
        .as_ref()
        .map(|a| a.at)
        .or_else(|| position.timeline.last().map(|s| s.time))
        .unwrap_or_else(Utc::now);
    let from = end - Duration::days(i64::from(days));
    let table = TrendTable {
        client: console.clients.dynamodb.clone(),
        table,
    };
    let mut series = table
        .read(&position.key, from, end)
        .await
        .map_err(|e| format!("No trend chart: the trend table cannot be read: {e}"))?;
    if series.points().is_empty() {
        return Err(format!(
            "No trend chart: no measurements of this position were kept in the {days} days before {}.",
            end.format("%Y-%m-%d %H:%M UTC")
        ));
    }
    // The names the episodes know, where the points' own are missing.
    let names = &mut series.position;
    for (name, known) in [
        (&mut names.site, &position.site),
        (&mut names.asset, &position.asset),
        (&mut names.position, &position.position),
        (&mut names.project, &position.plant),
    ] {
        if name.is_none() && !known.is_empty() {
            *name = Some(known.clone());
        }
    }
    Ok(chart::svg::render(&Chart {
        series: &series,
        days,
        alert,
    }))
}
