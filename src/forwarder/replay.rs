//! Replaying stored Firehose objects: list a prefix and time range, then send each object through
//! the forwarder again (here, or as asynchronous invocations of the deployed forwarder).

use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

use crate::aws::s3::S3Location;

/// A listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    pub last_modified: DateTime<Utc>,
}

/// Parses `--since`/`--until`: RFC 3339 (`2024-03-01T09:00:00Z`) or a date (`2024-03-01`, midnight UTC).
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// Lists the objects under a prefix written in `[since, until)`, oldest first.
pub async fn list_objects(
    client: &aws_sdk_s3::Client,
    location: &S3Location,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<Vec<Listed>, String> {
    let mut listed = Vec::new();
    let mut pages = client
        .list_objects_v2()
        .bucket(&location.bucket)
        .prefix(&location.key)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            format!(
                "cannot list s3://{}/{}: {}",
                location.bucket,
                location.key,
                aws_sdk_s3::error::DisplayErrorContext(&e)
            )
        })?;
        for object in page.contents() {
            let (Some(key), Some(modified)) = (object.key(), object.last_modified()) else {
                continue;
            };
            let Some(last_modified) =
                DateTime::from_timestamp(modified.secs(), modified.subsec_nanos())
            else {
                continue;
            };
            if since.is_some_and(|s| last_modified < s) || until.is_some_and(|u| last_modified >= u)
            {
                continue;
            }
            listed.push(Listed {
                key: key.to_string(),
                size: object.size().map_or(0, |s| s.max(0) as u64),
                last_modified,
            });
        }
    }
    listed.sort_by(|a, b| {
        a.last_modified
            .cmp(&b.last_modified)
            .then_with(|| a.key.cmp(&b.key))
    });
    Ok(listed)
}

/// The S3 notification S3 itself would send for an object (key form-URL-encoded).
pub fn notification_for(bucket: &str, object: &Listed) -> Value {
    json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventTime": object.last_modified.to_rfc3339(),
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "e2b-replay"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "e2b-replay",
            "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
            "object": {"key": form_urlencode(&object.key), "size": object.size}
        }
    }]})
}

/// Encodes a key as S3 does in notifications: `/` kept, space as `+`, the rest `%XX`.
pub fn form_urlencode(key: &str) -> String {
    const KEPT: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'*')
        .remove(b'/');
    utf8_percent_encode(key, KEPT)
        .to_string()
        .replace("%20", "+")
}

/// Hands an event to a deployed function as an asynchronous invocation.
pub trait Invoker {
    fn queue_invocation(
        &self,
        function: &str,
        payload: &Value,
    ) -> impl Future<Output = Result<(), String>> + Send;
}

impl Invoker for aws_sdk_lambda::Client {
    async fn queue_invocation(&self, function: &str, payload: &Value) -> Result<(), String> {
        let result = self
            .invoke()
            .function_name(function)
            .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
            .payload(aws_sdk_lambda::primitives::Blob::new(payload.to_string()))
            .send()
            .await;
        match result {
            Ok(output) if output.status_code() == 202 => Ok(()),
            Ok(output) => Err(format!(
                "Lambda answered {} instead of 202",
                output.status_code()
            )),
            Err(e) => Err(format!(
                "cannot invoke {function}: {}",
                aws_sdk_lambda::error::DisplayErrorContext(&e)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forwarder::trigger::{Trigger, decode_form_urlencoded, parse};

    #[test]
    fn times_are_rfc3339_or_dates() {
        assert_eq!(
            parse_time("2024-03-01").map(|t| t.to_rfc3339()),
            Some("2024-03-01T00:00:00+00:00".into())
        );
        assert_eq!(
            parse_time("2024-03-01T10:00:00+01:00").map(|t| t.to_rfc3339()),
            Some("2024-03-01T09:00:00+00:00".into())
        );
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn replayed_notifications_read_back_as_the_same_object() {
        let key = "project=Plant A/site=Werk Süd/time=2024-03-01 10:47:07/a+b.json";
        assert_eq!(
            form_urlencode(key),
            "project%3DPlant+A/site%3DWerk+S%C3%BCd/time%3D2024-03-01+10%3A47%3A07/a%2Bb.json",
            "as S3 writes keys in its notifications"
        );
        assert_eq!(
            decode_form_urlencoded(&form_urlencode(key)).as_deref(),
            Some(key)
        );
        let listed = Listed {
            key: key.into(),
            size: 42,
            last_modified: DateTime::from_timestamp(1_709_283_661, 0).unwrap_or_default(),
        };
        let Ok(Trigger::Objects(objects)) = parse(&notification_for("bkt", &listed)) else {
            panic!("not understood by the forwarder");
        };
        assert_eq!(objects[0].location.bucket, "bkt");
        assert_eq!(objects[0].location.key, key);
    }
}
