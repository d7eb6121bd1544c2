//! An SAP-Event-Mesh-faithful test peer (the `messagingrest` API and webhook subscriptions), on
//! 127.0.0.1.
//!
//! It enforces what SAP Event Mesh enforces for a REST publisher:
//! - `POST /oauth/token` with the service key's client in Basic and `grant_type=client_credentials`
//!   (form or query) issues bearer tokens (the XSUAA token endpoint); tokens can be revoked;
//! - `POST /messagingrest/v1/topics/{topic}/messages` and `.../queues/{queue}/messages`, the name
//!   one percent-encoded path segment: a valid bearer token (401), `x-qos` 0 or 1 (400), a
//!   topic in Event Mesh's alphabet (letters, digits, `_ . - /`), no empty level, at most 150
//!   characters (400), under the instance's namespace, which the publish filter
//!   `${namespace}/*` allows (403), a known queue (404), at most 1 MB of body (413); accepted
//!   messages are answered 204;
//! - a message on a topic is stored in every queue with a matching subscription (`*` matches
//!   the rest of the topic, levels included: unverified, see `docs/operations.md`), with qos 1;
//!   a topic no queue takes is dropped, as on Event Mesh;
//! - a webhook subscription on a queue first does the CloudEvents abuse-protection handshake
//!   (`OPTIONS` with `WebHook-Request-Origin`, Basic credentials; it needs 200 and
//!   `WebHook-Allowed-Origin` naming the origin or `*`, else the subscription stays paused), then
//!   pushes each message (`POST`, the message's body and `Content-Type`, `x-qos: 1`, Basic
//!   credentials), removes it on a 2xx and pushes it again after a pause on anything else.
//!
//! Faults on demand: replies scripted per CloudEvent id (the body's `id`), and a default.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};

/// Event Mesh's limit on a message's size.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// What the peer does with one publish that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Store it (qos 1) and answer 204.
    Accept,
    /// Answer this status without storing.
    Status(u16, &'static str),
}

/// A message accepted by the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// `topics` or `queues`.
    pub kind: String,
    /// The topic or queue, percent-decoded.
    pub destination: String,
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Published {
    /// The CloudEvent id of the body.
    pub fn event_id(&self) -> String {
        event_id(&self.body)
    }
}

#[derive(Default)]
struct Queue {
    subscriptions: Vec<String>,
    messages: VecDeque<Published>,
}

#[derive(Default)]
struct State {
    namespace: String,
    client: (String, String),
    tokens: HashSet<String>,
    token_requests: u64,
    queues: HashMap<String, Queue>,
    published: Vec<Published>,
    /// CloudEvent id → times accepted, and times refused for good (4xx other than 401, 429).
    accepted_counts: HashMap<String, u32>,
    refused_counts: HashMap<String, u32>,
    script: HashMap<String, VecDeque<Reply>>,
    default: Option<Reply>,
    requests: u64,
    /// Time taken before answering a publish (a broker's storing).
    latency: Option<Duration>,
    /// After this many accepted messages, every token issued so far is revoked (once).
    revoke_after: Option<usize>,
    /// Each token is revoked once it has carried this many accepted messages.
    revoke_every: Option<usize>,
    /// Accepted messages per token.
    carried: HashMap<String, usize>,
    /// The token endpoint issues tokens the broker never accepts (a service key of another
    /// instance).
    refuse_every_token: bool,
    /// Webhook pushes: CloudEvent id → statuses answered, in order.
    pushes: HashMap<String, Vec<u16>>,
    handshakes: Vec<(String, Option<String>)>,
}

