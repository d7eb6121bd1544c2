//! SAP Event Mesh over its REST API for messaging (`messagingrest`).
//!
//! Rules (SAP Event Mesh, "Use REST APIs to Send and Receive Messages" and the `messagingrest`
//! API reference; `docs/operations.md` cites them):
//! - the address is the service key's `httprest` `uri` ([`crate::aws::secrets::service_key`]);
//! - a message goes to `POST {uri}/messagingrest/v1/topics/{topic}/messages`, the topic being
//!   our topic under the key's namespace in Event Mesh's alphabet
//!   ([`crate::event::topic::event_mesh_topic`]), written as one path segment: `/` as `%2F`;
//! - with a queue (`EVENT_MESH_QUEUE`, its full name as the Event Mesh dashboard shows it) every
//!   message goes to `POST {uri}/messagingrest/v1/queues/{queue}/messages` instead;
//! - `x-qos: 1` (at least once: the message is stored before the answer), the same body and
//!   `Content-Type` as for Advanced Event Mesh; Event Mesh answers 204 (any 2xx is taken);
//! - the doctor's probe is one empty message with `x-qos: 0` to `{namespace}/e2b/doctor`, a topic
//!   our queue's subscription (`{namespace}/monitron/*`...) does not take.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{RequestBuilder, Url};

use super::{Message, Probe, UrlError, Wire};
use crate::aws::secrets::{Credentials, MessagingEndpoint};
use crate::event::topic::event_mesh_topic;

/// An SAP Event Mesh instance's REST messaging; its address and namespace come with the service
/// key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventMeshRest {
    /// Every message to this queue (`EVENT_MESH_QUEUE`) instead of the event's topic.
    pub queue: Option<String>,
}

/// One path segment: everything but RFC 3986's unreserved characters percent-encoded, `/` too.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

impl EventMeshRest {
    fn endpoint<'a>(
        &self,
        credentials: &'a Credentials,
    ) -> Result<&'a MessagingEndpoint, UrlError> {
        credentials.messaging.as_ref().ok_or_else(|| {
            UrlError(format!(
                "secret {} is not an SAP Event Mesh service key (no `httprest` entry was read)",
                credentials.tls.secret
            ))
        })
    }

    fn post_to(endpoint: &MessagingEndpoint, kind: &str, name: &str) -> Result<Url, UrlError> {
        let base = endpoint.uri.as_str().trim_end_matches('/');
        let name = utf8_percent_encode(name, SEGMENT);
        Url::parse(&format!("{base}/messagingrest/v1/{kind}/{name}/messages"))
            .map_err(|e| UrlError(format!("cannot build the Event Mesh URL for `{name}`: {e}")))
    }

    /// The Event Mesh topic our `topic` is published to under the key's namespace.
    pub fn topic(endpoint: &MessagingEndpoint, topic: &str) -> String {
        event_mesh_topic(&endpoint.namespace, topic)
    }
}

impl Wire for EventMeshRest {
    fn name(&self) -> &'static str {
        "EventMesh"
    }

    fn address(&self, credentials: &Credentials) -> Result<Url, UrlError> {
        Ok(self.endpoint(credentials)?.uri.clone())
    }

    fn url(&self, credentials: &Credentials, topic: &str) -> Result<Url, UrlError> {
        let endpoint = self.endpoint(credentials)?;
        match &self.queue {
            Some(queue) => Self::post_to(endpoint, "queues", queue),
            None => Self::post_to(endpoint, "topics", &Self::topic(endpoint, topic)),
        }
    }

    fn message(
        &self,
        request: RequestBuilder,
        _message: &Message<'_>,
        _correlation_id: &str,
    ) -> RequestBuilder {
        request.header("x-qos", "1")
    }

    fn probe(&self, credentials: &Credentials) -> Result<(Url, Probe), UrlError> {
        let endpoint = self.endpoint(credentials)?;
        let url = Self::post_to(endpoint, "topics", &Self::topic(endpoint, "e2b/doctor"))?;
        Ok((url, &[("x-qos", "0")]))
    }
}
