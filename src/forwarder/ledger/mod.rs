//! The delivery ledger: which events of one object version are done (the broker acknowledged
//! them, or refused them and the refusal is recorded), kept in DynamoDB so that a retried
//! invocation publishes only what is missing.
//!
//! Rules:
//! - an object version is named by bucket, key and version id, or ETag where the bucket keeps
//!   no versions: a new upload under the same key is a new object. An object named without
//!   either (`e2b replay`, which re-sends on purpose) is sent whole, without the ledger;
//! - a record is named by its ordinal in the object ([`RecordAt::ordinal`]), the same for every
//!   read of one version;
//! - items, in a table with partition key `id` (S) and TTL attribute `expiration` (the
//!   processor's idempotency table can serve): `progress#<object>` (the head: the lease, and
//!   `complete`) and `progress#<object>#<page>` per [`PAGE`] ordinals, holding the done
//!   ordinals as a number set. An item stays far below DynamoDB's 400 KB whatever the object;
//! - done ordinals are added with `ADD`, a set union, in batches ([`BATCH`] per page, or after
//!   [`BATCH_AFTER`]) while publishing goes on, and the rest at the object's end;
//! - one invocation at a time per object: the head is leased conditionally until the holder's
//!   deadline. Another invocation (S3 notifies twice, a retry overtakes) waits for the lease up
//!   to its own deadline, then reads what was done and publishes the rest; a lease left by a
//!   killed invocation lapses at that invocation's deadline;
//! - a first read (no head before the lease) reads no pages; a later one reads a page when it
//!   reaches the page's first event;
//! - an object whose events are all done is marked complete: a later notification of it is
//!   acknowledged without reading it;
//! - every item expires after `PROGRESS_KEEP_DAYS` (7 by default), longer than Lambda retries
//!   an asynchronous event (6 hours) and than an SQS queue keeps a message (14 days at most is
//!   the one case to set it higher for);
//! - the table unreachable fails the object (Lambda retries it): nothing is published without
//!   knowing what was done.

mod table;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::aws::s3::ObjectRef;
#[cfg(doc)]
use crate::event::RecordAt;

/// Ordinals per page item.
pub const PAGE: u64 = 1024;
/// Done ordinals of one page written together.
pub const BATCH: usize = 64;
/// The longest a done ordinal waits before it is written.
pub const BATCH_AFTER: Duration = Duration::from_millis(250);
/// Pause between two looks at a busy lease.
const LEASE_POLL: Duration = Duration::from_millis(500);

/// The ledger's table.
#[derive(Debug, Clone)]
pub struct Ledger {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
    /// How long items are kept (`PROGRESS_KEEP_DAYS`).
    pub keep: Duration,
}

/// Why the ledger could not be used: the object is retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error(
        "progress table {table}: {reason} (check that the table exists and the function may use it)"
    )]
    Table { table: String, reason: String },
    #[error(
        "another invocation is still forwarding this object (its lease lasts until its deadline); this one retries later"
    )]
    Busy,
}

/// What the ledger says about an object.
#[derive(Debug)]
pub enum Opened {
    /// Every event was done by an earlier invocation.
    Complete,
    /// This invocation holds the object now.
    Held(Progress),
}

/// One held object: what is done, as far as read, and the lease.
#[derive(Debug)]
pub struct Progress {
    /// The head item's id.
    id: String,
    owner: String,
    /// No invocation had touched the object before: nothing is done.
    fresh: bool,
    /// Pages read so far: their done ordinals.
    pages: HashMap<u64, HashSet<u64>>,
}

/// The id of an object version in the ledger; `None` without a version id or ETag.
pub fn object_id(object: &ObjectRef) -> Option<String> {
    let version = object
        .version_id
        .as_deref()
        .map(|v| format!("v={v}"))
        .or_else(|| {
            let etag = object.etag.as_deref()?.trim_matches('"');
            Some(format!("etag={etag}"))
        })?;
    Some(format!("progress#{}#{version}", object.location))
}

