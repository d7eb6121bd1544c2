//! Publishing to SAP Advanced Event Mesh over Solace's REST messaging protocol.
//!
//! `POST {base}/TOPIC/{topic}` (or `/QUEUE/{queue}`, or the SAP sample's fixed URL whose path is
//! the topic) with `Content-Type: application/json`, `Solace-Delivery-Mode: persistent`,
//! `Solace-Message-ID` (the event id, the same on every redelivery), `Solace-Correlation-ID`,
//! `Solace-DMQ-Eligible: true`, an optional `Solace-Time-To-Live-In-ms`, and the broker secret's
//! logon: Basic, an OAuth2 bearer token, or the TLS client certificate alone (its common name is
//! the client username); with the secret's `ca_pem` trusted besides the public roots. The
//! broker answers 200 once a persistent message is stored.
//!
//! Outcomes: 2xx is done; 5xx, 429, connection errors and timeouts are retried with exponential
//! backoff and full jitter within the attempt limit and the deadline; a 401 refreshes the
//! credentials once (a rotated secret, a new OAuth2 token, new certificates) and tries again; any
//! other 4xx is permanent and keeps the broker's reason phrase. A failure to connect is named
//! for a network team (`http::tls::explain`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{StatusCode, Url};

use crate::aws::secrets::{BrokerLogon, CachedCredentials, Credentials, SecretError, SecretStore};
use crate::event::ForwardedEvent;
use crate::http::retry::{Backoff, Stop};
use crate::http::tls::{PeerTls, explain};
use crate::outcome::{Disposed, Disposition};

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

/// How messages are published.
#[derive(Debug, Clone)]
pub struct MeshConfig {
    /// The broker's REST messaging base URL, e.g. `https://mr-connection-x.messaging.solace.cloud:9443`.
    pub base_url: Url,
    pub destination: Destination,
    /// `Solace-Time-To-Live-In-ms`, when set.
    pub message_ttl_ms: Option<u64>,
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
    /// 401 even with freshly read credentials.
    #[error(
        "401 {reason}: the broker refuses the credentials, also after reading the secret again"
    )]
    Unauthorized { reason: String },
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

/// What is posted: the event's id (the message id), topic and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    pub id: &'a str,
    pub topic: &'a str,
    pub payload: &'a str,
}

impl<'a> From<&'a ForwardedEvent> for Message<'a> {
    fn from(event: &'a ForwardedEvent) -> Self {
        Message {
            id: &event.id,
            topic: &event.topic,
            payload: &event.payload,
        }
    }
}

/// A delivered message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub attempts: u32,
}

/// Characters escaped in a topic level inside the URL path: all but RFC 3986's unreserved.
const LEVEL: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Publishes events to the mesh; one per warm Lambda, shared by all publishes.
pub struct Publisher<S> {
    http: reqwest::Client,
    /// The client for the broker secret's TLS fields (CA, client certificate), built once per
    /// secret contents: one handshake per kept connection, a new client after a rotation.
    with_tls: std::sync::Mutex<Option<(PeerTls, reqwest::Client)>>,
    config: MeshConfig,
    credentials: Arc<CachedCredentials<S>>,
    retries: AtomicU64,
}

/// The client settings every connection to the broker has.
fn client_builder(config: &MeshConfig) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(config.request_timeout.min(Duration::from_secs(5)))
        .pool_idle_timeout(Duration::from_secs(50))
        .tcp_nodelay(true)
        // A redirect would turn the POST into a GET without the event: refuse it instead.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("e2b-forwarder/", env!("CARGO_PKG_VERSION")))
}

impl<S: SecretStore> Publisher<S> {
    /// A publisher with its own connection pool (kept alive between invocations). TLS
    /// certificates are always verified.
    pub fn new(
        config: MeshConfig,
        credentials: Arc<CachedCredentials<S>>,
    ) -> Result<Self, reqwest::Error> {
        let http = client_builder(&config).build()?;
        Ok(Publisher {
            http,
            with_tls: std::sync::Mutex::new(None),
            config,
            credentials,
            retries: AtomicU64::new(0),
        })
    }

    pub fn config(&self) -> &MeshConfig {
        &self.config
    }

    /// Retries made so far by this publisher (attempts beyond the first).
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// The broker secret as the publishes use it (read when the cache has none or is stale).
    pub async fn credentials(&self) -> Result<Arc<Credentials>, SecretError> {
        self.credentials.get().await
    }

