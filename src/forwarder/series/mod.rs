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
//!   position and is not kept;
//! - with a trend queue (`TREND_QUEUE`, [`queue`]), the gathered days are sent to the queue in
//!   a few messages instead (built beside the publishing), and written when the queue gives
//!   them back
//!   ([`SeriesKeeper::keep_message`]): reading an object then costs a message per 240 KiB of
//!   points instead of a write per position and day.

pub mod queue;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use chrono::NaiveDate;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::trend::store::{Day, Kept, MAX_POINTS_PER_DAY, TrendTable};
use crate::trend::{Point, Position};

use queue::TrendQueue;

/// Points held before the gathered days are written.
pub const MAX_GATHERED: usize = 2000;

/// Day items written at once.
pub const WRITES_IN_FLIGHT: usize = 16;

/// The table and what came of its writes, shared by every object of the warm Lambda.
#[derive(Debug, Clone)]
pub struct SeriesKeeper {
    table: TrendTable,
    queue: Option<TrendQueue>,
    limit: Arc<Semaphore>,
    kept: Arc<AtomicU64>,
    not_kept: Arc<AtomicU64>,
    queued: Arc<AtomicU64>,
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
            queue: None,
            limit: Arc::new(Semaphore::new(WRITES_IN_FLIGHT)),
            kept: Arc::new(AtomicU64::new(0)),
            not_kept: Arc::new(AtomicU64::new(0)),
            queued: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Hands the points to `queue` instead of writing them while objects are read.
    pub fn with_queue(mut self, queue: Option<TrendQueue>) -> SeriesKeeper {
        self.queue = queue;
        self
    }

    /// Points handed to the trend queue since the keeper was made.
    pub fn queued(&self) -> u64 {
        self.queued.load(Ordering::Relaxed)
    }

    /// Points kept and not kept since the keeper was made.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.kept.load(Ordering::Relaxed),
            self.not_kept.load(Ordering::Relaxed),
        )
    }

    /// Starts keeping what was gathered from `object` (its label, for the log) in `writes`:
    /// one write a day, or a message per [`queue::MAX_MESSAGE_BYTES`] with a trend queue; each
    /// gives up at `deadline`.
    pub fn keep(
        &self,
        gathered: Gathered,
        object: &str,
        deadline: Instant,
        writes: &mut JoinSet<()>,
    ) {
        let days: Vec<Day> = gathered
            .days
            .into_iter()
            .map(|((key, day), (position, points))| Day {
                key,
                position,
                day,
                points,
            })
            .collect();
        let Some(queue) = self.queue.clone() else {
            for day in days {
                let this = self.clone();
                let object = object.to_string();
                writes.spawn(async move { this.write(&object, day, deadline).await });
            }
            return;
        };
        // Built in the task, beside the reading of the rest of the object.
        let this = self.clone();
        let object = object.to_string();
        writes.spawn(async move {
            for (body, carried) in queue::messages(&object, days) {
                this.send(&queue, &object, body, carried, deadline).await;
            }
        });
    }

    /// Sends one message by `deadline`; its days are written directly when it cannot be.
    async fn send(
        &self,
        queue: &TrendQueue,
        object: &str,
        body: String,
        carried: Vec<Day>,
        deadline: Instant,
    ) {
        let points: usize = carried.iter().map(|d| d.points.len()).sum();
        match self.limited(deadline, "sent", queue.send(body)).await {
            Ok(()) => {
                self.queued.fetch_add(points as u64, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::warn!(object = %object, points, error = %e, "trend points not queued: written directly instead");
                for day in carried {
                    self.write(object, day, deadline).await;
                }
            }
        }
    }

    /// Runs `work` holding one of the [`WRITES_IN_FLIGHT`] permits, given up at `deadline`
    /// (then it was not `done`).
    async fn limited<T>(
        &self,
        deadline: Instant,
        done: &str,
        work: impl Future<Output = Result<T, String>>,
    ) -> Result<T, String> {
        let limited = async {
            let _permit = self.limit.acquire().await;
            work.await
        };
        tokio::time::timeout_at(deadline.into(), limited)
            .await
            .unwrap_or_else(|_| Err(format!("not {done} by the invocation's deadline")))
    }

    /// Writes one day's points by `deadline`.
    async fn write_day(&self, day: &Day, deadline: Instant) -> Result<Kept, String> {
        let write = async { self.table.keep(day).await.map_err(|e| e.to_string()) };
        self.limited(deadline, "written", write).await
    }

    /// Writes one day's points by `deadline`, counting and logging what came of it.
    async fn write(&self, object: &str, day: Day, deadline: Instant) {
        let outcome = self.write_day(&day, deadline).await;
        self.settle(object, &day, outcome);
    }

    /// Writes the days of a message the trend queue gave back; `Err` (the message goes back to
    /// the queue) when a day could not be written.
    pub async fn keep_message(&self, body: &str, deadline: Instant) -> Result<(), String> {
        let message = queue::read(body)?;
        let mut writes = JoinSet::new();
        for queued in message.days {
            let this = self.clone();
            let lines = queued.points.len();
            let day = queued.into_day();
            let unreadable = lines - day.points.len();
            if unreadable > 0 {
                // Not ours to write: counted and said, never written wrong.
                self.not_kept
                    .fetch_add(unreadable as u64, Ordering::Relaxed);
                tracing::warn!(object = %message.object, position_key = %day.key, day = %day.day, points = unreadable, "trend points in the queue's message cannot be read; they are not kept");
            }
            writes.spawn(async move {
                match this.write_day(&day, deadline).await {
                    Ok(Kept::Kept) => {
                        this.kept
                            .fetch_add(day.points.len() as u64, Ordering::Relaxed);
                        Ok(())
                    }
                    Ok(Kept::DayFull) => {
                        this.settle("the trend queue", &day, Ok(Kept::DayFull));
                        Ok(())
                    }
                    Err(e) => Err(format!("{} {}: {e}", day.key, day.day)),
                }
            });
        }
        let mut failed = Vec::new();
        while let Some(done) = writes.join_next().await {
            match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failed.push(e),
                Err(e) => failed.push(format!("a write stopped: {e}")),
            }
        }
        match failed.first() {
            None => Ok(()),
            Some(first) => Err(format!(
                "{} of the message's days not written (first: {first}); the queue gives it back (from {})",
                failed.len(),
                message.object
            )),
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
