use super::*;
use crate::aws::s3::S3Location;

fn object(version: Option<&str>, etag: Option<&str>) -> ObjectRef {
    ObjectRef {
        location: S3Location::new("export", "project=Pumpe Süd/a.json.gz"),
        version_id: version.map(str::to_string),
        etag: etag.map(str::to_string),
        size: None,
    }
}

#[test]
fn an_object_version_is_named_by_its_version_id_then_its_etag() {
    assert_eq!(
        object_id(&object(Some("3HL4kqtJlcpXroDTDmJ"), Some("abc"))).as_deref(),
        Some("progress#s3://export/project=Pumpe Süd/a.json.gz#v=3HL4kqtJlcpXroDTDmJ")
    );
    // Listings quote the ETag, notifications do not: both name one object.
    assert_eq!(
        object_id(&object(None, Some("\"0f343b09\""))),
        object_id(&object(None, Some("0f343b09")))
    );
    assert_ne!(
        object_id(&object(None, Some("0f343b09"))),
        object_id(&object(None, Some("5d41402a"))),
        "a new upload under the same key is a new object"
    );
    assert_eq!(
        object_id(&object(None, None)),
        None,
        "no identity: no ledger"
    );
}

#[test]
fn a_fresh_object_has_nothing_done_without_reading_a_page() {
    // A client that cannot be reached: any read would fail.
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:9")
        .build();
    let ledger = Ledger {
        client: aws_sdk_dynamodb::Client::from_conf(config),
        table: "t".into(),
        keep: Duration::from_secs(60),
    };
    let mut progress = Progress {
        id: "progress#x".into(),
        owner: "o".into(),
        fresh: true,
        pages: HashMap::new(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime in the test set-up");
    let done = runtime.block_on(ledger.is_done(&mut progress, 5_000));
    assert_eq!(done, Ok(false));
    assert!(progress.pages.is_empty());
}
