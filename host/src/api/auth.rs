//! The bearer token (O6). With a token configured, every `/v1/` call and `/metrics` must
//! send `Authorization: Bearer <token>`; the dashboard's browser session instead holds an
//! HttpOnly, SameSite=Strict cookie set by its login form (so no other site can make the
//! browser use it), which ends after a while and never holds the token itself (see
//! `session`). Without a token (loopback bind), everything is open.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;

use super::ApiContext;
use super::error::unauthorized;
use super::session::{self, COOKIE};

/// Compares the SHA-256 digests of both sides without an early exit, so response timing
/// reveals neither a matching prefix nor the token's length.
fn same(a: &[u8], b: &[u8]) -> bool {
    use sha2::Digest;
    let (a, b) = (sha2::Sha256::digest(a), sha2::Sha256::digest(b));
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The credentials of an `Authorization: Bearer ...` header; the scheme is
/// case-insensitive (RFC 9110), so `bearer` and `BEARER` work too.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim_start();
    let (scheme, credentials) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| credentials.trim())
}

/// Whether `given` is the configured token (false when none is configured).
pub fn is_token(context: &ApiContext, given: &str) -> bool {
    context.token.as_deref().is_some_and(|token| same(given.as_bytes(), token.as_bytes()))
}

fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// Whether the request carries the token (always true when none is configured).
pub fn authorized(context: &ApiContext, headers: &HeaderMap) -> bool {
    let Some(token) = context.token.as_deref() else { return true };
    let by_bearer = bearer(headers).is_some_and(|given| is_token(context, given));
    let by_cookie = cookie_token(headers)
        .is_some_and(|given| session::is_valid(token, given, std::time::SystemTime::now()));
    by_bearer || by_cookie
}

/// Middleware: 401 in the error shape unless the request carries the token.
pub async fn require_token(
    State(context): State<Arc<ApiContext>>,
    request: Request,
    next: Next,
) -> Response {
    if authorized(&context, request.headers()) { next.run(request).await } else { unauthorized() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "a=1; sandcron_token=s3cret; b=2".parse().unwrap());
        assert_eq!(cookie_token(&headers), Some("s3cret"));
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for value in ["Bearer t0k", "bearer t0k", "BEARER  t0k "] {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, value.parse().unwrap());
            assert_eq!(bearer(&headers), Some("t0k"), "{value}");
        }
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Basic t0k".parse().unwrap());
        assert_eq!(bearer(&headers), None);
    }

    #[test]
    fn comparison_needs_equal_length_and_bytes() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
    }
}
