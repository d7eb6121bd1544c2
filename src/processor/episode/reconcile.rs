//! Acting on an event by its episode: the position leased, the change remembered, and S/4
//! brought to what the plans say, one write at a time, each recorded before the next.
//!
//! Rules:
//! - an event with no position identity or no usable time, or a processor without an episode
//!   table, is handled per event as before (`None`), and logged as such;
//! - one delivery per position at a time: a busy position is waited for briefly, then answered
//!   503; the table unreachable is 503 too;
//! - a create is written ahead in the record (`pending`) before it is sent: a holder that
//!   stops mid-way leaves it, and the next looks the reference up before creating again. While
//!   its answer is lost and S/4 does not show it, deliveries wait at most
//!   `IDEMPOTENCY_IN_PROGRESS_SECONDS`; the moment S/4 shows it, they go on;
//! - a change or completion whose answer was lost marks the notification `unsure`, and so does a
//!   lease that expired unreleased: S/4 is read again (long text, priority, phase) before the
//!   next write, so nothing is written twice and nothing is missed;
//! - before a new episode joins a notification that S/4 has not shown open lately, S/4 is read
//!   again: a notification a planner completed, postponed or deleted (phase 4, 2 or 5) takes no
//!   more episodes (`sealed_after`), and the episode gets a notification of its own;
//! - a position with no record (new, expired or unreadable) takes over the open notification
//!   this processor created for it in S/4, if there is one, rather than create a second;
//! - the record is saved and the lease released before the reply, whatever happened: acting is
//!   cut at the reply budget (every notification is then read again before the next write), a
//!   panic gives up the event and leaves the record as it was, and a record that cannot be
//!   written is not a reason to keep the position: the lease is given back unwritten
//!   ([`EpisodeStore::give_back`]). A lease whose holder crashed ends by itself after the
//!   budget + 5 s, within `IDEMPOTENCY_IN_PROGRESS_SECONDS` (the configuration enforces it);
//! - a new episode's notification may be held (alarm management, `hold`): the delivery is
//!   answered `HELD` once the hold is in the saved record;
//! - a delivery whose change was remembered is answered 2xx only once the record is saved: a
//!   record that could not be saved, where a retry can help (the lease lost, the table busy), is
//!   answered 503, and the redelivery reads S/4 again and remembers the change again;
//! - a failure of the episode records says whether a retry can help
//!   ([`crate::aws::dynamo::disposition_of`]): one that cannot is given up and recorded, never
//!   answered 503 for ever.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures_util::FutureExt;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::processor::delivery::AlertEvent;
use crate::processor::idempotency::IdempotencyStore;
use crate::processor::rules::{ActionKind, Per, Rule, RuleSet};
use crate::processor::s4::{Existing, S4Error};

use super::model::{Change, PositionKey};
use super::plan::{Plan, Target, change, creation, plans};
use super::state::returned;
use super::state::{Filed, Pending, PositionState};
use super::store::{EpisodeStore, Lease};
use super::text::{SeenFor, ids_in};
use crate::outcome::{Disposed, Disposition};
use crate::processor::Processor;
use crate::processor::close::first_position;
use crate::processor::create::created_by_us;
use crate::processor::outcome::Outcome;

/// How long a busy position is waited for before answering 503.
const WAIT_FOR_LEASE: Duration = Duration::from_secs(5);

/// What was done to S/4 for an event's episodes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acted {
    pub created: u64,
    pub escalated: u64,
    pub appended: u64,
    pub retitled: u64,
    pub closed: u64,
    /// Episodes that joined an open notification (their returned lines written).
    pub returned: u64,
    /// New episodes held (alarm management), and storms this delivery recognised.
    pub held: u64,
    pub storms: u64,
}

/// The position this delivery (or the schedule) holds the lease of.
pub(super) struct Holder<'a> {
    position: &'a PositionKey,
    pub(super) owner: String,
}

