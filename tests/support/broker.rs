//! A Solace-REST-faithful test broker (REST messaging mode), on 127.0.0.1.
//!
//! It enforces what a Solace broker enforces for a REST publisher: `POST` only (405), a
//! `/TOPIC/...` or `/QUEUE/...` target (a bare path is a topic, as on Solace), Basic
//! authentication against the current credentials (401), or an OAuth2 bearer token it issued
//! (`enable_oauth`: `POST /oauth/token` with client credentials stands in for the identity
//! provider), or over mutual TLS (`start_tls`) the client certificate alone, which the TLS layer
//! admits only from the broker's CA; a valid `Solace-Delivery-Mode` (400),
//! and answers 200 with an empty body once a message is "stored". HTTP/1.1 with keep-alive, one
//! task per connection. A publish ACL on topics (403 Publish ACL Denied). Faults on demand:
//! scripted answers per message id (any status and reason phrase), a delay before answering,
//! or a dropped connection.
//!
//! Its REST Delivery Point ([`TestBroker::push`]) posts what it stored to a consumer, as an RDP
//! does: the body as published with its `Content-Type`, the RDP's Basic credentials, again on
//! anything but 2xx. Which other publisher headers an RDP passes on is not documented, so it
//! passes none (a `traceparent` header of the publisher's included: the event carries its own).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use e2b::http::retry::Backoff;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// What the broker does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Store the message and answer 200.
    Accept,
    /// Answer this status and reason phrase without storing.
    Status(u16, &'static str),
    /// Wait, then do the next thing.
    Delay(Duration, Box<Reply>),
    /// Close the connection without answering.
    Drop,
}

/// A message the broker stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// `TOPIC` or `QUEUE`.
    pub kind: String,
    /// The topic or queue, percent-decoded.
    pub destination: String,
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Stored {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// Random faults, per thousand requests (after the script, instead of the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chaos {
    /// 503 Service Unavailable (the mesh is busy: retried).
    pub transient: u32,
    /// 400 Bad Request (refused for good: the invocation fails, naming the event).
    pub permanent: u32,
    /// Accepted after `slow`.
    pub slow: u32,
    pub slow_by: Duration,
    pub seed: u64,
}

#[derive(Default)]
struct State {
    chaos: Option<Chaos>,
    rng: u64,
    /// Keep only ids (message id → times stored), not the messages (long runs).
    ids_only: bool,
    stored_counts: HashMap<String, u32>,
    /// Message id → times answered with a 4xx other than 401 (refused for good), every mode.
    refused_counts: HashMap<String, u32>,
    /// Message id → when it was first stored (its 200 follows at once), every mode.
    first_stored_at: HashMap<String, std::time::SystemTime>,
    username: String,
    password: String,
    stored: Vec<Stored>,
    /// Requests seen per `Solace-Message-ID`, whatever their outcome.
    attempts: HashMap<String, u32>,
    /// Scripted replies per message id, used in order; then `default`.
    script: HashMap<String, VecDeque<Reply>>,
    default: Option<Reply>,
    /// Topic prefixes the client may not publish to (the client profile's publish ACL).
    denied: Vec<String>,
    requests: u64,
    in_flight: u64,
    max_in_flight: u64,
    /// Over mutual TLS: a request without `Authorization` is logged on by its certificate.
    certificate_logon: bool,
    /// OAuth2 client credentials accepted at `/oauth/token`, the tokens issued and the requests.
    oauth_client: Option<(String, String)>,
    tokens: std::collections::HashSet<String>,
    token_requests: u64,
    /// TLS handshakes completed (one per connection a client kept).
    handshakes: u64,
}

/// A secret store that always answers with one secret string.
pub struct FixedSecret(pub String);

impl e2b::aws::secrets::SecretStore for FixedSecret {
    async fn secret_string(&self, _id: &str) -> Result<String, e2b::aws::secrets::SecretError> {
        Ok(self.0.clone())
    }
}

