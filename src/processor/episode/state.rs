//! What the processor remembers of one sensor position: the changes delivered for it and the
//! notifications filed for its episodes, kept as JSON in the position's episode record.
//!
//! Rules:
//! - a change is remembered once, by its Monitron event id, with what acting on it needs: its
//!   long-text line, the priority and notification its rule gives (alerts), and how its rule
//!   closes (ends); a redelivery adds nothing;
//! - at most [`MAX_CHANGES`] changes: beyond, the oldest go and `forgotten_before` keeps their
//!   time, so a change older than that is recognised as forgotten history (skipped and logged)
//!   instead of opening an episode in the past; a filed notification keeps the line ids of
//!   remembered changes only, and counts the others (`forgotten_lines`), so that it still says
//!   how many events it holds ([`Filed::events`]); with every change bounded
//!   (`episode::text`), the record stays far below DynamoDB's 400 KB whatever the events hold;
//! - a notification is filed with the change that created it (its *creator*); which episodes it
//!   holds (its creator's, and those that joined it while it was open) is worked out from the
//!   changes each time (`episode::group`), never stored;
//! - a filed notification knows the lines it has (changes' ids, and `<id> returned` for the line
//!   saying an episode joined it), its priority, the alert whose short text it bears and the one
//!   whose malfunction start, whether it is completed, when S/4 last showed it open, from when on
//!   it takes no more episodes because S/4 showed it no longer open (`sealed_after`), and whether
//!   a write to it went unanswered (`unsure`: S/4 is read again before the next write);
//! - a create whose answer was lost is `pending` until S/4 is asked for its reference;
//! - a new episode's notification may be held (on-delay, a storm: `hold`) until the schedule
//!   releases it; an episode that ended while held needs none (`quiet_through`);
//! - a record that cannot be read is rebuilt, never a panic: [`PositionState::read`] says why.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::processor::rules::CloseMode;
use crate::processor::s4::NewNotification;

use super::model::Change;

/// The changes a position record remembers.
pub const MAX_CHANGES: usize = 100;

/// The record's format; a record of another version is rebuilt.
const VERSION: u32 = 1;

/// One delivered change and what acting on it needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seen {
    #[serde(flatten)]
    pub change: Change,
    /// Its line in the long text, stamped with its event time.
    pub line: String,
    /// The priority its rule gives (alerts).
    pub priority: Option<String>,
    /// The notification it creates when it opens an episode (alerts).
    pub draft: Option<NewNotification>,
    /// How its rule closes the episode it ends (ends).
    pub close: Option<CloseMode>,
    /// Its trace id (`crate::trace`): what an operator searches its way by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
}

/// A notification filed for an episode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filed {
    pub number: String,
    /// Its `MaintNotifExtReferenceNumber`.
    pub reference: String,
    /// The change that created it (or that it was adopted for).
    pub creator: String,
    /// The changes whose lines its long text has.
    pub lines: BTreeSet<String>,
    pub priority: Option<String>,
    /// The alert whose short text it bears (the most urgent it holds).
    pub titled_by: String,
    /// The alert whose malfunction start it bears (the earliest it holds); records written
    /// before it was kept bear the one of `titled_by`.
    #[serde(default)]
    pub started_by: Option<String>,
    pub completed: bool,
    /// When S/4 last showed it open (created, found or read): a new episode joins it without
    /// reading S/4 again while this is recent.
    #[serde(default)]
    pub open_seen: Option<DateTime<Utc>>,
    /// S/4 showed it no longer open (completed, postponed or deleted by a planner) when it held
    /// the changes up to this event time: an episode that starts later gets a notification of
    /// its own.
    #[serde(default)]
    pub sealed_after: Option<DateTime<Utc>>,
    /// A write to it went unanswered: read it from S/4 before writing again.
    #[serde(default)]
    pub unsure: bool,
    /// Lines it has of changes no longer remembered (their ids are not kept).
    #[serde(default)]
    pub forgotten_lines: u64,
    /// Its trend chart (`episode::chart`); none asked in records written before charts.
    #[serde(default, skip_serializing_if = "ChartAsk::is_none")]
    pub chart: ChartAsk,
}

/// What a notification's trend chart has come to (`episode::chart`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChartAsk {
    /// None asked: adopted from S/4, charts off, or written before charts.
    #[default]
    None,
    /// To attach; `tries` made so far.
    Due {
        tries: u32,
    },
    Attached,
    /// No measurements of the position were kept: the long text says so.
    NoSeries,
    /// Given up: recorded for `e2b reprocess`.
    GaveUp,
}

