//! The sample records in `events/records/`, for the unit tests of every module that reads
//! Monitron records.

pub const MEASUREMENT: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/events/records/monitron-v2-measurement.json"
));
pub const ALARM: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/events/records/illustrative-v2-asset-state-transition-alarm.json"
));
pub const CLOSURE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/events/records/illustrative-v2-asset-state-transition-user-closure.json"
));
pub const SENSOR_DOWN: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/events/records/illustrative-v2-sensor-disconnected.json"
));
pub const GATEWAY_DOWN: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/events/records/illustrative-v2-gateway-disconnected.json"
));
pub const V1_SAP: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/events/records/monitron-v1-sap-sample.json"
));
pub const V1_PRECURSOR: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/events/records/monitron-v1-precursor-sample.json"
));
pub const SAP_ENVELOPE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/events/records/illustrative-sap-mesh-envelope.json"
));

/// Every forwarding switch on.
pub const ALL_ON: crate::monitron::ForwardingRules = crate::monitron::ForwardingRules {
    model_transitions: true,
    connectivity: true,
    states: None,
};
