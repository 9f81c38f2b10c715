//! [`Request`], a builder for anything [`get`](super::get) and [`post`](super::post) do
//! not cover, and [`Method`].
//!
//! Everything the SDK can check without the host (the URL's shape, header syntax) is
//! checked in [`Request::send`] before the first `wasi:http` call, so those mistakes give
//! the same error natively as in a host.

use std::fmt;
use std::time::Duration;

use super::error::{HttpError, Kind};
use super::{Response, transport, url};

/// An HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
    /// `HEAD`: the response has no body.
    Head,
    /// `PATCH`
    Patch,
}

impl Method {
    /// The method as sent: `GET`, `POST`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Head => "HEAD",
            Method::Patch => "PATCH",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request to build up and [`send`](Request::send).
///
/// ```no_run
/// use std::time::Duration;
/// use sandcron_guest::http::{Method, Request};
///
/// # fn run() -> Result<(), sandcron_guest::JobError> {
/// let token = sandcron_guest::secret("API_TOKEN").unwrap_or_default();
/// let resp = Request::new(Method::Put, "https://api.example.com/items/42")
///     .header("authorization", format!("Bearer {token}"))
///     .header("content-type", "application/json")
///     .body(r#"{"done": true}"#)
///     .timeout(Duration::from_secs(5))
///     .send()?;
/// sandcron_guest::log::info(format!("updated: {}", resp.status));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout: Option<Duration>,
}

impl Request {
    /// A request with no headers, an empty body and the host's default timeouts.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Request { method, url: url.into(), headers: Vec::new(), body: Vec::new(), timeout: None }
    }

    /// A `GET` request.
    pub fn get(url: impl Into<String>) -> Self {
        Request::new(Method::Get, url)
    }

    /// Add a header; a repeated name is sent once per value. `host`, `connection` and the
    /// other hop-by-hop headers belong to the host, which refuses them. `content-length`
    /// is set from the body unless given here.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Set the body, replacing any earlier one.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Give up when connecting, or waiting for the response's first byte, takes longer than
    /// `timeout` (each; `wasi:http`'s connect and first-byte timeouts). Without it, only
    /// the run's own `[limits] timeout` bounds the wait.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Send the request and read the whole response body (blocking).
    ///
    /// Redirects are not followed: a 3xx comes back as a [`Response`]. Natively (not
    /// compiled for `wasm32`) a well-formed request fails with an [`HttpError`] saying
    /// so, instead of panicking, so a job's own unit tests can take the error path.
    pub fn send(self) -> Result<Response, HttpError> {
        let fail = |kind| HttpError::new(self.method, &self.url, kind);
        let target = url::split(&self.url)
            .map_err(|why| fail(Kind::code("HTTP-request-URI-invalid", why.to_owned())))?;
        if let Some((name, _)) = self.headers.iter().find(|(n, _)| !url::valid_header_name(n)) {
            return Err(fail(Kind::Header { name: name.clone(), error: "invalid-syntax" }));
        }
        if let Some((name, _)) = self.headers.iter().find(|(_, v)| !url::valid_header_value(v)) {
            return Err(fail(Kind::Header { name: name.clone(), error: "invalid-syntax" }));
        }
        if !cfg!(target_arch = "wasm32") {
            return Err(fail(Kind::Native));
        }
        transport::send(&self, &target).map_err(fail)
    }

    pub(crate) fn method(&self) -> Method {
        self.method
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The headers to send: the caller's, plus `content-length` for a non-empty body.
    ///
    /// Without a length the host would send the body chunked, which many small servers
    /// (and some APIs) do not accept.
    pub(crate) fn wire_headers(&self) -> Vec<(&str, String)> {
        let mut headers: Vec<(&str, String)> =
            self.headers.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
        let has_length = headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-length"));
        if !self.body.is_empty() && !has_length {
            headers.push(("content-length", self.body.len().to_string()));
        }
        headers
    }

    pub(crate) fn body_bytes(&self) -> &[u8] {
        &self.body
    }

    pub(crate) fn timeout_value(&self) -> Option<Duration> {
        self.timeout
    }
}

/// Header values are left out: they are where tokens go.
impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &names)
            .field("body_len", &self.body.len())
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length_is_added_for_a_body_only() {
        let get = Request::get("http://h/");
        assert!(get.wire_headers().is_empty());
        let post = Request::new(Method::Post, "http://h/").header("x-a", "1").body("hello");
        assert_eq!(post.wire_headers(), [("x-a", "1".into()), ("content-length", "5".into())]);
        let own =
            Request::new(Method::Post, "http://h/").header("Content-Length", "5").body("hello");
        assert_eq!(own.wire_headers(), [("Content-Length", "5".into())]);
    }

    #[test]
    fn bad_url_is_uri_invalid_before_any_host_call() {
        let err = Request::get("example.com").send().unwrap_err();
        assert_eq!(err.code(), Some("HTTP-request-URI-invalid"));
        assert_eq!(
            err.to_string(),
            "GET example.com: HTTP-request-URI-invalid (the URL has no http:// or https://)"
        );
    }

    #[test]
    fn bad_header_is_refused_before_any_host_call() {
        let err = Request::get("http://h/").header("x-a", "1\r\nx-b: 2").send().unwrap_err();
        assert_eq!(err.to_string(), "GET http://h/: header `x-a` refused: invalid-syntax");
        let err = Request::get("http://h/").header("bad name", "1").send().unwrap_err();
        assert_eq!(err.code(), None);
    }

    #[test]
    fn native_send_is_an_error_not_a_panic() {
        let err = Request::new(Method::Delete, "http://h/x").send().unwrap_err();
        assert_eq!(err.method(), Method::Delete);
        assert_eq!(err.url(), "http://h/x");
        assert!(err.to_string().contains("native build"), "{err}");
    }

    #[test]
    fn debug_hides_header_values() {
        let req = Request::get("http://h/").header("authorization", "Bearer s3cret");
        let debug = format!("{req:?}");
        assert!(debug.contains("authorization") && !debug.contains("s3cret"), "{debug}");
    }
}
