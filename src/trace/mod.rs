//! One alert, one trace: the W3C trace context an event carries from the Monitron record to
//! every S/4 request made for it (issue 31).
//!
//! Rules:
//! - `context` is the wire format (`traceparent`) and how an alert's trace is made; `export`
//!   sets up the logs and, when asked for, span export over OTLP;
//! - the trace a piece of work belongs to is *current* for that work ([`within`]): whatever
//!   sends a request on its behalf (S/4, a destination) opens a [`client_span`] and sends its
//!   [`traceparent_of`] that span: a span of its own in the same trace. Outside any trace nothing
//!   is sent;
//! - [`span`] opens the `tracing` span of the work for one alert with its `trace_id`, so every
//!   log line about it carries the id an operator searches by (CloudWatch Logs Insights:
//!   `filter span.trace_id = "…"` in JSON logs); when spans are exported it continues the
//!   alert's trace (its parent is the `traceparent` that came) and links the invocation;
//! - [`publish_span`] is the forwarder's span of one event's publish: the event's trace, linked
//!   to the invocation that published it; when spans are exported, the `traceparent` sent is that
//!   span's, so the processor's delivery is its child;
//! - when no spans are exported, span ids are random (a request) or derived (an alert's own
//!   trace), and nothing here costs more than formatting a header.

pub mod context;
pub mod export;

use std::future::Future;

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub use context::{Refused, TraceParent};
pub use export::{Telemetry, exporting};

tokio::task_local! {
    static CURRENT: TraceParent;
}

/// Runs `work` with `trace` current.
pub async fn within<F: Future>(trace: TraceParent, work: F) -> F::Output {
    CURRENT.scope(trace, work).await
}

/// The trace current for this task, if any.
pub fn current() -> Option<TraceParent> {
    CURRENT.try_with(|t| *t).ok()
}

fn remote(trace: &TraceParent) -> opentelemetry::Context {
    let flags = TraceFlags::new(trace.flags);
    opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from_bytes(trace.trace_id),
        SpanId::from_bytes(trace.parent_id),
        flags,
        true,
        TraceState::default(),
    ))
}

/// What an exported span is, in W3C form (`None` when it records nothing).
fn exported(span: &tracing::Span) -> Option<TraceParent> {
    if !exporting() {
        return None;
    }
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| TraceParent {
        trace_id: sc.trace_id().to_bytes(),
        parent_id: sc.span_id().to_bytes(),
        flags: sc.trace_flags().to_u8(),
    })
}

/// Links `span` to the span current where it was made (the invocation), when exporting.
fn link_to_current(span: &tracing::Span) {
    if exporting() {
        let here = tracing::Span::current()
            .context()
            .span()
            .span_context()
            .clone();
        if here.is_valid() {
            span.add_link(here);
        }
    }
}

/// Links the current span (an invocation's) to a trace it came with, such as Lambda's X-Ray
/// trace header, when exporting.
pub fn link_current_to(trace: &TraceParent) {
    if exporting() {
        let linked = remote(trace).span().span_context().clone();
        tracing::Span::current().add_link(linked);
    }
}

/// `request` with the `traceparent` of `span` (see [`traceparent_of`]).
pub fn traced(request: reqwest::RequestBuilder, span: &tracing::Span) -> reqwest::RequestBuilder {
    match traceparent_of(span) {
        Some(trace) => request.header("traceparent", trace.to_string()),
        None => request,
    }
}

/// The `traceparent` a request made in `span` sends: the span's own when spans are exported,
/// else a new span of the current trace; none outside a trace.
pub fn traceparent_of(span: &tracing::Span) -> Option<TraceParent> {
    let current = current()?;
    Some(exported(span).unwrap_or_else(|| current.child()))
}

/// The span of one request to a peer (`S/4`, a destination) for the current alert.
pub fn client_span(peer: &'static str, method: &str) -> tracing::Span {
    if current().is_none() {
        return tracing::Span::none();
    }
    tracing::info_span!(
        "request",
        otel.name = %format!("{peer} {method}"),
        otel.kind = "client",
        peer.service = peer,
        http.request.method = method,
        http.response.status_code = tracing::field::Empty,
    )
}

/// The `tracing` span of the work for one alert: its log lines carry `trace_id`; exported, it
/// continues `trace` and links the invocation.
pub fn span(trace: &TraceParent) -> tracing::Span {
    let span = tracing::info_span!("alert", trace_id = %trace.trace_id(), otel.kind = "consumer");
    if exporting() {
        link_to_current(&span);
        let _ = span.set_parent(remote(trace));
    }
    span
}

/// The forwarder's span of one event's publish, and the `traceparent` to send with it (see the
/// module's rules).
pub fn publish_span(
    trace: &TraceParent,
    event_id: &str,
    topic: &str,
) -> (tracing::Span, TraceParent) {
    let span = tracing::info_span!(
        "publish",
        trace_id = %trace.trace_id(),
        otel.name = %format!("publish {topic}"),
        otel.kind = "producer",
        messaging.operation.type = "send",
        messaging.destination.name = topic,
        cloudevents.event_id = event_id,
    );
    if !exporting() {
        return (span, *trace);
    }
    link_to_current(&span);
    let _ = span.set_parent(remote(trace));
    let sent = exported(&span).map_or(*trace, |own| trace.with_span(own.parent_id));
    (span, sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_within_a_trace_carry_it_and_nothing_outside() {
        assert_eq!(current(), None);
        assert_eq!(traceparent_of(&client_span("S/4", "GET")), None);
        let alert = TraceParent::for_alert("monitron/1/P", "ev-1");
        let (a, b) = within(alert, async {
            (
                traceparent_of(&client_span("S/4", "GET")),
                traceparent_of(&client_span("S/4", "POST")),
            )
        })
        .await;
        let (a, b) = (a.expect("in the trace"), b.expect("in the trace"));
        assert_eq!(a.trace_id, alert.trace_id);
        assert_eq!(b.trace_id, alert.trace_id);
        assert_ne!(a.parent_id, b.parent_id, "each request is its own span");
        assert_eq!(current(), None);
    }

    #[test]
    fn without_export_a_publish_sends_the_events_own_trace() {
        let alert = TraceParent::for_alert("monitron/1/P", "ev-1");
        let (_, sent) = publish_span(&alert, "ev-1", "monitron/asset/alert");
        assert_eq!(sent, alert);
    }
}
