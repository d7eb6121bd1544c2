//! Broker credentials from AWS Secrets Manager, cached for the life of a warm Lambda.
//!
//! Two layouts ([`SecretLayout`]): Advanced Event Mesh's secret has `username` and `password`,
//! the SAP sample's layout, so existing secrets keep working (or OAuth2 client fields, or a client
//! certificate); SAP Event Mesh's is the service key exactly as BTP shows it ([`service_key`]). The cache serves the credentials for a TTL; after a 401 from the broker the
//! caller asks for a refresh (the secret may have been rotated) and the secret is read again.
//! Nothing secret is ever written to a log or an error: `Credentials` prints its password as
//! `***`.

use crate::http::oauth::{ClientCredentials, TokenCache};
use crate::http::tls::PeerTls;
use crate::outcome::{Disposed, Disposition};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

pub mod service_key;
pub use service_key::{MessagingEndpoint, parse_service_key};

/// How a broker secret is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretLayout {
    /// Advanced Event Mesh: [`parse_credentials`].
    BrokerLogon,
    /// SAP Event Mesh: the service key as BTP shows it, [`parse_service_key`].
    EventMeshServiceKey,
}

impl SecretLayout {
    /// Reads a secret of this layout.
    pub fn parse(self, id: &str, json: &str) -> Result<Credentials, SecretError> {
        match self {
            SecretLayout::BrokerLogon => parse_credentials(id, json),
            SecretLayout::EventMeshServiceKey => parse_service_key(id, json),
        }
    }
}

/// How the forwarder logs on to the broker, and the TLS towards it: the broker secret.
pub struct Credentials {
    pub logon: BrokerLogon,
    /// `ca_pem`, `client_cert_pem`, `client_key_pem` ([`crate::http::tls`]).
    pub tls: PeerTls,
    /// Where an SAP Event Mesh service key says to publish; `None` for Advanced Event Mesh,
    /// whose URL is configured.
    pub messaging: Option<MessagingEndpoint>,
}

/// The broker logon a secret gives.
pub enum BrokerLogon {
    /// `{"username","password"}`: Basic authentication.
    Basic { username: String, password: String },
    /// `{"client_id","client_secret","token_url"[,"scope"]}`: an OAuth2 bearer token (Solace REST
    /// accepts them), cached until shortly before it expires; one cache per secret read.
    OAuth2(TokenCache),
    /// `client_cert_pem` and `client_key_pem` alone: the client certificate is the logon (its
    /// common name is the client username).
    Certificate,
}

impl Credentials {
    /// The password of a Basic logon.
    pub fn password(&self) -> Option<&str> {
        match &self.logon {
            BrokerLogon::Basic { password, .. } => Some(password),
            _ => None,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let logon = match &self.logon {
            BrokerLogon::Basic { username, .. } => format!("Basic({username}, ***)"),
            BrokerLogon::OAuth2(_) => "OAuth2(***)".to_string(),
            BrokerLogon::Certificate => "Certificate".to_string(),
        };
        f.debug_struct("Credentials")
            .field("logon", &logon)
            .field("tls", &self.tls)
            .field("messaging", &self.messaging)
            .finish()
    }
}

/// Why credentials could not be had. Messages name the secret, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// A later attempt may work (throttling, network, service error).
    #[error("{0} (temporary; retried)")]
    Transient(String),
    /// No attempt will work until someone fixes it (missing secret, access denied, bad JSON).
    #[error("{0}")]
    Permanent(String),
}

impl Disposed for SecretError {
    fn disposition(&self) -> Disposition {
        match self {
            SecretError::Transient(_) => Disposition::Retry,
            SecretError::Permanent(_) => Disposition::GiveUp,
        }
    }
}

/// Where secret strings come from: Secrets Manager in production.
pub trait SecretStore: Send + Sync {
    /// The `SecretString` of a secret (name or ARN).
    fn secret_string(&self, id: &str) -> impl Future<Output = Result<String, SecretError>> + Send;
}

