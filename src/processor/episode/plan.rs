//! What S/4 lacks for the episodes a notification holds: a pure function of the position's
//! record, so that `e2b rules test` shows the same decision the processor acts on.
//!
//! Rules:
//! - the change's notification is planned (its [`Group`] of episodes), and the one after it: an
//!   end that arrives late can cut a run, and the later part then needs a notification of its
//!   own;
//! - episodes that ended while their notification was held (alarm management) plan nothing;
//! - a change that belongs to no episode (a recovery while none is open) plans nothing; it is
//!   remembered, and ends the episode of alerts that arrive later;
//! - a notification is created by its earliest alert, with that alert's type, malfunction start
//!   and line; while a create's answer is lost, nothing else is planned for it;
//! - every line it lacks is appended, in time order: each change's, and before every episode
//!   after the first, a line saying the position returned (`Returned to alert after the recovery
//!   of ... (3rd time since 2024-05-01 01:15 UTC)`), known by that recovery (so an earlier alert
//!   of the episode arriving late changes nothing), counted among the episodes known when it is
//!   written;
//! - a new episode joins a notification only while S/4 shows it open: when S/4 last showed it
//!   open more than [`OPEN_FOR_SURE`] ago (a setting), it is read first (`joins`);
//! - the priority becomes the most urgent its alerts' rules give, never lowered (SAP priorities:
//!   `1` is very high, a smaller code is more urgent);
//! - the short text is the one of its most urgent alert (the priority decides, then the earliest),
//!   so it names the worst state it has seen; the malfunction start is its earliest alert's;
//! - an end whose rule completes (`close = "complete"`, the default for a user's closure)
//!   completes the notification at the end's event time, once, after its catalog codes.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::processor::create::more_urgent;
use crate::processor::s4::{NewNotification, cut};

use super::group::{Group, completes, groups};
use super::model::Change;
use super::state::{PositionState, returned_key};

/// The most a long-text block written at once holds (`MaintNotifLongTextForEdit`).
const BLOCK: usize = 1333;

/// How recently S/4 must have shown a notification open for a new episode to join it without
/// reading it again (the processor's default; `ProcessorSettings::open_for_sure`).
pub const OPEN_FOR_SURE: std::time::Duration = std::time::Duration::from_secs(60);

/// What one notification needs from S/4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The change ids of its episodes, in time order.
    pub ids: Vec<String>,
    pub target: Target,
    /// The lines to append (change ids, and returned keys), in time order.
    pub append: Vec<String>,
    /// The text of the lines saying an episode returned, by key.
    pub returns: BTreeMap<String, String>,
    /// The priority to raise the notification to.
    pub priority: Option<String>,
    /// The alert whose short text the notification is to bear instead.
    pub retitle: Option<String>,
    /// The alert whose malfunction start the notification is to bear instead.
    pub restart: Option<String>,
    /// The end to complete the notification with (codes first).
    pub complete: Option<String>,
    /// An episode joins the filed notification: S/4 must show it open first.
    pub joins: bool,
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
            && self.restart.is_none()
            && self.complete.is_none()
    }

    /// The text of a line to append.
    pub fn line<'a>(&'a self, state: &'a PositionState, key: &str) -> Option<&'a str> {
        self.returns
            .get(key)
            .map(String::as_str)
            .or_else(|| state.seen(key).map(|s| s.line.as_str()))
    }

    /// How many lines saying an episode returned are among `keys`.
    pub fn returns_in<'k>(&self, keys: impl IntoIterator<Item = &'k String>) -> u64 {
        keys.into_iter()
            .filter(|k| self.returns.contains_key(*k))
            .count() as u64
    }
}

/// The plans for the notification holding `change` and the one after it; empty when the change
/// is in no episode.
pub fn plans(state: &PositionState, change: &str) -> Vec<Plan> {
    let found: Vec<Group<'_>> = groups(state)
        .into_iter()
        .filter(|g| !g.quiet(state))
        .collect();
    let Some(at) = found.iter().position(|g| g.holds(change)) else {
        return Vec::new();
    };
    found[at..]
        .iter()
        .take(2)
        .map(|group| plan(state, group))
        .collect()
}

/// The most urgent alert of a group: by its rule's priority, then the earliest.
fn most_urgent(state: &PositionState, group: &Group<'_>) -> String {
    let alerts = group.episodes.iter().flat_map(|e| e.alerts.iter());
    let mut worst: Option<(&str, Option<&str>)> = None;
    for alert in alerts {
        let priority = state.seen(&alert.id).and_then(|s| s.priority.as_deref());
        let better = match (worst, priority) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some((_, current)), Some(p)) => more_urgent(p, current),
        };
        if better {
            worst = Some((&alert.id, priority));
        }
    }
    worst.map(|(id, _)| id.to_string()).unwrap_or_default()
}

