//! What a site's record holds: one entry per position that started an episode lately (when, how
//! urgent, whether its notification is held), and the storm the site is in, if any.
//!
//! Rules:
//! - a site is a Monitron project and site (`SiteKey`); positions without a site share the
//!   project's `(no site)` record, which holds on-delays but is never in a storm;
//! - a storm begins when `storm_positions` positions have entries whose episode starts lie within
//!   one `storm_window` of Monitron event time ([`storm_in`]); it is recognised by the delivery
//!   that makes the count, recorded once (a conditional write), and its members are the entries
//!   from the start of that window on, and every entry written while it lasts;
//! - a storm ends `storm_quiet` after the last new episode of the site (the processor's clock),
//!   or `storm_max` after it began ([`Storm::over`]);
//! - an entry is held until its on-delay ends (`until_ms`), or, when it is a storm's member,
//!   until the storm ends; the schedule releases it and marks it no longer held;
//! - a held entry is marked `recovered` when its episode ends meanwhile, so that releases serve
//!   the positions still in alert first;
//! - entries no longer held are dropped once older than the window and the delays that can still
//!   use them ([`SiteRecord::stale`]), so the record stays small.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::processor::rules::alarms::AlarmManagement;

/// The attribute prefix of a position's entry in a site record.
pub const ENTRY: &str = "p#";

/// A site, as the key of its record: `<project> / <site>`.
pub fn site_key(project: Option<&str>, site: Option<&str>) -> String {
    format!(
        "{} / {}",
        project.unwrap_or("(no project)"),
        site.unwrap_or("(no site)")
    )
}

/// Whether a site key names a real site (storms need one).
pub fn is_site(key: &str) -> bool {
    !key.ends_with("/ (no site)")
}

/// One position's latest episode start at a site. Stored as compact JSON (one-letter keys, no
/// empty fields: about 150 bytes), as a storm writes one per position into one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteEntry {
    /// `site / asset / position`.
    #[serde(rename = "l")]
    pub label: String,
    /// The state of the alert that started it (updated by later alerts while held).
    #[serde(rename = "s")]
    pub state: String,
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// The notification its alert creates: type, technical object, kind, plant.
    #[serde(rename = "t")]
    pub notification_type: String,
    #[serde(rename = "o")]
    pub technical_object: String,
    #[serde(rename = "k")]
    pub object_kind: String,
    #[serde(rename = "pp", default, skip_serializing_if = "Option::is_none")]
    pub planning_plant: Option<String>,
    /// The site's own technical object, when a mapping row names the site and neither asset nor
    /// position: (object, kind, plant).
    #[serde(rename = "so", default, skip_serializing_if = "Option::is_none")]
    pub site_object: Option<(String, String, Option<String>)>,
    /// The episode's start, Monitron event time (ms since the epoch).
    #[serde(rename = "e")]
    pub event_ms: i64,
    /// When it was written (the processor's clock, ms).
    #[serde(rename = "w")]
    pub written_ms: i64,
    /// Held until then at least (on-delay); a storm's member is held until the storm ends.
    #[serde(rename = "u")]
    pub until_ms: i64,
    #[serde(rename = "h")]
    pub held: bool,
    /// Its notification was open and the episode joined it: counted, never held.
    #[serde(rename = "j", default, skip_serializing_if = "std::ops::Not::not")]
    pub joined: bool,
    /// The held episode has ended (a recovery arrived): its release creates nothing, so it comes
    /// after those still in alert.
    #[serde(rename = "r", default, skip_serializing_if = "std::ops::Not::not")]
    pub recovered: bool,
}

/// A storm of a site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Storm {
    /// When it was recognised (the processor's clock, ms): its id.
    pub began_ms: i64,
    /// The earliest episode start of the window that made it (Monitron event time, ms).
    pub first_event_ms: i64,
    /// Its notification's external reference, and number once created.
    pub reference: String,
    #[serde(default)]
    pub number: Option<String>,
    /// A create was sent: look the reference up before sending another.
    #[serde(default)]
    pub tried: bool,
    /// The positions whose line S/4 has.
    #[serde(default)]
    pub written: Vec<String>,
    /// The member count and priority the notification shows.
    #[serde(default)]
    pub titled: usize,
    #[serde(default)]
    pub priority: Option<String>,
    /// Members released so far: with a notification of their own, and recovered (none).
    #[serde(default)]
    pub released: usize,
    #[serde(default)]
    pub recovered: usize,
    /// S/4 refused its notification for good: why (the storm still holds and releases).
    #[serde(default)]
    pub failed: Option<String>,
}

