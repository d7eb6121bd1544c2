//! Alarm episodes as a pure function of the events seen for one sensor position.
//!
//! Rules (`docs/episodes.md` has the state machine):
//! - a position is `(source, assetPositionId)`, or `(source, site, asset, position)` when the
//!   record has no position id ([`PositionKey::of`]); an event with neither has no position;
//! - events are ordered by their Monitron event time, then by id, never by arrival; the same
//!   event delivered again is the same event (by id);
//! - an episode starts with the first change into an alert state (`WARNING`, `ALARM`,
//!   `NEEDS_MAINTENANCE`) while none is open, and ends with the first change to a non-alert
//!   state (`HEALTHY`, `UNKNOWN`) after it;
//! - a change to a non-alert state while no episode is open belongs to no episode;
//! - the episodes are therefore the same for any arrival order, duplication or interleaving of
//!   the same set of events: [`episodes`] sorts before it scans;
//! - a change is bounded whatever its event holds: the event is known by [`event_key`] (its id,
//!   or a hash of an id too long or too strange for a long-text line), its state and closure
//!   fields cut to a few dozen characters.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::http::sap::cut;
use crate::processor::delivery::AlertEvent;

/// The states that open (or continue) an episode.
pub const ALERT_STATES: [&str; 3] = ["WARNING", "ALARM", "NEEDS_MAINTENANCE"];

/// Whether a Monitron asset state is an alert state.
pub fn is_alert(state: &str) -> bool {
    ALERT_STATES.contains(&state)
}

/// The position an event is about, as a short stable key (SHA-256 of its parts).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PositionKey(pub String);

impl PositionKey {
    /// `None` when the event names no position at all: it is handled per event.
    pub fn of(event: &AlertEvent) -> Option<PositionKey> {
        let id = event.data.get("assetPositionId").and_then(|v| v.as_str());
        let names = match (&event.site, &event.asset, &event.position) {
            (Some(site), Some(asset), Some(position)) => {
                Some((site.as_str(), asset.as_str(), position.as_str()))
            }
            _ => None,
        };
        crate::trend::position_key(&event.source, id, names).map(PositionKey)
    }
}

/// The longest event id kept as it is; a longer one, or one with characters a long-text line
/// cannot carry, is kept as [`event_key`]'s hash.
pub const MAX_EVENT_ID: usize = 64;

/// A state is one of Monitron's few words; anything longer is cut to this.
const MAX_STATE: usize = 40;

/// A closure code field (Monitron's codes are short words) is cut to this.
pub const MAX_CLOSURE_FIELD: usize = 60;

/// How a change's event is known in the record and in the long text: its Monitron event id when
/// that is at most [`MAX_EVENT_ID`] printable ASCII characters (Monitron's ids are UUIDs), else
/// `#` and the first 32 hex digits of its SHA-256: the same for every delivery of the event,
/// short, and readable back from a long-text line.
pub fn event_key(id: &str) -> String {
    let plain = id.len() <= MAX_EVENT_ID
        && !id.starts_with('#')
        && id.bytes().all(|b| b.is_ascii_graphic());
    if plain {
        return id.to_string();
    }
    let digest = Sha256::digest(id.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("#{hex}")
}

/// What a user entered when closing an anomaly in Monitron.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Closure {
    pub failure_mode: Option<String>,
    pub failure_cause: Option<String>,
    pub action_taken: Option<String>,
}

/// One state change of a position, as far as episodes are concerned.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Change {
    /// Monitron's event time.
    pub time: DateTime<Utc>,
    /// The Monitron event id.
    pub id: String,
    /// The new asset state.
    pub state: String,
    /// A user's closure (`userInput` with a `closureCode`).
    pub closure: Option<Closure>,
}

impl Change {
    /// The change an event makes; `None` when it has no usable time or state (such an event is
    /// handled per event, and logged as such).
    pub fn of(event: &AlertEvent) -> Option<Change> {
        let closure = event.closure_code.as_ref().map(|code| {
            let field = |name: &str| {
                code.get(name)
                    .and_then(|v| v.as_str())
                    .filter(|v| !v.is_empty())
                    .map(|v| cut(v, MAX_CLOSURE_FIELD))
            };
            Closure {
                failure_mode: field("failureMode"),
                failure_cause: field("failureCause"),
                action_taken: field("actionTaken"),
            }
        });
        Some(Change {
            time: event.timestamp()?,
            id: event_key(&event.id),
            state: cut(event.new_state.as_deref()?, MAX_STATE),
            closure,
        })
    }

    pub fn is_alert(&self) -> bool {
        is_alert(&self.state)
    }
}

/// An episode: its alerts in time order, and the change that ended it, if any yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Episode<'a> {
    pub alerts: Vec<&'a Change>,
    pub end: Option<&'a Change>,
}

impl<'a> Episode<'a> {
    /// Every change of the episode, the end last.
    pub fn changes(&self) -> impl Iterator<Item = &'a Change> + '_ {
        self.alerts.iter().copied().chain(self.end)
    }

    /// Whether the episode holds the change with this id.
    pub fn holds(&self, id: &str) -> bool {
        self.changes().any(|c| c.id == id)
    }

    /// Where it stands, for a person: `closed by a user`, `recovered`, or (open) the state of
    /// its latest alert.
    pub fn status(&self) -> String {
        match self.end {
            Some(end) if end.closure.is_some() => "closed by a user".to_string(),
            Some(_) => "recovered".to_string(),
            None => self
                .alerts
                .last()
                .map(|c| c.state.clone())
                .unwrap_or_default(),
        }
    }

