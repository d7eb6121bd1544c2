//! OAuth2 client credentials (RFC 6749 §4.4) with the token cached until shortly before it
//! expires: used for the brokers (SAP Event Mesh, Advanced Event Mesh with OAuth2), S/4, SAP Build
//! Process Automation and any other destination.
//!
//! Rules for a refused token (a 401), the same for every client ([`TokenCache::refused`]):
//! - a token the peer had accepted and now refuses was revoked (a rotated service key, signing
//!   keys rolled, a lifetime shorter than `expires_in` said): a new one is fetched, however often
//!   that happens, one fetch shared by every request that saw the refusal;
//! - a token refused before the peer ever accepted it means wrong credentials: no new token is
//!   fetched ([`Refusal::NeverAccepted`]); the caller reads its secret again once, then fails.
//!   Requests still under way with that token are waited for first, so that an acceptance on
//!   its way is not taken for a refusal;
//! - so a token is fetched only after the one before it was accepted: a peer that refuses every
//!   token gets one token request, and one more after the secret is read again.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::Url;
use serde_json::Value;
use tokio::sync::Mutex;

/// A client's credentials and where to get tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    pub token_url: Url,
    pub client_id: String,
    pub client_secret: String,
    pub scope: Option<String>,
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ClientCredentials {{ token_url: {}, client_id: {}, client_secret: *** }}",
            self.token_url, self.client_id
        )
    }
}

impl ClientCredentials {
    /// From a secret's JSON fields `client_id`, `client_secret`, `token_url` (also SAP service
    /// keys' `clientid`, `clientsecret`, `url` + `/oauth/token`) and an optional `scope`.
    /// `None` when the fields are not there; errors never show values.
    pub fn from_json(value: &Value) -> Option<Result<ClientCredentials, String>> {
        let field = |names: &[&str]| {
            names.iter().find_map(|n| {
                value
                    .get(*n)
                    .and_then(Value::as_str)
                    .filter(|v| !v.is_empty())
                    .map(str::to_string)
            })
        };
        let client_id = field(&["client_id", "clientid"])?;
        let client_secret = field(&["client_secret", "clientsecret"])?;
        let token_url = match (field(&["token_url"]), field(&["url"])) {
            (Some(t), _) => t,
            (None, Some(base)) => format!("{}/oauth/token", base.trim_end_matches('/')),
            (None, None) => return None,
        };
        Some(
            Url::parse(&token_url)
                .map_err(|_| "token_url is not a URL".to_string())
                .map(|token_url| ClientCredentials {
                    token_url,
                    client_id,
                    client_secret,
                    scope: field(&["scope"]),
                }),
        )
    }
}

/// Tokens for one client, shared by all requests of a warm Lambda.
pub struct TokenCache {
    credentials: ClientCredentials,
    /// The token and until when. Boxed, like `usage`, so that the cache stays small in the
    /// credential enums that hold it.
    cached: Box<Mutex<Option<(String, Instant)>>>,
    /// How the current token fared, and its waiters.
    usage: Box<(std::sync::Mutex<Usage>, tokio::sync::Notify)>,
    requests: AtomicU64,
}

/// How the current token fared.
#[derive(Default)]
struct Usage {
    token: String,
    /// Requests sent with it and not answered yet.
    in_flight: usize,
    /// The peer accepted it at least once.
    accepted: bool,
}

/// A request under way with a token; dropped without an answer (an error, a timeout), it
/// counts as not accepted.
pub struct InFlight<'a> {
    cache: &'a TokenCache,
    token: String,
    open: bool,
}

impl InFlight<'_> {
    /// The peer answered: `accepted` when it took the token (any answer but 401, 407 or a
    /// server error, which may not have looked at it).
    pub fn answered(mut self, status: reqwest::StatusCode) {
        self.open = false;
        let accepted = !matches!(status.as_u16(), 401 | 407) && !status.is_server_error();
        self.cache.settle(&self.token, accepted);
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.open {
            self.cache.settle(&self.token, false);
        }
    }
}

/// What a refused token leaves to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A new token is cached (fetched, or already fetched by another request): try again.
    Renewed,
    /// The peer never accepted this token: the credentials are wrong (or were rotated); read
    /// the secret again, once.
    NeverAccepted,
}

impl TokenCache {
    pub fn new(credentials: ClientCredentials) -> TokenCache {
        TokenCache {
            credentials,
            cached: Box::new(Mutex::new(None)),
            usage: Box::default(),
            requests: AtomicU64::new(0),
        }
    }

