//! An OpenTelemetry collector's OTLP/HTTP trace receiver on 127.0.0.1, as the ADOT collector
//! layer serves it on `localhost:4318`. It enforces what the receiver enforces: `POST` only
//! (405), the path `/v1/traces` (404), `Content-Type: application/x-protobuf` (415), a body that
//! decodes as `ExportTraceServiceRequest` with the protocol's own messages (400). It answers 200
//! with an empty `ExportTraceServiceResponse` and keeps every span it received.

use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

/// One span as received, ids in lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub service: String,
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    /// The spans it links to: `(trace id, span id)`.
    pub links: Vec<(String, String)>,
    /// String attributes, `key=value`.
    pub attributes: Vec<String>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub struct TestCollector {
    pub url: String,
    spans: Arc<Mutex<Vec<Received>>>,
    refused: Arc<Mutex<u64>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestCollector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestCollector {
    pub async fn start() -> TestCollector {
        let spans: Arc<Mutex<Vec<Received>>> = Arc::default();
        let refused: Arc<Mutex<u64>> = Arc::default();
        let (kept, refusals) = (spans.clone(), refused.clone());
        let answer = move |request: &super::http::Request| -> super::http::Answer {
            let refuse = |status: &'static str| {
                *super::http::lock(&refusals) += 1;
                (status, vec![], String::new())
            };
            if request.method != "POST" {
                return refuse("405 Method Not Allowed");
            }
            if request.target != "/v1/traces" {
                return refuse("404 Not Found");
            }
            if request.headers.get("content-type").map(String::as_str)
                != Some("application/x-protobuf")
            {
                return refuse("415 Unsupported Media Type");
            }
            let Ok(export) = ExportTraceServiceRequest::decode(request.raw.as_slice()) else {
                return refuse("400 Bad Request");
            };
            let mut spans = super::http::lock(&kept);
            for resource in export.resource_spans {
                let service = resource
                    .resource
                    .iter()
                    .flat_map(|r| &r.attributes)
                    .find(|a| a.key == "service.name")
                    .and_then(|a| a.value.as_ref())
                    .map(|v| format!("{:?}", v.value))
                    .unwrap_or_default();
                for scope in resource.scope_spans {
                    for span in scope.spans {
                        spans.push(Received {
                            service: service.clone(),
                            name: span.name,
                            trace_id: hex(&span.trace_id),
                            span_id: hex(&span.span_id),
                            parent_span_id: hex(&span.parent_span_id),
                            links: span
                                .links
                                .iter()
                                .map(|l| (hex(&l.trace_id), hex(&l.span_id)))
                                .collect(),
                            attributes: span
                                .attributes
                                .iter()
                                .map(|a| {
                                    format!(
                                        "{}={:?}",
                                        a.key,
                                        a.value.as_ref().and_then(|v| v.value.as_ref())
                                    )
                                })
                                .collect(),
                        });
                    }
                }
            }
            // An empty `ExportTraceServiceResponse` (full success) is zero bytes.
            ("200 OK", vec![], String::new())
        };
        let (url, task) = super::http::serve("127.0.0.1:0", answer, |_| None).await;
        TestCollector {
            url,
            spans,
            refused,
            task,
        }
    }

    pub fn spans(&self) -> Vec<Received> {
        super::http::lock(&self.spans).clone()
    }

    /// Requests refused (a wrong method, path, content type or body).
    pub fn refused(&self) -> u64 {
        *super::http::lock(&self.refused)
    }
}
