//! How the client authenticates to S/4: Basic, OAuth2 client credentials or an X.509 client
//! certificate, from a secret, with the TLS trust towards S/4 the same secret gives
//! ([`crate::http::tls`]).

use std::fmt;

use serde_json::Value;

use crate::http::oauth::ClientCredentials;
use crate::http::tls::PeerTls;

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
    /// X.509 logon: the TLS client certificate is the user (no `Authorization` header).
    Certificate,
}

/// Everything the S/4 secret says: the logon and the TLS trust and identity towards S/4.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S4Logon {
    pub auth: S4Auth,
    pub tls: PeerTls,
}

impl From<S4Auth> for S4Logon {
    fn from(auth: S4Auth) -> S4Logon {
        S4Logon {
            auth,
            tls: PeerTls::default(),
        }
    }
}

impl S4Logon {
    /// From a secret's JSON: the logon of [`S4Auth::from_value`], and `ca_pem`,
    /// `client_cert_pem`, `client_key_pem`. A client certificate with neither a password nor a
    /// client secret is the logon itself (S/4's X.509 logon, [`PeerTls::is_the_logon`]).
    pub fn from_secret(secret_id: &str, json: &str) -> Result<S4Logon, String> {
        let value: Value = serde_json::from_str(json)
            .map_err(|_| format!("secret {secret_id} is not a JSON object"))?;
        let tls = PeerTls::from_json(secret_id, &value)?;
        let auth = match S4Auth::from_value(secret_id, &value) {
            Ok(auth) => auth,
            Err(_) if tls.is_the_logon(&value) => S4Auth::Certificate,
            Err(e) => return Err(e),
        };
        Ok(S4Logon { auth, tls })
    }
}

impl fmt::Debug for S4Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            S4Auth::Basic(c) => write!(f, "Basic({c:?})"),
            S4Auth::OAuth2(c) => write!(f, "OAuth2({c:?})"),
            S4Auth::Certificate => f.write_str("Certificate"),
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
        Self::from_value(secret_id, &value)
    }

    /// As [`S4Auth::from_secret`], from the secret's parsed JSON.
    pub fn from_value(secret_id: &str, value: &Value) -> Result<S4Auth, String> {
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
        match ClientCredentials::from_json(value) {
            Some(Ok(c)) => Ok(S4Auth::OAuth2(c)),
            Some(Err(e)) => Err(format!("secret {secret_id}: {e}")),
            None => Err(format!(
                "secret {secret_id} needs `username` and `password`, `client_id`, `client_secret` and `token_url`, or `client_cert_pem` and `client_key_pem` (certificate logon)"
            )),
        }
    }
}