impl ChartAsk {
    pub fn is_none(&self) -> bool {
        *self == ChartAsk::None
    }

    pub fn is_due(&self) -> bool {
        matches!(self, ChartAsk::Due { .. })
    }
}

impl Filed {
    /// How many events' lines the notification holds (its lines saying an episode returned
    /// are not events).
    pub fn events(&self) -> u64 {
        self.lines.iter().filter(|l| returned(l).is_none()).count() as u64 + self.forgotten_lines
    }

    /// The alert whose malfunction start it bears.
    pub fn started_by(&self) -> &str {
        self.started_by.as_deref().unwrap_or(&self.titled_by)
    }
}

/// What marks the line that says an episode joined an open notification: `<id> returned`, `<id>`
/// the episode's first alert (event ids hold no spaces, so it is never an event's own key).
const RETURNED: &str = " returned";

/// The key of the line saying that the episode of `alert` joined an open notification.
pub fn returned_key(alert: &str) -> String {
    format!("{alert}{RETURNED}")
}

/// The alert a line key says returned, when it is such a key.
pub fn returned(key: &str) -> Option<&str> {
    key.strip_suffix(RETURNED)
}

/// A create sent whose answer was lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub creator: String,
    pub reference: String,
    /// Until then S/4 may still be working on it: without it found, deliveries wait.
    pub until: DateTime<Utc>,
    /// What the create asked for its trend chart, kept for when it is found.
    #[serde(default, skip_serializing_if = "ChartAsk::is_none")]
    pub chart: ChartAsk,
}

/// Where the position is, for operators and for finding its notifications in S/4.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    /// `site / asset / position`, as Monitron names them.
    pub label: String,
    pub technical_object: String,
    /// `EAMS_EQUI` or `EAMS_FL`.
    pub object_kind: String,
    pub position: Option<String>,
    /// The Monitron project (the plant), for operators (`e2b console`); absent in records
    /// written before it was kept.
    #[serde(default)]
    pub project: Option<String>,
    /// The Monitron site, for storms; absent in records written before it was kept.
    #[serde(default)]
    pub site: Option<String>,
}

/// Everything remembered of one position.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PositionState {
    pub version: u32,
    pub place: Place,
    pub changes: Vec<Seen>,
    pub filed: Vec<Filed>,
    pub pending: Option<Pending>,
    pub forgotten_before: Option<DateTime<Utc>>,
    /// The next notification waits (on-delay, a storm): see [`Hold`].
    #[serde(default)]
    pub hold: Option<Hold>,
    /// Episodes that ended up to this event time while held need no notification (they
    /// recovered within the on-delay or the storm).
    #[serde(default)]
    pub quiet_through: Option<DateTime<Utc>>,
}

/// A new episode's notification, held (alarm management): created when the schedule releases
/// it, or by no one when the episode has ended by then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// The site record that lists it (`site#<key>`).
    pub site: String,
    /// Its first delivery (the processor's clock).
    pub since: DateTime<Utc>,
    /// The on-delay ends (a storm may hold it longer).
    pub until: DateTime<Utc>,
    /// The schedule released it: the next step creates the notification.
    #[serde(default)]
    pub released: bool,
    /// Held before S/4 was asked for an open notification of the position (a record made
    /// anew): the release asks first.
    #[serde(default)]
    pub adopt: bool,
}

impl PositionState {
    /// A new record for a position.
    pub fn new(place: Place) -> PositionState {
        PositionState {
            version: VERSION,
            place,
            ..PositionState::default()
        }
    }

