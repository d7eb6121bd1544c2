pub mod oauth;
pub mod retry;
pub mod sap;
