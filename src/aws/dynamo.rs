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
//!   round trip; someone else's live lease is `None`, not an error;
//! - a shared request rate is a bucket of tokens per window ([`take_token`]): one item per
//!   window, counted up by a conditional `ADD` while below the limit;
//! - every failed call is a [`TableError`] that says what it leaves to do ([`disposition_of`],
//!   the table in `docs/actions.md`):
//!
//! | DynamoDB says | disposition | why |
//! | --- | --- | --- |
//! | `ValidationException`, `SerializationException`, `ItemCollectionSizeLimitExceededException`, `ConditionalCheckFailedException` where no condition was expected, a request the SDK could not build | give up | the request itself is wrong (an item over 400 KB, a bad expression): sent again it fails again |
//! | `ProvisionedThroughputExceededException`, `ThrottlingException`, `RequestLimitExceeded`, `LimitExceededException`, `TransactionConflictException`, `InternalServerError`, `ServiceUnavailable`, any 5xx, a timeout, no connection | retry | a later attempt can succeed |
//! | `ResourceNotFoundException`, `AccessDeniedException`, `UnrecognizedClientException`, `InvalidSignatureException`, `ExpiredTokenException`, `MissingAuthenticationTokenException`, `IncompleteSignature` | retry | the table, its permissions or the credentials are wrong for every event alike: nothing about the event is, so the mesh keeps it until the setting is fixed (the failure alarm says which) |
//! | any other 4xx code | give up | request-shaped |

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use crate::outcome::{Disposed, Disposition};

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

/// A DynamoDB call that failed: what happened, and what it leaves to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct TableError {
    pub reason: String,
    pub disposition: Disposition,
}

impl Disposed for TableError {
    fn disposition(&self) -> Disposition {
        self.disposition
    }
}

impl TableError {
    /// A failure a later attempt can cure.
    pub fn retry(reason: impl Into<String>) -> TableError {
        TableError {
            reason: reason.into(),
            disposition: Disposition::Retry,
        }
    }

    /// The same failure, its reason prefixed with what was being done.
    pub fn context(self, what: &str) -> TableError {
        TableError {
            reason: format!("{what}: {}", self.reason),
            ..self
        }
    }
}

/// A failed SDK call, classified by [`disposition_of`].
pub fn failed<E>(e: SdkError<E>) -> TableError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let (disposition, reason) = match &e {
        // DynamoDB's own words: `ValidationException: Item size to update has exceeded ...`.
        SdkError::ServiceError(service) => (
            disposition_of(service.err().code(), service.raw().status().as_u16()),
            format!(
                "{}: {}",
                service.err().code().unwrap_or("an error without a code"),
                service.err().message().unwrap_or("no message"),
            ),
        ),
        // The SDK refused to build the request: a defect, the same every time.
        SdkError::ConstructionFailure(_) => (Disposition::GiveUp, described(&e)),
        // Timeouts, no connection, an answer cut off: a later attempt can succeed.
        _ => (Disposition::Retry, described(&e)),
    };
    TableError {
        reason,
        disposition,
    }
}

/// What a DynamoDB error code (with its HTTP status) leaves to do: the table of the module doc.
pub fn disposition_of(code: Option<&str>, status: u16) -> Disposition {
    match code.unwrap_or_default() {
        "ValidationException"
        | "SerializationException"
        | "ItemCollectionSizeLimitExceededException"
        | "ConditionalCheckFailedException" => Disposition::GiveUp,
        "ProvisionedThroughputExceededException"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "LimitExceededException"
        | "TransactionConflictException"
        | "InternalServerError"
        | "ServiceUnavailable" => Disposition::Retry,
        "ResourceNotFoundException"
        | "AccessDeniedException"
        | "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "ExpiredTokenException"
        | "MissingAuthenticationTokenException"
        | "IncompleteSignature" => Disposition::Retry,
        _ if (400..500).contains(&status) => Disposition::GiveUp,
        _ => Disposition::Retry,
    }
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
) -> Result<Option<Item>, TableError> {
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
        Err(e) => Err(failed(e)),
    }
}

/// Takes one of the `per_window` tokens of item `key`'s bucket for the current window of
/// `window` (a fixed-window bucket, refilled every window: one conditional `ADD`, no read, any
/// number of takers). `Ok(None)` when taken; `Ok(Some(wait))` when this window's are gone,
/// `wait` being the time to the next one. The per-window items expire after two minutes.
pub async fn take_token(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    key: &str,
    per_window: u32,
    window: Duration,
) -> Result<Option<Duration>, TableError> {
    let now = now();
    let length = window.as_millis().max(1);
    let index = now.as_millis() / length;
    let taken = client
        .update_item()
        .table_name(table)
        .key("id", AttributeValue::S(format!("{key}#{index}")))
        .update_expression("ADD taken :one SET expiration = :exp")
        .condition_expression("attribute_not_exists(taken) OR taken < :limit")
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .expression_attribute_values(":limit", AttributeValue::N(per_window.to_string()))
        .expression_attribute_values(":exp", AttributeValue::N((now.as_secs() + 120).to_string()))
        .send()
        .await;
    match taken {
        Ok(_) => Ok(None),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
        {
            let next = u64::try_from((index + 1) * length).unwrap_or(u64::MAX);
            Ok(Some(Duration::from_millis(next).saturating_sub(now)))
        }
        Err(e) => Err(failed(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One case per error code the processor and the forwarder can meet from DynamoDB.
    #[test]
    fn every_dynamodb_error_code_says_whether_a_retry_can_help() {
        use Disposition::{GiveUp, Retry};
        let cases = [
            ("ValidationException", 400, GiveUp),
            ("SerializationException", 400, GiveUp),
            ("ItemCollectionSizeLimitExceededException", 400, GiveUp),
            ("ConditionalCheckFailedException", 400, GiveUp),
            ("ProvisionedThroughputExceededException", 400, Retry),
            ("ThrottlingException", 400, Retry),
            ("RequestLimitExceeded", 400, Retry),
            ("LimitExceededException", 400, Retry),
            ("TransactionConflictException", 400, Retry),
            ("InternalServerError", 500, Retry),
            ("ServiceUnavailable", 503, Retry),
            ("ResourceNotFoundException", 400, Retry),
            ("AccessDeniedException", 400, Retry),
            ("UnrecognizedClientException", 400, Retry),
            ("InvalidSignatureException", 400, Retry),
            ("ExpiredTokenException", 400, Retry),
            ("MissingAuthenticationTokenException", 403, Retry),
            ("IncompleteSignature", 400, Retry),
            ("SomeNewRequestException", 400, GiveUp),
            ("SomeNewServerFault", 500, Retry),
        ];
        for (code, status, expected) in cases {
            assert_eq!(disposition_of(Some(code), status), expected, "{code}");
        }
        assert_eq!(disposition_of(None, 502), Retry, "a gateway's answer");
        assert_eq!(disposition_of(None, 413), GiveUp, "a request too large");
    }
}