    /// Ended by a user's closure in Monitron (rather than by the measurements recovering).
    pub fn closed_by_user(&self) -> Option<&'a Closure> {
        self.end.and_then(|e| e.closure.as_ref())
    }

    /// The most severe state the episode reached, by the order `severity` gives.
    pub fn worst_state(&self, severity: impl Fn(&str) -> u8) -> Option<&'a str> {
        self.alerts
            .iter()
            .map(|c| c.state.as_str())
            .max_by_key(|s| severity(s))
    }
}

/// The episodes of a set of changes of one position, oldest first. Changes are taken by time,
/// then id; a repeated id counts once. A change to a non-alert state while no episode is open
/// belongs to none; one that ends no episode yet may end one whose alerts arrive later.
pub fn episodes<'a>(changes: impl IntoIterator<Item = &'a Change>) -> Vec<Episode<'a>> {
    let mut sorted: Vec<&Change> = changes.into_iter().collect();
    sorted.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
    sorted.dedup_by(|a, b| a.id == b.id);
    let mut found = Vec::new();
    let mut open: Option<Episode<'a>> = None;
    for change in sorted {
        match (&mut open, change.is_alert()) {
            (Some(episode), true) => episode.alerts.push(change),
            (None, true) => {
                open = Some(Episode {
                    alerts: vec![change],
                    end: None,
                })
            }
            (Some(_), false) => {
                if let Some(mut episode) = open.take() {
                    episode.end = Some(change);
                    found.push(episode);
                }
            }
            (None, false) => {}
        }
    }
    found.extend(open);
    found
}

/// A change `minute` minutes after 2024-03-01 08:00 UTC, for the episode modules' tests.
#[cfg(test)]
pub(crate) fn change_at(minute: i64, id: &str, state: &str) -> Change {
    Change {
        time: DateTime::from_timestamp(1_709_280_000 + minute * 60, 0).unwrap_or_default(),
        id: id.into(),
        state: state.into(),
        closure: None,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn change(minute: i64, id: &str, state: &str) -> Change {
        change_at(minute, id, state)
    }

    fn ids(found: &[Episode<'_>]) -> Vec<Vec<String>> {
        found
            .iter()
            .map(|e| e.changes().map(|c| c.id.clone()).collect())
            .collect()
    }

    #[test]
    fn a_planners_week_is_one_episode() {
        let week = [
            change(0, "w", "WARNING"),
            change(60, "a", "ALARM"),
            change(120, "n", "NEEDS_MAINTENANCE"),
            change(180, "h", "HEALTHY"),
        ];
        let found = episodes(&week);
        assert_eq!(ids(&found), vec![vec!["w", "a", "n", "h"]]);
        let severity = |s: &str| match s {
            "ALARM" => 3,
            "NEEDS_MAINTENANCE" => 2,
            "WARNING" => 1,
            _ => 0,
        };
        assert_eq!(found[0].worst_state(severity), Some("ALARM"));
    }

    #[test]
    fn an_alert_after_the_end_opens_the_next_episode_and_lone_ends_belong_to_none() {
        let changes = [
            change(0, "h0", "HEALTHY"),
            change(1, "a1", "ALARM"),
            change(2, "h2", "HEALTHY"),
            change(3, "u3", "UNKNOWN"),
            change(4, "w4", "WARNING"),
        ];
        assert_eq!(ids(&episodes(&changes)), vec![vec!["a1", "h2"], vec!["w4"]]);
    }

    #[test]
    fn a_closure_that_arrives_first_still_ends_the_episode_of_its_alert() {
        let mut closure = change(10, "c", "HEALTHY");
        closure.closure = Some(Closure {
            failure_mode: Some("MISALIGNMENT".into()),
            ..Closure::default()
        });
        let arrived = [closure.clone(), change(5, "a", "ALARM")];
        let found = episodes(&arrived);
        assert_eq!(ids(&found), vec![vec!["a", "c"]]);
        assert!(found[0].closed_by_user().is_some());
    }

    /// Random walks of one position's states, in order.
    fn walks() -> impl Strategy<Value = Vec<Change>> {
        let states = prop::sample::select(vec![
            "HEALTHY",
            "WARNING",
            "ALARM",
            "NEEDS_MAINTENANCE",
            "UNKNOWN",
        ]);
        prop::collection::vec(states, 1..24).prop_map(|states| {
            states
                .into_iter()
                .enumerate()
                .map(|(i, s)| change(i as i64, &format!("e{i}"), s))
                .collect()
        })
    }

    proptest! {
        /// The guarantee's core: any arrival order, with each change up to three times, gives
        /// the episodes of the in-order walk.
        #[test]
        fn episodes_do_not_depend_on_arrival_order_or_repeats(
            walk in walks(),
            repeats in prop::collection::vec(1usize..=3, 24),
            seed in any::<u64>(),
        ) {
            let in_order = ids(&episodes(&walk));
            let mut arrived: Vec<Change> = walk
                .iter()
                .zip(&repeats)
                .flat_map(|(c, n)| std::iter::repeat_n(c.clone(), *n))
                .collect();
            let mut rng = fastrand::Rng::with_seed(seed);
            rng.shuffle(&mut arrived);
            prop_assert_eq!(ids(&episodes(&arrived)), in_order);
        }
    }
}
