//! Who may deliver events: every request carries credentials checked in constant time, unless
//! the Function URL itself authenticates (IAM, SigV4-signed by the mesh).

use std::fmt;

use lambda_http::http::HeaderMap;

use crate::aws::secrets::{Reread, SecretError};

/// How deliveries authenticate.
#[derive(Clone, PartialEq, Eq)]
pub enum InboundAuth {
    /// The Function URL uses `AWS_IAM`; nothing more is checked here.
    FunctionUrlIam,
    /// `Authorization: Basic ...`.
    Basic { username: String, password: String },
    /// `Authorization: Bearer <token>`.
    Bearer { token: String },
    /// A header (e.g. `x-api-key`) with a fixed key.
    ApiKey { header: String, key: String },
    /// The current or the previous credentials, while a rotation is under way.
    Either(Box<InboundAuth>, Box<InboundAuth>),
}

impl fmt::Debug for InboundAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self {
            InboundAuth::FunctionUrlIam => "FunctionUrlIam",
            InboundAuth::Basic { .. } => "Basic(***)",
            InboundAuth::Bearer { .. } => "Bearer(***)",
            InboundAuth::ApiKey { .. } => "ApiKey(***)",
            InboundAuth::Either(current, _) => return write!(f, "{current:?} or the previous"),
        };
        f.write_str(scheme)
    }
}

impl InboundAuth {
    /// The scheme's credentials from a secret's JSON: `{"username","password"}` (basic),
    /// `{"token"}` (bearer), `{"api_key"}` (api-key). Errors name the secret, never its value.
    pub fn from_secret(
        scheme: super::config::AuthScheme,
        secret_id: &str,
        json: &str,
        api_key_header: &str,
    ) -> Result<Self, String> {
        use super::config::AuthScheme;
        let value: serde_json::Value = serde_json::from_str(json)
            .map_err(|_| format!("secret {secret_id} is not a JSON object"))?;
        let optional = |name: &str| {
            value
                .get(name)
                .and_then(|v| v.as_str())
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let field = |name: &str| {
            optional(name).ok_or_else(|| format!("secret {secret_id} has no non-empty `{name}`"))
        };
        let header = api_key_header.to_ascii_lowercase();
        // `previous_*`: the credentials being rotated out, accepted until removed.
        let (current, previous) = match scheme {
            AuthScheme::Iam => return Ok(InboundAuth::FunctionUrlIam),
            AuthScheme::Basic => {
                let username = field("username")?;
                let previous = optional("previous_password").map(|password| InboundAuth::Basic {
                    username: username.clone(),
                    password,
                });
                let current = InboundAuth::Basic {
                    username,
                    password: field("password")?,
                };
                (current, previous)
            }
            AuthScheme::Bearer => (
                InboundAuth::Bearer {
                    token: field("token")?,
                },
                optional("previous_token").map(|token| InboundAuth::Bearer { token }),
            ),
            AuthScheme::ApiKey => (
                InboundAuth::ApiKey {
                    header: header.clone(),
                    key: field("api_key")?,
                },
                optional("previous_api_key").map(|key| InboundAuth::ApiKey { header, key }),
            ),
        };
        Ok(match previous {
            Some(previous) => InboundAuth::Either(Box::new(current), Box::new(previous)),
            None => current,
        })
    }

    /// Whether the request's credentials are right. Comparisons take the same time whatever
    /// the credentials sent.
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
        };
        match self {
            InboundAuth::FunctionUrlIam => true,
            InboundAuth::Basic { username, password } => {
                let expected = format!(
                    "Basic {}",
                    base64(format!("{username}:{password}").as_bytes())
                );
                constant_time_eq(header("authorization").as_bytes(), expected.as_bytes())
            }
            InboundAuth::Bearer { token } => {
                let expected = format!("Bearer {token}");
                constant_time_eq(header("authorization").as_bytes(), expected.as_bytes())
            }
            InboundAuth::ApiKey { header: name, key } => {
                constant_time_eq(header(name).as_bytes(), key.as_bytes())
            }
            // Both compared, whatever the first says.
            InboundAuth::Either(current, previous) => {
                current.admits(headers) | previous.admits(headers)
            }
        }
    }
}

/// Where the delivery credentials come from, read again when a request's credentials do not
/// match (the secret may have been rotated), at most once a minute whatever is sent.
pub struct AuthSource {
    secret: Reread<aws_sdk_secretsmanager::Client>,
    scheme: super::config::AuthScheme,
    api_key_header: String,
}

impl AuthSource {
    /// `read_now`: the secret was just read (at start-up).
    pub fn new(
        secrets: aws_sdk_secretsmanager::Client,
        secret_id: &str,
        scheme: super::config::AuthScheme,
        api_key_header: &str,
        read_now: bool,
    ) -> AuthSource {
        AuthSource {
            secret: Reread::new(secrets, secret_id, read_now),
            scheme,
            api_key_header: api_key_header.to_string(),
        }
    }

    /// The credentials as the secret has them now, unless it was read less than a minute ago.
    pub async fn read_again(&self) -> Option<InboundAuth> {
        let id = self.secret.secret_id();
        let parse = |read: Result<String, SecretError>| {
            read.map_err(|e| e.to_string())
                .and_then(|json| {
                    InboundAuth::from_secret(self.scheme, id, &json, &self.api_key_header)
                })
                .inspect_err(|e| tracing::warn!(error = %e, "delivery credentials not read again"))
                .ok()
        };
        self.secret.read_again(parse).await.flatten()
    }
}

/// Compares without stopping at the first difference (`subtle`; the length is not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(a.ct_eq(b))
}

fn base64(input: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(input)
}

#[cfg(test)]
mod tests {
    use lambda_http::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            if let Ok(v) = HeaderValue::from_str(value) {
                map.insert(*name, v);
            }
        }
        map
    }

    #[test]
    fn basic_credentials_must_match_exactly() {
        let auth = InboundAuth::Basic {
            username: "rdp".into(),
            password: "s3cret".into(),
        };
        // base64("rdp:s3cret") = cmRwOnMzY3JldA==
        assert!(auth.admits(&headers(&[("authorization", "Basic cmRwOnMzY3JldA==")])));
        assert!(!auth.admits(&headers(&[("authorization", "Basic cmRwOnMzY3JldB==")])));
        assert!(!auth.admits(&headers(&[("authorization", "Bearer s3cret")])));
        assert!(!auth.admits(&headers(&[])));
    }

    #[test]
    fn bearer_and_api_key_schemes() {
        let bearer = InboundAuth::Bearer {
            token: "t0ken".into(),
        };
        assert!(bearer.admits(&headers(&[("authorization", "Bearer t0ken")])));
        assert!(!bearer.admits(&headers(&[("authorization", "Bearer t0ke")])));
        let key = InboundAuth::ApiKey {
            header: "x-api-key".into(),
            key: "k3y".into(),
        };
        assert!(key.admits(&headers(&[("x-api-key", "k3y")])));
        assert!(!key.admits(&headers(&[("x-api-key", "k3y ")])));
        assert!(!key.admits(&headers(&[("authorization", "k3y")])));
        assert!(InboundAuth::FunctionUrlIam.admits(&headers(&[])));
    }

    #[test]
    fn secrets_never_print() {
        let printed = format!(
            "{:?}",
            InboundAuth::Basic {
                username: "rdp".into(),
                password: "s3cret".into()
            }
        );
        assert!(!printed.contains("s3cret"));
    }
}
