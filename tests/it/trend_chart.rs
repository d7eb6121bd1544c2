//! The trend chart attached to a created notification (issue 32), against real peers: the
//! forwarder keeps the sample month's measurements in DynamoDB on moto, the test broker holds
//! what it published, and the processor takes those deliveries to the S/4 test server, whose
//! attachment service enforces CSRF, the headers, the linked notification and its size limit.

use std::sync::Arc;
use std::time::Duration;

use lambda_http::http::HeaderMap;
use proptest::prelude::*;
use serde_json::Value;

use crate::forwarder::Fixture as Forwarding;
use crate::support::moto;
use crate::support::s4::TestS4;
use crate::trend_series::forward_sample;
use e2b::aws::records::FailureSink;
use e2b::aws::s3::S3Location;
use e2b::forwarder::series::SeriesKeeper;
use e2b::processor::episode::chart::{Charts, MAX_TRIES};
use e2b::processor::episode::store::EpisodeStore;
use e2b::processor::failures::FailureRecord;
use e2b::processor::idempotency::DynamoStore;
use e2b::processor::rules::RuleSet;
use e2b::processor::rules::source::RuleSource;
use e2b::processor::{InboundAuth, Processor, ProcessorSettings};
use e2b::trend::store::TrendTable;

const S4_USER: &str = "E2B_TECH_USER";
const S4_PASSWORD: &str = "s4-s3cret-value";

/// The sample month forwarded: its points kept in `store`'s table, its two alerts (warning,
/// alarm) as the broker holds them.
async fn forwarded(store: &DynamoStore) -> (Forwarding, Vec<String>) {
    let f = Forwarding::new().await;
    let keeper = SeriesKeeper::new(TrendTable {
        client: store.client.clone(),
        table: store.table.clone(),
    });
    if let (_, Err(e)) = forward_sample(&f, &keeper).await {
        panic!("forwarded: {e}");
    }
    assert_eq!(keeper.counts(), (711, 0), "every measurement kept");
    let bodies: Vec<String> = f.broker.stored().into_iter().map(|m| m.body).collect();
    assert_eq!(bodies.len(), 2, "the warning and the alarm");
    (f, bodies)
}

fn s4_client_of(url: &str) -> e2b::processor::s4::S4Client {
    let config = e2b::processor::s4::S4Config {
        service_url: reqwest::Url::parse(url).expect("a URL in the test set-up"),
        sap_client: Some("100".into()),
        request_timeout: Duration::from_millis(800),
        retry: e2b::http::retry::Backoff {
            base: Duration::from_millis(20),
            cap: Duration::from_millis(400),
            attempts: 3,
        },
    };
    e2b::processor::s4::S4Client::new(
        config,
        e2b::processor::s4::S4Auth::Basic(e2b::processor::s4::S4Credentials {
            username: S4_USER.into(),
            password: S4_PASSWORD.into(),
        }),
    )
    .expect("an S/4 client in the test set-up")
}

/// A processor whose charts go to `attachments` (the test server's service, or elsewhere).
fn processor(
    s4: &TestS4,
    store: &DynamoStore,
    attachments: &str,
    failures: FailureSink,
) -> Processor<Option<DynamoStore>> {
    let charts = Charts {
        series: TrendTable {
            client: store.client.clone(),
            table: store.table.clone(),
        },
        attachments: s4_client_of(attachments),
        object_type: "PMQMEL".into(),
        days: 30,
    };
    let settings = ProcessorSettings {
        failures: Arc::new(failures),
        charts: Some(Arc::new(charts)),
        ..ProcessorSettings::new(
            RuleSource::fixed(RuleSet::bundled().expect("the bundled rules")),
            InboundAuth::FunctionUrlIam,
            Duration::from_secs(5),
            Duration::from_secs(10),
        )
    };
    Processor::new(
        Arc::new(s4.client(S4_USER, S4_PASSWORD, Duration::from_millis(800))),
        Some(DynamoStore {
            client: store.client.clone(),
            table: store.table.clone(),
            keep_completed: store.keep_completed,
        }),
        settings,
    )
}

