//! `e2b console` (issue 23) in a real browser: headless Chromium through ChromeDriver, against
//! the console run as the operator runs it, over moto with episodes, a processor failure and a
//! broker refusal made by the real processor and forwarder, the S/4 test server and the Solace
//! REST test broker. Screenshots of each page go to `target/console-screenshots/`.

use std::sync::Arc;
use std::time::Duration;

use fantoccini::Locator;
use serde_json::json;

use crate::forwarder::{Fixture, alarms, soon};
use crate::support::browser::{Browser, ConsoleProcess};
use crate::support::moto;
use crate::support::s4::TestS4;
use e2b::aws::records::FailureSink;
use e2b::aws::s3::S3Location;
use e2b::processor::rules::RuleSet;
use e2b::processor::rules::source::RuleSource;
use e2b::processor::{InboundAuth, Processor, ProcessorSettings};

const S4_USER: &str = "E2B_TECH_USER";
const S4_PASSWORD: &str = "console-s4-s3cret";
const ALARM: &str =
    include_str!("../../events/records/illustrative-v2-asset-state-transition-alarm.json");

/// The alarm record on another asset (its own position and sensor), with another event id,
/// an hour ago (so that the overview's last 24 hours count it).
fn alarm_on(asset: &str, id: &str) -> String {
    let hour_ago = (chrono::Utc::now() - chrono::Duration::hours(1))
        .format("%Y-%m-%d %H:%M:%S%.3f")
        .to_string();
    let record = ALARM
        .replace("2024-03-01 09:00:01.500", &hour_ago)
        .replace("e-200", id)
        .replace("Pump 7", asset)
        .replace("pos-1", &format!("pos-{id}"))
        .replace("45a8b30f6f8f", &format!("sensor-{id}"));
    crate::support::cloudevents(record.as_bytes())
        .into_iter()
        .next()
        .unwrap_or_default()
}

