//! What the console shows, read at once from where the functions keep it, and held until the
//! next read: the episode records (the processor's idempotency table), the processor's failure
//! records and the forwarder's refusals (SQS or S3), the functions' CloudWatch metrics, and the
//! sites alarm management keeps (storms, held episodes).
//!
//! Rules:
//! - each source is read on its own; one that cannot be read (no credentials, a missing table,
//!   no network, not configured) is said on every page that needs it, with the reason, and the
//!   others are shown;
//! - pages are served from the snapshot in memory (a plant's history pages in milliseconds);
//!   a read happens at start, every [`REREAD_AFTER`] on the next page asked for, and after every
//!   action, and each page says when its data was read;
//! - a position record that does not parse is counted and named, not shown.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::aws::records::{FailureSink, FailureTarget, Found, Record};
use crate::forwarder::refusals::RefusedEvent;
use crate::processor::alarms::site::SiteRecord;
use crate::processor::episode::group::by_notification;
use crate::processor::episode::sites::SiteStore;
use crate::processor::episode::state::PositionState;
use crate::processor::episode::store::EpisodeStore;
use crate::processor::failures::FailureRecord;
use crate::processor::idempotency::DynamoStore;

/// A snapshot older than this is read again when a page is asked for.
pub const REREAD_AFTER: Duration = Duration::from_secs(60);

/// Records read from each failure source, at most.
pub const MAX_RECORDS: usize = 5_000;

/// Where the console reads, from the same settings as the functions.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The processor's idempotency table (`IDEMPOTENCY_TABLE`), where episodes are kept.
    pub episodes_table: Option<String>,
    /// The processor's failure records (`FAILURE_RECORDS`, or `--failures`).
    pub failures: Option<FailureTarget>,
    /// The forwarder's refusals (`--refusals`, or `FORWARDER_FAILURE_RECORDS`).
    pub refusals: Option<FailureTarget>,
    /// Where the forwarder keeps the trend points (`TREND_TABLE`); `None` reads
    /// `episodes_table`, as the template deploys it.
    pub trend_table: Option<String>,
}

/// The AWS clients the console reads with: the operator's own credentials.
#[derive(Clone)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub s3: aws_sdk_s3::Client,
    pub aws: aws_config::SdkConfig,
}

/// One sensor position as the console shows it.
#[derive(Debug, Clone)]
pub struct Position {
    /// The record's key in the table (`episode#` left out).
    pub key: String,
    /// The Monitron project (the plant); empty in records written before it was kept.
    pub plant: String,
    pub site: String,
    pub asset: String,
    pub position: String,
    pub technical_object: String,
    /// Its episodes, the latest first.
    pub episodes: Vec<EpisodeView>,
    /// Every change remembered, in time order: the timeline.
    pub timeline: Vec<Step>,
    /// Notifications filed: number, priority, completed, events.
    pub filed: Vec<FiledView>,
    /// A create under way (no number yet).
    pub pending: bool,
}

#[derive(Debug, Clone)]
pub struct EpisodeView {
    pub since: DateTime<Utc>,
    pub last: DateTime<Utc>,
    /// `ALARM`, `WARNING`, ... while open; `recovered` or `closed by a user`.
    pub state: String,
    pub open: bool,
    pub events: u64,
    /// The alert changes after the first (each may have raised the priority).
    pub escalations: u64,
    pub notification: Option<String>,
    pub completed: bool,
    pub ended: Option<DateTime<Utc>>,
}

impl Position {
    /// Its names, the plant first when known: `Plant A / Site 1 / Pump 7 / Motor DE`.
    pub fn title(&self) -> String {
        if self.plant.is_empty() {
            format!("{} / {} / {}", self.site, self.asset, self.position)
        } else {
            format!(
                "{} / {} / {} / {}",
                self.plant, self.site, self.asset, self.position
            )
        }
    }
}

/// One change of the timeline, and what the rules decided for it.
#[derive(Debug, Clone)]
pub struct Step {
    pub time: DateTime<Utc>,
    pub event_id: String,
    pub state: String,
    /// The line it adds to the notification's long text.
    pub line: String,
    /// What the rules decided: the priority an alert asks for, or how an end closes.
    pub decided: String,
    /// The notification it belongs to, when filed.
    pub notification: Option<String>,
    /// Its trace id (empty for a change remembered before traces were kept).
    pub trace: String,
}

#[derive(Debug, Clone)]
pub struct FiledView {
    pub number: String,
    pub priority: String,
    pub completed: bool,
    pub events: u64,
    /// How many episodes it holds.
    pub episodes: u64,
    pub reference: String,
}

/// Everything read at one time; each source with what it gave or why it could not be read.
pub struct Snapshot {
    pub read_at: Instant,
    pub read_at_utc: DateTime<Utc>,
    pub positions: Result<Vec<Position>, String>,
    /// Position records that did not parse: key and reason.
    pub unreadable: Vec<(String, String)>,
    pub failures: Result<Vec<Found<FailureRecord>>, String>,
    pub refusals: Result<Vec<Found<RefusedEvent>>, String>,
    /// The functions' metrics, or why the overview counts from the records instead.
    pub metrics: Result<super::metrics::Metrics, String>,
    /// The sites alarm management keeps (storms, held episodes), by site key.
    pub sites: Result<Vec<(String, SiteRecord)>, String>,
}

