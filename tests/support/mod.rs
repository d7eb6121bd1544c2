//! Test peers shared by the integration tests: moto, a Solace REST test broker, the Lambda
//! Invoke API.
#![allow(dead_code)]

pub mod broker;
pub mod http;
pub mod lambda_api;
pub mod moto;
