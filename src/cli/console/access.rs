//! Who may use the console: whoever has the URL it printed, from this machine, in a page the
//! console served.
//!
//! Rules:
//! - the console listens on 127.0.0.1 only, and answers only requests whose `Host` is
//!   `127.0.0.1:PORT` or `localhost:PORT` (a page of another site cannot reach it through a DNS
//!   name rebound to 127.0.0.1);
//! - the printed URL carries a random access token (32 bytes from the operating system, as hex);
//!   opening it sets the token as an `HttpOnly`, `SameSite=Strict` cookie and leaves the token out
//!   of the address bar; every request without the token (cookie or `?token=`) is answered 401;
//! - a state-changing request is a POST whose `Origin` (or, without one, `Referer`) is the
//!   console's own origin, and whose form carries the token too; anything else is 403 and
//!   changes nothing;
//! - tokens are compared in constant time.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use subtle::ConstantTimeEq;

/// The cookie that carries the token.
pub const COOKIE: &str = "e2b_console";

/// The console's access token and where it is served.
#[derive(Clone)]
pub struct Access {
    token: String,
    port: u16,
}

impl Access {
    /// A fresh random token for a console on `port`.
    pub fn new(port: u16) -> Result<Access, String> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|e| format!("no randomness from the operating system: {e}"))?;
        let token = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Access { token, port })
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// The URL to open.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/?token={}", self.port, self.token)
    }

    /// Whether `candidate` is the token.
    pub fn is_token(&self, candidate: &str) -> bool {
        candidate.as_bytes().ct_eq(self.token.as_bytes()).into()
    }

    fn origins(&self) -> [String; 2] {
        [
            format!("http://127.0.0.1:{}", self.port),
            format!("http://localhost:{}", self.port),
        ]
    }

    fn host_is_ours(&self, headers: &HeaderMap) -> bool {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        self.origins()
            .iter()
            .any(|o| o.trim_start_matches("http://") == host)
    }

    /// A POST from a page of the console: its `Origin`, else its `Referer`, is ours.
    fn same_origin(&self, headers: &HeaderMap) -> bool {
        let ours = self.origins();
        let header_text = |name| headers.get(name).and_then(|h| h.to_str().ok());
        match (header_text(header::ORIGIN), header_text(header::REFERER)) {
            (Some(origin), _) => ours.iter().any(|o| o == origin),
            (None, Some(referer)) => ours
                .iter()
                .any(|o| referer == o || referer.starts_with(&format!("{o}/"))),
            (None, None) => false,
        }
    }

    fn cookie_token<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|h| h.to_str().ok())
            .flat_map(|h| h.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == COOKIE)
            .map(|(_, value)| value)
    }
}

fn query_token(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == "token")
        .map(|(_, value)| value.to_string())
}

/// The path and query without `token`.
fn without_token(path: &str, query: Option<&str>) -> String {
    let rest: Vec<&str> = query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with("token="))
        .collect();
    if rest.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", rest.join("&"))
    }
}

fn refused(status: StatusCode, why: &str) -> Response {
    let page = format!(
        "<!doctype html><meta charset=utf-8><title>e2b console: {}</title><h1>{}</h1><p>{why}</p>",
        status.as_u16(),
        status.canonical_reason().unwrap_or("refused")
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page,
    )
        .into_response()
}

/// The guard every request passes.
pub async fn guard(State(access): State<Access>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    if !access.host_is_ours(headers) {
        return refused(
            StatusCode::FORBIDDEN,
            "the console answers only at 127.0.0.1 or localhost, on its own port",
        );
    }
    let uri = request.uri().clone();
    let from_query = query_token(uri.query());
    let by_cookie = access
        .cookie_token(headers)
        .is_some_and(|t| access.is_token(t));
    let by_query = from_query.as_deref().is_some_and(|t| access.is_token(t));
    if !by_cookie && !by_query {
        return refused(
            StatusCode::UNAUTHORIZED,
            "open the URL `e2b console` printed (it carries the access token)",
        );
    }
    if request.method() == Method::POST && !access.same_origin(headers) {
        return refused(
            StatusCode::FORBIDDEN,
            "a change must come from a page of this console (its Origin); nothing was changed",
        );
    }
    if request.method() == Method::GET && by_query {
        // Keep the token out of the address bar, the history and any Referer.
        let target = without_token(uri.path(), uri.query());
        let cookie = format!(
            "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/",
            access.token()
        );
        let mut response = Redirect::to(&target).into_response();
        if let Ok(value) = cookie.parse() {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
        return response;
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            if let Ok(v) = value.parse() {
                h.insert(*name, v);
            }
        }
        h
    }

    #[test]
    fn only_our_own_origin_may_change_things() {
        let access = Access::new(8080).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(access.token().len(), 64);
        assert!(access.same_origin(&headers(&[("origin", "http://127.0.0.1:8080")])));
        assert!(access.same_origin(&headers(&[("referer", "http://localhost:8080/failures")])));
        assert!(!access.same_origin(&headers(&[("origin", "http://evil.example")])));
        assert!(!access.same_origin(&headers(&[("origin", "http://127.0.0.1:8081")])));
        assert!(!access.same_origin(&headers(&[(
            "referer",
            "http://127.0.0.1:8080.evil.example/"
        )])));
        assert!(!access.same_origin(&HeaderMap::new()));
        assert!(access.host_is_ours(&headers(&[("host", "localhost:8080")])));
        assert!(!access.host_is_ours(&headers(&[("host", "rebound.example:8080")])));
    }

    #[test]
    fn the_token_is_read_from_the_cookie_and_left_out_of_addresses() {
        let access = Access::new(1).unwrap_or_else(|e| panic!("{e}"));
        let cookie = format!("a=b; {COOKIE}={}; c=d", access.token());
        let h = headers(&[("cookie", &cookie)]);
        assert!(access.cookie_token(&h).is_some_and(|t| access.is_token(t)));
        assert!(!access.is_token("nope"));
        assert_eq!(
            without_token("/episodes", Some("token=x&page=2")),
            "/episodes?page=2"
        );
        assert_eq!(without_token("/", Some("token=x")), "/");
        assert_eq!(
            query_token(Some("page=1&token=abc")).as_deref(),
            Some("abc")
        );
    }
}
