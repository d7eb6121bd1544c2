//! A CloudWatch test peer for `GetMetricData` over the protocol the AWS SDK speaks to CloudWatch
//! today (Smithy RPC v2 CBOR; moto speaks only the older query protocol), on 127.0.0.1.
//!
//! It enforces what CloudWatch enforces of such a request: `POST
//! /service/GraniteServiceVersion20100801/operation/GetMetricData` (404 otherwise), the
//! `smithy-protocol: rpc-v2-cbor` header and a CBOR body (400), a SigV4 `Authorization` (403);
//! each query's metric (namespace, name, dimensions) is matched against the data points the test
//! put, summed per period from the start time, and answered as CBOR with `Timestamps` as epoch
//! seconds (tag 1), newest first, as CloudWatch orders them. Point the SDK at it with
//! `AWS_ENDPOINT_URL_CLOUDWATCH`.

use std::sync::{Arc, Mutex};

use ciborium::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};

/// One data point: namespace, metric, dimensions (name, value), epoch seconds, value.
type Point = (String, String, Vec<(String, String)>, i64, f64);

/// The running peer; dropped, it stops.
pub struct TestCloudWatch {
    pub url: String,
    points: Arc<Mutex<Vec<Point>>>,
    requests: Arc<Mutex<u64>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestCloudWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn get<'a>(map: &'a Value, key: &str) -> Option<&'a Value> {
    map.as_map()?
        .iter()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v)
}

fn text(value: Option<&Value>) -> String {
    value
        .and_then(Value::as_text)
        .unwrap_or_default()
        .to_string()
}

fn epoch(value: Option<&Value>) -> i64 {
    match value {
        Some(Value::Tag(1, inner)) => match inner.as_ref() {
            Value::Integer(i) => i64::try_from(*i).unwrap_or(0),
            Value::Float(f) => *f as i64,
            _ => 0,
        },
        _ => 0,
    }
}

impl TestCloudWatch {
    pub async fn start() -> TestCloudWatch {
        let (listener, url) = super::http::loopback("test CloudWatch").await;
        let points: Arc<Mutex<Vec<Point>>> = Arc::default();
        let requests: Arc<Mutex<u64>> = Arc::default();
        let (shared, counted) = (points.clone(), requests.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (points, requests) = (shared.clone(), counted.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, points, requests).await;
                });
            }
        });
        TestCloudWatch {
            url,
            points,
            requests,
            task,
        }
    }

    /// A data point, as the functions' EMF lines make them.
    pub fn put(&self, metric: &str, function: &str, at: i64, value: f64) {
        super::http::lock(&self.points).push((
            "e2b".into(),
            metric.into(),
            vec![("Function".into(), function.into())],
            at,
            value,
        ));
    }

    pub fn requests(&self) -> u64 {
        *super::http::lock(&self.requests)
    }
}

async fn serve(
    stream: tokio::net::TcpStream,
    points: Arc<Mutex<Vec<Point>>>,
    requests: Arc<Mutex<u64>>,
) -> std::io::Result<()> {
    let (read, mut write) = tokio::io::split(stream);
    let mut reader = BufReader::new(read);
    loop {
        // The request line and headers as text, the body as bytes (CBOR is binary).
        let mut head = Vec::new();
        loop {
            let mut byte = [0u8; 1];
            if reader.read(&mut byte).await? == 0 {
                return Ok(());
            }
            head.push(byte[0]);
            if head.ends_with(b"\r\n\r\n") {
                break;
            }
        }
        let head = String::from_utf8_lossy(&head).to_string();
        let mut lines = head.lines();
        let request_line = lines.next().unwrap_or_default().to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).await?;
        *super::http::lock(&requests) += 1;
        let (status, answer) = answer(&request_line, &header, &body, &points);
        let mut response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/cbor\r\nsmithy-protocol: rpc-v2-cbor\r\nContent-Length: {}\r\n\r\n",
            answer.len()
        )
        .into_bytes();
        response.extend_from_slice(&answer);
        write.write_all(&response).await?;
    }
}

fn cbor(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = ciborium::into_writer(value, &mut out);
    out
}

fn error(kind: &str, message: &str) -> Vec<u8> {
    cbor(&Value::Map(vec![
        (Value::Text("__type".into()), Value::Text(kind.into())),
        (Value::Text("message".into()), Value::Text(message.into())),
    ]))
}

fn answer<'a>(
    request_line: &str,
    header: &dyn Fn(&str) -> Option<&'a str>,
    body: &[u8],
    points: &Arc<Mutex<Vec<Point>>>,
) -> (&'static str, Vec<u8>) {
    if request_line
        != "POST /service/GraniteServiceVersion20100801/operation/GetMetricData HTTP/1.1"
    {
        return (
            "404 Not Found",
            error("UnknownOperationException", request_line),
        );
    }
    if header("smithy-protocol") != Some("rpc-v2-cbor") {
        return (
            "400 Bad Request",
            error("ValidationError", "smithy-protocol"),
        );
    }
    if !header("authorization").is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256 ")) {
        return (
            "403 Forbidden",
            error("MissingAuthenticationToken", "no SigV4"),
        );
    }
    let Ok(input) = ciborium::from_reader::<Value, _>(body) else {
        return (
            "400 Bad Request",
            error("SerializationException", "not CBOR"),
        );
    };
    let (start, end) = (
        epoch(get(&input, "StartTime")),
        epoch(get(&input, "EndTime")),
    );
    let queries = get(&input, "MetricDataQueries")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let points = super::http::lock(points).clone();
    let results: Vec<Value> = queries
        .iter()
        .map(|query| {
            let stat = get(query, "MetricStat");
            let metric = stat.and_then(|s| get(s, "Metric"));
            let namespace = text(metric.and_then(|m| get(m, "Namespace")));
            let name = text(metric.and_then(|m| get(m, "MetricName")));
            let dimensions: Vec<(String, String)> = metric
                .and_then(|m| get(m, "Dimensions"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|d| (text(get(d, "Name")), text(get(d, "Value"))))
                .collect();
            let period = match stat.and_then(|s| get(s, "Period")) {
                Some(Value::Integer(p)) => i64::try_from(*p).unwrap_or(60).max(1),
                _ => 60,
            };
            let mut buckets: std::collections::BTreeMap<i64, f64> = Default::default();
            for (ns, metric_name, dims, at, value) in &points {
                if *ns == namespace
                    && *metric_name == name
                    && *dims == dimensions
                    && *at >= start
                    && *at < end
                {
                    *buckets
                        .entry(start + (at - start) / period * period)
                        .or_default() += value;
                }
            }
            let (timestamps, values): (Vec<Value>, Vec<Value>) = buckets
                .into_iter()
                .rev()
                .map(|(t, v)| {
                    (
                        Value::Tag(1, Box::new(Value::Integer(t.into()))),
                        Value::Float(v),
                    )
                })
                .unzip();
            Value::Map(vec![
                (
                    Value::Text("Id".into()),
                    get(query, "Id").cloned().unwrap_or(Value::Null),
                ),
                (Value::Text("Label".into()), Value::Text(name)),
                (Value::Text("Timestamps".into()), Value::Array(timestamps)),
                (Value::Text("Values".into()), Value::Array(values)),
                (
                    Value::Text("StatusCode".into()),
                    Value::Text("Complete".into()),
                ),
            ])
        })
        .collect();
    (
        "200 OK",
        cbor(&Value::Map(vec![(
            Value::Text("MetricDataResults".into()),
            Value::Array(results),
        )])),
    )
}
