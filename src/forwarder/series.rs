//! The measurement series the forwarder keeps for trend charts (`TREND_TABLE`): each Monitron
//! measurement it reads becomes a point of its position's day item ([`crate::trend::store`]).
//!
//! Rules:
//! - an object's (or a Kinesis batch's) points are gathered per position and UTC day; each day
//!   is written once, in one `UpdateItem`, when the object ends or when [`MAX_GATHERED`] points
//!   are held (memory stays bounded whatever the object);
//! - the writes run beside the publishing, at most [`WRITES_IN_FLIGHT`] at a time, and end by
//!   the invocation's deadline: keeping the series never holds an event back;
//! - a write that fails, or a day that is full, is logged with the position and day and
//!   counted (`TrendPointsNotKept`): it never fails the object, whose events are what matter;
//!   the next object of the position adds its own points;
//! - a record with neither an `assetPositionId` nor site, asset and position names has no
//!   position and is not kept.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use chrono::NaiveDate;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::trend::store::{Day, Kept, MAX_POINTS_PER_DAY, TrendTable};
use crate::trend::{Point, Position};

/// Points held before the gathered days are written.
pub const MAX_GATHERED: usize = 2000;

/// Day items written at once.
pub const WRITES_IN_FLIGHT: usize = 16;

/// The table and what came of its writes, shared by every object of the warm Lambda.
#[derive(Debug, Clone)]
pub struct SeriesKeeper {
    table: TrendTable,
    limit: Arc<Semaphore>,
    kept: Arc<AtomicU64>,
    not_kept: Arc<AtomicU64>,
}

/// One position's points of one day, gathered from an object.
#[derive(Debug, Default)]
pub struct Gathered {
    days: HashMap<(String, NaiveDate), (Position, Vec<Point>)>,
    points: usize,
}

impl Gathered {
    /// Adds a point; `true` when [`MAX_GATHERED`] are held and they should be written.
    pub fn add(&mut self, position: Position, point: Point) -> bool {
        let Some(key) = position.key() else {
            return false;
        };
        let day = point.at.date_naive();
        self.days
            .entry((key, day))
            .or_insert_with(|| (position, Vec::new()))
            .1
            .push(point);
        self.points += 1;
        self.points >= MAX_GATHERED
    }
}

impl SeriesKeeper {
    pub fn new(table: TrendTable) -> SeriesKeeper {
        SeriesKeeper {
            table,
            limit: Arc::new(Semaphore::new(WRITES_IN_FLIGHT)),
            kept: Arc::new(AtomicU64::new(0)),
            not_kept: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Points kept and not kept since the keeper was made.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.kept.load(Ordering::Relaxed),
            self.not_kept.load(Ordering::Relaxed),
        )
    }

    /// Starts writing what was gathered from `object` (its label, for the log) into `writes`,
    /// one request a day; each write gives up at `deadline`.
    pub fn keep(
        &self,
        gathered: Gathered,
        object: &str,
        deadline: Instant,
        writes: &mut JoinSet<()>,
    ) {
        for ((key, day), (position, points)) in gathered.days {
            let day = Day {
                key,
                position,
                day,
                points,
            };
            let this = self.clone();
            let object = object.to_string();
            writes.spawn(async move {
                let write = async {
                    let _permit = this.limit.acquire().await;
                    this.table.keep(&day).await
                };
                let outcome = match tokio::time::timeout_at(deadline.into(), write).await {
                    Ok(Ok(kept)) => Ok(kept),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("not written by the invocation's deadline".to_string()),
                };
                this.settle(&object, &day, outcome);
            });
        }
    }

    /// Counts what came of one day's points, and logs a failure.
    fn settle(&self, object: &str, day: &Day, outcome: Result<Kept, String>) {
        let count = day.points.len() as u64;
        let failure = match outcome {
            Ok(Kept::Kept) => {
                self.kept.fetch_add(count, Ordering::Relaxed);
                return;
            }
            Ok(Kept::DayFull) => format!("the day already holds {MAX_POINTS_PER_DAY} points"),
            Err(e) => e,
        };
        self.not_kept.fetch_add(count, Ordering::Relaxed);
        tracing::warn!(
            object = %object,
            position = %day.position.title(),
            position_key = %day.key,
            day = %day.day,
            points = count,
            error = %failure,
            "trend points not kept (the events are published all the same); the chart of this day will miss them"
        );
    }
}
