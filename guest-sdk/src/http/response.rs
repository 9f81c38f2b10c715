//! [`Response`]: status, headers and the whole body, read before `send` returns.

use serde::de::DeserializeOwned;

use super::Method;
use super::error::{HttpError, Kind};

/// A response, with its body read to the end.
///
/// Any status is a response, 4xx, 5xx and 3xx included (redirects are not followed): check
/// [`status`](Response::status) or [`is_success`](Response::is_success).
#[derive(Debug, Clone)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// Names as the host gives them (lowercase from wasmtime); values decoded as lossy
    /// UTF-8, since a job compares and logs header values as text.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The request it answers, so that `text` and `json` errors can name it.
    method: Method,
    url: String,
}

impl Response {
    pub(crate) fn new(
        method: Method,
        url: &str,
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Self {
        Response { status, headers, body, method, url: url.to_owned() }
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of header `name` (compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every header as `(name, value)`, in the order received; a repeated header appears
    /// once per value.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The body's bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as UTF-8 text; an error if it is not UTF-8.
    pub fn text(&self) -> Result<String, HttpError> {
        std::str::from_utf8(&self.body)
            .map(str::to_owned)
            .map_err(|source| self.decode_error("UTF-8 text", source))
    }

    /// The body decoded as JSON into `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body)
            .map_err(|source| self.decode_error("JSON of the requested type", source))
    }

    fn decode_error(
        &self,
        what: &'static str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> HttpError {
        HttpError::new(self.method, &self.url, Kind::Decode { what, source: Box::new(source) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &[u8]) -> Response {
        let headers = vec![
            ("content-type".into(), "application/json".into()),
            ("set-cookie".into(), "a=1".into()),
            ("set-cookie".into(), "b=2".into()),
        ];
        Response::new(Method::Get, "http://h/data", status, headers, body.to_vec())
    }

    #[test]
    fn headers_are_found_case_insensitively() {
        let resp = response(200, b"");
        assert_eq!(resp.header("Content-Type"), Some("application/json"));
        assert_eq!(resp.header("set-cookie"), Some("a=1"));
        assert_eq!(resp.header("x-missing"), None);
        assert_eq!(resp.headers().filter(|(n, _)| *n == "set-cookie").count(), 2);
    }

    #[test]
    fn text_and_json_decode_the_body() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Data {
            n: u32,
        }
        let resp = response(200, br#"{"n": 7}"#);
        assert!(resp.is_success());
        assert_eq!(resp.text().unwrap(), r#"{"n": 7}"#);
        assert_eq!(resp.json::<Data>().unwrap(), Data { n: 7 });
        assert_eq!(resp.body().len(), 8);
    }

    #[test]
    fn decode_errors_name_the_request() {
        let resp = response(302, b"\xff\xfe");
        assert!(!resp.is_success());
        let err = resp.text().unwrap_err();
        assert_eq!(err.to_string(), "GET http://h/data: response body is not UTF-8 text");
        let err = resp.json::<u32>().unwrap_err();
        assert!(err.to_string().ends_with("not JSON of the requested type"), "{err}");
    }
}