impl<'a> Holder<'a> {
    pub(super) fn new(position: &'a PositionKey, owner: String) -> Holder<'a> {
        Holder { position, owner }
    }
}

/// Why acting stopped early.
pub(super) struct Stop(pub(super) Outcome);

/// What a delivery that would create may do (alarm management, `hold`).
pub(super) enum Admit {
    Create,
    Held(String),
}

impl From<S4Error> for Stop {
    fn from(e: S4Error) -> Stop {
        Stop(Outcome::of_error(&e))
    }
}

impl<I: IdempotencyStore + EpisodeStore> Processor<I> {
    /// Acts on the event by its episode; `None` when it is to be handled per event.
    pub(crate) async fn by_episode(
        &self,
        rules: &RuleSet,
        event: &AlertEvent,
        rule: &Rule,
        deadline: Instant,
    ) -> Option<Outcome> {
        if !self.idempotency.keeps_episodes() {
            return None;
        }
        let Some(position) = PositionKey::of(event) else {
            tracing::info!(event_id = %event.id, "no position identity: handled per event");
            return None;
        };
        let Some(change) = Change::of(event) else {
            tracing::info!(event_id = %event.id, "no usable event time or state: handled per event");
            return None;
        };
        let seen = match SeenFor::event(event, change, rule, rules, &position) {
            Ok(seen) => seen,
            Err(reason) => return Some(Outcome::gave_up(reason)),
        };
        Some(
            self.with_lease(&position, event, seen, rules, deadline)
                .await,
        )
    }

