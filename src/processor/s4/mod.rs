//! The S/4HANA OData V2 client for `API_MAINTNOTIFICATION`.
//!
//! - Writes carry a CSRF token fetched with `x-csrf-token: Fetch` and the session cookies
//!   (kept by the client); the token is reused across warm invocations and fetched again once on
//!   `403` with `x-csrf-token: Required`.
//! - `sap-client` goes on every request, the token fetch included.
//! - 5xx, connection errors and timeouts are retried with backoff within the deadline; other
//!   errors are permanent, with SAP's error body turned into a readable reason.
//! - Refused credentials (401, or no OAuth2 token) are read again from their secret, at most once
//!   a minute, when the client was given it ([`S4Client::reread_secret_on_refusal`]).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};
use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};

use crate::http::oauth::ClientCredentials;
use crate::http::retry::Backoff;
use crate::http::sap;
use crate::outcome::{Disposed, Disposition};

mod session;
use session::{Session, Sessions, Unprepared};

/// The service path under a host.
pub const SERVICE_PATH: &str = "/sap/opu/odata/sap/API_MAINTNOTIFICATION";

/// How to reach S/4.
#[derive(Debug, Clone)]
pub struct S4Config {
    /// The service root, e.g. `https://s4.example.com/sap/opu/odata/sap/API_MAINTNOTIFICATION`.
    pub service_url: Url,
    pub sap_client: Option<String>,
    pub request_timeout: Duration,
    /// Attempts and pauses (base 200 ms, cap 12.8 s, full jitter); writes whose outcome is
    /// unknown are never repeated, whatever the schedule allows.
    pub retry: Backoff,
}

/// S/4 credentials (Basic).
#[derive(Clone, PartialEq, Eq)]
pub struct S4Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for S4Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S4Credentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// How the client authenticates to S/4.
#[derive(Clone, PartialEq, Eq)]
pub enum S4Auth {
    Basic(S4Credentials),
    /// OAuth2 client credentials: a token from the token URL, cached until shortly before it
    /// expires.
    OAuth2(ClientCredentials),
}

impl fmt::Debug for S4Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            S4Auth::Basic(c) => write!(f, "Basic({c:?})"),
            S4Auth::OAuth2(c) => write!(f, "OAuth2({c:?})"),
        }
    }
}

impl S4Auth {
    /// From a secret's JSON: `{"username","password"}` for Basic, or
    /// `{"client_id","client_secret","token_url"[,"scope"]}` for OAuth2 client credentials.
    /// Errors name the secret, never its values.
    pub fn from_secret(secret_id: &str, json: &str) -> Result<S4Auth, String> {
        let value: Value = serde_json::from_str(json)
            .map_err(|_| format!("secret {secret_id} is not a JSON object"))?;
        let field = |name: &str| {
            value
                .get(name)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        if let (Some(username), Some(password)) = (field("username"), field("password")) {
            return Ok(S4Auth::Basic(S4Credentials { username, password }));
        }
        match ClientCredentials::from_json(&value) {
            Some(Ok(c)) => Ok(S4Auth::OAuth2(c)),
            Some(Err(e)) => Err(format!("secret {secret_id}: {e}")),
            None => Err(format!(
                "secret {secret_id} needs `username` and `password`, or `client_id`, `client_secret` and `token_url`"
            )),
        }
    }
}

/// What went wrong, as the processor acts on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum S4Error {
    /// A later attempt may work (S/4 down, timeout, 5xx, credentials refused).
    #[error("S/4 not reachable for now: {0}")]
    Transient(String),
    /// S/4 refused the request (4xx): status and SAP's reason.
    #[error("S/4 refused the request: {status} {message}")]
    Permanent { status: u16, message: String },
    /// A write whose outcome is unknown (no answer, a 5xx): it may have been done; looked up
    /// before anything is written again.
    #[error("S/4 did not confirm the write: {0}")]
    Unclear(String),
}

