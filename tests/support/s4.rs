//! An S/4HANA `API_MAINTNOTIFICATION` OData V2 test server on 127.0.0.1, enforcing what S/4
//! enforces for this API: Basic authentication (401); on every write a CSRF token fetched with
//! `x-csrf-token: Fetch` *and* the session cookie it was issued with (else 403 with
//! `x-csrf-token: Required`); the `MaintenanceNotification` field names and maximum lengths and
//! the mandatory `NotificationText` (400 with a SAP-shaped error body); `$filter` on
//! `MaintNotifExtReferenceNumber` and `TechnicalObject`. Faults on demand: 503 for the next N
//! requests, a delay, all tokens expired, technical objects that "do not exist", a capacity (at
//! most N requests answered a second, as a Gateway with few work processes). Changes
//! (`MERGE`) and the function import `CompleteMaintNotification` (parameters as URI literals in
//! the query) need `If-Match`, as the service has an entity tag; completing a completed
//! notification is refused. Items (`MaintenanceNotificationItem`), their causes
//! (`MaintNotificationItemCause`) and activities (`MaintNotificationItemActivity`) are checked
//! against the service's EDMX (`edmx.rs`): only its properties, only creatable ones, within
//! their lengths; their notification (and item) must exist; S/4 numbers them `0001`, `0002`, ...
//! Reading items takes `$filter=MaintenanceNotification eq '…'` and
//! `$expand=to_ItemCause,to_ItemActivity`.
//! The attachment service `API_CV_ATTACHMENT_SRV` is served beside it (`s4_attachments.rs`),
//! with the same logon and faults; a CSRF token is good on the service it was fetched on.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use e2b::http::retry::Backoff;
use serde_json::{Value, json};

pub const SERVICE: &str = "/sap/opu/odata/sap/API_MAINTNOTIFICATION";

/// Creatable fields and their maximum lengths (from the service's EDMX).
const FIELDS: [(&str, usize); 12] = [
    ("NotificationText", 40),
    ("MaintNotifLongTextForEdit", 1333),
    ("NotificationType", 2),
    ("TechnicalObject", 40),
    ("TechObjIsEquipOrFuncnlLoc", 20),
    ("MaintPriority", 1),
    ("MaintenancePlanningPlant", 4),
    ("MaintNotifExtReferenceNumber", 20),
    ("MalfunctionStartDate", 30),
    ("MalfunctionStartTime", 20),
    ("ReportedByUser", 12),
    ("PersonResponsible", 12),
];

#[derive(Default)]
struct State {
    username: String,
    password: String,
    /// session cookie → (token, the service it was fetched on): a token is good for its own
    /// service only (stricter than a Gateway may be, so the client fetches per service)
    sessions: HashMap<String, (String, &'static str)>,
    /// `API_CV_ATTACHMENT_SRV` (`s4_attachments.rs`).
    attachments: super::s4_attachments::Attachments,
    next_session: u64,
    notifications: Vec<Value>,
    csrf_fetches: u64,
    requests: u64,
    fail_next: u64,
    delay: Option<Duration>,
    post_delay: Option<Duration>,
    unknown_objects: HashSet<String>,
    sap_clients: HashSet<String>,
    /// OAuth2 client credentials accepted at /oauth/token, and the tokens issued.
    oauth_client: Option<(String, String)>,
    tokens: HashSet<String>,
    token_requests: u64,
    completions: u64,
    updates: u64,
    /// Queries of the notification collection (`GET /MaintenanceNotification?$filter=...`).
    reads: u64,
    /// Random 503s per thousand requests, and every how many requests all CSRF tokens expire.
    fail_per_mille: u32,
    expire_every: u64,
    rng: u64,
    /// External reference → index in `notifications`.
    by_reference: HashMap<String, usize>,
    /// Notification items, and their causes and activities (keys as S/4 assigns them).
    items: Vec<Value>,
    causes: Vec<Value>,
    activities: Vec<Value>,
    /// When each request arrived (ms since the server started), and the capacity: at most this
    /// many requests answered in any second, the others 503 (a Gateway out of work processes).
    arrivals: Vec<u64>,
    capacity: Option<u64>,
    overloaded: u64,
    started: Option<std::time::Instant>,
    /// Served over mutual TLS: a request without `Authorization` is logged on by its client
    /// certificate (the TLS layer admits only certificates of the peer's CA), as X.509 logon.
    certificate_logon: bool,
    /// Each request's `traceparent` header (S/4 does not act on it; a basis team finds it in the
    /// Gateway's logs), in arrival order, `None` when absent.
    traceparents: Vec<Option<String>>,
}

pub struct TestS4 {
    pub url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestS4 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(state: &Arc<Mutex<State>>) -> std::sync::MutexGuard<'_, State> {
    super::http::lock(state)
}

impl TestS4 {
    pub async fn start(username: &str, password: &str) -> TestS4 {
        Self::start_at("127.0.0.1:0", username, password).await
    }

