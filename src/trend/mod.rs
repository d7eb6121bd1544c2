//! A sensor position's measurement trend: the points Monitron's hourly `measurement` records
//! carry, kept as a series, and drawn as the chart a planner sees next to the notification.
//!
//! - [`point`]: one measurement record → one [`Point`] (v2 `eventPayload.features`, v1
//!   `measurement.features`) and the [`Position`] it belongs to;
//! - [`iso`]: the ISO 10816-1 / 20816-1 velocity zone limits of a machine class, the reference
//!   lines of the chart;
//! - [`store`]: a position's points in DynamoDB, one item per UTC day (`TREND_TABLE`);
//! - [`chart`]: a [`Series`] → a PNG (for S/4 and `e2b trend`) or an SVG (for the console),
//!   the same drawing.
//!
//! Rules:
//! - a position is known by the same key as the processor's alarm episodes
//!   ([`position_key`]): its `assetPositionId` within the record's source, else its site, asset
//!   and position names;
//! - a point is known by its time: the same record read twice is the same point, and a series
//!   holds one point per time ([`Series::push`] keeps the first);
//! - a value that is missing or not a number is absent from the point, never zero.

pub mod chart;
pub mod iso;
pub mod point;
pub mod store;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

pub use iso::IsoClass;
pub use point::{Health, Point, Position};

/// How many days of a position's measurements a chart shows by default (`TREND_DAYS`).
pub const DEFAULT_DAYS: u32 = 30;

/// The short stable key of a position (SHA-256 of its parts, 32 hex digits): by its
/// `assetPositionId` within `source` when it has one, else by its site, asset and position
/// names; `None` when it has neither. The processor's episodes key positions the same way.
pub fn position_key(
    source: &str,
    asset_position_id: Option<&str>,
    names: Option<(&str, &str, &str)>,
) -> Option<String> {
    let parts: Vec<&str> = match asset_position_id.filter(|id| !id.is_empty()) {
        Some(id) => vec!["id", source, id],
        None => {
            let (site, asset, position) = names?;
            vec!["names", source, site, asset, position]
        }
    };
    let digest = Sha256::digest(parts.join("\n").as_bytes());
    Some(digest.iter().take(16).map(|b| format!("{b:02x}")).collect())
}

/// One position's points in time order, one per time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub position: Position,
    points: Vec<Point>,
}

impl Series {
    pub fn new(position: Position) -> Series {
        Series {
            position,
            points: Vec::new(),
        }
    }

    /// Adds a point; a second point at the same time is the same point and is dropped.
    pub fn push(&mut self, point: Point) {
        match self.points.binary_search_by(|p| p.at.cmp(&point.at)) {
            Ok(_) => {}
            Err(at) => self.points.insert(at, point),
        }
    }

    /// The points, oldest first.
    pub fn points(&self) -> &[Point] {
        &self.points
    }

    /// Only the points in `[from, to]`.
    pub fn keep_between(&mut self, from: DateTime<Utc>, to: DateTime<Utc>) {
        self.points.retain(|p| p.at >= from && p.at <= to);
    }

    /// The position's ISO class: the newest point's that names one.
    pub fn iso_class(&self) -> Option<IsoClass> {
        self.points.iter().rev().find_map(|p| p.iso_class)
    }
}

#[cfg(test)]
mod tests;
