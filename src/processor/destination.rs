//! Calling a rule file's destinations: base URL, credentials from Secrets Manager (Basic,
//! bearer, or OAuth2 client credentials with the token cached), `sap-client`, extra headers,
//! and SAP's CSRF token when a step asks for it.
//!
//! One client per destination per warm Lambda, with its own cookies. A request is sent again
//! only when it surely did not arrive (no connection, 408, 429) or when it is a read; anything
//! else that may have been carried out is reported, never repeated blindly.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode, Url};
use serde_json::Value;
use tokio::sync::Mutex;
use tracing::Instrument;

use crate::aws::secrets::{SecretError, SecretStore};
use crate::http::oauth::{ClientCredentials, Refusal, TokenCache};
use crate::http::retry::Backoff;
use crate::http::tls::{PeerTls, explain};
use crate::outcome::{Disposed, Disposition};
use crate::processor::rules::actions::{AuthKind, DestinationSpec};

/// A request to send, rendered from a step.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: Method,
    /// Added to the destination's URL; placeholders already encoded.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
    pub csrf: bool,
    /// Statuses that mean success; empty = any 2xx.
    pub expect: Vec<u16>,
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// A later attempt may work (down, timeout, 5xx, 429, credentials not readable now, or
    /// refused even after the secret was read again: someone must fix the credentials, and
    /// the mesh keeps the event meanwhile).
    #[error("{0}")]
    Transient(String),
    /// The destination refused it, or it is misconfigured: a redelivery cannot help.
    #[error("{0}")]
    Permanent(String),
    /// 401/403: the secret may have been rotated (handled inside [`Destinations::call`]).
    #[error("{0}")]
    Unauthorized(String),
}

impl Disposed for CallError {
    fn disposition(&self) -> Disposition {
        match self {
            CallError::Transient(_) | CallError::Unauthorized(_) => Disposition::Retry,
            CallError::Permanent(_) => Disposition::GiveUp,
        }
    }
}

enum Credentials {
    None,
    Basic(String, String),
    Bearer(String),
    ApiKey(String, String),
    OAuth2(TokenCache),
}

struct Client {
    name: String,
    retry: Backoff,
    spec: DestinationSpec,
    http: reqwest::Client,
    credentials: Credentials,
    /// The secret's TLS fields (in `http`; kept to name a failure).
    tls: PeerTls,
    csrf: Mutex<Option<String>>,
}

/// The destinations' clients, made on first use.
pub struct Destinations {
    secrets: Option<aws_sdk_secretsmanager::Client>,
    clients: Mutex<HashMap<String, Arc<Client>>>,
    retry: Backoff,
}

/// The destinations' retry schedule unless configured (`DESTINATION_MAX_ATTEMPTS`).
pub const DEFAULT_RETRY: Backoff = Backoff {
    base: Duration::from_millis(200),
    cap: Duration::from_millis(6_400),
    attempts: 3,
};

impl Default for Destinations {
    fn default() -> Self {
        Destinations::new(None, DEFAULT_RETRY)
    }
}

impl Destinations {
    pub fn new(secrets: Option<aws_sdk_secretsmanager::Client>, retry: Backoff) -> Destinations {
        Destinations {
            secrets,
            clients: Mutex::new(HashMap::new()),
            retry,
        }
    }

    /// Sends a call to a destination and returns the answer's body (JSON, or the text as a
    /// JSON string; `null` when empty).
    pub async fn call(
        &self,
        name: &str,
        spec: &DestinationSpec,
        call: &Call,
        deadline: Instant,
    ) -> Result<Value, CallError> {
        let client = self.client(name, spec).await?;
        match client.send(call, deadline).await {
            Err(CallError::Unauthorized(_)) if spec.secret.is_some() => {
                // The secret may have been rotated: read it again once, with a new session.
                self.clients.lock().await.remove(name);
                let client = self.client(name, spec).await?;
                client.send(call, deadline).await.map_err(|e| match e {
                    CallError::Unauthorized(m) => CallError::Transient(format!(
                        "{m} (also with the secret read again: check the destination's credentials)"
                    )),
                    other => other,
                })
            }
            Err(CallError::Unauthorized(m)) => Err(CallError::Permanent(format!(
                "{m} (the destination wants credentials: give it `auth` and `secret`)"
            ))),
            other => other,
        }
    }

