//! Amazon Monitron → SAP Advanced Event Mesh → SAP S/4HANA.
//!
//! The library holds the logic; the binaries in `src/bin/` only wire it up.
//!
//! The forwarder's path, as modules:
//! - [`firehose`]: the bytes of a Firehose object (gzip or not) → one JSON value at a time, with
//!   broken records reported and skipped;
//! - [`monitron`]: a JSON value → a Monitron v1/v2 record, and whether it is forwarded;
//! - [`event`]: a forwarded record → the payload (CloudEvents or the SAP sample envelope) and its
//!   mesh topic;
//! - [`scan`]: the three together over one or more objects, with de-duplication and a summary.

pub mod actions;
pub mod alert;
pub mod cli;
pub mod config;
pub mod destination;
pub mod event;
pub mod failures;
pub mod firehose;
pub mod forwarder;
#[doc(hidden)]
pub mod fuzzing;
pub mod idempotency;
pub mod mesh;
pub mod metrics;
pub mod monitron;
pub mod oauth;
pub mod processor;
pub mod replay;
pub mod rules;
pub mod s3;
pub mod s4;
pub mod scan;
pub mod secrets;
pub mod template;
pub mod trigger;

#[cfg(test)]
mod test_samples;
