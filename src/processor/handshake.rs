//! The webhook handshake SAP Event Mesh sends before it pushes: the CloudEvents HTTP webhook
//! abuse-protection handshake (cloudevents/spec v1.0, `http-webhook.md` §4), for a webhook
//! subscription with `exemptHandshake: false`.
//!
//! Rules:
//! - it is an `OPTIONS` request carrying `WebHook-Request-Origin`; like every request, it is
//!   answered only to a caller with the delivery credentials (401 otherwise, before anything
//!   here);
//! - the origin is allowed when `PROCESSOR_ALLOWED_ORIGINS` is not set, or lists it (exactly,
//!   case-insensitively): 200 with `WebHook-Allowed-Origin: <the origin>`,
//!   `WebHook-Allowed-Rate: <PROCESSOR_ALLOWED_RATE>` (requests a minute; `*` when unset: the
//!   processor takes what the mesh sends, S4_MAX_REQUESTS_PER_SECOND and the reply budget bound
//!   what reaches S/4) and `Allow: POST, OPTIONS`;
//! - an origin not listed is 403, naming it and the setting; an `OPTIONS` without the header is
//!   no handshake: 200 with `Allow` only.

use serde_json::json;

use lambda_http::http::HeaderMap;

use super::outcome::Reply;

/// The answer to an authenticated `OPTIONS`.
pub fn answer(headers: &HeaderMap, allowed: Option<&[String]>, rate: Option<u64>) -> Reply {
    let allow = ("Allow".to_string(), "POST, OPTIONS".to_string());
    let Some(origin) = headers
        .get("webhook-request-origin")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|o| !o.is_empty())
    else {
        return Reply {
            status: 200,
            body: json!({"allow": ["POST", "OPTIONS"]}),
            headers: vec![allow],
        };
    };
    let listed = allowed.is_none_or(|list| list.iter().any(|a| a.eq_ignore_ascii_case(origin)));
    if !listed {
        tracing::warn!(
            origin,
            "webhook handshake refused: the origin is not in PROCESSOR_ALLOWED_ORIGINS"
        );
        return Reply {
            status: 403,
            body: json!({"error": format!("origin {origin} is not in PROCESSOR_ALLOWED_ORIGINS")}),
            headers: vec![allow],
        };
    }
    tracing::info!(origin, "webhook handshake answered");
    Reply {
        status: 200,
        body: json!({"allowedOrigin": origin}),
        headers: vec![
            allow,
            ("WebHook-Allowed-Origin".to_string(), origin.to_string()),
            (
                "WebHook-Allowed-Rate".to_string(),
                rate.map_or_else(|| "*".to_string(), |r| r.to_string()),
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_origin(origin: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(v) = origin.parse() {
            headers.insert("webhook-request-origin", v);
        }
        headers
    }

    fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
        reply
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn the_origin_is_echoed_when_allowed_and_refused_when_not_listed() {
        let origin = "eventmesh.eu10.hana.ondemand.com";
        let open = answer(&with_origin(origin), None, None);
        assert_eq!(open.status, 200);
        assert_eq!(header(&open, "WebHook-Allowed-Origin"), Some(origin));
        assert_eq!(header(&open, "WebHook-Allowed-Rate"), Some("*"));
        let limited = answer(&with_origin(origin), None, Some(600));
        assert_eq!(header(&limited, "WebHook-Allowed-Rate"), Some("600"));
        let listed = vec!["EventMesh.eu10.hana.ondemand.com".to_string()];
        assert_eq!(
            answer(&with_origin(origin), Some(&listed), None).status,
            200
        );
        let other = answer(&with_origin("attacker.example"), Some(&listed), None);
        assert_eq!(other.status, 403);
        assert_eq!(header(&other, "WebHook-Allowed-Origin"), None);
        let plain = answer(&HeaderMap::new(), Some(&listed), None);
        assert_eq!(
            (plain.status, header(&plain, "Allow")),
            (200, Some("POST, OPTIONS"))
        );
    }
}
