//! A small JSON-over-HTTP client for the API tests (ureq, errors as values).

use serde_json::Value;

/// What one request got back.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub content_type: String,
    pub headers: ureq::http::HeaderMap,
}

/// Sends `method path` to `base` with an optional JSON body, bearer token and extra
/// headers; the body is parsed as JSON when it is JSON (else `Value::Null`).
pub fn request(
    base: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> Reply {
    send(base, method, path, body.map(Value::to_string), token, headers)
}

/// POSTs `body` as is (e.g. malformed JSON) with a JSON content type.
pub fn post_raw(base: &str, path: &str, body: &str) -> Reply {
    send(base, "POST", path, Some(body.to_string()), None, &[])
}

fn send(
    base: &str,
    method: &str,
    path: &str,
    body: Option<String>,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> Reply {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(30)))
            .build(),
    );
    let url = format!("{base}{path}");
    let mut builder = ureq::http::Request::builder().method(method).uri(&url);
    if let Some(token) = token {
        builder = builder.header("Authorization", format!("Bearer {token}"));
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    if body.is_some() {
        builder = builder.header("Content-Type", "application/json");
    }
    let request = builder.body(body.unwrap_or_default()).expect("a valid request");
    let mut response = agent.run(request).unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let headers = response.headers().clone();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply { status, body, text, content_type, headers }
}

pub fn get(base: &str, path: &str) -> Reply {
    request(base, "GET", path, None, None, &[])
}

pub fn post(base: &str, path: &str, body: &Value) -> Reply {
    request(base, "POST", path, Some(body), None, &[])
}
