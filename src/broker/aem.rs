//! SAP Advanced Event Mesh over Solace's REST messaging protocol.
//!
//! `POST {base}/TOPIC/{topic}` (or `/QUEUE/{queue}`, or the SAP sample's fixed URL whose path is
//! the topic), each level percent-encoded and the slashes kept, with
//! `Solace-Delivery-Mode: persistent`, `Solace-Message-ID` (the event id, the same on every
//! redelivery), `Solace-Correlation-ID` (the object), `Solace-DMQ-Eligible: true` and an optional
//! `Solace-Time-To-Live-In-ms`. The broker answers 200 once a persistent message is stored. The
//! doctor's probe is one empty direct (not persistent) message to the topic `e2b/doctor`, outside
//! the `monitron/` tree a queue of ours subscribes to.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{RequestBuilder, Url};

use super::{Message, Probe, UrlError, Wire, ascii_header, header_safe};
use crate::aws::secrets::Credentials;

/// Where messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// `{base}/TOPIC/{the event's topic}`.
    Topics,
    /// `{base}/QUEUE/{queue}`: every event to one queue.
    Queue(String),
    /// A fixed URL whose path is the topic (the SAP sample's `SAP_AEM_REST_URL`).
    FixedUrl(Url),
}

/// An Advanced Event Mesh service's REST messaging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AemRest {
    /// The broker's REST messaging base URL, e.g. `https://mr-connection-x.messaging.solace.cloud:9443`.
    pub base_url: Url,
    pub destination: Destination,
    /// `Solace-Time-To-Live-In-ms`, when set.
    pub message_ttl_ms: Option<u64>,
}

impl AemRest {
    /// Topics under `base_url`, no time to live.
    pub fn topics(base_url: Url) -> AemRest {
        AemRest {
            base_url,
            destination: Destination::Topics,
            message_ttl_ms: None,
        }
    }

    /// The URL for a topic.
    pub fn url_for(&self, topic: &str) -> Result<Url, UrlError> {
        let base = self.base_url.as_str().trim_end_matches('/');
        let text = match &self.destination {
            Destination::FixedUrl(url) => return Ok(url.clone()),
            // Slashes stay raw in the path, for topic levels and queue names alike.
            Destination::Queue(queue) => format!("{base}/QUEUE/{}", encode_path(queue)),
            Destination::Topics => format!("{base}/TOPIC/{}", encode_path(topic)),
        };
        Url::parse(&text)
            .map_err(|e| UrlError(format!("cannot build the URL for topic `{topic}`: {e}")))
    }
}

impl Wire for AemRest {
    fn name(&self) -> &'static str {
        "AEM"
    }

    fn address(&self, _credentials: &Credentials) -> Result<Url, UrlError> {
        Ok(self.base_url.clone())
    }

    fn url(&self, _credentials: &Credentials, topic: &str) -> Result<Url, UrlError> {
        self.url_for(topic)
    }

    fn message(
        &self,
        request: RequestBuilder,
        message: &Message<'_>,
        correlation_id: &str,
    ) -> RequestBuilder {
        let request = request
            .header("Solace-Delivery-Mode", "persistent")
            .header("Solace-Message-ID", header_safe(message.id))
            .header("Solace-Correlation-ID", ascii_header(correlation_id))
            .header("Solace-DMQ-Eligible", "true");
        match self.message_ttl_ms {
            Some(ttl) => request.header("Solace-Time-To-Live-In-ms", ttl.to_string()),
            None => request,
        }
    }

    fn probe(&self, _credentials: &Credentials) -> Result<(Url, Probe), UrlError> {
        let mut url = self.base_url.clone();
        url.set_path("/TOPIC/e2b/doctor");
        url.set_query(None);
        Ok((url, &[("Solace-Delivery-Mode", "direct")]))
    }
}

/// Characters escaped in a topic level inside the URL path: all but RFC 3986's unreserved.
const LEVEL: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn encode_path(name: &str) -> String {
    let levels: Vec<String> = name
        .split('/')
        .map(|level| utf8_percent_encode(level, LEVEL).to_string())
        .collect();
    levels.join("/")
}
