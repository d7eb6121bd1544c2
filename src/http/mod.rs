pub mod oauth;
pub mod reach;
pub mod retry;
pub mod sap;
pub mod tls;
