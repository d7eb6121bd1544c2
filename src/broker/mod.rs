//! The brokers the forwarder publishes to, behind one small trait ([`Wire`]): SAP Advanced Event
//! Mesh over Solace's REST messaging ([`aem`]) and SAP Event Mesh over its `messagingrest` API
//! ([`event_mesh`]). What a broker adapter says is only how a message becomes a request: its URL,
//! its headers, and a probe that stores nothing (`e2b doctor`). Everything else is one
//! [`Publisher`] for both:
//!
//! - the logon comes from the broker secret ([`crate::aws::secrets`]): Basic, an OAuth2 bearer
//!   token (a service key's, for Event Mesh), or the TLS client certificate; the secret's
//!   `ca_pem` is trusted besides the public roots;
//! - outcomes: 2xx is done; 5xx, 429, connection errors and timeouts are retried with
//!   exponential backoff and full jitter within the attempt limit and the deadline; a 401 to an
//!   OAuth2 token the broker had accepted fetches a new token and tries again, however often
//!   (tokens are revoked under load; [`crate::http::oauth`]); any other 401 reads the secret
//!   again once (a rotated secret) and tries again, then fails naming the secret; any other 4xx
//!   (400, 403, 413, ...) is a refusal of the message for good and keeps the broker's reason;
//! - a failure to connect is named for a network team (`http::tls::explain`).

use std::time::Duration;

use percent_encoding::{AsciiSet, utf8_percent_encode};
use reqwest::{RequestBuilder, Url};

use crate::aws::secrets::{Credentials, SecretError};
use crate::event::ForwardedEvent;
use crate::http::retry::Backoff;
use crate::outcome::{Disposed, Disposition};
use crate::trace::TraceParent;

pub mod aem;
pub mod event_mesh;
mod publisher;

pub use aem::{AemRest, Destination};
pub use event_mesh::EventMeshRest;
pub use publisher::Publisher;

/// How one broker takes messages over HTTP.
pub trait Wire: Send + Sync {
    /// The broker's name in metrics (the `Broker` dimension) and logs.
    fn name(&self) -> &'static str;
    /// Where the broker is, for messages and the network checks; an Event Mesh service key says.
    fn address(&self, credentials: &Credentials) -> Result<Url, UrlError>;
    /// The URL a message on `topic` (our topic) is posted to.
    fn url(&self, credentials: &Credentials, topic: &str) -> Result<Url, UrlError>;
    /// The broker's headers on a message that must be stored (`Content-Type` is set already).
    fn message(
        &self,
        request: RequestBuilder,
        message: &Message<'_>,
        correlation_id: &str,
    ) -> RequestBuilder;
    /// A message that logs on and is not stored (`e2b doctor`): its URL and headers; its body
    /// is empty.
    fn probe(&self, credentials: &Credentials) -> Result<(Url, Probe), UrlError>;
}

/// The headers of the doctor's probe.
pub type Probe = &'static [(&'static str, &'static str)];

/// Which broker, and how to address it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Broker {
    /// SAP Advanced Event Mesh (Solace REST messaging).
    Aem(AemRest),
    /// SAP Event Mesh (`messagingrest`), its address in the service key.
    EventMesh(EventMeshRest),
}

impl Broker {
    /// The adapter that turns messages into this broker's requests.
    pub fn wire(&self) -> &dyn Wire {
        match self {
            Broker::Aem(wire) => wire,
            Broker::EventMesh(wire) => wire,
        }
    }

    /// The metrics' `Broker` dimension: `AEM` or `EventMesh`.
    pub fn name(&self) -> &'static str {
        self.wire().name()
    }
}

/// How messages are published.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub broker: Broker,
    /// Time allowed for one HTTP request.
    pub request_timeout: Duration,
    /// Attempts per message (the first included) and pauses between them (base 100 ms, cap 5 s, full jitter).
    pub retry: Backoff,
}

/// Why a message was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The broker refused it for good (4xx other than 401 and 429): status and reason phrase.
    #[error("refused by the broker: {status} {reason}")]
    Rejected { status: u16, reason: String },
    /// 401 even with freshly read credentials (a token it never accepted, after the secret was
    /// read again).
    #[error(
        "401 {reason}: the broker refuses the credentials of secret {secret}, also after reading it again (check the secret's client or user and password)"
    )]
    Unauthorized { reason: String, secret: String },
    /// Retryable failures until the attempts or the time ran out; the last one. A later
    /// invocation may deliver it.
    #[error("not delivered after {attempts} attempts; last: {last}")]
    Exhausted { attempts: u32, last: String },
    /// The credentials could not be read.
    #[error("no broker credentials: {0}")]
    Credentials(SecretError),
}

impl Disposed for PublishError {
    /// Only a refusal of the message itself is given up; credentials refused or unreadable
    /// are fixed once for every event, so the invocation fails and Lambda retries.
    fn disposition(&self) -> Disposition {
        match self {
            PublishError::Rejected { .. } => Disposition::GiveUp,
            PublishError::Unauthorized { .. }
            | PublishError::Exhausted { .. }
            | PublishError::Credentials(_) => Disposition::Retry,
        }
    }
}

/// What is posted: the event's id (the message id), topic and payload, and its trace (the
/// request's `traceparent` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    pub id: &'a str,
    pub topic: &'a str,
    pub payload: &'a str,
    pub trace: Option<TraceParent>,
}

impl<'a> From<&'a ForwardedEvent> for Message<'a> {
    fn from(event: &'a ForwardedEvent) -> Self {
        Message {
            id: &event.id,
            topic: &event.topic,
            payload: &event.payload,
            trace: Some(event.trace),
        }
    }
}

/// A delivered message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub attempts: u32,
}

/// A URL that could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UrlError(pub String);

/// Characters escaped in the correlation id (an S3 key, `s3://bucket/key`): what is not printable
/// ASCII, and `%` itself, so that the value reads back with one percent-decoding.
const HEADER: &AsciiSet = &percent_encoding::CONTROLS.add(b'%').add(b' ').add(b'"');

/// A header value in ASCII: UTF-8 bytes (`Pumpe Süd`) and controls percent-encoded.
pub fn ascii_header(value: &str) -> String {
    utf8_percent_encode(value, HEADER).to_string()
}

/// Header values cannot hold control characters; ids from the export never do, but be safe.
fn header_safe(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { '_' } else { c })
        .collect()
}

#[cfg(test)]
mod tests;
