//! Serialising deliveries of the same event across warm containers: a DynamoDB record per
//! external reference, written conditionally (the usual Lambda idempotency pattern).
//!
//! `begin` writes `IN_PROGRESS` with an expiry unless a live record exists; `complete` turns it
//! into `COMPLETED` with the notification number; `release` deletes it when nothing was done so
//! that a redelivery decides again; `pause` keeps an action's finished steps (`PARTIAL`) so
//! that the next delivery resumes after them instead of repeating them. The S/4 lookup by external reference stays the source of truth when
//! the record is missing or expired; while the table cannot be reached the processor answers 503
//! rather than risk a parallel delivery creating too.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;

use crate::aws::dynamo::now;

/// What `begin` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// This delivery owns the event now.
    Started,
    /// Another delivery is working on it (until its record expires).
    InProgress,
    /// Done before: the notification number.
    Completed(String),
    /// A delivery stopped part-way (a temporary fault or a failure after some steps): this
    /// delivery owns the event now and resumes after the steps in this progress (JSON).
    Resume(String),
}

/// The table could not be used, and whether a later attempt can help
/// ([`crate::aws::dynamo::disposition_of`]).
pub use crate::aws::dynamo::TableError as StoreError;

/// Where idempotency records live.
pub trait IdempotencyStore: Send + Sync {
    fn begin(
        &self,
        key: &str,
        in_progress_for: Duration,
    ) -> impl Future<Output = Result<Begin, StoreError>> + Send;
    fn complete(
        &self,
        key: &str,
        notification: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn release(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Keeps an in-progress record from now for `for_`: a write may still be under way.
    fn hold(
        &self,
        key: &str,
        for_: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Keeps what was done (`progress`, JSON) for the next delivery to resume from.
    fn pause(
        &self,
        key: &str,
        progress: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

fn store_error<E>(e: SdkError<E>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    crate::aws::dynamo::failed(e).context("idempotency table")
}

/// Records in a DynamoDB table with partition key `id` (S) and TTL attribute `expiration`.
pub struct DynamoStore {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
    /// How long a completed record is kept.
    pub keep_completed: Duration,
}

impl IdempotencyStore for DynamoStore {
    async fn begin(&self, key: &str, in_progress_for: Duration) -> Result<Begin, StoreError> {
        let now = now();
        let item = HashMap::from([
            ("id".to_string(), AttributeValue::S(key.to_string())),
            (
                "status".to_string(),
                AttributeValue::S("IN_PROGRESS".into()),
            ),
            (
                "expiration".to_string(),
                AttributeValue::N((now + self.keep_completed).as_secs().to_string()),
            ),
            (
                "in_progress_expiration".to_string(),
                AttributeValue::N((now + in_progress_for).as_millis().to_string()),
            ),
        ]);
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(id) OR expiration < :now OR (#status = :in_progress AND in_progress_expiration < :now_ms)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":now", AttributeValue::N(now.as_secs().to_string()))
            .expression_attribute_values(":now_ms", AttributeValue::N(now.as_millis().to_string()))
            .expression_attribute_values(":in_progress", AttributeValue::S("IN_PROGRESS".into()))
            .send()
            .await;
        match put {
            Ok(_) => Ok(Begin::Started),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                let got = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key("id", AttributeValue::S(key.to_string()))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(store_error)?;
                let item = got.item.unwrap_or_default();
                let status = item
                    .get("status")
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str);
                match (status, item.get("notification").and_then(|v| v.as_s().ok())) {
                    (Some("COMPLETED"), Some(number)) => Ok(Begin::Completed(number.clone())),
                    (Some("PARTIAL"), _) => self.claim_partial(key, in_progress_for).await,
                    _ => Ok(Begin::InProgress),
                }
            }
            Err(e) => Err(store_error(e)),
        }
    }

    async fn hold(&self, key: &str, for_: Duration) -> Result<(), StoreError> {
        self.update(key)
            .update_expression("SET in_progress_expiration = :until")
            .condition_expression("#status = :in_progress")
            .expression_attribute_values(":in_progress", AttributeValue::S("IN_PROGRESS".into()))
            .expression_attribute_values(
                ":until",
                AttributeValue::N((now() + for_).as_millis().to_string()),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(store_error)
    }

    async fn pause(&self, key: &str, progress: &str) -> Result<(), StoreError> {
        self.update(key)
            .update_expression("SET #status = :partial, progress = :p")
            .expression_attribute_values(":partial", AttributeValue::S("PARTIAL".into()))
            .expression_attribute_values(":p", AttributeValue::S(progress.to_string()))
            .send()
            .await
            .map(|_| ())
            .map_err(store_error)
    }

    async fn complete(&self, key: &str, notification: &str) -> Result<(), StoreError> {
        self.update(key)
            .update_expression("SET #status = :done, notification = :n, expiration = :exp")
            .expression_attribute_values(":done", AttributeValue::S("COMPLETED".into()))
            .expression_attribute_values(":n", AttributeValue::S(notification.to_string()))
            .expression_attribute_values(
                ":exp",
                AttributeValue::N((now() + self.keep_completed).as_secs().to_string()),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(store_error)
    }

    async fn release(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(key.to_string()))
            .send()
            .await
            .map(|_| ())
            .map_err(store_error)
    }
}

impl DynamoStore {
    /// An update of the record `key`, with `#status` naming the status attribute.
    fn update(
        &self,
        key: &str,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(key.to_string()))
            .expression_attribute_names("#status", "status")
    }

    /// Takes over a paused record (one delivery wins), returning its progress.
    async fn claim_partial(
        &self,
        key: &str,
        in_progress_for: Duration,
    ) -> Result<Begin, StoreError> {
        let until = (now() + in_progress_for).as_millis().to_string();
        let claimed = self
            .update(key)
            .update_expression("SET #status = :in_progress, in_progress_expiration = :until")
            .condition_expression("#status = :partial")
            .expression_attribute_values(":in_progress", AttributeValue::S("IN_PROGRESS".into()))
            .expression_attribute_values(":partial", AttributeValue::S("PARTIAL".into()))
            .expression_attribute_values(":until", AttributeValue::N(until))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match claimed {
            Ok(out) => Ok(Begin::Resume(
                out.attributes
                    .and_then(|a| a.get("progress").and_then(|v| v.as_s().ok()).cloned())
                    .unwrap_or_default(),
            )),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(Begin::InProgress)
            }
            Err(e) => Err(store_error(e)),
        }
    }
}

/// Without a table every delivery proceeds, and the S/4 lookup alone prevents duplicates.
impl<T: IdempotencyStore> IdempotencyStore for Option<T> {
    async fn begin(&self, key: &str, in_progress_for: Duration) -> Result<Begin, StoreError> {
        match self {
            Some(store) => store.begin(key, in_progress_for).await,
            None => Ok(Begin::Started),
        }
    }

    async fn complete(&self, key: &str, notification: &str) -> Result<(), StoreError> {
        match self {
            Some(store) => store.complete(key, notification).await,
            None => Ok(()),
        }
    }

    async fn release(&self, key: &str) -> Result<(), StoreError> {
        match self {
            Some(store) => store.release(key).await,
            None => Ok(()),
        }
    }

    async fn hold(&self, key: &str, for_: Duration) -> Result<(), StoreError> {
        match self {
            Some(store) => store.hold(key, for_).await,
            None => Ok(()),
        }
    }

    async fn pause(&self, key: &str, progress: &str) -> Result<(), StoreError> {
        match self {
            Some(store) => store.pause(key, progress).await,
            None => Ok(()),
        }
    }
}
