//! One alert, one trace: the W3C trace context an event carries from the Monitron record to
//! every S/4 request made for it (issue 31).
//!
//! Rules:
//! - `context` is the wire format (`traceparent`) and how an alert's trace is made;
//! - the trace a piece of work belongs to is *current* for that work ([`within`]): whatever
//!   sends a request on its behalf (S/4, a destination, the broker) asks [`outgoing`] for the
//!   `traceparent` to send, a span of its own in the same trace; outside any trace nothing is
//!   sent;
//! - [`span`] opens the `tracing` span of that work with its `trace_id`, so every log line about
//!   it carries the id an operator searches by (CloudWatch Logs Insights: `filter trace_id = …`
//!   in JSON logs, `filter @message like …` in text).

pub mod context;

use std::future::Future;

pub use context::{Refused, TraceParent};

tokio::task_local! {
    static CURRENT: TraceParent;
}

/// Runs `work` with `trace` current (see [`outgoing`]).
pub async fn within<F: Future>(trace: TraceParent, work: F) -> F::Output {
    CURRENT.scope(trace, work).await
}

/// The trace current for this task, if any.
pub fn current() -> Option<TraceParent> {
    CURRENT.try_with(|t| *t).ok()
}

/// The `traceparent` of a request made now for the current trace: the same trace id, a span
/// of its own.
pub fn outgoing() -> Option<TraceParent> {
    current().map(|t| t.child())
}

/// `request` with the `traceparent` of a span of its own in the current trace (unchanged outside
/// one): every S/4 and destination request made for an alert.
pub fn traced(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    match outgoing() {
        Some(trace) => request.header("traceparent", trace.to_string()),
        None => request,
    }
}

/// The `tracing` span of the work for one alert: its log lines carry `trace_id`.
pub fn span(trace: &TraceParent) -> tracing::Span {
    tracing::info_span!("alert", trace_id = %trace.trace_id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_within_a_trace_carry_it_and_nothing_outside() {
        assert_eq!(outgoing(), None);
        let alert = TraceParent::for_alert("monitron/1/P", "ev-1");
        let (a, b) = within(alert, async { (outgoing(), outgoing()) }).await;
        let (a, b) = (a.expect("in the trace"), b.expect("in the trace"));
        assert_eq!(a.trace_id, alert.trace_id);
        assert_eq!(b.trace_id, alert.trace_id);
        assert_ne!(a.parent_id, b.parent_id, "each request is its own span");
        assert_eq!(outgoing(), None);
    }
}
