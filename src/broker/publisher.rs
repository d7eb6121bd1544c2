//! The one publisher for every broker: the logon from the broker secret, a connection pool per
//! TLS identity, retries; an OAuth2 token the broker had accepted and then refused replaced each time, a 401
//! to credentials it never accepted answered by reading the secret again once. How a message
//! becomes a request is the broker's [`Wire`]; the rules are in the [module doc](super).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::{StatusCode, Url};
use tracing::Instrument;

use super::{BrokerConfig, Delivered, Message, PublishError, UrlError, Wire};
use crate::aws::secrets::{BrokerLogon, CachedCredentials, Credentials, SecretError, SecretStore};
use crate::event::ForwardedEvent;
use crate::http::oauth::Refusal;
use crate::http::retry::Stop;
use crate::http::tls::{PeerTls, explain};

/// Publishes events to the broker; one per warm Lambda, shared by all publishes.
pub struct Publisher<S> {
    http: reqwest::Client,
    /// The client for the broker secret's TLS fields (CA, client certificate), built once per
    /// secret contents: one handshake per kept connection, a new client after a rotation.
    with_tls: std::sync::Mutex<Option<(PeerTls, reqwest::Client)>>,
    config: BrokerConfig,
    credentials: Arc<CachedCredentials<S>>,
    retries: AtomicU64,
}

