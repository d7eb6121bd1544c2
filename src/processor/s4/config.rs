//! Where S/4 is and how patiently it is called.

use std::time::Duration;

use reqwest::Url;

use crate::http::retry::Backoff;

/// The service path under a host.
pub const SERVICE_PATH: &str = "/sap/opu/odata/sap/API_MAINTNOTIFICATION";

/// How to reach S/4.
#[derive(Debug, Clone)]
pub struct S4Config {
    /// The service root, e.g. `https://s4.example.com/sap/opu/odata/sap/API_MAINTNOTIFICATION`.
    pub service_url: Url,
    pub sap_client: Option<String>,
    pub request_timeout: Duration,
    /// Attempts and pauses (base 200 ms, cap 12.8 s, full jitter); writes whose outcome is
    /// unknown are never repeated, whatever the schedule allows.
    pub retry: Backoff,
}

/// `S4_BASE_URL` as the service root: a host alone gets [`SERVICE_PATH`], a URL with a path is
/// taken as the service URL itself.
pub fn service_root(mut url: Url) -> Url {
    if url.path().trim_matches('/').is_empty() {
        url.set_path(SERVICE_PATH);
    }
    url
}
