//! The forwarder's configuration: environment variables, read and checked once at start-up.
//!
//! Every problem is reported at once, each by the variable's name; nothing is discovered at the
//! first event. The table in the README ("Forwarder configuration") lists every variable.

use std::time::Duration;

use reqwest::Url;

use crate::aws::records::FailureTarget;
use crate::aws::secrets::SecretLayout;
use crate::broker::{AemRest, Broker, BrokerConfig, Destination, EventMeshRest};
use crate::env::{ConfigError, Env};
use crate::event::{EventBuilder, PayloadFormat, TopicTemplate};
use crate::forwarder::firehose::DecodeOptions;
use crate::forwarder::scan::ScanConfig;
use crate::forwarder::trigger::KeyFilter;
use crate::http::retry::Backoff;
use crate::monitron::ForwardingRules;

/// Everything the forwarder Lambda needs to know.
#[derive(Debug, Clone)]
pub struct ForwarderConfig {
    pub broker: BrokerConfig,
    /// Secret (name or ARN) with the broker's logon: Advanced Event Mesh's `username` and
    /// `password` (or OAuth2 client, or certificate), or SAP Event Mesh's service key.
    pub secret_id: String,
    /// How that secret is laid out.
    pub secret_layout: SecretLayout,
    pub secret_ttl: Duration,
    pub scan: ScanConfig,
    pub filter: KeyFilter,
    /// Publishes in flight at once.
    pub concurrency: usize,
    /// Time kept free before the Lambda deadline to report what was not delivered.
    pub deadline_margin: Duration,
    /// Path-style S3 addressing (S3-compatible stores, emulators).
    pub s3_force_path_style: bool,
    /// The delivery ledger's DynamoDB table (`PROGRESS_TABLE`).
    pub progress_table: Option<String>,
    /// How long the ledger keeps an object's progress (`PROGRESS_KEEP_DAYS`).
    pub progress_keep: Duration,
    /// Where refused events are recorded (`FAILURE_RECORDS`).
    pub failure_records: Option<FailureTarget>,
    /// Where each measurement's trend point is kept (`TREND_TABLE`; the progress table serves).
    pub trend_table: Option<String>,
    /// `TREND_QUEUE`: an SQS queue URL the points are handed to, written when the queue gives
    /// them back to this function (`forwarder::series::queue`); needs `TREND_TABLE`.
    pub trend_queue: Option<String>,
    /// Things worth saying at start-up that do not stop it.
    pub warnings: Vec<String>,
}

/// Default publishes in flight.
pub const DEFAULT_CONCURRENCY: usize = 16;

