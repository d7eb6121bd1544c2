//! Alarm management on the episode path: a new episode's notification held (on-delay, a storm
//! of its site) and released by the schedule.
//!
//! Rules:
//! - with `[alarm_management]` at its defaults nothing here runs: no site record is written and
//!   a new episode's notification is created at once, as before;
//! - a delivery that would create a notification (a new episode with no open notification of its
//!   position) writes the position's entry on its site's record ([`SiteStore::write_entry`], one
//!   write, no lease) and learns from the record it gets back whether the site is in a storm, or
//!   whether its own entry makes one (`alarms::site::storm_in`, recorded once);
//! - it is held when `on_delay` is set or the site is in a storm: the hold is kept in the
//!   position's record (saved before the reply: a hold that is not saved is answered 503) and the
//!   site is listed for the schedule; the delivery is answered 2xx (`HELD`); every later event of
//!   the episode is remembered and held too;
//! - a new episode joining its position's open notification counts toward a storm (an entry
//!   marked `joined`) but is never held;
//! - [`Processor::release`] (the schedule) takes the position's lease as a delivery does: an
//!   episode still in an alert state gets its notification with every line that arrived
//!   meanwhile; one that ended gets none (`quiet_through`), its events stay in the record; a
//!   release that fails keeps the hold for the next tick, and a released hold is never released
//!   twice (the record says so before the lease is given back).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::processor::Processor;
use crate::processor::alarms::site::{SiteEntry, Storm, is_site, site_key, storm_in};
use crate::processor::alarms::storm::reference;
use crate::processor::idempotency::IdempotencyStore;
use crate::processor::outcome::Outcome;
use crate::processor::rules::RuleSet;

use super::group::groups;
use super::model::PositionKey;
use super::reconcile::{Acted, Admit, Holder, Stop, now};
use super::state::{Hold, PositionState};
use super::store::{EpisodeStore, Lease};

/// What a release did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Released {
    /// The notification was created (or found filed).
    Notified(String),
    /// The episode had ended: no notification.
    Recovered,
    /// Nothing was held (released before).
    Already,
    /// Another delivery holds the position: the next tick.
    Busy,
    /// S/4 or the table failed: the next tick.
    Later(String),
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or_default()
}

/// The position's entry for its site, from the alert that would create.
fn entry_of(
    state: &PositionState,
    creator: &str,
    rules: &RuleSet,
    now: DateTime<Utc>,
) -> SiteEntry {
    let seen = state.seen(creator);
    let draft = seen.and_then(|s| s.draft.as_ref());
    let place = &state.place;
    let site_object = rules
        .mappings
        .iter()
        .find(|m| {
            m.site.is_some()
                && m.asset.is_none()
                && m.position.is_none()
                && m.project
                    .as_ref()
                    .is_none_or(|p| p.matches(place.project.as_deref()))
                && m.site
                    .as_ref()
                    .is_some_and(|s| s.matches(place.site.as_deref()))
        })
        .map(|m| {
            (
                m.technical_object.clone(),
                m.object_kind.odata_value().to_string(),
                m.planning_plant.clone(),
            )
        });
    let worst = state
        .changes()
        .filter(|c| c.is_alert() && seen.is_some_and(|s| c.time >= s.change.time))
        .filter_map(|c| state.seen(&c.id))
        .min_by(|a, b| {
            let (pa, pb) = (a.priority.as_deref(), b.priority.as_deref());
            pa.unwrap_or("9").cmp(pb.unwrap_or("9"))
        });
    let until = now + to_chrono(rules.alarm_management.on_delay);
    SiteEntry {
        label: place.label.clone(),
        state: worst
            .or(seen)
            .map(|s| s.change.state.clone())
            .unwrap_or_default(),
        priority: worst.and_then(|s| s.priority.clone()),
        notification_type: draft
            .map(|d| d.notification_type.clone())
            .unwrap_or_default(),
        technical_object: place.technical_object.clone(),
        object_kind: place.object_kind.clone(),
        planning_plant: draft.and_then(|d| d.planning_plant.clone()),
        site_object,
        event_ms: seen.map_or(0, |s| ms(s.change.time)),
        written_ms: ms(now),
        until_ms: ms(until),
        held: rules.alarm_management.holds_for_delay(),
        joined: false,
        recovered: false,
    }
}