impl SecretStore for aws_sdk_secretsmanager::Client {
    async fn secret_string(&self, id: &str) -> Result<String, SecretError> {
        use aws_sdk_secretsmanager::error::SdkError;
        match self.get_secret_value().secret_id(id).send().await {
            Ok(output) => output.secret_string.ok_or_else(|| {
                SecretError::Permanent(format!(
                    "secret {id} has no SecretString (binary secrets are not supported)"
                ))
            }),
            Err(SdkError::ServiceError(e)) => {
                let code = e.err().meta().code();
                let message = format!(
                    "cannot read secret {id}: {}: {}",
                    code.unwrap_or("an error without a code"),
                    e.err()
                );
                match disposition_of(code) {
                    Disposition::GiveUp => Err(SecretError::Permanent(message)),
                    _ => Err(SecretError::Transient(message)),
                }
            }
            Err(e) => Err(SecretError::Transient(format!(
                "cannot read secret {id}: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
            ))),
        }
    }
}

/// What a Secrets Manager error code leaves to do (`docs/actions.md`): a secret that is missing,
/// deleted, not decryptable or not allowed is given up (no attempt reads it until someone fixes
/// it); throttling, service errors and any code not known here are retried.
pub fn disposition_of(code: Option<&str>) -> Disposition {
    match code.unwrap_or_default() {
        "ResourceNotFoundException"
        | "InvalidParameterException"
        | "InvalidRequestException"
        | "DecryptionFailure"
        | "AccessDeniedException" => Disposition::GiveUp,
        _ => Disposition::Retry,
    }
}

