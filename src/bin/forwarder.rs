//! The forwarder Lambda: S3 object notifications → events on SAP Advanced Event Mesh.
//!
//! Only wiring: configuration from the environment (checked before the first event), the AWS
//! clients, the credential cache and the publisher live as long as the warm Lambda.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lambda_runtime::layers::{OpenTelemetryLayer, TracingLayer};
use lambda_runtime::{LambdaEvent, Runtime, service_fn};
use serde_json::Value;

use e2b::forwarder::config::ForwarderConfig;
use e2b::forwarder::setup;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let telemetry = Arc::new(e2b::trace::Telemetry::init("e2b-forwarder"));
    e2b::metrics::enable();
    let config = ForwarderConfig::from_env().inspect_err(|e| tracing::error!("{e}"))?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let margin = config.deadline_margin;
    let forwarder = Arc::new(setup::forwarder(&config, &aws)?);
    let handler = service_fn(move |event: LambdaEvent<Value>| {
        let forwarder = forwarder.clone();
        async move {
            // A trace the invocation came with (Lambda's active tracing) is linked, not lost.
            let x_ray = event.context.xray_trace_id.as_deref();
            if let Some(came) = x_ray.and_then(e2b::trace::TraceParent::from_x_ray) {
                e2b::trace::link_current_to(&came);
            }
            let deadline = deadline_of(event.context.deadline, margin);
            tracing::debug!(
                deadline_ms = event.context.deadline,
                budget_ms = deadline
                    .saturating_duration_since(Instant::now())
                    .as_millis() as u64,
                "invocation"
            );
            forwarder.handle(&event.payload, deadline).await
        }
    });
    // Spans, when exported, are flushed at the end of every invocation.
    Runtime::new(handler)
        .layer(TracingLayer::new())
        .layer(OpenTelemetryLayer::new(move || telemetry.flush()))
        .run()
        .await
}

/// The invocation's deadline (ms since the epoch) as an `Instant`, less the margin kept to
/// report what was not delivered. Local emulators (`cargo lambda watch`) send the function's
/// timeout instead of a point in time; a value before 2001 is read that way.
fn deadline_of(deadline_ms: u64, margin: Duration) -> Instant {
    const EPOCH_2001_MS: u64 = 978_307_200_000;
    let left = if deadline_ms < EPOCH_2001_MS {
        Duration::from_millis(deadline_ms)
    } else {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Duration::from_millis(deadline_ms.saturating_sub(now_ms))
    };
    Instant::now() + left.saturating_sub(margin)
}