/// The running broker; dropped, it stops accepting.
pub struct TestBroker {
    pub url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestBroker {
    /// Starts a broker that accepts `username`/`password`.
    pub async fn start(username: &str, password: &str) -> TestBroker {
        Self::launch(username, password, None).await
    }

    /// Starts over TLS with `tls` (see `support::tls`): with a configuration that requires a
    /// client certificate, a request without credentials is logged on by its certificate.
    pub async fn start_tls(
        username: &str,
        password: &str,
        tls: Arc<tokio_rustls::rustls::ServerConfig>,
    ) -> TestBroker {
        Self::launch(username, password, Some(tls)).await
    }

    async fn launch(
        username: &str,
        password: &str,
        tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    ) -> TestBroker {
        super::init_logs();
        let listener = match TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => panic!("test broker cannot listen: {e}"),
        };
        let url = format!(
            "{}://{}",
            if tls.is_some() { "https" } else { "http" },
            listener
                .local_addr()
                .map_or_else(|e| panic!("{e}"), |a| a.to_string())
        );
        let state = Arc::new(Mutex::new(State {
            username: username.into(),
            password: password.into(),
            certificate_logon: tls.is_some(),
            ..State::default()
        }));
        let shared = state.clone();
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match acceptor {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                lock(&state).handshakes += 1;
                                let _ = serve(stream, state).await;
                            }
                        }
                        None => {
                            let _ = serve(stream, state).await;
                        }
                    }
                });
            }
        });
        TestBroker { url, state, task }
    }

    /// Accepts OAuth2 client credentials at `POST /oauth/token`, and the bearer tokens issued.
    pub fn enable_oauth(&self, client_id: &str, client_secret: &str) {
        self.with(|s| s.oauth_client = Some((client_id.into(), client_secret.into())));
    }

    /// Every token issued so far is no longer accepted (they expired early, or were revoked).
    pub fn revoke_tokens(&self) {
        self.with(|s| s.tokens.clear());
    }

    /// Token requests answered so far.
    pub fn token_requests(&self) -> u64 {
        self.with(|s| s.token_requests)
    }

    /// TLS handshakes completed so far.
    pub fn handshakes(&self) -> u64 {
        self.with(|s| s.handshakes)
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut guard = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    /// Changes the accepted credentials (a rotated secret).
    pub fn set_credentials(&self, username: &str, password: &str) {
        self.with(|s| {
            s.username = username.into();
            s.password = password.into();
        });
    }

    /// Scripts the replies to the message with this id, in order.
    pub fn script(&self, message_id: &str, replies: Vec<Reply>) {
        self.with(|s| {
            s.script.insert(message_id.to_string(), replies.into());
        });
    }

    /// What every request without a script gets (default: accept).
    /// Random faults from now on (replies scripted per message id still come first).
    pub fn set_chaos(&self, chaos: Chaos) {
        let mut s = lock(&self.state);
        s.rng = chaos.seed.max(1);
        s.chaos = Some(chaos);
    }

    /// How the tests publish to this broker: topics, 500 ms per request, five attempts with a
    /// short backoff.
    pub fn mesh_config(&self) -> e2b::broker::BrokerConfig {
        e2b::broker::BrokerConfig {
            broker: e2b::broker::Broker::Aem(e2b::broker::AemRest::topics(
                reqwest::Url::parse(&self.url).expect("reqwest::Url::parse in the test set-up"),
            )),
            request_timeout: Duration::from_millis(500),
            retry: Backoff {
                base: Duration::from_millis(10),
                cap: Duration::from_millis(100),
                attempts: 5,
            },
        }
    }

    /// Publishing to topics under `prefix` is denied (403 Publish ACL Denied), as a publish ACL
    /// exception on the client username does; an empty list allows every topic again.
    pub fn deny_topics(&self, prefixes: &[&str]) {
        self.with(|s| s.denied = prefixes.iter().map(|p| p.to_string()).collect());
    }

    /// A publisher to this broker (its [`TestBroker::mesh_config`]) whose secret always holds
    /// the broker's current credentials, for benchmarks without Secrets Manager.
    pub fn publisher(&self) -> Arc<e2b::broker::Publisher<FixedSecret>> {
        let secret = self.with(|s| {
            serde_json::json!({"username": s.username, "password": s.password}).to_string()
        });
        let credentials = Arc::new(e2b::aws::secrets::CachedCredentials::new(
            FixedSecret(secret),
            "fixed",
            Duration::from_secs(300),
        ));
        match e2b::broker::Publisher::new(self.mesh_config(), credentials) {
            Ok(publisher) => Arc::new(publisher),
            Err(e) => panic!("publisher: {e}"),
        }
    }

    /// No more random faults.
    pub fn calm(&self) {
        lock(&self.state).chaos = None;
    }

    /// Keep only how often each message id was stored, not the messages (for long runs).
    pub fn keep_ids_only(&self) {
        lock(&self.state).ids_only = true;
    }

    /// Message id → times refused for good (4xx other than 401), every mode.
    pub fn refused_counts(&self) -> HashMap<String, u32> {
        lock(&self.state).refused_counts.clone()
    }

    /// Message id → when it was first stored, just before its 200 (every mode).
    pub fn first_stored_at(&self) -> HashMap<String, std::time::SystemTime> {
        lock(&self.state).first_stored_at.clone()
    }

    /// Message id → times stored (every mode).
    pub fn stored_counts(&self) -> HashMap<String, u32> {
        lock(&self.state).stored_counts.clone()
    }

    pub fn set_default(&self, reply: Reply) {
        self.with(|s| s.default = Some(reply));
    }

    pub fn stored(&self) -> Vec<Stored> {
        self.with(|s| s.stored.clone())
    }

    /// Message ids stored, in order of storing.
    pub fn stored_ids(&self) -> Vec<String> {
        self.with(|s| {
            s.stored
                .iter()
                .map(|m| m.header("Solace-Message-ID").unwrap_or("").to_string())
                .collect()
        })
    }

    pub fn attempts(&self, message_id: &str) -> u32 {
        self.with(|s| s.attempts.get(message_id).copied().unwrap_or(0))
    }

    pub fn requests(&self) -> u64 {
        self.with(|s| s.requests)
    }

    /// The REST Delivery Point: every stored message posted to `consumer` in storing order (see
    /// the module doc), each until it is answered 2xx or 20 tries passed. The last answers.
    pub async fn push(&self, consumer: &str, username: &str, password: &str) -> Vec<(u16, String)> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("an HTTP client in the test set-up");
        let mut answers = Vec::new();
        for message in self.stored() {
            let mut last = (0, String::new());
            for _ in 0..20 {
                let sent = client
                    .post(consumer)
                    .basic_auth(username, Some(password))
                    .header(
                        "content-type",
                        message.header("Content-Type").unwrap_or("application/json"),
                    )
                    .body(message.body.clone())
                    .send()
                    .await;
                last = match sent {
                    Ok(answer) => (
                        answer.status().as_u16(),
                        answer.text().await.unwrap_or_default(),
                    ),
                    Err(e) => (0, e.to_string()),
                };
                if (200..300).contains(&last.0) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            answers.push(last);
        }
        answers
    }

    /// The most requests that were being answered at the same time.
    pub fn max_in_flight(&self) -> u64 {
        self.with(|s| s.max_in_flight)
    }
}