/// The client settings every connection to the broker has.
fn client_builder(config: &BrokerConfig) -> reqwest::ClientBuilder {
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
        config: BrokerConfig,
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

    pub fn config(&self) -> &BrokerConfig {
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

    /// Where the broker is: configured, or (Event Mesh) in the service key.
    pub fn address(&self, credentials: &Credentials) -> Result<Url, UrlError> {
        self.wire().address(credentials)
    }

    fn wire(&self) -> &dyn Wire {
        self.config.broker.wire()
    }

    /// Logs on without storing anything (`e2b doctor`): an OAuth2 token is fetched, then the
    /// broker's probe (an empty message that is not stored) is posted. `Ok` says how it logged on.
    pub async fn check_logon(&self, credentials: &Credentials) -> Result<String, String> {
        let http = self
            .client_for(&credentials.tls)
            .map_err(|e| e.to_string())?;
        let (url, headers) = self.wire().probe(credentials).map_err(|e| e.to_string())?;
        let peer = format!("the broker ({})", url.host_str().unwrap_or("?"));
        let timeout = self.config.request_timeout;
        let (mut request, _) =
            logged_on(&http, http.post(url).timeout(timeout), credentials, timeout).await?;
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let how = match &credentials.logon {
            BrokerLogon::Basic { username, .. } => format!("as {username} (Basic)"),
            BrokerLogon::OAuth2(_) => "with an OAuth2 token from the token URL".to_string(),
            BrokerLogon::Certificate => "by client certificate".to_string(),
        };
        let answer = request
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
    /// can fix, until `deadline`, in the span of its publish (`crate::trace::publish_span`):
    /// when spans are exported, the `traceparent` sent, in the payload and the header, is that
    /// span's.
    pub async fn send(
        &self,
        event: Message<'_>,
        correlation_id: &str,
        deadline: Instant,
    ) -> Result<Delivered, PublishError> {
        let Some(own) = event.trace else {
            return self.send_in_span(event, correlation_id, deadline).await;
        };
        let (span, sent) = crate::trace::publish_span(&own, event.id, event.topic);
        let rewritten;
        let event = if sent == own {
            event
        } else {
            rewritten = event
                .payload
                .replacen(&own.to_string(), &sent.to_string(), 1);
            Message {
                payload: &rewritten,
                trace: Some(sent),
                ..event
            }
        };
        self.send_in_span(event, correlation_id, deadline)
            .instrument(span)
            .await
    }

    async fn send_in_span(
        &self,
        event: Message<'_>,
        correlation_id: &str,
        deadline: Instant,
    ) -> Result<Delivered, PublishError> {
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
                Some(c) => self.attempt(&event, correlation_id, c, deadline).await,
                None => match self.credentials_until(deadline).await {
                    Ok(c) => {
                        let outcome = self.attempt(&event, correlation_id, &c, deadline).await;
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
                Attempt::Unauthorized { reason, token } => {
                    // A token the broker had accepted was revoked: a new one, as often as that
                    // happens. One it never accepted: the secret below.
                    let renewed = match (&token, &credentials) {
                        (Some(token), Some(c)) => self.renewed(c, token, deadline).await,
                        _ => Ok(false),
                    };
                    match renewed {
                        Ok(true) => {
                            attempts -= 1;
                            continue;
                        }
                        Ok(false) => {}
                        Err(e) => {
                            self.retry_after(attempts, deadline, format!("401 {reason}; {e}"))
                                .await?;
                            continue;
                        }
                    }
                    if refreshed {
                        return Err(PublishError::Unauthorized {
                            reason,
                            secret: self.credentials.secret_id().to_string(),
                        });
                    }
                    let Some(stale) = credentials.take() else {
                        return Err(PublishError::Unauthorized {
                            reason,
                            secret: self.credentials.secret_id().to_string(),
                        });
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
            self.retry_after(attempts, deadline, last).await?;
        }
    }

    /// Waits before the next attempt, or says why there is none.
    async fn retry_after(
        &self,
        attempts: u32,
        deadline: Instant,
        last: String,
    ) -> Result<(), PublishError> {
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
        Ok(())
    }

    /// After a 401 to an OAuth2 `token`: `true` when a new token is cached (the broker had
    /// accepted this one, so it was revoked), `false` when the broker never accepted it (the
    /// secret is read again); `Err` when the token endpoint failed.
    async fn renewed(
        &self,
        credentials: &Credentials,
        token: &str,
        deadline: Instant,
    ) -> Result<bool, String> {
        let BrokerLogon::OAuth2(tokens) = &credentials.logon else {
            return Ok(false);
        };
        let http = self
            .client_for(&credentials.tls)
            .map_err(|e| format!("the broker's HTTP client: {e}"))?;
        let timeout = self
            .config
            .request_timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        match tokens.refused(&http, token, timeout).await? {
            Refusal::Renewed => Ok(true),
            Refusal::NeverAccepted => Ok(false),
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
        event: &Message<'_>,
        correlation_id: &str,
        credentials: &Credentials,
        deadline: Instant,
    ) -> Attempt {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Attempt::Retry("no time left before the deadline".into());
        }
        let url = match self.wire().url(credentials, event.topic) {
            Ok(url) => url,
            Err(e) => {
                return Attempt::Refused {
                    status: 0,
                    reason: e.to_string(),
                };
            }
        };
        let http = match self.client_for(&credentials.tls) {
            Ok(http) => http,
            Err(e) => return Attempt::Retry(format!("the broker's HTTP client: {e}")),
        };
        let timeout = self.config.request_timeout.min(left);
        let request = http.post(url.clone()).timeout(timeout);
        let (mut request, token) = match logged_on(&http, request, credentials, timeout).await {
            Ok(logged_on) => logged_on,
            Err(e) => return Attempt::Retry(e),
        };
        let in_flight = match (&credentials.logon, &token) {
            (BrokerLogon::OAuth2(tokens), Some(token)) => Some(tokens.sent(token)),
            _ => None,
        };
        request = request.header("Content-Type", "application/json");
        if let Some(trace) = event.trace {
            request = request.header("traceparent", trace.to_string());
        }
        request = self
            .wire()
            .message(request, event, correlation_id)
            .body(event.payload.to_string());
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
                if let Some(in_flight) = in_flight {
                    in_flight.answered(status);
                }
                if status.is_success() {
                    return Attempt::Delivered;
                }
                let reason = reason_phrase(&response);
                let body = response.text().await.unwrap_or_default();
                let reason = with_body(reason, &body);
                match status {
                    StatusCode::UNAUTHORIZED => Attempt::Unauthorized { reason, token },
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
/// `http`; returned too), or nothing when the TLS client certificate is the logon. `Err`: no
/// token.
async fn logged_on(
    http: &reqwest::Client,
    request: reqwest::RequestBuilder,
    credentials: &Credentials,
    timeout: Duration,
) -> Result<(reqwest::RequestBuilder, Option<String>), String> {
    Ok(match &credentials.logon {
        BrokerLogon::Basic { username, password } => {
            (request.basic_auth(username, Some(password)), None)
        }
        BrokerLogon::OAuth2(tokens) => {
            let token = tokens.token(http, timeout).await?;
            (request.bearer_auth(&token), Some(token))
        }
        BrokerLogon::Certificate => (request, None),
    })
}

enum Attempt {
    Delivered,
    Refused {
        status: u16,
        reason: String,
    },
    /// A 401, with the OAuth2 token it refused.
    Unauthorized {
        reason: String,
        token: Option<String>,
    },
    Retry(String),
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
