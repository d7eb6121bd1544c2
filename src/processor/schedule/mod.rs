//! The schedule: EventBridge's every-minute Scheduled Event, through the processor's own Lambda,
//! releases what alarm management holds (on-delays, storms) even when nothing else arrives.
//!
//! Rules:
//! - one tick reads the sites listed in the index (`episode::sites`), and goes over them twice:
//!   first releasing only the held positions still in alert (the notifications a planner waits
//!   for, on every site before the bookkeeping of any), then those whose episode ended (each
//!   position once a tick); for each site: writes the storm's notification (`storm`), releases the held positions whose hold has
//!   ended ([`Processor::release`]: the position's lease, as a delivery takes it), ends a storm
//!   once its notification names every member, every member is released and its closing line
//!   is written (else the next tick goes on), and drops entries no longer of use;
//! - the tick is the only writer of storm decisions after the storm is recognised; deliveries
//!   only write their entries;
//! - a release that fails (S/4 down, the request rate spent, the position busy) is left for the
//!   next tick; nothing is released twice (the position's record says when it was), and a
//!   container dying mid-tick loses nothing (leases end by themselves, holds stay recorded);
//! - after the sites, the positions listed with a trend chart due (`episode::chart`) are
//!   leased one at a time and their charts tried;
//! - a tick stops starting releases 3 s before [`TICK_BUDGET`] (50 s, below the minute between
//!   ticks and the Lambda's 60 s timeout); releases run a few at a time ([`AT_ONCE`]).

mod storm;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Serialize;

use crate::processor::Processor;
use crate::processor::alarms::site::{SiteEntry, StormSummary};
use crate::processor::episode::hold::Released;
use crate::processor::episode::store::EpisodeStore;
use crate::processor::idempotency::IdempotencyStore;
use crate::processor::rules::RuleSet;

/// How many positions one tick releases at a time.
pub const AT_ONCE: usize = 16;

/// How long one tick works at most: below the minute between ticks and the Lambda's 60 s
/// timeout (deliveries keep their own, shorter reply budget).
pub const TICK_BUDGET: Duration = Duration::from_secs(50);

/// Whether a Lambda event is EventBridge's Scheduled Event.
pub fn is_scheduled_event(event: &serde_json::Value) -> bool {
    event.get("detail-type").and_then(|v| v.as_str()) == Some("Scheduled Event")
        && event.get("source").and_then(|v| v.as_str()) == Some("aws.events")
}

/// Which held positions a pass over the sites releases (each position once a tick).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Those still in alert: their notifications first.
    InAlert,
    /// Those whose episode ended, then the storms' ends and the clean-up.
    Rest,
}