    /// Starts on a given loopback address (`127.0.0.1:PORT`).
    pub async fn start_at(address: &str, username: &str, password: &str) -> TestS4 {
        Self::launch(address, username, password, None).await
    }

    /// Starts over TLS with `tls` (see `support::tls`): with a configuration that requires a
    /// client certificate, a request without credentials is logged on by its certificate.
    pub async fn start_tls(
        username: &str,
        password: &str,
        tls: Arc<tokio_rustls::rustls::ServerConfig>,
    ) -> TestS4 {
        Self::launch("127.0.0.1:0", username, password, Some(tls)).await
    }

    async fn launch(
        address: &str,
        username: &str,
        password: &str,
        tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    ) -> TestS4 {
        super::init_logs();
        let state = Arc::new(Mutex::new(State {
            username: username.into(),
            password: password.into(),
            certificate_logon: tls.is_some(),
            ..State::default()
        }));
        let (answering, delaying) = (state.clone(), state.clone());
        let answer = move |request: &super::http::Request| answer(&answering, request);
        let delay = move |request: &super::http::Request| {
            let s = lock(&delaying);
            // A slow write is still carried out when the client has given up.
            let post = s.post_delay.filter(|_| request.method == "POST");
            match (s.delay, post) {
                (None, None) => None,
                (a, b) => Some(a.unwrap_or_default() + b.unwrap_or_default()),
            }
        };
        let (url, task) = match tls {
            Some(tls) => super::http::serve_tls(address, tls, answer, delay).await,
            None => super::http::serve(address, answer, delay).await,
        };
        TestS4 { url, state, task }
    }

    /// A client for this server with Basic credentials, `sap-client` 100 and three attempts.
    pub fn client(
        &self,
        username: &str,
        password: &str,
        timeout: Duration,
    ) -> e2b::processor::s4::S4Client {
        let credentials = e2b::processor::s4::S4Credentials {
            username: username.into(),
            password: password.into(),
        };
        self.client_with(
            e2b::processor::s4::S4Auth::Basic(credentials).into(),
            timeout,
        )
    }

    /// A client for this server logging on as `logon` says (a secret's TLS fields included).
    pub fn client_with(
        &self,
        logon: e2b::processor::s4::S4Logon,
        timeout: Duration,
    ) -> e2b::processor::s4::S4Client {
        let config = e2b::processor::s4::S4Config {
            service_url: reqwest::Url::parse(&self.service_url())
                .expect("service_url in the test set-up"),
            sap_client: Some("100".into()),
            request_timeout: timeout,
            retry: Backoff {
                base: Duration::from_millis(20),
                cap: Duration::from_millis(20) * 64,
                attempts: 3,
            },
        };
        e2b::processor::s4::S4Client::new(config, logon).expect("S4Client in the test set-up")
    }

    /// The service root URL.
    pub fn service_url(&self) -> String {
        format!("{}{SERVICE}", self.url)
    }

    /// Accept OAuth2 client credentials at `{url}/oauth/token`.
    pub fn enable_oauth(&self, client_id: &str, client_secret: &str) {
        lock(&self.state).oauth_client = Some((client_id.into(), client_secret.into()));
    }

    /// Another technical user (a rotation): the old credentials are refused from now on.
    pub fn set_user(&self, username: &str, password: &str) {
        let mut s = lock(&self.state);
        s.username = username.into();
        s.password = password.into();
        s.sessions.clear();
    }

