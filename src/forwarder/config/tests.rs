use std::collections::HashMap;

use super::*;

fn read(pairs: &[(&str, &str)]) -> Result<ForwarderConfig, ConfigError> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ForwarderConfig::from_lookup(|name| map.get(name).cloned())
}

/// The Advanced Event Mesh settings of a configuration.
fn aem(config: &ForwarderConfig) -> &AemRest {
    match &config.broker.broker {
        Broker::Aem(aem) => aem,
        Broker::EventMesh(_) => panic!("Event Mesh, not AEM"),
    }
}

const MINIMAL: [(&str, &str); 2] = [
    (
        "AEM_REST_URL",
        "https://mr-connection-abc.messaging.solace.cloud:9443",
    ),
    ("AEM_CREDENTIALS_SECRET", "aem-credentials"),
];

#[test]
fn two_settings_are_enough_and_the_rest_has_documented_defaults() {
    let Ok(config) = read(&MINIMAL) else {
        panic!("minimal settings refused")
    };
    assert_eq!(aem(&config).destination, Destination::Topics);
    assert_eq!(config.secret_id, "aem-credentials");
    assert_eq!(config.concurrency, 16);
    assert_eq!(config.broker.request_timeout, Duration::from_secs(5));
    assert_eq!(config.broker.retry.attempts, 6);
    assert_eq!(aem(&config).message_ttl_ms, None);
    assert_eq!(config.secret_ttl, Duration::from_secs(300));
    assert_eq!(config.scan.events.format, PayloadFormat::CloudEvents);
    assert_eq!(config.scan.rules, ForwardingRules::default());
    assert_eq!(config.filter, KeyFilter::default());
    assert_eq!(config.progress_table, None);
    assert_eq!(config.progress_keep, Duration::from_secs(7 * 86_400));
    assert_eq!(config.failure_records, None);
    assert_eq!(config.warnings.len(), 2, "{:?}", config.warnings);
    assert!(config.warnings[0].starts_with("PROGRESS_TABLE is not set"));
    assert!(config.warnings[1].starts_with("FAILURE_RECORDS is not set"));
}

#[test]
fn the_ledger_and_the_failure_records_silence_their_warnings() {
    let mut settings = MINIMAL.to_vec();
    settings.extend([
        ("PROGRESS_TABLE", "e2b-idempotency"),
        ("PROGRESS_KEEP_DAYS", "14"),
        (
            "FAILURE_RECORDS",
            "https://sqs.eu-central-1.amazonaws.com/111122223333/e2b-forwarder-refusals",
        ),
    ]);
    let Ok(config) = read(&settings) else {
        panic!("settings refused")
    };
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    assert_eq!(config.progress_table.as_deref(), Some("e2b-idempotency"));
    assert_eq!(config.progress_keep, Duration::from_secs(14 * 86_400));
    settings.push(("FAILURE_RECORDS", "failures"));
    settings.retain(|(k, v)| *k != "FAILURE_RECORDS" || *v == "failures");
    assert!(read(&settings).is_err_and(|e| e.to_string().contains("FAILURE_RECORDS")));
}

#[test]
fn forward_states_default_to_the_sap_samples_selection_for_its_format() {
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut settings = MINIMAL.to_vec();
        settings.extend_from_slice(extra);
        read(&settings).map(|c| c.scan.rules.states)
    };
    assert_eq!(
        with(&[]).ok(),
        Some(None),
        "CloudEvents: every alert change"
    );
    assert_eq!(
        with(&[("PAYLOAD_FORMAT", "sap-e2b")]).ok(),
        Some(Some(vec!["NEEDS_MAINTENANCE".to_string()]))
    );
    assert_eq!(
        with(&[("PAYLOAD_FORMAT", "sap-e2b"), ("FORWARD_STATES", "all")]).ok(),
        Some(None)
    );
    assert_eq!(
        with(&[("FORWARD_STATES", " alarm, NEEDS_MAINTENANCE ")]).ok(),
        Some(Some(vec![
            "ALARM".to_string(),
            "NEEDS_MAINTENANCE".to_string()
        ]))
    );
    assert!(
        with(&[("FORWARD_STATES", "MAINTENANCE")])
            .is_err_and(|e| e.to_string().contains("FORWARD_STATES `MAINTENANCE`"))
    );
}

