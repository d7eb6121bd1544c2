//! Every request the S/4 client sends, built without sending it: method, URL (with
//! `sap-client`), body, and whether it is a write (CSRF token, `If-Match`). The client sends
//! exactly these, and `e2b rules test` prints exactly these.
//!
//! Rules of `API_MAINTNOTIFICATION` (OData V2) kept here:
//! - string literals are quoted with `'` doubled ([`literal`]); query values percent-encoded;
//! - lookups select only the fields the processor reads, ordered by number, `$format=json`;
//! - changes are `MERGE` with `If-Match: *` (the service checks an entity tag); a create is a
//!   `POST` to the entity set and needs none;
//! - texts are cut to the EDMX lengths: short text 40, long text 1333, reference 20;
//! - dates are `/Date(ms)/` at midnight UTC with the time as `PTxxHxxMxxS`.

use std::fmt::Write as _;

use chrono::{DateTime, Timelike, Utc};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, Url};
use serde_json::{Value, json};

use super::config::S4Config;
use super::error::S4Error;
use crate::http::sap::cut;

/// The fields a lookup reads.
const SELECTED: &str = "MaintenanceNotification,NotifProcessingPhase,MaintPriority,MaintNotifExtReferenceNumber,MaintNotificationLongText";

/// One request, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct S4Request {
    pub method: Method,
    pub url: Url,
    pub body: Option<Value>,
    /// A file sent as the raw body instead of JSON (the attachment service's upload).
    pub upload: Option<Upload>,
}

/// A file uploaded as a request's raw body, with the headers that describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    pub content_type: String,
    /// Headers besides `Content-Type` (`Slug`, the linked object's).
    pub headers: Vec<(String, String)>,
    pub bytes: std::sync::Arc<Vec<u8>>,
}

impl S4Request {
    /// A write: sent with the CSRF token, and never repeated when its outcome is unknown.
    pub fn is_write(&self) -> bool {
        self.method != Method::GET
    }

    /// Changes of an existing entity carry `If-Match: *`; creates (a `POST` to an entity set)
    /// do not.
    pub fn needs_if_match(&self) -> bool {
        const ENTITY_SETS: [&str; 5] = [
            "/AttachmentContentSet",
            "/MaintenanceNotification",
            "/MaintenanceNotificationItem",
            "/MaintNotificationItemCause",
            "/MaintNotificationItemActivity",
        ];
        let path = self.url.path();
        self.is_write() && !ENTITY_SETS.iter().any(|set| path.ends_with(set))
    }

    /// The request as it goes on the wire, credentials left out: request line, the headers
    /// this client adds, and the body.
    pub fn describe(&self) -> String {
        let mut text = format!("{} {}\nAccept: application/json", self.method, self.url);
        if self.is_write() {
            text.push_str("\nx-csrf-token: <fetched once with x-csrf-token: Fetch>");
        }
        if self.needs_if_match() {
            text.push_str("\nIf-Match: *");
        }
        if let Some(body) = &self.body {
            text.push_str("\nContent-Type: application/json\n\n");
            match serde_json::to_string_pretty(body) {
                Ok(json) => text.push_str(&json),
                Err(e) => {
                    let _ = write!(text, "(body not printable: {e})");
                }
            }
        }
        if let Some(upload) = &self.upload {
            let _ = write!(text, "\nContent-Type: {}", upload.content_type);
            for (name, value) in &upload.headers {
                let _ = write!(text, "\n{name}: {value}");
            }
            let _ = write!(text, "\n\n({} bytes)", upload.bytes.len());
        }
        text
    }
}

/// Builds requests for one S/4 system.
#[derive(Debug, Clone)]
pub struct Requests {
    service_url: Url,
    sap_client: Option<String>,
}

impl Requests {
    pub fn new(config: &S4Config) -> Requests {
        Requests::for_service(config.service_url.clone(), config.sap_client.clone())
    }

    /// For a service root, e.g. `https://s4.example.com/sap/opu/odata/sap/API_MAINTNOTIFICATION`.
    pub fn for_service(service_url: Url, sap_client: Option<String>) -> Requests {
        Requests {
            service_url,
            sap_client,
        }
    }

    /// The service URL with a path and query; `sap-client` on every request.
    pub fn url(&self, path_and_query: &str) -> Result<Url, S4Error> {
        let base = self.service_url.as_str().trim_end_matches('/');
        let mut url =
            Url::parse(&format!("{base}{path_and_query}")).map_err(|e| S4Error::Permanent {
                status: 0,
                message: format!("bad S/4 URL: {e}"),
            })?;
        if let Some(client) = &self.sap_client {
            url.query_pairs_mut().append_pair("sap-client", client);
        }
        Ok(url)
    }

