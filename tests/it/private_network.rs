//! S/4 in a plant's own network: HTTPS with a certificate from the company's CA (made at test
//! time), X.509 logon by client certificate (no password), an egress proxy. The S/4 peer is the
//! OData test server behind mutual TLS; the secret is read from Secrets Manager on moto.

use std::sync::Arc;
use std::time::Duration;

use lambda_http::http::HeaderMap;
use serde_json::{Value, json};

use crate::forwarder::{Fixture, alarms, soon};
use crate::support::broker::TestBroker;
use crate::support::lambda_watch::watch;
use crate::support::moto;
use crate::support::proxy::TestProxy;
use crate::support::s4::TestS4;
use crate::support::tls::TestCa;
use e2b::aws::secrets::SecretStore;
use e2b::processor::idempotency::DynamoStore;
use e2b::processor::rules::source::RuleSource;
use e2b::processor::s4::S4Logon;
use e2b::processor::{InboundAuth, Processor, ProcessorSettings};

const TECH_USER: &str = "E2B_TECH_USER";

/// The S/4 peer over mutual TLS, and the CA that issued its certificate.
async fn private_s4() -> (TestCa, TestS4) {
    let ca = TestCa::new("Plant A Root CA");
    let server = ca.server();
    let s4 = TestS4::start_tls(TECH_USER, "unused-password", ca.mutual_tls(&server)).await;
    (ca, s4)
}

/// The S/4 secret as an operator writes it, stored in Secrets Manager and read back.
async fn logon(secret: &Value) -> (String, S4Logon) {
    let secrets = moto::secrets().await;
    let name = moto::unique("e2b-s4");
    moto::create_secret(&secrets, &name, &secret.to_string()).await;
    let json = secrets
        .secret_string(&name)
        .await
        .expect("the secret (moto)");
    let logon = S4Logon::from_secret(&name, &json).expect("the S/4 secret is usable");
    (name, logon)
}

/// A processor acting per event (no table) with the bundled rules.
fn processor(s4: &TestS4, logon: S4Logon) -> Processor<Option<DynamoStore>> {
    Processor::new(
        Arc::new(s4.client_with(logon, Duration::from_secs(5))),
        None,
        ProcessorSettings::new(
            RuleSource::fixed(crate::support::per_event_rules()),
            InboundAuth::FunctionUrlIam,
            Duration::from_secs(5),
            Duration::from_secs(30),
        ),
    )
}

fn alarm() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/events/deliveries/alarm.cloudevent.json"
    ))
    .expect("the sample delivery")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_ca_and_a_client_certificate_logon_reach_s4_without_a_password() {
    let (ca, s4) = private_s4().await;
    let client = ca.client(TECH_USER);
    let (_, logon) = logon(&json!({
        "ca_pem": ca.pem(),
        "client_cert_pem": client.cert_pem,
        "client_key_pem": client.key_pem,
    }))
    .await;
    assert_eq!(logon.auth, e2b::processor::s4::S4Auth::Certificate);
    let reply = processor(&s4, logon)
        .handle(&HeaderMap::new(), &alarm())
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["results"][0]["status"], "COMPLETE",
        "{}",
        reply.body
    );
    assert_eq!(s4.notifications().len(), 1);
}