    /// The state in a stored record; `Err` says why it cannot be used (it is then rebuilt).
    pub fn read(json: &str) -> Result<PositionState, String> {
        let state: PositionState =
            serde_json::from_str(json).map_err(|e| format!("the record is not readable: {e}"))?;
        if state.version != VERSION {
            return Err(format!(
                "the record has version {}, this processor writes {VERSION}",
                state.version
            ));
        }
        Ok(state)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Keeps each filed notification's line ids to the changes remembered, counting the others:
    /// only remembered changes are planned, so the others' ids are never asked for again.
    pub fn bound_lines(&mut self) {
        let remembered: BTreeSet<&str> =
            self.changes.iter().map(|s| s.change.id.as_str()).collect();
        for filed in &mut self.filed {
            let before = filed.events();
            filed
                .lines
                .retain(|id| remembered.contains(returned(id).unwrap_or(id)));
            filed.forgotten_lines += before - filed.events();
        }
    }

    /// Files a notification, its line ids bounded like the others'; a released hold is over.
    pub fn file(&mut self, filed: Filed) {
        self.filed.push(filed);
        if self.hold.as_ref().is_some_and(|h| h.released) {
            self.hold = None;
        }
        self.bound_lines();
    }

    /// Remembers a change. `false` when it is forgotten history (older than what was dropped)
    /// and therefore not placed in an episode.
    pub fn remember(&mut self, seen: Seen) -> bool {
        if self.forgotten_before.is_some_and(|t| seen.change.time <= t) {
            return false;
        }
        if !self.changes.iter().any(|s| s.change.id == seen.change.id) {
            self.changes.push(seen);
        }
        self.changes
            .sort_by(|a, b| (a.change.time, &a.change.id).cmp(&(b.change.time, &b.change.id)));
        while self.changes.len() > MAX_CHANGES {
            let dropped = self.changes.remove(0);
            self.forgotten_before = Some(dropped.change.time);
        }
        self.bound_lines();
        true
    }

    /// The change with this id.
    pub fn seen(&self, id: &str) -> Option<&Seen> {
        self.changes.iter().find(|s| s.change.id == id)
    }

    /// The changes, in time order.
    pub fn changes(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().map(|s| &s.change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(minute: i64, id: &str, state: &str) -> Seen {
        Seen {
            change: crate::processor::episode::model::change_at(minute, id, state),
            line: format!("{minute} {state}"),
            priority: None,
            draft: None,
            close: None,
            trace: None,
        }
    }

    #[test]
    fn a_change_is_remembered_once_and_in_time_order() {
        let mut state = PositionState::new(Place::default());
        assert!(state.remember(seen(2, "b", "ALARM")));
        assert!(state.remember(seen(1, "a", "WARNING")));
        assert!(state.remember(seen(2, "b", "ALARM")));
        let ids: Vec<&str> = state.changes().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        let back = PositionState::read(&state.to_json()).expect("its own JSON");
        assert_eq!(back, state);
    }

    #[test]
    fn beyond_the_bound_the_oldest_are_forgotten_and_stay_forgotten() {
        let mut state = PositionState::new(Place::default());
        for i in 0..(MAX_CHANGES as i64 + 5) {
            assert!(state.remember(seen(i + 10, &format!("e{i}"), "ALARM")));
        }
        assert_eq!(state.changes.len(), MAX_CHANGES);
        assert!(
            !state.remember(seen(12, "e2", "ALARM")),
            "a redelivery of a dropped change"
        );
        assert!(
            !state.remember(seen(0, "old", "WARNING")),
            "older than the forgotten"
        );
        assert!(state.remember(seen(500, "new", "HEALTHY")));
        assert!(state.to_json().len() < 400_000);
    }

    #[test]
    fn a_notification_keeps_the_line_ids_of_remembered_changes_and_counts_the_rest() {
        let mut state = PositionState::new(Place::default());
        let all = MAX_CHANGES as i64 + 30;
        for i in 0..all {
            assert!(state.remember(seen(i, &format!("e{i}"), "ALARM")));
        }
        // Adopted from S/4, whose long text has a line of every change since the first.
        state.file(Filed {
            number: "10000001".into(),
            reference: "MON1".into(),
            creator: format!("e{}", all - 1),
            lines: (0..all).map(|i| format!("e{i}")).collect(),
            priority: None,
            titled_by: String::new(),
            started_by: None,
            completed: false,
            open_seen: None,
            sealed_after: None,
            unsure: false,
            forgotten_lines: 0,
            chart: ChartAsk::None,
        });
        assert_eq!(state.filed[0].lines.len(), MAX_CHANGES);
        assert_eq!(state.filed[0].events(), all as u64);
        assert!(state.remember(seen(all + 1, "later", "ALARM")));
        state.filed[0].lines.insert("later".into());
        assert!(state.remember(seen(all + 2, "latest", "ALARM")));
        // `latest` pushed out one more change with a line, and has none itself yet.
        assert_eq!(state.filed[0].lines.len(), MAX_CHANGES - 1);
        assert_eq!(
            state.filed[0].events(),
            all as u64 + 1,
            "the line of `later` kept"
        );
        let back = PositionState::read(&state.to_json()).expect("its own JSON");
        assert_eq!(back.filed[0].events(), all as u64 + 1);
    }

    #[test]
    fn a_record_of_another_shape_or_version_says_why_it_cannot_be_used() {
        assert!(
            PositionState::read("{\"changes\": 3}")
                .unwrap_err()
                .contains("not readable")
        );
        let mut other = PositionState::new(Place::default());
        other.version = 99;
        assert!(
            PositionState::read(&other.to_json())
                .unwrap_err()
                .contains("version 99")
        );
    }
}