impl ForwarderConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(crate::env::process)
    }

    /// Reads the settings through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = Env::new("forwarder", &lookup);
        let mut warnings = Vec::new();

        let broker = broker(&mut env);
        let (secret_id, secret_layout) = broker_secret(&mut env);
        let scan = read_scan(&mut env);
        let concurrency =
            env.number("PUBLISH_CONCURRENCY", DEFAULT_CONCURRENCY as u64, 1, 1024) as usize;
        let timeout_ms = env.number("PUBLISH_TIMEOUT_MS", 5_000, 100, 900_000);
        let max_attempts = env.number("PUBLISH_MAX_ATTEMPTS", 6, 1, 100) as u32;
        let ttl_ms = env
            .text("AEM_MESSAGE_TTL_MS")
            .map(|_| env.number("AEM_MESSAGE_TTL_MS", 0, 1, u64::MAX));
        let queue = env.text("EVENT_MESH_QUEUE");
        let secret_ttl = env.number("SECRET_CACHE_TTL_SECONDS", 300, 1, 86_400);
        let margin_ms = env.number("DEADLINE_MARGIN_MS", 2_000, 0, 60_000);
        let filter = KeyFilter {
            prefix: env.text("OBJECT_KEY_PREFIX").unwrap_or_default(),
            suffix: env.text("OBJECT_KEY_SUFFIX").unwrap_or_default(),
            exclude_prefixes: env
                .text("OBJECT_KEY_EXCLUDE_PREFIXES")
                .map(|list| {
                    list.split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        };
        let s3_force_path_style = env.flag("S3_FORCE_PATH_STYLE");
        let progress_table = env.text("PROGRESS_TABLE");
        let trend_table = env.text("TREND_TABLE");
        let trend_queue = env.text("TREND_QUEUE");
        if trend_queue.is_some() && trend_table.is_none() {
            env.problem("TREND_QUEUE needs TREND_TABLE: the queue's points are written there");
        }
        let keep_days = env.number("PROGRESS_KEEP_DAYS", 7, 1, 365);
        let failure_records = env.text("FAILURE_RECORDS").and_then(|text| {
            FailureTarget::parse(&text)
                .map_err(|e| env.problem(format!("FAILURE_RECORDS: {e}")))
                .ok()
        });

        let Some(broker) = broker.filter(|_| !env.has_problems()) else {
            return Err(env.error());
        };
        let broker = match broker {
            Chosen::Aem(base_url, destination) => {
                if base_url.scheme() == "http" {
                    warnings.push(format!(
                        "the broker URL {base_url} is plain http: credentials and events travel unencrypted; use https outside tests"
                    ));
                }
                aem_warnings(&env, &destination, &mut warnings);
                Broker::Aem(AemRest {
                    base_url,
                    destination,
                    message_ttl_ms: ttl_ms,
                })
            }
            Chosen::EventMesh => {
                if ttl_ms.is_some() {
                    warnings.push("AEM_MESSAGE_TTL_MS is for Advanced Event Mesh; SAP Event Mesh keeps messages as its queue says".into());
                }
                Broker::EventMesh(EventMeshRest { queue })
            }
        };
        if progress_table.is_none() {
            warnings.push(
                "PROGRESS_TABLE is not set: a retried invocation publishes every event of its object again (subscribers see duplicates with the same message id); set it to a DynamoDB table with partition key `id` and TTL attribute `expiration`".into(),
            );
        }
        if failure_records.is_none() {
            warnings.push(
                "FAILURE_RECORDS is not set: an event the broker refuses for good fails its invocation on every retry; set it to an SQS queue URL or s3://bucket/prefix to record refusals for e2b resend".into(),
            );
        }
        Ok(ForwarderConfig {
            broker: BrokerConfig {
                broker,
                request_timeout: Duration::from_millis(timeout_ms),
                retry: Backoff {
                    base: Duration::from_millis(100),
                    cap: Duration::from_secs(5),
                    attempts: max_attempts,
                },
            },
            secret_id,
            secret_layout,
            secret_ttl: Duration::from_secs(secret_ttl),
            scan,
            filter,
            concurrency,
            deadline_margin: Duration::from_millis(margin_ms),
            s3_force_path_style,
            progress_table,
            progress_keep: Duration::from_secs(keep_days * 86_400),
            failure_records,
            trend_table,
            trend_queue,
            warnings,
        })
    }
}

/// The settings that decide what an object's records become: the same for the Lambda and
/// `e2b replay --dry-run`, which counts events without a broker (`PAYLOAD_FORMAT`,
/// `AEM_TOPIC_TEMPLATE`, `FORWARD_MODEL_TRANSITIONS`, `FORWARD_CONNECTIVITY`,
/// `MAX_RECORD_BYTES`).
pub fn scan_settings(lookup: impl Fn(&str) -> Option<String>) -> Result<ScanConfig, ConfigError> {
    let mut env = Env::new("forwarder", &lookup);
    let scan = read_scan(&mut env);
    env.finish().map(|()| scan)
}

fn read_scan(env: &mut Env) -> ScanConfig {
    let topics = match env.text("AEM_TOPIC_TEMPLATE") {
        None => TopicTemplate::default(),
        Some(t) => TopicTemplate::parse(&t).unwrap_or_else(|e| {
            env.problem(format!("AEM_TOPIC_TEMPLATE: {e}"));
            TopicTemplate::default()
        }),
    };
    let format = match env.text("PAYLOAD_FORMAT") {
        None => PayloadFormat::CloudEvents,
        Some(name) => PayloadFormat::from_name(&name).unwrap_or_else(|| {
            env.problem(format!(
                "PAYLOAD_FORMAT `{name}` is neither `cloudevents` nor `sap-e2b`"
            ));
            PayloadFormat::CloudEvents
        }),
    };
    let rules = ForwardingRules {
        model_transitions: env.flag("FORWARD_MODEL_TRANSITIONS"),
        connectivity: env.flag("FORWARD_CONNECTIVITY"),
        states: forward_states(env, format),
    };
    let max_record = env.number(
        "MAX_RECORD_BYTES",
        crate::forwarder::firehose::DEFAULT_MAX_RECORD_BYTES as u64,
        1024,
        1 << 30,
    );
    ScanConfig {
        rules,
        events: EventBuilder { format, topics },
        decode: DecodeOptions {
            max_record_bytes: max_record as usize,
            ..DecodeOptions::default()
        },
        measurements: false,
    }
}