/// The running peer; dropped, it stops.
pub struct TestEventMesh {
    pub url: String,
    pub namespace: String,
    state: Arc<Mutex<State>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for TestEventMesh {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn lock(state: &Arc<Mutex<State>>) -> std::sync::MutexGuard<'_, State> {
    super::http::lock(state)
}

impl TestEventMesh {
    /// An instance with `namespace` whose service key's REST client is `client_id`/`secret`.
    pub async fn start(namespace: &str, client_id: &str, client_secret: &str) -> TestEventMesh {
        super::init_logs();
        let (listener, url) = super::http::loopback("test Event Mesh").await;
        let state = Arc::new(Mutex::new(State {
            namespace: namespace.to_string(),
            client: (client_id.to_string(), client_secret.to_string()),
            ..State::default()
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, state).await;
                });
            }
        });
        TestEventMesh {
            url,
            namespace: namespace.to_string(),
            state,
            tasks: vec![task],
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut lock(&self.state))
    }

    /// The service key exactly as BTP shows it for this instance.
    pub fn service_key(&self) -> serde_json::Value {
        let (id, secret) = self.with(|s| s.client.clone());
        serde_json::json!({
            "xsappname": "clone-xbem-service-broker-test!b2436|xbem-service-broker!b2436",
            "serviceinstanceid": "0b5e6c0e-test",
            "namespace": self.namespace,
            "management": [{"oa2": {"clientid": "mgmt", "clientsecret": "mgmt", "tokenendpoint": format!("{}/oauth/token", self.url)},
                            "uri": format!("{}/hub/rest/api/v1/management/messaging", self.url)}],
            "messaging": [
                {"protocol": ["amqp10ws"], "broker": {"type": "sapmgw"}, "uri": "wss://127.0.0.1:1/protocols/amqp10ws",
                 "oa2": {"clientid": id, "clientsecret": secret, "tokenendpoint": format!("{}/oauth/token", self.url), "granttype": "client_credentials"}},
                {"protocol": ["httprest"], "broker": {"type": "saprestmgw"}, "uri": self.url,
                 "oa2": {"clientid": id, "clientsecret": secret, "tokenendpoint": format!("{}/oauth/token", self.url), "granttype": "client_credentials"}}
            ]
        })
    }

    /// A queue taking the topics that match `subscriptions`.
    pub fn create_queue(&self, name: &str, subscriptions: &[&str]) {
        self.with(|s| {
            s.queues.insert(
                name.to_string(),
                Queue {
                    subscriptions: subscriptions.iter().map(|t| t.to_string()).collect(),
                    messages: VecDeque::new(),
                },
            );
        });
    }

    /// Every token issued so far is refused from now on.
    pub fn revoke_tokens(&self) {
        self.with(|s| s.tokens.clear());
    }

    /// Publishes are answered after `latency` (benchmarks).
    pub fn set_latency(&self, latency: Duration) {
        self.with(|s| s.latency = Some(latency));
    }

    /// Revokes every token issued so far once `accepted` messages have been accepted: a token
    /// revoked under load, mid-object.
    pub fn revoke_tokens_after(&self, accepted: usize) {
        self.with(|s| s.revoke_after = Some(accepted));
    }

    /// From now on each token is revoked once it has carried `accepted` messages (a token
    /// lifetime shorter than `expires_in` said, signing keys rolling, again and again).
    pub fn revoke_every_token_after(&self, accepted: usize) {
        self.with(|s| s.revoke_every = Some(accepted));
    }

    /// From now on the token endpoint issues tokens that the broker refuses (`true`), or good
    /// ones again.
    pub fn refuse_every_token(&self, refuse: bool) {
        self.with(|s| s.refuse_every_token = refuse);
    }

    pub fn token_requests(&self) -> u64 {
        self.with(|s| s.token_requests)
    }

    pub fn requests(&self) -> u64 {
        self.with(|s| s.requests)
    }

    /// Scripts the replies to the message with this CloudEvent id, in order.
    pub fn script(&self, event_id: &str, replies: Vec<Reply>) {
        self.with(|s| {
            s.script.insert(event_id.to_string(), replies.into());
        });
    }

    pub fn set_default(&self, reply: Reply) {
        self.with(|s| s.default = Some(reply));
    }

    /// Every message accepted, in order.
    pub fn published(&self) -> Vec<Published> {
        self.with(|s| s.published.clone())
    }

    /// CloudEvent id → times accepted.
    pub fn accepted_counts(&self) -> HashMap<String, u32> {
        self.with(|s| s.accepted_counts.clone())
    }

    /// CloudEvent id → times refused for good.
    pub fn refused_counts(&self) -> HashMap<String, u32> {
        self.with(|s| s.refused_counts.clone())
    }

    /// Messages waiting in a queue.
    pub fn depth(&self, queue: &str) -> usize {
        self.with(|s| s.queues.get(queue).map_or(0, |q| q.messages.len()))
    }

    /// CloudEvent id → the statuses its webhook pushes were answered with.
    pub fn pushes(&self) -> HashMap<String, Vec<u16>> {
        self.with(|s| s.pushes.clone())
    }

    /// Handshakes made: the status line and the `WebHook-Allowed-Origin` answered.
    pub fn handshakes(&self) -> Vec<(String, Option<String>)> {
        self.with(|s| s.handshakes.clone())
    }

    /// A webhook subscription on `queue` pushing to `url` with Basic `username`/`password`,
    /// `parallel` pushes at a time, after the handshake (`exemptHandshake: false`). A refused
    /// handshake leaves the subscription paused: nothing is pushed.
    pub fn subscribe_webhook(
        &mut self,
        queue: &str,
        url: &str,
        (username, password): (&str, &str),
        parallel: usize,
    ) {
        let state = self.state.clone();
        let (queue, url) = (queue.to_string(), url.to_string());
        let (username, password) = (username.to_string(), password.to_string());
        let task = tokio::spawn(async move {
            let http = match reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
            {
                Ok(http) => http,
                Err(e) => panic!("webhook client: {e}"),
            };
            let origin = "eventmesh.test.hana.ondemand.com";
            let answer = http
                .request(reqwest::Method::OPTIONS, &url)
                .basic_auth(&username, Some(&password))
                .header("WebHook-Request-Origin", origin)
                .header("WebHook-Request-Rate", "120")
                .send()
                .await;
            let (status, allowed) = match answer {
                Ok(a) => (
                    a.status().to_string(),
                    a.headers()
                        .get("webhook-allowed-origin")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string),
                ),
                Err(e) => (format!("no answer: {e}"), None),
            };
            let valid = status.starts_with("200")
                && allowed.as_deref().is_some_and(|a| a == origin || a == "*");
            lock(&state).handshakes.push((status, allowed));
            if !valid {
                return;
            }
            let mut running = tokio::task::JoinSet::new();
            loop {
                while running.len() < parallel.max(1) {
                    let next = lock(&state)
                        .queues
                        .get_mut(&queue)
                        .and_then(|q| q.messages.pop_front());
                    let Some(message) = next else { break };
                    let push = push(
                        http.clone(),
                        url.clone(),
                        (username.clone(), password.clone()),
                        message,
                    );
                    let state = state.clone();
                    let queue = queue.clone();
                    running.spawn(async move {
                        let (message, status) = push.await;
                        let mut s = lock(&state);
                        s.pushes.entry(message.event_id()).or_default().push(status);
                        if !(200..300).contains(&status) {
                            // Redelivered (qos 1): back to the end of the queue.
                            if let Some(q) = s.queues.get_mut(&queue) {
                                q.messages.push_back(message);
                            }
                        }
                    });
                }
                if running.join_next().await.is_none() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        });
        self.tasks.push(task);
    }
}