/// An alarm delivered with the S/4 secret `secret`, when S/4 cannot be reached over TLS: the
/// mesh keeps it (503), nothing is created; the reason given and the secret's name.
async fn refused_over_tls(s4: &TestS4, secret: &Value) -> (String, String) {
    let (name, logon) = logon(secret).await;
    let reply = processor(s4, logon)
        .handle(&HeaderMap::new(), &alarm())
        .await;
    assert_eq!(
        reply.status, 503,
        "the mesh keeps the event: {}",
        reply.body
    );
    assert!(s4.notifications().is_empty());
    let reason = reply.body["results"][0]["reason"]
        .as_str()
        .unwrap_or_default();
    (reason.to_string(), name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_ca_pem_nothing_is_created_and_the_reason_names_the_certificate_and_the_secret() {
    let (ca, s4) = private_s4().await;
    let client = ca.client(TECH_USER);
    let (reason, name) = refused_over_tls(
        &s4,
        &json!({"client_cert_pem": client.cert_pem, "client_key_pem": client.key_pem}),
    )
    .await;
    assert!(
        reason.contains("server certificate")
            && reason.contains("not trusted")
            && reason.contains("`ca_pem`")
            && reason.contains(&name),
        "{reason}"
    );
    assert_eq!(s4.requests(), 0, "no request reached S/4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_from_another_ca_is_refused_and_named() {
    let (ca, s4) = private_s4().await;
    let stranger = TestCa::new("Someone Else's CA").client(TECH_USER);
    let (reason, name) = refused_over_tls(
        &s4,
        &json!({"ca_pem": ca.pem(), "client_cert_pem": stranger.cert_pem,
            "client_key_pem": stranger.key_pem}),
    )
    .await;
    assert!(
        reason.contains("client certificate") && reason.contains(&name),
        "{reason}"
    );
}

#[test]
fn the_secrets_pem_never_reaches_a_message() {
    let ca = TestCa::new("Plant A Root CA");
    let client = ca.client(TECH_USER);
    let broken = json!({"client_cert_pem": client.cert_pem, "client_key_pem": "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----"});
    let e = S4Logon::from_secret("e2b/s4", &broken.to_string()).unwrap_err();
    assert!(e.contains("client_key_pem") && !e.contains("BEGIN"), "{e}");
    let logon = S4Logon::from_secret(
        "e2b/s4",
        &json!({"ca_pem": ca.pem(), "username": "U", "password": "p4ss"}).to_string(),
    )
    .expect("password logon with a private CA");
    let printed = format!("{logon:?}");
    assert!(
        !printed.contains("BEGIN") && !printed.contains("p4ss"),
        "{printed}"
    );
}

/// The processor binary under `cargo lambda watch`, its only way out an egress proxy
/// (`HTTPS_PROXY`): the delivery reaches S/4 through a CONNECT tunnel, over mutual TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_processor_lambda_reaches_a_private_s4_through_an_egress_proxy() {
    let (ca, s4) = private_s4().await;
    let proxy = TestProxy::start().await;
    let client = ca.client(TECH_USER);
    let secrets = moto::secrets().await;
    let s4_secret = moto::unique("e2b-s4-mtls");
    let secret = json!({"ca_pem": ca.pem(), "client_cert_pem": client.cert_pem,
        "client_key_pem": client.key_pem});
    moto::create_secret(&secrets, &s4_secret, &secret.to_string()).await;
    let env = [
        ("S4_BASE_URL", s4.service_url()),
        ("S4_CREDENTIALS_SECRET", s4_secret),
        ("PROCESSOR_AUTH", "iam".to_string()),
        ("HTTPS_PROXY", proxy.url.clone()),
        ("AWS_ENDPOINT_URL", moto::endpoint().to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_ACCESS_KEY_ID", "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
    ];
    let log_path =
        std::env::temp_dir().join(format!("e2b-private-watch-{}.log", std::process::id()));
    let watch_log = log_path.clone();
    let lambda = tokio::task::spawn_blocking(move || watch("processor", &env, &watch_log))
        .await
        .expect("lambda (watch)");
    let url = format!("http://127.0.0.1:{}/lambda-url/processor/", lambda.port);
    let reply = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .body(alarm())
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .expect("send in the test set-up");
    let status = reply.status().as_u16();
    let answer: Value = reply.json().await.unwrap_or_default();
    // The doctor, from where the function runs: through the proxy, the CA from `ca_pem`.
    let doctor: Value = reqwest::Client::new()
        .get(format!("{url}?e2b=doctor"))
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .expect("doctor in the test set-up")
        .json()
        .await
        .unwrap_or_default();
    drop(lambda);
    assert_eq!(doctor["ok"], true, "{doctor}");
    let said = doctor.to_string();
    assert!(
        said.contains("egress proxy") && said.contains("`ca_pem`"),
        "{said}"
    );
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let _ = std::fs::remove_file(&log_path);
    assert_eq!(status, 200, "{answer}\n{log}");
    assert_eq!(answer["results"][0]["status"], "COMPLETE", "{answer}");
    assert_eq!(s4.notifications().len(), 1);
    let s4_port = s4.url.rsplit(':').next().unwrap_or_default().to_string();
    let tunnels = proxy.tunnels();
    assert!(
        !tunnels.is_empty() && tunnels.iter().all(|t| t.ends_with(&format!(":{s4_port}"))),
        "every S/4 connection through the proxy: {tunnels:?}"
    );
    assert!(!log.contains("BEGIN PRIVATE KEY"), "a key reached the log");
}

/// `count` alarms in one object; the ids the broker must store, sorted.
async fn object_of_alarms(f: &Fixture, key: &str, prefix: &str, count: usize) -> Vec<String> {
    f.put(key, alarms(prefix, count).as_bytes()).await;
    (0..count).map(|i| format!("{prefix}-{i:04}")).collect()
}

fn stored_sorted(broker: &TestBroker) -> Vec<String> {
    let mut ids = broker.stored_ids();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forwarder_delivers_every_event_once_over_mutual_tls_with_certificate_logon() {
    let ca = TestCa::new("Plant A Root CA");
    let broker =
        TestBroker::start_tls("e2b-forwarder", "unused", ca.mutual_tls(&ca.server())).await;
    let client = ca.client("e2b-forwarder");
    let f = Fixture::with_broker(
        broker,
        json!({"ca_pem": ca.pem(), "client_cert_pem": client.cert_pem,
            "client_key_pem": client.key_pem}),
    )
    .await;
    let expected = object_of_alarms(&f, "mtls/a.json", "tls", 40).await;
    let summary = f
        .forwarder()
        .handle(&f.s3_event(&["mtls/a.json"]), soon())
        .await
        .expect("delivered over mutual TLS");
    assert_eq!(summary["delivered"], 40, "{summary}");
    assert_eq!(stored_sorted(&f.broker), expected);

    // Invoked with {"e2b": "doctor"}: the broker checked from where the function runs.
    let report = f
        .forwarder()
        .handle(&json!({"e2b": "doctor"}), soon())
        .await
        .expect("a doctor report");
    assert_eq!(report["ok"], true, "{report}");
    let steps = crate::support::doctor_steps(&report);
    assert_eq!(steps, ["secret", "dns", "tcp", "tls", "logon"], "{report}");
    assert!(
        report.to_string().contains("`ca_pem`"),
        "which CA vouched: {report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_does_not_trust_our_certificate_keeps_the_events_and_says_why() {
    let ca = TestCa::new("Plant A Root CA");
    let broker =
        TestBroker::start_tls("e2b-forwarder", "unused", ca.mutual_tls(&ca.server())).await;
    let stranger = TestCa::new("Someone Else's CA").client("e2b-forwarder");
    let f = Fixture::with_broker(
        broker,
        json!({"ca_pem": ca.pem(), "client_cert_pem": stranger.cert_pem,
            "client_key_pem": stranger.key_pem}),
    )
    .await;
    object_of_alarms(&f, "mtls/b.json", "refused", 3).await;
    let failed = f
        .forwarder()
        .handle(&f.s3_event(&["mtls/b.json"]), soon())
        .await;
    let Err(e) = failed else {
        panic!("delivered with a certificate the broker does not trust")
    };
    let said = e.to_string();
    assert!(
        said.contains("client certificate") && said.contains(&f.secret),
        "{said}"
    );
    assert!(f.broker.stored_ids().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forwarder_publishes_with_oauth2_tokens_at_most_two_token_requests_an_object() {
    let broker = TestBroker::start("unused", "unused").await;
    broker.enable_oauth("e2b-forwarder", "broker-client-s3cret");
    let token_url = format!("{}/oauth/token", broker.url);
    let f = Fixture::with_broker(
        broker,
        json!({"client_id": "e2b-forwarder", "client_secret": "broker-client-s3cret",
            "token_url": token_url}),
    )
    .await;
    let forwarder = f.forwarder();
    let mut expected = object_of_alarms(&f, "oauth/a.json", "oa", 40).await;
    let summary = forwarder
        .handle(&f.s3_event(&["oauth/a.json"]), soon())
        .await
        .expect("delivered with a bearer token");
    assert_eq!(summary["delivered"], 40, "{summary}");
    assert_eq!(f.broker.token_requests(), 1, "one token for the object");
    // The token is revoked (or expired early): one 401, one new token, nothing lost.
    f.broker.revoke_tokens();
    expected.extend(object_of_alarms(&f, "oauth/b.json", "ob", 40).await);
    expected.sort();
    let summary = forwarder
        .handle(&f.s3_event(&["oauth/b.json"]), soon())
        .await
        .expect("delivered with a new token");
    assert_eq!(summary["delivered"], 40, "{summary}");
    let second = f.broker.token_requests() - 1;
    assert!(
        (1..=2).contains(&second),
        "{second} token requests for the second object"
    );
    assert_eq!(stored_sorted(&f.broker), expected);
}

/// An ITSM destination of the rule file on the company's CA, its secret with `ca_pem`.
const TICKET_RULES: &str = r#"
[[rule]]
name = "ticket"
when = { new_state = "ALARM" }
action = "open-ticket"
[destination.itsm]
url = "DEST_URL"
auth = "basic"
secret = "DEST_SECRET"
[[action]]
name = "open-ticket"
[[action.step]]
name = "ticket"
type = "http"
destination = "itsm"
method = "POST"
path = "/tickets"
body = { title = "x" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_on_the_companys_ca_is_reached_with_ca_pem_in_its_secret() {
    let ca = TestCa::new("Plant A Root CA");
    let dest =
        crate::support::destination::TestDestination::start_tls(ca.mutual_tls(&ca.server())).await;
    dest.require_basic("itsm-user", "itsm-s3cret");
    let client = ca.client("itsm-user");
    let secrets = moto::secrets().await;
    let secret = moto::unique("itsm");
    let value = json!({"username": "itsm-user", "password": "itsm-s3cret", "ca_pem": ca.pem(),
        "client_cert_pem": client.cert_pem, "client_key_pem": client.key_pem});
    moto::create_secret(&secrets, &secret, &value.to_string()).await;
    let rules = TICKET_RULES
        .replace("DEST_URL", &dest.url)
        .replace("DEST_SECRET", &secret);
    let rules = e2b::processor::rules::RuleSet::parse("ticket rules", &rules).expect("rules");
    let s4 = TestS4::start(TECH_USER, "s4-s3cret").await;
    let processor = Processor::new(
        Arc::new(s4.client(TECH_USER, "s4-s3cret", Duration::from_secs(5))),
        None::<DynamoStore>,
        ProcessorSettings {
            destinations: Arc::new(e2b::processor::destination::Destinations::new(
                Some(secrets),
                e2b::processor::destination::DEFAULT_RETRY,
            )),
            ..ProcessorSettings::new(
                RuleSource::fixed(rules),
                InboundAuth::FunctionUrlIam,
                Duration::from_secs(5),
                Duration::from_secs(30),
            )
        },
    );
    let reply = processor.handle(&HeaderMap::new(), &alarm()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["results"][0]["status"], "COMPLETE",
        "{}",
        reply.body
    );
    assert_eq!(dest.seen().len(), 1, "one ticket over mutual TLS");
}

/// A secret in Secrets Manager (moto) with this JSON; its name.
async fn stored_secret(prefix: &str, value: &Value) -> String {
    let secrets = moto::secrets().await;
    let name = moto::unique(prefix);
    moto::create_secret(&secrets, &name, &value.to_string()).await;
    name
}

fn lines(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2b_doctor_checks_every_peer_and_says_what_to_fix() {
    let (ca, s4) = private_s4().await;
    let broker =
        TestBroker::start_tls("e2b-forwarder", "unused", ca.mutual_tls(&ca.server())).await;
    let user = ca.client(TECH_USER);
    let publisher = ca.client("e2b-forwarder");
    let s4_secret = stored_secret(
        "s4",
        &json!({"ca_pem": ca.pem(), "client_cert_pem": user.cert_pem, "client_key_pem": user.key_pem}),
    )
    .await;
    let broker_secret = stored_secret(
        "aem",
        &json!({"ca_pem": ca.pem(), "client_cert_pem": publisher.cert_pem,
            "client_key_pem": publisher.key_pem}),
    )
    .await;
    let env = |broker_url: &str, s4_url: &str, s4_secret: &str| {
        vec![
            ("AEM_REST_URL", broker_url.to_string()),
            ("AEM_CREDENTIALS_SECRET", broker_secret.clone()),
            ("S4_BASE_URL", s4_url.to_string()),
            ("S4_CREDENTIALS_SECRET", s4_secret.to_string()),
            ("PROCESSOR_AUTH", "iam".to_string()),
        ]
    };
    let healthy = crate::support::cli::e2b(
        vec!["doctor".into()],
        env(&broker.url, &s4.service_url(), &s4_secret),
    )
    .await;
    let said = lines(&healthy);
    assert!(healthy.status.success(), "{said}");
    assert!(!said.contains("FAIL"), "{said}");
    for expected in [
        "ok   the broker (127.0.0.1) tls: the server certificate chains to a CA in `ca_pem`",
        "ok   the broker (127.0.0.1) logon: logged on by client certificate",
        "ok   S/4 (127.0.0.1) tls: the server certificate chains to a CA in `ca_pem`",
        "ok   S/4 (127.0.0.1) logon: the technical user logs on",
    ] {
        assert!(said.contains(expected), "{expected}\n{said}");
    }

    // A secret without `ca_pem`, a broker port nothing listens on, a name that does not resolve.
    let no_ca = stored_secret(
        "s4-no-ca",
        &json!({"client_cert_pem": user.cert_pem, "client_key_pem": user.key_pem}),
    )
    .await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let closed_url = format!("https://{}", closed.local_addr().expect("its address"));
    drop(closed);
    let broken = crate::support::cli::e2b(
        vec!["doctor".into()],
        env(&closed_url, &s4.service_url(), &no_ca),
    )
    .await;
    let said = lines(&broken);
    assert_eq!(broken.status.code(), Some(1), "{said}");
    assert!(
        said.contains("FAIL the broker (127.0.0.1) tcp:") && said.contains("refused"),
        "{said}"
    );
    assert!(
        said.contains("FAIL S/4 (127.0.0.1) tls:")
            && said.contains("not trusted")
            && said.contains(&format!("`ca_pem` in secret {no_ca}")),
        "{said}"
    );
    let unresolved = crate::support::cli::e2b(
        vec!["doctor".into()],
        vec![
            ("S4_BASE_URL", "https://s4-plant-a.invalid".to_string()),
            ("S4_CREDENTIALS_SECRET", no_ca.clone()),
            ("PROCESSOR_AUTH", "iam".to_string()),
        ],
    )
    .await;
    let said = lines(&unresolved);
    assert!(
        said.contains("FAIL S/4 (s4-plant-a.invalid) dns:") && said.contains("private hosted zone"),
        "{said}"
    );
}

/// The forwarder's publisher (here `e2b replay`, which publishes with the forwarder's own
/// configuration, in its own process) through an egress proxy, over mutual TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forwarder_publishes_through_an_egress_proxy_over_mutual_tls() {
    let store = crate::e2b_s3::store_with_objects().await;
    let ca = TestCa::new("Plant A Root CA");
    let broker =
        TestBroker::start_tls("e2b-forwarder", "unused", ca.mutual_tls(&ca.server())).await;
    let proxy = TestProxy::start().await;
    let client = ca.client("e2b-forwarder");
    let secret = stored_secret(
        "aem-proxied",
        &json!({"ca_pem": ca.pem(), "client_cert_pem": client.cert_pem,
            "client_key_pem": client.key_pem}),
    )
    .await;
    let output = crate::support::cli::e2b(
        vec!["replay".into(), format!("s3://{}/project=", store.bucket)],
        vec![
            ("AEM_REST_URL", broker.url.clone()),
            ("AEM_CREDENTIALS_SECRET", secret),
            ("HTTPS_PROXY", proxy.url.clone()),
        ],
    )
    .await;
    let said = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{said}");
    assert!(said.contains("4 event(s) delivered"), "{said}");
    assert_eq!(
        stored_sorted(&broker),
        ["409623", "e-199", "e-200", "e-201"]
    );
    let broker_port = broker
        .url
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    let tunnels = proxy.tunnels();
    assert!(
        !tunnels.is_empty()
            && tunnels
                .iter()
                .all(|t| t.ends_with(&format!(":{broker_port}"))),
        "every broker connection through the proxy: {tunnels:?}"
    );
}
