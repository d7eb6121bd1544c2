//! How the client authenticates to S/4: Basic, or OAuth2 client credentials, from a secret.

use std::fmt;

use serde_json::Value;

use crate::http::oauth::ClientCredentials;

/// S/4 credentials (Basic).
#[derive(Clone, PartialEq, Eq)]
pub struct S4Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for S4Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S4Credentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// How the client authenticates to S/4.
#[derive(Clone, PartialEq, Eq)]
pub enum S4Auth {
    Basic(S4Credentials),
    /// OAuth2 client credentials: a token from the token URL, cached until shortly before it
    /// expires.
    OAuth2(ClientCredentials),
}

impl fmt::Debug for S4Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            S4Auth::Basic(c) => write!(f, "Basic({c:?})"),
            S4Auth::OAuth2(c) => write!(f, "OAuth2({c:?})"),
        }
    }
}

impl S4Auth {
    /// From a secret's JSON: `{"username","password"}` for Basic, or
    /// `{"client_id","client_secret","token_url"[,"scope"]}` for OAuth2 client credentials.
    /// Errors name the secret, never its values.
    pub fn from_secret(secret_id: &str, json: &str) -> Result<S4Auth, String> {
        let value: Value = serde_json::from_str(json)
            .map_err(|_| format!("secret {secret_id} is not a JSON object"))?;
        let field = |name: &str| {
            value
                .get(name)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        if let (Some(username), Some(password)) = (field("username"), field("password")) {
            return Ok(S4Auth::Basic(S4Credentials { username, password }));
        }
        match ClientCredentials::from_json(&value) {
            Some(Ok(c)) => Ok(S4Auth::OAuth2(c)),
            Some(Err(e)) => Err(format!("secret {secret_id}: {e}")),
            None => Err(format!(
                "secret {secret_id} needs `username` and `password`, or `client_id`, `client_secret` and `token_url`"
            )),
        }
    }
}