impl<I: IdempotencyStore + EpisodeStore> Processor<I> {
    /// Whether a delivery that would create the notification of `creator`'s episode does so now,
    /// or holds it (module doc).
    pub(super) async fn admit(
        &self,
        state: &mut PositionState,
        position: &PositionKey,
        creator: &str,
        rules: &RuleSet,
        acted: &mut Acted,
    ) -> Result<Admit, Stop> {
        let settings = &rules.alarm_management;
        match &state.hold {
            Some(hold) if hold.released => return Ok(Admit::Create),
            Some(hold) => {
                let why = format!(
                    "held (alarm management) since {}: released by the schedule",
                    hold.since.format("%Y-%m-%d %H:%M:%S UTC")
                );
                let ended = groups(state)
                    .iter()
                    .find(|g| g.holds(creator))
                    .is_some_and(|g| g.episodes.last().is_some_and(|e| e.end.is_some()));
                if ended {
                    self.mark_recovered(state, position, creator, rules).await?;
                }
                return Ok(Admit::Held(why));
            }
            None if !settings.active() => return Ok(Admit::Create),
            None => {}
        }
        let now = now();
        let site = site_key(state.place.project.as_deref(), state.place.site.as_deref());
        let mut entry = entry_of(state, creator, rules, now);
        let failed = |e: crate::aws::dynamo::TableError| Stop(Outcome::of_error(&e));
        // In a storm already: held, one conditional write (the storm's record is large).
        let in_storm = settings.recognises_storms() && is_site(&site) && {
            let mut held = entry.clone();
            held.held = true;
            self.idempotency
                .write_entry_in_storm(&site, &position.0, &held, true)
                .await
                .map_err(failed)?
        };
        let mut storm = in_storm;
        if !in_storm {
            let record = self
                .idempotency
                .write_entry(&site, &position.0, &entry, true)
                .await
                .map_err(failed)?;
            storm = record.storm.is_some();
            // The site's first entry: listed, so that the schedule drops old entries.
            if record.entries.len() == 1 {
                self.idempotency.index_site(&site).await.map_err(failed)?;
            }
            if !storm
                && is_site(&site)
                && let Some(first) = storm_in(record.entries.values().map(|(e, _)| e), settings)
            {
                // Listed before it is recorded: a storm always has a tick to end it.
                self.idempotency.index_site(&site).await.map_err(failed)?;
                let began = Storm::new(ms(now), first, reference(&site, ms(now)));
                if self
                    .idempotency
                    .begin_storm(&site, &began)
                    .await
                    .map_err(failed)?
                {
                    tracing::warn!(site = %site, positions = record.entries.len(), "storm: the site's new episodes are held until it ends");
                    acted.storms += 1;
                }
                storm = true;
            }
            if storm && !entry.held {
                entry.held = true;
                self.idempotency
                    .write_entry(&site, &position.0, &entry, true)
                    .await
                    .map_err(failed)?;
            }
            if !entry.held {
                return Ok(Admit::Create);
            }
            if !storm {
                self.idempotency.index_site(&site).await.map_err(failed)?;
            }
        }
        state.hold = Some(Hold {
            site,
            since: now,
            until: now + to_chrono(settings.on_delay),
            released: false,
            adopt: false,
        });
        acted.held += 1;
        Ok(Admit::Held(if storm {
            "held: its site is in a storm (alarm management); released when the storm ends".into()
        } else {
            format!(
                "held for the on-delay ({}s, alarm management): released by the schedule",
                settings.on_delay.as_secs()
            )
        }))
    }

    /// A held episode ended: its entry says so, so that the schedule releases the positions
    /// still in alert first (one write; in a storm, conditional on it and returning nothing).
    async fn mark_recovered(
        &self,
        state: &PositionState,
        position: &PositionKey,
        creator: &str,
        rules: &RuleSet,
    ) -> Result<(), Stop> {
        let Some(hold) = &state.hold else {
            return Ok(());
        };
        let failed = |e: crate::aws::dynamo::TableError| Stop(Outcome::of_error(&e));
        let mut entry = entry_of(state, creator, rules, hold.since);
        entry.until_ms = ms(hold.until);
        entry.held = true;
        entry.recovered = true;
        let storms = rules.alarm_management.recognises_storms() && is_site(&hold.site);
        let in_storm = storms
            && self
                .idempotency
                .write_entry_in_storm(&hold.site, &position.0, &entry, false)
                .await
                .map_err(failed)?;
        if !in_storm {
            self.idempotency
                .write_entry(&hold.site, &position.0, &entry, false)
                .await
                .map_err(failed)?;
        }
        Ok(())
    }

