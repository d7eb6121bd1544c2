//! The S/4 client's session: the HTTP client with its cookies, the credentials, the OAuth2
//! token and the CSRF token. A session is replaced whole when the secret holds new
//! credentials (see `send.rs`, `Transport::renew`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::Mutex;

use super::auth::{S4Auth, S4Logon};
use super::error::S4Error;
use crate::aws::secrets::Reread;
use crate::http::oauth::TokenCache;
use crate::http::tls::PeerTls;

/// One set of credentials and what S/4 gave for them.
pub(super) struct Session {
    /// Counts the sessions of one client: 0 for the first.
    pub(super) generation: u64,
    pub(super) http: reqwest::Client,
    pub(super) auth: S4Auth,
    /// The TLS trust and identity the secret gave (in the client; kept to compare and name).
    pub(super) tls: PeerTls,
    pub(super) oauth: Option<TokenCache>,
    pub(super) csrf: Mutex<Option<String>>,
}

impl Session {
    /// `request_timeout`: the longest a request may take; connecting takes at most 5 s of it.
    /// The HTTP client carries the secret's CA certificates and client certificate: one TLS
    /// handshake per connection it keeps, not per request.
    pub(super) fn new(
        request_timeout: Duration,
        logon: S4Logon,
        generation: u64,
    ) -> Result<Session, reqwest::Error> {
        let S4Logon { auth, tls } = logon;
        let builder = reqwest::Client::builder()
            .cookie_store(true)
            .connect_timeout(request_timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("e2b-processor/", env!("CARGO_PKG_VERSION")));
        let http = tls.apply(builder).build()?;
        Ok(Session {
            generation,
            http,
            oauth: match &auth {
                S4Auth::OAuth2(c) => Some(TokenCache::new(c.clone())),
                S4Auth::Basic(_) | S4Auth::Certificate => None,
            },
            auth,
            tls,
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
    pub(super) current: RwLock<Arc<Session>>,
    pub(super) retired_token_requests: AtomicU64,
    /// Where the credentials came from, to read them again after a refusal.
    pub(super) renewal: Option<Reread<aws_sdk_secretsmanager::Client>>,
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
