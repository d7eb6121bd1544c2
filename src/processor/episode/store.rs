//! The episode records: one DynamoDB item per sensor position, in the idempotency table under
//! the key `episode#<position key>`, leased by one delivery at a time.
//!
//! Rules:
//! - the idempotency table, not a second one: the same schema (`id`, TTL `expiration`), the same
//!   IAM grant and one less thing to deploy; the `episode#` prefix keeps the two kinds of record
//!   apart (idempotency keys start with `MON`);
//! - [`EpisodeStore::lease`] is one conditional write: it succeeds when no live lease is held,
//!   and returns the record as it was. A lease that expired without being released means its
//!   holder stopped mid-way (`unclean`): S/4 is read again before acting on the record;
//! - [`EpisodeStore::save`] writes the record only while this delivery still holds the lease,
//!   and releases it when asked; a record whose `expiration` passed counts as absent, as
//!   DynamoDB deletes expired items lazily;
//! - the table unreachable is an error, which the processor answers 503: acting without the
//!   lease could let two containers create for one episode.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use crate::processor::idempotency::{DynamoStore, StoreError};

/// The key prefix of episode records.
pub const PREFIX: &str = "episode#";

/// How long a position's record is kept after its last change.
pub const KEEP: Duration = Duration::from_secs(180 * 24 * 3600);

/// What [`EpisodeStore::lease`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lease {
    /// This delivery holds the position now. `record` is the stored JSON (none for a new
    /// position); `unclean` when the last holder never released it.
    Taken {
        record: Option<String>,
        unclean: bool,
    },
    /// Another delivery holds it.
    Busy,
}

/// Where episode records live.
pub trait EpisodeStore: Send + Sync {
    /// Whether records can be kept at all (without a table, episodes cannot be serialised and
    /// the rules act per event).
    fn keeps_episodes(&self) -> bool;
    fn lease(
        &self,
        position: &str,
        owner: &str,
        for_: Duration,
    ) -> impl Future<Output = Result<Lease, StoreError>> + Send;
    /// Writes the record while `owner` holds the lease; `release` gives the lease up.
    fn save(
        &self,
        position: &str,
        owner: &str,
        record: &str,
        release: bool,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Every position's record: (position key, JSON).
    fn all(&self) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send;
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn failed(e: impl std::error::Error) -> StoreError {
    StoreError(aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string())
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> u128 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

impl EpisodeStore for DynamoStore {
    fn keeps_episodes(&self) -> bool {
        true
    }

    async fn lease(
        &self,
        position: &str,
        owner: &str,
        for_: Duration,
    ) -> Result<Lease, StoreError> {
        let now = now();
        let taken = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(format!("{PREFIX}{position}")))
            .update_expression("SET lease_owner = :me, lease_until = :until")
            .condition_expression(
                "attribute_not_exists(lease_until) OR lease_until < :now_ms OR expiration < :now",
            )
            .expression_attribute_values(":me", AttributeValue::S(owner.to_string()))
            .expression_attribute_values(
                ":until",
                AttributeValue::N((now + for_).as_millis().to_string()),
            )
            .expression_attribute_values(":now_ms", AttributeValue::N(now.as_millis().to_string()))
            .expression_attribute_values(":now", AttributeValue::N(now.as_secs().to_string()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match taken {
            Ok(out) => {
                let old = out.attributes.unwrap_or_default();
                let live = number(&old, "expiration") >= now.as_secs() as u128;
                let record = old
                    .get("record")
                    .and_then(|v| v.as_s().ok())
                    .filter(|_| live)
                    .cloned();
                Ok(Lease::Taken {
                    unclean: live && number(&old, "lease_until") > 0,
                    record,
                })
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(Lease::Busy)
            }
            Err(e) => Err(failed(e)),
        }
    }

    async fn save(
        &self,
        position: &str,
        owner: &str,
        record: &str,
        release: bool,
    ) -> Result<(), StoreError> {
        let now = now();
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(format!("{PREFIX}{position}")))
            .condition_expression("lease_owner = :me")
            .expression_attribute_values(":me", AttributeValue::S(owner.to_string()))
            .expression_attribute_values(":record", AttributeValue::S(record.to_string()))
            .expression_attribute_values(
                ":exp",
                AttributeValue::N((now + KEEP).as_secs().to_string()),
            );
        update = if release {
            update.update_expression("SET #record = :record, expiration = :exp REMOVE lease_until")
        } else {
            update.update_expression("SET #record = :record, expiration = :exp")
        };
        update
            .expression_attribute_names("#record", "record")
            .send()
            .await
            .map(|_| ())
            .map_err(|e| match e.as_service_error() {
                Some(s) if s.is_conditional_check_failed_exception() => {
                    StoreError("the position's lease was lost before its record was written".into())
                }
                _ => failed(e),
            })
    }

    async fn all(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut found = Vec::new();
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("begins_with(id, :prefix)")
            .expression_attribute_values(":prefix", AttributeValue::S(PREFIX.into()))
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            let item = item.map_err(failed)?;
            let id = item.get("id").and_then(|v| v.as_s().ok());
            let record = item.get("record").and_then(|v| v.as_s().ok());
            if let (Some(id), Some(record)) = (id, record) {
                let key = id.trim_start_matches(PREFIX).to_string();
                found.push((key, record.clone()));
            }
        }
        Ok(found)
    }
}

/// Without a table there are no episode records.
impl<T: EpisodeStore> EpisodeStore for Option<T> {
    fn keeps_episodes(&self) -> bool {
        self.as_ref().is_some_and(T::keeps_episodes)
    }

    async fn lease(
        &self,
        position: &str,
        owner: &str,
        for_: Duration,
    ) -> Result<Lease, StoreError> {
        match self {
            Some(store) => store.lease(position, owner, for_).await,
            None => Err(StoreError("no table for episode records".into())),
        }
    }

    async fn save(
        &self,
        position: &str,
        owner: &str,
        record: &str,
        release: bool,
    ) -> Result<(), StoreError> {
        match self {
            Some(store) => store.save(position, owner, record, release).await,
            None => Err(StoreError("no table for episode records".into())),
        }
    }

    async fn all(&self) -> Result<Vec<(String, String)>, StoreError> {
        match self {
            Some(store) => store.all().await,
            None => Ok(Vec::new()),
        }
    }
}
