//! The trend queue (`TREND_QUEUE`): the forwarder hands an object's points to an SQS queue
//! instead of writing them while the object is read, and writes them when the queue gives them
//! back (the same function, triggered by the queue). An object costs one message per
//! [`MAX_MESSAGE_BYTES`] of points, not one write per position and day.
//!
//! Rules:
//! - a message holds whole position-days ([`Days`]): `{"e2bTrendPoints": 1, "object": ...,
//!   "gzip": "..."}`, the days (`[{"key", "day", "position": {...}, "points": [...]}]`, the
//!   points encoded as the table keeps them, `trend::store::encode`) as gzip-compressed JSON in
//!   base64, about [`RAW_PER_MESSAGE`] of JSON a message and at most [`MAX_MESSAGE_BYTES`] (SQS
//!   takes 256 KiB); a reader also takes the days uncompressed (`"days": [...]`) and inflates a
//!   message to at most 8 MiB;
//! - a message that cannot be sent has its days written directly instead: nothing gathered is
//!   lost to a queue that is down;
//! - a message given back is written day by day; a day that cannot be written fails the
//!   message (the queue gives it back again, and the redrive policy ends it); writing the same
//!   points twice keeps them once (`trend::store`).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::trend::Position;
use crate::trend::store::{Day, decode, encode};

/// The largest message body sent (below SQS's 256 KiB).
pub const MAX_MESSAGE_BYTES: usize = 240 * 1024;

/// Days' JSON gathered into one message before it is compressed.
pub const RAW_PER_MESSAGE: usize = 1024 * 1024;

/// The most a message's points may inflate to when read.
const MAX_RAW: usize = 8 * RAW_PER_MESSAGE;

/// The marker of a trend message's body.
pub const MARKER: &str = "e2bTrendPoints";

/// Where the points go.
#[derive(Debug, Clone)]
pub struct TrendQueue {
    pub client: aws_sdk_sqs::Client,
    pub url: String,
}

/// A message body as sent.
#[derive(Debug, Serialize, Deserialize)]
pub struct Days {
    #[serde(rename = "e2bTrendPoints")]
    pub version: u32,
    /// The object (or batch) the points came from, for the log.
    pub object: String,
    /// The days, when sent uncompressed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days: Vec<QueuedDay>,
    /// The days' JSON, gzip-compressed, in base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gzip: Option<String>,
}

/// One position's points of one day.
#[derive(Debug, Serialize, Deserialize)]
pub struct QueuedDay {
    pub key: String,
    pub day: NaiveDate,
    pub position: QueuedPosition,
    pub points: Vec<String>,
}

/// A position's names, as the table's day item keeps them.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct QueuedPosition {
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
}

impl QueuedDay {
    pub fn of(day: &Day) -> QueuedDay {
        let p = &day.position;
        QueuedDay {
            key: day.key.clone(),
            day: day.day,
            position: QueuedPosition {
                source: p.source.clone(),
                id: p.asset_position_id.clone(),
                project: p.project.clone(),
                site: p.site.clone(),
                asset: p.asset.clone(),
                position: p.position.clone(),
            },
            points: day.points.iter().map(encode).collect(),
        }
    }

    /// The day to write; points that do not decode are left out (the caller counts them:
    /// `SeriesKeeper::keep_message`).
    pub fn into_day(self) -> Day {
        let q = self.position;
        Day {
            key: self.key,
            position: Position {
                source: q.source,
                asset_position_id: q.id,
                project: q.project,
                site: q.site,
                asset: q.asset,
                position: q.position,
            },
            day: self.day,
            points: self.points.iter().filter_map(|l| decode(l)).collect(),
        }
    }
}

/// The message bodies for `days` of `object`, each at most [`MAX_MESSAGE_BYTES`], with the days
/// each carries: about [`RAW_PER_MESSAGE`] of days' JSON, gzip-compressed and in base64
/// (a plant's points are alike: they shrink about sixfold), halved while too large.
pub fn messages(object: &str, days: Vec<Day>) -> Vec<(String, Vec<Day>)> {
    let mut out = Vec::new();
    let mut chunk: Vec<(Vec<u8>, Day)> = Vec::new();
    let mut size = 0;
    for day in days {
        let Ok(json) = serde_json::to_vec(&QueuedDay::of(&day)) else {
            continue;
        };
        size += json.len() + 1;
        chunk.push((json, day));
        if size >= RAW_PER_MESSAGE {
            seal(object, std::mem::take(&mut chunk), &mut out);
            size = 0;
        }
    }
    seal(object, chunk, &mut out);
    out
}

/// One message of `chunk` (each day's JSON, and the day), or two of its halves while it is too
/// large.
fn seal(object: &str, chunk: Vec<(Vec<u8>, Day)>, out: &mut Vec<(String, Vec<Day>)>) {
    if chunk.is_empty() {
        return;
    }
    match body(object, chunk.iter().map(|(json, _)| json.as_slice())) {
        Some(text) if text.len() <= MAX_MESSAGE_BYTES || chunk.len() == 1 => {
            out.push((text, chunk.into_iter().map(|(_, d)| d).collect()));
        }
        _ => {
            let mut first = chunk;
            let second = first.split_off(first.len() / 2);
            seal(object, first, out);
            seal(object, second, out);
        }
    }
}

