//! The Lambda Invoke API, as far as `e2b replay --invoke` uses it: `POST
//! /2015-03-31/functions/{name}/invocations` with `X-Amz-Invocation-Type: Event` answered `202`,
//! anything else `400`. Records the payloads.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

pub struct LambdaApi {
    pub url: String,
    /// `(function name, payload)` of each queued invocation.
    pub invocations: Arc<Mutex<Vec<(String, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LambdaApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LambdaApi {
    pub async fn start() -> LambdaApi {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listener (TcpListener::bind)");
        let url = format!(
            "http://{}",
            listener
                .local_addr()
                .expect("local_addr in the test set-up")
        );
        let invocations = Arc::new(Mutex::new(Vec::new()));
        let shared = invocations.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut reader = BufReader::new(read);
                    while let Ok(Some(request)) = super::http::read_request(&mut reader).await {
                        let function = request
                            .target
                            .strip_prefix("/2015-03-31/functions/")
                            .and_then(|rest| rest.split_once("/invocations"))
                            .map(|(name, _)| name.to_string());
                        let event = request
                            .headers
                            .get("x-amz-invocation-type")
                            .map(String::as_str)
                            == Some("Event");
                        let status = match function {
                            Some(name) if request.method == "POST" && event => {
                                if let Ok(mut list) = shared.lock() {
                                    list.push((name, request.body));
                                }
                                "202 Accepted"
                            }
                            _ => "400 Bad Request",
                        };
                        let reply = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
                        if write.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        LambdaApi {
            url,
            invocations,
            task,
        }
    }
}
