//! The `processor` binary as Lambda runs it behind a Function URL: under `cargo lambda watch`
//! (which emulates Function URLs at /lambda-url/<function>/), against moto (Secrets Manager,
//! DynamoDB) and the S/4 OData test server.

use std::time::Duration;

use serde_json::json;

use crate::support::lambda_watch::watch;
use crate::support::moto;
use crate::support::s4::TestS4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_processor_lambda_answers_the_mesh_behind_a_function_url() {
    let s4 = TestS4::start("E2B_TECH_USER", "s4-lambda-s3cret").await;
    let aws = moto::aws_config().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    let s4_secret = moto::unique("s4-login");
    let rdp_secret = moto::unique("rdp-login");
    let s4_login = json!({"username": "E2B_TECH_USER", "password": "s4-lambda-s3cret"}).to_string();
    let rdp_login = json!({"username": "rdp", "password": "rdp-lambda-s3cret"}).to_string();
    moto::create_secret(&secrets, &s4_secret, &s4_login).await;
    moto::create_secret(&secrets, &rdp_secret, &rdp_login).await;

    let env = [
        ("S4_BASE_URL", s4.service_url()),
        ("S4_CREDENTIALS_SECRET", s4_secret),
        ("PROCESSOR_AUTH", "basic".to_string()),
        ("PROCESSOR_CREDENTIALS_SECRET", rdp_secret),
        ("AWS_ENDPOINT_URL", moto::endpoint().to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_ACCESS_KEY_ID", "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_string()),
        ("AWS_LAMBDA_LOG_LEVEL", "INFO".to_string()),
    ];
    let log_path =
        std::env::temp_dir().join(format!("e2b-processor-watch-{}.log", std::process::id()));
    let watch_log = log_path.clone();
    let lambda = tokio::task::spawn_blocking(move || watch("processor", &env, &watch_log))
        .await
        .expect("lambda (watch)");
    let url = format!("http://127.0.0.1:{}/lambda-url/processor/", lambda.port);
    let body = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/events/deliveries/alarm.cloudevent.json"
    ))
    .unwrap_or_default();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("build in the test set-up");

    let denied = client
        .post(&url)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await;
    assert_eq!(denied.map(|r| r.status().as_u16()).ok(), Some(401));

    // Every method without credentials is refused, OPTIONS included.
    for method in ["OPTIONS", "GET", "PUT", "DELETE"] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let answer = client.request(method.clone(), &url).send().await;
        assert_eq!(
            answer.map(|r| r.status().as_u16()).ok(),
            Some(401),
            "{method} without credentials"
        );
    }
    // SAP Event Mesh's webhook handshake, from a caller with the delivery credentials.
    let handshake = client
        .request(reqwest::Method::OPTIONS, &url)
        .basic_auth("rdp", Some("rdp-lambda-s3cret"))
        .header("WebHook-Request-Origin", "eventmesh.eu10.hana.ondemand.com")
        .send()
        .await
        .expect("send in the test set-up");
    assert_eq!(handshake.status().as_u16(), 200);
    assert_eq!(
        handshake
            .headers()
            .get("webhook-allowed-origin")
            .and_then(|v| v.to_str().ok()),
        Some("eventmesh.eu10.hana.ondemand.com")
    );
    // A binary body arrives base64-encoded, as Function URLs send it: one that is not UTF-8 is
    // refused with 400 by the processor itself (and logged), never the runtime's 500. (With a
    // text content type the emulator's event stream breaks before the function is invoked.)
    for content_type in ["application/octet-stream"] {
        let answer = client
            .post(&url)
            .basic_auth("rdp", Some("rdp-lambda-s3cret"))
            .header("content-type", content_type)
            .body(vec![0xff, 0xfe, b'{', 0x80, b'}'])
            .send()
            .await
            .expect("send in the test set-up");
        let status = answer.status().as_u16();
        let text = answer.text().await.unwrap_or_default();
        assert_eq!(status, 400, "{content_type}: {text}");
        assert!(text.contains("UTF-8"), "{content_type}: {text}");
    }

    // The first delivery as a binary body (base64-encoded by the Function URL): read the same.
    for (expected, content_type) in [
        ("COMPLETE", "application/octet-stream"),
        ("DUPLICATE", "application/json"),
    ] {
        let reply = client
            .post(&url)
            .basic_auth("rdp", Some("rdp-lambda-s3cret"))
            .header("content-type", content_type)
            .body(body.clone())
            .send()
            .await
            .expect("send in the test set-up");
        assert_eq!(reply.status().as_u16(), 200);
        let answer: serde_json::Value = reply.json().await.unwrap_or_default();
        assert_eq!(answer["results"][0]["status"], expected, "{answer}");
    }
    assert_eq!(s4.notifications().len(), 1);

    // The user closes the anomaly in Monitron: the loop is closed.
    let closure = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/events/deliveries/closure.cloudevent.json"
    ))
    .unwrap_or_default();
    let reply = client
        .post(&url)
        .basic_auth("rdp", Some("rdp-lambda-s3cret"))
        .header("content-type", "application/json")
        .body(closure)
        .send()
        .await
        .expect("send in the test set-up");
    assert_eq!(reply.status().as_u16(), 200);
    let answer: serde_json::Value = reply.json().await.unwrap_or_default();
    assert_eq!(answer["results"][0]["change"], "closed", "{answer}");
    assert_eq!(s4.completions(), 1);
    assert_eq!(s4.notifications()[0]["NotifProcessingPhase"], "4");

    drop(lambda);
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    crate::support::show_log(&log);
    let _ = std::fs::remove_file(&log_path);
    assert!(
        log.contains("event processed"),
        "one log record per event:\n{log}"
    );
    assert!(
        log.contains("the body is not UTF-8"),
        "the refused body is logged:\n{log}"
    );
    assert!(
        !log.contains("s4-lambda-s3cret") && !log.contains("rdp-lambda-s3cret"),
        "a secret reached the log"
    );
    assert!(
        log.contains("\"NotificationsCreated\":1")
            && log.contains("\"DuplicatesSuppressed\":1")
            && log.contains("\"RecoveriesClosed\":1"),
        "no EMF metrics:\n{log}"
    );
    // JSON logs (AWS_LAMBDA_LOG_FORMAT=JSON): every record of an invocation carries its request id.
    let records: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v.pointer("/fields/message").and_then(|m| m.as_str()) == Some("event processed")
        })
        .collect();
    assert_eq!(
        records.len(),
        3,
        "one JSON record per delivered event:\n{log}"
    );
    for record in &records {
        let text = record.to_string();
        assert!(text.contains("requestId"), "no request id: {text}");
        assert!(record.pointer("/fields/event_id").is_some(), "{text}");
        assert!(record.pointer("/fields/status").is_some(), "{text}");
    }
}