    /// Every issued access token stops being valid.
    pub fn revoke_tokens(&self) {
        lock(&self.state).tokens.clear();
    }

    pub fn token_requests(&self) -> u64 {
        lock(&self.state).token_requests
    }

    /// Closes a notification (processing phase 4), as a planner would.
    pub fn complete(&self, number: &str) {
        self.set_phase(number, "4");
    }

    /// Sets a notification's processing phase as a planner would: `2` postponed, `3` in
    /// process, `4` completed, `5` marked for deletion.
    pub fn set_phase(&self, number: &str, phase: &str) {
        for n in lock(&self.state).notifications.iter_mut() {
            if n["MaintenanceNotification"] == number {
                n["NotifProcessingPhase"] = json!(phase);
            }
        }
    }

    /// Queries of the notification collection answered.
    pub fn reads(&self) -> u64 {
        lock(&self.state).reads
    }

    /// The items of a notification, each with `to_ItemCause` and `to_ItemActivity` lists.
    pub fn items(&self, number: &str) -> Vec<Value> {
        let s = lock(&self.state);
        items_with_children(&s, number, true, true)
    }

    /// `CompleteMaintNotification` calls that completed a notification.
    pub fn completions(&self) -> u64 {
        lock(&self.state).completions
    }

    /// Accepted `MERGE`s.
    pub fn updates(&self) -> u64 {
        lock(&self.state).updates
    }

    pub fn notifications(&self) -> Vec<Value> {
        lock(&self.state).notifications.clone()
    }

    pub fn csrf_fetches(&self) -> u64 {
        lock(&self.state).csrf_fetches
    }

    pub fn requests(&self) -> u64 {
        lock(&self.state).requests
    }

    /// From now on: random 503s per thousand requests, and all CSRF tokens expiring every
    /// `expire_every` requests (0: never).
    pub fn set_chaos(&self, fail_per_mille: u32, expire_every: u64, seed: u64) {
        let mut s = lock(&self.state);
        s.fail_per_mille = fail_per_mille;
        s.expire_every = expire_every;
        s.rng = seed.max(1);
    }

    /// When each request arrived, ms since the first one.
    /// Every request's `traceparent` header so far (`None` when it had none).
    pub fn traceparents(&self) -> Vec<Option<String>> {
        lock(&self.state).traceparents.clone()
    }

    pub fn arrivals(&self) -> Vec<u64> {
        lock(&self.state).arrivals.clone()
    }

