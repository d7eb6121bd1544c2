//! The site records of alarm management (`alarms::site`): one DynamoDB item per site in the
//! idempotency table under `site#<site key>`, and one index item, `alarms#sites`, listing the
//! sites that ever held an episode, so that the schedule finds them without a scan.
//!
//! Rules:
//! - a position's entry is an attribute of its own (`p#<position key>`, a JSON text), written by
//!   one UpdateItem that returns the whole record: no lease, no read before, and deliveries of
//!   different positions never wait for each other;
//! - while the site is in a storm, an entry is written on that condition and nothing is
//!   returned (one small write however large the record grew); otherwise the whole record comes
//!   back, small before a storm, for counting;
//! - the site is listed in the index before its storm is recorded, so a storm always has a tick
//!   to end it;
//! - the storm is recorded by the first delivery that counts it (`attribute_not_exists(storm)`);
//!   the schedule alone changes it afterwards, on the condition that it is still the same storm
//!   (`storm_id`), and ends it;
//! - an entry is replaced or removed by the schedule only while it is the text it read
//!   (a delivery that wrote it anew meanwhile wins);
//! - the index is never pruned: a plant has a bounded number of sites, each read once a minute;
//! - records expire (TTL) like episode records, 180 days after their last write.

use std::future::Future;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use crate::aws::dynamo::{self, Item};
use crate::processor::alarms::site::{ENTRY, SiteEntry, SiteRecord, Storm, StormSummary};
use crate::processor::idempotency::{DynamoStore, StoreError};

/// The key prefix of site records.
pub const PREFIX: &str = "site#";

/// The index of sites.
const INDEX: &str = "alarms#sites";

/// How long a site's record is kept after its last write (as long as episode records).
const KEEP: std::time::Duration = std::time::Duration::from_secs(180 * 24 * 3600);

