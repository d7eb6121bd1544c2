//! Sending a request to S/4: credentials, CSRF token, retries, and the recoveries a refused
//! request may make.
//!
//! Rules:
//! - a write carries the session's CSRF token (fetched once with `x-csrf-token: Fetch`, reused
//!   across warm invocations); `403` with `x-csrf-token: Required` fetches a new one, once;
//! - `401` with OAuth2 to a token S/4 had accepted asks for a new access token (it expired early
//!   or was revoked), as often as that happens, one token request for every request that saw it
//!   ([`crate::http::oauth`]); to a token S/4 never accepted, the credentials are refused:
//! - refused credentials (a `401`, a CSRF fetch answered `401`, no OAuth2 token) read the
//!   secret again, at most once a minute, when the client was given it: if it holds other
//!   credentials, a new session replaces the old one and the request goes again at once
//!   (S/4 did nothing with it). A warm processor thus picks up a rotated password or client
//!   secret at the first refusal, without a redeploy;
//! - a failure is retried by the schedule of [`crate::http::retry`] when the request surely did
//!   not reach S/4 (no connection, `408`, `409` (locked), `412`, `429`) or is a read (timeouts,
//!   `5xx` too); a write whose outcome is unknown is never repeated: [`S4Error::Unclear`], and
//!   the caller looks first;
//! - every request made for an alert (CSRF fetches included) carries its `traceparent`, a span
//!   of its own in the alert's trace (`crate::trace`);
//! - with a request rate set, every attempt and every CSRF fetch takes a token first
//!   (`limit`);
//! - a `401` that no recovery cures is `Transient` (the S/4 user's credentials are wrong for
//!   every event alike: the mesh redelivers until they are fixed); every other `4xx`, a `403`
//!   without `x-csrf-token: Required` included (S/4 authorises per plant and object, so it can
//!   be this event's), is `Permanent`, with SAP's reason: given up and recorded for
//!   `e2b reprocess` (`docs/actions.md`, the classification table).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Instant;

use reqwest::StatusCode;
use serde_json::Value;
use tracing::Instrument;

use super::auth::{S4Auth, S4Logon};
use super::config::S4Config;
use super::error::S4Error;
use super::limit::RequestGate;
use super::request::{Requests, S4Request};
use super::session::{Session, Sessions, Unprepared};
use crate::aws::secrets::{Reread, SecretError};
use crate::http::oauth::Refusal;
use crate::http::sap;
use crate::http::tls::explain;

/// The HTTP side of the client: sessions, counters, and the send loop.
pub(super) struct Transport {
    config: S4Config,
    requests: Requests,
    sessions: Sessions,
    round_trips: AtomicU64,
    csrf_fetches: AtomicU64,
    /// The shared request rate (`S4_MAX_REQUESTS_PER_SECOND`), when limited.
    gate: Option<RequestGate>,
}

/// What one exchange with S/4 came to.
enum Exchange {
    /// A 2xx, with its JSON (`null` for a write answered without JSON).
    Answered(Value),
    /// `403` with `x-csrf-token: Required` on a write.
    CsrfRequired { described: String },
    /// `401`.
    Unauthorized { described: String },
    /// Failed; `sure_not_done` when S/4 surely did not act on it.
    Failed {
        failure: String,
        sure_not_done: bool,
    },
    /// Nothing more to try.
    Stop(S4Error),
}

/// The recoveries one request has made; each is made at most once.
#[derive(Default)]
struct Recoveries {
    csrf_token: bool,
    credentials: bool,
}

impl Transport {
    pub(super) fn new(config: S4Config, logon: S4Logon) -> Result<Self, reqwest::Error> {
        Ok(Transport {
            sessions: Sessions::new(Session::new(config.request_timeout, logon, 0)?),
            requests: Requests::new(&config),
            config,
            round_trips: AtomicU64::new(0),
            csrf_fetches: AtomicU64::new(0),
            gate: None,
        })
    }

    pub(super) fn requests(&self) -> &Requests {
        &self.requests
    }

    pub(super) fn service_url(&self) -> &reqwest::Url {
        &self.config.service_url
    }

    pub(super) fn tls(&self) -> crate::http::tls::PeerTls {
        self.sessions.current().tls.clone()
    }

    /// Every request takes a token of `gate` first (`limit`).
    pub(super) fn limited_by(&mut self, gate: RequestGate) {
        self.gate = Some(gate);
    }

    /// Takes a token of the shared request rate, when limited.
    async fn admit(&self, deadline: Instant) -> Result<(), S4Error> {
        match &self.gate {
            Some(gate) => gate.admit(deadline).await,
            None => Ok(()),
        }
    }