/// The asset states a change must go into to be forwarded (`FORWARD_STATES`).
fn forward_states(env: &mut Env, format: PayloadFormat) -> Option<Vec<String>> {
    let Some(text) = env.text("FORWARD_STATES") else {
        return default_states(format);
    };
    parse_states(&text).unwrap_or_else(|e| {
        env.problem(format!("FORWARD_STATES {e}"));
        None
    })
}

/// The selection when none is given: `sap-e2b` takes the SAP sample's (a change into
/// `NEEDS_MAINTENANCE` only: its processor cannot tell alerts from recoveries), CloudEvents
/// every change that touches an alert state (`None`).
pub fn default_states(format: PayloadFormat) -> Option<Vec<String>> {
    (format == PayloadFormat::SapE2b).then(|| vec!["NEEDS_MAINTENANCE".to_string()])
}

/// A selection of new states: a comma list of Monitron states, or `all` (`None`).
pub fn parse_states(text: &str) -> Result<Option<Vec<String>>, String> {
    const STATES: [&str; 5] = [
        "UNKNOWN",
        "HEALTHY",
        "NEEDS_MAINTENANCE",
        "WARNING",
        "ALARM",
    ];
    if text.trim().eq_ignore_ascii_case("all") {
        return Ok(None);
    }
    let states: Vec<String> = text
        .split(',')
        .map(|s| s.trim().to_ascii_uppercase())
        .filter(|s| !s.is_empty())
        .collect();
    if states.is_empty() || states.iter().any(|s| !STATES.contains(&s.as_str())) {
        return Err(format!(
            "`{text}` must be `all` or a comma list of {}",
            STATES.join(", ")
        ));
    }
    Ok(Some(states))
}

/// Warnings about settings Advanced Event Mesh does not use with this destination.
fn aem_warnings(env: &Env, destination: &Destination, warnings: &mut Vec<String>) {
    let template = env.text("AEM_TOPIC_TEMPLATE").is_some();
    if matches!(destination, Destination::FixedUrl(_)) && template {
        warnings.push(
            "SAP_AEM_REST_URL names the topic in its path; AEM_TOPIC_TEMPLATE is not used".into(),
        );
    }
    if matches!(destination, Destination::Queue(_)) && template {
        warnings.push(
            "AEM_QUEUE is set: every event goes to that queue; AEM_TOPIC_TEMPLATE is not used"
                .into(),
        );
    }
}

/// The variables that choose SAP Event Mesh, and those that choose Advanced Event Mesh.
const EVENT_MESH: [&str; 2] = ["EVENT_MESH_SERVICE_KEY_SECRET", "EVENT_MESH_QUEUE"];
const AEM: [&str; 5] = [
    "AEM_REST_URL",
    "SAP_AEM_REST_URL",
    "AEM_CREDENTIALS_SECRET",
    "SAP_AEM_CREDENTIALS",
    "AEM_QUEUE",
];

/// Which broker the variables choose.
enum Chosen {
    /// Advanced Event Mesh: its base URL and where messages go.
    Aem(Url, Destination),
    /// SAP Event Mesh: its address is in the service key.
    EventMesh,
}

/// The broker; `None` after recording the problem. Setting both brokers' variables is a
/// problem that names them.
fn broker(env: &mut Env) -> Option<Chosen> {
    let set = |names: &[&str]| -> Vec<String> {
        names
            .iter()
            .filter(|n| env.text(n).is_some())
            .map(|n| n.to_string())
            .collect()
    };
    let (event_mesh, aem) = (set(&EVENT_MESH), set(&AEM));
    if !event_mesh.is_empty() {
        if !aem.is_empty() {
            env.problem(format!(
                "{} and {} are both set: choose one broker, SAP Event Mesh (EVENT_MESH_SERVICE_KEY_SECRET) or Advanced Event Mesh (AEM_REST_URL)",
                event_mesh.join(", "),
                aem.join(", ")
            ));
            return None;
        }
        return Some(Chosen::EventMesh);
    }
    aem_broker(env).map(|(url, destination)| Chosen::Aem(url, destination))
}