impl Snapshot {
    /// Nothing read yet.
    pub fn empty(why: &str) -> Snapshot {
        Snapshot {
            read_at: Instant::now(),
            read_at_utc: Utc::now(),
            positions: Err(why.to_string()),
            unreadable: Vec::new(),
            failures: Err(why.to_string()),
            refusals: Err(why.to_string()),
            metrics: Err(why.to_string()),
            sites: Err(why.to_string()),
        }
    }

    /// Reads every source.
    pub async fn read(sources: &Sources, clients: &Clients) -> Snapshot {
        let (positions, failures, refusals, metrics, sites) = tokio::join!(
            read_positions(sources, clients),
            read_records::<FailureRecord>(
                sources.failures.as_ref(),
                clients,
                "the processor's failure records: set FAILURE_RECORDS (or --failures) as the processor has it",
            ),
            read_records::<RefusedEvent>(
                sources.refusals.as_ref(),
                clients,
                "the forwarder's refusals: set FORWARDER_FAILURE_RECORDS (or --refusals) to the forwarder's FAILURE_RECORDS",
            ),
            super::metrics::read(&clients.cloudwatch),
            read_sites(sources, clients),
        );
        let (positions, unreadable) = match positions {
            Ok((p, u)) => (Ok(p), u),
            Err(e) => (Err(e), Vec::new()),
        };
        Snapshot {
            read_at: Instant::now(),
            read_at_utc: Utc::now(),
            positions,
            unreadable,
            failures,
            refusals,
            metrics,
            sites,
        }
    }
}

/// The sites of alarm management: the index, then each site's record.
async fn read_sites(
    sources: &Sources,
    clients: &Clients,
) -> Result<Vec<(String, SiteRecord)>, String> {
    let Some(table) = &sources.episodes_table else {
        return Err(
            "storms: set IDEMPOTENCY_TABLE (or --table) to the processor's table".to_string(),
        );
    };
    let store = DynamoStore {
        client: clients.dynamodb.clone(),
        table: table.clone(),
        keep_completed: Duration::ZERO,
    };
    let keys = store
        .sites()
        .await
        .map_err(|e| format!("the sites of alarm management in table {table}: {e}"))?;
    let mut sites = Vec::with_capacity(keys.len());
    for key in keys {
        let record = store
            .site(&key)
            .await
            .map_err(|e| format!("site {key} in table {table}: {e}"))?;
        sites.push((key, record));
    }
    Ok(sites)
}

async fn read_positions(
    sources: &Sources,
    clients: &Clients,
) -> Result<(Vec<Position>, Vec<(String, String)>), String> {
    let Some(table) = &sources.episodes_table else {
        return Err(
            "episodes: set IDEMPOTENCY_TABLE (or --table) to the processor's table".to_string(),
        );
    };
    let store = DynamoStore {
        client: clients.dynamodb.clone(),
        table: table.clone(),
        keep_completed: Duration::ZERO,
    };
    let records = store
        .all()
        .await
        .map_err(|e| format!("the episodes in table {table}: {e}"))?;
    let mut positions = Vec::with_capacity(records.len());
    let mut unreadable = Vec::new();
    for (key, json) in records {
        match PositionState::read(&json) {
            Ok(state) => positions.push(position(key, &state)),
            Err(why) => unreadable.push((key, why)),
        }
    }
    positions.sort_by(|a, b| {
        (&a.plant, &a.site, &a.asset, &a.position, &a.key).cmp(&(
            &b.plant,
            &b.site,
            &b.asset,
            &b.position,
            &b.key,
        ))
    });
    Ok((positions, unreadable))
}

async fn read_records<R: Record>(
    target: Option<&FailureTarget>,
    clients: &Clients,
    missing: &str,
) -> Result<Vec<Found<R>>, String> {
    let Some(target) = target else {
        return Err(missing.to_string());
    };
    let sink = FailureSink::new(Some(target), clients.s3.clone(), &clients.aws);
    // Listing only: SQS messages read here are visible again at once.
    let found = sink.list::<R>(MAX_RECORDS, 0).await?;
    let mut seen = std::collections::HashSet::new();
    Ok(found
        .into_iter()
        .filter(|f| seen.insert(f.record.file_name()))
        .collect())
}