    /// Reads `secret_id` again after a refusal of the credentials.
    pub(super) fn reread_secret_on_refusal(
        &mut self,
        secrets: aws_sdk_secretsmanager::Client,
        secret_id: &str,
    ) {
        self.sessions.renewal = Some(Reread::new(secrets, secret_id, false));
    }

    pub(super) fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed) + self.sessions.token_requests()
    }

    pub(super) fn csrf_fetches(&self) -> u64 {
        self.csrf_fetches.load(Ordering::Relaxed)
    }

    /// Sends one request until it is answered, the schedule or the deadline ends, or it fails
    /// in a way no repetition cures (module doc).
    pub(super) async fn send(
        &self,
        request: &S4Request,
        deadline: Instant,
    ) -> Result<Value, S4Error> {
        let write = request.is_write();
        let mut failed = 0;
        let mut made = Recoveries::default();
        loop {
            let session = self.sessions.current();
            let token;
            let exchange = match self.prepare(&session, request, deadline).await {
                Ok((prepared, used)) => {
                    token = used;
                    // The rate's token last, right before sending (a CSRF fetch in `prepare`
                    // takes its own): a token is never held while waiting for another.
                    self.admit(deadline).await?;
                    let in_flight = session.oauth.as_ref().zip(token.as_deref());
                    let in_flight = in_flight.map(|(cache, t)| cache.sent(t));
                    let exchange = self.exchange(prepared, request, deadline).await;
                    if let Some(in_flight) = in_flight {
                        match &exchange {
                            Exchange::Answered(_) | Exchange::CsrfRequired { .. } => {
                                in_flight.answered(StatusCode::OK);
                            }
                            Exchange::Unauthorized { .. } => {
                                in_flight.answered(StatusCode::UNAUTHORIZED);
                            }
                            _ => drop(in_flight),
                        }
                    }
                    exchange
                }
                Err(Unprepared::Refused(why)) => {
                    if self.renew_once(&mut made, &session).await {
                        continue;
                    }
                    return Err(S4Error::Transient(why));
                }
                Err(Unprepared::Failed(e)) => return Err(e),
            };
            let (failure, sure_not_done) = match exchange {
                Exchange::Answered(value) => return Ok(value),
                Exchange::Stop(e) => return Err(e),
                Exchange::CsrfRequired { described } => {
                    if made.csrf_token {
                        return Err(refused(described));
                    }
                    made.csrf_token = true;
                    self.csrf_token(&session, true, deadline)
                        .await
                        .map_err(Unprepared::into_error)?;
                    continue;
                }
                Exchange::Unauthorized { described } => {
                    // A token S/4 had accepted was revoked: a new one, as often as that
                    // happens; one it never accepted: the secret, once.
                    if let (Some(cache), Some(token)) = (&session.oauth, &token) {
                        let left = deadline.saturating_duration_since(Instant::now());
                        let timeout = self.config.request_timeout.min(left);
                        match cache.refused(&session.http, token, timeout).await {
                            Ok(Refusal::Renewed) => continue,
                            Ok(Refusal::NeverAccepted) => {}
                            Err(refusal) => {
                                if self.renew_once(&mut made, &session).await {
                                    continue;
                                }
                                return Err(Unprepared::Refused(refusal).into_error());
                            }
                        }
                    }
                    if self.renew_once(&mut made, &session).await {
                        continue;
                    }
                    return Err(refused(described));
                }
                Exchange::Failed {
                    failure,
                    sure_not_done,
                } => (failure, sure_not_done),
            };
            if write && !sure_not_done {
                return Err(S4Error::Unclear(failure));
            }
            failed += 1;
            let pause =
                self.config.retry.next(failed, deadline).map_err(|stop| {
                    S4Error::Transient(format!("{failure} ({})", stop.describe()))
                })?;
            tokio::time::sleep(pause).await;
        }
    }

    /// One request on the wire and what its answer means.
    async fn exchange(
        &self,
        prepared: reqwest::RequestBuilder,
        request: &S4Request,
        deadline: Instant,
    ) -> Exchange {
        let write = request.is_write();
        // The time left is measured once the token and the credentials are at hand.
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Exchange::Stop(S4Error::Transient(
                "no time left before the reply budget".into(),
            ));
        }
        let timeout = self.config.request_timeout.min(left);
        let span = crate::trace::client_span("S/4", request.method.as_str());
        let mut prepared = crate::trace::traced(prepared.timeout(timeout), &span);
        if let Some(body) = &request.body {
            prepared = prepared.json(body);
        }
        if let Some(upload) = &request.upload {
            prepared = prepared.header("Content-Type", &upload.content_type);
            for (name, value) in &upload.headers {
                prepared = prepared.header(name, value);
            }
            prepared = prepared.body(upload.bytes.as_ref().clone());
        }
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let sent = prepared.send().instrument(span.clone()).await;
        if let Ok(response) = &sent {
            span.record("http.response.status_code", response.status().as_u16());
        }
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                // Named for a network team: which certificate, which secret field, DNS, a
                // firewall (`http::tls::explain`).
                let peer = format!(
                    "S/4 ({})",
                    self.config.service_url.host_str().unwrap_or("?")
                );
                let why = explain(&e, &peer, &self.sessions.current().tls);
                let (failure, sure_not_done) = if e.is_connect() {
                    (format!("cannot connect: {why}"), true)
                } else if e.is_timeout() {
                    (format!("no answer within {timeout:?}"), false)
                } else {
                    (format!("request failed: {why}"), false)
                };
                return Exchange::Failed {
                    failure,
                    sure_not_done,
                };
            }
        };
        let status = response.status();
        let csrf_required = sap::csrf_required(response.headers());
        let text = match response.text().await {
            Ok(text) => text,
            Err(e) if write => {
                return Exchange::Stop(S4Error::Unclear(format!("{status}, answer lost: {e}")));
            }
            Err(e) => {
                return Exchange::Stop(S4Error::Transient(format!("{status}, answer lost: {e}")));
            }
        };
        if status.is_success() {
            return match serde_json::from_str(&text) {
                Ok(value) => Exchange::Answered(value),
                Err(_) if write => Exchange::Answered(Value::Null),
                Err(_) => Exchange::Stop(S4Error::Transient(format!(
                    "{status} with an answer that is not JSON"
                ))),
            };
        }
        let message = sap::error_message(&text)
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
        let described = format!("{} {message}", status.as_u16());
        match status.as_u16() {
            403 if csrf_required && write => Exchange::CsrfRequired { described },
            401 => Exchange::Unauthorized { described },
            // Refused before any work (a timeout, throttling, a lock or a stale precondition):
            // safe to send again.
            408 | 409 | 412 | 429 => Exchange::Failed {
                failure: described,
                sure_not_done: true,
            },
            _ if status.is_server_error() => Exchange::Failed {
                failure: described,
                sure_not_done: !write,
            },
            _ => Exchange::Stop(S4Error::Permanent {
                status: status.as_u16(),
                message,
            }),
        }
    }

    /// The request with its credentials, the `Accept` header and, for a write, the CSRF token
    /// (and `If-Match: *` for a change).
    async fn prepare(
        &self,
        session: &Session,
        request: &S4Request,
        deadline: Instant,
    ) -> Result<(reqwest::RequestBuilder, Option<String>), Unprepared> {
        let token = if request.is_write() {
            Some(self.csrf_token(session, false, deadline).await?)
        } else {
            None
        };
        let mut prepared = session
            .http
            .request(request.method.clone(), request.url.clone())
            .header("Accept", "application/json");
        if let Some(token) = token {
            prepared = prepared.header("x-csrf-token", token);
        }
        if request.needs_if_match() {
            prepared = prepared.header("If-Match", "*");
        }
        self.authorize(session, prepared, deadline).await
    }

    /// Adds the credentials to a request: Basic, or an OAuth2 bearer token (returned too).
    async fn authorize(
        &self,
        session: &Session,
        request: reqwest::RequestBuilder,
        deadline: Instant,
    ) -> Result<(reqwest::RequestBuilder, Option<String>), Unprepared> {
        match &session.auth {
            S4Auth::Basic(c) => Ok((request.basic_auth(&c.username, Some(&c.password)), None)),
            S4Auth::OAuth2(_) => {
                let token = self.access_token(session, deadline).await?;
                Ok((request.bearer_auth(&token), Some(token)))
            }
            // The TLS client certificate is the logon.
            S4Auth::Certificate => Ok((request, None)),
        }
    }

    /// The cached OAuth2 access token, or a new one. No token is a refusal of the credentials:
    /// nothing was done yet, and the mesh redelivers until they are fixed.
    async fn access_token(
        &self,
        session: &Session,
        deadline: Instant,
    ) -> Result<String, Unprepared> {
        let Some(cache) = &session.oauth else {
            return Ok(String::new());
        };
        let left = deadline.saturating_duration_since(Instant::now());
        cache
            .token(&session.http, self.config.request_timeout.min(left))
            .await
            .map_err(Unprepared::Refused)
    }

    /// The session's CSRF token, or a new one (`refresh`, or none yet).
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
        let fetch = self.requests.csrf_fetch()?;
        self.admit(deadline).await?;
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        self.csrf_fetches.fetch_add(1, Ordering::Relaxed);
        let span = crate::trace::client_span("S/4", fetch.method.as_str());
        let request = crate::trace::traced(session.http.request(fetch.method, fetch.url), &span)
            .timeout(self.config.request_timeout.min(left))
            .header("Accept", "application/json");
        let (request, used) = self.authorize(session, request, deadline).await?;
        let in_flight = session.oauth.as_ref().zip(used.as_deref());
        let in_flight = in_flight.map(|(cache, t)| cache.sent(t));
        let fetched = sap::fetch_csrf_token(request)
            .instrument(span)
            .await
            .map_err(|e| S4Error::Transient(format!("CSRF token fetch failed: {e}")))?;
        if let Some(in_flight) = in_flight {
            in_flight.answered(match &fetched {
                Ok(_) => StatusCode::OK,
                Err(no) => no.status,
            });
        }
        let token = match fetched {
            Ok(token) => token,
            Err(no) if no.status.is_server_error() => {
                return Err(S4Error::Transient(format!("CSRF token fetch: {}", no.status)).into());
            }
            Err(no) => {
                // Nothing was written yet: redelivery is safe until the user or URL is fixed.
                let why = format!(
                    "CSRF token fetch answered {}: {} (check S4_BASE_URL and the S/4 user)",
                    no.status.as_u16(),
                    no.message
                );
                return Err(if no.status == StatusCode::UNAUTHORIZED {
                    Unprepared::Refused(why)
                } else {
                    Unprepared::Failed(S4Error::Transient(why))
                });
            }
        };
        *cached = Some(token.clone());
        Ok(token)
    }

    /// New credentials from the secret, once per request: true when the request should go
    /// again with the current session.
    async fn renew_once(&self, made: &mut Recoveries, session: &Session) -> bool {
        if made.credentials || !self.renew(session.generation).await {
            return false;
        }
        made.credentials = true;
        true
    }

    /// Called when the credentials of session `used` were refused: true when a request should
    /// be tried again with the current session (new credentials from the secret, or another
    /// request already switched).
    async fn renew(&self, used: u64) -> bool {
        let Some(renewal) = &self.sessions.renewal else {
            return false;
        };
        let switched = || self.sessions.current().generation != used;
        if switched() {
            return true;
        }
        let id = renewal.secret_id();
        match renewal.read_again(|read| self.switch(used, id, read)).await {
            Some(switched) => switched,
            // Read within the last minute, maybe by a request refused at the same time.
            None => switched(),
        }
    }

    /// Goes on with the credentials read from secret `id` when they differ from those of
    /// session `used`.
    fn switch(&self, used: u64, id: &str, read: Result<String, SecretError>) -> bool {
        let current = self.sessions.current();
        if current.generation != used {
            return true;
        }
        let logon = match read
            .map_err(|e| e.to_string())
            .and_then(|json| S4Logon::from_secret(id, &json))
        {
            Ok(logon) if logon.auth == current.auth && logon.tls == current.tls => {
                tracing::warn!(
                    secret = %id,
                    "S/4 refused the credentials, and secret {id} still holds them: check the S/4 user, or put its new credentials into the secret"
                );
                return false;
            }
            Ok(logon) => logon,
            Err(e) => {
                tracing::warn!(secret = %id, "S/4 refused the credentials, and reading them again failed: {e}");
                return false;
            }
        };
        match Session::new(self.config.request_timeout, logon, used + 1) {
            Ok(session) => {
                let mut slot = self
                    .sessions
                    .current
                    .write()
                    .unwrap_or_else(PoisonError::into_inner);
                self.sessions
                    .retired_token_requests
                    .fetch_add(slot.token_requests(), Ordering::Relaxed);
                *slot = Arc::new(session);
                tracing::info!(
                    secret = %id,
                    "S/4 refused the credentials; secret {id} holds new ones, which are used from now on"
                );
                true
            }
            Err(e) => {
                tracing::warn!(secret = %id, "no HTTP client for the new S/4 credentials: {e}");
                false
            }
        }
    }
}

/// Credentials or permissions refused for good by this session.
fn refused(described: String) -> S4Error {
    S4Error::Transient(format!("{described} (check the S/4 user)"))
}
