//! The processor served over HTTP on 127.0.0.1, as its Function URL serves it (the routing of
//! `src/bin/processor.rs`: `OPTIONS` is the webhook handshake, anything else a delivery), for
//! peers that push over real HTTP (the Event Mesh webhook).

use std::sync::Arc;

use lambda_http::http::{HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncWriteExt, BufReader};

use e2b::processor::Processor;
use e2b::processor::episode::store::EpisodeStore;
use e2b::processor::idempotency::IdempotencyStore;

/// The running endpoint; dropped, it stops.
pub struct ProcessorEndpoint {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ProcessorEndpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ProcessorEndpoint {
    pub async fn serve<I>(processor: Arc<Processor<I>>) -> ProcessorEndpoint
    where
        I: IdempotencyStore + EpisodeStore + Send + Sync + 'static,
    {
        let (listener, url) = super::http::loopback("the processor endpoint").await;
        let url = format!("{url}/");
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let processor = processor.clone();
                tokio::spawn(async move {
                    let (read, mut write) = tokio::io::split(stream);
                    let mut reader = BufReader::new(read);
                    while let Ok(Some(request)) = super::http::read_request(&mut reader).await {
                        let mut headers = HeaderMap::new();
                        for (name, value) in &request.headers {
                            if let (Ok(name), Ok(value)) = (
                                HeaderName::from_bytes(name.as_bytes()),
                                HeaderValue::from_str(value),
                            ) {
                                headers.insert(name, value);
                            }
                        }
                        let reply = if request.method == "OPTIONS" {
                            processor.options(&headers).await
                        } else {
                            processor.handle(&headers, request.body.as_bytes()).await
                        };
                        let body = reply.body.to_string();
                        let mut response = format!(
                            "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
                            reply.status,
                            body.len()
                        );
                        for (name, value) in &reply.headers {
                            response.push_str(&format!("{name}: {value}\r\n"));
                        }
                        response.push_str("\r\n");
                        response.push_str(&body);
                        if write.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        ProcessorEndpoint { url, task }
    }
}
