//! The S/4 requests `e2b rules test` prints, built by the client's own request builders.

use reqwest::Url;

use crate::env::Env;
use crate::processor::s4::config::service_root;
use crate::processor::s4::{Requests, S4Error, S4Request};

/// The S/4 requests as the client builds them: against `S4_BASE_URL` (and `S4_SAP_CLIENT`)
/// when set, else against a placeholder host.
pub fn s4_requests() -> Option<Requests> {
    let env = Env::new("CLI", &crate::env::process);
    let configured = env.text("S4_BASE_URL");
    if configured.is_none() {
        println!("  (S4_BASE_URL not set: requests shown against {PLACEHOLDER_HOST})");
    }
    let text = configured.unwrap_or_else(|| PLACEHOLDER_HOST.to_string());
    match Url::parse(&text) {
        Ok(url) => Some(Requests::for_service(
            service_root(url),
            env.text("S4_SAP_CLIENT"),
        )),
        Err(e) => {
            println!("  S4_BASE_URL `{text}` is not a URL ({e}): no requests shown");
            None
        }
    }
}

const PLACEHOLDER_HOST: &str = "https://s4.example.com";
/// Prints a request indented under its step.
pub fn show(request: Result<S4Request, S4Error>) {
    match request {
        Ok(r) => {
            for line in r.describe().lines() {
                println!("    {line}");
            }
        }
        Err(e) => println!("    ({e})"),
    }
}
