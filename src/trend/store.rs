//! A position's series in DynamoDB (`TREND_TABLE`): what the forwarder keeps from the
//! measurements it reads, and what a chart is drawn from.
//!
//! Rules:
//! - one item per position per UTC day, `id` = `trend#<position key>#<yyyy-mm-dd>` (the key of
//!   [`super::position_key`]); the table is any of ours (partition key `id`, TTL attribute
//!   `expiration`), the forwarder's progress table or the processor's idempotency table;
//! - its points are a string set `points`, one [`encode`]d point each: the same record kept
//!   twice is the same string, so a retried object or a Firehose duplicate adds nothing;
//! - a day's new points are added with one `UpdateItem` (`ADD`), with the position's names
//!   (`pos_*`) for the chart's title; the item expires [`KEEP_DAYS`] after its day ends. (Not
//!   `TransactWriteItems` of many days: it costs twice the write units, one conflict cancels
//!   every day in it, and it saves no time over parallel updates);
//! - a day holds at most [`MAX_POINTS_PER_DAY`] points (Monitron sends 24): an item stays far
//!   below DynamoDB's 400 KB whatever a sensor sends; points past that are refused and counted;
//! - reading a window is one `BatchGetItem` per 100 days; a day without an item has no points.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use chrono::{DateTime, Days, NaiveDate, SecondsFormat, Utc};

use super::{Health, IsoClass, Point, Position, Series};
use crate::aws::dynamo::{Item, TableError, failed};

/// Days an item is kept after its day ends (a chart shows 30).
pub const KEEP_DAYS: u64 = 35;

/// The most points one position's day holds (about 110 bytes each).
pub const MAX_POINTS_PER_DAY: usize = 2000;

/// The table and its client.
#[derive(Debug, Clone)]
pub struct TrendTable {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
}

/// The item of a position's day.
pub fn day_id(key: &str, day: NaiveDate) -> String {
    format!("trend#{key}#{}", day.format("%Y-%m-%d"))
}

/// A point as one short line: its time (RFC 3339, milliseconds), then velocity, its three axes,
/// acceleration, temperature, the ISO class and the three models' states, `|`-separated, empty
/// where absent. Numbers are written in their shortest exact form, so one point is one string.
pub fn encode(point: &Point) -> String {
    let number = |n: Option<f64>| n.map(|n| n.to_string()).unwrap_or_default();
    let mut fields = vec![point.at.to_rfc3339_opts(SecondsFormat::Millis, true)];
    fields.push(number(point.velocity));
    fields.extend(point.velocity_axes.iter().map(|n| number(*n)));
    fields.push(number(point.acceleration));
    fields.push(number(point.temperature));
    fields.push(
        point
            .iso_class
            .map(IsoClass::name)
            .unwrap_or_default()
            .into(),
    );
    fields.extend(
        point
            .models
            .iter()
            .map(|h| h.map(Health::name).unwrap_or_default().to_string()),
    );
    fields.join("|")
}

/// The point of an [`encode`]d line; `None` for anything else.
pub fn decode(line: &str) -> Option<Point> {
    let fields: Vec<&str> = line.split('|').collect();
    let [at, v, x, y, z, a, t, iso, m0, m1, m2] = fields.as_slice() else {
        return None;
    };
    let number = |text: &str| text.parse::<f64>().ok().filter(|n| n.is_finite());
    let health = |text: &str| Health::from_name(text);
    Some(Point {
        at: DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc),
        velocity: number(v),
        velocity_axes: [number(x), number(y), number(z)],
        acceleration: number(a),
        temperature: number(t),
        iso_class: IsoClass::from_name(iso),
        models: [health(m0), health(m1), health(m2)],
    })
}

/// One position's new points of one UTC day.
#[derive(Debug, Clone, PartialEq)]
pub struct Day {
    pub key: String,
    pub position: Position,
    pub day: NaiveDate,
    pub points: Vec<Point>,
}

/// How a day's write went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// The points are in the item (some may have been there already).
    Kept,
    /// The day already holds [`MAX_POINTS_PER_DAY`] points: these were not added.
    DayFull,
}