    /// A new episode joining its open notification counts toward its site's storm.
    pub(super) async fn count_join(
        &self,
        state: &PositionState,
        position: &PositionKey,
        creator: &str,
        rules: &RuleSet,
    ) {
        if !rules.alarm_management.recognises_storms() {
            return;
        }
        let site = site_key(state.place.project.as_deref(), state.place.site.as_deref());
        let mut entry = entry_of(state, creator, rules, now());
        entry.held = false;
        entry.joined = true;
        if let Err(e) = self
            .idempotency
            .write_entry(&site, &position.0, &entry, true)
            .await
        {
            tracing::warn!(site = %site, error = %e, "a joining episode was not counted toward its site's storm");
        }
    }

    /// Releases a position's held notification (the schedule): module doc.
    pub async fn release(&self, position: &str, rules: &RuleSet, deadline: Instant) -> Released {
        let owner = format!("schedule#{:016x}", fastrand::u64(..));
        let lease_for = self.settings.budget + Duration::from_secs(5);
        let record = match self.idempotency.lease(position, &owner, lease_for).await {
            Ok(Lease::Taken { record, unclean }) => record.map(|r| (r, unclean)),
            Ok(Lease::Busy) => return Released::Busy,
            Err(e) => return Released::Later(e.to_string()),
        };
        let key = PositionKey(position.to_string());
        let Some((json, unclean)) = record else {
            let _ = self.idempotency.give_back(position, &owner).await;
            return Released::Already;
        };
        let Ok(mut state) = PositionState::read(&json) else {
            let _ = self.idempotency.give_back(position, &owner).await;
            return Released::Already;
        };
        if unclean {
            for f in &mut state.filed {
                f.unsure = true;
            }
        }
        let released = self
            .release_held(&mut state, &key, &owner, rules, deadline)
            .await;
        let holder = Holder::new(&key, owner.clone());
        if let Err(e) = self
            .idempotency
            .save(position, &holder.owner, &state.to_json(), true)
            .await
        {
            tracing::warn!(position, error = %e, "a released position's record was not saved; the next tick releases it again");
            let _ = self.idempotency.give_back(position, &owner).await;
            return Released::Later(e.to_string());
        }
        released
    }

    async fn release_held(
        &self,
        state: &mut PositionState,
        key: &PositionKey,
        owner: &str,
        rules: &RuleSet,
        deadline: Instant,
    ) -> Released {
        if state.hold.is_none() {
            return Released::Already;
        }
        let waiting: Vec<(String, Option<DateTime<Utc>>)> = groups(state)
            .iter()
            .filter(|g| g.filed.is_none() && !g.quiet(state))
            .map(|g| {
                let end = g.episodes.last().and_then(|e| e.end).map(|c| c.time);
                (g.first_alert().to_string(), end)
            })
            .collect();
        let ended = waiting.iter().filter_map(|(_, end)| *end).max();
        let open = waiting
            .iter()
            .find(|(_, end)| end.is_none())
            .map(|(id, _)| id.clone());
        if let Some(end) = ended {
            state.quiet_through = Some(state.quiet_through.map_or(end, |q| q.max(end)));
        }
        let Some(creator) = open else {
            state.hold = None;
            return if ended.is_some() {
                Released::Recovered
            } else {
                Released::Already
            };
        };
        let mut fresh = false;
        if let Some(hold) = &mut state.hold {
            hold.released = true;
            fresh = hold.adopt;
        }
        let holder = Holder::new(key, owner.to_string());
        let mut acted = Acted::default();
        let outcome = self
            .settle(state, &holder, &creator, rules, fresh, &mut acted, deadline)
            .await;
        match outcome.notification() {
            Some(number) => {
                state.hold = None;
                Released::Notified(number.to_string())
            }
            None => Released::Later(outcome.reason().unwrap_or("not settled").to_string()),
        }
    }
}
