//! Test peers shared by the integration tests: moto, a Solace REST test broker, the Lambda
//! Invoke API, an S/4HANA OData V2 server, and an HTTP destination with an SBPA rule service.
#![allow(dead_code)]

pub mod broker;
pub mod cli;
pub mod destination;
pub mod http;
pub mod lambda_api;
pub mod lambda_watch;
pub mod moto;
pub mod s4;
