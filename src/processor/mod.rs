//! The processor Lambda's handler: a mesh delivery → decision table → S/4HANA, exactly once.
//!
//! Replies, for the REST Delivery Point (it redelivers on anything but 2xx):
//! - 200 when the actions completed, were done before (a duplicate), or failed for good (the
//!   failure is logged with SAP's reason; a redelivery could not help);
//! - 503 when a retry can help (S/4 down, a timeout, the same event being worked on elsewhere);
//!   429 with `Retry-After` when only S/4's request rate held it back (`s4::limit`);
//! - 200 `HELD` when alarm management holds a new episode's notification (`episode::hold`);
//! - 400 for a body that is no event this processor understands (not UTF-8 JSON, logged with its
//!   size and content type; a binary body arrives base64-encoded from the Function URL and is
//!   decoded first), 401 without valid credentials (whatever the method, `OPTIONS` included),
//!   413 for an oversized body.
//!
//! Every reply comes within the configured budget, below the RDP's 30 s wait.

pub mod alarms;
pub mod auth;
pub mod close;
pub mod config;
mod create;
pub mod delivery;
pub mod destination;
pub mod doctor;
pub mod episode;
pub mod failures;
pub mod handshake;
pub mod idempotency;
mod invocation;
mod notification;
mod once;
pub mod outcome;
mod process;
mod report;
pub mod rules;
pub mod s4;
pub mod schedule;
pub mod setup;
mod steps;

use std::sync::Arc;
use std::time::{Duration, Instant};

use lambda_http::http::HeaderMap;
use serde_json::{Value, json};

use crate::processor::delivery::Delivery;
use crate::processor::destination::Destinations;
use crate::processor::episode::store::EpisodeStore;
use crate::processor::failures::FailureSink;
use crate::processor::idempotency::IdempotencyStore;
use crate::processor::rules::source::RuleSource;
use crate::processor::s4::S4Client;

use report::{emit_metrics, log_outcome, reply, result_json};

pub use auth::{AuthSource, InboundAuth};
pub use notification::{
    external_reference, identity_for, notification_for, recovery_note, technical_object_for,
};
pub use outcome::{Failure, Outcome, Reply, RuleOutcome};

/// Bodies larger than this are refused (413).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What the processor needs besides its clients.
#[derive(Clone)]
pub struct ProcessorSettings {
    pub rules: Arc<RuleSource>,
    pub auth: InboundAuth,
    /// Time allowed for one delivery, below the RDP's wait (30 s by default).
    pub budget: Duration,
    /// How long an in-progress idempotency record holds off other deliveries.
    pub in_progress_for: Duration,
    /// Where permanent failures are recorded for `e2b reprocess`.
    pub failures: Arc<FailureSink>,
    /// The clients of the rule files' destinations.
    pub destinations: Arc<Destinations>,
    /// The secret `auth` came from, read again when credentials do not match (rotation).
    pub auth_source: Option<Arc<AuthSource>>,
    /// The webhook origins the handshake allows; all when `None` (`PROCESSOR_ALLOWED_ORIGINS`).
    pub allowed_origins: Option<Vec<String>>,
    /// The rate (requests a minute) the handshake asks the mesh to keep to; `*` when `None`
    /// (`PROCESSOR_ALLOWED_RATE`).
    pub allowed_rate: Option<u64>,
    /// How recently S/4 must have shown a notification open for a new episode of its position
    /// to join it without reading it first ([`episode::plan::OPEN_FOR_SURE`]).
    pub open_for_sure: Duration,
    /// Trend charts attached to created notifications (`episode::chart`); none when `None`
    /// (`S4_ATTACHMENTS=off`, or no table).
    pub charts: Option<Arc<episode::chart::Charts>>,
}

impl ProcessorSettings {
    /// Rules, delivery credentials and timing; failures only logged, no destinations' secrets,
    /// credentials never read again (set the fields for more).
    pub fn new(
        rules: RuleSource,
        auth: InboundAuth,
        budget: Duration,
        in_progress_for: Duration,
    ) -> ProcessorSettings {
        ProcessorSettings {
            rules: Arc::new(rules),
            auth,
            budget,
            in_progress_for,
            failures: Arc::default(),
            destinations: Arc::default(),
            auth_source: None,
            allowed_origins: None,
            allowed_rate: None,
            open_for_sure: episode::plan::OPEN_FOR_SURE,
            charts: None,
        }
    }
}

/// The handler, holding its clients for the life of the warm Lambda.
pub struct Processor<I> {
    s4: Arc<S4Client>,
    idempotency: I,
    /// The delivery credentials in force (changed when the secret is read again).
    auth: tokio::sync::RwLock<InboundAuth>,
    settings: ProcessorSettings,
}

