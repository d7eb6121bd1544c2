use reqwest::Url;

use super::*;
use crate::aws::secrets::{SecretLayout, parse_credentials};

fn config(destination: Destination) -> AemRest {
    AemRest {
        base_url: Url::parse("https://mr-connection-abc.messaging.solace.cloud:9443")
            .expect("Url::parse in the test set-up"),
        destination,
        message_ttl_ms: None,
    }
}

fn url_for(config: &AemRest, topic: &str) -> Result<Url, UrlError> {
    config.url_for(topic)
}

fn service_key(namespace: &str) -> Credentials {
    let key = serde_json::json!({
        "namespace": namespace,
        "messaging": [{"protocol": ["httprest"], "uri": "https://enterprise-messaging-pubsub.cfapps.eu10.hana.ondemand.com",
                       "oa2": {"clientid": "c", "clientsecret": "s", "tokenendpoint": "https://t.example/oauth/token"}}]
    });
    SecretLayout::EventMeshServiceKey
        .parse("em-key", &key.to_string())
        .expect("a service key in the test set-up")
}

#[test]
fn event_mesh_topics_are_one_path_segment_under_the_namespace() {
    let wire = EventMeshRest::default();
    let url = wire.url(
        &service_key("acme/plant/monitron"),
        "monitron/asset/alert/ALARM/Werk Süd/Pump 7",
    );
    let Ok(url) = url else { panic!("{url:?}") };
    let path = url.path();
    assert!(
        path.starts_with("/messagingrest/v1/topics/acme%2Fplant%2Fmonitron%2Fmonitron%2Fasset%2Falert%2FALARM%2FWerk_S_d-"),
        "{path}"
    );
    assert!(path.ends_with("/messages"), "{path}");
    assert_eq!(path.matches('/').count(), 5, "{path}");
}

#[test]
fn an_event_mesh_queue_takes_every_message() {
    let wire = EventMeshRest {
        queue: Some("acme/plant/monitron/alerts".into()),
    };
    let url = wire.url(&service_key("acme/plant/monitron"), "monitron/asset/alert");
    assert_eq!(
        url.map(|u| u.path().to_string()),
        Ok("/messagingrest/v1/queues/acme%2Fplant%2Fmonitron%2Falerts/messages".to_string())
    );
}

#[test]
fn an_event_mesh_url_needs_a_service_key() {
    let credentials = parse_credentials("aem-login", r#"{"username":"u","password":"p"}"#)
        .expect("a logon in the test set-up");
    let url = EventMeshRest::default().url(&credentials, "monitron/asset/alert");
    assert!(
        url.as_ref().is_err_and(|e| e.0.contains("aem-login")),
        "{url:?}"
    );
}

#[test]
fn topic_levels_are_percent_encoded_and_slashes_kept() {
    let url = url_for(
        &config(Destination::Topics),
        "monitron/asset/alert/ALARM/Plant A/Werk Süd/Pump #7/Motor?DE",
    );
    assert_eq!(
        url.map(|u| u.to_string()),
        Ok("https://mr-connection-abc.messaging.solace.cloud:9443/TOPIC/monitron/asset/alert/ALARM/Plant%20A/Werk%20S%C3%BCd/Pump%20%237/Motor%3FDE".to_string())
    );
}

#[test]
fn a_queue_destination_posts_to_the_queue() {
    let url = url_for(
        &config(Destination::Queue("Q/rdp1/input".into())),
        "ignored/topic",
    );
    assert_eq!(
        url.map(|u| u.path().to_string()),
        Ok("/QUEUE/Q/rdp1/input".to_string())
    );
}

#[test]
fn the_sap_sample_url_is_used_as_it_is() {
    let fixed =
        Url::parse("https://mr-connection-abc.messaging.solace.cloud:9443/monitron/messages")
            .expect("Url::parse in the test set-up");
    let url = url_for(
        &config(Destination::FixedUrl(fixed.clone())),
        "monitron/asset/alert",
    );
    assert_eq!(url, Ok(fixed));
}

#[test]
fn a_base_url_with_a_trailing_slash_makes_no_empty_level() {
    let mut c = config(Destination::Topics);
    c.base_url = Url::parse("http://127.0.0.1:9000/").expect("Url::parse in the test set-up");
    assert_eq!(
        url_for(&c, "a/b").map(|u| u.to_string()),
        Ok("http://127.0.0.1:9000/TOPIC/a/b".to_string())
    );
}

#[test]
fn the_correlation_id_is_ascii_and_reads_back_with_one_decoding() {
    let key = "s3://export/project=Pumpe Süd/100%/ü\u{7}.json.gz";
    let header = ascii_header(key);
    assert!(
        header.is_ascii() && !header.chars().any(|c| c.is_control()),
        "{header}"
    );
    assert_eq!(
        header,
        "s3://export/project=Pumpe%20S%C3%BCd/100%25/%C3%BC%07.json.gz"
    );
    let back = percent_encoding::percent_decode_str(&header).decode_utf8();
    assert_eq!(back.ok().as_deref(), Some(key));
    assert!(reqwest::header::HeaderValue::from_str(&header).is_ok());
}
