//! The security headers on every answer (O5, O6). The dashboard shows text a guest wrote
//! (logs, output, reasons); it already reaches the page only as text, and these headers are
//! the second wall should that ever slip:
//!
//! - `Content-Security-Policy`: scripts, styles and API calls from this host only, no
//!   inline script or style, no plugins; forms post only here; no page may frame ours.
//!   The dashboard is plain files with no inline code, so it needs nothing more (the icon
//!   is an empty `data:` URL, hence `img-src data:`).
//! - `X-Frame-Options: DENY` for browsers that predate `frame-ancestors` (clickjacking).
//! - `X-Content-Type-Options: nosniff`: a JSON answer holding guest text is never run as a
//!   script or rendered as a page.
//! - `Referrer-Policy: same-origin`: links out of the dashboard do not reveal its address.
//!   Not `no-referrer`: under it the browser sends `Origin: null` with the sign-in form's
//!   POST, and the cross-site guard (`guard`) rightly refuses a write from no origin.

use axum::http::HeaderValue;
use axum::http::header::{
    CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::response::Response;

/// The dashboard's content security policy.
pub const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
    base-uri 'none'";

/// Response layer: adds the headers to every answer.
pub async fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}