impl<I: IdempotencyStore + EpisodeStore> Processor<I> {
    pub fn new(s4: Arc<S4Client>, idempotency: I, settings: ProcessorSettings) -> Self {
        Processor {
            s4,
            idempotency,
            auth: tokio::sync::RwLock::new(settings.auth.clone()),
            settings,
        }
    }

    pub fn s4(&self) -> &S4Client {
        &self.s4
    }

    /// Handles one delivery.
    pub async fn handle(&self, headers: &HeaderMap, body: &[u8]) -> Reply {
        let started = Instant::now();
        if let Some(refused) = self.refused(headers, "delivery").await {
            return refused;
        }
        if body.len() > MAX_BODY_BYTES {
            return reply(
                413,
                json!({"error": format!("body larger than {MAX_BODY_BYTES} bytes")}),
            );
        }
        let mut event = match delivery::parse(body) {
            Ok(Delivery::Event(event)) => event,
            Ok(Delivery::NotAnAlert { id, reason }) => {
                let skipped = RuleOutcome {
                    rule: None,
                    action: None,
                    outcome: Outcome::Skipped(reason.clone()),
                };
                log_outcome(&id, &skipped, started);
                return reply(
                    200,
                    json!({"id": id, "status": "SKIPPED", "reason": reason}),
                );
            }
            Err(e) => {
                let content_type = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("none");
                tracing::warn!(reason = %e, bytes = body.len(), content_type, "delivery refused: not an event");
                return reply(400, json!({"error": e.to_string()}));
            }
        };
        // A header that is not text is refused as a trace, not as the delivery.
        let traceparent = headers
            .get("traceparent")
            .map(|v| v.to_str().unwrap_or("\u{fffd}"));
        event.continue_from_header(traceparent);
        let text = String::from_utf8_lossy(body);
        let outcomes = self.process(&event, &text, None, started).await;
        emit_metrics(&outcomes);
        let retry = outcomes
            .iter()
            .any(|o| matches!(o.outcome, Outcome::Retry(_)));
        let results: Vec<Value> = outcomes
            .iter()
            .map(|o| result_json(o.rule.as_deref(), &o.outcome))
            .collect();
        let throttled = retry
            && outcomes.iter().all(|o| match &o.outcome {
                Outcome::Retry(reason) => s4::limit::is_throttled(reason),
                _ => true,
            });
        let body = json!({"id": event.id, "results": results});
        if throttled {
            // S/4's request rate is spent: the mesh redelivers after a pause.
            let mut answer = reply(429, body);
            answer
                .headers
                .push(("Retry-After".to_string(), "2".to_string()));
            return answer;
        }
        reply(if retry { 503 } else { 200 }, body)
    }

    /// `OPTIONS`: SAP Event Mesh's webhook handshake (`handshake`), answered only to callers
    /// with the delivery credentials.
    pub async fn options(&self, headers: &HeaderMap) -> Reply {
        if let Some(refused) = self.refused(headers, "OPTIONS").await {
            return refused;
        }
        handshake::answer(
            headers,
            self.settings.allowed_origins.as_deref(),
            self.settings.allowed_rate,
        )
    }

    /// `GET ?e2b=doctor` on the Function URL, from an authenticated caller: S/4 checked from
    /// where the function runs (its VPC), as `e2b doctor` does; 200 when every check passed,
    /// 503 otherwise, with the checks.
    pub async fn doctor(&self, headers: &HeaderMap) -> Reply {
        if let Some(refused) = self.refused(headers, "doctor").await {
            return refused;
        }
        let checks = Box::pin(doctor::s4(&self.s4)).await;
        for check in &checks {
            tracing::info!(ok = check.ok, "doctor: {}", check.line());
        }
        let ok = checks.iter().all(|c| c.ok);
        reply(
            if ok { 200 } else { 503 },
            json!({"doctor": checks, "ok": ok}),
        )
    }

    /// 401 for a request (`what`, for the log) without valid credentials; `None` when admitted.
    async fn refused(&self, headers: &HeaderMap, what: &str) -> Option<Reply> {
        if self.admitted(headers).await {
            return None;
        }
        tracing::warn!("{what} refused: missing or wrong credentials");
        Some(reply(401, json!({"error": "missing or wrong credentials"})))
    }

    /// Whether a request's credentials match; when they do not, the secret is read again (at
    /// most once a minute) in case it was rotated.
    async fn admitted(&self, headers: &HeaderMap) -> bool {
        if self.auth.read().await.admits(headers) {
            return true;
        }
        let Some(source) = &self.settings.auth_source else {
            return false;
        };
        let Some(fresh) = source.read_again().await else {
            return false;
        };
        let admitted = fresh.admits(headers);
        *self.auth.write().await = fresh;
        admitted
    }
}
