//! Which notification holds which episodes of a position: one open notification per position.
//!
//! Rules:
//! - a position has at most one open notification of ours: a new episode joins the notification
//!   of the episode before it while that one is open, and a new notification is opened only when
//!   the last one is no longer open;
//! - it is no longer open after an end whose rule completes it (a user's closure in Monitron,
//!   `close = "complete"`), and when S/4 showed it completed, postponed or deleted by a planner:
//!   from the event time of the latest change it then held (`Filed::sealed_after`) on, episodes
//!   go to a new notification ([`Run`]s are cut there);
//! - a run's notification is the one filed by one of its alerts (its *creator*): every episode of
//!   the run goes to it, those before the creator too (an earlier episode delivered later joins
//!   the notification a later one opened); a run without one is created by its earliest alert;
//! - a run with several (records of the former rule, one notification per episode) gives each
//!   episode the latest one filed at or before it, the first one those before all;
//! - so which notification holds an episode depends on the changes and on what S/4 said, never
//!   on the order the changes arrived in.

use super::model::{Episode, episodes};
use super::state::PositionState;

/// Episodes held by one notification (filed, or to be created by the earliest alert).
#[derive(Debug, Clone)]
pub struct Group<'a> {
    /// In time order; the first is the one that opened (or opens) the notification.
    pub episodes: Vec<Episode<'a>>,
    /// The notification's index in the record, when filed.
    pub filed: Option<usize>,
}

impl<'a> Group<'a> {
    /// Whether it holds the change with this id.
    pub fn holds(&self, id: &str) -> bool {
        self.episodes.iter().any(|e| e.holds(id))
    }

    /// Its earliest alert's id.
    pub fn first_alert(&self) -> &'a str {
        self.episodes
            .first()
            .and_then(|e| e.alerts.first())
            .map_or("", |c| c.id.as_str())
    }

    /// Whether it ended while its notification was held (alarm management): it needs none.
    pub fn quiet(&self, state: &PositionState) -> bool {
        let end = self.episodes.last().and_then(|e| e.end).map(|c| c.time);
        self.filed.is_none() && end.is_some_and(|end| state.quiet_through.is_some_and(|q| end <= q))
    }

    /// How many times the position came back into an alert state within the notification.
    pub fn returns(&self) -> usize {
        self.episodes.len().saturating_sub(1)
    }
}

/// The position's episodes grouped by the notification that holds them, oldest first.
pub fn groups(state: &PositionState) -> Vec<Group<'_>> {
    let mut found = Vec::new();
    for run in runs(state) {
        let mut filed: Vec<(usize, usize)> = state
            .filed
            .iter()
            .enumerate()
            .filter_map(|(index, f)| {
                let at = run.iter().position(|e| e.holds(&f.creator))?;
                Some((at, index))
            })
            .collect();
        filed.sort();
        filed.dedup_by_key(|(at, _)| *at);
        if filed.is_empty() {
            found.push(Group {
                episodes: run,
                filed: None,
            });
            continue;
        }
        // Each filed notification from its creator's episode up to the next one's; the first
        // also takes the episodes before it.
        let mut rest = run;
        for (k, &(_, index)) in filed.iter().enumerate().rev() {
            let from = if k == 0 { 0 } else { filed[k].0 };
            let episodes = rest.split_off(from);
            found.push(Group {
                episodes,
                filed: Some(index),
            });
        }
        let at = found.len() - filed.len();
        found[at..].reverse();
    }
    found
}

/// Each episode, oldest first, with the notification that holds it (its index in the record,
/// when filed) and how many episodes that notification holds: what operators are shown.
pub fn by_notification(state: &PositionState) -> Vec<(Episode<'_>, Option<usize>, usize)> {
    groups(state)
        .into_iter()
        .flat_map(|g| {
            let held = g.episodes.len();
            g.episodes.into_iter().map(move |e| (e, g.filed, held))
        })
        .collect()
}

/// The episodes cut where a notification can no longer take more: after an end that completes
/// it, and where S/4 showed one no longer open.
type Run<'a> = Vec<Episode<'a>>;