/// One push; a failed one is answered 0 and after a pause.
async fn push(
    http: reqwest::Client,
    url: String,
    (username, password): (String, String),
    message: Published,
) -> (Published, u16) {
    let content_type = message
        .headers
        .get("content-type")
        .cloned()
        .unwrap_or_else(|| "application/json".into());
    let answer = http
        .post(&url)
        .basic_auth(&username, Some(&password))
        .header("Content-Type", content_type)
        .header("x-qos", "1")
        .body(message.body.clone())
        .send()
        .await;
    let status = answer.map_or(0, |a| a.status().as_u16());
    if !(200..300).contains(&status) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (message, status)
}

fn event_id(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_string))
        .unwrap_or_default()
}

async fn serve(stream: tokio::net::TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let (read, mut write) = tokio::io::split(stream);
    let mut reader = BufReader::new(read);
    while let Some(request) = super::http::read_request(&mut reader).await? {
        let (status, body) = if request.target.split('?').next() == Some("/oauth/token") {
            issue_token(&state, &request)
        } else {
            let latency = lock(&state).latency;
            if let Some(pause) = latency {
                tokio::time::sleep(pause).await;
            }
            let (status, reason) = publish(&state, request);
            (format!("{status} {reason}"), String::new())
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        write.write_all(response.as_bytes()).await?;
    }
    Ok(())
}

/// XSUAA's token endpoint: the client in Basic, the grant in the form or the query.
fn issue_token(state: &Arc<Mutex<State>>, request: &super::http::Request) -> (String, String) {
    let mut s = lock(state);
    s.token_requests += 1;
    let (id, secret) = &s.client;
    let client_ok = request.headers.get("authorization")
        == Some(&format!(
            "Basic {}",
            super::http::base64(format!("{id}:{secret}").as_bytes())
        ));
    let grant = request.body.contains("grant_type=client_credentials")
        || request.target.contains("grant_type=client_credentials");
    if request.method != "POST" || !client_ok || !grant {
        let refused =
            serde_json::json!({"error": "unauthorized", "error_description": "Bad credentials"});
        return ("401 Unauthorized".into(), refused.to_string());
    }
    let token = format!("em-token-{}", s.token_requests);
    if !s.refuse_every_token {
        s.tokens.insert(token.clone());
    }
    let issued = serde_json::json!({"access_token": token, "token_type": "bearer", "expires_in": 43199, "scope": "uaa.resource", "jti": "x"});
    ("200 OK".into(), issued.to_string())
}

/// Event Mesh's topic alphabet and length.
fn valid_topic(topic: &str) -> bool {
    topic.chars().count() <= 150
        && topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'))
        && topic.split('/').all(|level| !level.is_empty())
}

/// A subscription pattern: `*` matches any rest, levels included.
fn subscribed(pattern: &str, topic: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == topic,
        Some((prefix, _)) => topic.starts_with(prefix),
    }
}

