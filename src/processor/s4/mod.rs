//! The S/4HANA OData V2 client for `API_MAINTNOTIFICATION`: the calls the processor makes.
//!
//! - [`config`]: where S/4 is, timeouts and the retry schedule;
//! - [`auth`]: Basic or OAuth2 client credentials, from a secret;
//! - [`request`]: every request built without sending (what `e2b rules test` prints);
//! - [`attachment`]: `API_CV_ATTACHMENT_SRV`'s originals and upload (a trend chart);
//! - `send`: credentials, CSRF token, retries and recoveries (its module doc has the rules);
//! - `session`: the HTTP client, its cookies and tokens, replaced when credentials rotate;
//! - [`error`]: what went wrong, and what it leaves to do.
//!
//! `sap-client` goes on every request, the token fetch included. Refused credentials are read
//! again from their secret, at most once a minute, when the client was given it
//! ([`S4Client::reread_secret_on_refusal`]).

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::Value;

pub mod attachment;
pub mod auth;
pub mod config;
pub mod error;
pub mod limit;
pub mod request;
mod send;
mod session;

pub use crate::http::sap::cut;
pub use auth::{S4Auth, S4Credentials, S4Logon};
pub use config::{S4Config, SERVICE_PATH};
pub use error::S4Error;
pub use request::{ItemCode, NewNotification, Requests, S4Request, Upload};

use send::Transport;

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

/// An item of a notification, with the codes of its causes and activities.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Item {
    /// The item's key within the notification (`0001`, ...).
    pub item: String,
    pub text: String,
    /// Damage code group and code.
    pub damage: Option<(String, String)>,
    pub causes: Vec<(String, String)>,
    pub activities: Vec<(String, String)>,
}

impl Item {
    /// The codes of one kind under this item.
    pub fn codes(&self, kind: ItemCode) -> &[(String, String)] {
        match kind {
            ItemCode::Cause => &self.causes,
            ItemCode::Activity => &self.activities,
        }
    }
}

/// The client, one per warm Lambda.
pub struct S4Client {
    transport: Transport,
}

impl S4Client {
    /// A client for `config`, logging on as `logon` says (an [`S4Auth`] alone trusts the
    /// public roots only).
    pub fn new(config: S4Config, logon: impl Into<S4Logon>) -> Result<Self, reqwest::Error> {
        Ok(S4Client {
            transport: Transport::new(config, logon.into())?,
        })
    }

    /// Sends every request only with a token of `gate`: S/4's request rate, shared by every
    /// container (`limit`).
    pub fn limited_by(mut self, gate: limit::RequestGate) -> S4Client {
        self.transport.limited_by(gate);
        self
    }

    /// After S/4 refuses the credentials, reads `secret_id` again (at most once a minute) and
    /// goes on with its new credentials when they differ.
    pub fn reread_secret_on_refusal(
        mut self,
        secrets: aws_sdk_secretsmanager::Client,
        secret_id: &str,
    ) -> S4Client {
        self.transport.reread_secret_on_refusal(secrets, secret_id);
        self
    }

    /// The service root the client talks to.
    pub fn service_url(&self) -> &reqwest::Url {
        self.transport.service_url()
    }

    /// The TLS trust and identity of the session in force.
    pub fn tls(&self) -> crate::http::tls::PeerTls {
        self.transport.tls()
    }

    /// The requests this client sends, built without sending.
    pub fn requests(&self) -> &Requests {
        self.transport.requests()
    }

    /// HTTP requests sent to S/4 so far (token requests included).
    pub fn round_trips(&self) -> u64 {
        self.transport.round_trips()
    }

    /// CSRF token fetches so far.
    pub fn csrf_fetches(&self) -> u64 {
        self.transport.csrf_fetches()
    }

    /// The open or closed notification created for this external reference, if any.
    pub async fn find_by_reference(
        &self,
        reference: &str,
        deadline: Instant,
    ) -> Result<Option<Existing>, S4Error> {
        let request = self.requests().find_by_reference(reference)?;
        Ok(self.lookup(&request, deadline).await?.into_iter().next())
    }

