//! The forwarder keeps each Monitron measurement as its position's trend point (issue 32),
//! against real peers: DynamoDB on moto (the real SDK, atomic conditional writes), S3, and the
//! Solace REST test broker; both the S3 path and the Kinesis path.

use std::time::SystemTime;

use chrono::{TimeZone, Utc};

use crate::forwarder::{Fixture, S3Forwarder, soon};
use crate::support::{kinesis, moto};
use e2b::forwarder::series::SeriesKeeper;
use e2b::trend::store::TrendTable;
use e2b::trend::{Series, position_key};

const SAMPLE: &[u8] = include_bytes!("../../events/objects/monitron-v2-trend-30d.json.gz");
const MEASUREMENT: &str = include_str!("../../events/records/monitron-v2-measurement.json");

async fn table() -> TrendTable {
    let (client, table) = moto::table("trend").await;
    TrendTable { client, table }
}

/// The sample month put in `f`'s bucket and forwarded by a forwarder that keeps its series
/// with `keeper`: the forwarder (for what comes next) and its answer.
pub(crate) async fn forward_sample(
    f: &Fixture,
    keeper: &SeriesKeeper,
) -> (
    S3Forwarder,
    Result<serde_json::Value, e2b::forwarder::HandlerError>,
) {
    let forwarder = f.forwarder().with_series(Some(keeper.clone()));
    f.put("trend/30d.json.gz", SAMPLE).await;
    let answer = forwarder
        .handle(&f.s3_event(&["trend/30d.json.gz"]), soon())
        .await;
    (forwarder, answer)
}