fn runs(state: &PositionState) -> Vec<Run<'_>> {
    let sealed: Vec<_> = state.filed.iter().filter_map(|f| f.sealed_after).collect();
    let mut runs: Vec<Run<'_>> = Vec::new();
    for episode in episodes(state.changes()) {
        let start = episode.alerts[0].time;
        let joins = runs.last().and_then(|run| run.last()).is_some_and(|last| {
            let before = last.alerts[0].time;
            let completed = last.end.is_some_and(|end| completes(state, &end.id));
            let sealed_between = sealed.iter().any(|t| before <= *t && *t < start);
            !completed && !sealed_between
        });
        match runs.last_mut() {
            Some(run) if joins => run.push(episode),
            _ => runs.push(vec![episode]),
        }
    }
    runs
}

/// Whether the rule of this end completes the notification.
pub fn completes(state: &PositionState, end: &str) -> bool {
    state
        .seen(end)
        .and_then(|s| s.close)
        .is_some_and(|c| c == crate::processor::rules::CloseMode::Complete)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processor::episode::state::{Filed, Place, Seen};
    use crate::processor::rules::CloseMode;

    fn seen(minute: i64, id: &str, state: &str, close: Option<CloseMode>) -> Seen {
        Seen {
            change: crate::processor::episode::model::change_at(minute, id, state),
            line: id.into(),
            priority: None,
            draft: None,
            close,
            trace: None,
        }
    }

    fn filed(creator: &str) -> Filed {
        Filed {
            number: format!("N-{creator}"),
            reference: String::new(),
            creator: creator.into(),
            lines: [creator.to_string()].into(),
            priority: None,
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

    fn shape(state: &PositionState) -> Vec<(Vec<String>, Option<String>)> {
        groups(state)
            .iter()
            .map(|g| {
                (
                    g.episodes.iter().map(|e| e.alerts[0].id.clone()).collect(),
                    g.filed.map(|i| state.filed[i].number.clone()),
                )
            })
            .collect()
    }

    /// W, H, W, H, A, H: one notification holds the three episodes.
    fn flapping() -> PositionState {
        let mut state = PositionState::new(Place::default());
        let note = Some(CloseMode::Note);
        for (m, id, s) in [
            (0, "w1", "WARNING"),
            (1, "h1", "HEALTHY"),
            (2, "w2", "WARNING"),
            (3, "h2", "HEALTHY"),
            (4, "a3", "ALARM"),
            (5, "h3", "HEALTHY"),
        ] {
            let close = (s == "HEALTHY").then_some(note).flatten();
            state.remember(seen(m, id, s, close));
        }
        state
    }

    #[test]
    fn a_chattering_position_is_one_notification_whichever_episode_created_it() {
        let mut state = flapping();
        assert_eq!(
            shape(&state),
            [(vec!["w1".into(), "w2".into(), "a3".into()], None)]
        );
        // The latest episode arrived first and created it: the earlier ones join it.
        state.filed.push(filed("a3"));
        assert_eq!(
            shape(&state),
            [(
                vec!["w1".into(), "w2".into(), "a3".into()],
                Some("N-a3".into())
            )]
        );
        assert_eq!(groups(&state)[0].returns(), 2);
    }

    #[test]
    fn a_completing_end_or_a_planner_ends_what_a_notification_takes() {
        let mut state = flapping();
        state.remember(seen(1, "h1", "HEALTHY", Some(CloseMode::Complete)));
        // h1 was remembered already (with `note`): the record keeps the first delivery's rule.
        assert_eq!(groups(&state).len(), 1);
        let mut state = PositionState::new(Place::default());
        state.remember(seen(0, "w1", "WARNING", None));
        state.remember(seen(1, "c1", "HEALTHY", Some(CloseMode::Complete)));
        state.remember(seen(2, "w2", "WARNING", None));
        assert_eq!(
            shape(&state),
            [(vec!["w1".into()], None), (vec!["w2".into()], None)]
        );
        // A planner completed w1's notification while it held w1 and h1.
        let mut state = flapping();
        let mut first = filed("w1");
        first.sealed_after = state.seen("h1").map(|s| s.change.time);
        state.filed.push(first);
        assert_eq!(
            shape(&state),
            [
                (vec!["w1".into()], Some("N-w1".into())),
                (vec!["w2".into(), "a3".into()], None)
            ]
        );
    }

    #[test]
    fn notifications_of_the_former_rule_keep_their_episodes() {
        let mut state = flapping();
        state.filed.push(filed("w2"));
        state.filed.push(filed("a3"));
        assert_eq!(
            shape(&state),
            [
                (vec!["w1".into(), "w2".into()], Some("N-w2".into())),
                (vec!["a3".into()], Some("N-a3".into()))
            ]
        );
    }
}
