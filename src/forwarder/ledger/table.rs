//! The ledger's DynamoDB calls: the head's lease (the shared [`dynamo::take_lease`], whose
//! answer also says whether the head existed and whether the object is complete), its release,
//! and a page's read and set union.

use std::collections::HashSet;
use std::time::Instant;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::aws::dynamo;

use super::{Ledger, LedgerError};

/// What taking the lease found.
pub(super) enum Lease {
    Taken {
        /// The head existed: an invocation has been here before.
        existed: bool,
        complete: bool,
    },
    /// Another invocation holds it.
    Busy,
}

impl Ledger {
    fn expiration(&self) -> AttributeValue {
        AttributeValue::N((dynamo::now() + self.keep).as_secs().to_string())
    }

    pub(super) async fn lease(
        &self,
        id: &str,
        owner: &str,
        until: Instant,
    ) -> Result<Lease, LedgerError> {
        let now = dynamo::now();
        let until = now + until.saturating_duration_since(Instant::now());
        let taken = dynamo::take_lease(
            &self.client,
            &self.table,
            id,
            owner,
            until,
            Some(now + self.keep),
        )
        .await
        .map_err(|e| self.error(format!("cannot take the lease of {id}: {e}")))?;
        let Some(old) = taken else {
            return Ok(Lease::Busy);
        };
        let live = dynamo::live(&old, now);
        Ok(Lease::Taken {
            existed: live,
            complete: live && old.get("complete").and_then(|v| v.as_bool().ok()) == Some(&true),
        })
    }

    /// Gives the lease up (if still held by `owner`); `complete` marks the object done.
    pub(super) async fn release(
        &self,
        id: &str,
        owner: &str,
        complete: bool,
    ) -> Result<(), LedgerError> {
        let expression = if complete {
            "SET complete = :true REMOVE lease_owner, lease_until"
        } else {
            "REMOVE lease_owner, lease_until"
        };
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(id.to_string()))
            .update_expression(expression)
            .condition_expression("lease_owner = :me")
            .expression_attribute_values(":me", AttributeValue::S(owner.to_string()));
        if complete {
            update = update.expression_attribute_values(":true", AttributeValue::Bool(true));
        }
        match update.send().await {
            Ok(_) => Ok(()),
            // The lease lapsed and another invocation holds it now: nothing to give up.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                tracing::warn!(
                    progress = id,
                    "the object's lease had lapsed before it was released"
                );
                Ok(())
            }
            Err(e) => Err(self.error(format!("cannot release {id}: {}", dynamo::described(&e)))),
        }
    }

    pub(super) async fn read_page(&self, id: &str, page: u64) -> Result<HashSet<u64>, LedgerError> {
        let key = format!("{id}#{page}");
        let got = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(key.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error(format!("cannot read {key}: {}", dynamo::described(&e))))?;
        let Some(done) = got.item.as_ref().and_then(|i| i.get("done")) else {
            return Ok(HashSet::new());
        };
        let numbers = done
            .as_ns()
            .map_err(|_| self.error(format!("{key}: `done` is not a number set")))?;
        Ok(numbers.iter().filter_map(|n| n.parse().ok()).collect())
    }

    pub(super) async fn add(
        &self,
        id: &str,
        page: u64,
        ordinals: &[u64],
    ) -> Result<(), LedgerError> {
        let key = format!("{id}#{page}");
        let mut set: Vec<u64> = ordinals.to_vec();
        set.sort_unstable();
        set.dedup();
        self.client
            .update_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(key.clone()))
            .update_expression("SET expiration = :exp ADD done :ordinals")
            .expression_attribute_values(":exp", self.expiration())
            .expression_attribute_values(
                ":ordinals",
                AttributeValue::Ns(set.iter().map(u64::to_string).collect()),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                self.error(format!(
                    "cannot note done records in {key}: {}",
                    dynamo::described(&e)
                ))
            })
    }
}