/// A message body: the days' JSON array, compressed.
fn body<'a>(object: &str, days: impl Iterator<Item = &'a [u8]>) -> Option<String> {
    use base64::Engine;
    use std::io::Write;
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gzip.write_all(b"[").ok()?;
    for (i, json) in days.enumerate() {
        if i > 0 {
            gzip.write_all(b",").ok()?;
        }
        gzip.write_all(json).ok()?;
    }
    gzip.write_all(b"]").ok()?;
    let packed = gzip.finish().ok()?;
    let message = Days {
        version: 1,
        object: object.to_string(),
        days: Vec::new(),
        gzip: Some(base64::engine::general_purpose::STANDARD.encode(packed)),
    };
    serde_json::to_string(&message).ok()
}

/// Reads a message body given back by the queue: its days, inflated to at most [`MAX_RAW`].
pub fn read(body: &str) -> Result<Days, String> {
    use base64::Engine;
    use std::io::Read;
    let mut message: Days =
        serde_json::from_str(body).map_err(|e| format!("not a trend message: {e}"))?;
    if let Some(packed) = message.gzip.take() {
        let packed = base64::engine::general_purpose::STANDARD
            .decode(packed)
            .map_err(|e| format!("a trend message whose points are not base64: {e}"))?;
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(packed.as_slice())
            .take(MAX_RAW as u64 + 1)
            .read_to_end(&mut raw)
            .map_err(|e| format!("a trend message whose points are not gzip: {e}"))?;
        if raw.len() > MAX_RAW {
            return Err(format!(
                "a trend message of more than {MAX_RAW} bytes of points"
            ));
        }
        message.days = serde_json::from_slice(&raw)
            .map_err(|e| format!("a trend message whose points are not days: {e}"))?;
    }
    Ok(message)
}

/// Whether an SQS message body is a trend message (rather than an S3 notification).
pub fn is_trend_message(body: &str) -> bool {
    body.trim_start().starts_with(&format!("{{\"{MARKER}\""))
}

impl TrendQueue {
    /// Sends one message body.
    pub async fn send(&self, body: String) -> Result<(), String> {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                format!(
                    "the trend queue {} refused the points: {}",
                    self.url,
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trend::Point;
    use chrono::{TimeZone, Utc};

    fn day(key: &str, points: usize) -> Day {
        day_at(key, points, 1.25)
    }

    fn day_at(key: &str, points: usize, velocity: f64) -> Day {
        let at = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap();
        Day {
            key: key.into(),
            position: Position {
                source: "monitron/1/Plant%20A".into(),
                asset_position_id: Some(key.into()),
                site: Some("Site 1".into()),
                ..Position::default()
            },
            day: at.date_naive(),
            points: (0..points)
                .map(|i| Point {
                    at: at + chrono::Duration::seconds(i as i64),
                    velocity: Some(velocity),
                    velocity_axes: [Some(0.5), None, Some(0.75)],
                    acceleration: None,
                    temperature: Some(41.5),
                    iso_class: None,
                    models: [None; 3],
                })
                .collect(),
        }
    }

    #[test]
    fn days_travel_whole_and_messages_stay_under_the_limit() {
        // Values that compress badly, so that chunks are halved to fit.
        let mut rng = fastrand::Rng::with_seed(7);
        let days: Vec<Day> = (0..12_000)
            .map(|i| day_at(&format!("pos-{i}-{:016x}", rng.u64(..)), 1, rng.f64()))
            .collect();
        let keys: Vec<String> = days.iter().map(|d| d.key.clone()).collect();
        let sent = messages("plant.json.gz", days);
        assert!(sent.len() > 4, "{} messages", sent.len());
        let mut back = Vec::new();
        for (body, carried) in &sent {
            assert!(body.len() <= MAX_MESSAGE_BYTES, "{}", body.len());
            assert!(is_trend_message(body));
            let read = read(body).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(read.days.len(), carried.len());
            back.extend(read.days.into_iter().map(QueuedDay::into_day));
        }
        assert_eq!(back.len(), 12_000);
        let back_keys: Vec<String> = back.iter().map(|d| d.key.clone()).collect();
        assert_eq!(back_keys, keys, "every day once, in order");
        let few = messages("x", vec![day("pos-7", 3)]);
        let read_back = read(&few[0].0).unwrap_or_else(|e| panic!("{e}"));
        let days: Vec<Day> = read_back
            .days
            .into_iter()
            .map(QueuedDay::into_day)
            .collect();
        assert_eq!(days, vec![day("pos-7", 3)]);
        // A full day alone is still one message.
        let full = messages("x", vec![day("big", 2000)]);
        assert_eq!(full.len(), 1);
        assert!(!is_trend_message("{\"Records\": []}"));
    }
}