#[test]
fn the_sap_sample_variables_work_as_aliases() {
    let Ok(config) = read(&[
        (
            "SAP_AEM_REST_URL",
            "https://mr-connection-abc.messaging.solace.cloud:9443/monitron/messages",
        ),
        (
            "SAP_AEM_CREDENTIALS",
            "arn:aws:secretsmanager:eu-central-1:111122223333:secret:sapaem-credentials",
        ),
        ("PAYLOAD_FORMAT", "sap-e2b"),
    ]) else {
        panic!("the SAP sample's settings were refused")
    };
    let Destination::FixedUrl(url) = &aem(&config).destination else {
        panic!()
    };
    assert_eq!(url.path(), "/monitron/messages");
    assert_eq!(
        aem(&config).base_url.as_str(),
        "https://mr-connection-abc.messaging.solace.cloud:9443/"
    );
    assert!(config.secret_id.ends_with(":secret:sapaem-credentials"));
    assert_eq!(config.scan.events.format, PayloadFormat::SapE2b);
}

#[test]
fn every_wrong_setting_is_named_at_once() {
    let Err(ConfigError { problems, .. }) = read(&[
        ("AEM_REST_URL", "mr-connection-abc:9443"),
        ("PAYLOAD_FORMAT", "xml"),
        ("PUBLISH_CONCURRENCY", "0"),
        ("FORWARD_CONNECTIVITY", "sometimes"),
        ("AEM_TOPIC_TEMPLATE", "a//b"),
        ("SECRET_CACHE_TTL_SECONDS", "0"),
    ]) else {
        panic!("accepted")
    };
    let all = problems.join("\n");
    for name in [
        "SECRET_CACHE_TTL_SECONDS",
        "AEM_REST_URL",
        "AEM_CREDENTIALS_SECRET",
        "PAYLOAD_FORMAT",
        "PUBLISH_CONCURRENCY",
        "FORWARD_CONNECTIVITY",
        "AEM_TOPIC_TEMPLATE",
    ] {
        assert!(all.contains(name), "{name} not named in:\n{all}");
    }
}

#[test]
fn conflicting_or_unsafe_urls_are_refused() {
    for (pairs, expected) in [
        (
            vec![
                ("AEM_REST_URL", "https://h:9443"),
                ("SAP_AEM_REST_URL", "https://h:9443/t"),
            ],
            "not both",
        ),
        (
            vec![("AEM_REST_URL", "https://h:9443/monitron/messages")],
            "has a path",
        ),
        (
            vec![("AEM_REST_URL", "https://user:pw@h:9443")],
            "must not carry",
        ),
        (vec![("AEM_REST_URL", "ftp://h")], "not an http(s) URL"),
        (
            vec![("SAP_AEM_REST_URL", "https://h:9443/t"), ("AEM_QUEUE", "q")],
            "AEM_QUEUE cannot",
        ),
        (vec![("SAP_AEM_REST_URL", "https://h:9443/")], "has no path"),
        (
            vec![("AEM_REST_URL", "https://aem:pw@h:99999")],
            "value not shown",
        ),
        (vec![("AEM_REST_URL", "aem:pw@h")], "value not shown"),
    ] {
        let mut all = pairs.clone();
        all.push(("AEM_CREDENTIALS_SECRET", "s"));
        match read(&all) {
            Err(e) => {
                assert!(e.to_string().contains(expected), "{e}");
                assert!(
                    !e.to_string().contains("pw@"),
                    "a password in a URL is not repeated: {e}"
                );
            }
            Ok(_) => panic!("{pairs:?} accepted"),
        }
    }
}

#[test]
fn plain_http_is_allowed_for_test_brokers_but_said_loudly() {
    let Ok(config) = read(&[
        ("AEM_REST_URL", "http://127.0.0.1:9000"),
        ("AEM_CREDENTIALS_SECRET", "s"),
    ]) else {
        panic!()
    };
    assert!(config.warnings.iter().any(|w| w.contains("plain http")));
}

