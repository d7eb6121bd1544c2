//! Named actions of a rule file: ordered steps, as the SAP sample's pre-, main and post-actions,
//! with an explicit order, and the destinations their HTTP steps call.
//!
//! ```toml
//! [destination.sbpa]
//! url = "https://spa-api-gateway.cfapps.eu10.hana.ondemand.com/public/rule/runtime"
//! auth = "oauth2"                  # none | basic | bearer | oauth2
//! secret = "e2b/sbpa"              # Secrets Manager: client_id, client_secret, token_url
//!
//! [[action]]
//! name = "create-pm-notification"
//! id = "4b8c8d3e-…"                # optional: the ActionId an SBPA decision returns
//!
//! [[action.step]]
//! name = "equipment"
//! phase = "pre"                    # pre | main | post; then `order`, then file order
//! type = "sbpa"
//! destination = "sbpa"
//! rule_service_id = "2c63b92dc775482682d230d031b14b1a"
//! vocabulary = [{ BucketInfo = { BucketName = "${{event.data.site}}" } }]
//!
//! [[action.step]]
//! name = "notification"
//! type = "create_notification"
//! params = { technical_object = "${{steps.equipment.Result[0].EquipmentDetails.Equipment}}" }
//! ```
//!
//! Step types: `http` (a call to a destination), `sbpa` (a SAP Build Process Automation rule
//! service, optionally choosing the next action from its result), `create_notification`,
//! `close_notification` and `log`. Everything is checked when the file is loaded.

use std::collections::{BTreeMap, HashSet};

use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;

use super::file::ActionParams;
use super::template::{JsonTemplate, Path, Template};

/// When a step runs within its action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Pre,
    #[default]
    Main,
    Post,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepType {
    Http,
    Sbpa,
    CreateNotification,
    CloseNotification,
    Log,
}

/// A step as written in the file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    pub name: String,
    #[serde(default)]
    pub phase: Phase,
    pub order: Option<i64>,
    #[serde(rename = "type")]
    pub step_type: StepType,
    pub destination: Option<String>,
    pub method: Option<String>,
    pub path: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON body written as TOML.
    pub body: Option<Value>,
    /// A JSON body written as JSON text (as pasted from the SAP sample's action modeller).
    pub body_json: Option<String>,
    pub csrf: Option<bool>,
    pub expect: Option<Vec<u16>>,
    pub rule_service_id: Option<String>,
    pub vocabulary: Option<Value>,
    /// A path in the rule service's answer whose value names the action to run next.
    pub choose_action: Option<String>,
    pub message: Option<String>,
    #[serde(default)]
    pub params: ActionParams,
}

/// An action as written in the file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    pub name: String,
    pub id: Option<String>,
    #[serde(rename = "step", default)]
    pub steps: Vec<StepSpec>,
}

/// How a destination authenticates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    #[default]
    None,
    Basic,
    Bearer,
    /// `{"api_key"}` sent in the header `api_key_header` (default `APIKey`, as SAP's API hub).
    ApiKey,
    Oauth2,
}

/// A system HTTP steps call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationSpec {
    pub url: String,
    #[serde(default)]
    pub auth: AuthKind,
    /// Secrets Manager secret: `username`/`password` (basic), `token` (bearer), or
    /// `client_id`/`client_secret`/`token_url` (oauth2, SAP service keys accepted).
    pub secret: Option<String>,
    pub sap_client: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub timeout_ms: Option<u64>,
    /// The header an API key goes in (auth = api_key).
    pub api_key_header: Option<String>,
}

/// A checked HTTP call.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpCall {
    pub destination: String,
    pub method: Method,
    pub path: Template,
    pub headers: Vec<(String, Template)>,
    pub body: Option<JsonTemplate>,
    pub csrf: bool,
    /// Statuses that mean success; empty = any 2xx.
    pub expect: Vec<u16>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    Http(HttpCall),
    Sbpa {
        call: HttpCall,
        choose: Option<Path>,
    },
    CreateNotification,
    CloseNotification,
    Log(Option<Template>),
}

/// A checked step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub name: String,
    pub phase: Phase,
    pub kind: StepKind,
    pub params: ActionParams,
}

/// A checked action: steps in the order they run.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    pub name: String,
    pub id: Option<String>,
    pub steps: Vec<Step>,
}

