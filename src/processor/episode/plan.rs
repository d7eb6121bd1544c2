//! What S/4 lacks for the episodes a change touches: a pure function of the position's record,
//! so that `e2b rules test` shows the same decision the processor acts on.
//!
//! Rules:
//! - the change's own episode is planned, and the episode after it: an end that arrives late
//!   splits an episode, and the later part then needs a notification of its own;
//! - a change that belongs to no episode (a recovery while none is open) plans nothing; it is
//!   remembered, and ends the episode of alerts that arrive later;
//! - an episode without a notification is created by its earliest alert, with that alert's
//!   type, texts and line; while a create's answer is lost, nothing else is planned for it;
//! - every line of the episode the notification lacks is appended, in time order;
//! - the priority becomes the most urgent the episode's alerts' rules give, never lowered
//!   (SAP priorities: `1` is very high, a smaller code is more urgent);
//! - the short text is the earliest alert's: when an earlier alert arrives after a later one
//!   created the notification, the text is changed to it;
//! - an end whose rule completes (`close = "complete"`, the default for a user's closure)
//!   completes the notification at the end's event time, once, after its catalog codes.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::processor::create::more_urgent;
use crate::processor::s4::{NewNotification, cut};

use super::model::{Episode, episodes};
use super::state::PositionState;

/// The most a long-text block written at once holds (`MaintNotifLongTextForEdit`).
const BLOCK: usize = 1333;

/// What one episode needs from S/4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The episode's change ids, in time order.
    pub ids: Vec<String>,
    pub target: Target,
    /// The changes whose lines are to be appended, in time order.
    pub append: Vec<String>,
    /// The priority to raise the notification to.
    pub priority: Option<String>,
    /// The alert whose short text the notification is to bear instead.
    pub retitle: Option<String>,
    /// The end to complete the notification with (codes first).
    pub complete: Option<String>,
}

/// Which notification a plan acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The filed notification at this index of the record.
    Filed(usize),
    /// None yet: create it from this alert.
    Create(String),
    /// A create of this alert whose answer was lost: look it up first.
    Pending(String),
}

impl Plan {
    /// Whether S/4 already has everything.
    pub fn is_settled(&self) -> bool {
        matches!(self.target, Target::Filed(_))
            && self.append.is_empty()
            && self.priority.is_none()
            && self.retitle.is_none()
            && self.complete.is_none()
    }
}

/// The plans for the episode holding `change` and the one after it; empty when the change is
/// in no episode.
pub fn plans(state: &PositionState, change: &str) -> Vec<Plan> {
    let found = episodes(state.changes());
    let Some(at) = found.iter().position(|e| e.holds(change)) else {
        return Vec::new();
    };
    found[at..]
        .iter()
        .take(2)
        .map(|episode| plan(state, episode))
        .collect()
}

fn plan(state: &PositionState, episode: &Episode<'_>) -> Plan {
    let ids: Vec<String> = episode.changes().map(|c| c.id.clone()).collect();
    let first = &episode.alerts[0].id;
    let pending = state.pending.as_ref().filter(|p| episode.holds(&p.creator));
    let filed = state.filed_for(ids.iter().map(String::as_str));
    let target = match (filed, pending) {
        (Some(index), _) => Target::Filed(index),
        (None, Some(p)) => Target::Pending(p.creator.clone()),
        (None, None) => Target::Create(first.clone()),
    };
    let (has, current, titled_by, completed) = match &target {
        Target::Filed(index) => {
            let f = &state.filed[*index];
            (
                f.lines.clone(),
                f.priority.clone(),
                f.titled_by.clone(),
                f.completed,
            )
        }
        Target::Create(creator) | Target::Pending(creator) => {
            let priority = state.seen(creator).and_then(|s| s.priority.clone());
            ([creator.clone()].into(), priority, creator.clone(), false)
        }
    };
    if matches!(target, Target::Pending(_)) {
        return Plan {
            ids,
            target,
            append: Vec::new(),
            priority: None,
            retitle: None,
            complete: None,
        };
    }
    let append = ids
        .iter()
        .filter(|id| !has.contains(*id))
        .cloned()
        .collect();
    let wanted = episode
        .alerts
        .iter()
        .filter_map(|c| state.seen(&c.id).and_then(|s| s.priority.clone()))
        .min();
    let priority = wanted.filter(|w| more_urgent(w, current.as_deref()));
    let retitle = (titled_by != *first).then(|| first.clone());
    let complete = episode
        .end
        .filter(|end| !completed && completes(state, &end.id))
        .map(|end| end.id.clone());
    Plan {
        ids,
        target,
        append,
        priority,
        retitle,
        complete,
    }
}

