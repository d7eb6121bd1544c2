//! Amazon Monitron → SAP Advanced Event Mesh → SAP S/4HANA.

pub mod aws;
pub mod cli;
pub mod env;
pub mod forwarder;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod metrics;
pub mod outcome;
pub mod processor;

#[cfg(test)]
mod test_samples;