impl Step {
    /// True when the step changes something elsewhere (a write, a notification): its result is
    /// kept when re-processing, while reads (GET, SBPA decisions, logs) run again.
    pub fn changes_things(&self) -> bool {
        match &self.kind {
            StepKind::Http(call) => call.method != Method::GET,
            StepKind::CreateNotification | StepKind::CloseNotification => true,
            StepKind::Sbpa { .. } | StepKind::Log(_) => false,
        }
    }
}

impl Action {
    /// True when `key` is this action's name or id (what an SBPA decision returns).
    pub fn answers_to(&self, key: &str) -> bool {
        self.name == key || self.id.as_deref() == Some(key)
    }
}

/// The template roots a rule file may read; `event` fields are those of the CloudEvent.
pub const EVENT_FIELDS: [&str; 5] = ["id", "source", "type", "time", "data"];

/// Where SBPA's rule services answer under a destination's URL.
pub const SBPA_PATH: &str = "/rest/v2/rule-services";

/// Checks and compiles the actions; problems are added to `problems`, each saying where.
pub fn compile(
    origin: &str,
    specs: &[ActionSpec],
    destinations: &BTreeMap<String, DestinationSpec>,
    problems: &mut Vec<String>,
) -> Vec<Action> {
    for (name, d) in destinations {
        check_destination(&format!("{origin}: destination `{name}`"), d, problems);
    }
    // Results of steps in actions that choose another: readable by every chosen action.
    let chooser_steps: HashSet<&str> = specs
        .iter()
        .filter(|a| a.steps.iter().any(|s| s.choose_action.is_some()))
        .flat_map(|a| a.steps.iter().map(|s| s.name.as_str()))
        .collect();
    // A chosen action's steps run beside its chooser's: their names must not meet.
    for spec in specs {
        for step in &spec.steps {
            if chooser_steps.contains(step.name.as_str())
                && !spec.steps.iter().any(|s| s.choose_action.is_some())
            {
                problems.push(format!(
                    "{origin}: action `{}`, step `{}`: an action that chooses another has a step of this name; name them apart",
                    spec.name, step.name
                ));
            }
        }
    }
    let mut names = HashSet::new();
    let mut actions = Vec::new();
    for spec in specs {
        let at = format!("{origin}: action `{}`", spec.name);
        if spec.name.trim().is_empty() {
            problems.push(format!("{origin}: an [[action]] has an empty name"));
        }
        if super::file::ActionKind::builtin(&spec.name).is_some() {
            problems.push(format!("{at}: the name is a built-in action's"));
        }
        for key in std::iter::once(&spec.name).chain(spec.id.as_ref()) {
            if !names.insert(key.as_str()) {
                problems.push(format!("{at}: `{key}` names two actions"));
            }
        }
        if spec.steps.is_empty() {
            problems.push(format!("{at}: no [[action.step]]"));
        }
        let mut order: Vec<(usize, &StepSpec)> = spec.steps.iter().enumerate().collect();
        order.sort_by_key(|(i, s)| (s.phase, s.order.unwrap_or(*i as i64), *i));
        let mut seen: HashSet<&str> = HashSet::new();
        let mut steps = Vec::new();
        for (_, step) in order {
            let at = format!("{at}, step `{}`", step.name);
            if step.name.trim().is_empty() || !seen.insert(step.name.as_str()) {
                problems.push(format!("{at}: step names must be given and differ"));
            }
            let readable = |name: &str| {
                (seen.contains(name) && name != step.name) || chooser_steps.contains(name)
            };
            if let Some(kind) = compile_step(&at, step, destinations, &readable, problems) {
                steps.push(Step {
                    name: step.name.clone(),
                    phase: step.phase,
                    kind,
                    params: step.params.clone(),
                });
            }
        }
        actions.push(Action {
            name: spec.name.clone(),
            id: spec.id.clone(),
            steps,
        });
    }
    actions
}

