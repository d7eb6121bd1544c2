//! What the tables of both paths share (the processor's idempotency and episode records, the
//! forwarder's delivery ledger): partition key `id` (S), TTL attribute `expiration`, and one way
//! to lease an item.
//!
//! Rules:
//! - times count from the Unix epoch: `expiration` in seconds (DynamoDB's TTL), `lease_until`
//!   in milliseconds;
//! - an item whose `expiration` has passed counts as absent, whether or not DynamoDB has deleted
//!   it yet (it deletes expired items lazily);
//! - a lease is one conditional UpdateItem setting `lease_owner` and `lease_until`: it is free
//!   when the item has no `lease_until`, when that has passed, or when the item has expired. The
//!   update returns the item as it was, so the holder reads what the last one left in the same
//!   round trip; someone else's live lease is `None`, not an error.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

/// An item's attributes.
pub type Item = HashMap<String, AttributeValue>;

/// Now, since the Unix epoch.
pub fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// A number attribute (0 when absent or not a number).
pub fn number(item: &Item, name: &str) -> u128 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Whether the item has not expired at `now`.
pub fn live(item: &Item, now: Duration) -> bool {
    number(item, "expiration") >= u128::from(now.as_secs())
}

/// An SDK error with its causes, for a message.
pub fn described(e: &impl std::error::Error) -> String {
    aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string()
}

/// Takes the lease of item `id` for `owner` until `until` (since the epoch); with `expiration`,
/// also sets the item's TTL. `Ok(None)` when another holder's lease is live; otherwise the item
/// as it was (empty for a new one).
pub async fn take_lease(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    id: &str,
    owner: &str,
    until: Duration,
    expiration: Option<Duration>,
) -> Result<Option<Item>, String> {
    let now = now();
    let mut update = client
        .update_item()
        .table_name(table)
        .key("id", AttributeValue::S(id.to_string()))
        .condition_expression(
            "attribute_not_exists(lease_until) OR lease_until < :now_ms OR expiration < :now",
        )
        .expression_attribute_values(":me", AttributeValue::S(owner.to_string()))
        .expression_attribute_values(":until", AttributeValue::N(until.as_millis().to_string()))
        .expression_attribute_values(":now_ms", AttributeValue::N(now.as_millis().to_string()))
        .expression_attribute_values(":now", AttributeValue::N(now.as_secs().to_string()))
        .return_values(ReturnValue::AllOld);
    update = match expiration {
        Some(at) => update
            .update_expression("SET lease_owner = :me, lease_until = :until, expiration = :exp")
            .expression_attribute_values(":exp", AttributeValue::N(at.as_secs().to_string())),
        None => update.update_expression("SET lease_owner = :me, lease_until = :until"),
    };
    match update.send().await {
        Ok(out) => Ok(Some(out.attributes.unwrap_or_default())),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(described(&e)),
    }
}
