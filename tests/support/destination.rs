//! A test HTTP destination, enforcing what real ones enforce: the configured authentication
//! (Basic, or bearer tokens it issued at `/oauth/token` for OAuth2 client credentials: 401
//! otherwise), SAP's CSRF token with its session cookie on writes when switched on (403 with
//! `x-csrf-token: Required`), JSON bodies on writes (400 otherwise). It records every request,
//! answers scripted statuses on demand, and serves an SAP Build Process Automation rule service
//! (`POST /rest/v2/rule-services`, `{"RuleServiceId","Vocabulary"}` → `{"Result":[…]}`) from
//! decision tables given by the test.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::http::{Answer, Request, base64};

/// A request as the destination saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub headers: HashMap<String, String>,
    pub body: Value,
}

#[derive(Default)]
struct State {
    basic: Option<(String, String)>,
    oauth_client: Option<(String, String)>,
    tokens: Vec<String>,
    token_requests: u64,
    csrf: bool,
    sessions: HashMap<String, String>,
    seen: Vec<Seen>,
    /// Statuses to answer before serving normally, to requests whose target starts with the
    /// prefix: e.g. 500 for the next N requests.
    faults: Vec<(String, u16)>,
    /// Rule service id → rows: (conditions on the first vocabulary object's fields, result).
    decisions: HashMap<String, Vec<(Value, Value)>>,
    next: u64,
}

pub struct TestDestination {
    pub url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestDestination {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(state: &Arc<Mutex<State>>) -> std::sync::MutexGuard<'_, State> {
    super::http::lock(state)
}

impl TestDestination {
    pub async fn start() -> TestDestination {
        super::init_logs();
        let state = Arc::new(Mutex::new(State::default()));
        let answering = state.clone();
        let (url, task) =
            super::http::serve("127.0.0.1:0", move |r| answer(&answering, r), |_| None).await;
        TestDestination { url, state, task }
    }

    /// Starts over TLS with `tls` (see `support::tls`).
    pub async fn start_tls(tls: Arc<tokio_rustls::rustls::ServerConfig>) -> TestDestination {
        super::init_logs();
        let state = Arc::new(Mutex::new(State::default()));
        let answering = state.clone();
        let answer = move |r: &super::http::Request| answer(&answering, r);
        let (url, task) = super::http::serve_tls("127.0.0.1:0", tls, answer, |_| None).await;
        TestDestination { url, state, task }
    }

    /// Only Basic with these credentials is let in.
    pub fn require_basic(&self, username: &str, password: &str) {
        lock(&self.state).basic = Some((username.into(), password.into()));
    }

    /// Only bearer tokens issued at `/oauth/token` to this client are let in.
    pub fn require_oauth(&self, client_id: &str, client_secret: &str) {
        lock(&self.state).oauth_client = Some((client_id.into(), client_secret.into()));
    }

    /// Writes need a CSRF token fetched with `x-csrf-token: Fetch`, and its session cookie.
    pub fn require_csrf(&self) {
        lock(&self.state).csrf = true;
    }

    /// The next requests (not token requests) are answered with these statuses.
    pub fn fail_with(&self, statuses: &[u16]) {
        self.fail_matching("", statuses);
    }

    /// The next requests to targets starting with `prefix` are answered with these statuses.
    pub fn fail_matching(&self, prefix: &str, statuses: &[u16]) {
        lock(&self.state).faults = statuses.iter().map(|s| (prefix.to_string(), *s)).collect();
    }

    /// A decision table of the rule service.
    pub fn add_decision(&self, rule_service_id: &str, rows: Vec<(Value, Value)>) {
        lock(&self.state)
            .decisions
            .insert(rule_service_id.into(), rows);
    }

    /// Requests received, token requests and CSRF fetches excluded.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.state).seen.clone()
    }

    pub fn token_requests(&self) -> u64 {
        lock(&self.state).token_requests
    }
}

fn status_line(status: u16) -> &'static str {
    match status {
        200 => "200 OK",
        400 => "400 Bad Request",
        404 => "404 Not Found",
        409 => "409 Conflict",
        422 => "422 Unprocessable Entity",
        429 => "429 Too Many Requests",
        503 => "503 Service Unavailable",
        _ => "500 Internal Server Error",
    }
}

