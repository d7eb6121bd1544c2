//! A notification's trend chart: the position's last `TREND_DAYS` of measurements (kept by the
//! forwarder in `TREND_TABLE`), drawn as a PNG with the alert marked and attached in S/4
//! through `API_CV_ATTACHMENT_SRV` (`s4::attachment`, `docs/attachments.md`).
//!
//! Rules:
//! - a notification this processor creates for an episode asks for its chart; one taken over
//!   from S/4, a storm's notification (`schedule::storm`) and notifications filed before charts
//!   ask none, and with `S4_ATTACHMENTS=off` none is asked;
//! - before the create, the position's series is read (at most [`READ_BEFORE_CREATE`]): with
//!   no measurement kept in the window, the notification's long text says so in one line
//!   ([`no_series_line`]) and no chart is asked; a read that fails asks the chart (it is read
//!   again when attached);
//! - the chart is attached once the delivery's plans are settled, under the position's lease,
//!   within its own bound ([`ATTACH_WITHIN`], inside the reply budget): the notification is in
//!   S/4 first, and nothing the attachment does changes the delivery's outcome;
//! - S/4 is asked first which originals the notification has: our file
//!   (`Monitron-trend-<number>.png`) among them means attached. Else the chart is drawn and
//!   uploaded. With the lease serialising the position's deliveries, and an upload whose
//!   answer was lost looked for again before the next, a notification gets one chart however
//!   often, and however concurrently, its alert is delivered;
//! - a failure a retry can help (S/4 or the table unavailable, the bound spent) is tried again
//!   on the position's next delivery and by the schedule (the position is listed in the charts
//!   index, `EpisodeStore::chart_due`), [`MAX_TRIES`] times in all; then, or at once when S/4
//!   refuses the upload, it is recorded as a failure (`FailureRecord` with action
//!   [`CHART_ACTION`]) for `e2b reprocess`, which tries it again ([`again`]).
//!   A record that cannot be written leaves the chart due;
//! - a series found empty when attaching (the read before the create had failed) writes the
//!   one line to the long text instead.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::outcome::{Disposed, Disposition};
use crate::processor::Processor;
use crate::processor::failures::FailureRecord;
use crate::processor::idempotency::IdempotencyStore;
use crate::processor::s4::attachment::linked_key;
use crate::processor::s4::{NewNotification, S4Client, S4Error};
use crate::trend::Series;
use crate::trend::chart::{Alert, Chart};
use crate::trend::store::TrendTable;

use super::model::PositionKey;
use super::reconcile::now;
use super::state::{ChartAsk, Filed, PositionState};
use super::store::EpisodeStore;

mod again;

/// How long the series is read for before a create, at most.
pub const READ_BEFORE_CREATE: Duration = Duration::from_secs(2);

/// How long attaching one chart may take, at most (within the reply budget).
pub const ATTACH_WITHIN: Duration = Duration::from_secs(10);

/// Tries of a chart that meets a temporary failure before it is recorded.
pub const MAX_TRIES: u32 = 5;

/// The action a chart's failure record names.
pub const CHART_ACTION: &str = "attach trend chart";

/// Where charts come from and go.
pub struct Charts {
    /// The forwarder's trend points.
    pub series: TrendTable,
    /// A client of `API_CV_ATTACHMENT_SRV`.
    pub attachments: S4Client,
    /// `S4_ATTACHMENT_OBJECT_TYPE`: `PMQMEL` or `BUS2038`.
    pub object_type: String,
    /// `TREND_DAYS`: the window before the alert.
    pub days: u32,
}

impl Charts {
    /// The series of `position` in the window before `at`.
    async fn series(&self, position: &str, at: DateTime<Utc>) -> Result<Series, String> {
        let from = at - chrono::Duration::days(i64::from(self.days));
        self.series
            .read(position, from, at)
            .await
            .map(|mut series| {
                series.keep_between(from, at);
                series
            })
            .map_err(|e| format!("the trend table {} cannot be read: {e}", self.series.table))
    }
}

/// The chart file of a notification.
pub fn file_name(number: &str) -> String {
    format!("Monitron-trend-{number}.png")
}

