//! An HTTP CONNECT proxy, as a plant's egress proxy: `CONNECT host:port` opens a tunnel to a
//! loopback address only (anything else is refused with 403), then bytes are copied both ways.
//! It counts the tunnels it opened and remembers where to.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

pub struct TestProxy {
    pub url: String,
    tunnels: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestProxy {
    pub async fn start() -> TestProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("proxy listener");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let tunnels = Arc::new(Mutex::new(Vec::new()));
        let seen = tunnels.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut client = BufReader::new(client);
                    let mut first = String::new();
                    if client.read_line(&mut first).await.is_err() {
                        return;
                    }
                    // The rest of the request head.
                    loop {
                        let mut line = String::new();
                        match client.read_line(&mut line).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) if line == "\r\n" => break,
                            Ok(_) => {}
                        }
                    }
                    let mut words = first.split_whitespace();
                    let (Some("CONNECT"), Some(target)) = (words.next(), words.next()) else {
                        let _ = client
                            .get_mut()
                            .write_all(
                                b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n",
                            )
                            .await;
                        return;
                    };
                    let loopback =
                        target.starts_with("127.0.0.1:") || target.starts_with("localhost:");
                    let upstream = match loopback {
                        true => tokio::net::TcpStream::connect(target).await.ok(),
                        false => None,
                    };
                    let Some(mut upstream) = upstream else {
                        let _ = client
                            .get_mut()
                            .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                            .await;
                        return;
                    };
                    super::http::lock(&seen).push(target.to_string());
                    let mut client = client.into_inner();
                    if client
                        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                        .await
                        .is_err()
                    {
                        return;
                    }
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                });
            }
        });
        TestProxy { url, tunnels, task }
    }

    /// Where the tunnels went, in order.
    pub fn tunnels(&self) -> Vec<String> {
        super::http::lock(&self.tunnels).clone()
    }
}
