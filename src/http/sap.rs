//! SAP Gateway's HTTP conventions, shared by the S/4 client and the rule files' destinations.
//!
//! - Writes carry a CSRF token fetched with `x-csrf-token: Fetch` ([`fetch_csrf_token`]); an
//!   answer with `x-csrf-token: Required` (on a 403) asks for a new one.
//! - Errors come as `{"error": {"code", "message": {"value"} | "…", "innererror":
//!   {"errordetails": [...]}}}`; [`error_message`] turns one into a readable reason.
//! - Texts are cut on a character boundary to the lengths the service declares ([`cut`]).

use serde_json::Value;

/// At most `max` characters, cut on a character boundary.
pub fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// The CSRF token an answer carries; empty when none (some systems send none, and writes then
/// go without one, as SAP's Cloud SDK does).
pub fn csrf_token_in(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// True when an answer asks for a (new) CSRF token: `x-csrf-token: Required`.
pub fn csrf_required(headers: &reqwest::header::HeaderMap) -> bool {
    headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("required"))
}

/// An answer to a CSRF token fetch that is no success: its status and SAP's reason (the
/// status text when the body has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoToken {
    pub status: reqwest::StatusCode,
    pub message: String,
}

/// Fetches a CSRF token with the caller's request (its URL, credentials and timeout), adding
/// `x-csrf-token: Fetch`. The token may be empty: some systems send none, and writes then go
/// without one.
pub async fn fetch_csrf_token(
    request: reqwest::RequestBuilder,
) -> Result<Result<String, NoToken>, reqwest::Error> {
    let response = request.header("x-csrf-token", "Fetch").send().await?;
    let status = response.status();
    if status.is_success() {
        return Ok(Ok(csrf_token_in(response.headers())));
    }
    let text = response.text().await.unwrap_or_default();
    let message = error_message(&text).unwrap_or_else(|| status.to_string());
    Ok(Err(NoToken { status, message }))
}

/// SAP Gateway's error body → `code: message (detail; detail)`.
pub fn error_message(body: &str) -> Option<String> {
    let value: Value = serde_json::from_str(body).ok()?;
    let error = value.get("error")?;
    let message = match error.get("message") {
        Some(Value::String(s)) => s.clone(),
        Some(m) => m
            .get("value")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        None => String::new(),
    };
    let code = error
        .get("code")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let details: Vec<String> = error
        .pointer("/innererror/errordetails")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|d| match d.get("message") {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(m) => m.get("value").and_then(Value::as_str).map(str::to_string),
                    None => None,
                })
                .filter(|m| *m != message)
                .collect()
        })
        .unwrap_or_default();
    let mut text = if code.is_empty() {
        message
    } else {
        format!("{code}: {message}")
    };
    if !details.is_empty() {
        text.push_str(&format!(" ({})", details.join("; ")));
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_error_bodies_become_readable_reasons() {
        let body = r#"{"error":{"code":"IW/123","message":{"lang":"en","value":"Technical object is invalid"},
            "innererror":{"errordetails":[{"code":"IW/123","message":"Technical object is invalid","severity":"error"},
            {"code":"IW/7","message":"Equipment 99 does not exist","severity":"error"}]}}}"#;
        assert_eq!(
            error_message(body).as_deref(),
            Some("IW/123: Technical object is invalid (Equipment 99 does not exist)")
        );
        assert_eq!(
            error_message(r#"{"error":{"message":"plain"}}"#).as_deref(),
            Some("plain")
        );
        assert_eq!(error_message("<html>"), None);
    }
}