fn attachment_service(s4: &TestS4) -> String {
    format!("{}{}", s4.url, crate::support::s4_attachments::SERVICE)
}

/// An attachment service that is nowhere (a closed port): every try fails to connect.
fn nowhere() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let url = format!(
        "http://{}/sap/opu/odata/sap/API_CV_ATTACHMENT_SRV",
        listener.local_addr().expect("its address")
    );
    drop(listener);
    url
}

/// The sample's alerts delivered to a container whose attachment service is [`nowhere`]: the
/// notification is created and each delivery answered done all the same.
async fn delivered_to_a_cut_off_container() -> (
    DynamoStore,
    Forwarding,
    TestS4,
    Processor<Option<DynamoStore>>,
) {
    let store = moto::idempotency_store().await;
    let (f, alerts) = forwarded(&store).await;
    let s4 = TestS4::start(S4_USER, S4_PASSWORD).await;
    let cut_off = processor(&s4, &store, &nowhere(), sink(&f));
    for body in &alerts {
        let answer = deliver(&cut_off, body).await;
        assert_ne!(answer["results"][0]["status"], "RETRY", "{answer}");
    }
    (store, f, s4, cut_off)
}

fn sink(f: &Forwarding) -> FailureSink {
    FailureSink::S3 {
        client: f.s3.clone(),
        at: S3Location::new(&f.bucket, "failures/"),
    }
}

/// Delivers `body` as the mesh does: again after every 503, until it is answered 2xx (a create
/// whose answer was lost holds deliveries off for `in_progress_for`, 10 s here).
async fn deliver(processor: &Processor<Option<DynamoStore>>, body: &str) -> Value {
    let give_up = std::time::Instant::now() + Duration::from_secs(90);
    while std::time::Instant::now() < give_up {
        let reply = processor.handle(&HeaderMap::new(), body.as_bytes()).await;
        if reply.status == 200 {
            return reply.body;
        }
        assert!(matches!(reply.status, 503 | 429), "{reply:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not answered 2xx within 90 s: {body}");
}

/// The PNG's size, and how many pixels of the velocity panel are drawn (not white).
fn decoded(png: &[u8]) -> (u32, u32, usize) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("a PNG's size")];
    let info = reader.next_frame(&mut pixels).expect("a PNG frame");
    let channels = info.color_type.samples();
    let (width, height) = (info.width, info.height);
    let mut drawn = 0;
    for y in 90..340 {
        for x in 120..1100 {
            let at = (y * width as usize + x) * channels;
            if pixels[at..at + 3].iter().any(|c| *c < 200) {
                drawn += 1;
            }
        }
    }
    (width, height, drawn)
}

/// The one notification, and its long text.
fn only_notification(s4: &TestS4) -> (String, String) {
    let all = s4.notifications();
    assert_eq!(all.len(), 1, "{all:#?}");
    let text = |f: &str| all[0][f].as_str().unwrap_or_default().to_string();
    (
        text("MaintenanceNotification"),
        text("MaintNotifLongTextForEdit"),
    )
}

