//! The request rate S/4 is to be sent at most (`S4_MAX_REQUESTS_PER_SECOND`), shared by every
//! container of the processor through the idempotency table.
//!
//! Rules:
//! - every request to S/4 takes a token first: each attempt of a request, and each CSRF token
//!   fetch (the OAuth2 token endpoint is not S/4's Gateway and takes none);
//! - the bucket is refilled in windows of a quarter second (or `1 / rate` s when the rate is
//!   below 4), each holding its share of the rate ([`crate::aws::dynamo::take_token`], key
//!   `s4-rate#<host:port>/<sap-client>#<window>`): any 10 seconds see at most 10 × the rate +
//!   a quarter of it (82 at 8 a second; the bound is 11 ×), whatever the number of
//!   containers, and a second's requests are spread over it rather than sent at its start;
//! - a request that gets no token within [`WAIT_AT_MOST`] (2 s, deliveries and the schedule
//!   alike), or before its deadline, is not sent: [`S4Error::Transient`] with [`THROTTLED`] in its reason, which the
//!   processor answers 429 with `Retry-After` (the mesh redelivers, nothing is lost) and the
//!   schedule leaves for its next tick;
//! - the table failing is a transient failure too: nothing is sent unmetered.

use std::time::{Duration, Instant};

use crate::aws::dynamo::take_token;

use super::error::S4Error;

/// What the reason of a request held back by the rate says.
pub const THROTTLED: &str = "S/4's request rate is at its limit (S4_MAX_REQUESTS_PER_SECOND)";

/// How long a request waits for a token at most.
pub const WAIT_AT_MOST: Duration = Duration::from_secs(2);

/// Whether an outcome's reason says the rate held it back.
pub fn is_throttled(reason: &str) -> bool {
    reason.contains(THROTTLED)
}

/// The bucket's window for a rate: (tokens a window, its length), a quarter second with a
/// quarter of the rate, or one token every `1 / rate` s below 4 a second.
pub fn window(per_second: u32) -> (u32, Duration) {
    let per_second = per_second.max(1);
    let per_window = (per_second / 4).max(1);
    let length = Duration::from_millis(1000 * u64::from(per_window) / u64::from(per_second));
    (per_window, length.max(Duration::from_millis(1)))
}

/// The shared bucket of S/4 requests.
#[derive(Debug, Clone)]
pub struct RequestGate {
    client: aws_sdk_dynamodb::Client,
    table: String,
    key: String,
    per_second: u32,
    wait_at_most: Duration,
}

impl RequestGate {
    /// `per_second` requests to the S/4 system `system` (host and client), counted in `table`.
    pub fn new(
        client: aws_sdk_dynamodb::Client,
        table: &str,
        system: &str,
        per_second: u32,
    ) -> RequestGate {
        RequestGate {
            client,
            table: table.to_string(),
            key: format!("s4-rate#{system}"),
            per_second,
            wait_at_most: WAIT_AT_MOST,
        }
    }

    pub fn per_second(&self) -> u32 {
        self.per_second
    }

    /// Waits for a token; `Err` when none comes within the wait or before `deadline`.
    pub async fn admit(&self, deadline: Instant) -> Result<(), S4Error> {
        let give_up = (Instant::now() + self.wait_at_most).min(deadline);
        loop {
            let (per_window, window) = window(self.per_second);
            let wait = take_token(&self.client, &self.table, &self.key, per_window, window)
                .await
                .map_err(|e| {
                    S4Error::Transient(format!(
                        "the S/4 request rate could not be counted in the idempotency table ({e}); nothing is sent unmetered"
                    ))
                })?;
            let Some(wait) = wait else {
                return Ok(());
            };
            // Spread the next attempts over the first part of the next window.
            let wait = wait + Duration::from_millis(fastrand::u64(..50));
            if Instant::now() + wait >= give_up {
                crate::metrics::emit("processor", &[("S4Throttled", 1)]);
                return Err(S4Error::Transient(format!(
                    "{THROTTLED}: {} requests a second; no token within {} ms",
                    self.per_second,
                    self.wait_at_most.as_millis()
                )));
            }
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_ten_seconds_hold_at_most_ten_times_the_rate_and_a_quarter() {
        for rate in [1, 2, 3, 5, 8, 10, 13, 100, 1000] {
            let (per_window, length) = window(rate);
            let windows = 10_000 / length.as_millis() as u32 + 1;
            let most = windows * per_window;
            assert!(most <= 10 * rate + rate.div_ceil(4), "{rate}/s: {most}");
            assert!(most <= 11 * rate, "{rate}/s: {most}");
            // And the rate itself is kept over a second.
            let per_second = 1000 / length.as_millis() as u32 * per_window;
            assert!(per_second <= rate, "{rate}/s: {per_second} a second");
        }
    }
}
