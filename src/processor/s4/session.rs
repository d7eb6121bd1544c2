//! The S/4 client's session: the HTTP client with its cookies, the credentials, the OAuth2
//! token and the CSRF token.
//!
//! When S/4 (or its token endpoint) refuses the credentials, the secret they came from is read
//! again, at most once a minute. If it holds other credentials, a new session with them replaces
//! the old one. A warm processor therefore picks up a rotated password or client secret at the
//! first refusal, without a redeploy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::Mutex;

use super::{S4Auth, S4Client, S4Config, S4Error};
use crate::aws::secrets::{Reread, SecretError};
use crate::http::oauth::TokenCache;

/// One set of credentials and what S/4 gave for them.
pub(super) struct Session {
    /// Counts the sessions of one client: 0 for the first.
    pub(super) generation: u64,
    pub(super) http: reqwest::Client,
    pub(super) auth: S4Auth,
    pub(super) oauth: Option<TokenCache>,
    pub(super) csrf: Mutex<Option<String>>,
}

impl Session {
    pub(super) fn new(
        config: &S4Config,
        auth: S4Auth,
        generation: u64,
    ) -> Result<Session, reqwest::Error> {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("e2b-processor/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Session {
            generation,
            http,
            oauth: match &auth {
                S4Auth::OAuth2(c) => Some(TokenCache::new(c.clone())),
                S4Auth::Basic(_) => None,
            },
            auth,
            csrf: Mutex::new(None),
        })
    }

    pub(super) fn token_requests(&self) -> u64 {
        self.oauth.as_ref().map_or(0, TokenCache::requests)
    }
}

/// Why a request could not be prepared.
pub(super) enum Unprepared {
    /// The credentials were refused (CSRF fetch answered 401, or no OAuth2 token).
    Refused(String),
    Failed(S4Error),
}

impl Unprepared {
    /// What the caller is told: a refusal is worth a redelivery once the credentials are fixed.
    pub(super) fn into_error(self) -> S4Error {
        match self {
            Unprepared::Refused(why) => S4Error::Transient(why),
            Unprepared::Failed(e) => e,
        }
    }
}

impl From<S4Error> for Unprepared {
    fn from(e: S4Error) -> Self {
        Unprepared::Failed(e)
    }
}

/// The sessions of one client: the current one, and the token requests of those replaced.
pub(super) struct Sessions {
    current: RwLock<Arc<Session>>,
    retired_token_requests: AtomicU64,
    /// Where the credentials came from, to read them again after a refusal.
    renewal: Option<Reread<aws_sdk_secretsmanager::Client>>,
}

impl Sessions {
    pub(super) fn new(session: Session) -> Sessions {
        Sessions {
            current: RwLock::new(Arc::new(session)),
            retired_token_requests: AtomicU64::new(0),
            renewal: None,
        }
    }

    pub(super) fn current(&self) -> Arc<Session> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(super) fn token_requests(&self) -> u64 {
        self.retired_token_requests.load(Ordering::Relaxed) + self.current().token_requests()
    }
}

impl S4Client {
    /// After S/4 refuses the credentials, reads `secret_id` again (at most once a minute) and
    /// goes on with its new credentials when they differ.
    pub fn reread_secret_on_refusal(
        mut self,
        secrets: aws_sdk_secretsmanager::Client,
        secret_id: &str,
    ) -> S4Client {
        self.sessions.renewal = Some(Reread::new(secrets, secret_id, false));
        self
    }

    /// Called when the credentials of session `used` were refused: true when a request should
    /// be tried again with the current session (new credentials from the secret, or another
    /// request already switched).
    pub(super) async fn renew(&self, used: u64) -> bool {
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
        let auth = match read
            .map_err(|e| e.to_string())
            .and_then(|json| S4Auth::from_secret(id, &json))
        {
            Ok(auth) if auth == current.auth => {
                tracing::warn!(
                    secret = %id,
                    "S/4 refused the credentials, and secret {id} still holds them: check the S/4 user, or put its new credentials into the secret"
                );
                return false;
            }
            Ok(auth) => auth,
            Err(e) => {
                tracing::warn!(secret = %id, "S/4 refused the credentials, and reading them again failed: {e}");
                return false;
            }
        };
        match Session::new(&self.config, auth, used + 1) {
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