fn assert_one_chart(s4: &TestS4) {
    let (number, long_text) = only_notification(s4);
    let originals = s4.originals();
    assert_eq!(originals.len(), 1, "exactly one attachment");
    let chart = &originals[0];
    assert_eq!(chart.object_type, "PMQMEL");
    assert_eq!(chart.key, format!("{number:0>12}"));
    assert_eq!(chart.file_name, format!("Monitron-trend-{number}.png"));
    assert_eq!(chart.mime_type, "image/png");
    let (width, height, drawn) = decoded(&chart.bytes);
    assert_eq!((width, height), (1200, 600));
    assert!(
        drawn > 2_000,
        "the velocity panel is drawn ({drawn} pixels)"
    );
    assert!(!long_text.contains("Trend chart: none"), "{long_text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alarm_gets_its_notification_and_one_chart_of_the_month() {
    let store = moto::idempotency_store().await;
    let (f, alerts) = forwarded(&store).await;
    let s4 = TestS4::start(S4_USER, S4_PASSWORD).await;
    let processor = processor(&s4, &store, &attachment_service(&s4), sink(&f));
    for body in &alerts {
        deliver(&processor, body).await;
    }
    assert_one_chart(&s4);
    // A redelivery reads S/4's originals (nothing to do): nothing is uploaded again.
    let uploads = s4.uploads();
    for body in &alerts {
        deliver(&processor, body).await;
    }
    assert_eq!(s4.uploads(), uploads);
    assert_one_chart(&s4);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, .. ProptestConfig::default() })]

    /// However often, in whatever order and however concurrently the alerts are delivered, with
    /// S/4 answering 503s at random: one notification, one chart.
    #[test]
    fn one_chart_however_often_and_concurrently_delivered(
        copies in 1usize..4,
        alarm_first in any::<bool>(),
        fail_per_mille in 0u32..200,
        seed in 1u64..u64::MAX,
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let store = moto::idempotency_store().await;
            let (f, mut alerts) = forwarded(&store).await;
            if alarm_first {
                alerts.reverse();
            }
            let s4 = TestS4::start(S4_USER, S4_PASSWORD).await;
            s4.set_chaos(fail_per_mille, 0, seed);
            // Two containers over one table, as Lambda scales out.
            let one = Arc::new(processor(&s4, &store, &attachment_service(&s4), sink(&f)));
            let two = Arc::new(processor(&s4, &store, &attachment_service(&s4), sink(&f)));
            let mut deliveries = tokio::task::JoinSet::new();
            for copy in 0..copies {
                for body in alerts.clone() {
                    let container = if copy % 2 == 0 { one.clone() } else { two.clone() };
                    deliveries.spawn(async move { deliver(&container, &body).await });
                }
            }
            while let Some(done) = deliveries.join_next().await {
                if let Err(e) = done {
                    panic!("a delivery: {e}");
                }
            }
            // A chart a 503 left due is attached by a later delivery or the schedule.
            s4.set_chaos(0, 0, seed);
            for _ in 0..3 {
                if s4.originals().is_empty() {
                    one.tick().await;
                }
            }
            assert_one_chart(&s4);
            let listed = store.charts_due().await.expect("the charts index");
            assert!(listed.is_empty(), "{listed:?}");
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_measurements_the_notification_says_why_and_has_no_chart() {
    let store = moto::idempotency_store().await;
    let (_forwarding, alerts) = forwarded(&store).await;
    // The same alerts, read by a processor whose trend table is another, empty one.
    let empty = moto::idempotency_store().await;
    let s4 = TestS4::start(S4_USER, S4_PASSWORD).await;
    let charts = Charts {
        series: TrendTable {
            client: empty.client.clone(),
            table: empty.table.clone(),
        },
        attachments: s4_client_of(&attachment_service(&s4)),
        object_type: "PMQMEL".into(),
        days: 30,
    };
    let processor = Processor::new(
        Arc::new(s4.client(S4_USER, S4_PASSWORD, Duration::from_millis(800))),
        Some(DynamoStore {
            client: store.client.clone(),
            table: store.table.clone(),
            keep_completed: store.keep_completed,
        }),
        ProcessorSettings {
            charts: Some(Arc::new(charts)),
            ..ProcessorSettings::new(
                RuleSource::fixed(RuleSet::bundled().expect("the bundled rules")),
                InboundAuth::FunctionUrlIam,
                Duration::from_secs(5),
                Duration::from_secs(10),
            )
        },
    );
    for body in &alerts {
        deliver(&processor, body).await;
    }
    let (_, long_text) = only_notification(&s4);
    let said: Vec<&str> = long_text
        .lines()
        .filter(|l| l.starts_with("Trend chart: none attached"))
        .collect();
    assert_eq!(said.len(), 1, "one line says why: {long_text}");
    assert!(said[0].contains("30 days"), "{long_text}");
    assert!(s4.originals().is_empty());
    assert_eq!(s4.uploads(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_upload_leaves_the_notification_and_is_recorded_for_reprocess() {
    let store = moto::idempotency_store().await;
    let (f, alerts) = forwarded(&store).await;
    let s4 = TestS4::start(S4_USER, S4_PASSWORD).await;
    s4.refuse_uploads(true);
    let processor = processor(&s4, &store, &attachment_service(&s4), sink(&f));
    for body in &alerts {
        let answer = deliver(&processor, body).await;
        assert_ne!(answer["results"][0]["status"], "ERROR", "{answer}");
    }
    let (number, long_text) = only_notification(&s4);
    assert!(s4.originals().is_empty());
    assert!(!long_text.contains("Trend chart"), "{long_text}");
    let found = sink(&f)
        .list::<FailureRecord>(10, 30)
        .await
        .expect("the failure records");
    assert_eq!(found.len(), 1, "the chart's failure, recorded once");
    let record = &found[0].record;
    assert_eq!(record.action.as_deref(), Some("attach trend chart"));
    assert!(record.reason.contains(&number), "{}", record.reason);
    assert!(
        record.reason.contains("No authorization"),
        "{}",
        record.reason
    );
    // Redelivered: a given-up chart is not tried again, nothing more is recorded.
    deliver(&processor, &alerts[1]).await;
    assert_eq!(
        sink(&f)
            .list::<FailureRecord>(10, 30)
            .await
            .map(|r| r.len()),
        Ok(1)
    );

    // Once S/4 takes uploads, `e2b reprocess` attaches it and the record goes.
    s4.refuse_uploads(false);
    let done = e2b::cli::reprocess::reprocess_one(&processor, &sink(&f), &found[0]).await;
    assert!(done.resolved, "{:?}", done.lines);
    assert_one_chart(&s4);
    assert_eq!(
        sink(&f)
            .list::<FailureRecord>(10, 30)
            .await
            .map(|r| r.len()),
        Ok(0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_attachment_service_is_tried_by_the_schedule_then_recorded() {
    let (store, f, s4, _) = delivered_to_a_cut_off_container().await;
    only_notification(&s4);
    assert!(s4.originals().is_empty());
    let listed = store.charts_due().await.expect("the charts index");
    assert_eq!(listed.len(), 1, "the position waits for the schedule");

    // The schedule of a container that reaches the service attaches it.
    let reaching = processor(&s4, &store, &attachment_service(&s4), sink(&f));
    let tick = reaching.tick().await;
    assert_eq!((tick.charts_tried, tick.charts_settled), (1, 1), "{tick:?}");
    assert_one_chart(&s4);
    assert!(
        store
            .charts_due()
            .await
            .expect("the charts index")
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tries_are_bounded_then_the_chart_is_recorded() {
    let (store, f, s4, cut_off) = delivered_to_a_cut_off_container().await;
    for _ in 1..MAX_TRIES {
        cut_off.tick().await;
    }
    assert!(
        store
            .charts_due()
            .await
            .expect("the charts index")
            .is_empty()
    );
    let found = sink(&f)
        .list::<FailureRecord>(10, 30)
        .await
        .expect("the failure records");
    assert_eq!(found.len(), 1);
    assert!(
        found[0]
            .record
            .reason
            .contains(&format!("{MAX_TRIES} tries")),
        "{}",
        found[0].record.reason
    );
    only_notification(&s4);
    assert!(s4.originals().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_whose_answer_was_lost_is_looked_for_not_repeated() {
    let store = moto::idempotency_store().await;
    let (f, alerts) = forwarded(&store).await;
    let s4 = TestS4::start(S4_USER, S4_PASSWORD).await;
    let processor = processor(&s4, &store, &attachment_service(&s4), sink(&f));
    // Every write is carried out, but answered after the client gave up (800 ms).
    s4.set_post_delay(Some(Duration::from_millis(1200)));
    deliver(&processor, &alerts[0]).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(s4.uploads(), 1, "the upload reached S/4");
    assert_eq!(
        store.charts_due().await.map(|l| l.len()),
        Ok(1),
        "unconfirmed: still due"
    );
    s4.set_post_delay(None);
    for body in &alerts {
        deliver(&processor, body).await;
    }
    assert_eq!(
        s4.uploads(),
        1,
        "found among the originals, not uploaded again"
    );
    assert_one_chart(&s4);
    assert!(
        store
            .charts_due()
            .await
            .expect("the charts index")
            .is_empty()
    );
}