fn publish(state: &Arc<Mutex<State>>, request: super::http::Request) -> (u16, &'static str) {
    let mut s = lock(state);
    s.requests += 1;
    let path = request.target.split('?').next().unwrap_or("");
    let Some(rest) = path.strip_prefix("/messagingrest/v1/") else {
        return (404, "Not Found");
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let [kind @ ("topics" | "queues"), name, "messages"] = parts.as_slice() else {
        return (404, "Not Found");
    };
    if request.method != "POST" {
        return (405, "Method Not Allowed");
    }
    let bearer = request
        .headers
        .get("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::to_string);
    if !bearer.as_ref().is_some_and(|t| s.tokens.contains(t)) {
        return (401, "Unauthorized");
    }
    let qos = request.headers.get("x-qos").cloned();
    if !matches!(qos.as_deref(), Some("0" | "1")) {
        return (400, "Bad Request");
    }
    let Some(name) = super::broker::percent_decode(name) else {
        return (400, "Bad Request");
    };
    let event = event_id(&request.body);
    let refuse = |s: &mut State, status: u16, reason: &'static str| {
        *s.refused_counts.entry(event.clone()).or_default() += 1;
        (status, reason)
    };
    if request.body.len() > MAX_MESSAGE_BYTES {
        return refuse(&mut s, 413, "Payload Too Large");
    }
    if *kind == "topics" {
        if !valid_topic(&name) {
            return refuse(&mut s, 400, "Bad Request");
        }
        if !name.starts_with(&format!("{}/", s.namespace)) {
            return refuse(&mut s, 403, "Forbidden");
        }
    } else if !s.queues.contains_key(&name) {
        return refuse(&mut s, 404, "Not Found");
    }
    let scripted = s.script.get_mut(&event).and_then(VecDeque::pop_front);
    match scripted
        .or_else(|| s.default.clone())
        .unwrap_or(Reply::Accept)
    {
        Reply::Status(status, reason) => {
            if (400..500).contains(&status) && !matches!(status, 401 | 429) {
                return refuse(&mut s, status, reason);
            }
            (status, reason)
        }
        Reply::Accept => {
            let message = Published {
                kind: kind.to_string(),
                destination: name.clone(),
                headers: request.headers,
                body: request.body,
            };
            if qos.as_deref() == Some("1") {
                *s.accepted_counts.entry(event).or_default() += 1;
                for (queue_name, queue) in s.queues.iter_mut() {
                    let takes = if *kind == "queues" {
                        *queue_name == name
                    } else {
                        queue.subscriptions.iter().any(|p| subscribed(p, &name))
                    };
                    if takes {
                        queue.messages.push_back(message.clone());
                    }
                }
                s.published.push(message);
                if s.revoke_after == Some(s.published.len()) {
                    s.tokens.clear();
                    s.revoke_after = None;
                }
                if let (Some(every), Some(token)) = (s.revoke_every, bearer) {
                    let carried = s.carried.entry(token.clone()).or_default();
                    *carried += 1;
                    if *carried >= every {
                        s.tokens.remove(&token);
                    }
                }
            }
            (204, "No Content")
        }
    }
}