/// Where site records live.
pub trait SiteStore: Send + Sync {
    /// Writes a position's entry and returns the site's record as it is after; `new_start`
    /// when an episode began (the site's last start moves).
    fn write_entry(
        &self,
        site: &str,
        position: &str,
        entry: &SiteEntry,
        new_start: bool,
    ) -> impl Future<Output = Result<SiteRecord, StoreError>> + Send;
    /// Writes a position's entry only while the site is in a storm (no record returned: a
    /// storm's record is large); `false` when it is not.
    fn write_entry_in_storm(
        &self,
        site: &str,
        position: &str,
        entry: &SiteEntry,
        new_start: bool,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Records the site's storm unless one is recorded; `true` when this one was.
    fn begin_storm(
        &self,
        site: &str,
        storm: &Storm,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Lists the site in the index (a site holding an episode).
    fn index_site(&self, site: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The sites in the index.
    fn sites(&self) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    /// A site's record (strongly consistent).
    fn site(&self, site: &str) -> impl Future<Output = Result<SiteRecord, StoreError>> + Send;
    /// Replaces an entry (`None`: removes it) while it is still `was`; `false` when it changed.
    fn replace_entry(
        &self,
        site: &str,
        position: &str,
        was: &str,
        entry: Option<&SiteEntry>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Saves the storm while it is the same storm; `false` when it is not.
    fn save_storm(
        &self,
        site: &str,
        storm: &Storm,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Ends the storm, keeping its summary.
    fn end_storm(
        &self,
        site: &str,
        storm: &Storm,
        summary: &StormSummary,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

fn failed<E>(e: SdkError<E>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    dynamo::failed(e).context("site records")
}

fn conditional<E: ProvideErrorMetadata + std::error::Error + 'static, T>(
    result: Result<T, SdkError<E>>,
) -> Result<bool, StoreError> {
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(failed(e)),
    }
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// A record from its item; unreadable entries are left out (and logged).
fn record_of(item: &Item) -> SiteRecord {
    let mut record = SiteRecord {
        last_start_ms: i64::try_from(dynamo::number(item, "last_start")).unwrap_or(0),
        ..SiteRecord::default()
    };
    for (name, value) in item {
        let Ok(text) = value.as_s() else { continue };
        if let Some(position) = name.strip_prefix(ENTRY) {
            match serde_json::from_str::<SiteEntry>(text) {
                Ok(entry) => {
                    record
                        .entries
                        .insert(position.to_string(), (entry, text.clone()));
                }
                Err(e) => {
                    tracing::warn!(position, error = %e, "a site record's entry is not readable; left out");
                }
            }
        } else if name == "storm" {
            record.storm = serde_json::from_str(text).ok();
        } else if name == "last_storm" {
            record.last_storm = serde_json::from_str(text).ok();
        }
    }
    record
}

impl DynamoStore {
    /// An update of a site's record.
    fn site_update(&self, site: &str) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(format!("{PREFIX}{site}")))
    }

    /// A write of a position's entry; `new_start` (an episode began) moves the site's last start,
    /// from which a storm's quiet is counted.
    fn entry_update(
        &self,
        site: &str,
        position: &str,
        entry: &SiteEntry,
        new_start: bool,
    ) -> UpdateItemFluentBuilder {
        let update = self
            .site_update(site)
            .expression_attribute_names("#p", format!("{ENTRY}{position}"))
            .expression_attribute_values(":e", AttributeValue::S(json(entry)))
            .expression_attribute_values(":exp", expiration());
        if new_start {
            update
                .update_expression("SET #p = :e, last_start = :now, expiration = :exp")
                .expression_attribute_values(
                    ":now",
                    AttributeValue::N(entry.written_ms.to_string()),
                )
        } else {
            update.update_expression("SET #p = :e, expiration = :exp")
        }
    }

    /// A write of the storm (`:s`), `:id` its id for the condition.
    async fn storm_write(
        &self,
        site: &str,
        storm: &Storm,
        update: &str,
        condition: &str,
    ) -> Result<bool, StoreError> {
        let sent = self
            .site_update(site)
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_values(":s", AttributeValue::S(json(storm)))
            .expression_attribute_values(":id", AttributeValue::N(storm.began_ms.to_string()))
            .send()
            .await;
        conditional(sent)
    }
}

fn expiration() -> AttributeValue {
    AttributeValue::N((dynamo::now() + KEEP).as_secs().to_string())
}

impl SiteStore for DynamoStore {
    async fn write_entry(
        &self,
        site: &str,
        position: &str,
        entry: &SiteEntry,
        new_start: bool,
    ) -> Result<SiteRecord, StoreError> {
        let out = self
            .entry_update(site, position, entry, new_start)
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(failed)?;
        Ok(record_of(&out.attributes.unwrap_or_default()))
    }

    async fn write_entry_in_storm(
        &self,
        site: &str,
        position: &str,
        entry: &SiteEntry,
        new_start: bool,
    ) -> Result<bool, StoreError> {
        let sent = self
            .entry_update(site, position, entry, new_start)
            .condition_expression("attribute_exists(storm_id)")
            .send()
            .await;
        conditional(sent)
    }

    async fn begin_storm(&self, site: &str, storm: &Storm) -> Result<bool, StoreError> {
        self.storm_write(
            site,
            storm,
            "SET storm = :s, storm_id = :id",
            "attribute_not_exists(storm_id)",
        )
        .await
    }

    async fn index_site(&self, site: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(INDEX.into()))
            .update_expression("ADD sites :s")
            .expression_attribute_values(":s", AttributeValue::Ss(vec![site.to_string()]))
            .send()
            .await
            .map(|_| ())
            .map_err(failed)
    }

    async fn sites(&self) -> Result<Vec<String>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(INDEX.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed)?;
        Ok(out
            .item
            .and_then(|i| i.get("sites").and_then(|v| v.as_ss().ok()).cloned())
            .unwrap_or_default())
    }

    async fn site(&self, site: &str) -> Result<SiteRecord, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(format!("{PREFIX}{site}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed)?;
        Ok(out.item.as_ref().map(record_of).unwrap_or_default())
    }

    async fn replace_entry(
        &self,
        site: &str,
        position: &str,
        was: &str,
        entry: Option<&SiteEntry>,
    ) -> Result<bool, StoreError> {
        let update = self
            .site_update(site)
            .condition_expression("#p = :was")
            .expression_attribute_names("#p", format!("{ENTRY}{position}"))
            .expression_attribute_values(":was", AttributeValue::S(was.to_string()));
        let update = match entry {
            Some(entry) => update
                .update_expression("SET #p = :e")
                .expression_attribute_values(":e", AttributeValue::S(json(entry))),
            None => update.update_expression("REMOVE #p"),
        };
        conditional(update.send().await)
    }

    async fn save_storm(&self, site: &str, storm: &Storm) -> Result<bool, StoreError> {
        self.storm_write(site, storm, "SET storm = :s", "storm_id = :id")
            .await
    }

    async fn end_storm(
        &self,
        site: &str,
        storm: &Storm,
        summary: &StormSummary,
    ) -> Result<bool, StoreError> {
        let sent = self
            .site_update(site)
            .update_expression("SET last_storm = :sum REMOVE storm, storm_id")
            .condition_expression("storm_id = :id")
            .expression_attribute_values(":sum", AttributeValue::S(json(summary)))
            .expression_attribute_values(":id", AttributeValue::N(storm.began_ms.to_string()))
            .send()
            .await;
        conditional(sent)
    }
}

/// The store, or why there is none.
fn table<T>(store: &Option<T>) -> Result<&T, StoreError> {
    store.as_ref().ok_or_else(|| {
        StoreError::retry("alarm management needs the idempotency table (IDEMPOTENCY_TABLE)")
    })
}

impl<T: SiteStore> SiteStore for Option<T> {
    async fn write_entry(
        &self,
        site: &str,
        position: &str,
        entry: &SiteEntry,
        new_start: bool,
    ) -> Result<SiteRecord, StoreError> {
        table(self)?
            .write_entry(site, position, entry, new_start)
            .await
    }

    async fn write_entry_in_storm(
        &self,
        site: &str,
        position: &str,
        entry: &SiteEntry,
        new_start: bool,
    ) -> Result<bool, StoreError> {
        table(self)?
            .write_entry_in_storm(site, position, entry, new_start)
            .await
    }

    async fn begin_storm(&self, site: &str, storm: &Storm) -> Result<bool, StoreError> {
        table(self)?.begin_storm(site, storm).await
    }

    async fn index_site(&self, site: &str) -> Result<(), StoreError> {
        table(self)?.index_site(site).await
    }

    async fn sites(&self) -> Result<Vec<String>, StoreError> {
        match self {
            Some(store) => store.sites().await,
            None => Ok(Vec::new()),
        }
    }

    async fn site(&self, site: &str) -> Result<SiteRecord, StoreError> {
        table(self)?.site(site).await
    }

    async fn replace_entry(
        &self,
        site: &str,
        position: &str,
        was: &str,
        entry: Option<&SiteEntry>,
    ) -> Result<bool, StoreError> {
        table(self)?.replace_entry(site, position, was, entry).await
    }

    async fn save_storm(&self, site: &str, storm: &Storm) -> Result<bool, StoreError> {
        table(self)?.save_storm(site, storm).await
    }

    async fn end_storm(
        &self,
        site: &str,
        storm: &Storm,
        summary: &StormSummary,
    ) -> Result<bool, StoreError> {
        table(self)?.end_storm(site, storm, summary).await
    }
}