/// Advanced Event Mesh's base URL and where messages go; `None` after recording the problem.
fn aem_broker(env: &mut Env) -> Option<(Url, Destination)> {
    let queue = env.text("AEM_QUEUE");
    match (env.text("AEM_REST_URL"), env.text("SAP_AEM_REST_URL")) {
        (Some(_), Some(_)) => {
            env.problem("set AEM_REST_URL or the SAP sample's SAP_AEM_REST_URL, not both");
            None
        }
        (None, None) => {
            env.problem("AEM_REST_URL is missing: the broker's REST messaging URL, e.g. https://mr-connection-xxxx.messaging.solace.cloud:9443 (SAP_AEM_REST_URL is accepted too); or, for SAP Event Mesh, EVENT_MESH_SERVICE_KEY_SECRET");
            None
        }
        (Some(url), None) => {
            let base = http_url(env, "AEM_REST_URL", &url)?;
            if base.path() != "/" && !base.path().is_empty() {
                env.problem(format!(
                    "AEM_REST_URL `{url}` has a path; give the broker's base URL (the topic comes from AEM_TOPIC_TEMPLATE, or use SAP_AEM_REST_URL for a fixed topic)"
                ));
                return None;
            }
            Some((base, queue.map_or(Destination::Topics, Destination::Queue)))
        }
        (None, Some(url)) => {
            let full = http_url(env, "SAP_AEM_REST_URL", &url)?;
            if full.path().trim_matches('/').is_empty() {
                env.problem("SAP_AEM_REST_URL has no path: its path is the topic, e.g. https://mr-connection-xxxx.messaging.solace.cloud:9443/monitron/messages");
                return None;
            }
            if queue.is_some() {
                env.problem(
                    "AEM_QUEUE cannot be used with SAP_AEM_REST_URL, whose path is the topic",
                );
                return None;
            }
            let mut base = full.clone();
            base.set_path("/");
            Some((base, Destination::FixedUrl(full)))
        }
    }
}

/// The broker secret and its layout: SAP Event Mesh's service key, or Advanced Event Mesh's
/// logon (`AEM_CREDENTIALS_SECRET`, or the SAP sample's `SAP_AEM_CREDENTIALS`).
fn broker_secret(env: &mut Env) -> (String, SecretLayout) {
    if let Some(id) = env.text("EVENT_MESH_SERVICE_KEY_SECRET") {
        return (id, SecretLayout::EventMeshServiceKey);
    }
    if env.text("EVENT_MESH_QUEUE").is_some() {
        env.problem("EVENT_MESH_QUEUE is set without EVENT_MESH_SERVICE_KEY_SECRET: the name or ARN of the Secrets Manager secret holding the Event Mesh service key");
    }
    let id = match (
        env.text("AEM_CREDENTIALS_SECRET"),
        env.text("SAP_AEM_CREDENTIALS"),
    ) {
        (Some(id), None) | (None, Some(id)) => id,
        (Some(_), Some(_)) => {
            env.problem("set AEM_CREDENTIALS_SECRET or its alias SAP_AEM_CREDENTIALS, not both");
            String::new()
        }
        (None, None) => {
            env.problem("AEM_CREDENTIALS_SECRET is missing: the name or ARN of the Secrets Manager secret with the broker's username and password (SAP_AEM_CREDENTIALS is accepted too)");
            String::new()
        }
    };
    (id, SecretLayout::BrokerLogon)
}

fn http_url(env: &mut Env, name: &str, text: &str) -> Option<Url> {
    match Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "https" | "http") && url.host().is_some() => {
            if url.query().is_some() || !url.username().is_empty() || url.password().is_some() {
                env.problem(format!("{name} must not carry a query or credentials (credentials come from the secret)"));
                return None;
            }
            Some(url)
        }
        _ => {
            // The value is not repeated when it may hold a password (`user:pass@host`).
            let shown = if text.contains('@') {
                "(value not shown)".to_string()
            } else {
                format!("`{text}`")
            };
            env.problem(format!("{name} {shown} is not an http(s) URL"));
            None
        }
    }
}

#[cfg(test)]
mod tests;