/// What the console reads, made by the real processor and forwarder.
struct Plant {
    f: Fixture,
    s4: TestS4,
    table: String,
    env: Vec<(&'static str, String)>,
}

async fn plant() -> Plant {
    let f = Fixture::new().await;
    let s4 = TestS4::start(S4_USER, S4_PASSWORD).await;
    let store = moto::idempotency_store().await;
    let table = store.table.clone();
    let failures = FailureSink::S3 {
        client: f.s3.clone(),
        at: S3Location::new(&f.bucket, "failures/"),
    };
    let processor = Processor::new(
        Arc::new(s4.client(S4_USER, S4_PASSWORD, Duration::from_secs(2))),
        Some(store),
        ProcessorSettings {
            failures: Arc::new(failures),
            ..ProcessorSettings::new(
                RuleSource::fixed(RuleSet::bundled().expect("the bundled rules")),
                InboundAuth::FunctionUrlIam,
                Duration::from_secs(5),
                Duration::from_secs(30),
            )
        },
    );
    let headers = lambda_http::http::HeaderMap::new();
    // S/4 refuses the technical object: the alarm on Pump 9 is recorded as a failure.
    s4.reject_object("10000000");
    let reply = processor
        .handle(&headers, alarm_on("Pump 9", "c-900").as_bytes())
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    s4.accept_object("10000000");
    // An open episode with its notification.
    let reply = processor
        .handle(&headers, alarm_on("Pump 7", "c-100").as_bytes())
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // The broker refuses a topic: the forwarder records the event.
    f.broker.deny_topics(&["monitron/"]);
    f.put("refused.json", alarms("r", 1).as_bytes()).await;
    let refusals = Arc::new(FailureSink::S3 {
        client: f.s3.clone(),
        at: S3Location::new(&f.bucket, "refusals/"),
    });
    let forwarded = f
        .forwarder()
        .with_refusals(Some(refusals))
        .handle(&f.s3_event(&["refused.json"]), soon())
        .await;
    assert!(forwarded.is_ok(), "{forwarded:?}");
    f.broker.deny_topics(&[]);

    let secrets = moto::secrets().await;
    let s4_secret = moto::unique("console-s4");
    let login = json!({"username": S4_USER, "password": S4_PASSWORD}).to_string();
    moto::create_secret(&secrets, &s4_secret, &login).await;
    let env = vec![
        ("IDEMPOTENCY_TABLE", table.clone()),
        ("FAILURE_RECORDS", format!("s3://{}/failures/", f.bucket)),
        (
            "FORWARDER_FAILURE_RECORDS",
            format!("s3://{}/refusals/", f.bucket),
        ),
        ("S4_BASE_URL", s4.service_url()),
        ("S4_CREDENTIALS_SECRET", s4_secret),
        ("PROCESSOR_AUTH", "iam".to_string()),
        ("AEM_REST_URL", f.broker.url.clone()),
        ("AEM_CREDENTIALS_SECRET", f.secret.clone()),
        (
            "S4_NOTIFICATION_URL",
            "https://fiori.example/#MaintenanceNotification-display?MaintenanceNotification={number}"
                .to_string(),
        ),
    ];
    Plant { f, s4, table, env }
}

/// Two days of hourly trend points of the position `id` (as the forwarder keeps them), ending
/// at the alarm an hour ago, in the table the console reads episodes from.
async fn keep_trend(table: &str, id: &str) {
    use e2b::trend::store::{Day, Kept, TrendTable};
    use e2b::trend::{Health, IsoClass, Point, Position, position_key};
    let table = TrendTable {
        client: aws_sdk_dynamodb::Client::new(&moto::aws_config().await),
        table: table.to_string(),
    };
    let source = "monitron/111122223333/Plant%20A";
    let key = position_key(source, Some(id), None).unwrap_or_default();
    let position = Position {
        source: source.into(),
        asset_position_id: Some(id.into()),
        project: Some("Plant A".into()),
        site: Some("Site 1".into()),
        asset: Some("Pump 7".into()),
        position: Some("Motor DE".into()),
    };
    let end = chrono::Utc::now() - chrono::Duration::hours(1);
    let mut days: Vec<Day> = Vec::new();
    for hour in 0..48 {
        let at = end - chrono::Duration::hours(48 - hour);
        let point = Point {
            at,
            velocity: Some(1.0 + hour as f64 * 0.1),
            velocity_axes: [None; 3],
            acceleration: None,
            temperature: Some(40.0),
            iso_class: Some(IsoClass::II),
            models: [Some(Health::Healthy); 3],
        };
        match days.iter_mut().find(|d| d.day == at.date_naive()) {
            Some(day) => day.points.push(point),
            None => days.push(Day {
                key: key.clone(),
                position: position.clone(),
                day: at.date_naive(),
                points: vec![point],
            }),
        }
    }
    for day in &days {
        let kept = table.keep(day).await;
        assert!(matches!(kept, Ok(Kept::Kept)), "{kept:?}");
    }
}

async fn count(f: &Fixture, prefix: &str) -> usize {
    f.s3.list_objects_v2()
        .bucket(&f.bucket)
        .prefix(prefix)
        .send()
        .await
        .map_or(0, |o| o.contents().len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sees_episodes_and_failures_and_fixes_them_in_the_browser() {
    let plant = plant().await;
    // What the forwarder's EMF lines became in CloudWatch (moto's): the overview counts from
    // them, and a point of another function is not counted.
    let now = chrono::Utc::now().timestamp();
    moto::put_metric("EventsForwarded", "forwarder", now - 1800, 4000.0).await;
    moto::put_metric("EventsForwarded", "forwarder", now - 600, 242.0).await;
    moto::put_metric("EventsForwarded", "forwarder", now - 3 * 86_400, 100.0).await;
    moto::put_metric("EventsForwarded", "processor", now - 600, 7.0).await;
    keep_trend(&plant.table, "pos-c-100").await;
    let env = plant.env.clone();
    assert_eq!(plant.s4.notifications().len(), 1);
    assert_eq!(count(&plant.f, "failures/").await, 1);
    assert_eq!(count(&plant.f, "refusals/").await, 1);
    let console = ConsoleProcess::start(env).await;
    let browser = Browser::start().await;
    let b = &browser;

    // Overview.
    if let Err(e) = b.client.goto(&console.url).await {
        panic!("goto: {e}")
    }
    let text = b.text_with("Needs attention").await;
    assert!(
        text.contains("Overview") && text.contains("Needs attention"),
        "{text}"
    );
    assert!(
        text.contains("Pump 7"),
        "the open episode is listed: {text}"
    );
    assert!(
        text.contains("CloudWatch metrics") && text.contains("events forwarded 4242 4342"),
        "the counts come from the metrics: {text}"
    );
    assert!(!text.contains("Could not read"), "{text}");
    b.screenshot("overview").await;

    // Episodes, then one position's timeline.
    b.click(Locator::LinkText("Episodes")).await;
    let text = b.text_with("episode(s)").await;
    // Pump 7's with its notification, Pump 9's waiting for one (its create failed).
    assert!(text.contains("2 episode(s) open"), "{text}");
    assert!(text.contains("none yet"), "{text}");
    assert!(
        text.contains("Plant A"),
        "by plant (the Monitron project): {text}"
    );
    assert!(text.contains("10000001"), "its notification: {text}");
    b.screenshot("episodes").await;
    b.click(Locator::LinkText("Motor DE")).await;
    let text = b.text_with("Timeline").await;
    assert!(
        text.contains("Timeline") && text.contains("c-100") && text.contains("alert: priority 1"),
        "{text}"
    );
    let link = b
        .client
        .find(Locator::LinkText("10000001"))
        .await
        .map(|_| ());
    assert!(link.is_ok(), "the notification links to the launchpad");
    // The position's trend, from the points the forwarder keeps (issue 32).
    let chart = b.client.find(Locator::Css(".chart svg")).await;
    let drawn = match chart {
        Ok(svg) => svg.html(false).await.unwrap_or_default(),
        Err(e) => panic!("the trend chart is on the position page: {e}"),
    };
    assert!(
        drawn.contains("Pump 7 / Motor DE — Site 1, Plant A") && drawn.contains("B/C 2.8"),
        "{drawn}"
    );
    b.screenshot("position").await;

    // Search by event id.
    if let Err(e) = b
        .client
        .goto(&format!("{}/search?q=c-900", console.origin))
        .await
    {
        panic!("goto: {e}")
    }
    let text = b.text_with("Positions (").await;
    assert!(
        text.contains("processor failure") && text.contains("c-900"),
        "{text}"
    );
    b.screenshot("search").await;

    // A position without kept measurements says why it has no chart.
    let quiet =
        e2b::trend::position_key("monitron/111122223333/Plant%20A", Some("pos-c-900"), None)
            .unwrap_or_default();
    if let Err(e) = b
        .client
        .goto(&format!("{}/position?key={quiet}", console.origin))
        .await
    {
        panic!("goto: {e}")
    }
    let text = b.text_with("No trend chart").await;
    assert!(
        text.contains(
            "No trend chart: no measurements of this position were kept in the 30 days before"
        ),
        "{text}"
    );

    // Failures: reprocess the one the processor recorded.
    b.click(Locator::LinkText("Failures")).await;
    let text = b.text_with("Processor failures").await;
    assert!(text.contains("Processor failures (1)"), "{text}");
    assert!(text.contains("Events the broker refused (1)"), "{text}");
    b.screenshot("failures").await;
    b.click(Locator::Css("input[aria-label='select c-900']"))
        .await;
    b.click(Locator::Css("button[value='reprocess']")).await;
    let text = b.text_with("Run these failures again").await;
    assert!(
        text.contains("Run these failures again") && text.contains("c-900"),
        "{text}"
    );
    assert_eq!(
        plant.s4.notifications().len(),
        1,
        "nothing before the confirmation"
    );
    b.screenshot("confirm").await;
    b.click(Locator::Css("form[action='/act'] button")).await;
    let text = b.text_with("rule alarm").await;
    assert!(
        text.contains("event c-900 rule alarm COMPLETE"),
        "the result in place: {text}"
    );
    assert!(text.contains("Processor failures (0)"), "{text}");
    // The technical object's open notification takes the alarm (the bundled rules' episodes).
    let notifications = serde_json::Value::from(plant.s4.notifications()).to_string();
    assert!(
        notifications.contains("c-900"),
        "S/4 got the alarm: {notifications}"
    );
    assert_eq!(count(&plant.f, "failures/").await, 0);

    // Resend the refused event.
    b.click(Locator::Css("input[aria-label='select r-0000']"))
        .await;
    b.click(Locator::Css("button[value='resend']")).await;
    b.text_with("Send these events again").await;
    b.click(Locator::Css("form[action='/act'] button")).await;
    let text = b.text_with("resent").await;
    assert!(text.contains("event r-0000 resent"), "{text}");
    assert!(text.contains("Events the broker refused (0)"), "{text}");
    assert_eq!(plant.f.broker.stored_counts().get("r-0000"), Some(&1));
    b.screenshot("resent").await;
    let _ = &plant.table;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_the_token_or_from_elsewhere_change_nothing() {
    let plant = plant().await;
    let console = ConsoleProcess::start(plant.env.clone()).await;
    let token = console.url.rsplit("token=").next().unwrap_or_default();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    let page = format!("{}/failures", console.origin);
    let act = format!("{}/act", console.origin);
    let failure_id = {
        let listed = http
            .get(&page)
            .header("Cookie", format!("e2b_console={token}"))
            .send()
            .await
            .expect("the failures page");
        let html = listed.text().await.unwrap_or_default();
        html.split("name=\"pick\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default()
            .to_string()
    };
    assert!(!failure_id.is_empty());
    let form = format!("token={token}&what=reprocess&confirm=yes&pick={failure_id}");
    let status =
        |r: Result<reqwest::Response, reqwest::Error>| r.map_or(0, |r| r.status().as_u16());

    // A POST to /act with a cookie (or none), an Origin (or none) and a form body.
    let post = |cookie: bool, origin: Option<&str>, body: String| {
        let mut request = http.post(&act).body(body);
        if cookie {
            request = request.header("Cookie", format!("e2b_console={token}"));
        }
        if let Some(origin) = origin {
            request = request.header("Origin", origin);
        }
        async move { status(request.send().await) }
    };
    let ours = Some(console.origin.as_str());

    // No token at all.
    assert_eq!(status(http.get(&page).send().await), 401);
    assert_eq!(post(false, ours, form.clone()).await, 401);
    // The cookie, but from another site's page.
    assert_eq!(
        post(true, Some("http://evil.example"), form.clone()).await,
        403
    );
    // The cookie, no Origin nor Referer (a request not made by a page of the console).
    assert_eq!(post(true, None, form.clone()).await, 403);
    // The cookie and our origin, but no token in the form.
    let tokenless = format!("what=reprocess&confirm=yes&pick={failure_id}");
    assert_eq!(post(true, ours, tokenless).await, 403);
    // A name rebound to 127.0.0.1.
    let sent = http
        .get(&page)
        .header("Cookie", format!("e2b_console={token}"))
        .header("Host", "rebound.example")
        .send()
        .await;
    assert_eq!(status(sent), 403);
    assert_eq!(plant.s4.notifications().len(), 1, "nothing was reprocessed");
    assert_eq!(
        count(&plant.f, "failures/").await,
        1,
        "the failure is still recorded"
    );
    // The printed URL sets the cookie and drops the token from the address.
    let opened = http.get(&console.url).send().await.expect("the URL");
    assert_eq!(opened.status().as_u16(), 303);
    let cookie = opened
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert_eq!(
        opened
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some("/")
    );
}

/// Without any source configured, every page is served and says what it could not read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_say_what_they_could_not_read() {
    // CloudWatch cannot be reached: a port where nothing listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let console = ConsoleProcess::start(vec![
        ("IDEMPOTENCY_TABLE", "no-such-table".into()),
        (
            "AWS_ENDPOINT_URL_CLOUDWATCH",
            format!("http://127.0.0.1:{closed}"),
        ),
    ])
    .await;
    let token = console.url.rsplit("token=").next().unwrap_or_default();
    let http = reqwest::Client::new();
    for path in ["/", "/episodes", "/failures", "/search?q=x"] {
        let page = http
            .get(format!("{}{path}", console.origin))
            .header("Cookie", format!("e2b_console={token}"))
            .send()
            .await
            .expect("a page");
        assert_eq!(page.status().as_u16(), 200, "{path}");
        let html = page.text().await.unwrap_or_default();
        assert!(html.contains("Could not read"), "{path}: {html}");
    }
    let overview = http
        .get(format!("{}/", console.origin))
        .header("Cookie", format!("e2b_console={token}"))
        .send()
        .await
        .expect("a page")
        .text()
        .await
        .unwrap_or_default();
    assert!(overview.contains("no-such-table"), "{overview}");
    // CloudWatch cannot be reached: the counts come from the records, and say why in a line.
    assert!(
        overview.contains(&format!(
            "could not reach CloudWatch at http://127.0.0.1:{closed}"
        )) && overview.contains("Connection refused")
            && !overview.contains("SdkBody"),
        "why, in a line: {overview}"
    );
    assert!(
        overview.contains("Counted from the episode records")
            && overview.contains("CloudWatch metrics"),
        "{overview}"
    );
    assert!(overview.contains("FORWARDER_FAILURE_RECORDS"), "{overview}");
}

/// A plant's history pages: 60 open episodes are 50 on the first page and 10 on the second, and
/// a filter keeps its page links.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn episodes_are_paged_fifty_at_a_time() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use e2b::processor::episode::model::Change;
    use e2b::processor::episode::state::{Place, PositionState, Seen};
    let (dynamodb, table) = moto::table("console-pages").await;
    for i in 0..60 {
        let mut state = PositionState::new(Place {
            label: format!("Site 1 / Pump {i:02} / Motor DE"),
            technical_object: "10000000".into(),
            object_kind: "EAMS_EQUI".into(),
            position: Some("Motor DE".into()),
            project: Some("Plant A".into()),
            site: Some("Site 1".into()),
        });
        state.remember(Seen {
            change: Change {
                time: chrono::Utc::now(),
                id: format!("p-{i}"),
                state: "ALARM".into(),
                closure: None,
            },
            line: format!("p-{i}"),
            priority: Some("1".into()),
            draft: None,
            close: None,
            trace: None,
        });
        let put = dynamodb
            .put_item()
            .table_name(&table)
            .item("id", AttributeValue::S(format!("episode#pos-{i:02}")))
            .item("record", AttributeValue::S(state.to_json()))
            .send()
            .await;
        assert!(put.is_ok(), "{put:?}");
    }
    let console = ConsoleProcess::start(vec![("IDEMPOTENCY_TABLE", table)]).await;
    let token = console.url.rsplit("token=").next().unwrap_or_default();
    let http = reqwest::Client::new();
    let page = |path: &str| {
        let request = http
            .get(format!("{}{path}", console.origin))
            .header("Cookie", format!("e2b_console={token}"));
        async move {
            let answer = request.send().await.expect("a page");
            answer.text().await.unwrap_or_default()
        }
    };
    let rows = |html: &str| html.matches("<a href=\"/position?key=").count();
    let first = page("/episodes").await;
    assert!(first.contains("60 episode(s) open; page 1 of 2"), "{first}");
    assert_eq!(rows(&first), 50);
    assert!(first.contains("href=\"/episodes?page=2\""), "{first}");
    let second = page("/episodes?page=2").await;
    assert_eq!(rows(&second), 10);
    assert!(
        second.contains("Pump 59") && !second.contains("Pump 00"),
        "{second}"
    );
    let filtered = page("/episodes?q=Pump%205").await;
    assert!(
        filtered.contains("10 episode(s) open; page 1 of 1"),
        "{filtered}"
    );
    assert_eq!(rows(&filtered), 10);
    let beyond = page("/episodes?page=99").await;
    assert!(
        beyond.contains("page 2 of 2"),
        "a page past the end shows the last: {beyond}"
    );
}
