//! [`HttpError`]: why a request got no response, or why its body did not decode.
//!
//! Failures reported by the host keep `wasi:http`'s own `error-code` name, spelled as the
//! WIT spells it (`HTTP-request-denied`, `connection-refused`, ...): that name is what the
//! host's logs and documentation use, so a job's error message can be searched for there.
//! The variant is translated to a name (and a detail) as soon as it arrives, so that the
//! error itself is plain data, testable natively and `Send`.

use std::error::Error;
use std::fmt;

use wasip2::http::types::ErrorCode;

use super::Method;

/// A request failed: it was refused, got no response, or its response body did not decode.
///
/// `Display` gives the method, the URL and what went wrong, with `wasi:http`'s error-code
/// name when the host reported one, e.g. `GET http://example.com/: HTTP-request-denied`.
/// The URL is shown as given: put credentials in headers, not in URLs.
///
/// With `?` it becomes a retryable [`JobError`](crate::JobError) (through `JobError`'s
/// `From` for every `std::error::Error`). A refusal will not pass on a retry; use
/// `.map_err(JobError::fatal)` where that matters, e.g. when [`HttpError::is_denied`].
#[derive(Debug)]
pub struct HttpError {
    method: Method,
    url: String,
    kind: Kind,
}

/// What went wrong, without the request it happened to.
#[derive(Debug)]
pub(crate) enum Kind {
    /// A `wasi:http` error-code: from the host, or found by the SDK before asking it (an
    /// unusable URL is `HTTP-request-URI-invalid`).
    Code { name: &'static str, detail: Option<String> },
    /// A request header was refused; `error` is the `wasi:http` `header-error` name.
    Header { name: String, error: &'static str },
    /// A body stream failed and the host gave no error-code for it.
    Stream(String),
    /// The response body is not what `text` or `json` asked for.
    Decode { what: &'static str, source: Box<dyn Error + Send + Sync> },
    /// Not compiled for a host: there is no `wasi:http` to call.
    Native,
}

impl Kind {
    pub(crate) fn code(name: &'static str, detail: impl Into<Option<String>>) -> Self {
        Kind::Code { name, detail: detail.into() }
    }

    /// The SDK's own misuse of a resource; `wasi:http` calls that `internal-error`.
    pub(crate) fn internal(detail: &str) -> Self {
        Kind::code("internal-error", detail.to_owned())
    }

    pub(crate) fn from_wasi(code: &ErrorCode) -> Self {
        let (name, detail) = describe(code);
        Kind::Code { name, detail }
    }
}

impl HttpError {
    pub(crate) fn new(method: Method, url: &str, kind: Kind) -> Self {
        HttpError { method, url: url.to_owned(), kind }
    }

    /// The request's method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The request's URL, as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The `wasi:http` error-code name (`"HTTP-request-denied"`, `"connection-refused"`,
    /// `"HTTP-request-URI-invalid"`, ...) when the failure is one; `None` for a refused
    /// header, a body that did not decode, or a native build.
    pub fn code(&self) -> Option<&'static str> {
        match self.kind {
            Kind::Code { name, .. } => Some(name),
            _ => None,
        }
    }

    /// Whether the host refused the request: its destination is not in the manifest's
    /// `[capabilities] allowed_hosts`. Retrying will not help.
    pub fn is_denied(&self) -> bool {
        self.code() == Some("HTTP-request-denied")
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: ", self.method, self.url)?;
        match &self.kind {
            Kind::Code { name, detail: None } => f.write_str(name),
            Kind::Code { name, detail: Some(detail) } => write!(f, "{name} ({detail})"),
            Kind::Header { name, error } => write!(f, "header `{name}` refused: {error}"),
            Kind::Stream(message) => write!(f, "body stream failed: {message}"),
            Kind::Decode { what, .. } => write!(f, "response body is not {what}"),
            Kind::Native => f.write_str(
                "outbound HTTP needs the sandcron host (wasi:http); this is a native build",
            ),
        }
    }
}

impl Error for HttpError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match &self.kind {
            Kind::Decode { source, .. } => Some(&**source),
            _ => None,
        }
    }
}