impl TrendTable {
    /// Adds a day's points to its item (one `UpdateItem`).
    pub async fn keep(&self, day: &Day) -> Result<Kept, TableError> {
        let lines: Vec<String> = day.points.iter().map(encode).collect();
        if lines.is_empty() {
            return Ok(Kept::Kept);
        }
        let expiration = day
            .day
            .checked_add_days(Days::new(KEEP_DAYS + 1))
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map_or(0, |t| t.and_utc().timestamp());
        let mut sets = vec!["expiration = :exp".to_string()];
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(day_id(&day.key, day.day)))
            .condition_expression("attribute_not_exists(points) OR size(points) < :cap")
            .expression_attribute_values(":new", AttributeValue::Ss(lines))
            .expression_attribute_values(":exp", AttributeValue::N(expiration.to_string()))
            .expression_attribute_values(":cap", AttributeValue::N(MAX_POINTS_PER_DAY.to_string()));
        let position = &day.position;
        let names = [
            ("pos_source", Some(&position.source)),
            ("pos_id", position.asset_position_id.as_ref()),
            ("pos_project", position.project.as_ref()),
            ("pos_site", position.site.as_ref()),
            ("pos_asset", position.asset.as_ref()),
            ("pos_position", position.position.as_ref()),
        ];
        for (attribute, value) in names {
            if let Some(value) = value.filter(|v| !v.is_empty()) {
                sets.push(format!("{attribute} = :{attribute}"));
                update = update.expression_attribute_values(
                    format!(":{attribute}"),
                    AttributeValue::S(value.clone()),
                );
            }
        }
        let update = update.update_expression(format!("ADD points :new SET {}", sets.join(", ")));
        match update.send().await {
            Ok(_) => Ok(Kept::Kept),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(Kept::DayFull)
            }
            Err(e) => Err(failed(e).context("keeping the trend points")),
        }
    }

    /// The series of position `key` over the UTC days from `from` to `to`.
    pub async fn read(
        &self,
        key: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Series, TableError> {
        let mut days = Vec::new();
        let mut day = from.date_naive();
        while day <= to.date_naive() && days.len() < 3660 {
            days.push(day);
            day = match day.succ_opt() {
                Some(next) => next,
                None => break,
            };
        }
        let mut items: Vec<Item> = Vec::new();
        for chunk in days.chunks(100) {
            let mut keys: Vec<HashMap<String, AttributeValue>> = chunk
                .iter()
                .map(|d| HashMap::from([("id".to_string(), AttributeValue::S(day_id(key, *d)))]))
                .collect();
            // DynamoDB may leave keys unprocessed under load: asked again, a few times.
            for _ in 0..5 {
                if keys.is_empty() {
                    break;
                }
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut keys)))
                    .build()
                    .map_err(|e| {
                        TableError::retry(format!("the trend read cannot be built: {e}"))
                    })?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| failed(e).context("reading the trend points"))?;
                if let Some(found) = out.responses.and_then(|mut r| r.remove(&self.table)) {
                    items.extend(found);
                }
                keys = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
            }
            if !keys.is_empty() {
                return Err(TableError::retry(
                    "DynamoDB left trend days unread five times; try again",
                ));
            }
        }
        let mut series = Series::new(Position::default());
        // The newest day names the position best.
        items.sort_by_key(|item| text(item, "id"));
        for item in &items {
            series.position = Position {
                source: text(item, "pos_source").unwrap_or_default(),
                asset_position_id: text(item, "pos_id"),
                project: text(item, "pos_project"),
                site: text(item, "pos_site"),
                asset: text(item, "pos_asset"),
                position: text(item, "pos_position"),
            };
            let lines = item.get("points").and_then(|p| p.as_ss().ok());
            for point in lines.into_iter().flatten().filter_map(|l| decode(l)) {
                series.push(point);
            }
        }
        series.keep_between(from, to);
        Ok(series)
    }
}

fn text(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_point_is_one_line_and_back() {
        let point = Point {
            at: Utc.with_ymd_and_hms(2024, 3, 1, 8, 0, 7).unwrap()
                + chrono::Duration::milliseconds(476),
            velocity: Some(7.5307),
            velocity_axes: [Some(4.1419), None, Some(5.648)],
            acceleration: Some(0.1),
            temperature: Some(-3.25),
            iso_class: Some(IsoClass::II),
            models: [Some(Health::Alarm), None, Some(Health::Healthy)],
        };
        let line = encode(&point);
        assert_eq!(
            line,
            "2024-03-01T08:00:07.476Z|7.5307|4.1419||5.648|0.1|-3.25|CLASS2|ALARM||HEALTHY"
        );
        assert_eq!(decode(&line), Some(point));
        assert_eq!(decode("2024-03-01T08:00:07Z|1"), None);
        assert_eq!(decode("yesterday|||||||||||"), None);
    }

    #[test]
    fn days_are_items_of_their_position() {
        let day = NaiveDate::from_ymd_opt(2024, 3, 1).unwrap();
        assert_eq!(day_id("abc", day), "trend#abc#2024-03-01");
    }
}