fn plan(state: &PositionState, group: &Group<'_>) -> Plan {
    let ids: Vec<String> = group
        .episodes
        .iter()
        .flat_map(|e| e.changes())
        .map(|c| c.id.clone())
        .collect();
    let first = group.first_alert().to_string();
    let worst = most_urgent(state, group);
    let pending = state.pending.as_ref().filter(|p| group.holds(&p.creator));
    let target = match (group.filed, pending) {
        (Some(index), _) => Target::Filed(index),
        (None, Some(p)) => Target::Pending(p.creator.clone()),
        (None, None) => Target::Create(first.clone()),
    };
    let (has, current, titled_by, started_by, completed) = match &target {
        Target::Filed(index) => {
            let f = &state.filed[*index];
            (
                f.lines.clone(),
                f.priority.clone(),
                f.titled_by.clone(),
                f.started_by().to_string(),
                f.completed,
            )
        }
        Target::Create(creator) | Target::Pending(creator) => {
            let priority = state.seen(creator).and_then(|s| s.priority.clone());
            (
                [creator.clone()].into(),
                priority,
                creator.clone(),
                creator.clone(),
                false,
            )
        }
    };
    let mut plan = Plan {
        ids,
        target,
        append: Vec::new(),
        returns: BTreeMap::new(),
        priority: None,
        retitle: None,
        restart: None,
        complete: None,
        joins: false,
    };
    if matches!(plan.target, Target::Pending(_)) {
        return plan;
    }
    let since = group
        .episodes
        .first()
        .and_then(|e| e.alerts.first())
        .map(|c| c.time);
    let mut ended: Option<&Change> = None;
    for (n, episode) in group.episodes.iter().enumerate() {
        // The line saying the position returned is known by the recovery it came back after:
        // that stays the same when an earlier alert of the episode arrives late.
        if let Some(recovery) = ended.filter(|_| n > 0) {
            let key = returned_key(&recovery.id);
            if !has.contains(&key) {
                plan.returns
                    .insert(key.clone(), returned_line(recovery, n + 1, since));
                plan.append.push(key);
            }
        }
        ended = episode.end;
        plan.append.extend(
            episode
                .changes()
                .filter(|c| !has.contains(&c.id))
                .map(|c| c.id.clone()),
        );
        plan.joins |= matches!(plan.target, Target::Filed(_))
            && !episode.changes().any(|c| has.contains(&c.id));
    }
    let wanted = state.seen(&worst).and_then(|s| s.priority.clone());
    plan.priority = wanted.filter(|w| more_urgent(w, current.as_deref()));
    plan.retitle = (titled_by != worst).then(|| worst.clone());
    plan.restart = (started_by != first).then(|| first.clone());
    plan.complete = group
        .episodes
        .iter()
        .filter_map(|e| e.end)
        .find(|end| !completed && completes(state, &end.id))
        .map(|end| end.id.clone());
    plan
}

/// `Returned to alert after the recovery of 2024-05-01 02:40:00 UTC (3rd time since 2024-05-01
/// 01:15 UTC); Monitron event: <recovery> returned`: the `nth` episode of the notification, which
/// began at `since`.
fn returned_line(recovery: &Change, nth: usize, since: Option<DateTime<Utc>>) -> String {
    let suffix = match (nth % 10, nth % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    let since = since.map_or_else(String::new, |t| {
        format!(" since {}", t.format("%Y-%m-%d %H:%M UTC"))
    });
    format!(
        "Returned to alert after the recovery of {} ({nth}{suffix} time{since}); {}{}",
        recovery.time.format("%Y-%m-%d %H:%M:%S UTC"),
        super::text::MARKER,
        returned_key(&recovery.id)
    )
}

/// The notification `creator` creates: its draft with the short text of the most urgent alert,
/// the most urgent priority, and a long text of the position, the creator's line and as many of
/// the other lines as fit; with the keys of the lines it holds.
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
        if let Some(line) = plan.line(state, other)
            && text.chars().count() + line.chars().count() < BLOCK
        {
            text = format!("{text}\n{line}");
            lines.insert(other.clone());
        }
    }
    draft.long_text = text;
    draft.priority = plan.priority.clone().or(draft.priority);
    if let Some(title) = plan
        .retitle
        .as_ref()
        .and_then(|id| state.seen(id))
        .and_then(|s| s.draft.as_ref())
    {
        draft.text = title.text.clone();
    }
    Some((draft, lines))
}