/// The long text's line when there is no chart to attach.
pub fn no_series_line(days: u32) -> String {
    format!(
        "Trend chart: none attached; no measurements of this sensor position were kept in the {days} days before the alert (the forwarder keeps them in TREND_TABLE)."
    )
}

/// What one try of a chart came to.
enum Tried {
    Attached,
    NoSeries,
    /// A retry can help.
    Later(String),
    /// S/4 refused it: recorded at once.
    Refused(String),
}

impl From<S4Error> for Tried {
    fn from(e: S4Error) -> Tried {
        match e.disposition() {
            Disposition::GiveUp => Tried::Refused(e.to_string()),
            _ => Tried::Later(e.to_string()),
        }
    }
}

impl<I: IdempotencyStore + EpisodeStore> Processor<I> {
    /// What a new notification's draft asks for its chart: the long text's line when no
    /// measurement was kept.
    pub(super) async fn chart_for_draft(
        &self,
        position: &PositionKey,
        at: DateTime<Utc>,
        draft: &mut NewNotification,
    ) -> ChartAsk {
        let Some(charts) = &self.settings.charts else {
            return ChartAsk::None;
        };
        match tokio::time::timeout(READ_BEFORE_CREATE, charts.series(&position.0, at)).await {
            Ok(Ok(series)) if series.points().is_empty() => {
                draft.long_text = format!("{}\n{}", draft.long_text, no_series_line(charts.days));
                ChartAsk::NoSeries
            }
            Ok(Ok(_)) => ChartAsk::Due { tries: 0 },
            Ok(Err(why)) => {
                tracing::warn!(position = %position.0, %why, "the trend series was not read before the create; it is read again when the chart is attached");
                ChartAsk::Due { tries: 0 }
            }
            Err(_) => {
                tracing::warn!(position = %position.0, "the trend series was not read within {READ_BEFORE_CREATE:?} before the create; it is read again when the chart is attached");
                ChartAsk::Due { tries: 0 }
            }
        }
    }

    /// Attaches the charts due of the position's notifications (module doc), within `deadline`.
    pub(super) async fn attach_due(
        &self,
        state: &mut PositionState,
        position: &PositionKey,
        deadline: Instant,
    ) {
        let Some(charts) = self.settings.charts.clone() else {
            return;
        };
        if !state.filed.iter().any(|f| f.chart.is_due()) {
            return;
        }
        // Listed in the charts index only after a try that failed.
        let listed = state
            .filed
            .iter()
            .any(|f| matches!(f.chart, ChartAsk::Due { tries: 1.. }));
        for index in 0..state.filed.len() {
            let ChartAsk::Due { tries } = state.filed[index].chart else {
                continue;
            };
            let bound = deadline.min(Instant::now() + ATTACH_WITHIN);
            let tried = match self.try_chart(&charts, state, index, position, bound).await {
                Ok(tried) => tried,
                Err(elapsed) => Tried::Later(elapsed),
            };
            let filed = &state.filed[index];
            let number = filed.number.clone();
            let next = match tried {
                Tried::Attached => {
                    tracing::info!(notification = %number, position = %position.0, "trend chart attached");
                    ChartAsk::Attached
                }
                Tried::NoSeries => ChartAsk::NoSeries,
                Tried::Later(why) if tries + 1 < MAX_TRIES => {
                    tracing::warn!(notification = %number, position = %position.0, tries = tries + 1, %why, "trend chart not attached; tried again on the position's next delivery or by the schedule");
                    ChartAsk::Due { tries: tries + 1 }
                }
                Tried::Later(why) => {
                    let why = format!("{why} ({MAX_TRIES} tries)");
                    self.record_chart(state, index, position, &why).await
                }
                Tried::Refused(why) => self.record_chart(state, index, position, &why).await,
            };
            state.filed[index].chart = next;
        }
        let due = state.filed.iter().any(|f| f.chart.is_due());
        if due == listed {
            return;
        }
        if let Err(e) = self.idempotency.chart_due(&position.0, due).await {
            tracing::warn!(position = %position.0, error = %e, due, "the charts index was not updated; a due chart is still tried on the position's next delivery");
        }
    }