/// The WIT name of a `wasi:http` error-code, and its payload as text when it has one.
fn describe(code: &ErrorCode) -> (&'static str, Option<String>) {
    use ErrorCode as E;
    let size = |n: &Option<u64>| n.map(|n| format!("size {n}"));
    let field = |p: &wasip2::http::types::FieldSizePayload| {
        let parts = [
            p.field_name.as_ref().map(|name| format!("field {name}")),
            p.field_size.map(|n| format!("size {n}")),
        ];
        join(parts)
    };
    match code {
        E::DnsTimeout => ("DNS-timeout", None),
        E::DnsError(p) => (
            "DNS-error",
            join([
                p.rcode.as_ref().map(|r| format!("rcode {r}")),
                p.info_code.map(|n| format!("info-code {n}")),
            ]),
        ),
        E::DestinationNotFound => ("destination-not-found", None),
        E::DestinationUnavailable => ("destination-unavailable", None),
        E::DestinationIpProhibited => ("destination-IP-prohibited", None),
        E::DestinationIpUnroutable => ("destination-IP-unroutable", None),
        E::ConnectionRefused => ("connection-refused", None),
        E::ConnectionTerminated => ("connection-terminated", None),
        E::ConnectionTimeout => ("connection-timeout", None),
        E::ConnectionReadTimeout => ("connection-read-timeout", None),
        E::ConnectionWriteTimeout => ("connection-write-timeout", None),
        E::ConnectionLimitReached => ("connection-limit-reached", None),
        E::TlsProtocolError => ("TLS-protocol-error", None),
        E::TlsCertificateError => ("TLS-certificate-error", None),
        E::TlsAlertReceived(p) => (
            "TLS-alert-received",
            join([
                p.alert_id.map(|id| format!("alert {id}")),
                p.alert_message.as_ref().map(|m| m.to_owned()),
            ]),
        ),
        E::HttpRequestDenied => ("HTTP-request-denied", None),
        E::HttpRequestLengthRequired => ("HTTP-request-length-required", None),
        E::HttpRequestBodySize(n) => ("HTTP-request-body-size", size(n)),
        E::HttpRequestMethodInvalid => ("HTTP-request-method-invalid", None),
        E::HttpRequestUriInvalid => ("HTTP-request-URI-invalid", None),
        E::HttpRequestUriTooLong => ("HTTP-request-URI-too-long", None),
        E::HttpRequestHeaderSectionSize(n) => {
            ("HTTP-request-header-section-size", size(&n.map(u64::from)))
        }
        E::HttpRequestHeaderSize(p) => ("HTTP-request-header-size", p.as_ref().and_then(field)),
        E::HttpRequestTrailerSectionSize(n) => {
            ("HTTP-request-trailer-section-size", size(&n.map(u64::from)))
        }
        E::HttpRequestTrailerSize(p) => ("HTTP-request-trailer-size", field(p)),
        E::HttpResponseIncomplete => ("HTTP-response-incomplete", None),
        E::HttpResponseHeaderSectionSize(n) => {
            ("HTTP-response-header-section-size", size(&n.map(u64::from)))
        }
        E::HttpResponseHeaderSize(p) => ("HTTP-response-header-size", field(p)),
        E::HttpResponseBodySize(n) => ("HTTP-response-body-size", size(n)),
        E::HttpResponseTrailerSectionSize(n) => {
            ("HTTP-response-trailer-section-size", size(&n.map(u64::from)))
        }
        E::HttpResponseTrailerSize(p) => ("HTTP-response-trailer-size", field(p)),
        E::HttpResponseTransferCoding(c) => ("HTTP-response-transfer-coding", c.clone()),
        E::HttpResponseContentCoding(c) => ("HTTP-response-content-coding", c.clone()),
        E::HttpResponseTimeout => ("HTTP-response-timeout", None),
        E::HttpUpgradeFailed => ("HTTP-upgrade-failed", None),
        E::HttpProtocolError => ("HTTP-protocol-error", None),
        E::LoopDetected => ("loop-detected", None),
        E::ConfigurationError => ("configuration-error", None),
        E::InternalError(message) => ("internal-error", message.clone()),
    }
}

