//! The processor Lambda (behind a Function URL, and on EventBridge's every-minute schedule):
//! mesh deliveries → maintenance notifications in S/4HANA. Only wiring: configuration and
//! secrets are read before the first invocation; `Processor::invoke` tells a request from a tick.

use std::sync::Arc;

use lambda_runtime::layers::{OpenTelemetryLayer, TracingLayer};
use lambda_runtime::{LambdaEvent, Runtime, service_fn};
use serde_json::Value;

use e2b::processor::config::ProcessorConfig;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let telemetry = Arc::new(e2b::trace::Telemetry::init("e2b-processor"));
    e2b::metrics::enable();
    let config = ProcessorConfig::from_env().inspect_err(|e| tracing::error!("{e}"))?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let s3 = aws_sdk_s3::Client::new(&aws);
    let processor = Arc::new(
        e2b::processor::setup::build(&config, &aws, s3)
            .await
            .inspect_err(|e| tracing::error!("{e}"))?,
    );
    let handler = service_fn(move |event: LambdaEvent<Value>| {
        let processor = processor.clone();
        async move {
            processor
                .invoke(event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        }
    });
    // Spans, when exported, are flushed at the end of every invocation.
    Runtime::new(handler)
        .layer(TracingLayer::new())
        .layer(OpenTelemetryLayer::new(move || telemetry.flush()))
        .run()
        .await
}
