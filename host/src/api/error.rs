//! The API's one error shape (O2): an HTTP status plus a JSON body
//! `{"code": "...", "message": "...", "details": {...}}`, where `code` is stable and
//! machine-readable. Every failure path — handlers, rejected input, unknown routes, wrong
//! methods, missing auth — answers in this shape.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::scheduler::ControlError;
use crate::store::StoreError;

/// An API failure.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code, e.g. `job_not_found`.
    pub code: &'static str,
    /// What went wrong, for a person.
    pub message: String,
    /// Structured context (an object; empty when there is none).
    pub details: Value,
    /// Seconds for a `Retry-After` header (429 and 503 answers).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error without details.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), details: json!({}), retry_after: None }
    }

    /// Adds structured details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// 400 `invalid_argument`, naming the offending field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_argument", message)
            .with_details(json!({ "field": field }))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "code": self.code, "message": self.message, "details": self.details });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        tracing::error!("store error answering an API request: {err}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "store_error", err.to_string())
    }
}

impl From<ControlError> for ApiError {
    fn from(err: ControlError) -> Self {
        let message = err.to_string();
        match err {
            ControlError::NotFound(job) => {
                Self::new(StatusCode::NOT_FOUND, "job_not_found", message)
                    .with_details(json!({ "job": job }))
            }
            ControlError::Paused { job, note } => {
                Self::new(StatusCode::CONFLICT, "job_paused", message)
                    .with_details(json!({ "job": job, "note": note }))
            }
            ControlError::Overlap { job, reason } => {
                Self::new(StatusCode::CONFLICT, "overlap", message)
                    .with_details(json!({ "job": job, "reason": reason.as_str() }))
            }
            ControlError::BadRange(_) => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_range", message)
            }
            ControlError::TooManySlots { count, max } => {
                Self::new(StatusCode::BAD_REQUEST, "too_many_slots", message)
                    .with_details(json!({ "slots": count, "max": max }))
            }
            ControlError::Busy { job, retry_after, .. } => {
                let seconds = retry_after.as_secs().max(1);
                let mut error = Self::new(StatusCode::TOO_MANY_REQUESTS, "busy", message)
                    .with_details(json!({ "job": job, "retry_after_s": seconds }));
                error.retry_after = Some(seconds);
                error
            }
            ControlError::Store(_) => {
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "store_error", message)
            }
            ControlError::Stopped => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", message)
            }
        }
    }
}

/// Rewrites error responses that did not come from [`ApiError`] (axum's own 404, 405,
/// 413, ...) into the one shape, so clients never see a bare text body. HTML is left
/// alone: the dashboard's 401 is its login form, meant for a browser.
pub async fn shape_errors(response: Response) -> Response {
    let status = response.status();
    let is_shaped = response.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes().starts_with(b"application/json") || v.as_bytes().starts_with(b"text/html")
    });
    if !(status.is_client_error() || status.is_server_error()) || is_shaped {
        return response;
    }
    let (code, message) = match status {
        StatusCode::NOT_FOUND => ("not_found", "no such route".to_string()),
        StatusCode::METHOD_NOT_ALLOWED => {
            ("method_not_allowed", "this route does not take that method".to_string())
        }
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "request body too large".into()),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ("unsupported_media_type", "send the body as application/json".into())
        }
        other => ("http_error", other.canonical_reason().unwrap_or("error").to_string()),
    };
    let allow = response.headers().get(header::ALLOW).cloned();
    let mut shaped = ApiError::new(status, code, message).into_response();
    if let Some(allow) = allow {
        shaped.headers_mut().insert(header::ALLOW, allow);
    }
    shaped
}

/// A 401 in the one shape, with the bearer challenge.
pub fn unauthorized() -> Response {
    let mut response = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "this host requires a token: send `Authorization: Bearer <token>`",
    )
    .into_response();
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}