    /// A read of the service's `path_and_query`.
    pub(super) fn get(&self, path_and_query: &str) -> Result<S4Request, S4Error> {
        Ok(S4Request {
            method: Method::GET,
            url: self.url(path_and_query)?,
            body: None,
            upload: None,
        })
    }

    /// The notification created for an external reference (open or not), if any.
    pub fn find_by_reference(&self, reference: &str) -> Result<S4Request, S4Error> {
        let filter = format!("MaintNotifExtReferenceNumber eq {}", literal(reference));
        self.matching(&filter, 1)
    }

    /// Open notifications (processing phase 1, 2 or 3) of a technical object, oldest first.
    pub fn open_for_object(
        &self,
        technical_object: &str,
        object_kind: &str,
        top: u32,
    ) -> Result<S4Request, S4Error> {
        let filter = format!(
            "TechnicalObject eq {} and TechObjIsEquipOrFuncnlLoc eq {} and (NotifProcessingPhase eq '1' or NotifProcessingPhase eq '2' or NotifProcessingPhase eq '3')",
            literal(technical_object),
            literal(object_kind)
        );
        self.matching(&filter, top)
    }

    /// Notifications matching an OData `$filter`.
    pub fn matching(&self, filter: &str, top: u32) -> Result<S4Request, S4Error> {
        self.get(&format!(
            "/MaintenanceNotification?$filter={}&$select={SELECTED}&$orderby=MaintenanceNotification&$top={top}&$format=json",
            utf8_percent_encode(filter, NON_ALPHANUMERIC)
        ))
    }

    /// Creates a notification.
    pub fn create(&self, notification: &NewNotification) -> Result<S4Request, S4Error> {
        Ok(S4Request {
            method: Method::POST,
            url: self.url("/MaintenanceNotification")?,
            body: Some(notification.body()),
            upload: None,
        })
    }

    /// Changes fields of a notification; `MaintNotifLongTextForEdit` adds a long-text block.
    pub fn update(&self, number: &str, fields: Value) -> Result<S4Request, S4Error> {
        let method = Method::from_bytes(b"MERGE").map_err(|e| S4Error::Permanent {
            status: 0,
            message: e.to_string(),
        })?;
        Ok(S4Request {
            method,
            url: self.url(&format!("/MaintenanceNotification({})", literal(number)))?,
            body: Some(fields),
            upload: None,
        })
    }

    /// Adds an alert to an open notification: text to its long text and, when escalating, a
    /// more urgent priority; `None` when there is nothing to change.
    pub fn join(
        &self,
        number: &str,
        long_text: Option<&str>,
        priority: Option<&str>,
    ) -> Result<Option<S4Request>, S4Error> {
        let mut fields = serde_json::Map::new();
        if let Some(text) = long_text {
            fields.insert("MaintNotifLongTextForEdit".into(), cut(text, 1333).into());
        }
        if let Some(priority) = priority {
            fields.insert("MaintPriority".into(), priority.into());
        }
        if fields.is_empty() {
            return Ok(None);
        }
        self.update(number, Value::Object(fields)).map(Some)
    }

    /// Adds text to a notification's long text, cut to 1333 characters.
    pub fn append_long_text(&self, number: &str, text: &str) -> Result<S4Request, S4Error> {
        self.update(
            number,
            json!({"MaintNotifLongTextForEdit": cut(text, 1333)}),
        )
    }

    /// Completes a notification (function import `CompleteMaintNotification`), with the time
    /// the episode ended as its reference time.
    pub fn complete(
        &self,
        number: &str,
        reference: Option<DateTime<Utc>>,
    ) -> Result<S4Request, S4Error> {
        let mut query = format!(
            "/CompleteMaintNotification?MaintenanceNotification={}",
            utf8_percent_encode(&literal(number), NON_ALPHANUMERIC)
        );
        if let Some(at) = reference {
            let literal = format!("datetimeoffset'{}'", at.format("%Y-%m-%dT%H:%M:%SZ"));
            let _ = write!(
                query,
                "&MaintNotifReferenceDateTime={}",
                utf8_percent_encode(&literal, NON_ALPHANUMERIC)
            );
        }
        Ok(S4Request {
            method: Method::POST,
            url: self.url(&query)?,
            body: None,
            upload: None,
        })
    }

    /// The items of a notification, each with its causes and activities.
    pub fn items_of(&self, number: &str) -> Result<S4Request, S4Error> {
        let filter = format!("MaintenanceNotification eq {}", literal(number));
        self.get(&format!(
            "/MaintenanceNotificationItem?$filter={}&$expand=to_ItemCause,to_ItemActivity&$format=json",
            utf8_percent_encode(&filter, NON_ALPHANUMERIC)
        ))
    }