/// Parses the broker secret's JSON: `{"username","password"}`, or
/// `{"client_id","client_secret","token_url"[,"scope"]}`, or a client certificate alone; with
/// the optional TLS fields. Errors name the secret and the field, never a value.
pub fn parse_credentials(id: &str, json: &str) -> Result<Credentials, SecretError> {
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| {
        // serde's message can quote the input; say only where it failed.
        SecretError::Permanent(format!(
            "secret {id} is not a JSON object with `username` and `password` (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    if !value.is_object() {
        return Err(SecretError::Permanent(format!(
            "secret {id} is not a JSON object with `username` and `password`"
        )));
    }
    let tls = PeerTls::from_json(id, &value).map_err(SecretError::Permanent)?;
    let field = |name: &str| value.get(name).and_then(serde_json::Value::as_str);
    if let (Some(username), Some(password)) = (field("username"), field("password"))
        && !username.is_empty()
    {
        let logon = BrokerLogon::Basic {
            username: username.to_string(),
            password: password.to_string(),
        };
        return Ok(Credentials {
            logon,
            tls,
            messaging: None,
        });
    }
    match ClientCredentials::from_json(&value) {
        Some(Ok(c)) => Ok(Credentials {
            logon: BrokerLogon::OAuth2(TokenCache::new(c)),
            tls,
            messaging: None,
        }),
        Some(Err(e)) => Err(SecretError::Permanent(format!("secret {id}: {e}"))),
        None if tls.is_the_logon(&value) => Ok(Credentials {
            logon: BrokerLogon::Certificate,
            tls,
            messaging: None,
        }),
        None => Err(SecretError::Permanent(format!(
            "secret {id} needs non-empty `username` and `password` fields, `client_id`, `client_secret` and `token_url` (OAuth2), or `client_cert_pem` and `client_key_pem` (certificate logon)"
        ))),
    }
}

/// After a failed read, the same error is given for this long without asking again, so that a
/// missing or throttled secret costs one read per second, not one per event.
pub const FAILURE_COOLDOWN: Duration = Duration::from_secs(1);

/// Credentials read from a secret and kept for `ttl`. Reads are serialised: one in flight.
pub struct CachedCredentials<S> {
    store: S,
    secret_id: String,
    layout: SecretLayout,
    ttl: Duration,
    cached: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    credentials: Option<(Instant, Arc<Credentials>)>,
    failure: Option<(Instant, SecretError)>,
    /// When a refusal last made the secret be read again.
    reread_after_refusal: Option<Instant>,
}

impl<S: SecretStore> CachedCredentials<S> {
    pub fn new(store: S, secret_id: impl Into<String>, ttl: Duration) -> Self {
        CachedCredentials {
            store,
            secret_id: secret_id.into(),
            layout: SecretLayout::BrokerLogon,
            ttl,
            cached: Mutex::new(Cache::default()),
        }
    }

    /// The secret read as `layout` (default: [`SecretLayout::BrokerLogon`]).
    pub fn with_layout(mut self, layout: SecretLayout) -> Self {
        self.layout = layout;
        self
    }

    pub fn layout(&self) -> SecretLayout {
        self.layout
    }

    pub fn secret_id(&self) -> &str {
        &self.secret_id
    }

    /// The cached credentials, read again when older than the TTL.
    pub async fn get(&self) -> Result<Arc<Credentials>, SecretError> {
        let mut cache = self.cached.lock().await;
        if let Some((at, credentials)) = cache.credentials.as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(credentials.clone());
        }
        self.fetch(&mut cache).await
    }

    /// Reads the secret again after the broker refused `stale`, unless it no longer is what the
    /// cache holds (another task refreshed it meanwhile), or a refusal had it read within the
    /// last [`REREAD_AT_MOST_EVERY`]: one read per rotation however many publishes saw the 401,
    /// and wrong credentials cost one read a minute, not one (and a new OAuth2 token) per event.
    pub async fn refresh(&self, stale: &Arc<Credentials>) -> Result<Arc<Credentials>, SecretError> {
        let mut cache = self.cached.lock().await;
        if let Some((_, current)) = cache.credentials.as_ref()
            && (!Arc::ptr_eq(current, stale)
                || cache
                    .reread_after_refusal
                    .is_some_and(|at| at.elapsed() < REREAD_AT_MOST_EVERY))
        {
            return Ok(current.clone());
        }
        cache.reread_after_refusal = Some(Instant::now());
        self.fetch(&mut cache).await
    }

    async fn fetch(&self, cache: &mut Cache) -> Result<Arc<Credentials>, SecretError> {
        if let Some((at, error)) = cache.failure.as_ref()
            && at.elapsed() < FAILURE_COOLDOWN
        {
            return Err(error.clone());
        }
        let read = async {
            let json = self.store.secret_string(&self.secret_id).await?;
            self.layout.parse(&self.secret_id, &json)
        };
        match read.await {
            Ok(credentials) => {
                let credentials = Arc::new(credentials);
                cache.credentials = Some((Instant::now(), credentials.clone()));
                cache.failure = None;
                Ok(credentials)
            }
            Err(error) => {
                cache.failure = Some((Instant::now(), error.clone()));
                Err(error)
            }
        }
    }
}

/// A refused credential's secret is read again at most this often, however many requests are
/// refused: a wrong credential costs one read a minute, not one per request.
pub const REREAD_AT_MOST_EVERY: Duration = Duration::from_secs(60);

/// A secret read again when the credentials it gave are refused (it may have been rotated).
pub struct Reread<S> {
    store: S,
    secret_id: String,
    last_read: Mutex<Option<Instant>>,
}

impl<S: SecretStore> Reread<S> {
    /// `read_now`: the secret was just read (at start-up), so the first re-read waits a minute.
    pub fn new(store: S, secret_id: &str, read_now: bool) -> Self {
        Reread {
            store,
            secret_id: secret_id.to_string(),
            last_read: Mutex::new(read_now.then(Instant::now)),
        }
    }

    pub fn secret_id(&self) -> &str {
        &self.secret_id
    }

    /// Reads the secret and hands what was read to `apply`, both under one lock: callers
    /// refused at the same time wait for the first, and then find what its `apply` did. `None`
    /// when the secret was read less than [`REREAD_AT_MOST_EVERY`] ago.
    pub async fn read_again<T>(
        &self,
        apply: impl FnOnce(Result<String, SecretError>) -> T,
    ) -> Option<T> {
        let mut last_read = self.last_read.lock().await;
        if last_read.is_some_and(|at| at.elapsed() < REREAD_AT_MOST_EVERY) {
            return None;
        }
        *last_read = Some(Instant::now());
        Some(apply(self.store.secret_string(&self.secret_id).await))
    }
}

#[cfg(test)]
mod tests;
