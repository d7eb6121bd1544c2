//! OAuth2 client credentials (RFC 6749 §4.4) with the token cached until shortly before it
//! expires: used for S/4, SAP Build Process Automation and any other destination.

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
    cached: Mutex<Option<(String, Instant)>>,
    requests: AtomicU64,
}

impl TokenCache {
    pub fn new(credentials: ClientCredentials) -> TokenCache {
        TokenCache {
            credentials,
            cached: Mutex::new(None),
            requests: AtomicU64::new(0),
        }
    }

    /// Token requests sent so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The cached token, or a new one (`refresh` after a 401). Errors say what the token
    /// endpoint answered, never the secret; every failure is one a later attempt may cure.
    pub async fn token(
        &self,
        http: &reqwest::Client,
        refresh: bool,
        timeout: Duration,
    ) -> Result<String, String> {
        let mut cached = self.cached.lock().await;
        if !refresh
            && let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
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