    fn usage(&self) -> std::sync::MutexGuard<'_, Usage> {
        self.usage
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A request is sent with `token`: say how it was answered with [`InFlight::answered`].
    pub fn sent(&self, token: &str) -> InFlight<'_> {
        let mut usage = self.usage();
        if usage.token == token {
            usage.in_flight += 1;
        }
        InFlight {
            cache: self,
            token: token.to_string(),
            open: true,
        }
    }

    fn settle(&self, token: &str, accepted: bool) {
        let mut usage = self.usage();
        if usage.token == token {
            usage.in_flight = usage.in_flight.saturating_sub(1);
            usage.accepted |= accepted;
        }
        drop(usage);
        self.usage.1.notify_waiters();
    }

    /// `token` was refused (401), its request already answered: a new token when
    /// the peer had accepted this one, or another request already replaced it;
    /// [`Refusal::NeverAccepted`] otherwise, once every request under way with it is answered
    /// (or `timeout` passed). `Err`: the token endpoint failed.
    pub async fn refused(
        &self,
        http: &reqwest::Client,
        token: &str,
        timeout: Duration,
    ) -> Result<Refusal, String> {
        let give_up = tokio::time::Instant::now() + timeout;
        loop {
            let waiting = self.usage.1.notified();
            tokio::pin!(waiting);
            waiting.as_mut().enable();
            let (current, in_flight, accepted) = {
                let usage = self.usage();
                (usage.token == token, usage.in_flight, usage.accepted)
            };
            if !current {
                return Ok(Refusal::Renewed);
            }
            if accepted {
                self.renew(http, token, timeout).await?;
                return Ok(Refusal::Renewed);
            }
            if in_flight == 0 || tokio::time::Instant::now() >= give_up {
                return Ok(Refusal::NeverAccepted);
            }
            let _ = tokio::time::timeout_at(give_up, waiting).await;
        }
    }

    /// A new token in place of `refused`, unless another request already put one there.
    async fn renew(
        &self,
        http: &reqwest::Client,
        refused: &str,
        timeout: Duration,
    ) -> Result<(), String> {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|(t, _)| t != refused) {
            return Ok(());
        }
        self.fetch(http, &mut cached, timeout).await.map(|_| ())
    }

    /// Token requests sent so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The cached token, or a new one when it expires. Errors say what the token endpoint
    /// answered, never the secret; every failure is one a later attempt may cure.
    pub async fn token(&self, http: &reqwest::Client, timeout: Duration) -> Result<String, String> {
        let mut cached = self.cached.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        self.fetch(http, &mut cached, timeout).await
    }

    /// Asks the token endpoint, and caches what it gives.
    async fn fetch(
        &self,
        http: &reqwest::Client,
        cached: &mut Option<(String, Instant)>,
        timeout: Duration,
    ) -> Result<String, String> {
        let c = &self.credentials;
        let mut form = "grant_type=client_credentials".to_string();
        if let Some(scope) = &c.scope {
            form.push_str("&scope=");
            form.push_str(
                &percent_encoding::utf8_percent_encode(scope, percent_encoding::NON_ALPHANUMERIC)
                    .to_string(),
            );
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        let response = http
            .post(c.token_url.clone())
            .timeout(timeout)
            .basic_auth(&c.client_id, Some(&c.client_secret))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Accept", "application/json")
            .body(form)
            .send()
            .await
            .map_err(|e| format!("OAuth2 token request to {} failed: {e}", c.token_url))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let Some(token) = body
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|_| status.is_success())
        else {
            let reason = body
                .get("error_description")
                .or_else(|| body.get("error"))
                .and_then(Value::as_str)
                .unwrap_or("no access_token");
            return Err(format!(
                "OAuth2 token endpoint {} answered {status}: {reason} (check the client credentials)",
                c.token_url
            ));
        };
        let lifetime = body
            .get("expires_in")
            .and_then(Value::as_u64)
            .unwrap_or(3600);
        let until = Instant::now() + Duration::from_secs(lifetime.saturating_sub(60).max(30));
        *cached = Some((token.to_string(), until));
        *self.usage() = Usage {
            token: token.to_string(),
            ..Usage::default()
        };
        self.usage.1.notify_waiters();
        Ok(token.to_string())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn sap_service_keys_and_plain_layouts_are_read() {
        let key = json!({"clientid": "sb-1", "clientsecret": "s", "url": "https://x.authentication.eu10.hana.ondemand.com/"});
        let Some(Ok(c)) = ClientCredentials::from_json(&key) else {
            panic!("not read")
        };
        assert_eq!(
            c.token_url.as_str(),
            "https://x.authentication.eu10.hana.ondemand.com/oauth/token"
        );
        assert!(!format!("{c:?}").contains("\"s\""));
        let plain = json!({"client_id": "a", "client_secret": "b", "token_url": "not a url"});
        assert!(matches!(ClientCredentials::from_json(&plain), Some(Err(_))));
        assert!(ClientCredentials::from_json(&json!({"username": "u"})).is_none());
    }
}
