//! Request input in the API's error shape: a JSON body or query string that does not parse
//! is a 400 `invalid_argument` naming what was wrong, never axum's plain-text rejection.

use axum::body::Bytes;
use axum::http::Uri;
use serde::de::DeserializeOwned;

use super::ApiError;

/// Parses an optional JSON body: an empty body is `T::default()`.
pub fn json_body<T: DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|err| ApiError::invalid("body", format!("the JSON body is not valid: {err}")))
}

/// Parses the query string.
pub fn query<T: DeserializeOwned>(uri: &Uri) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|err| ApiError::invalid("query", format!("bad query string: {}", err.body_text())))
}

/// Parses an RFC 3339 instant to ms since the epoch.
pub fn instant(field: &str, text: &str) -> Result<i64, ApiError> {
    chrono::DateTime::parse_from_rfc3339(text).map(|t| t.timestamp_millis()).map_err(|err| {
        ApiError::invalid(
            field,
            format!("`{field}` is not an RFC 3339 time (e.g. 2026-11-23T04:00:00Z): {err}"),
        )
    })
}