/// The notification `creator` creates: its draft with the most urgent priority of the
/// episode and a long text of the position, the creator's line and as many of the other lines
/// as fit; with the ids of the lines it holds.
pub fn creation(
    state: &PositionState,
    creator: &str,
    plan: &Plan,
) -> Option<(NewNotification, BTreeSet<String>)> {
    let seen = state.seen(creator)?;
    let mut draft = seen.draft.clone()?;
    let mut lines = BTreeSet::from([creator.to_string()]);
    // The creator's line whole (its id is read back from it), the position's header as fits.
    let room = BLOCK.saturating_sub(seen.line.chars().count() + 1);
    let mut text = format!("{}\n{}", cut(&draft.long_text, room), seen.line);
    for other in &plan.append {
        if let Some(line) = state.seen(other).map(|s| &s.line)
            && text.chars().count() + line.chars().count() < BLOCK
        {
            text = format!("{text}\n{line}");
            lines.insert(other.clone());
        }
    }
    draft.long_text = text;
    draft.priority = plan.priority.clone().or(draft.priority);
    Some((draft, lines))
}

/// The fields of the one change a plan makes to a filed notification (missing lines as one
/// block, as many as fit; priority; the earliest alert's short text and malfunction start),
/// with the ids of the lines it adds. Empty when only the completion is left.
pub fn change(state: &PositionState, plan: &Plan) -> (Map<String, Value>, Vec<String>) {
    let mut fields = Map::new();
    let mut lines = Vec::new();
    let mut text = String::new();
    for id in &plan.append {
        let Some(line) = state.seen(id).map(|s| s.line.clone()) else {
            continue;
        };
        if !text.is_empty() && text.chars().count() + line.chars().count() + 1 > BLOCK {
            break;
        }
        text = if text.is_empty() {
            line
        } else {
            format!("{text}\n{line}")
        };
        lines.push(id.clone());
    }
    if !text.is_empty() {
        fields.insert("MaintNotifLongTextForEdit".into(), cut(&text, BLOCK).into());
    }
    if let Some(priority) = &plan.priority {
        fields.insert("MaintPriority".into(), priority.clone().into());
    }
    let earliest = plan
        .retitle
        .as_ref()
        .and_then(|id| state.seen(id))
        .and_then(|s| s.draft.as_ref());
    if let Some(draft) = earliest {
        let body = draft.body();
        for field in [
            "NotificationText",
            "MalfunctionStartDate",
            "MalfunctionStartTime",
        ] {
            if let Some(value) = body.get(field) {
                fields.insert(field.into(), value.clone());
            }
        }
    }
    (fields, lines)
}

/// The record as it is once S/4 carried out `plan` (`number` names a created notification):
/// what `e2b rules test` assumes of the events given before the one it tests.
pub fn assume_done(state: &mut PositionState, plan: &Plan, number: &str) {
    let index = match &plan.target {
        Target::Filed(index) => *index,
        Target::Create(creator) | Target::Pending(creator) => {
            state.pending = None;
            state.filed.push(super::state::Filed {
                number: number.to_string(),
                reference: String::new(),
                creator: creator.clone(),
                lines: [creator.clone()].into(),
                priority: state.seen(creator).and_then(|s| s.priority.clone()),
                titled_by: creator.clone(),
                completed: false,
                unsure: false,
                forgotten_lines: 0,
            });
            state.filed.len() - 1
        }
    };
    let filed = &mut state.filed[index];
    filed.lines.extend(plan.append.iter().cloned());
    if let Some(p) = &plan.priority {
        filed.priority = Some(p.clone());
    }
    if let Some(t) = &plan.retitle {
        filed.titled_by = t.clone();
    }
    filed.completed |= plan.complete.is_some();
}

