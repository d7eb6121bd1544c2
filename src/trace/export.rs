//! The Lambdas' logs and, when asked for, their spans over OTLP (issue 31).
//!
//! Rules:
//! - log lines are what `lambda_runtime` makes of Lambda's logging controls: JSON when
//!   `AWS_LAMBDA_LOG_FORMAT=JSON`, else text; the level from `AWS_LAMBDA_LOG_LEVEL`, else
//!   `RUST_LOG`, else INFO; no time (CloudWatch stamps each line);
//! - spans are exported only when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//!   `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set: OTLP/HTTP protobuf to the collector's
//!   `/v1/traces` (the ADOT collector layer's `localhost:4318`, a CloudWatch agent, any collector),
//!   the crate's other `OTEL_EXPORTER_OTLP_*` settings (headers, timeout) honoured. Unset, no
//!   OpenTelemetry layer is installed: nothing is recorded, exported or paid for;
//! - spans are batched in memory and [`Telemetry::flush`]ed at the end of every invocation
//!   (`lambda_runtime`'s OpenTelemetry layer), so a frozen or recycled Lambda loses none; an
//!   export that fails is logged and never fails the invocation; one export takes at most
//!   [`EXPORT_TIMEOUT`] (2 s, or `OTEL_EXPORTER_OTLP_TIMEOUT`), so a collector that does not
//!   answer costs an invocation at most that; the SDK's queue (2,048 spans) bounds what is
//!   kept between flushes, and what does not fit is dropped, not waited for;
//! - what is exported: our spans (the invocation, each event's publish, each delivery, each S/4
//!   and destination request) and the AWS SDK's operation spans (DynamoDB, Secrets Manager, S3,
//!   SQS) as children of the span they were made in, not the SDK's inner attempts;
//! - `service.name` is `OTEL_SERVICE_NAME` when set, else the binary's name.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::prelude::*;

/// One export's limit unless the environment says otherwise: a collector that does not answer
/// costs each invocation at most this (OpenTelemetry's default is 10 s).
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether spans are exported (set once, by [`Telemetry::init`]).
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether an OpenTelemetry layer records spans in this process.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// The process's logging and span export; flushed at the end of each invocation.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

/// Where spans go, when the environment asks for OTLP export: the traces endpoint as set, or
/// the base endpoint with `/v1/traces`, as OpenTelemetry's settings define them.
pub fn traces_endpoint(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    let set = |name: &str| {
        var(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| {
        set("OTEL_EXPORTER_OTLP_ENDPOINT")
            .map(|base| format!("{}/v1/traces", base.trim_end_matches('/')))
    })
}

/// How long one export may take: `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` or
/// `OTEL_EXPORTER_OTLP_TIMEOUT` (milliseconds), else [`EXPORT_TIMEOUT`].
pub fn export_timeout(var: impl Fn(&str) -> Option<String>) -> Duration {
    [
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ]
    .iter()
    .find_map(|name| var(name).and_then(|v| v.trim().parse::<u64>().ok()))
    .map_or(EXPORT_TIMEOUT, Duration::from_millis)
}

impl Telemetry {
    /// Installs the global subscriber (see the module's rules). `service` names the binary.
    pub fn init(service: &'static str) -> Telemetry {
        Self::init_with(service, |name| std::env::var(name).ok())
    }

    /// As [`Telemetry::init`], with the settings read from `var`.
    pub fn init_with(service: &'static str, var: impl Fn(&str) -> Option<String>) -> Telemetry {
        let level = var("AWS_LAMBDA_LOG_LEVEL")
            .or_else(|| var("RUST_LOG"))
            .and_then(|l| l.parse::<LevelFilter>().ok())
            .unwrap_or(LevelFilter::INFO);
        let filter = EnvFilter::builder()
            .with_default_directive(level.into())
            .from_env_lossy();
        let json = var("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"));
        let logs = tracing_subscriber::fmt::layer()
            .with_target(false)
            .without_time();
        let logs = if json {
            logs.json().with_filter(filter).boxed()
        } else {
            logs.with_filter(filter).boxed()
        };
        let mut problem = None;
        let provider = if let Some(endpoint) = traces_endpoint(&var) {
            match opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(endpoint)
                .with_timeout(export_timeout(&var))
                .build()
            {
                Ok(exporter) => {
                    let name = var("OTEL_SERVICE_NAME").unwrap_or_else(|| service.to_string());
                    Some(
                        SdkTracerProvider::builder()
                            .with_batch_exporter(exporter)
                            .with_resource(Resource::builder().with_service_name(name).build())
                            .build(),
                    )
                }
                Err(e) => {
                    problem = Some(e.to_string());
                    None
                }
            }
        } else {
            None
        };
        let spans = provider.as_ref().map(|provider| {
            let which = Targets::new()
                .with_target("e2b", LevelFilter::INFO)
                .with_target("lambda_runtime", LevelFilter::INFO)
                .with_target("aws_sdk_dynamodb", LevelFilter::DEBUG)
                .with_target("aws_sdk_secretsmanager", LevelFilter::DEBUG)
                .with_target("aws_sdk_s3", LevelFilter::DEBUG)
                .with_target("aws_sdk_sqs", LevelFilter::DEBUG);
            // What an operator searches by is in our fields; the code location, thread and
            // busy/idle timings of every span are not worth their cost per event.
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer(service))
                .with_location(false)
                .with_threads(false)
                .with_target(false)
                .with_tracked_inactivity(false)
                .with_filter(which)
        });
        let installed = tracing_subscriber::registry()
            .with(logs)
            .with(spans)
            .try_init()
            .is_ok();
        EXPORTING.store(installed && provider.is_some(), Ordering::Relaxed);
        if let Some(why) = problem {
            tracing::error!(%why, "OTEL_EXPORTER_OTLP_ENDPOINT is set but the OTLP exporter cannot be built: no spans are exported (check the endpoint and OTEL_EXPORTER_OTLP_* settings)");
        }
        Telemetry { provider }
    }

    /// Exports the spans ended so far (the end of an invocation); a no-op when not exporting.
    pub fn flush(&self) {
        if let Some(provider) = &self.provider
            && let Err(e) = provider.force_flush()
        {
            tracing::warn!(error = %e, "spans not exported at the end of the invocation (the collector?)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_go_to_the_traces_endpoint_or_the_base_endpoints_v1_traces() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(traces_endpoint(env(&[])), None);
        let blank = env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]);
        assert_eq!(traces_endpoint(blank), None);
        let base = env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318/")]);
        assert_eq!(
            traces_endpoint(base),
            Some("http://localhost:4318/v1/traces".into())
        );
        let both = env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://collector:4318/traces",
            ),
        ]);
        assert_eq!(
            traces_endpoint(both),
            Some("http://collector:4318/traces".into())
        );
        assert_eq!(export_timeout(env(&[])), EXPORT_TIMEOUT);
        let set = env(&[("OTEL_EXPORTER_OTLP_TIMEOUT", "500")]);
        assert_eq!(export_timeout(set), Duration::from_millis(500));
    }
}
