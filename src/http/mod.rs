pub mod oauth;
pub mod retry;
pub mod sap;
pub mod tls;