/// The console's view of one position record.
pub fn position(key: String, state: &PositionState) -> Position {
    let mut parts = state.place.label.split(" / ").map(str::to_string);
    let site = parts.next().unwrap_or_default();
    let asset = parts.next().unwrap_or_default();
    let position = parts.collect::<Vec<_>>().join(" / ");
    let all = by_notification(state);
    // Each change's notification: its episode's.
    let notification_of = |id: &str| {
        all.iter()
            .find(|(e, _, _)| e.holds(id))
            .and_then(|(_, filed, _)| filed.map(|i| state.filed[i].number.clone()))
    };
    let mut views: Vec<EpisodeView> = all
        .iter()
        .map(|(episode, filed, _)| {
            let ids: Vec<&str> = episode.changes().map(|c| c.id.as_str()).collect();
            let filed = filed.map(|i| &state.filed[i]);
            let state_now = episode.status();
            let since = episode.alerts.first().map_or_else(Utc::now, |c| c.time);
            EpisodeView {
                since,
                last: episode.changes().last().map_or(since, |c| c.time),
                state: state_now,
                open: episode.end.is_none(),
                events: ids.len() as u64,
                escalations: episode.alerts.len().saturating_sub(1) as u64,
                notification: filed.map(|f| f.number.clone()),
                completed: filed.is_some_and(|f| f.completed),
                ended: episode.end.map(|c| c.time),
            }
        })
        .collect();
    views.reverse();
    let timeline = state
        .changes
        .iter()
        .map(|seen| {
            let decided = match (&seen.priority, &seen.close) {
                (Some(p), _) => format!("alert: priority {p}"),
                (None, Some(close)) => format!("end: close {close:?}").to_lowercase(),
                (None, None) if seen.change.is_alert() => "alert".to_string(),
                (None, None) => "end".to_string(),
            };
            Step {
                time: seen.change.time,
                event_id: seen.change.id.clone(),
                state: seen.change.state.clone(),
                line: seen.line.clone(),
                decided,
                notification: notification_of(&seen.change.id),
                trace: seen.trace.clone().unwrap_or_default(),
            }
        })
        .collect();
    Position {
        key,
        plant: state.place.project.clone().unwrap_or_default(),
        site,
        asset,
        position,
        technical_object: state.place.technical_object.clone(),
        episodes: views,
        timeline,
        filed: state
            .filed
            .iter()
            .enumerate()
            .map(|(i, f)| FiledView {
                number: f.number.clone(),
                priority: f.priority.clone().unwrap_or_else(|| "-".into()),
                completed: f.completed,
                events: f.events(),
                episodes: all.iter().filter(|(_, filed, _)| *filed == Some(i)).count() as u64,
                reference: f.reference.clone(),
            })
            .collect(),
        pending: state.pending.is_some(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::processor::episode::model::Change;
    use crate::processor::episode::state::{Filed, Place, Seen};

    fn seen(minutes: i64, id: &str, state: &str, priority: Option<&str>) -> Seen {
        Seen {
            change: Change {
                time: DateTime::from_timestamp(1_700_000_000 + minutes * 60, 0).unwrap_or_default(),
                id: id.into(),
                state: state.into(),
                closure: None,
            },
            line: format!("{id} line"),
            priority: priority.map(str::to_string),
            draft: None,
            close: priority.is_none().then(Default::default),
            trace: Some(format!("{:032x}", minutes)),
        }
    }

    #[test]
    fn a_position_shows_its_episodes_latest_first_and_each_event_s_notification() {
        let mut state = PositionState::new(Place {
            label: "Site 1 / Pump 7 / Motor DE".into(),
            technical_object: "10000000".into(),
            object_kind: "EAMS_EQUI".into(),
            position: Some("Motor DE".into()),
            project: Some("Plant A".into()),
            site: Some("Site 1".into()),
        });
        for s in [
            seen(0, "a", "WARNING", Some("2")),
            seen(5, "b", "ALARM", Some("1")),
            seen(60, "c", "HEALTHY", None),
            seen(120, "d", "ALARM", Some("1")),
        ] {
            state.remember(s);
        }
        state.file(Filed {
            number: "10000001".into(),
            reference: "MON1".into(),
            creator: "a".into(),
            lines: BTreeSet::from(["a".to_string(), "b".to_string(), "c".to_string()]),
            priority: Some("1".into()),
            titled_by: "b".into(),
            started_by: None,
            open_seen: None,
            sealed_after: None,
            completed: true,
            unsure: false,
            forgotten_lines: 0,
            chart: crate::processor::episode::state::ChartAsk::None,
        });
        let p = position("k".into(), &state);
        assert_eq!(
            (p.site.as_str(), p.asset.as_str(), p.position.as_str()),
            ("Site 1", "Pump 7", "Motor DE")
        );
        assert_eq!(p.episodes.len(), 2);
        assert!(
            p.episodes[0].open && p.episodes[0].notification.is_none(),
            "the latest first, open"
        );
        let ended = &p.episodes[1];
        assert_eq!(ended.state, "recovered");
        assert_eq!(ended.notification.as_deref(), Some("10000001"));
        assert!(ended.completed);
        assert_eq!(ended.escalations, 1);
        let numbers: Vec<Option<&str>> = p
            .timeline
            .iter()
            .map(|s| s.notification.as_deref())
            .collect();
        assert_eq!(
            numbers,
            [Some("10000001"), Some("10000001"), Some("10000001"), None]
        );
        assert_eq!(p.timeline[1].decided, "alert: priority 1");
        assert_eq!(p.timeline[2].decided, "end: close complete");
    }
}