    async fn with_lease(
        &self,
        position: &PositionKey,
        event: &AlertEvent,
        seen: SeenFor,
        rules: &RuleSet,
        deadline: Instant,
    ) -> Outcome {
        let owner = format!("{}#{:016x}", event.id, fastrand::u64(..));
        let lease_for = self.settings.budget + Duration::from_secs(5);
        let give_up_at = (Instant::now() + WAIT_FOR_LEASE).min(deadline);
        let (record, unclean) = loop {
            match self.idempotency.lease(&position.0, &owner, lease_for).await {
                Ok(Lease::Taken { record, unclean }) => break (record, unclean),
                Ok(Lease::Busy) if Instant::now() < give_up_at => {
                    tokio::time::sleep(Duration::from_millis(20 + fastrand::u64(..40))).await;
                }
                Ok(Lease::Busy) => {
                    return Outcome::Retry(
                        "another delivery of this sensor position is being processed".into(),
                    );
                }
                Err(e) => {
                    return Outcome::of_error(&e.context(
                        "the sensor position cannot be leased (the event waits while a retry can help)",
                    ));
                }
            }
        };
        let mut fresh = record.is_none();
        let mut state = match record.as_deref().map(PositionState::read) {
            Some(Ok(state)) => state,
            Some(Err(why)) => {
                tracing::warn!(event_id = %event.id, position = %position.0, %why, "episode record rebuilt from S/4's open notifications");
                fresh = true;
                PositionState::new(seen.place.clone())
            }
            None => PositionState::new(seen.place.clone()),
        };
        if unclean {
            tracing::info!(event_id = %event.id, position = %position.0, "the last delivery stopped mid-way: S/4 is read again");
            for f in &mut state.filed {
                f.unsure = true;
            }
        }
        state.place = seen.place.clone();
        let id = seen.seen.change.id.clone();
        let remembered = state.remember(seen.seen);
        let outcome = if !remembered {
            Outcome::Skipped(
                "older than what is remembered of this sensor position (forgotten history)".into(),
            )
        } else {
            let mut acted = Acted::default();
            let held = Holder::new(position, owner.clone());
            let settled = AssertUnwindSafe(
                self.settle(&mut state, &held, &id, rules, fresh, &mut acted, deadline),
            )
            .catch_unwind();
            // Cut at the deadline, so that the record is saved and the lease released before the
            // reply, whatever S/4 does.
            let result =
                tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), settled).await;
            report(event, position, &state, &acted);
            match result {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(_panic)) => {
                    // The record may be half-changed: it is not written, the lease is given back.
                    tracing::error!(event_id = %event.id, position = %position.0, "the delivery failed unexpectedly (a defect); the position's lease is given back");
                    self.give_back(event, position, &owner).await;
                    return Outcome::defect();
                }
                Err(_) => {
                    // A write may have been under way: S/4 is read again before the next one.
                    for f in &mut state.filed {
                        f.unsure = true;
                    }
                    Outcome::Retry(
                        "the reply budget ran out while S/4 was being called; a redelivery goes on"
                            .into(),
                    )
                }
            }
        };
        if let Err(e) = self
            .idempotency
            .save(&position.0, &owner, &state.to_json(), true)
            .await
        {
            // What was sent is in S/4, and a create is written ahead: the next holder finds it.
            tracing::warn!(event_id = %event.id, position = %position.0, error = %e, "episode record not saved; the lease is given back and the next delivery reads S/4 again");
            self.give_back(event, position, &owner).await;
            // A change is answered 2xx only once it is in the record (a hold, or a recovery that
            // S/4 does not show: lost, a held episode would be notified on its release); a hold
            // whatever the failure, another change when a retry can help.
            let held = matches!(outcome, Outcome::Held(_));
            if held || (remembered && e.disposition() == Disposition::Retry) {
                return Outcome::Retry(format!(
                    "the sensor position's record could not be saved ({e}); a redelivery remembers the change again"
                ));
            }
        }
        outcome
    }

    /// Ends this delivery's lease without writing the record: the next event of the position
    /// goes on at once, and reads S/4 again first.
    async fn give_back(&self, event: &AlertEvent, position: &PositionKey, owner: &str) {
        if let Err(e) = self.idempotency.give_back(&position.0, owner).await {
            tracing::warn!(event_id = %event.id, position = %position.0, error = %e, "the position's lease was not given back; it ends by itself within IDEMPOTENCY_IN_PROGRESS_SECONDS");
        }
    }

    /// Brings S/4 to the plans of the change's episodes.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn settle(
        &self,
        state: &mut PositionState,
        held: &Holder<'_>,
        id: &str,
        rules: &RuleSet,
        fresh: bool,
        acted: &mut Acted,
        deadline: Instant,
    ) -> Outcome {
        let mut adopted_from_s4 = !fresh;
        let mut read_for_join: Vec<usize> = Vec::new();
        let mut counted = false;
        let mut admitted = false;
        // Each round settles one thing and plans again; a plan has at most a few steps.
        for _ in 0..8 {
            let Some(plan) = plans(state, id).into_iter().find(|p| !p.is_settled()) else {
                // The notifications are as planned: their charts now (never the outcome).
                self.attach_due(state, held.position, deadline).await;
                return finished(state, id, acted);
            };
            let step = match &plan.target {
                Target::Pending(_) => self.find_pending(state, deadline).await,
                // Alarm management first: a held notification asks S/4 nothing yet.
                Target::Create(creator) if !admitted => {
                    match self
                        .admit(state, held.position, creator, rules, acted)
                        .await
                    {
                        Ok(Admit::Create) => {
                            admitted = true;
                            Ok(())
                        }
                        Ok(Admit::Held(why)) => {
                            if let Some(hold) = state.hold.as_mut() {
                                hold.adopt |= !adopted_from_s4;
                            }
                            return Outcome::Held(why);
                        }
                        Err(stop) => Err(stop),
                    }
                }
                Target::Create(creator) if !adopted_from_s4 => {
                    adopted_from_s4 = true;
                    self.adopt_open(state, creator, deadline).await
                }
                Target::Create(creator) => {
                    self.create(state, held, creator, &plan, acted, deadline)
                        .await
                }
                Target::Filed(index) if state.filed[*index].unsure => {
                    self.read_again(state, *index, deadline).await
                }
                // Joining: only while S/4 shows it open; read it (once a delivery) unless it
                // did so lately.
                Target::Filed(index)
                    if plan.joins
                        && !read_for_join.contains(index)
                        && !self.lately_open(&state.filed[*index]) =>
                {
                    read_for_join.push(*index);
                    self.read_again(state, *index, deadline).await
                }
                Target::Filed(_) if plan.joins && !counted => {
                    counted = true;
                    let first = plan
                        .ids
                        .iter()
                        .rev()
                        .find(|id| state.seen(id).is_some_and(|s| s.change.is_alert()));
                    if let Some(first) = first.cloned() {
                        self.count_join(state, held.position, &first, rules).await;
                    }
                    Ok(())
                }
                Target::Filed(index) => {
                    self.update(state, *index, &plan, rules, acted, deadline)
                        .await
                }
            };
            if let Err(Stop(outcome)) = step {
                return outcome;
            }
        }
        Outcome::Retry("the episode did not settle in eight steps; a redelivery goes on".into())
    }

    /// Whether S/4 showed the notification open recently enough to join it unread.
    fn lately_open(&self, filed: &Filed) -> bool {
        filed.open_seen.is_some_and(|at| {
            (now() - at)
                .to_std()
                .is_ok_and(|ago| ago < self.settings.open_for_sure)
        })
    }

    /// A create whose answer was lost: found in S/4, it is filed; not found, it is created
    /// again once S/4 cannot still be working on it.
    async fn find_pending(&self, state: &mut PositionState, deadline: Instant) -> Result<(), Stop> {
        let Some(pending) = state.pending.clone() else {
            return Ok(());
        };
        match self
            .s4
            .find_by_reference(&pending.reference, deadline)
            .await?
        {
            Some(existing) => {
                state.file(Filed {
                    chart: pending.chart,
                    ..filed_from(&existing, &pending.creator)
                });
                state.pending = None;
                Ok(())
            }
            None if now() < pending.until => Err(Stop(Outcome::Retry(format!(
                "S/4 did not confirm the create of notification {} and does not show it yet; it is looked up again on redelivery",
                pending.reference
            )))),
            None => {
                state.pending = None;
                Ok(())
            }
        }
    }

    /// Without a record, the open notification this processor created for the position (if
    /// any) becomes the episode's.
    async fn adopt_open(
        &self,
        state: &mut PositionState,
        creator: &str,
        deadline: Instant,
    ) -> Result<(), Stop> {
        let place = &state.place;
        let open = self
            .s4
            .open_for_object(&place.technical_object, &place.object_kind, 100, deadline)
            .await?;
        let position = place.position.clone();
        let mine = open
            .into_iter()
            .filter(created_by_us)
            .filter(|n| first_position(&n.long_text) == position.as_deref())
            .rfind(|n| !state.filed.iter().any(|f| f.number == n.number));
        if let Some(existing) = mine {
            tracing::info!(notification = %existing.number, "open notification of this position taken over for its episode");
            state.file(filed_from(&existing, creator));
        }
        Ok(())
    }

    async fn create(
        &self,
        state: &mut PositionState,
        held: &Holder<'_>,
        creator: &str,
        plan: &Plan,
        acted: &mut Acted,
        deadline: Instant,
    ) -> Result<(), Stop> {
        let Some((draft, lines)) = creation(state, creator, plan) else {
            return Err(Stop(Outcome::gave_up(format!(
                "the episode's first alert {creator} has no notification to create (its rule does not create one)"
            ))));
        };
        let mut draft = draft;
        let at = state.seen(creator).map_or_else(now, |s| s.change.time);
        let chart = self.chart_for_draft(held.position, at, &mut draft).await;
        state.pending = Some(Pending {
            creator: creator.to_string(),
            reference: draft.external_reference.clone(),
            chart,
            until: now()
                + chrono::Duration::from_std(self.settings.in_progress_for).unwrap_or_default(),
        });
        // Written ahead: a holder that stops after sending leaves the reference to look up.
        if let Err(e) = self
            .idempotency
            .save(&held.position.0, &held.owner, &state.to_json(), false)
            .await
        {
            state.pending = None;
            return Err(Stop(Outcome::of_error(&e.context(
                "nothing is created before the episode record can be written",
            ))));
        }
        let number = match self.s4.create(&draft, deadline).await {
            Ok(number) => number,
            Err(S4Error::Unclear(why)) => {
                return match self
                    .s4
                    .find_by_reference(&draft.external_reference, deadline)
                    .await
                {
                    Ok(Some(existing)) => {
                        state.file(Filed {
                            chart,
                            ..filed_from(&existing, creator)
                        });
                        state.pending = None;
                        acted.created += 1;
                        Ok(())
                    }
                    _ => Err(Stop(Outcome::Retry(format!(
                        "S/4 did not confirm the create ({why}); it is looked up again on redelivery"
                    )))),
                };
            }
            Err(e) => {
                state.pending = None;
                return Err(e.into());
            }
        };
        state.pending = None;
        acted.created += 1;
        acted.returned += plan.returns_in(&lines);
        state.file(Filed {
            number,
            reference: draft.external_reference,
            creator: creator.to_string(),
            lines,
            priority: draft.priority,
            titled_by: plan.retitle.clone().unwrap_or_else(|| creator.to_string()),
            started_by: Some(creator.to_string()),
            completed: false,
            open_seen: Some(now()),
            sealed_after: None,
            unsure: false,
            forgotten_lines: 0,
            chart,
        });
        Ok(())
    }

    /// A notification read from S/4 again: after a write that went unanswered, or before a new
    /// episode joins it. No longer open there, it takes no episode after the changes it holds.
    async fn read_again(
        &self,
        state: &mut PositionState,
        index: usize,
        deadline: Instant,
    ) -> Result<(), Stop> {
        let reference = state.filed[index].reference.clone();
        let found = self.s4.find_by_reference(&reference, deadline).await?;
        let filed = &mut state.filed[index];
        filed.unsure = false;
        let open = match &found {
            Some(existing) => {
                let fresh = filed_from(existing, &filed.creator);
                // S/4's long text has every line: the count of forgotten ones starts over.
                filed.lines = fresh.lines;
                filed.forgotten_lines = 0;
                filed.priority = fresh.priority;
                filed.completed = fresh.completed;
                filed.open_seen = fresh.open_seen;
                fresh.open_seen.is_some()
            }
            None => {
                tracing::warn!(notification = %filed.number, "a filed notification is not found by its reference; kept as recorded, and it takes no new episode");
                false
            }
        };
        if !open && filed.sealed_after.is_none() {
            let held: Vec<String> = filed
                .lines
                .iter()
                .map(|key| returned(key).unwrap_or(key).to_string())
                .chain([filed.creator.clone()])
                .collect();
            let phase = found.and_then(|e| e.processing_phase);
            tracing::info!(notification = %filed.number, ?phase, "no longer open in S/4: later episodes get a notification of their own");
            let latest = held
                .iter()
                .filter_map(|id| state.seen(id))
                .map(|s| s.change.time)
                .max();
            state.filed[index].sealed_after = latest;
        }
        state.bound_lines();
        Ok(())
    }

    /// One change of the notification (lines, priority, text), then its completion.
    async fn update(
        &self,
        state: &mut PositionState,
        index: usize,
        plan: &Plan,
        rules: &RuleSet,
        acted: &mut Acted,
        deadline: Instant,
    ) -> Result<(), Stop> {
        let number = state.filed[index].number.clone();
        let (fields, lines) = change(state, plan);
        let retitled = fields.contains_key("NotificationText");
        let restarted = fields.contains_key("MalfunctionStartDate");
        if !fields.is_empty() {
            let request = self.s4.requests().update(&number, Value::Object(fields))?;
            if let Err(e) = self.s4.write(&request, deadline).await {
                state.filed[index].unsure |= matches!(e, S4Error::Unclear(_));
                return Err(e.into());
            }
            let filed = &mut state.filed[index];
            acted.appended += u64::from(!lines.is_empty());
            acted.returned += plan.returns_in(&lines);
            filed.lines.extend(lines);
            if let Some(priority) = &plan.priority {
                filed.priority = Some(priority.clone());
                acted.escalated += 1;
            }
            if retitled {
                filed.titled_by = plan.retitle.clone().unwrap_or_default();
            }
            if restarted {
                filed.started_by = plan.restart.clone();
            }
            acted.retitled += u64::from(retitled || restarted);
            // Lines that did not fit go in the next round.
            return Ok(());
        }
        if let Some(end) = &plan.complete {
            let Some(seen) = state.seen(end) else {
                return Ok(());
            };
            let catalog = seen
                .change
                .closure
                .as_ref()
                .map(|c| rules.closure_codes.for_closure(&closure_json(c)))
                .unwrap_or_default();
            let at = seen.change.time;
            let written = async {
                self.write_catalog_codes(&number, &catalog, deadline)
                    .await?;
                self.s4.complete(&number, Some(at), deadline).await
            }
            .await;
            if let Err(e) = written {
                state.filed[index].unsure |= matches!(e, S4Error::Unclear(_));
                return Err(e.into());
            }
            state.filed[index].completed = true;
            acted.closed += 1;
        }
        Ok(())
    }
}

