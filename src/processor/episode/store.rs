//! The episode records: one DynamoDB item per sensor position, in the idempotency table under
//! the key `episode#<position key>`, leased by one delivery at a time.
//!
//! Rules:
//! - the idempotency table, not a second one: the same schema (`id`, TTL `expiration`), the same
//!   IAM grant and one less thing to deploy; the `episode#` prefix keeps the two kinds of record
//!   apart (idempotency keys start with `MON`);
//! - [`EpisodeStore::lease`] is the shared lease ([`crate::aws::dynamo::take_lease`]): one
//!   conditional write that succeeds when no live lease is held and returns the record as it
//!   was. A lease that expired without being released means its
//!   holder stopped mid-way (`unclean`): S/4 is read again before acting on the record;
//! - [`EpisodeStore::save`] writes the record only while this delivery still holds the lease,
//!   and releases it when asked; [`EpisodeStore::give_back`] ends the lease without writing
//!   (the record could not be written, or the delivery failed mid-way), leaving `lease_until`
//!   in the past so that the next holder counts it unclean; a record whose `expiration` passed counts as absent, as
//!   DynamoDB deletes expired items lazily;
//! - the table unreachable is an error, which the processor answers 503: acting without the
//!   lease could let two containers create for one episode.

use std::future::Future;
use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;

use crate::aws::dynamo;

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
pub trait EpisodeStore: super::sites::SiteStore + Send + Sync {
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
    /// Gives the lease up without writing the record (it could not be written, or the delivery
    /// failed mid-way): the next holder finds the lease ended unclean and reads S/4 again.
    fn give_back(
        &self,
        position: &str,
        owner: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Every position's record: (position key, JSON).
    fn all(&self) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send;
    /// Lists a position in the charts index while a chart of it is `due` (`episode::chart`),
    /// or takes it off.
    fn chart_due(
        &self,
        position: &str,
        due: bool,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The positions listed in the charts index.
    fn charts_due(&self) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
}

/// The charts index: one item whose string set lists the positions with a chart due.
pub const CHARTS_DUE: &str = "charts#due";

fn failed<E>(e: SdkError<E>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    dynamo::failed(e).context("episode records")
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
        let now = dynamo::now();
        let key = format!("{PREFIX}{position}");
        let taken = dynamo::take_lease(&self.client, &self.table, &key, owner, now + for_, None)
            .await
            .map_err(|e| e.context("episode records"))?;
        let Some(old) = taken else {
            return Ok(Lease::Busy);
        };
        let live = dynamo::live(&old, now);
        let record = old
            .get("record")
            .and_then(|v| v.as_s().ok())
            .filter(|_| live)
            .cloned();
        Ok(Lease::Taken {
            unclean: live && dynamo::number(&old, "lease_until") > 0,
            record,
        })
    }

    async fn save(
        &self,
        position: &str,
        owner: &str,
        record: &str,
        release: bool,
    ) -> Result<(), StoreError> {
        let now = dynamo::now();
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
                    StoreError::retry("the position's lease was lost before its record was written")
                }
                _ => failed(e),
            })
    }

    async fn give_back(&self, position: &str, owner: &str) -> Result<(), StoreError> {
        let ended = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(format!("{PREFIX}{position}")))
            .condition_expression("lease_owner = :me")
            // Ended, not removed: `lease_until` set means the holder stopped mid-way.
            .update_expression("SET lease_until = :ended")
            .expression_attribute_values(":me", AttributeValue::S(owner.to_string()))
            .expression_attribute_values(":ended", AttributeValue::N("1".into()))
            .send()
            .await;
        match ended {
            Ok(_) => Ok(()),
            // Someone else holds it already: nothing of ours to give back.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(failed(e)),
        }
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

    async fn chart_due(&self, position: &str, due: bool) -> Result<(), StoreError> {
        let expression = if due {
            "ADD positions :p"
        } else {
            "DELETE positions :p"
        };
        self.client
            .update_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(CHARTS_DUE.into()))
            .update_expression(expression)
            .expression_attribute_values(":p", AttributeValue::Ss(vec![position.to_string()]))
            .send()
            .await
            .map(|_| ())
            .map_err(failed)
    }

    async fn charts_due(&self) -> Result<Vec<String>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(CHARTS_DUE.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed)?;
        Ok(out
            .item
            .and_then(|item| item.get("positions").and_then(|p| p.as_ss().ok()).cloned())
            .unwrap_or_default())
    }
}

/// The store, or why there is none.
fn table<T>(store: &Option<T>) -> Result<&T, StoreError> {
    store
        .as_ref()
        .ok_or_else(|| StoreError::retry("no table for episode records"))
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
        table(self)?.lease(position, owner, for_).await
    }

    async fn save(
        &self,
        position: &str,
        owner: &str,
        record: &str,
        release: bool,
    ) -> Result<(), StoreError> {
        table(self)?.save(position, owner, record, release).await
    }

    async fn give_back(&self, position: &str, owner: &str) -> Result<(), StoreError> {
        table(self)?.give_back(position, owner).await
    }

    async fn all(&self) -> Result<Vec<(String, String)>, StoreError> {
        match self {
            Some(store) => store.all().await,
            None => Ok(Vec::new()),
        }
    }

    async fn chart_due(&self, position: &str, due: bool) -> Result<(), StoreError> {
        table(self)?.chart_due(position, due).await
    }

    async fn charts_due(&self) -> Result<Vec<String>, StoreError> {
        match self {
            Some(store) => store.charts_due().await,
            None => Ok(Vec::new()),
        }
    }
}
