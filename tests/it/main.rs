//! The integration tests: one binary, linked once (the AWS SDKs are large), a module per
//! surface. The test peers they share are in `tests/support/`, each opening with what it
//! enforces.

#[path = "../support/mod.rs"]
mod support;

mod alarms;
mod campaigns;
mod console;
mod deploy;
mod e2b_rules;
mod e2b_s3;
mod e2b_scan;
mod e2b_trend;
mod episodes;
mod event_mesh;
mod forwarder;
mod forwarder_lambda;
mod fuzz_regressions;
mod kinesis;
mod layout;
mod ledger;
mod poison;
mod private_network;
mod processor;
mod processor_actions;
mod processor_lambda;
mod security;
mod traces;
mod trend_chart;
mod trend_series;