/// The outcome for the event once its episodes are settled.
fn finished(state: &PositionState, id: &str, acted: &Acted) -> Outcome {
    let number = plans(state, id)
        .first()
        .and_then(|p| match p.target {
            Target::Filed(i) => Some(state.filed[i].number.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let quiet = state
        .quiet_through
        .is_some_and(|q| state.seen(id).is_some_and(|s| s.change.time <= q));
    if number.is_empty() && quiet {
        return Outcome::Skipped(
            "its episode ended while its notification was held (alarm management): none is created; the events stay in the record".into(),
        );
    }
    if number.is_empty() {
        return Outcome::Skipped(
            "a recovery while no episode is open; kept, it ends the episode of alerts that arrive later".into(),
        );
    }
    match acted {
        Acted { closed: 1.., .. } => Outcome::Closed(number),
        Acted { created: 1.., .. } => Outcome::Complete(Some(number)),
        Acted {
            escalated: 0,
            appended: 0,
            retitled: 0,
            ..
        } => Outcome::Duplicate(number),
        _ => Outcome::Updated(number),
    }
}

/// The wall clock (chrono's `clock` feature is off).
pub(super) fn now() -> DateTime<Utc> {
    DateTime::<Utc>::from(std::time::SystemTime::now())
}

/// What the log and the metrics say of an event's episodes.
fn report(event: &AlertEvent, position: &PositionKey, state: &PositionState, acted: &Acted) {
    let notifications: Vec<&str> = state.filed.iter().map(|f| f.number.as_str()).collect();
    tracing::info!(
        event_id = %event.id,
        position = %position.0,
        place = %state.place.label,
        notifications = %notifications.join(","),
        created = acted.created,
        escalated = acted.escalated,
        appended = acted.appended,
        retitled = acted.retitled,
        closed = acted.closed,
        returned = acted.returned,
        "episode"
    );
    crate::metrics::emit(
        "processor",
        &[
            ("EpisodesCreated", acted.created),
            ("EpisodesEscalated", acted.escalated),
            ("EpisodesAppended", acted.appended),
            ("EpisodesClosed", acted.closed),
            ("EpisodesReturned", acted.returned),
            ("EpisodesHeld", acted.held),
            ("StormsStarted", acted.storms),
        ],
    );
}

/// A notification S/4 has, filed for the episode of `creator`.
fn filed_from(existing: &Existing, creator: &str) -> Filed {
    Filed {
        number: existing.number.clone(),
        reference: existing.external_reference.clone().unwrap_or_default(),
        creator: creator.to_string(),
        lines: ids_in(&existing.long_text),
        priority: existing.priority.clone(),
        titled_by: creator.to_string(),
        started_by: None,
        completed: existing.processing_phase.as_deref() == Some("4"),
        open_seen: is_open(existing).then(now),
        sealed_after: None,
        unsure: false,
        forgotten_lines: 0,
        chart: Default::default(),
    }
}

/// Whether S/4 shows a notification open: not completed (phase 4), postponed (2) or marked for
/// deletion (5). The phase codes of `NotifProcessingPhase` are SAP's (QMPHASE); 2 and 5 are
/// unverified against a real system.
fn is_open(existing: &Existing) -> bool {
    !matches!(existing.processing_phase.as_deref(), Some("2" | "4" | "5"))
}

fn closure_json(closure: &super::model::Closure) -> Value {
    serde_json::json!({
        "failureMode": closure.failure_mode,
        "failureCause": closure.failure_cause,
        "actionTaken": closure.action_taken,
    })
}

/// Whether a rule works by episodes.
pub fn by_episodes(rule: &Rule) -> bool {
    matches!(
        rule.action,
        ActionKind::CreateNotification | ActionKind::CloseNotification
    ) && rule.params.per() == Per::Episode
}