    /// Logs on without storing anything (`e2b doctor`): an OAuth2 secret's token is fetched,
    /// then one empty direct (not persistent) message is published to the topic `e2b/doctor`,
    /// outside the `monitron/` tree a queue of ours subscribes to. `Ok` says how it logged on.
    pub async fn check_logon(&self, credentials: &Credentials) -> Result<String, String> {
        let http = self
            .client_for(&credentials.tls)
            .map_err(|e| e.to_string())?;
        let mut url = self.config.base_url.clone();
        url.set_path("/TOPIC/e2b/doctor");
        url.set_query(None);
        let timeout = self.config.request_timeout;
        let request =
            logged_on(&http, http.post(url).timeout(timeout), credentials, timeout).await?;
        let how = match &credentials.logon {
            BrokerLogon::Basic { username, .. } => format!("as {username} (Basic)"),
            BrokerLogon::OAuth2(_) => "with an OAuth2 token from the token URL".to_string(),
            BrokerLogon::Certificate => "by client certificate".to_string(),
        };
        let peer = format!(
            "the broker ({})",
            self.config.base_url.host_str().unwrap_or("?")
        );
        let answer = request
            .header("Solace-Delivery-Mode", "direct")
            .header("Content-Type", "text/plain")
            .send()
            .await
            .map_err(|e| explain(&e, &peer, &credentials.tls))?;
        match answer.status() {
            s if s.is_success() => Ok(format!("logged on {how}")),
            s => Err(format!("{} {}", s.as_u16(), reason_phrase(&answer))),
        }
    }

    /// The client for the secret's TLS fields: the plain one without any, else one built once
    /// per contents of those fields.
    fn client_for(&self, tls: &PeerTls) -> Result<reqwest::Client, reqwest::Error> {
        if tls.is_empty() {
            return Ok(self.http.clone());
        }
        let mut slot = self
            .with_tls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((built_for, client)) = slot.as_ref()
            && built_for == tls
        {
            return Ok(client.clone());
        }
        let client = tls.apply(client_builder(&self.config)).build()?;
        *slot = Some((tls.clone(), client.clone()));
        Ok(client)
    }

    /// The URL an event is posted to.
    pub fn url_for(&self, topic: &str) -> Result<Url, url_error::UrlError> {
        url_for(&self.config, topic)
    }

    /// Publishes one event, retrying what a retry can fix, until `deadline`.
    pub async fn publish(
        &self,
        event: &ForwardedEvent,
        correlation_id: &str,
        deadline: Instant,
    ) -> Result<Delivered, PublishError> {
        self.send(Message::from(event), correlation_id, deadline)
            .await
    }

    /// Publishes one message (an event, or a refused one sent again), retrying what a retry
    /// can fix, until `deadline`.
    pub async fn send(
        &self,
        event: Message<'_>,
        correlation_id: &str,
        deadline: Instant,
    ) -> Result<Delivered, PublishError> {
        let url = self
            .url_for(event.topic)
            .map_err(|e| PublishError::Rejected {
                status: 0,
                reason: e.to_string(),
            })?;
        let mut attempts = 0u32;
        let mut refreshed = false;
        let mut credentials: Option<Arc<Credentials>> = None;
        loop {
            attempts += 1;
            if Instant::now() >= deadline {
                return Err(PublishError::Exhausted {
                    attempts: attempts - 1,
                    last: "no time left before the deadline".into(),
                });
            }
            let outcome = match &credentials {
                Some(c) => {
                    self.attempt(&url, &event, correlation_id, c, deadline)
                        .await
                }
                None => match self.credentials_until(deadline).await {
                    Ok(c) => {
                        let outcome = self
                            .attempt(&url, &event, correlation_id, &c, deadline)
                            .await;
                        credentials = Some(c);
                        outcome
                    }
                    Err(SecretError::Transient(e)) => Attempt::Retry(format!("secret: {e}")),
                    Err(e) => return Err(PublishError::Credentials(e)),
                },
            };
            let last = match outcome {
                Attempt::Delivered => return Ok(Delivered { attempts }),
                Attempt::Refused { status, reason } => {
                    return Err(PublishError::Rejected { status, reason });
                }
                Attempt::Unauthorized(reason) => {
                    if refreshed {
                        return Err(PublishError::Unauthorized { reason });
                    }
                    let Some(stale) = credentials.take() else {
                        return Err(PublishError::Unauthorized { reason });
                    };
                    match self.credentials.refresh(&stale).await {
                        Ok(fresh) => {
                            refreshed = true;
                            credentials = Some(fresh);
                            // A rotated secret: try again at once, not counted as a retry.
                            attempts -= 1;
                            continue;
                        }
                        // The refresh is still owed: a later attempt tries again.
                        Err(SecretError::Transient(e)) => {
                            format!("401 {reason}; reading the secret again failed: {e}")
                        }
                        Err(e) => return Err(PublishError::Credentials(e)),
                    }
                }
                Attempt::Retry(last) => last,
            };
            let pause = match self.config.retry.next(attempts, deadline) {
                Ok(pause) => pause,
                Err(Stop::Attempts(_)) => return Err(PublishError::Exhausted { attempts, last }),
                Err(Stop::Deadline) => {
                    return Err(PublishError::Exhausted {
                        attempts,
                        last: format!("{last} (no time left before the deadline)"),
                    });
                }
            };
            self.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(pause).await;
        }
    }

    /// The credentials, or a transient error once the deadline has come.
    async fn credentials_until(&self, deadline: Instant) -> Result<Arc<Credentials>, SecretError> {
        let deadline = tokio::time::Instant::from_std(deadline);
        match tokio::time::timeout_at(deadline, self.credentials.get()).await {
            Ok(result) => result,
            Err(_) => Err(SecretError::Transient(format!(
                "reading secret {} did not finish before the deadline",
                self.credentials.secret_id()
            ))),
        }
    }

