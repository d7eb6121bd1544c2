//! Test peers shared by the integration tests: moto, a Solace REST test broker, the Lambda
//! Invoke API, and an S/4HANA OData V2 server.
#![allow(dead_code)]

pub mod broker;
pub mod http;
pub mod lambda_api;
pub mod lambda_watch;
pub mod moto;
pub mod s4;