impl Pass {
    fn takes(self, entry: &SiteEntry) -> bool {
        (self == Pass::Rest) == entry.recovered
    }
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tick {
    pub sites: usize,
    /// Held positions that got their notification, and that had recovered (none).
    pub released: usize,
    pub recovered: usize,
    /// Releases left for the next tick, with why.
    pub later: Vec<String>,
    pub storms_ended: usize,
    /// Storm notifications created, and positions' lines written to them.
    pub storm_notifications: usize,
    pub storm_lines: usize,
    /// Positions whose due trend charts were tried (`episode::chart`), and those with none
    /// left due.
    pub charts_tried: usize,
    pub charts_settled: usize,
    /// Failures of the site records or of S/4 for a storm (the next tick tries again).
    pub errors: Vec<String>,
}

fn now_ms() -> i64 {
    i64::try_from(crate::aws::dynamo::now().as_millis()).unwrap_or(i64::MAX)
}

impl<I: IdempotencyStore + EpisodeStore> Processor<I> {
    /// One tick of the schedule (module doc).
    pub async fn tick(&self) -> Tick {
        let started = Instant::now();
        let deadline = started + TICK_BUDGET.max(self.settings.budget);
        let rules = self.settings.rules.current().await;
        let mut tick = Tick::default();
        let sites = match self.idempotency.sites().await {
            Ok(sites) => sites,
            Err(e) => {
                tick.errors
                    .push(format!("the index of sites cannot be read: {e}"));
                return tick;
            }
        };
        // Two passes: first every site's positions still in alert (the notifications a planner
        // waits for), then the rest (those that recovered: bookkeeping, the storms' ends).
        for pass in [Pass::InAlert, Pass::Rest] {
            for site in &sites {
                if Instant::now() >= deadline {
                    if pass == Pass::Rest {
                        tick.later
                            .push(format!("{site}: the tick's budget ran out"));
                    }
                    continue;
                }
                tick.sites += usize::from(pass == Pass::Rest);
                if let Err(e) = self
                    .tick_site(site, &rules, deadline, pass, &mut tick)
                    .await
                {
                    tick.errors.push(format!("{site}: {e}"));
                }
            }
        }
        self.attach_listed_charts(deadline, &mut tick).await;
        tracing::info!(
            sites = tick.sites,
            released = tick.released,
            recovered = tick.recovered,
            later = tick.later.len(),
            storms_ended = tick.storms_ended,
            storm_lines = tick.storm_lines,
            errors = tick.errors.len(),
            ms = started.elapsed().as_millis() as u64,
            "schedule tick"
        );
        for e in &tick.errors {
            tracing::warn!("schedule: {e}");
        }
        crate::metrics::emit(
            "processor",
            &[
                ("EpisodesReleased", tick.released as u64),
                ("EpisodesRecoveredWhileHeld", tick.recovered as u64),
            ],
        );
        tick
    }

    /// Tries the trend charts of the positions in the charts index, after the sites (a
    /// planner's notifications first), a position at a time, within the tick's budget.
    async fn attach_listed_charts(&self, deadline: Instant, tick: &mut Tick) {
        let positions = match self.idempotency.charts_due().await {
            Ok(positions) => positions,
            Err(e) => {
                tick.errors
                    .push(format!("the charts index cannot be read: {e}"));
                return;
            }
        };
        for position in positions {
            if Instant::now() + Duration::from_secs(3) >= deadline {
                tick.later
                    .push(format!("{position}: its chart waits for the next tick"));
                break;
            }
            tick.charts_tried += 1;
            match self.attach_listed(&position, deadline).await {
                Ok(true) => tick.charts_settled += 1,
                Ok(false) => {}
                Err(e) => tick.later.push(format!("a trend chart: {e}")),
            }
        }
    }