    /// The URL a call goes to (for failure records and `e2b rules test`).
    pub fn url_of(spec: &DestinationSpec, path: &str) -> String {
        format!("{}{path}", spec.url.trim_end_matches('/'))
    }

    async fn client(&self, name: &str, spec: &DestinationSpec) -> Result<Arc<Client>, CallError> {
        let mut clients = self.clients.lock().await;
        if let Some(c) = clients.get(name).filter(|c| c.spec == *spec) {
            return Ok(c.clone());
        }
        let (credentials, tls) = match (&spec.auth, &spec.secret) {
            (AuthKind::None, _) => (Credentials::None, PeerTls::default()),
            (_, None) => {
                return Err(CallError::Permanent(format!(
                    "destination {name} has no secret"
                )));
            }
            (kind, Some(secret)) => {
                let header = spec.api_key_header.as_deref().unwrap_or("APIKey");
                self.credentials(name, *kind, secret, header).await?
            }
        };
        let timeout = Duration::from_millis(spec.timeout_ms.unwrap_or(8_000));
        let builder = reqwest::Client::builder()
            .cookie_store(true)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("e2b-processor/", env!("CARGO_PKG_VERSION")));
        let http = tls
            .apply(builder)
            .build()
            .map_err(|e| CallError::Permanent(format!("destination {name}: {e}")))?;
        let client = Arc::new(Client {
            name: name.to_string(),
            retry: self.retry,
            spec: spec.clone(),
            http,
            credentials,
            tls,
            csrf: Mutex::new(None),
        });
        clients.insert(name.to_string(), client.clone());
        Ok(client)
    }

    async fn credentials(
        &self,
        name: &str,
        kind: AuthKind,
        secret: &str,
        header: &str,
    ) -> Result<(Credentials, PeerTls), CallError> {
        let Some(store) = &self.secrets else {
            return Err(CallError::Permanent(format!(
                "destination {name}: no Secrets Manager client to read {secret}"
            )));
        };
        let text = store.secret_string(secret).await.map_err(|e| match e {
            SecretError::Transient(m) => CallError::Transient(format!("destination {name}: {m}")),
            SecretError::Permanent(m) => CallError::Permanent(format!("destination {name}: {m}")),
        })?;
        let bad = |what: &str| {
            CallError::Permanent(format!("destination {name}: secret {secret} needs {what}"))
        };
        let value: Value = serde_json::from_str(&text).map_err(|_| bad("to be a JSON object"))?;
        let tls = PeerTls::from_json(secret, &value)
            .map_err(|e| CallError::Permanent(format!("destination {name}: {e}")))?;
        let field = |f: &str| value.get(f).and_then(Value::as_str).map(str::to_string);
        let credentials = match kind {
            AuthKind::None => Ok(Credentials::None),
            AuthKind::Basic => match (field("username"), field("password")) {
                (Some(u), Some(p)) => Ok(Credentials::Basic(u, p)),
                _ => Err(bad("`username` and `password`")),
            },
            AuthKind::Bearer => field("token")
                .map(Credentials::Bearer)
                .ok_or_else(|| bad("`token`")),
            AuthKind::ApiKey => field("api_key")
                .map(|key| Credentials::ApiKey(header.to_string(), key))
                .ok_or_else(|| bad("`api_key`")),
            AuthKind::Oauth2 => match ClientCredentials::from_json(&value) {
                Some(Ok(c))
                    if c.token_url.scheme() != "https"
                        && !crate::processor::rules::actions::is_loopback(&c.token_url) =>
                {
                    Err(bad(
                        "an https token_url (the client secret would travel in clear text)",
                    ))
                }
                Some(Ok(c)) => Ok(Credentials::OAuth2(TokenCache::new(c))),
                Some(Err(e)) => Err(bad(&e)),
                None => Err(bad("`client_id`, `client_secret` and `token_url`")),
            },
        }?;
        Ok((credentials, tls))
    }
}