impl Storm {
    /// Whether an entry is one of its members: its episode started from the storm's window on,
    /// or it was written while the storm lasts.
    pub fn has(&self, entry: &SiteEntry) -> bool {
        entry.event_ms >= self.first_event_ms || entry.written_ms >= self.began_ms
    }

    /// A storm recognised at `began_ms`, its window starting at `first_event_ms`.
    pub fn new(began_ms: i64, first_event_ms: i64, reference: String) -> Storm {
        Storm {
            began_ms,
            first_event_ms,
            reference,
            number: None,
            tried: false,
            written: Vec::new(),
            titled: 0,
            priority: None,
            released: 0,
            recovered: 0,
            failed: None,
        }
    }

    /// Whether it is over at `now_ms`, its last new episode at `last_ms`.
    pub fn over(&self, settings: &AlarmManagement, last_ms: i64, now_ms: i64) -> bool {
        let quiet = ms(settings.storm_quiet);
        let max = ms(settings.storm_max);
        now_ms >= last_ms.max(self.began_ms) + quiet || now_ms >= self.began_ms + max
    }
}

/// What a storm did, kept on the site's record for operators once it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StormSummary {
    pub began_ms: i64,
    pub ended_ms: i64,
    pub number: Option<String>,
    pub positions: usize,
    pub released: usize,
    pub recovered: usize,
}

/// A site's record, as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteRecord {
    /// Position key → entry, with the stored text (a write that replaces it names it).
    pub entries: BTreeMap<String, (SiteEntry, String)>,
    pub storm: Option<Storm>,
    /// The last episode start written (the processor's clock, ms).
    pub last_start_ms: i64,
    pub last_storm: Option<StormSummary>,
}

impl SiteRecord {
    /// The storm's members: entries from its window's start on, or written while it lasts.
    pub fn members<'a>(
        &'a self,
        storm: &'a Storm,
    ) -> impl Iterator<Item = (&'a String, &'a SiteEntry)> {
        self.entries
            .iter()
            .map(|(k, (e, _))| (k, e))
            .filter(move |(_, e)| storm.has(e))
    }

    /// How many entries are held now.
    pub fn held(&self) -> usize {
        self.entries.values().filter(|(e, _)| e.held).count()
    }

    /// Held entries whose hold has ended at `now_ms` (a storm's members stay held while it lasts).
    pub fn due(&self, now_ms: i64) -> impl Iterator<Item = (&String, &SiteEntry, &str)> {
        let storm = self.storm.as_ref();
        self.entries
            .iter()
            .filter(move |(_, (e, _))| e.held && e.until_ms <= now_ms)
            .filter(move |(_, (e, _))| storm.is_none_or(|s| !s.has(e)))
            .map(|(k, (e, text))| (k, e, text.as_str()))
    }

    /// Entries no longer of use: not held, written longer ago than the window and the delays
    /// that can still count them, and no member of a storm under way.
    pub fn stale<'a>(
        &'a self,
        settings: &AlarmManagement,
        now_ms: i64,
    ) -> impl Iterator<Item = (&'a String, &'a str)> {
        let keep = ms(settings.storm_window) + ms(settings.on_delay) + 10 * 60_000;
        let storm = self.storm.is_some();
        self.entries
            .iter()
            .filter(move |(_, (e, _))| !e.held && !storm && e.written_ms + keep < now_ms)
            .map(|(k, (_, text))| (k, text.as_str()))
    }
}

