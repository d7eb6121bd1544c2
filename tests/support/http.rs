//! The HTTP/1.1 request reading the test servers share.

use std::collections::HashMap;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// One request; header names in lower case.
pub struct Request {
    pub method: String,
    pub target: String,
    pub headers: HashMap<String, String>,
    pub body: String,
    /// The body's bytes as sent (a binary body: protobuf).
    pub raw: Vec<u8>,
}

/// Reads the next request of a connection; `None` when the client closed it.
pub async fn read_request<R: AsyncBufRead + Unpin>(
    reader: &mut R,
) -> std::io::Result<Option<Request>> {
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).await? == 0 {
        return Ok(None);
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).await?;
    Ok(Some(Request {
        method,
        target,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        raw: body,
    }))
}

/// Standard base64, for Basic authorization headers.
pub fn base64(input: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(input)
}

/// An answer: status line (`201 Created`), extra headers, JSON body.
pub type Answer = (&'static str, Vec<(String, String)>, String);

/// Serves HTTP/1.1 keep-alive connections on a loopback listener, answering each request
/// with `answer` after `delay` (read per request, so faults can change mid-test). Returns the
/// base URL and the accept task (abort it to stop).
pub async fn serve<A, D>(
    address: &str,
    answer: A,
    delay: D,
) -> (String, tokio::task::JoinHandle<()>)
where
    A: Fn(&Request) -> Answer + Send + Sync + 'static,
    D: Fn(&Request) -> Option<std::time::Duration> + Send + Sync + 'static,
{
    serve_on(address, None, answer, delay).await
}

/// As [`serve`], over TLS with `tls` (an `https://` URL): a handshake the configuration refuses
/// (no client certificate, one from another CA) ends the connection before any request.
pub async fn serve_tls<A, D>(
    address: &str,
    tls: std::sync::Arc<tokio_rustls::rustls::ServerConfig>,
    answer: A,
    delay: D,
) -> (String, tokio::task::JoinHandle<()>)
where
    A: Fn(&Request) -> Answer + Send + Sync + 'static,
    D: Fn(&Request) -> Option<std::time::Duration> + Send + Sync + 'static,
{
    serve_on(address, Some(tls), answer, delay).await
}

async fn serve_on<A, D>(
    address: &str,
    tls: Option<std::sync::Arc<tokio_rustls::rustls::ServerConfig>>,
    answer: A,
    delay: D,
) -> (String, tokio::task::JoinHandle<()>)
where
    A: Fn(&Request) -> Answer + Send + Sync + 'static,
    D: Fn(&Request) -> Option<std::time::Duration> + Send + Sync + 'static,
{
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .expect("listener (tokio::net::TcpListener::bind)");
    let url = format!(
        "{}://{}",
        if tls.is_some() { "https" } else { "http" },
        listener
            .local_addr()
            .expect("local_addr in the test set-up")
    );
    let handlers = std::sync::Arc::new((answer, delay));
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handlers = handlers.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match acceptor {
                    Some(acceptor) => {
                        if let Ok(stream) = acceptor.accept(stream).await {
                            connection(stream, handlers).await;
                        }
                    }
                    None => connection(stream, handlers).await,
                }
            });
        }
    });
    (url, task)
}

/// Answers the requests of one connection, in order.
async fn connection<S, A, D>(stream: S, handlers: std::sync::Arc<(A, D)>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    A: Fn(&Request) -> Answer,
    D: Fn(&Request) -> Option<std::time::Duration>,
{
    use tokio::io::AsyncWriteExt;
    let (read, mut write) = tokio::io::split(stream);
    let mut reader = tokio::io::BufReader::new(read);
    while let Ok(Some(request)) = read_request(&mut reader).await {
        if let Some(d) = (handlers.1)(&request) {
            tokio::time::sleep(d).await;
        }
        let (status, headers, body) = (handlers.0)(&request);
        let mut text = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            text.push_str(&format!("{k}: {v}\r\n"));
        }
        text.push_str("\r\n");
        text.push_str(&body);
        if write.write_all(text.as_bytes()).await.is_err() || write.flush().await.is_err() {
            return;
        }
    }
}

/// A test server's state, even after a panicking test thread poisoned the lock.
pub fn lock<T>(state: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match state.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// A listener on a free loopback port and its `http://127.0.0.1:PORT` URL; `who` names the
/// test peer in the panic when none can be had.
pub async fn loopback(who: &str) -> (tokio::net::TcpListener, String) {
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("{who} cannot listen: {e}"),
    };
    let url = format!(
        "http://{}",
        listener
            .local_addr()
            .map_or_else(|e| panic!("{e}"), |a| a.to_string())
    );
    (listener, url)
}