async fn serve<S>(stream: S, state: Arc<Mutex<State>>) -> std::io::Result<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (read, mut write) = tokio::io::split(stream);
    let mut reader = BufReader::new(read);
    loop {
        let Some(super::http::Request {
            method,
            target,
            headers,
            body,
            ..
        }) = super::http::read_request(&mut reader).await?
        else {
            return Ok(());
        };
        if target == "/oauth/token" {
            let (status, body) = issue_token(&state, &method, &headers, &body);
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            write.write_all(response.as_bytes()).await?;
            continue;
        }
        let mut reply = decide(&state, &method, &target, &headers);
        {
            let mut s = lock(&state);
            s.in_flight += 1;
            s.max_in_flight = s.max_in_flight.max(s.in_flight);
        }
        while let Reply::Delay(pause, next) = reply {
            tokio::time::sleep(pause).await;
            reply = *next;
        }
        lock(&state).in_flight -= 1;
        let (status, reason) = match reply {
            Reply::Drop => return Ok(()),
            Reply::Accept => {
                // Spooled, then acknowledged: a client that gave up meanwhile still got it stored,
                // as with a real broker.
                store(&state, &target, headers, body);
                (200, "OK")
            }
            Reply::Status(status, reason) => {
                if (400..500).contains(&status) && !matches!(status, 401 | 429) {
                    let id = headers
                        .get("solace-message-id")
                        .cloned()
                        .unwrap_or_default();
                    *lock(&state).refused_counts.entry(id).or_default() += 1;
                }
                (status, reason)
            }
            Reply::Delay(..) => (500, "Internal Server Error"),
        };
        let response = format!("HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\n\r\n");
        write.write_all(response.as_bytes()).await?;
    }
}

fn lock(state: &Arc<Mutex<State>>) -> std::sync::MutexGuard<'_, State> {
    super::http::lock(state)
}

