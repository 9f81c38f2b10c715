//! Outbound HTTP for jobs: a small blocking client over `wasi:http`.
//!
//! [`get`] and [`post`] cover most jobs; [`Request`] adds methods, headers, a body and a
//! timeout. Every call blocks until the whole response body has been read, and returns a
//! [`Response`] for any status: redirects are not followed, a 3xx comes back as it is.
//!
//! ```no_run
//! use sandcron_guest::{JobError, http};
//!
//! # fn run() -> Result<(), JobError> {
//! let resp = http::get("https://api.example.com/status")?;
//! if !resp.is_success() {
//!     return Err(JobError::retryable(format!("status {}", resp.status)));
//! }
//! let status: serde_json::Value = resp.json()?;
//! # Ok(()) }
//! ```
//!
//! # What the host allows
//!
//! A job reaches only the origins its manifest lists in `[capabilities] allowed_hosts`
//! (`"https://api.example.com"`, `"http://127.0.0.1:7070"`, ...). Anything else fails with
//! the `wasi:http` error-code `HTTP-request-denied` ([`HttpError::is_denied`]). Failures
//! keep `wasi:http`'s error-code name in their message (`connection-refused`,
//! `connection-timeout`, `HTTP-response-body-size`, ...), so they read the same as the host's
//! logs. Plain TCP (`std::net::TcpStream`) goes through `wasi:sockets` under the same
//! allowlist (`tcp://HOST:PORT` entries) and is refused with `access-denied`.
//!
//! # Design
//!
//! This is a thin layer of our own over the raw bindings of the `wasip2` crate, not `wstd`'s
//! async client: a job is one synchronous function, and `wasi:http` already offers blocking
//! as `pollable.block`, so an executor (and `block_on` around every call) would add code and
//! size for nothing. `wasip2` is the Bytecode Alliance's pregenerated WASI 0.2 bindings (no
//! proc macro, nothing to build), so the cost is one more small crate. The order of the
//! `wasi:http` calls matters, and lives in one private file (`transport.rs`).
//!
//! Built natively (for a job's own unit tests) the client never touches the network:
//! [`Request::send`] checks the URL and headers as it would in a host, then returns an
//! [`HttpError`] saying it is a native build. It does not panic.

mod error;
mod request;
mod response;
mod transport;
mod url;

pub use error::HttpError;
pub use request::{Method, Request};
pub use response::Response;

/// `GET url`, reading the whole body.
pub fn get(url: &str) -> Result<Response, HttpError> {
    Request::get(url).send()
}

/// `POST url` with `body` as `content_type`, reading the whole response body.
pub fn post(
    url: &str,
    content_type: &str,
    body: impl Into<Vec<u8>>,
) -> Result<Response, HttpError> {
    Request::new(Method::Post, url).header("content-type", content_type).body(body).send()
}
