//! Metrics in CloudWatch Embedded Metric Format: one JSON line per invocation on stdout, which
//! CloudWatch Logs turns into metrics in the `e2b` namespace with a `Function` dimension; with
//! further dimensions (the forwarder's `Broker`: `AEM` or `EventMesh`) each metric is also
//! published under `Function` and those together, so a dashboard by `Function` alone keeps
//! working.
//!
//! Emitting is switched on by the Lambda binaries ([`enable`]); elsewhere (tests, the CLI) the
//! lines are only built.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

/// The CloudWatch namespace.
pub const NAMESPACE: &str = "e2b";

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Switches emitting on (the Lambda binaries do, at start-up).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// One EMF document: `function` is the dimension, `counts` the metrics (unit Count).
pub fn document(function: &str, counts: &[(&str, u64)]) -> Value {
    document_with(function, &[], counts)
}

/// One EMF document with further dimensions (name, value) besides `Function`.
pub fn document_with(function: &str, dimensions: &[(&str, &str)], counts: &[(&str, u64)]) -> Value {
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let definitions: Vec<Value> = counts
        .iter()
        .map(|(name, _)| json!({"Name": name, "Unit": "Count"}))
        .collect();
    let mut dimension_sets = vec![json!(["Function"])];
    if !dimensions.is_empty() {
        let mut names = vec!["Function"];
        names.extend(dimensions.iter().map(|(name, _)| *name));
        dimension_sets.push(json!(names));
    }
    let mut root = Map::new();
    for (name, value) in dimensions {
        root.insert((*name).to_string(), json!(value));
    }
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": dimension_sets,
                "Metrics": definitions,
            }]
        }),
    );
    root.insert("Function".into(), json!(function));
    for (name, count) in counts {
        root.insert((*name).to_string(), json!(count));
    }
    Value::Object(root)
}

/// Prints the document as one line on stdout, when emitting is on.
pub fn emit(function: &str, counts: &[(&str, u64)]) {
    emit_with(function, &[], counts);
}

/// As [`emit`], with further dimensions.
pub fn emit_with(function: &str, dimensions: &[(&str, &str)], counts: &[(&str, u64)]) {
    if ENABLED.load(Ordering::Relaxed) {
        println!("{}", document_with(function, dimensions, counts));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_follow_the_embedded_metric_format() {
        let doc = document(
            "forwarder",
            &[("EventsForwarded", 3), ("PublishRetries", 1)],
        );
        assert_eq!(doc["Function"], "forwarder");
        assert_eq!(doc["EventsForwarded"], 3);
        assert_eq!(doc["PublishRetries"], 1);
        let definition = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(definition["Namespace"], "e2b");
        assert_eq!(definition["Dimensions"], json!([["Function"]]));
        assert_eq!(
            definition["Metrics"],
            json!([{"Name": "EventsForwarded", "Unit": "Count"}, {"Name": "PublishRetries", "Unit": "Count"}])
        );
        assert!(
            doc["_aws"]["Timestamp"]
                .as_u64()
                .is_some_and(|t| t > 1_700_000_000_000)
        );
        assert!(!doc.to_string().contains('\n'), "one line");
    }

    #[test]
    fn a_broker_dimension_adds_a_set_and_keeps_function_alone() {
        let doc = document_with(
            "forwarder",
            &[("Broker", "EventMesh")],
            &[("EventsForwarded", 2)],
        );
        assert_eq!(doc["Broker"], "EventMesh");
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Function"], ["Function", "Broker"]])
        );
    }
}