    /// One try of a notification's chart; `Err` when the bound ran out.
    async fn try_chart(
        &self,
        charts: &Charts,
        state: &PositionState,
        index: usize,
        position: &PositionKey,
        bound: Instant,
    ) -> Result<Tried, String> {
        let trying = self.try_chart_within(charts, state, index, position, bound);
        tokio::time::timeout_at(tokio::time::Instant::from_std(bound), trying)
            .await
            .map_err(|_| format!("not done within {ATTACH_WITHIN:?} or the reply budget"))
    }

    async fn try_chart_within(
        &self,
        charts: &Charts,
        state: &PositionState,
        index: usize,
        position: &PositionKey,
        bound: Instant,
    ) -> Tried {
        let filed = &state.filed[index];
        let number = filed.number.clone();
        let key = linked_key(&number);
        let name = file_name(&number);
        match charts
            .attachments
            .originals(&charts.object_type, &key, bound)
            .await
        {
            Ok(originals) if originals.iter().any(|o| o.eq_ignore_ascii_case(&name)) => {
                return Tried::Attached;
            }
            Ok(_) => {}
            Err(e) => return e.into(),
        }
        let alert = alert_of(state, filed);
        let at = alert.as_ref().map_or_else(now, |a| a.at);
        let series = match charts.series(&position.0, at).await {
            Ok(series) => series,
            Err(why) => return Tried::Later(why),
        };
        if series.points().is_empty() {
            let line = no_series_line(charts.days);
            return match self.s4.append_long_text(&number, &line, bound).await {
                Ok(()) => Tried::NoSeries,
                Err(e) => e.into(),
            };
        }
        let chart = Chart {
            series: &series,
            days: charts.days,
            alert,
        };
        let png = match crate::trend::chart::png::render(&chart) {
            Ok(png) => png,
            Err(why) => return Tried::Refused(format!("the chart cannot be drawn: {why}")),
        };
        match charts
            .attachments
            .attach(
                &charts.object_type,
                &key,
                &name,
                "image/png",
                Arc::new(png),
                bound,
            )
            .await
        {
            Ok(()) => Tried::Attached,
            Err(e) => e.into(),
        }
    }

    /// Records a chart given up; the chart stays due when the record cannot be written.
    async fn record_chart(
        &self,
        state: &PositionState,
        index: usize,
        position: &PositionKey,
        why: &str,
    ) -> ChartAsk {
        let filed = &state.filed[index];
        let record = chart_failure(state, filed, position, why);
        match self.settings.failures.record(&record).await {
            Ok(place) => {
                tracing::warn!(notification = %filed.number, position = %position.0, %why, recorded = %place, "trend chart not attached: recorded for e2b reprocess; the notification is unchanged");
                ChartAsk::GaveUp
            }
            Err(e) => {
                tracing::warn!(notification = %filed.number, position = %position.0, %why, error = %e, "trend chart not attached and its failure not recorded: tried again later");
                match filed.chart {
                    ChartAsk::Due { tries } => ChartAsk::Due { tries },
                    _ => ChartAsk::Due { tries: 0 },
                }
            }
        }
    }
}

/// The alert the notification was created for, as its chart marks it.
fn alert_of(state: &PositionState, filed: &Filed) -> Option<Alert> {
    state.seen(&filed.creator).map(|seen| Alert {
        at: seen.change.time,
        state: seen.change.state.clone(),
    })
}

/// The failure record of a chart given up: `e2b reprocess` tries it again by its request.
fn chart_failure(
    state: &PositionState,
    filed: &Filed,
    position: &PositionKey,
    why: &str,
) -> FailureRecord {
    FailureRecord {
        version: 1,
        recorded_at: crate::aws::records::recorded_now(),
        event_id: filed.creator.clone(),
        source: state.place.label.clone(),
        rule: Some("trend chart".into()),
        action: Some(CHART_ACTION.into()),
        step: Some("upload".into()),
        reason: format!(
            "the trend chart of notification {} was not attached: {why}; the notification is unchanged",
            filed.number
        ),
        request: Some(json!({
            "position": position.0,
            "notification": filed.number,
            "file": file_name(&filed.number),
            "linkedSAPObjectKey": linked_key(&filed.number),
        })),
        completed_steps: serde_json::Map::new(),
        delivery: String::new(),
        traceparent: None,
    }
}