fn answer(state: &Arc<Mutex<State>>, request: &Request) -> Answer {
    let mut s = lock(state);
    let path = request.target.split('?').next().unwrap_or("");
    if path == "/oauth/token" && request.method == "POST" {
        s.token_requests += 1;
        let ok = s.oauth_client.as_ref().is_some_and(|(id, secret)| {
            request.headers.get("authorization")
                == Some(&format!(
                    "Basic {}",
                    base64(format!("{id}:{secret}").as_bytes())
                ))
        }) && request.body.contains("grant_type=client_credentials");
        if !ok {
            let body = json!({"error": "invalid_client", "error_description": "Bad credentials"});
            return ("401 Unauthorized", vec![], body.to_string());
        }
        s.next += 1;
        let token = format!("dest-token-{}", s.next);
        s.tokens.push(token.clone());
        let body = json!({"access_token": token, "token_type": "bearer", "expires_in": 43199});
        return ("200 OK", vec![], body.to_string());
    }
    let authorization = request.headers.get("authorization");
    let basic_ok = s.basic.as_ref().is_none_or(|(u, p)| {
        authorization == Some(&format!("Basic {}", base64(format!("{u}:{p}").as_bytes())))
    });
    let bearer_ok = s.oauth_client.is_none()
        || authorization
            .and_then(|a| a.strip_prefix("Bearer "))
            .is_some_and(|t| s.tokens.iter().any(|issued| issued == t));
    if !basic_ok || !bearer_ok {
        return (
            "401 Unauthorized",
            vec![],
            json!({"error": "unauthorized"}).to_string(),
        );
    }
    if request.headers.get("x-csrf-token").map(String::as_str) == Some("Fetch") {
        s.next += 1;
        let (session, token) = (format!("s{}", s.next), format!("csrf-{}", s.next));
        s.sessions.insert(session.clone(), token.clone());
        return (
            "200 OK",
            vec![
                ("x-csrf-token".into(), token),
                ("Set-Cookie".into(), format!("SESSION={session}; path=/")),
            ],
            "{}".into(),
        );
    }
    let write = request.method != "GET";
    if write && s.csrf {
        let session = request.headers.get("cookie").and_then(|c| {
            c.split(';')
                .find_map(|kv| kv.trim().strip_prefix("SESSION="))
                .map(str::to_string)
        });
        let valid = session
            .and_then(|id| s.sessions.get(&id).cloned())
            .is_some_and(|t| request.headers.get("x-csrf-token") == Some(&t));
        if !valid {
            return (
                "403 Forbidden",
                vec![("x-csrf-token".into(), "Required".into())],
                "CSRF token validation failed".into(),
            );
        }
    }
    let body: Value = if request.body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_str(&request.body) {
            Ok(v) => v,
            Err(e) => {
                let error = json!({"error": format!("the body is not JSON: {e}")});
                return ("400 Bad Request", vec![], error.to_string());
            }
        }
    };
    s.seen.push(Seen {
        method: request.method.clone(),
        target: request.target.clone(),
        headers: request.headers.clone(),
        body: body.clone(),
    });
    if let Some(i) = s
        .faults
        .iter()
        .position(|(prefix, _)| request.target.starts_with(prefix.as_str()))
    {
        let (_, status) = s.faults.remove(i);
        let error = json!({"error": {"code": "FAULT", "message": format!("injected {status}")}});
        return (status_line(status), vec![], error.to_string());
    }
    if path.ends_with("/rest/v2/rule-services") && request.method == "POST" {
        return decide(&s, &body);
    }
    s.next += 1;
    let id = format!("R-{}", s.next);
    (
        if write { "201 Created" } else { "200 OK" },
        vec![],
        json!({"id": id, "received": body, "path": request.target}).to_string(),
    )
}

/// SBPA's rule service: the first row whose conditions all equal the first vocabulary object's
/// fields.
fn decide(s: &State, body: &Value) -> Answer {
    let id = body["RuleServiceId"].as_str().unwrap_or_default();
    let Some(rows) = s.decisions.get(id) else {
        let error = json!({"error": {"code": "bpm.rules.runtime.ruleservice.not.found",
            "message": format!("Rule service {id} not found or not deployed")}});
        return ("404 Not Found", vec![], error.to_string());
    };
    let input = body["Vocabulary"]
        .get(0)
        .and_then(Value::as_object)
        .and_then(|o| o.values().next())
        .cloned()
        .unwrap_or(Value::Null);
    let result: Vec<Value> = rows
        .iter()
        .find(|(when, _)| {
            when.as_object()
                .is_some_and(|w| w.iter().all(|(k, v)| input.get(k) == Some(v)))
        })
        .map(|(_, result)| vec![result.clone()])
        .unwrap_or_default();
    ("200 OK", vec![], json!({"Result": result}).to_string())
}