fn check_destination(at: &str, d: &DestinationSpec, problems: &mut Vec<String>) {
    match reqwest::Url::parse(&d.url) {
        Ok(url) if !url.username().is_empty() || url.password().is_some() => {
            problems.push(format!("{at}: put credentials in `secret`, not in the url"))
        }
        Ok(url) if url.scheme() == "https" => {}
        Ok(url) if url.scheme() == "http" && d.auth == AuthKind::None => {}
        // Credentials in clear text only to this machine (test peers).
        Ok(url) if url.scheme() == "http" && is_loopback(&url) => {}
        Ok(url) if url.scheme() == "http" => problems.push(format!(
            "{at}: credentials would travel in clear text: use an https url"
        )),
        _ => problems.push(format!("{at}: url `{}` is not an http(s) URL", d.url)),
    }
    if d.auth != AuthKind::None && d.secret.is_none() {
        problems.push(format!(
            "{at}: auth {:?} needs `secret` (a Secrets Manager secret)",
            d.auth
        ));
    }
    for (name, value) in &d.headers {
        check_header(at, name, problems);
        if reqwest::header::HeaderValue::from_str(value).is_err() {
            problems.push(format!(
                "{at}: header {name} holds a character a header cannot"
            ));
        }
    }
}

/// True for `localhost` and loopback addresses.
pub fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or("");
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Header names that carry credentials: those belong in the destination's secret, never in the
/// rule file (and so never in failure records).
const CREDENTIAL_HEADERS: [&str; 7] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
    "apikey",
    "api-key",
    "x-csrf-token",
];

fn check_header(at: &str, name: &str, problems: &mut Vec<String>) {
    if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
        problems.push(format!("{at}: `{name}` is not a header name"));
    } else if CREDENTIAL_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        problems.push(format!(
            "{at}: header {name} carries credentials: put them in the destination's `secret` (auth = basic, bearer, api_key or oauth2)"
        ));
    }
}

/// Parses a template and checks what it reads.
fn template(
    at: &str,
    field: &str,
    text: &str,
    readable: &dyn Fn(&str) -> bool,
    problems: &mut Vec<String>,
) -> Option<Template> {
    match Template::parse(text) {
        Ok(t) => {
            for path in t.paths() {
                check_path(at, field, path, readable, problems);
            }
            Some(t)
        }
        Err(e) => {
            problems.push(format!("{at}: {field}: {e}"));
            None
        }
    }
}

fn check_path(
    at: &str,
    field: &str,
    path: &Path,
    readable: &dyn Fn(&str) -> bool,
    problems: &mut Vec<String>,
) {
    match (path.root(), path.second()) {
        ("event", Some(f)) if EVENT_FIELDS.contains(&f) => {}
        ("event", _) => problems.push(format!(
            "{at}: {field}: `{}`: an event has {}",
            path.text,
            EVENT_FIELDS.join(", ")
        )),
        ("steps", Some(step)) if readable(step) => {}
        ("steps", _) => problems.push(format!(
            "{at}: {field}: `{}` does not name a step that runs before this one",
            path.text
        )),
        _ => problems.push(format!(
            "{at}: {field}: `{}` must start with `event.` or `steps.`",
            path.text
        )),
    }
}

fn compile_step(
    at: &str,
    step: &StepSpec,
    destinations: &BTreeMap<String, DestinationSpec>,
    readable: &dyn Fn(&str) -> bool,
    problems: &mut Vec<String>,
) -> Option<StepKind> {
    let calls = matches!(step.step_type, StepType::Http | StepType::Sbpa);
    let given = |present: bool, field: &str, problems: &mut Vec<String>| {
        if present {
            problems.push(format!(
                "{at}: `{field}` does not apply to a {:?} step",
                step.step_type
            ));
        }
    };
    if !calls {
        given(step.destination.is_some(), "destination", problems);
        given(step.method.is_some(), "method", problems);
        given(step.path.is_some(), "path", problems);
        given(!step.headers.is_empty(), "headers", problems);
        given(
            step.body.is_some() || step.body_json.is_some(),
            "body",
            problems,
        );
        given(step.csrf.is_some(), "csrf", problems);
        given(step.expect.is_some(), "expect", problems);
    }
    if step.step_type != StepType::Sbpa {
        given(step.rule_service_id.is_some(), "rule_service_id", problems);
        given(step.vocabulary.is_some(), "vocabulary", problems);
        given(step.choose_action.is_some(), "choose_action", problems);
    }
    if step.step_type != StepType::Log {
        given(step.message.is_some(), "message", problems);
    }
    let notification = matches!(
        step.step_type,
        StepType::CreateNotification | StepType::CloseNotification
    );
    if !notification && step.params != ActionParams::default() {
        problems.push(format!("{at}: `params` apply to notification steps only"));
    }
    for (field, value) in step.params.templates() {
        template(at, &format!("params.{field}"), value, readable, problems);
    }
    match step.step_type {
        StepType::CreateNotification => Some(StepKind::CreateNotification),
        StepType::CloseNotification => Some(StepKind::CloseNotification),
        StepType::Log => {
            Some(StepKind::Log(step.message.as_deref().and_then(|m| {
                template(at, "message", m, readable, problems)
            })))
        }
        StepType::Http => {
            http_call(at, step, None, destinations, readable, problems).map(StepKind::Http)
        }
        StepType::Sbpa => {
            let Some(id) = &step.rule_service_id else {
                problems.push(format!("{at}: an sbpa step needs `rule_service_id`"));
                return None;
            };
            let vocabulary = step.vocabulary.clone().unwrap_or(Value::Array(vec![]));
            if !vocabulary.is_array() {
                problems.push(format!(
                    "{at}: `vocabulary` is a list, e.g. [{{ EventInfo = {{ … }} }}]"
                ));
            }
            let body = serde_json::json!({"RuleServiceId": id, "Vocabulary": vocabulary});
            let choose = match step.choose_action.as_deref().map(Path::parse) {
                None => None,
                Some(Ok(p)) => Some(p),
                Some(Err(e)) => {
                    problems.push(format!("{at}: choose_action: {e}"));
                    None
                }
            };
            http_call(at, step, Some(body), destinations, readable, problems)
                .map(|call| StepKind::Sbpa { call, choose })
        }
    }
}

