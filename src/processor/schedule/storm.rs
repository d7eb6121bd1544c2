//! Writing a storm's notification in S/4 (its texts: `alarms::storm`).
//!
//! Rules:
//! - created once: the reference is saved with `tried` before the create is sent, and a storm
//!   that tried before looks its reference up first; a create S/4 refuses for good is recorded
//!   on the storm (`failed`) and not tried again, the storm still holding and releasing;
//! - the technical object is the site's (the first mapping row naming the site and neither asset
//!   nor position), else the storm's first position's; the priority the most urgent of its
//!   members', raised as more join; the short text counts the members;
//! - every tick writes the lines of the members not yet written, in blocks (one request each),
//!   the storm saved after each block: a block whose answer is lost may be written twice, never
//!   left out.

use std::time::Instant;

use chrono::DateTime;
use serde_json::{Map, Value};

use crate::processor::Processor;
use crate::processor::alarms::site::{SiteEntry, SiteRecord, Storm, StormSummary};
use crate::processor::alarms::storm::{blocks, closing, header, line, title};
use crate::processor::create::more_urgent;
use crate::processor::episode::store::EpisodeStore;
use crate::processor::idempotency::IdempotencyStore;
use crate::processor::rules::alarms::AlarmManagement;
use crate::processor::s4::{NewNotification, S4Error};

use super::Tick;

/// The most urgent of the members' priorities.
fn most_urgent<'a>(members: impl Iterator<Item = &'a SiteEntry>) -> Option<String> {
    members
        .filter_map(|e| e.priority.as_deref())
        .fold(None, |worst: Option<&str>, p| {
            if more_urgent(p, worst) {
                Some(p)
            } else {
                worst
            }
        })
        .map(str::to_string)
}

impl<I: IdempotencyStore + EpisodeStore> Processor<I> {
    /// Creates the storm's notification if it has none, and writes the lines it lacks.
    pub(super) async fn storm_notice(
        &self,
        site: &str,
        record: &SiteRecord,
        storm: &mut Storm,
        settings: &AlarmManagement,
        deadline: Instant,
        tick: &mut Tick,
    ) -> Result<(), String> {
        if storm.failed.is_some() {
            return Ok(());
        }
        let frame = storm.clone();
        let mut members: Vec<(&String, &SiteEntry)> = record.members(&frame).collect();
        members.sort_by_key(|(k, e)| (e.event_ms, *k));
        let Some((_, first)) = members.first().copied() else {
            return Ok(());
        };
        let priority = most_urgent(members.iter().map(|(_, e)| *e));
        let save = |storm: Storm| async move {
            self.idempotency
                .save_storm(site, &storm)
                .await
                .map_err(|e| e.to_string())
        };
        let number = match storm.number.clone() {
            Some(number) => number,
            None => {
                if storm.tried
                    && let Some(found) = self
                        .s4
                        .find_by_reference(&storm.reference, deadline)
                        .await
                        .map_err(|e| e.to_string())?
                {
                    storm.number = Some(found.number.clone());
                    storm.titled = 0;
                    save(storm.clone()).await?;
                    found.number
                } else {
                    storm.tried = true;
                    save(storm.clone()).await?;
                    let (object, kind, plant) = first.site_object.clone().unwrap_or((
                        first.technical_object.clone(),
                        first.object_kind.clone(),
                        first.planning_plant.clone(),
                    ));
                    let draft = NewNotification {
                        text: title(site, members.len()),
                        long_text: header(site, storm, settings),
                        notification_type: first.notification_type.clone(),
                        technical_object: object,
                        object_kind: kind,
                        priority: priority.clone(),
                        planning_plant: plant,
                        malfunction_start: DateTime::from_timestamp_millis(first.event_ms),
                        external_reference: storm.reference.clone(),
                    };
                    match self.s4.create(&draft, deadline).await {
                        Ok(number) => {
                            tracing::warn!(site, notification = %number, positions = members.len(), "storm notification created");
                            tick.storm_notifications += 1;
                            storm.number = Some(number.clone());
                            storm.titled = members.len();
                            storm.priority = priority.clone();
                            save(storm.clone()).await?;
                            number
                        }
                        Err(S4Error::Permanent { status, message }) => {
                            storm.failed = Some(format!("S/4 refused it: {status} {message}"));
                            save(storm.clone()).await?;
                            return Err(format!(
                                "S/4 refused the storm notification for good ({status} {message}); the storm still holds and releases its positions"
                            ));
                        }
                        Err(e) => return Err(e.to_string()),
                    }
                }
            }
        };
        let unwritten: Vec<(&String, &SiteEntry)> = members
            .iter()
            .filter(|(k, _)| !storm.written.contains(k))
            .copied()
            .collect();
        let lines: Vec<String> = unwritten.iter().map(|(_, e)| line(e)).collect();
        let mut at = 0;
        let mut batches = blocks(&lines);
        if batches.is_empty() && (storm.titled != members.len() || raise(&priority, storm)) {
            batches.push((String::new(), 0));
        }
        for (text, count) in batches {
            let mut fields = Map::new();
            if !text.is_empty() {
                fields.insert("MaintNotifLongTextForEdit".into(), text.into());
            }
            if storm.titled != members.len() {
                fields.insert("NotificationText".into(), title(site, members.len()).into());
            }
            if raise(&priority, storm) {
                fields.insert("MaintPriority".into(), priority.clone().into());
            }
            let request = self
                .s4
                .requests()
                .update(&number, Value::Object(fields))
                .map_err(|e| e.to_string())?;
            self.s4
                .write(&request, deadline)
                .await
                .map_err(|e| e.to_string())?;
            storm
                .written
                .extend(unwritten[at..at + count].iter().map(|(k, _)| (*k).clone()));
            at += count;
            tick.storm_lines += count;
            storm.titled = members.len();
            if raise(&priority, storm) {
                storm.priority = priority.clone();
            }
            save(storm.clone()).await?;
        }
        Ok(())
    }

    /// The storm notification's closing line with the counts.
    pub(super) async fn storm_closing(
        &self,
        storm: &Storm,
        summary: &StormSummary,
        deadline: Instant,
    ) -> Result<(), String> {
        let Some(number) = &storm.number else {
            return Ok(());
        };
        let mut fields = Map::new();
        fields.insert("MaintNotifLongTextForEdit".into(), closing(summary).into());
        let request = self
            .s4
            .requests()
            .update(number, Value::Object(fields))
            .map_err(|e| e.to_string())?;
        self.s4
            .write(&request, deadline)
            .await
            .map_err(|e| e.to_string())
    }
}

/// Whether the members' priority is more urgent than the notification's.
fn raise(priority: &Option<String>, storm: &Storm) -> bool {
    priority
        .as_deref()
        .is_some_and(|p| more_urgent(p, storm.priority.as_deref()))
}
