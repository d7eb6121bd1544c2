//! Test peers shared by the integration tests: moto and a Solace REST test broker.
#![allow(dead_code)]

pub mod broker;
pub mod moto;