/// The fields of the one change a plan makes to a filed notification (missing lines as one
/// block, as many as fit; priority; the most urgent alert's short text; the earliest alert's
/// malfunction start), with the keys of the lines it adds. Empty when only the completion is
/// left.
pub fn change(state: &PositionState, plan: &Plan) -> (Map<String, Value>, Vec<String>) {
    let mut fields = Map::new();
    let mut lines = Vec::new();
    let mut text = String::new();
    for id in &plan.append {
        let Some(line) = plan.line(state, id) else {
            continue;
        };
        if !text.is_empty() && text.chars().count() + line.chars().count() + 1 > BLOCK {
            break;
        }
        text = if text.is_empty() {
            line.to_string()
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
    let body_of = |id: &Option<String>| {
        id.as_ref()
            .and_then(|id| state.seen(id))
            .and_then(|s| s.draft.as_ref())
            .map(NewNotification::body)
    };
    if let Some(body) = body_of(&plan.retitle)
        && let Some(value) = body.get("NotificationText")
    {
        fields.insert("NotificationText".into(), value.clone());
    }
    if let Some(body) = body_of(&plan.restart) {
        for field in ["MalfunctionStartDate", "MalfunctionStartTime"] {
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
            let reference = state
                .seen(creator)
                .and_then(|s| s.draft.as_ref())
                .map(|d| d.external_reference.clone())
                .unwrap_or_default();
            state.filed.push(super::state::Filed {
                number: number.to_string(),
                reference,
                creator: creator.clone(),
                lines: [creator.clone()].into(),
                priority: state.seen(creator).and_then(|s| s.priority.clone()),
                titled_by: creator.clone(),
                started_by: Some(creator.clone()),
                completed: false,
                open_seen: None,
                sealed_after: None,
                unsure: false,
                forgotten_lines: 0,
                chart: Default::default(),
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
    if let Some(t) = &plan.restart {
        filed.started_by = Some(t.clone());
    }
    filed.completed |= plan.complete.is_some();
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
            change: crate::processor::episode::model::change_at(minute, id, state),
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
            trace: None,
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
            started_by: None,
            completed: false,
            open_seen: None,
            sealed_after: None,
            unsure: false,
            forgotten_lines: 0,
            chart: Default::default(),
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
    fn a_worse_alert_escalates_and_retitles_and_an_earlier_one_moves_the_start() {
        let mut state = PositionState::new(Place::default());
        state.remember(seen(2, "a", "ALARM"));
        state.filed.push(filed("a", &["a"], "1"));
        state.remember(seen(1, "w", "WARNING"));
        state.remember(seen(3, "n", "NEEDS_MAINTENANCE"));
        let plan = &plans(&state, "n")[0];
        assert_eq!(plan.target, Target::Filed(0));
        assert_eq!(plan.append, ["w", "n"]);
        assert_eq!(plan.priority, None, "ALARM's 1 is the most urgent already");
        assert_eq!(plan.retitle, None, "ALARM's text is the worst already");
        assert_eq!(plan.restart.as_deref(), Some("w"));
        let mut state = PositionState::new(Place::default());
        state.remember(seen(1, "w", "WARNING"));
        state.filed.push(filed("w", &["w"], "2"));
        state.remember(seen(2, "a", "ALARM"));
        let plan = &plans(&state, "a")[0];
        assert_eq!(
            (plan.priority.as_deref(), plan.retitle.as_deref()),
            (Some("1"), Some("a"))
        );
        assert_eq!(plan.restart, None);
    }

    #[test]
    fn a_new_episode_joins_the_open_notification_with_a_line_saying_it_returned() {
        let mut state = PositionState::new(Place::default());
        state.remember(seen(60, "w1", "WARNING"));
        state.filed.push(filed("w1", &["w1"], "2"));
        let mut recovered = seen(90, "h1", "HEALTHY");
        recovered.close = Some(CloseMode::Note);
        state.remember(recovered);
        state.remember(seen(120, "a2", "ALARM"));
        let plan = &plans(&state, "a2")[0];
        assert_eq!(plan.target, Target::Filed(0));
        assert!(plan.joins);
        assert_eq!(plan.append, ["h1", "h1 returned", "a2"]);
        assert_eq!(
            plan.line(&state, "h1 returned"),
            Some(
                "Returned to alert after the recovery of 2024-03-01 09:30:00 UTC (2nd time since 2024-03-01 09:00 UTC); Monitron event: h1 returned"
            )
        );
        assert_eq!(
            super::super::text::ids_in(plan.line(&state, "h1 returned").unwrap_or_default())
                .into_iter()
                .collect::<Vec<_>>(),
            ["h1 returned"],
            "read back from S/4's long text"
        );
        // An earlier alert of the returning episode, delivered late, is only its own line.
        state.remember(seen(100, "w2", "WARNING"));
        let later = &plans(&state, "w2")[0];
        assert_eq!(later.append, ["h1", "h1 returned", "w2", "a2"]);
        assert_eq!(plan.priority.as_deref(), Some("1"));
        assert_eq!(plan.returns_in(&plan.append), 1);
        // A planner completed it meanwhile: the episode gets a notification of its own.
        state.filed[0].sealed_after = state.seen("h1").map(|s| s.change.time);
        let plans = plans(&state, "a2");
        assert_eq!(plans[0].target, Target::Create("w2".into()));
        assert_eq!(plans[0].append, ["a2"], "{:?}", plans[0]);
    }

    #[test]
    fn ordinals_read_as_english() {
        let alert = Change {
            time: DateTime::from_timestamp(0, 0).unwrap_or_default(),
            id: "x".into(),
            state: "ALARM".into(),
            closure: None,
        };
        for (n, word) in [
            (2, "2nd"),
            (3, "3rd"),
            (4, "4th"),
            (11, "11th"),
            (12, "12th"),
            (21, "21st"),
            (101, "101st"),
        ] {
            assert!(returned_line(&alert, n, None).contains(&format!("({word} time)")));
        }
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