/// The identity provider's token endpoint: client credentials in Basic, the grant in the form.
fn issue_token(
    state: &Arc<Mutex<State>>,
    method: &str,
    headers: &HashMap<String, String>,
    body: &str,
) -> (&'static str, String) {
    let mut s = lock(state);
    s.token_requests += 1;
    let client_ok = s.oauth_client.as_ref().is_some_and(|(id, secret)| {
        headers.get("authorization")
            == Some(&format!(
                "Basic {}",
                super::http::base64(format!("{id}:{secret}").as_bytes())
            ))
    });
    if method != "POST" || !client_ok || !body.contains("grant_type=client_credentials") {
        let refused = serde_json::json!({"error": "invalid_client"}).to_string();
        return ("401 Unauthorized", refused);
    }
    let token = format!("broker-token-{}", s.token_requests);
    s.tokens.insert(token.clone());
    let issued =
        serde_json::json!({"access_token": token, "token_type": "bearer", "expires_in": 3600});
    ("200 OK", issued.to_string())
}

fn decide(
    state: &Arc<Mutex<State>>,
    method: &str,
    target: &str,
    headers: &HashMap<String, String>,
) -> Reply {
    let mut s = lock(state);
    s.requests += 1;
    if method != "POST" {
        return Reply::Status(405, "Method Not Allowed");
    }
    let expected = format!(
        "Basic {}",
        super::http::base64(format!("{}:{}", s.username, s.password).as_bytes())
    );
    let authorization = headers.get("authorization");
    let bearer_ok = authorization
        .and_then(|h| h.strip_prefix("Bearer "))
        .is_some_and(|t| s.tokens.contains(t));
    let by_certificate = s.certificate_logon && authorization.is_none();
    if authorization != Some(&expected) && !bearer_ok && !by_certificate {
        return Reply::Status(401, "Unauthorized");
    }
    match headers.get("solace-delivery-mode").map(String::as_str) {
        None | Some("direct" | "non-persistent" | "persistent") => {}
        Some(_) => return Reply::Status(400, "Invalid Delivery Mode"),
    }
    let Some((_, topic)) = destination(target) else {
        return Reply::Status(400, "Bad Request");
    };
    if s.denied
        .iter()
        .any(|prefix| topic.starts_with(prefix.as_str()))
    {
        return Reply::Status(403, "Publish ACL Denied");
    }
    let id = headers
        .get("solace-message-id")
        .cloned()
        .unwrap_or_default();
    if !s.ids_only {
        *s.attempts.entry(id.clone()).or_default() += 1;
    }
    let scripted = s.script.get_mut(&id).and_then(VecDeque::pop_front);
    if scripted.is_none()
        && let Some(chaos) = s.chaos
    {
        // xorshift64: reproducible for a seed.
        s.rng ^= s.rng << 13;
        s.rng ^= s.rng >> 7;
        s.rng ^= s.rng << 17;
        let roll = (s.rng % 1000) as u32;
        return if roll < chaos.transient {
            Reply::Status(503, "Service Unavailable")
        } else if roll < chaos.transient + chaos.permanent {
            Reply::Status(400, "Bad Request")
        } else if roll < chaos.transient + chaos.permanent + chaos.slow {
            Reply::Delay(chaos.slow_by, Box::new(Reply::Accept))
        } else {
            Reply::Accept
        };
    }
    scripted
        .or_else(|| s.default.clone())
        .unwrap_or(Reply::Accept)
}

fn store(state: &Arc<Mutex<State>>, target: &str, headers: HashMap<String, String>, body: String) {
    if let Some((kind, destination)) = destination(target) {
        let mut s = lock(state);
        let id = headers
            .get("solace-message-id")
            .cloned()
            .unwrap_or_default();
        s.first_stored_at
            .entry(id.clone())
            .or_insert_with(std::time::SystemTime::now);
        *s.stored_counts.entry(id).or_default() += 1;
        if !s.ids_only {
            s.stored.push(Stored {
                kind,
                destination,
                headers,
                body,
            });
        }
    }
}

/// `(TOPIC|QUEUE, decoded name)` of a request target; a bare path is a topic.
fn destination(target: &str) -> Option<(String, String)> {
    let path = target.split('?').next().unwrap_or("");
    let path = path.strip_prefix('/')?;
    let (kind, name) = match path.split_once('/') {
        Some(("TOPIC", rest)) => ("TOPIC", rest),
        Some(("QUEUE", rest)) => ("QUEUE", rest),
        _ => ("TOPIC", path),
    };
    if name.is_empty() {
        return None;
    }
    let decoded = percent_decode(name)?;
    Some((kind.to_string(), decoded))
}

pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