#[test]
fn switches_filters_and_numbers_are_read() {
    let mut pairs = MINIMAL.to_vec();
    pairs.extend([
        ("AEM_QUEUE", "Q/monitron"),
        ("FORWARD_MODEL_TRANSITIONS", "true"),
        ("FORWARD_CONNECTIVITY", "1"),
        ("PUBLISH_CONCURRENCY", "32"),
        ("AEM_MESSAGE_TTL_MS", "86400000"),
        ("OBJECT_KEY_PREFIX", "project="),
        ("OBJECT_KEY_SUFFIX", ".gz"),
        ("OBJECT_KEY_EXCLUDE_PREFIXES", "error/, tmp/"),
        ("AEM_TOPIC_TEMPLATE", "x/{site}"),
    ]);
    let Ok(config) = read(&pairs) else { panic!() };
    assert_eq!(
        aem(&config).destination,
        Destination::Queue("Q/monitron".into())
    );
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains("AEM_TOPIC_TEMPLATE is not used"))
    );
    assert!(config.scan.rules.model_transitions && config.scan.rules.connectivity);
    assert_eq!(config.concurrency, 32);
    assert_eq!(aem(&config).message_ttl_ms, Some(86_400_000));
    assert_eq!(
        config.filter.exclude_prefixes,
        vec!["error/".to_string(), "tmp/".to_string()]
    );
    assert_eq!(config.filter.skip_reason("project=A/x.gz"), None);
    assert!(
        config
            .filter
            .skip_reason("project=A/x.json")
            .is_some_and(|r| r.contains("OBJECT_KEY_SUFFIX"))
    );
    assert!(
        config
            .filter
            .skip_reason("error/x.gz")
            .is_some_and(|r| r.contains("OBJECT_KEY_PREFIX"))
    );
    let only_exclude = KeyFilter {
        exclude_prefixes: vec!["error/".into()],
        ..KeyFilter::default()
    };
    assert!(
        only_exclude
            .skip_reason("error/processing-failed/x")
            .is_some_and(|r| r.contains("error/"))
    );
}

#[test]
fn a_service_key_secret_chooses_sap_event_mesh() {
    let Ok(config) = read(&[("EVENT_MESH_SERVICE_KEY_SECRET", "em-key")]) else {
        panic!("the service key alone was refused")
    };
    assert_eq!(
        config.broker.broker,
        Broker::EventMesh(EventMeshRest { queue: None })
    );
    assert_eq!(config.secret_id, "em-key");
    assert_eq!(config.secret_layout, SecretLayout::EventMeshServiceKey);
    let Ok(queued) = read(&[
        ("EVENT_MESH_SERVICE_KEY_SECRET", "em-key"),
        ("EVENT_MESH_QUEUE", "acme/plant/monitron/alerts"),
    ]) else {
        panic!("a queue was refused")
    };
    assert_eq!(
        queued.broker.broker,
        Broker::EventMesh(EventMeshRest {
            queue: Some("acme/plant/monitron/alerts".into())
        })
    );
    assert_eq!(
        read(&MINIMAL).map(|c| c.secret_layout).ok(),
        Some(SecretLayout::BrokerLogon)
    );
}

#[test]
fn both_brokers_at_once_is_a_start_up_error_naming_both() {
    let mut pairs = MINIMAL.to_vec();
    pairs.push(("EVENT_MESH_SERVICE_KEY_SECRET", "em-key"));
    let Err(error) = read(&pairs) else {
        panic!("both brokers accepted")
    };
    let text = error.to_string();
    for name in [
        "EVENT_MESH_SERVICE_KEY_SECRET",
        "AEM_REST_URL",
        "AEM_CREDENTIALS_SECRET",
    ] {
        assert!(text.contains(name), "{text}");
    }
    let Err(error) = read(&[("EVENT_MESH_QUEUE", "q")]) else {
        panic!("a queue without a key accepted")
    };
    assert!(
        error.to_string().contains("EVENT_MESH_SERVICE_KEY_SECRET"),
        "{error}"
    );
}