    async fn attempt(
        &self,
        url: &Url,
        event: &Message<'_>,
        correlation_id: &str,
        credentials: &Credentials,
        deadline: Instant,
    ) -> Attempt {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Attempt::Retry("no time left before the deadline".into());
        }
        let http = match self.client_for(&credentials.tls) {
            Ok(http) => http,
            Err(e) => return Attempt::Retry(format!("the broker's HTTP client: {e}")),
        };
        let timeout = self.config.request_timeout.min(left);
        let request = http.post(url.clone()).timeout(timeout);
        let mut request = match logged_on(&http, request, credentials, timeout).await {
            Ok(request) => request,
            Err(e) => return Attempt::Retry(e),
        };
        request = request
            .header("Content-Type", "application/json")
            .header("Solace-Delivery-Mode", "persistent")
            .header("Solace-Message-ID", header_safe(event.id))
            .header("Solace-Correlation-ID", ascii_header(correlation_id))
            .header("Solace-DMQ-Eligible", "true")
            .body(event.payload.to_string());
        if let Some(ttl) = self.config.message_ttl_ms {
            request = request.header("Solace-Time-To-Live-In-ms", ttl.to_string());
        }
        let peer = || format!("the broker ({})", url.host_str().unwrap_or("?"));
        match request.send().await {
            Err(e) if e.is_timeout() && !e.is_connect() => Attempt::Retry("timed out".into()),
            Err(e) if e.is_connect() => Attempt::Retry(format!(
                "cannot connect: {}",
                explain(&e, &peer(), &credentials.tls)
            )),
            Err(e) => Attempt::Retry(format!(
                "request failed: {}",
                explain(&e, &peer(), &credentials.tls)
            )),
            Ok(response) => {
                let status = response.status();
                if status.is_success() {
                    return Attempt::Delivered;
                }
                let reason = reason_phrase(&response);
                let body = response.text().await.unwrap_or_default();
                let reason = with_body(reason, &body);
                match status {
                    StatusCode::UNAUTHORIZED => Attempt::Unauthorized(reason),
                    StatusCode::TOO_MANY_REQUESTS => Attempt::Retry(format!("429 {reason}")),
                    s if s.is_server_error() => Attempt::Retry(format!("{} {reason}", s.as_u16())),
                    s => Attempt::Refused {
                        status: s.as_u16(),
                        reason,
                    },
                }
            }
        }
    }
}

/// `request` with the secret's logon: Basic, an OAuth2 bearer token (cached, or fetched with
/// `http`), or nothing when the TLS client certificate is the logon. `Err`: no token.
async fn logged_on(
    http: &reqwest::Client,
    request: reqwest::RequestBuilder,
    credentials: &Credentials,
    timeout: Duration,
) -> Result<reqwest::RequestBuilder, String> {
    Ok(match &credentials.logon {
        BrokerLogon::Basic { username, password } => request.basic_auth(username, Some(password)),
        BrokerLogon::OAuth2(tokens) => {
            request.bearer_auth(tokens.token(http, false, timeout).await?)
        }
        BrokerLogon::Certificate => request,
    })
}

enum Attempt {
    Delivered,
    Refused { status: u16, reason: String },
    Unauthorized(String),
    Retry(String),
}

/// The URL for a topic under a configuration.
pub fn url_for(config: &MeshConfig, topic: &str) -> Result<Url, url_error::UrlError> {
    let base = config.base_url.as_str().trim_end_matches('/');
    let text = match &config.destination {
        Destination::FixedUrl(url) => return Ok(url.clone()),
        // Slashes stay raw in the path, for topic levels and queue names alike.
        Destination::Queue(queue) => format!("{base}/QUEUE/{}", encode_path(queue)),
        Destination::Topics => format!("{base}/TOPIC/{}", encode_path(topic)),
    };
    Url::parse(&text)
        .map_err(|e| url_error::UrlError(format!("cannot build the URL for topic `{topic}`: {e}")))
}

fn encode_path(name: &str) -> String {
    let levels: Vec<String> = name
        .split('/')
        .map(|level| utf8_percent_encode(level, LEVEL).to_string())
        .collect();
    levels.join("/")
}

pub mod url_error {
    /// A URL that could not be built.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    #[error("{0}")]
    pub struct UrlError(pub String);
}

/// The broker's own reason phrase (Solace sends e.g. `503 Spool Over Quota`), or the standard one.
fn reason_phrase(response: &reqwest::Response) -> String {
    response
        .extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .and_then(|r| std::str::from_utf8(r.as_bytes()).ok())
        .map(str::to_string)
        .or_else(|| response.status().canonical_reason().map(str::to_string))
        .unwrap_or_default()
}

fn with_body(reason: String, body: &str) -> String {
    let body = body.trim();
    if body.is_empty() || body == reason {
        return reason;
    }
    let cut: String = body.chars().take(200).collect();
    format!("{reason} ({cut})")
}

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