    /// Open notifications (processing phase 1, 2 or 3) for a technical object, oldest first.
    pub async fn open_for_object(
        &self,
        technical_object: &str,
        object_kind: &str,
        top: u32,
        deadline: Instant,
    ) -> Result<Vec<Existing>, S4Error> {
        let request = self
            .requests()
            .open_for_object(technical_object, object_kind, top)?;
        self.lookup(&request, deadline).await
    }

    /// The notifications a lookup answers. An answer without `d.results` is an error, never
    /// "none": a create would follow it.
    async fn lookup(
        &self,
        request: &S4Request,
        deadline: Instant,
    ) -> Result<Vec<Existing>, S4Error> {
        let body = self.transport.send(request, deadline).await?;
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

    /// The items of a notification, with their causes and activities.
    pub async fn items_of(&self, number: &str, deadline: Instant) -> Result<Vec<Item>, S4Error> {
        let request = self.requests().items_of(number)?;
        let body = self.transport.send(&request, deadline).await?;
        let Some(results) = body.pointer("/d/results").and_then(Value::as_array) else {
            return Err(S4Error::Transient(
                "the items' answer has no d.results list".into(),
            ));
        };
        let text = |v: &Value, f: &str| {
            v.get(f)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let code = |v: &Value, group: &str, code: &str| {
            Some((text(v, group), text(v, code))).filter(|(g, c)| !g.is_empty() || !c.is_empty())
        };
        let children = |item: &Value, kind: ItemCode| -> Vec<(String, String)> {
            let (_, _, group, field) = kind.fields();
            item.pointer(&format!("/{}/results", kind.navigation()))
                .and_then(Value::as_array)
                .map(|all| all.iter().filter_map(|c| code(c, group, field)).collect())
                .unwrap_or_default()
        };
        Ok(results
            .iter()
            .map(|i| Item {
                item: text(i, "MaintenanceNotificationItem"),
                text: text(i, "MaintNotifItemText"),
                damage: code(
                    i,
                    "MaintNotifDamageCodeGroup",
                    "MaintNotificationDamageCode",
                ),
                causes: children(i, ItemCode::Cause),
                activities: children(i, ItemCode::Activity),
            })
            .collect())
    }

    /// Creates an item (with its damage code); returns the item's key.
    pub async fn create_item(
        &self,
        number: &str,
        text: &str,
        damage: Option<(&str, &str)>,
        deadline: Instant,
    ) -> Result<String, S4Error> {
        let request = self.requests().create_item(number, text, damage)?;
        let body = self.transport.send(&request, deadline).await?;
        body.pointer("/d/MaintenanceNotificationItem")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| S4Error::Unclear("S/4 answered without the item's key".into()))
    }

    /// Sends a write built by [`Requests`] that needs no answer but its success.
    pub async fn write(&self, request: &S4Request, deadline: Instant) -> Result<(), S4Error> {
        self.transport.send(request, deadline).await.map(|_| ())
    }

    /// Completes a notification (function import `CompleteMaintNotification`) with the time
    /// the asset recovered as its reference time.
    pub async fn complete(
        &self,
        number: &str,
        reference: Option<DateTime<Utc>>,
        deadline: Instant,
    ) -> Result<(), S4Error> {
        let request = self.requests().complete(number, reference)?;
        self.write(&request, deadline).await
    }

    /// Adds text to a notification's long text (S/4 adds it as a new block).
    pub async fn append_long_text(
        &self,
        number: &str,
        text: &str,
        deadline: Instant,
    ) -> Result<(), S4Error> {
        let request = self.requests().append_long_text(number, text)?;
        self.write(&request, deadline).await
    }

    /// Creates a notification; returns its number.
    pub async fn create(
        &self,
        notification: &NewNotification,
        deadline: Instant,
    ) -> Result<String, S4Error> {
        let request = self.requests().create(notification)?;
        let body = self.transport.send(&request, deadline).await?;
        body.pointer("/d/MaintenanceNotification")
            .and_then(Value::as_str)
            .map(str::to_string)
            // Created, perhaps: the caller looks it up by its external reference.
            .ok_or_else(|| {
                S4Error::Unclear("S/4 answered without a MaintenanceNotification number".into())
            })
    }
}