/// The bundled position's series over the sample's month.
async fn sample_series(table: &TrendTable) -> Series {
    let key = position_key("monitron/111122223333/Plant%20A", Some("pos-1"), None)
        .expect("the position has an id");
    let from = Utc.with_ymd_and_hms(2024, 1, 30, 0, 0, 0).unwrap();
    let to = Utc.with_ymd_and_hms(2024, 3, 2, 0, 0, 0).unwrap();
    match table.read(&key, from, to).await {
        Ok(series) => series,
        Err(e) => panic!("reading the series: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_measurement_is_kept_once_and_the_alerts_are_published() {
    let f = Fixture::new().await;
    let table = table().await;
    let keeper = SeriesKeeper::new(table.clone());
    let (forwarder, answer) = forward_sample(&f, &keeper).await;
    if let Err(e) = answer {
        panic!("forwarded: {e}");
    }
    let event = f.s3_event(&["trend/30d.json.gz"]);
    assert_eq!(f.broker.stored_ids().len(), 2, "the warning and the alarm");
    assert_eq!(keeper.counts(), (711, 0));

    let series = sample_series(&table).await;
    assert_eq!(series.points().len(), 711);
    assert_eq!(series.position.title(), "Pump 7 / Motor DE");
    assert_eq!(series.position.site.as_deref(), Some("Site 1"));
    assert_eq!(series.position.project.as_deref(), Some("Plant A"));
    let last = series.points().last().expect("points");
    assert_eq!(last.at.to_rfc3339(), "2024-03-01T08:00:07.476+00:00");
    assert!(last.velocity.is_some_and(|v| v > 7.1), "{last:?}");

    // `e2b trend` draws the same month from the table.
    let out = std::env::temp_dir().join(format!("e2b-trend-table-{}.png", std::process::id()));
    let drawn = crate::support::cli::e2b(
        vec![
            "trend".into(),
            "--table".into(),
            table.table.clone(),
            "--position".into(),
            position_key("monitron/111122223333/Plant%20A", Some("pos-1"), None)
                .unwrap_or_default(),
            "--end".into(),
            "2024-03-01T09:00:01Z".into(),
            "--out".into(),
            out.to_string_lossy().to_string(),
        ],
        Vec::new(),
    )
    .await;
    let said = String::from_utf8_lossy(&drawn.stderr);
    assert!(drawn.status.success(), "{said}");
    assert!(
        said.contains(
            "Pump 7 / Motor DE: 711 measurements from 2024-01-31 08:00 to 2024-03-01 08:00 UTC"
        ),
        "{said}"
    );
    let png = std::fs::read(&out).unwrap_or_default();
    assert!(png.starts_with(b"\x89PNG"), "a PNG is written");
    let _ = std::fs::remove_file(&out);

    // Firehose delivers at least once: the same object again adds no point.
    if let Err(e) = forwarder.handle(&event, soon()).await {
        panic!("forwarded again: {e}");
    }
    let again = sample_series(&table).await;
    assert_eq!(again, series);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_that_cannot_be_written_never_stops_the_alerts() {
    let f = Fixture::new().await;
    let (client, _) = moto::table("trend").await;
    let missing = TrendTable {
        client,
        table: moto::unique("no-such-table"),
    };
    let keeper = SeriesKeeper::new(missing);
    let (_, answer) = forward_sample(&f, &keeper).await;
    assert!(answer.is_ok(), "{answer:?}");
    assert_eq!(f.broker.stored_ids().len(), 2);
    assert_eq!(keeper.counts(), (0, 711), "counted as not kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kinesis_path_keeps_its_measurements_too() {
    let f = Fixture::new().await;
    let table = table().await;
    let keeper = SeriesKeeper::new(table.clone());
    let forwarder = f.forwarder().with_series(Some(keeper.clone()));
    let now = SystemTime::now();
    let records = (0..3)
        .map(|n| {
            let data = MEASUREMENT
                .trim()
                .replace("16:38:07.476", &format!("1{n}:38:07.476"));
            kinesis::record(n, data.as_bytes(), now)
        })
        .collect();
    let answer = forwarder.handle(&kinesis::batch(records), soon()).await;
    assert!(answer.is_ok(), "{answer:?}");
    assert_eq!(keeper.counts(), (3, 0));
    let key = position_key(
        "monitron/096573865771/adfsmarthome",
        None,
        Some(("Site 1", "Heizung 1", "Anders")),
    )
    .expect("named");
    let day = Utc.with_ymd_and_hms(2023, 10, 29, 0, 0, 0).unwrap();
    let series = table
        .read(&key, day, day + chrono::Duration::days(1))
        .await
        .unwrap_or_else(|e| panic!("reading: {e}"));
    let hours: Vec<String> = series
        .points()
        .iter()
        .map(|p| p.at.format("%H").to_string())
        .collect();
    assert_eq!(hours, ["10", "11", "12"]);
    assert_eq!(series.points()[0].temperature, Some(45.15));
}

/// A day at its limit refuses more points; another day is still kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_day_is_refused_and_the_others_still_kept() {
    use e2b::trend::store::{Day, Kept, MAX_POINTS_PER_DAY};
    use e2b::trend::{Point, Position};
    let table = table().await;
    let position = |name: &str| Position {
        source: "monitron/1/plant".into(),
        asset_position_id: Some(name.into()),
        ..Position::default()
    };
    let start = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap();
    let point = |seconds: i64| Point {
        at: start + chrono::Duration::seconds(seconds),
        velocity: Some(1.0),
        velocity_axes: [None; 3],
        acceleration: None,
        temperature: None,
        iso_class: None,
        models: [None; 3],
    };
    let day = start.date_naive();
    let busy = Day {
        key: "busy".into(),
        position: position("busy"),
        day,
        points: (0..MAX_POINTS_PER_DAY as i64).map(point).collect(),
    };
    assert_eq!(table.keep(&busy).await.ok(), Some(Kept::Kept));
    let more = Day {
        points: vec![point(86_000)],
        ..busy
    };
    let quiet = Day {
        key: "quiet".into(),
        position: position("quiet"),
        day,
        points: vec![point(60)],
    };
    assert_eq!(table.keep(&more).await.ok(), Some(Kept::DayFull));
    assert_eq!(table.keep(&quiet).await.ok(), Some(Kept::Kept));
    let read = |key: &'static str| {
        let table = table.clone();
        async move {
            let series = table
                .read(key, start, start + chrono::Duration::days(1))
                .await;
            series
                .map(|s| s.points().len())
                .unwrap_or_else(|e| panic!("{e}"))
        }
    };
    assert_eq!(read("busy").await, MAX_POINTS_PER_DAY);
    assert_eq!(read("quiet").await, 1);
}

/// An SQS batch event of the queue's messages, as Lambda's event source mapping sends it.
fn sqs_event(queue_url: &str, messages: &[aws_sdk_sqs::types::Message]) -> serde_json::Value {
    let records: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| {
            serde_json::json!({
                "messageId": m.message_id().unwrap_or_default(),
                "receiptHandle": m.receipt_handle().unwrap_or_default(),
                "body": m.body().unwrap_or_default(),
                "attributes": {},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:{}", queue_url.rsplit('/').next().unwrap_or_default()),
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::json!({ "Records": records })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_trend_queue_the_object_sends_a_message_and_the_queue_writes_the_points() {
    let f = Fixture::new().await;
    let table = table().await;
    let (sqs, queue_url) = moto::queue("trend-points").await;
    let queue = e2b::forwarder::series::queue::TrendQueue {
        client: sqs.clone(),
        url: queue_url.clone(),
    };
    let keeper = SeriesKeeper::new(table.clone()).with_queue(Some(queue));
    let (forwarder, answer) = forward_sample(&f, &keeper).await;
    if let Err(e) = answer {
        panic!("forwarded: {e}");
    }
    assert_eq!(
        f.broker.stored_ids().len(),
        2,
        "the alerts, published as before"
    );
    assert_eq!(keeper.queued(), 711);
    assert_eq!(
        keeper.counts(),
        (0, 0),
        "nothing written while the object was read"
    );
    assert!(sample_series(&table).await.points().is_empty());

    // The queue gives the messages back to the same function, which writes the points; a
    // message given back twice (at least once) keeps them once.
    let received = sqs
        .receive_message()
        .queue_url(&queue_url)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("the queue's messages");
    let messages = received.messages().to_vec();
    assert_eq!(
        messages.len(),
        1,
        "one message for the month of one position"
    );
    for _ in 0..2 {
        let answer = forwarder
            .handle(&sqs_event(&queue_url, &messages), soon())
            .await;
        let failures = answer.as_ref().map(|a| a["batchItemFailures"].clone());
        assert_eq!(failures.ok(), Some(serde_json::json!([])), "{answer:?}");
    }
    assert_eq!(keeper.counts(), (1422, 0), "711 points written, twice");
    let series = sample_series(&table).await;
    assert_eq!(series.points().len(), 711);
    assert_eq!(series.position.title(), "Pump 7 / Motor DE");

    // A point the message carries that cannot be read is counted as not kept, not written.
    let unreadable = aws_sdk_sqs::types::Message::builder()
        .message_id("m-unreadable")
        .body(
            r#"{"e2bTrendPoints":1,"object":"hand-made","days":[{"key":"k-1","day":"2024-03-01","position":{"source":"s"},"points":["not a point"]}]}"#,
        )
        .build();
    let answer = forwarder
        .handle(&sqs_event(&queue_url, &[unreadable]), soon())
        .await;
    assert!(answer.is_ok(), "{answer:?}");
    assert_eq!(keeper.counts(), (1422, 1));

    // A table that cannot be written sends the message back to the queue.
    let (client, _) = moto::table("trend").await;
    let missing = SeriesKeeper::new(TrendTable {
        client,
        table: moto::unique("no-such-table"),
    });
    let failing = f.forwarder().with_series(Some(missing));
    let answer = failing
        .handle(&sqs_event(&queue_url, &messages), soon())
        .await;
    assert!(
        answer.is_err(),
        "every message failed: the batch returns ({answer:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_that_refuses_the_points_has_them_written_directly() {
    let f = Fixture::new().await;
    let table = table().await;
    let (sqs, _) = moto::queue("trend-points").await;
    let queue = e2b::forwarder::series::queue::TrendQueue {
        client: sqs,
        url: format!(
            "{}/123456789012/{}",
            moto::endpoint(),
            moto::unique("no-such-queue")
        ),
    };
    let keeper = SeriesKeeper::new(table.clone()).with_queue(Some(queue));
    let (_, answer) = forward_sample(&f, &keeper).await;
    assert!(answer.is_ok(), "{answer:?}");
    assert_eq!((keeper.queued(), keeper.counts()), (0, (711, 0)));
    assert_eq!(sample_series(&table).await.points().len(), 711);
}