impl Ledger {
    /// Takes the lease of the object `id` names (until `hold_until`), waiting for another
    /// holder up to `deadline`.
    pub async fn open(
        &self,
        id: String,
        hold_until: Instant,
        deadline: Instant,
    ) -> Result<Opened, LedgerError> {
        let owner = format!("{:016x}", fastrand::u64(..));
        loop {
            match self.lease(&id, &owner, hold_until).await? {
                table::Lease::Taken { complete: true, .. } => {
                    self.release(&id, &owner, false).await?;
                    return Ok(Opened::Complete);
                }
                table::Lease::Taken { existed, .. } => {
                    return Ok(Opened::Held(Progress {
                        id,
                        owner,
                        fresh: !existed,
                        pages: HashMap::new(),
                    }));
                }
                table::Lease::Busy => {
                    let pause = LEASE_POLL + Duration::from_millis(fastrand::u64(..100));
                    if Instant::now() + pause >= deadline {
                        return Err(LedgerError::Busy);
                    }
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    /// Whether the record at `ordinal` is done; reads its page the first time.
    pub async fn is_done(
        &self,
        progress: &mut Progress,
        ordinal: u64,
    ) -> Result<bool, LedgerError> {
        if progress.fresh {
            return Ok(false);
        }
        let page = ordinal / PAGE;
        if !progress.pages.contains_key(&page) {
            let done = self.read_page(&progress.id, page).await?;
            progress.pages.insert(page, done);
        }
        Ok(progress
            .pages
            .get(&page)
            .is_some_and(|d| d.contains(&ordinal)))
    }

    /// A writer of done ordinals for the held object, running until its sender is dropped.
    pub fn notes(&self, progress: &Progress) -> (Notes, NoteWriter) {
        let (tx, rx) = mpsc::channel(4 * BATCH);
        let writer = tokio::spawn(write_notes(self.clone(), progress.id.clone(), rx));
        (Notes(tx), NoteWriter(writer))
    }

    /// Gives the object up; `complete` marks every event done.
    pub async fn close(&self, progress: Progress, complete: bool) -> Result<(), LedgerError> {
        self.release(&progress.id, &progress.owner, complete).await
    }

    fn error(&self, reason: String) -> LedgerError {
        LedgerError::Table {
            table: self.table.clone(),
            reason,
        }
    }
}

/// Where the publishers note done ordinals.
#[derive(Debug, Clone)]
pub struct Notes(mpsc::Sender<u64>);

impl Notes {
    /// Notes a done record; false if the writer has stopped.
    pub async fn done(&self, ordinal: u64) -> bool {
        self.0.send(ordinal).await.is_ok()
    }
}

/// The running writer; [`NoteWriter::finish`] waits for the last batch.
#[derive(Debug)]
pub struct NoteWriter(tokio::task::JoinHandle<Result<u64, LedgerError>>);

impl NoteWriter {
    /// How many ordinals were written, once every [`Notes`] is dropped.
    pub async fn finish(self) -> Result<u64, LedgerError> {
        match self.0.await {
            Ok(result) => result,
            Err(e) => Err(LedgerError::Table {
                table: "(writer)".into(),
                reason: format!("the progress writer failed: {e}"),
            }),
        }
    }
}

/// Collects done ordinals by page and writes a page's batch when it is full, when the oldest
/// waited [`BATCH_AFTER`], and at the end. After a failed write it keeps draining (so that
/// publishers never block) and reports the first error.
async fn write_notes(
    ledger: Ledger,
    id: String,
    mut rx: mpsc::Receiver<u64>,
) -> Result<u64, LedgerError> {
    let mut waiting: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let mut oldest: Option<tokio::time::Instant> = None;
    let mut written = 0u64;
    let mut failed: Option<LedgerError> = None;
    loop {
        let next = match oldest {
            Some(since) => match tokio::time::timeout_at(since + BATCH_AFTER, rx.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    let pages: Vec<u64> = waiting.keys().copied().collect();
                    for page in pages {
                        flush(&ledger, &id, &mut waiting, page, &mut written, &mut failed).await;
                    }
                    oldest = None;
                    continue;
                }
            },
            None => rx.recv().await,
        };
        let Some(ordinal) = next else { break };
        let page = ordinal / PAGE;
        let batch = waiting.entry(page).or_default();
        batch.push(ordinal);
        oldest.get_or_insert_with(tokio::time::Instant::now);
        if batch.len() >= BATCH {
            flush(&ledger, &id, &mut waiting, page, &mut written, &mut failed).await;
            if waiting.is_empty() {
                oldest = None;
            }
        }
    }
    let pages: Vec<u64> = waiting.keys().copied().collect();
    for page in pages {
        flush(&ledger, &id, &mut waiting, page, &mut written, &mut failed).await;
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(written),
    }
}

async fn flush(
    ledger: &Ledger,
    id: &str,
    waiting: &mut BTreeMap<u64, Vec<u64>>,
    page: u64,
    written: &mut u64,
    failed: &mut Option<LedgerError>,
) {
    let Some(batch) = waiting.remove(&page) else {
        return;
    };
    if failed.is_some() {
        return;
    }
    match ledger.add(id, page, &batch).await {
        Ok(()) => *written += batch.len() as u64,
        Err(e) => *failed = Some(e),
    }
}

#[cfg(test)]
mod tests;