    async fn tick_site(
        &self,
        site: &str,
        rules: &RuleSet,
        deadline: Instant,
        pass: Pass,
        tick: &mut Tick,
    ) -> Result<(), String> {
        let settings = &rules.alarm_management;
        let record = self
            .idempotency
            .site(site)
            .await
            .map_err(|e| e.to_string())?;
        let now = now_ms();
        if let Some(mut storm) = record.storm.clone() {
            let over = storm.over(settings, record.last_start_ms, now);
            // Its lines first: a storm ends only once its notification names every member.
            let noticed = match self
                .storm_notice(site, &record, &mut storm, settings, deadline, tick)
                .await
            {
                Ok(()) => true,
                Err(e) => {
                    tick.errors
                        .push(format!("{site}: the storm notification: {e}"));
                    storm.failed.is_some()
                }
            };
            if over && noticed {
                let held = record.members(&storm).filter(|(_, e)| e.held).count();
                let mine: Vec<(String, SiteEntry, String)> = record
                    .members(&storm)
                    .filter(|(_, e)| e.held && pass.takes(e))
                    .filter_map(|(k, e)| {
                        let text = record.entries.get(k)?.1.clone();
                        Some((k.clone(), e.clone(), text))
                    })
                    .collect();
                // Held members the other pass takes are left too.
                let others = held - mine.len();
                let (released, recovered, left) =
                    self.release_all(site, mine, rules, deadline, tick).await;
                let left = left + others;
                if pass == Pass::InAlert {
                    storm.released += released;
                    storm.recovered += recovered;
                    if released + recovered > 0 {
                        self.idempotency
                            .save_storm(site, &storm)
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                    return Ok(());
                }
                storm.released += released;
                storm.recovered += recovered;
                if left == 0 {
                    let summary = StormSummary {
                        began_ms: storm.began_ms,
                        ended_ms: now,
                        number: storm.number.clone(),
                        positions: record.members(&storm).count(),
                        released: storm.released,
                        recovered: storm.recovered,
                    };
                    if let Err(e) = self.storm_closing(&storm, &summary, deadline).await {
                        // The releases are counted on the storm: the next tick writes the line.
                        tick.errors
                            .push(format!("{site}: the storm's closing line: {e}"));
                        self.idempotency
                            .save_storm(site, &storm)
                            .await
                            .map_err(|e| e.to_string())?;
                        return Ok(());
                    }
                    self.idempotency
                        .end_storm(site, &storm, &summary)
                        .await
                        .map_err(|e| e.to_string())?;
                    tracing::warn!(
                        site,
                        positions = summary.positions,
                        released = summary.released,
                        recovered = summary.recovered,
                        "storm over"
                    );
                    tick.storms_ended += 1;
                } else {
                    self.idempotency
                        .save_storm(site, &storm)
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        let due: Vec<(String, SiteEntry, String)> = record
            .due(now)
            .filter(|(_, e, _)| pass.takes(e))
            .map(|(k, e, text)| (k.clone(), e.clone(), text.to_string()))
            .collect();
        if !due.is_empty() {
            self.release_all(site, due, rules, deadline, tick).await;
        }
        if pass == Pass::InAlert {
            return Ok(());
        }
        for (position, text) in record.stale(settings, now) {
            if let Err(e) = self
                .idempotency
                .replace_entry(site, position, text, None)
                .await
            {
                tick.errors
                    .push(format!("{site}: an old entry was not dropped: {e}"));
            }
        }
        Ok(())
    }

    /// Releases held positions, a few at a time: (notified, recovered, left for later).
    async fn release_all(
        &self,
        site: &str,
        held: Vec<(String, SiteEntry, String)>,
        rules: &RuleSet,
        deadline: Instant,
        tick: &mut Tick,
    ) -> (usize, usize, usize) {
        // Those still in alert first: their notifications are what a planner waits for.
        let mut held = held;
        held.sort_by_key(|(_, entry, _)| entry.recovered);
        let results: Vec<(String, Released)> = futures_util::stream::iter(held)
            .map(|(position, entry, text)| async move {
                // Stop starting releases shortly before the budget, so that each ends in time.
                if Instant::now() + Duration::from_secs(3) >= deadline {
                    return (
                        position,
                        Released::Later("the tick's budget ran out".into()),
                    );
                }
                let released = self.release(&position, rules, deadline).await;
                if matches!(
                    released,
                    Released::Notified(_) | Released::Recovered | Released::Already
                ) {
                    let done = SiteEntry {
                        held: false,
                        ..entry
                    };
                    if let Err(e) = self
                        .idempotency
                        .replace_entry(site, &position, &text, Some(&done))
                        .await
                    {
                        return (position, Released::Later(e.to_string()));
                    }
                }
                (position, released)
            })
            .buffer_unordered(AT_ONCE)
            .collect()
            .await;
        let (mut notified, mut recovered, mut left) = (0, 0, 0);
        for (position, released) in results {
            match released {
                Released::Notified(number) => {
                    tracing::info!(site, position, notification = %number, "held episode released: notification created");
                    notified += 1;
                }
                Released::Recovered => {
                    tracing::info!(
                        site,
                        position,
                        "held episode recovered meanwhile: no notification"
                    );
                    recovered += 1;
                }
                Released::Already => {}
                Released::Busy => {
                    left += 1;
                    tick.later.push(format!(
                        "{site} / {position}: a delivery holds the position"
                    ));
                }
                Released::Later(why) => {
                    left += 1;
                    tick.later.push(format!("{site} / {position}: {why}"));
                }
            }
        }
        tick.released += notified;
        tick.recovered += recovered;
        (notified, recovered, left)
    }
}