/// Whether the rule of this end completes the notification.
fn completes(state: &PositionState, end: &str) -> bool {
    state
        .seen(end)
        .and_then(|s| s.close)
        .is_some_and(|c| c == crate::processor::rules::CloseMode::Complete)
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;
    use crate::processor::episode::model::Change;
    use crate::processor::episode::state::{Filed, Place, Seen};
    use crate::processor::rules::CloseMode;

    fn seen(minute: i64, id: &str, state: &str) -> Seen {
        let alert = super::super::model::is_alert(state);
        Seen {
            change: Change {
                time: DateTime::from_timestamp(1_709_280_000 + minute * 60, 0).unwrap_or_default(),
                id: id.into(),
                state: state.into(),
                closure: None,
            },
            line: id.into(),
            priority: alert.then(|| {
                match state {
                    "ALARM" => "1",
                    "WARNING" => "2",
                    _ => "3",
                }
                .to_string()
            }),
            draft: None,
            close: (!alert).then_some(CloseMode::Complete),
        }
    }

    fn filed(creator: &str, lines: &[&str], priority: &str) -> Filed {
        Filed {
            number: "100".into(),
            reference: "MON1".into(),
            creator: creator.into(),
            lines: lines.iter().map(|l| l.to_string()).collect(),
            priority: Some(priority.into()),
            titled_by: creator.into(),
            completed: false,
            unsure: false,
            forgotten_lines: 0,
        }
    }

    #[test]
    fn the_first_alert_creates() {
        let mut state = PositionState::new(Place::default());
        state.remember(seen(1, "w", "WARNING"));
        let plans = plans(&state, "w");
        assert_eq!(plans.len(), 1);
        assert_eq!(plans[0].target, Target::Create("w".into()));
        assert!(plans[0].append.is_empty() && plans[0].priority.is_none());
    }

    #[test]
    fn a_worse_alert_escalates_and_appends_and_an_earlier_one_retitles() {
        let mut state = PositionState::new(Place::default());
        state.remember(seen(2, "a", "ALARM"));
        state.filed.push(filed("a", &["a"], "1"));
        state.remember(seen(1, "w", "WARNING"));
        state.remember(seen(3, "n", "NEEDS_MAINTENANCE"));
        let plan = &plans(&state, "n")[0];
        assert_eq!(plan.target, Target::Filed(0));
        assert_eq!(plan.append, ["w", "n"]);
        assert_eq!(plan.priority, None, "ALARM's 1 is the most urgent already");
        assert_eq!(plan.retitle.as_deref(), Some("w"));
    }

    #[test]
    fn a_closure_completes_once_and_a_recovery_by_measurement_does_not() {
        let mut state = PositionState::new(Place::default());
        state.remember(seen(1, "w", "WARNING"));
        state.filed.push(filed("w", &["w"], "2"));
        let mut by_itself = seen(2, "h", "HEALTHY");
        by_itself.close = Some(CloseMode::Note);
        state.remember(by_itself);
        let plan = &plans(&state, "h")[0];
        assert_eq!(
            (plan.append.clone(), plan.complete.clone()),
            (vec!["h".to_string()], None)
        );
        let mut state = PositionState::new(Place::default());
        state.remember(seen(1, "w", "WARNING"));
        state.remember(seen(2, "c", "HEALTHY"));
        state.filed.push(filed("w", &["w", "c"], "2"));
        assert_eq!(plans(&state, "c")[0].complete.as_deref(), Some("c"));
        state.filed[0].completed = true;
        assert!(plans(&state, "c")[0].is_settled());
    }

    #[test]
    fn a_late_end_splits_and_the_later_part_is_created() {
        let mut state = PositionState::new(Place::default());
        state.remember(seen(1, "a1", "ALARM"));
        state.remember(seen(5, "a5", "ALARM"));
        state.filed.push(filed("a1", &["a1", "a5"], "1"));
        state.remember(seen(3, "h3", "HEALTHY"));
        let plans = plans(&state, "h3");
        assert_eq!(plans.len(), 2);
        assert_eq!(plans[0].ids, ["a1", "h3"]);
        assert_eq!(plans[1].target, Target::Create("a5".into()));
    }

    #[test]
    fn a_lone_recovery_plans_nothing() {
        let mut state = PositionState::new(Place::default());
        state.remember(seen(1, "h", "HEALTHY"));
        assert!(plans(&state, "h").is_empty());
    }
}