/// Milliseconds of a duration.
pub fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// When the entries make a storm: the earliest episode start (event time, ms) of a window of
/// `storm_window` holding `storm_positions` positions, the one ending latest.
pub fn storm_in<'a>(
    entries: impl IntoIterator<Item = &'a SiteEntry>,
    settings: &AlarmManagement,
) -> Option<i64> {
    let needed = usize::try_from(settings.storm_positions).ok()?;
    if needed == 0 {
        return None;
    }
    let mut starts: Vec<i64> = entries.into_iter().map(|e| e.event_ms).collect();
    starts.sort_unstable();
    let window = ms(settings.storm_window);
    let mut found = None;
    let mut from = 0;
    for to in 0..starts.len() {
        while starts[to] - starts[from] > window {
            from += 1;
        }
        if to + 1 - from >= needed {
            found = Some(starts[from]);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(event_s: i64) -> SiteEntry {
        SiteEntry {
            label: "S / A / P".into(),
            state: "ALARM".into(),
            priority: Some("1".into()),
            notification_type: "M2".into(),
            technical_object: "T".into(),
            object_kind: "EAMS_EQUI".into(),
            planning_plant: None,
            site_object: None,
            event_ms: event_s * 1000,
            written_ms: 0,
            until_ms: 0,
            held: true,
            joined: false,
            recovered: false,
        }
    }

    fn settings(positions: u32, window_s: u64) -> AlarmManagement {
        AlarmManagement {
            storm_positions: positions,
            storm_window: Duration::from_secs(window_s),
            ..AlarmManagement::default()
        }
    }

    #[test]
    fn a_storm_is_enough_positions_within_one_window_of_event_time() {
        let spread: Vec<SiteEntry> = (0..5).map(|i| entry(i * 100)).collect();
        assert_eq!(
            storm_in(&spread, &settings(3, 60)),
            None,
            "100 s apart each"
        );
        let close: Vec<SiteEntry> = [0, 10, 20, 500, 530, 555, 559].map(entry).to_vec();
        assert_eq!(
            storm_in(&close, &settings(3, 60)),
            Some(500_000),
            "the latest window"
        );
        assert_eq!(storm_in(&close, &settings(4, 60)), Some(500_000));
        assert_eq!(storm_in(&close, &settings(5, 60)), None);
        assert_eq!(storm_in(&close, &settings(0, 60)), None, "off");
    }

    #[test]
    fn an_entry_is_compact() {
        let mut e = entry(1_714_550_400);
        e.label = "Site 1 / Pump 001 / Motor 001".into();
        e.technical_object = "10000000".into();
        let text = serde_json::to_string(&e).unwrap_or_default();
        assert!(text.len() < 170, "{} bytes: {text}", text.len());
        assert_eq!(serde_json::from_str::<SiteEntry>(&text).ok(), Some(e));
    }

    #[test]
    fn a_storm_ends_when_quiet_or_at_its_longest() {
        let s = AlarmManagement {
            storm_quiet: Duration::from_secs(30),
            storm_max: Duration::from_secs(600),
            ..AlarmManagement::default()
        };
        let storm = Storm::new(1_000_000, 0, "MONS".into());
        assert!(!storm.over(&s, 1_020_000, 1_049_000));
        assert!(storm.over(&s, 1_020_000, 1_050_000));
        assert!(
            !storm.over(&s, 1_590_000, 1_599_999),
            "new episodes keep it going"
        );
        assert!(storm.over(&s, 1_590_000, 1_600_000), "at most storm_max");
    }

    #[test]
    fn members_stay_held_while_the_storm_lasts_and_others_are_due_on_their_delay() {
        let mut record = SiteRecord::default();
        let mut early = entry(0);
        early.until_ms = 10;
        let mut member = entry(100);
        member.until_ms = 10;
        record
            .entries
            .insert("early".into(), (early, String::new()));
        record
            .entries
            .insert("member".into(), (member, String::new()));
        let due: Vec<&String> = record.due(20).map(|(k, _, _)| k).collect();
        assert_eq!(due, ["early", "member"]);
        record.storm = Some(Storm::new(50, 90_000, String::new()));
        let due: Vec<&String> = record.due(20).map(|(k, _, _)| k).collect();
        assert_eq!(due, ["early"]);
        let storm = record.storm.clone().unwrap_or_else(|| unreachable!());
        assert_eq!(record.members(&storm).count(), 1);
    }
}