    /// Creates a notification item (`MaintenanceNotificationItem`), with a damage code when
    /// given; S/4 numbers the item.
    pub fn create_item(
        &self,
        number: &str,
        text: &str,
        damage: Option<(&str, &str)>,
    ) -> Result<S4Request, S4Error> {
        let mut body = json!({
            "MaintenanceNotification": number,
            "MaintNotifItemText": cut(text, 40),
        });
        if let Some((group, code)) = damage {
            body["MaintNotifDamageCodeGroup"] = json!(cut(group, 8));
            body["MaintNotificationDamageCode"] = json!(cut(code, 4));
        }
        Ok(S4Request {
            method: Method::POST,
            url: self.url("/MaintenanceNotificationItem")?,
            body: Some(body),
            upload: None,
        })
    }

    /// Creates a cause or an activity under an item, with its catalog code.
    pub fn create_item_code(
        &self,
        kind: ItemCode,
        number: &str,
        item: &str,
        text: &str,
        (group, code): (&str, &str),
    ) -> Result<S4Request, S4Error> {
        let (set, text_field, group_field, code_field) = kind.fields();
        let mut body = serde_json::Map::new();
        body.insert("MaintenanceNotification".into(), number.into());
        body.insert("MaintenanceNotificationItem".into(), item.into());
        body.insert(text_field.into(), cut(text, 40).into());
        body.insert(group_field.into(), cut(group, 8).into());
        body.insert(code_field.into(), cut(code, 4).into());
        Ok(S4Request {
            method: Method::POST,
            url: self.url(set)?,
            body: Some(Value::Object(body)),
            upload: None,
        })
    }

    /// The CSRF token fetch (`x-csrf-token: Fetch`) on the service root.
    pub fn csrf_fetch(&self) -> Result<S4Request, S4Error> {
        self.get("/")
    }
}

/// A code recorded under a notification item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemCode {
    /// `MaintNotificationItemCause`: why it failed.
    Cause,
    /// `MaintNotificationItemActivity`: what was done.
    Activity,
}

impl ItemCode {
    /// Entity set, text, code group and code fields, as the EDMX names them.
    pub fn fields(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            ItemCode::Cause => (
                "/MaintNotificationItemCause",
                "MaintNotifCauseText",
                "MaintNotifCauseCodeGroup",
                "MaintNotificationCauseCode",
            ),
            ItemCode::Activity => (
                "/MaintNotificationItemActivity",
                "MaintNotifActyTxt",
                "MaintNotifActivityCodeGroup",
                "MaintNotificationActivityCode",
            ),
        }
    }

    /// The expanded navigation that lists these codes under an item.
    pub fn navigation(self) -> &'static str {
        match self {
            ItemCode::Cause => "to_ItemCause",
            ItemCode::Activity => "to_ItemActivity",
        }
    }

    /// The short text written with the code.
    pub fn text(self) -> &'static str {
        match self {
            ItemCode::Cause => "Monitron: failure cause",
            ItemCode::Activity => "Monitron: action taken",
        }
    }
}

/// An OData V2 string literal: quoted, with `'` doubled.
pub fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// A notification to create.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewNotification {
    /// Short text, at most 40 characters (cut on a character boundary).
    pub text: String,
    /// Long text (at most 1333 characters).
    pub long_text: String,
    pub notification_type: String,
    pub technical_object: String,
    /// `EAMS_EQUI` or `EAMS_FL`.
    pub object_kind: String,
    pub priority: Option<String>,
    pub planning_plant: Option<String>,
    pub malfunction_start: Option<DateTime<Utc>>,
    /// `MaintNotifExtReferenceNumber`, at most 20 characters.
    pub external_reference: String,
}