impl Disposed for S4Error {
    fn disposition(&self) -> Disposition {
        match self {
            S4Error::Transient(_) | S4Error::Unclear(_) => Disposition::Retry,
            S4Error::Permanent { .. } => Disposition::GiveUp,
        }
    }
}

/// A notification to create.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// An OData V2 string literal: quoted, with `'` doubled.
fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

pub use crate::http::sap::cut;

/// A notification S/4 already has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    pub number: String,
    pub processing_phase: Option<String>,
    pub priority: Option<String>,
    /// `MaintNotifExtReferenceNumber`: `MON…` for notifications this processor created.
    pub external_reference: Option<String>,
    /// The long text, where the lookup returned it.
    pub long_text: String,
}

/// The client, one per warm Lambda.
pub struct S4Client {
    config: S4Config,
    sessions: Sessions,
    round_trips: AtomicU64,
    csrf_fetches: AtomicU64,
}

impl S4Client {
    pub fn new(config: S4Config, auth: S4Auth) -> Result<Self, reqwest::Error> {
        Ok(S4Client {
            sessions: Sessions::new(Session::new(&config, auth, 0)?),
            config,
            round_trips: AtomicU64::new(0),
            csrf_fetches: AtomicU64::new(0),
        })
    }

    /// HTTP requests sent to S/4 so far.
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed) + self.sessions.token_requests()
    }

    /// CSRF token fetches so far.
    pub fn csrf_fetches(&self) -> u64 {
        self.csrf_fetches.load(Ordering::Relaxed)
    }

    fn url(&self, path_and_query: &str) -> Result<Url, S4Error> {
        let base = self.config.service_url.as_str().trim_end_matches('/');
        let mut url =
            Url::parse(&format!("{base}{path_and_query}")).map_err(|e| S4Error::Permanent {
                status: 0,
                message: format!("bad S/4 URL: {e}"),
            })?;
        if let Some(client) = &self.config.sap_client {
            url.query_pairs_mut().append_pair("sap-client", client);
        }
        Ok(url)
    }

    /// The open or closed notification created for this external reference, if any.
    pub async fn find_by_reference(
        &self,
        reference: &str,
        deadline: Instant,
    ) -> Result<Option<Existing>, S4Error> {
        let filter = format!("MaintNotifExtReferenceNumber eq {}", literal(reference));
        self.first_match(&filter, deadline).await
    }

    /// Open notifications (processing phase 1, 2 or 3) for a technical object, oldest first.
    pub async fn open_for_object(
        &self,
        technical_object: &str,
        object_kind: &str,
        top: u32,
        deadline: Instant,
    ) -> Result<Vec<Existing>, S4Error> {
        let filter = format!(
            "TechnicalObject eq {} and TechObjIsEquipOrFuncnlLoc eq {} and (NotifProcessingPhase eq '1' or NotifProcessingPhase eq '2' or NotifProcessingPhase eq '3')",
            literal(technical_object),
            literal(object_kind)
        );
        self.matching(&filter, top, deadline).await
    }

    /// The first notification matching an OData `$filter`.
    async fn first_match(
        &self,
        filter: &str,
        deadline: Instant,
    ) -> Result<Option<Existing>, S4Error> {
        Ok(self.matching(filter, 1, deadline).await?.into_iter().next())
    }

    /// Notifications matching an OData `$filter`. An answer without `d.results` is an error,
    /// never "none": a create would follow it.
    async fn matching(
        &self,
        filter: &str,
        top: u32,
        deadline: Instant,
    ) -> Result<Vec<Existing>, S4Error> {
        let query = format!(
            "/MaintenanceNotification?$filter={}&$select=MaintenanceNotification,NotifProcessingPhase,MaintPriority,MaintNotifExtReferenceNumber,MaintNotificationLongText&$orderby=MaintenanceNotification&$top={top}&$format=json",
            percent_encoding::utf8_percent_encode(filter, percent_encoding::NON_ALPHANUMERIC)
        );
        let url = self.url(&query)?;
        let body = self.send(Method::GET, url, None, deadline).await?;
        let Some(results) = body.pointer("/d/results").and_then(Value::as_array) else {
            return Err(S4Error::Transient(
                "the lookup's answer has no d.results list".into(),
            ));
        };
        let text =
            |n: &Value, field: &str| n.get(field).and_then(Value::as_str).map(str::to_string);
        Ok(results
            .iter()
            .filter_map(|n| {
                Some(Existing {
                    number: text(n, "MaintenanceNotification")?,
                    processing_phase: text(n, "NotifProcessingPhase"),
                    priority: text(n, "MaintPriority").filter(|p| !p.is_empty()),
                    external_reference: text(n, "MaintNotifExtReferenceNumber")
                        .filter(|r| !r.is_empty()),
                    long_text: ["MaintNotificationLongText", "MaintNotifLongTextForEdit"]
                        .iter()
                        .filter_map(|f| n.get(*f).and_then(Value::as_str))
                        .collect::<Vec<_>>()
                        .join("\n"),
                })
            })
            .collect())
    }

    /// Changes fields of a notification (`MERGE`); `MaintNotifLongTextForEdit` is added to the
    /// long text as a new block. `If-Match: *`: the service checks an entity tag on changes.
    pub async fn update(
        &self,
        number: &str,
        fields: Value,
        deadline: Instant,
    ) -> Result<(), S4Error> {
        let path = format!("/MaintenanceNotification({})", literal(number));
        let url = self.url(&path)?;
        let merge = Method::from_bytes(b"MERGE").map_err(|e| S4Error::Permanent {
            status: 0,
            message: e.to_string(),
        })?;
        self.send(merge, url, Some(fields), deadline)
            .await
            .map(|_| ())
    }

    /// Completes a notification (function import `CompleteMaintNotification`) with the time
    /// the asset recovered as its reference time.
    pub async fn complete(
        &self,
        number: &str,
        reference: Option<DateTime<Utc>>,
        deadline: Instant,
    ) -> Result<(), S4Error> {
        let mut query = format!(
            "/CompleteMaintNotification?MaintenanceNotification={}",
            percent_encoding::utf8_percent_encode(
                &literal(number),
                percent_encoding::NON_ALPHANUMERIC
            )
        );
        if let Some(at) = reference {
            let literal = format!("datetimeoffset'{}'", at.format("%Y-%m-%dT%H:%M:%SZ"));
            query.push_str("&MaintNotifReferenceDateTime=");
            query.push_str(
                &percent_encoding::utf8_percent_encode(
                    &literal,
                    percent_encoding::NON_ALPHANUMERIC,
                )
                .to_string(),
            );
        }
        let url = self.url(&query)?;
        self.send(Method::POST, url, None, deadline)
            .await
            .map(|_| ())
    }

    /// Adds text to a notification's long text (S/4 adds it as a new block).
    pub async fn append_long_text(
        &self,
        number: &str,
        text: &str,
        deadline: Instant,
    ) -> Result<(), S4Error> {
        self.update(
            number,
            json!({"MaintNotifLongTextForEdit": cut(text, 1333)}),
            deadline,
        )
        .await
    }

    /// Creates a notification; returns its number.
    pub async fn create(
        &self,
        notification: &NewNotification,
        deadline: Instant,
    ) -> Result<String, S4Error> {
        let url = self.url("/MaintenanceNotification")?;
        let body = self
            .send(Method::POST, url, Some(notification.body()), deadline)
            .await?;
        body.pointer("/d/MaintenanceNotification")
            .and_then(Value::as_str)
            .map(str::to_string)
            // Created, perhaps: the caller looks it up by its external reference.
            .ok_or_else(|| {
                S4Error::Unclear("S/4 answered without a MaintenanceNotification number".into())
            })
    }

    /// One request with retries; writes carry the CSRF token. A write is sent again only when
    /// it surely did not reach S/4 (no connection, 408, 429); when its outcome is unknown (a
    /// timeout, a 5xx, a dropped answer) the error is [`S4Error::Unclear`] and the caller looks
    /// before writing again.
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<Value>,
        deadline: Instant,
    ) -> Result<Value, S4Error> {
        let write = method != Method::GET;
        let mut attempts = 0;
        let mut token_refreshed = false;
        let mut oauth_refreshed = false;
        let mut renewed = false;
        loop {
            attempts += 1;
            let session = self.sessions.current();
            let (token, mut request) =
                match self.prepare(&session, &method, &url, write, deadline).await {
                    Ok(prepared) => prepared,
                    Err(Unprepared::Refused(why)) => {
                        if !renewed && self.renew(session.generation).await {
                            renewed = true;
                            attempts -= 1;
                            continue;
                        }
                        return Err(S4Error::Transient(why));
                    }
                    Err(Unprepared::Failed(e)) => return Err(e),
                };
            // The time left is measured once the token and the credentials are at hand.
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(S4Error::Transient(
                    "no time left before the reply budget".into(),
                ));
            }
            request = request.timeout(self.config.request_timeout.min(left));
            if let Some(token) = &token {
                request = request.header("x-csrf-token", token);
            }
            if write && !url.path().ends_with("/MaintenanceNotification") {
                request = request.header("If-Match", "*");
            }
            if let Some(body) = &body {
                request = request.json(body);
            }
            self.round_trips.fetch_add(1, Ordering::Relaxed);
            let (failure, sure_not_done) = match request.send().await {
                Err(e) if e.is_connect() => (format!("cannot connect: {e}"), true),
                Err(e) if e.is_timeout() => (
                    format!(
                        "no answer within {:?}",
                        self.config.request_timeout.min(left)
                    ),
                    false,
                ),
                Err(e) => (format!("request failed: {e}"), false),
                Ok(response) => {
                    let status = response.status();
                    let csrf_required = sap::csrf_required(response.headers());
                    let text = match response.text().await {
                        Ok(text) => text,
                        Err(e) if write => {
                            return Err(S4Error::Unclear(format!("{status}, answer lost: {e}")));
                        }
                        Err(e) => {
                            return Err(S4Error::Transient(format!("{status}, answer lost: {e}")));
                        }
                    };
                    if status.is_success() {
                        return match serde_json::from_str(&text) {
                            Ok(value) => Ok(value),
                            Err(_) if write => Ok(Value::Null),
                            Err(_) => Err(S4Error::Transient(format!(
                                "{status} with an answer that is not JSON"
                            ))),
                        };
                    }
                    if status == StatusCode::FORBIDDEN && csrf_required && write && !token_refreshed
                    {
                        token_refreshed = true;
                        self.csrf_token(&session, true, deadline)
                            .await
                            .map_err(Unprepared::into_error)?;
                        attempts -= 1;
                        continue;
                    }
                    if status == StatusCode::UNAUTHORIZED
                        && session.oauth.is_some()
                        && !oauth_refreshed
                    {
                        // The access token expired early or was revoked: one new token.
                        oauth_refreshed = true;
                        attempts -= 1;
                        if let Err(refused) = self.access_token(&session, true, deadline).await {
                            if !renewed && self.renew(session.generation).await {
                                renewed = true;
                                continue;
                            }
                            return Err(refused.into_error());
                        }
                        continue;
                    }
                    if status == StatusCode::UNAUTHORIZED
                        && !renewed
                        && self.renew(session.generation).await
                    {
                        // Refused before any work: the secret held new credentials.
                        renewed = true;
                        attempts -= 1;
                        continue;
                    }
                    let message = sap::error_message(&text).unwrap_or_else(|| {
                        status.canonical_reason().unwrap_or("error").to_string()
                    });
                    let described = format!("{} {message}", status.as_u16());
                    match status.as_u16() {
                        // Refused before any work: safe to send again.
                        408 | 429 => (described, true),
                        // Credentials or permissions: nothing was done, and only a fix on the
                        // S/4 side helps; the mesh redelivers meanwhile, nothing is lost.
                        401 | 403 => {
                            return Err(S4Error::Transient(format!(
                                "{described} (check the S/4 user)"
                            )));
                        }
                        _ if status.is_server_error() => (described, !write),
                        _ => {
                            return Err(S4Error::Permanent {
                                status: status.as_u16(),
                                message,
                            });
                        }
                    }
                }
            };
            if !sure_not_done && write {
                return Err(S4Error::Unclear(failure));
            }
            let pause =
                self.config.retry.next(attempts, deadline).map_err(|stop| {
                    S4Error::Transient(format!("{failure} ({})", stop.describe()))
                })?;
            tokio::time::sleep(pause).await;
        }
    }

    /// The request with its credentials and, for a write, the CSRF token.
    async fn prepare(
        &self,
        session: &Session,
        method: &Method,
        url: &Url,
        write: bool,
        deadline: Instant,
    ) -> Result<(Option<String>, reqwest::RequestBuilder), Unprepared> {
        let token = if write {
            Some(self.csrf_token(session, false, deadline).await?)
        } else {
            None
        };
        let request = session
            .http
            .request(method.clone(), url.clone())
            .header("Accept", "application/json");
        Ok((token, self.authorize(session, request, deadline).await?))
    }

    /// Adds the credentials to a request: Basic, or an OAuth2 bearer token.
    async fn authorize(
        &self,
        session: &Session,
        request: reqwest::RequestBuilder,
        deadline: Instant,
    ) -> Result<reqwest::RequestBuilder, Unprepared> {
        match &session.auth {
            S4Auth::Basic(c) => Ok(request.basic_auth(&c.username, Some(&c.password))),
            S4Auth::OAuth2(_) => {
                Ok(request.bearer_auth(self.access_token(session, false, deadline).await?))
            }
        }
    }

    /// The cached OAuth2 access token, or a new one. No token is a refusal of the credentials:
    /// nothing was done yet, and the mesh redelivers until they are fixed.
    async fn access_token(
        &self,
        session: &Session,
        refresh: bool,
        deadline: Instant,
    ) -> Result<String, Unprepared> {
        let Some(cache) = &session.oauth else {
            return Ok(String::new());
        };
        let left = deadline.saturating_duration_since(Instant::now());
        cache
            .token(
                &session.http,
                refresh,
                self.config.request_timeout.min(left),
            )
            .await
            .map_err(Unprepared::Refused)
    }

    /// The cached CSRF token, or a new one (`refresh`, or none yet).
    async fn csrf_token(
        &self,
        session: &Session,
        refresh: bool,
        deadline: Instant,
    ) -> Result<String, Unprepared> {
        let mut cached = session.csrf.lock().await;
        if !refresh && let Some(token) = cached.as_ref() {
            return Ok(token.clone());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let url = self.url("/")?;
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        self.csrf_fetches.fetch_add(1, Ordering::Relaxed);
        let request = session
            .http
            .get(url)
            .timeout(self.config.request_timeout.min(left))
            .header("x-csrf-token", "Fetch")
            .header("Accept", "application/json");
        let response = self
            .authorize(session, request, deadline)
            .await?
            .send()
            .await
            .map_err(|e| S4Error::Transient(format!("CSRF token fetch failed: {e}")))?;
        let status = response.status();
        if status.is_server_error() {
            return Err(S4Error::Transient(format!("CSRF token fetch: {status}")).into());
        }
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            let message = sap::error_message(&text).unwrap_or_else(|| status.to_string());
            // Nothing was written yet: redelivery is safe until the user or URL is fixed.
            let why = format!(
                "CSRF token fetch answered {}: {message} (check S4_BASE_URL and the S/4 user)",
                status.as_u16()
            );
            return Err(if status == StatusCode::UNAUTHORIZED {
                Unprepared::Refused(why)
            } else {
                Unprepared::Failed(S4Error::Transient(why))
            });
        }
        let token = sap::csrf_token_in(response.headers());
        *cached = Some(token.clone());
        Ok(token)
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
}