    /// The most requests that arrived within any `window_ms` milliseconds.
    pub fn busiest(&self, window_ms: u64) -> usize {
        let arrivals = self.arrivals();
        arrivals
            .iter()
            .map(|t| {
                arrivals
                    .iter()
                    .filter(|u| **u >= *t && **u < t + window_ms)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    /// At most `per_second` requests answered in any second; the others 503 (`overloaded`).
    pub fn set_capacity(&self, per_second: Option<u64>) {
        lock(&self.state).capacity = per_second;
    }

    /// Requests answered 503 for want of capacity.
    pub fn overloaded(&self) -> u64 {
        lock(&self.state).overloaded
    }

    pub fn fail_next(&self, count: u64) {
        lock(&self.state).fail_next = count;
    }

    pub fn set_delay(&self, delay: Option<Duration>) {
        lock(&self.state).delay = delay;
    }

    /// Creates take this long; they are saved even when the client stopped waiting.
    pub fn set_post_delay(&self, delay: Option<Duration>) {
        lock(&self.state).post_delay = delay;
    }

    /// Every issued token stops being valid (a session timeout).
    pub fn expire_tokens(&self) {
        lock(&self.state).sessions.clear();
    }

    pub fn reject_object(&self, technical_object: &str) {
        lock(&self.state)
            .unknown_objects
            .insert(technical_object.to_string());
    }

    /// Creates for this technical object are accepted again.
    pub fn accept_object(&self, technical_object: &str) {
        lock(&self.state).unknown_objects.remove(technical_object);
    }

    /// The originals the attachment service holds, in upload order.
    pub fn originals(&self) -> Vec<super::s4_attachments::Original> {
        lock(&self.state).attachments.originals.clone()
    }

    /// Uploads the attachment service accepted.
    pub fn uploads(&self) -> u64 {
        lock(&self.state).attachments.uploads
    }

    /// Every upload refused (403, no authorisation), or accepted again.
    pub fn refuse_uploads(&self, refuse: bool) {
        lock(&self.state).attachments.refuse = refuse;
    }

    pub fn sap_clients(&self) -> HashSet<String> {
        lock(&self.state).sap_clients.clone()
    }
}

use super::http::Answer;

fn sap_error(code: &str, message: &str) -> String {
    json!({"error": {"code": code, "message": {"lang": "en", "value": message},
        "innererror": {"transactionid": "0123456789ABCDEF", "errordetails": [
            {"code": code, "message": message, "propertyref": "", "severity": "error", "target": ""}]}}})
    .to_string()
}

fn answer(state: &Arc<Mutex<State>>, request: &super::http::Request) -> Answer {
    let mut s = lock(state);
    s.requests += 1;
    let traceparent = request.headers.get("traceparent").cloned();
    s.traceparents.push(traceparent);
    let started = *s.started.get_or_insert_with(std::time::Instant::now);
    let at = started.elapsed().as_millis() as u64;
    s.arrivals.push(at);
    if let Some(capacity) = s.capacity {
        let recent = s
            .arrivals
            .iter()
            .rev()
            .take_while(|t| **t + 1000 > at)
            .count() as u64;
        if recent > capacity {
            s.overloaded += 1;
            return (
                "503 Service Unavailable",
                vec![],
                sap_error("/IWBEP/CM_MGW_RT/000", "No free work process"),
            );
        }
    }
    if s.expire_every > 0 && s.requests.is_multiple_of(s.expire_every) {
        s.sessions.clear();
    }
    if s.fail_per_mille > 0 {
        // xorshift64: reproducible for a seed.
        s.rng ^= s.rng << 13;
        s.rng ^= s.rng >> 7;
        s.rng ^= s.rng << 17;
        if ((s.rng % 1000) as u32) < s.fail_per_mille {
            return (
                "503 Service Unavailable",
                vec![],
                sap_error("/IWBEP/CM_MGW_RT/000", "Service unavailable"),
            );
        }
    }
    if s.fail_next > 0 {
        s.fail_next -= 1;
        return (
            "503 Service Unavailable",
            vec![],
            sap_error("/IWBEP/CM_MGW_RT/000", "Service unavailable"),
        );
    }
    let (path_only, _) = request
        .target
        .split_once('?')
        .unwrap_or((&request.target, ""));
    if path_only == "/oauth/token" && request.method == "POST" {
        s.token_requests += 1;
        let client_ok = s.oauth_client.as_ref().is_some_and(|(id, secret)| {
            request.headers.get("authorization")
                == Some(&format!(
                    "Basic {}",
                    super::http::base64(format!("{id}:{secret}").as_bytes())
                ))
        });
        if !client_ok || !request.body.contains("grant_type=client_credentials") {
            return (
                "401 Unauthorized",
                vec![],
                json!({"error": "invalid_client", "error_description": "Bad credentials"})
                    .to_string(),
            );
        }
        let token = format!("access-{}", s.token_requests);
        s.tokens.insert(token.clone());
        return (
            "200 OK",
            vec![],
            json!({"access_token": token, "token_type": "bearer", "expires_in": 43199}).to_string(),
        );
    }
    let expected = format!(
        "Basic {}",
        super::http::base64(format!("{}:{}", s.username, s.password).as_bytes())
    );
    let bearer_ok = request
        .headers
        .get("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .is_some_and(|t| s.tokens.contains(t));
    let by_certificate = s.certificate_logon && !request.headers.contains_key("authorization");
    if request.headers.get("authorization") != Some(&expected) && !bearer_ok && !by_certificate {
        return (
            "401 Unauthorized",
            vec![(
                "WWW-Authenticate".into(),
                "Basic realm=\"SAP NetWeaver Application Server\"".into(),
            )],
            String::new(),
        );
    }
    let (path, query) = request
        .target
        .split_once('?')
        .unwrap_or((&request.target, ""));
    for pair in query.split('&') {
        if let Some(client) = pair.strip_prefix("sap-client=") {
            s.sap_clients.insert(client.to_string());
        }
    }
    let attachments = super::s4_attachments::SERVICE;
    let (service, resource) = match (path.strip_prefix(SERVICE), path.strip_prefix(attachments)) {
        (Some(resource), _) => (SERVICE, resource),
        (_, Some(resource)) => (attachments, resource),
        _ => {
            return (
                "404 Not Found",
                vec![],
                sap_error("/IWFND/MED/170", "No service found"),
            );
        }
    };
    let session = request
        .headers
        .get("cookie")
        .and_then(|c| {
            c.split(';')
                .map(str::trim)
                .find_map(|kv| kv.strip_prefix("SAP_SESSIONID_TST_100="))
        })
        .map(str::to_string);
    if request.headers.get("x-csrf-token").map(String::as_str) == Some("Fetch")
        && request.method == "GET"
    {
        s.csrf_fetches += 1;
        s.next_session += 1;
        let sid = format!("session{}", s.next_session);
        let token = format!("token-{}", s.next_session);
        s.sessions.insert(sid.clone(), (token.clone(), service));
        return (
            "200 OK",
            vec![
                ("x-csrf-token".into(), token),
                (
                    "Set-Cookie".into(),
                    format!("SAP_SESSIONID_TST_100={sid}; path=/; HttpOnly"),
                ),
            ],
            json!({"d": {"EntitySets": ["MaintenanceNotification"]}}).to_string(),
        );
    }
    // Writes need the token issued with the session cookie they carry.
    let token_ok = session
        .as_ref()
        .and_then(|sid| s.sessions.get(sid))
        .is_some_and(|(t, fetched_on)| {
            *fetched_on == service && request.headers.get("x-csrf-token") == Some(t)
        });
    if service == attachments {
        let state = &mut *s;
        let notifications = &state.notifications;
        let exists = |number: &str| {
            notifications.iter().any(|n| {
                n["MaintenanceNotification"]
                    .as_str()
                    .map(|m| m.trim_start_matches('0'))
                    == Some(number)
            })
        };
        return super::s4_attachments::answer(
            &mut state.attachments,
            request,
            resource,
            query,
            token_ok,
            exists,
        );
    }
    match (request.method.as_str(), resource) {
        ("GET", "/MaintenanceNotification") => {
            s.reads += 1;
            let filter = decode(
                query
                    .split('&')
                    .find_map(|p| p.strip_prefix("$filter="))
                    .unwrap_or(""),
            );
            let top = query
                .split('&')
                .find_map(|p| p.strip_prefix("$top="))
                .and_then(|t| t.parse().ok())
                .unwrap_or(usize::MAX);
            // The lookup by external reference, indexed (long runs hold many notifications).
            let indexed = filter
                .strip_prefix("MaintNotifExtReferenceNumber eq '")
                .and_then(|r| r.strip_suffix('\''))
                .filter(|r| !r.contains(' '));
            let results: Vec<Value> = match indexed {
                Some(reference) => s
                    .by_reference
                    .get(reference)
                    .and_then(|i| s.notifications.get(*i))
                    .into_iter()
                    .cloned()
                    .collect(),
                None => s
                    .notifications
                    .iter()
                    .filter(|n| filter_matches(&filter, n))
                    .take(top)
                    .cloned()
                    .collect(),
            };
            (
                "200 OK",
                vec![],
                json!({"d": {"results": results}}).to_string(),
            )
        }
        ("GET", "/MaintenanceNotificationItem") => {
            let filter = decode(
                query
                    .split('&')
                    .find_map(|p| p.strip_prefix("$filter="))
                    .unwrap_or(""),
            );
            let expand = decode(
                query
                    .split('&')
                    .find_map(|p| p.strip_prefix("$expand="))
                    .unwrap_or(""),
            );
            let Some(number) = filter
                .strip_prefix("MaintenanceNotification eq '")
                .and_then(|n| n.strip_suffix('\''))
            else {
                return (
                    "400 Bad Request",
                    vec![],
                    sap_error("/IWBEP/CM_MGW_RT/011", "Filter on MaintenanceNotification"),
                );
            };
            let results = items_with_children(
                &s,
                number,
                expand.contains("to_ItemCause"),
                expand.contains("to_ItemActivity"),
            );
            (
                "200 OK",
                vec![],
                json!({"d": {"results": results}}).to_string(),
            )
        }
        (
            "POST",
            set @ ("/MaintenanceNotificationItem"
            | "/MaintNotificationItemCause"
            | "/MaintNotificationItemActivity"),
        ) => {
            if !token_ok {
                return csrf_refusal();
            }
            create_child(&mut s, set, &request.body)
        }
        ("POST", "/MaintenanceNotification") => {
            if !token_ok {
                return csrf_refusal();
            }
            let body = match fields_of(&request.body, false) {
                Ok(map) => Value::Object(map),
                Err(refusal) => return refusal,
            };
            if body
                .get("NotificationText")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return (
                    "400 Bad Request",
                    vec![],
                    sap_error("IW/021", "Enter a short text"),
                );
            }
            let object = body
                .get("TechnicalObject")
                .and_then(Value::as_str)
                .unwrap_or("");
            if object.is_empty() || s.unknown_objects.contains(object) {
                return (
                    "400 Bad Request",
                    vec![],
                    sap_error("IW/123", "Technical object is invalid"),
                );
            }
            let number = format!("{}", 10_000_000 + s.notifications.len() as u64 + 1);
            let mut created = body.clone();
            created["MaintenanceNotification"] = json!(number);
            created["NotifProcessingPhase"] = json!("1");
            if let Some(reference) = created["MaintNotifExtReferenceNumber"].as_str() {
                let index = s.notifications.len();
                s.by_reference.insert(reference.to_string(), index);
            }
            s.notifications.push(created.clone());
            (
                "201 Created",
                vec![(
                    "Location".into(),
                    format!("{SERVICE}/MaintenanceNotification('{number}')"),
                )],
                json!({"d": created}).to_string(),
            )
        }
        (method, entity)
            if (method == "MERGE" || method == "PATCH")
                && entity.starts_with("/MaintenanceNotification('") =>
        {
            if !token_ok {
                return csrf_refusal();
            }
            if !request.headers.contains_key("if-match") {
                return precondition_required();
            }
            let number = entity
                .trim_start_matches("/MaintenanceNotification('")
                .trim_end_matches("')")
                .to_string();
            let changes = match fields_of(&request.body, true) {
                Ok(map) => map,
                Err(refusal) => return refusal,
            };
            s.updates += 1;
            let Some(existing) = s
                .notifications
                .iter_mut()
                .find(|n| n["MaintenanceNotification"] == number.as_str())
            else {
                return not_found(&number);
            };
            for (field, value) in changes {
                if field == "MaintNotifLongTextForEdit" {
                    // S/4 adds the text as a new block of the long text.
                    let before = existing[&field].as_str().unwrap_or_default().to_string();
                    existing[&field] =
                        json!(format!("{before}\n{}", value.as_str().unwrap_or_default()));
                } else {
                    existing[&field] = value;
                }
            }
            ("204 No Content", vec![], String::new())
        }
        ("POST", "/CompleteMaintNotification") => {
            if !token_ok {
                return csrf_refusal();
            }
            if !request.headers.contains_key("if-match") {
                return precondition_required();
            }
            let parameter = |name: &str| {
                query
                    .split('&')
                    .find_map(|p| p.strip_prefix(&format!("{name}=")))
                    .map(decode)
            };
            let Some(number) = parameter("MaintenanceNotification").and_then(|n| {
                n.strip_prefix('\'')
                    .and_then(|n| n.strip_suffix('\''))
                    .map(str::to_string)
            }) else {
                return (
                    "400 Bad Request",
                    vec![],
                    sap_error(
                        "/IWBEP/CM_MGW_RT/106",
                        "Parameter 'MaintenanceNotification' is missing or not a string literal",
                    ),
                );
            };
            let reference = parameter("MaintNotifReferenceDateTime");
            if reference
                .as_ref()
                .is_some_and(|r| !(r.starts_with("datetimeoffset'") && r.ends_with('\'')))
            {
                return (
                    "400 Bad Request",
                    vec![],
                    sap_error(
                        "/IWBEP/CM_MGW_RT/107",
                        "Parameter 'MaintNotifReferenceDateTime' is not an Edm.DateTimeOffset literal",
                    ),
                );
            }
            let Some(existing) = s
                .notifications
                .iter_mut()
                .find(|n| n["MaintenanceNotification"] == number.as_str())
            else {
                return not_found(&number);
            };
            if existing["NotifProcessingPhase"] == "4" {
                return (
                    "400 Bad Request",
                    vec![],
                    sap_error(
                        "IW/439",
                        &format!("Notification {number} is already completed"),
                    ),
                );
            }
            existing["NotifProcessingPhase"] = json!("4");
            existing["NotificationReferenceDateTime"] = json!(reference);
            let done = existing.clone();
            s.completions += 1;
            ("200 OK", vec![], json!({"d": done}).to_string())
        }
        _ => (
            "405 Method Not Allowed",
            vec![],
            sap_error("/IWBEP/CM_MGW_RT/005", "Method not allowed"),
        ),
    }
}

/// An item, cause or activity created as S/4 does: the body checked against the EDMX, the
/// parents looked up, the key numbered.
fn create_child(s: &mut State, set: &str, body: &str) -> Answer {
    let refuse = |status: &'static str, code: &str, message: &str| {
        (status, vec![], sap_error(code, message))
    };
    let (entity_type, key) = match set {
        "/MaintenanceNotificationItem" => (
            "MaintenanceNotificationItemType",
            "MaintenanceNotificationItem",
        ),
        "/MaintNotificationItemCause" => (
            "MaintNotificationItemCauseType",
            "MaintenanceNotificationCause",
        ),
        _ => (
            "MaintNotificationItemActivityType",
            "MaintNotificationActivity",
        ),
    };
    let Ok(Value::Object(mut fields)) = serde_json::from_str::<Value>(body) else {
        return refuse(
            "400 Bad Request",
            "/IWBEP/CM_MGW_RT/022",
            "The request body is not a JSON object",
        );
    };
    let properties = super::edmx::properties(entity_type);
    for (field, value) in &fields {
        let Some(property) = properties.iter().find(|p| &p.name == field) else {
            return refuse(
                "400 Bad Request",
                "/IWBEP/CM_MGW_RT/021",
                &format!("Property '{field}' is invalid"),
            );
        };
        if !property.creatable {
            return refuse(
                "400 Bad Request",
                "/IWBEP/CM_MGW_RT/024",
                &format!("Property '{field}' cannot be set"),
            );
        }
        if let (Some(max), Some(text)) = (property.max_length, value.as_str())
            && text.chars().count() > max
        {
            return refuse(
                "400 Bad Request",
                "/IWBEP/CM_MGW_RT/004",
                &format!("Value of '{field}' is too long (maximum {max})"),
            );
        }
    }
    let text = |name: &str| {
        fields
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let number = text("MaintenanceNotification");
    if !s
        .notifications
        .iter()
        .any(|n| n["MaintenanceNotification"] == number.as_str())
    {
        return refuse(
            "400 Bad Request",
            "IW/011",
            &format!("Notification {number} does not exist"),
        );
    }
    let siblings: &Vec<Value> = match set {
        "/MaintenanceNotificationItem" => &s.items,
        "/MaintNotificationItemCause" => &s.causes,
        _ => &s.activities,
    };
    let item = text("MaintenanceNotificationItem");
    if set != "/MaintenanceNotificationItem"
        && !s.items.iter().any(|i| {
            i["MaintenanceNotification"] == number.as_str()
                && i["MaintenanceNotificationItem"] == item.as_str()
        })
    {
        return refuse(
            "400 Bad Request",
            "IW/012",
            &format!("Item {item} of notification {number} does not exist"),
        );
    }
    let taken = siblings
        .iter()
        .filter(|c| {
            c["MaintenanceNotification"] == number.as_str()
                && (set == "/MaintenanceNotificationItem"
                    || c["MaintenanceNotificationItem"] == item.as_str())
        })
        .count();
    fields.insert(key.into(), json!(format!("{:04}", taken + 1)));
    let created = Value::Object(fields);
    match set {
        "/MaintenanceNotificationItem" => s.items.push(created.clone()),
        "/MaintNotificationItemCause" => s.causes.push(created.clone()),
        _ => s.activities.push(created.clone()),
    }
    ("201 Created", vec![], json!({"d": created}).to_string())
}

/// The items of a notification, with their causes and activities when expanded.
fn items_with_children(s: &State, number: &str, causes: bool, activities: bool) -> Vec<Value> {
    let of = |list: &Vec<Value>, item: &Value| -> Vec<Value> {
        list.iter()
            .filter(|c| {
                c["MaintenanceNotification"] == item["MaintenanceNotification"]
                    && c["MaintenanceNotificationItem"] == item["MaintenanceNotificationItem"]
            })
            .cloned()
            .collect()
    };
    s.items
        .iter()
        .filter(|i| i["MaintenanceNotification"] == number)
        .map(|item| {
            let mut item = item.clone();
            if causes {
                item["to_ItemCause"] = json!({"results": of(&s.causes, &item)});
            }
            if activities {
                item["to_ItemActivity"] = json!({"results": of(&s.activities, &item)});
            }
            item
        })
        .collect()
}

/// A body's fields, checked against the entity's: known, not too long, and (on a change)
/// updatable. Otherwise the 400 S/4 answers.
fn fields_of(body: &str, changing: bool) -> Result<serde_json::Map<String, Value>, Answer> {
    let refuse = |code: &str, message: &str| ("400 Bad Request", vec![], sap_error(code, message));
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(body) else {
        return Err(refuse(
            "/IWBEP/CM_MGW_RT/022",
            "The request body is not a JSON object",
        ));
    };
    for (field, value) in &fields {
        let Some((_, max)) = FIELDS.iter().find(|(f, _)| f == field) else {
            return Err(refuse(
                "/IWBEP/CM_MGW_RT/021",
                &format!("Property '{field}' is invalid"),
            ));
        };
        if changing && field == "NotificationType" {
            return Err(refuse(
                "/IWBEP/CM_MGW_RT/023",
                "Property 'NotificationType' cannot be changed",
            ));
        }
        if value.as_str().is_some_and(|v| v.chars().count() > *max) {
            return Err(refuse(
                "/IWBEP/CM_MGW_RT/004",
                &format!("Value of '{field}' is too long (maximum {max})"),
            ));
        }
    }
    Ok(fields)
}

fn precondition_required() -> Answer {
    (
        "428 Precondition Required",
        vec![],
        sap_error(
            "/IWBEP/CM_MGW_RT/009",
            "Precondition required: send If-Match",
        ),
    )
}

fn not_found(number: &str) -> Answer {
    (
        "404 Not Found",
        vec![],
        sap_error(
            "/IWBEP/CM_MGW_RT/020",
            &format!("Notification {number} not found"),
        ),
    )
}

fn csrf_refusal() -> Answer {
    (
        "403 Forbidden",
        vec![("x-csrf-token".into(), "Required".into())],
        "CSRF token validation failed".into(),
    )
}

/// `Field eq 'value'` clauses joined by `and`, where a clause may be a parenthesised group of
/// `or`-joined clauses.
fn filter_matches(filter: &str, notification: &Value) -> bool {
    split_top_level(filter, " and ").iter().all(|clause| {
        let clause = clause.trim();
        if let Some(group) = clause.strip_prefix('(').and_then(|c| c.strip_suffix(')')) {
            return split_top_level(group, " or ")
                .iter()
                .any(|c| clause_matches(c, notification));
        }
        clause_matches(clause, notification)
    })
}

fn clause_matches(clause: &str, notification: &Value) -> bool {
    let Some((field, value)) = clause.trim().split_once(" eq ") else {
        return false;
    };
    let value = value.trim().trim_matches('\'').replace("''", "'");
    notification.get(field.trim()).and_then(Value::as_str) == Some(value.as_str())
}

fn split_top_level<'a>(text: &'a str, separator: &str) -> Vec<&'a str> {
    let mut parts = Vec::new();
    let (mut depth, mut start, mut i) = (0i32, 0usize, 0usize);
    let bytes = text.as_bytes();
    while i < bytes.len() {
        match bytes[i] {
            b'(' => depth += 1,
            b')' => depth -= 1,
            _ if depth == 0 && text[i..].starts_with(separator) => {
                parts.push(&text[start..i]);
                i += separator.len();
                start = i;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(&text[start..]);
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() + 1 => {
                let hex = text
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