impl NewNotification {
    /// The OData V2 JSON body.
    pub fn body(&self) -> Value {
        let mut body = json!({
            "NotificationText": cut(&self.text, 40),
            "MaintNotifLongTextForEdit": cut(&self.long_text, 1333),
            "NotificationType": self.notification_type,
            "TechnicalObject": self.technical_object,
            "TechObjIsEquipOrFuncnlLoc": self.object_kind,
            "MaintNotifExtReferenceNumber": cut(&self.external_reference, 20),
        });
        if let Some(priority) = &self.priority {
            body["MaintPriority"] = json!(priority);
        }
        if let Some(plant) = &self.planning_plant {
            body["MaintenancePlanningPlant"] = json!(plant);
        }
        if let Some(start) = self.malfunction_start {
            let midnight = start
                .date_naive()
                .and_hms_opt(0, 0, 0)
                .map(|t| t.and_utc().timestamp_millis());
            if let Some(ms) = midnight {
                body["MalfunctionStartDate"] = json!(format!("/Date({ms})/"));
                body["MalfunctionStartTime"] = json!(format!(
                    "PT{:02}H{:02}M{:02}S",
                    start.hour(),
                    start.minute(),
                    start.second()
                ));
            }
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_has_the_odata_field_names_and_cut_texts() {
        let n = NewNotification {
            text: "Monitron ALARM: Pump 7 / Motor DE in Werk Süd plus more words".into(),
            long_text: "x".repeat(2000),
            notification_type: "M2".into(),
            technical_object: "10000042".into(),
            object_kind: "EAMS_EQUI".into(),
            priority: Some("1".into()),
            planning_plant: Some("1010".into()),
            malfunction_start: DateTime::parse_from_rfc3339("2024-03-01T09:00:01.500Z")
                .ok()
                .map(|t| t.with_timezone(&Utc)),
            external_reference: "MON-0123456789ABCDEFGHIJ".into(),
        };
        let body = n.body();
        assert_eq!(
            body["NotificationText"].as_str().map(|s| s.chars().count()),
            Some(40)
        );
        assert_eq!(
            body["MaintNotifLongTextForEdit"].as_str().map(str::len),
            Some(1333)
        );
        assert_eq!(body["MaintNotifExtReferenceNumber"], "MON-0123456789ABCDEF");
        assert_eq!(body["MalfunctionStartDate"], "/Date(1709251200000)/");
        assert_eq!(body["MalfunctionStartTime"], "PT09H00M01S");
        assert_eq!(body["MaintPriority"], "1");
        assert_eq!(body["MaintenancePlanningPlant"], "1010");
        assert_eq!(body["TechObjIsEquipOrFuncnlLoc"], "EAMS_EQUI");
    }

    fn requests() -> Requests {
        Requests::for_service(
            Url::parse("https://s4.example.com/sap/opu/odata/sap/API_MAINTNOTIFICATION/")
                .expect("a service URL"),
            Some("100".into()),
        )
    }

    #[test]
    fn every_request_carries_sap_client_and_quotes_literals() {
        let r = requests();
        let lookup = r.find_by_reference("MON'1").expect("a lookup");
        assert_eq!(lookup.method, Method::GET);
        let url = lookup.url.as_str();
        assert!(url.starts_with("https://s4.example.com/sap/opu/odata/sap/API_MAINTNOTIFICATION/MaintenanceNotification?$filter=MaintNotifExtReferenceNumber%20eq%20%27MON%27%271%27&$select=MaintenanceNotification,"), "{url}");
        assert!(
            url.ends_with("&$top=1&$format=json&sap-client=100"),
            "{url}"
        );
        for request in [
            r.csrf_fetch(),
            r.create(&NewNotification {
                text: "t".into(),
                long_text: String::new(),
                notification_type: "M2".into(),
                technical_object: "1".into(),
                object_kind: "EAMS_EQUI".into(),
                priority: None,
                planning_plant: None,
                malfunction_start: None,
                external_reference: "MON1".into(),
            }),
            r.update("10", json!({})),
            r.complete("10", None),
        ] {
            let request = request.expect("a request");
            assert_eq!(
                request
                    .url
                    .query_pairs()
                    .find(|(k, _)| k == "sap-client")
                    .map(|(_, v)| v.into_owned()),
                Some("100".into()),
                "{}",
                request.url
            );
        }
    }

    #[test]
    fn changes_carry_if_match_and_creates_do_not() {
        let r = requests();
        let merge = r.append_long_text("10", "note").expect("a change");
        assert_eq!(merge.method.as_str(), "MERGE");
        assert!(merge.url.path().ends_with("/MaintenanceNotification('10')"));
        assert!(merge.is_write() && merge.needs_if_match());
        let described = merge.describe();
        assert!(described.contains("If-Match: *") && described.contains("x-csrf-token:"));
        let complete = r
            .complete(
                "10",
                DateTime::parse_from_rfc3339("2024-03-02T10:30:00Z")
                    .ok()
                    .map(|t| t.with_timezone(&Utc)),
            )
            .expect("a completion");
        assert_eq!(
            complete.url.query(),
            Some(
                "MaintenanceNotification=%2710%27&MaintNotifReferenceDateTime=datetimeoffset%272024%2D03%2D02T10%3A30%3A00Z%27&sap-client=100"
            )
        );
        assert!(
            complete.needs_if_match(),
            "a function import on an entity is a change"
        );
        let lookup = r
            .open_for_object("10000042", "EAMS_EQUI", 100)
            .expect("a lookup");
        assert!(!lookup.is_write() && !lookup.describe().contains("x-csrf-token"));
    }
}