/// The present parts, comma-separated; `None` when there are none.
fn join<const N: usize>(parts: [Option<String>; N]) -> Option<String> {
    let parts: Vec<String> = parts.into_iter().flatten().collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::JobError;
    use wasip2::http::types::{DnsErrorPayload, FieldSizePayload};

    fn error(code: ErrorCode) -> HttpError {
        HttpError::new(Method::Get, "http://example.com/x", Kind::from_wasi(&code))
    }

    #[test]
    fn display_has_method_url_and_wasi_name() {
        for (code, name) in [
            (ErrorCode::HttpRequestDenied, "HTTP-request-denied"),
            (ErrorCode::ConnectionRefused, "connection-refused"),
            (ErrorCode::ConnectionTimeout, "connection-timeout"),
            (ErrorCode::HttpResponseBodySize(None), "HTTP-response-body-size"),
            (ErrorCode::DestinationIpProhibited, "destination-IP-prohibited"),
            (ErrorCode::HttpRequestUriInvalid, "HTTP-request-URI-invalid"),
        ] {
            let err = error(code);
            assert_eq!(err.to_string(), format!("GET http://example.com/x: {name}"));
            assert_eq!(err.code(), Some(name));
        }
    }

    #[test]
    fn payloads_become_details() {
        let body = error(ErrorCode::HttpResponseBodySize(Some(1 << 20)));
        assert_eq!(
            body.to_string(),
            "GET http://example.com/x: HTTP-response-body-size (size 1048576)"
        );
        let dns = error(ErrorCode::DnsError(DnsErrorPayload {
            rcode: Some("NXDOMAIN".into()),
            info_code: None,
        }));
        assert!(dns.to_string().ends_with(": DNS-error (rcode NXDOMAIN)"), "{dns}");
        let header = error(ErrorCode::HttpResponseHeaderSize(FieldSizePayload {
            field_name: Some("set-cookie".into()),
            field_size: Some(9000),
        }));
        assert!(header.to_string().ends_with("(field set-cookie, size 9000)"), "{header}");
        let internal = error(ErrorCode::InternalError(None));
        assert!(internal.to_string().ends_with(": internal-error"), "{internal}");
    }

    #[test]
    fn denied_is_recognised_and_converts_to_retryable_job_error() {
        let err = error(ErrorCode::HttpRequestDenied);
        assert!(err.is_denied());
        assert!(!error(ErrorCode::ConnectionRefused).is_denied());
        let job: JobError = err.into();
        assert!(job.is_retryable());
        assert_eq!(job.message(), "GET http://example.com/x: HTTP-request-denied");
    }

    #[test]
    fn decode_error_keeps_its_cause_as_source() {
        let source = serde_json::from_slice::<u32>(b"nope").unwrap_err();
        let kind = Kind::Decode { what: "JSON of the requested type", source: Box::new(source) };
        let err = HttpError::new(Method::Post, "http://h/", kind);
        assert_eq!(
            err.to_string(),
            "POST http://h/: response body is not JSON of the requested type"
        );
        assert_eq!(err.code(), None);
        let job: JobError = err.into();
        assert!(job.message().contains("expected ident"), "{job}");
    }

    #[test]
    fn header_and_native_errors_say_so() {
        let header = HttpError::new(
            Method::Put,
            "http://h/",
            Kind::Header { name: "host".into(), error: "forbidden" },
        );
        assert_eq!(header.to_string(), "PUT http://h/: header `host` refused: forbidden");
        let native = HttpError::new(Method::Get, "http://h/", Kind::Native);
        assert!(native.to_string().contains("native build"), "{native}");
    }
}