impl Client {
    /// A failure to reach the destination, named for a network team.
    fn explain(&self, e: &reqwest::Error) -> String {
        explain(e, &format!("destination {}", self.name), &self.tls)
    }

    fn timeout(&self, deadline: Instant) -> Result<Duration, CallError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(CallError::Transient(format!(
                "destination {}: no time left before the reply budget",
                self.name
            )));
        }
        Ok(Duration::from_millis(self.spec.timeout_ms.unwrap_or(8_000)).min(left))
    }

    fn url(&self, path: &str) -> Result<Url, CallError> {
        let mut url = Url::parse(&Destinations::url_of(&self.spec, path)).map_err(|e| {
            CallError::Permanent(format!("destination {}: bad URL: {e}", self.name))
        })?;
        if let Some(client) = &self.spec.sap_client {
            url.query_pairs_mut().append_pair("sap-client", client);
        }
        Ok(url)
    }

    /// The request with the destination's headers and credentials, and the OAuth2 token it
    /// carries.
    async fn authorize(
        &self,
        request: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<(reqwest::RequestBuilder, Option<String>), CallError> {
        let mut request = request;
        for (k, v) in &self.spec.headers {
            request = request.header(k, v);
        }
        Ok(match &self.credentials {
            Credentials::None => (request, None),
            Credentials::Basic(u, p) => (request.basic_auth(u, Some(p)), None),
            Credentials::Bearer(t) => (request.bearer_auth(t), None),
            Credentials::ApiKey(header, key) => (request.header(header, key), None),
            Credentials::OAuth2(cache) => {
                let token = cache
                    .token(&self.http, timeout)
                    .await
                    .map_err(|e| CallError::Transient(format!("destination {}: {e}", self.name)))?;
                (request.bearer_auth(&token), Some(token))
            }
        })
    }

    async fn csrf_token(&self, refresh: bool, deadline: Instant) -> Result<String, CallError> {
        let mut cached = self.csrf.lock().await;
        if !refresh && let Some(token) = cached.as_ref() {
            return Ok(token.clone());
        }
        let timeout = self.timeout(deadline)?;
        let span = crate::trace::client_span("destination", "GET");
        let request = crate::trace::traced(self.http.get(self.url("/")?).timeout(timeout), &span);
        let fetched = crate::http::sap::fetch_csrf_token(self.authorize(request, timeout).await?.0)
            .instrument(span)
            .await
            .map_err(|e| {
                CallError::Transient(format!("destination {}: CSRF fetch failed: {e}", self.name))
            })?;
        let token = match fetched {
            Ok(token) => token,
            Err(no) => {
                let status = no.status;
                let message = format!("destination {}: CSRF fetch answered {status}", self.name);
                return Err(match status.as_u16() {
                    401 | 403 => CallError::Unauthorized(message),
                    429 => CallError::Transient(message),
                    _ if status.is_server_error() => CallError::Transient(message),
                    _ => CallError::Permanent(format!("{message} (check the destination's url)")),
                });
            }
        };
        *cached = Some(token.clone());
        Ok(token)
    }

    async fn send(&self, call: &Call, deadline: Instant) -> Result<Value, CallError> {
        let name = &self.name;
        let read = call.method == Method::GET;
        let url = self.url(&call.path)?;
        let (mut csrf_refreshed, mut attempts) = (false, 0u32);
        loop {
            attempts += 1;
            let timeout = self.timeout(deadline)?;
            let span = crate::trace::client_span("destination", call.method.as_str());
            let mut request =
                crate::trace::traced(self.http.request(call.method.clone(), url.clone()), &span)
                    .timeout(timeout)
                    .header("Accept", "application/json");
            let (authorized, token) = self.authorize(request, timeout).await?;
            request = authorized;
            let tokens = match &self.credentials {
                Credentials::OAuth2(cache) => Some(cache),
                _ => None,
            };
            let in_flight = tokens.zip(token.as_deref()).map(|(c, t)| c.sent(t));
            for (k, v) in &call.headers {
                request = request.header(k, v);
            }
            if call.csrf {
                request = request.header("x-csrf-token", self.csrf_token(false, deadline).await?);
            }
            if let Some(body) = &call.body {
                request = request.json(body);
            }
            let (failure, again) = match request.send().instrument(span).await {
                Err(e) if e.is_connect() => (format!("cannot connect: {}", self.explain(&e)), true),
                Err(e) if e.is_timeout() => (format!("no answer within {timeout:?}"), read),
                // A request that cannot even be built (a bad header) never will be.
                Err(e) if e.is_builder() => {
                    return Err(CallError::Permanent(format!(
                        "destination {name}: {} {}: the request cannot be built: {e}",
                        call.method, call.path
                    )));
                }
                Err(e) => (format!("request failed: {}", self.explain(&e)), read),
                Ok(response) => {
                    let status = response.status();
                    if let Some(in_flight) = in_flight {
                        in_flight.answered(status);
                    }
                    let csrf_required = crate::http::sap::csrf_required(response.headers());
                    let text = response.text().await.unwrap_or_default();
                    let success = if call.expect.is_empty() {
                        status.is_success()
                    } else {
                        call.expect.contains(&status.as_u16())
                    };
                    if success {
                        return Ok(answer(&text));
                    }
                    if status == StatusCode::FORBIDDEN
                        && csrf_required
                        && call.csrf
                        && !csrf_refreshed
                    {
                        csrf_refreshed = true;
                        self.csrf_token(true, deadline).await?;
                        attempts -= 1;
                        continue;
                    }
                    if let (Some(cache), Some(token)) = (tokens, &token)
                        && status == StatusCode::UNAUTHORIZED
                    {
                        // A token it had accepted was revoked (or expired early): a new one,
                        // as often as that happens; one it never accepted: the credentials.
                        let refusal = cache.refused(&self.http, token, timeout).await;
                        if refusal
                            .map_err(|e| CallError::Transient(format!("destination {name}: {e}")))?
                            == Refusal::Renewed
                        {
                            attempts -= 1;
                            continue;
                        }
                    }
                    let reason = crate::http::sap::error_message(&text)
                        .unwrap_or_else(|| text.chars().take(300).collect());
                    let described = format!(
                        "destination {name}: {} {} answered {}{}",
                        call.method,
                        call.path,
                        status.as_u16(),
                        if reason.is_empty() {
                            String::new()
                        } else {
                            format!(": {reason}")
                        }
                    );
                    match status.as_u16() {
                        401 | 403 => return Err(CallError::Unauthorized(described)),
                        408 | 429 => (described, true),
                        s if s >= 500 => (described, read),
                        _ => return Err(CallError::Permanent(described)),
                    }
                }
            };
            // Only a request that surely did not arrive, or a read, is sent again.
            let next = if again {
                self.retry.next(attempts, deadline).ok()
            } else {
                None
            };
            let Some(pause) = next else {
                return Err(CallError::Transient(
                    if failure.starts_with("destination") {
                        failure
                    } else {
                        format!(
                            "destination {name}: {} {}: {failure}",
                            call.method, call.path
                        )
                    },
                ));
            };
            tokio::time::sleep(pause).await;
        }
    }
}

fn answer(text: &str) -> Value {
    if text.trim().is_empty() {
        return Value::Null;
    }
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}