fn http_call(
    at: &str,
    step: &StepSpec,
    sbpa_body: Option<Value>,
    destinations: &BTreeMap<String, DestinationSpec>,
    readable: &dyn Fn(&str) -> bool,
    problems: &mut Vec<String>,
) -> Option<HttpCall> {
    let sbpa = sbpa_body.is_some();
    let destination = match &step.destination {
        Some(d) if destinations.contains_key(d) => d.clone(),
        Some(d) => {
            problems.push(format!("{at}: there is no [destination.{d}]"));
            return None;
        }
        None => {
            problems.push(format!("{at}: needs `destination`"));
            return None;
        }
    };
    let method_text = step
        .method
        .clone()
        .unwrap_or_else(|| if sbpa { "POST" } else { "" }.to_string());
    let method = match method_text.to_ascii_uppercase().as_str() {
        m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "MERGE") => {
            Method::from_bytes(m.as_bytes()).ok()
        }
        _ => None,
    };
    let Some(method) = method else {
        problems.push(format!(
            "{at}: method `{method_text}` is none of GET, POST, PUT, PATCH, DELETE, MERGE"
        ));
        return None;
    };
    let path_text = step
        .path
        .clone()
        .or_else(|| sbpa.then(|| SBPA_PATH.to_string()))
        .unwrap_or_default();
    if !path_text.starts_with('/') {
        problems.push(format!(
            "{at}: path `{path_text}` must start with `/` (it is added to the destination's url)"
        ));
    }
    let path = template(at, "path", &path_text, readable, problems)?;
    let headers = step
        .headers
        .iter()
        .filter_map(|(name, value)| {
            check_header(at, name, problems);
            template(at, &format!("headers.{name}"), value, readable, problems)
                .map(|t| (name.clone(), t))
        })
        .collect();
    let body_value = match (&sbpa_body, &step.body, &step.body_json) {
        (Some(b), None, None) => Some(b.clone()),
        (None, b, None) => b.clone(),
        (None, None, Some(text)) => match serde_json::from_str::<Value>(text) {
            Ok(v) => Some(v),
            Err(e) => {
                problems.push(format!("{at}: body_json is not JSON: {e}"));
                None
            }
        },
        _ => {
            problems.push(format!(
                "{at}: give one body: `body`, `body_json`, or (sbpa) `vocabulary`"
            ));
            None
        }
    };
    let body = body_value.and_then(|v| match JsonTemplate::compile(&v) {
        Ok(t) => {
            for path in t.paths() {
                check_path(at, "body", path, readable, problems);
            }
            Some(t)
        }
        Err(e) => {
            problems.push(format!("{at}: body: {e}"));
            None
        }
    });
    let expect = step.expect.clone().unwrap_or_default();
    if let Some(bad) = expect.iter().find(|s| !(100..=599).contains(*s)) {
        problems.push(format!("{at}: expect {bad} is not an HTTP status"));
    }
    Some(HttpCall {
        destination,
        method,
        path,
        headers,
        body,
        csrf: step.csrf.unwrap_or(false),
        expect,
    })
}
