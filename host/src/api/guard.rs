//! Requests a web page could forge. Without a token (the loopback default) the API trusts
//! whoever can reach it, and a page the operator visits can: it may send writes to
//! 127.0.0.1 (cross-site request forgery), and under a name of its own that it rebinds to
//! 127.0.0.1 it may read the answers too (DNS rebinding). Three checks close both:
//!
//! - **Host** ([`same_site`]): the request must name this host — `localhost`, a loopback
//!   address, the address the connection came in on, or a name given with
//!   `serve --api-host` — else 421 `host_not_allowed`. A rebinding page's requests carry
//!   its own name, since to the browser it is still that site.
//! - **Origin** ([`same_site`]): a write that carries an `Origin` must come from the API's
//!   own origin (the `Host` it was sent to), else 403 `cross_origin`. Browsers send
//!   `Origin` with every cross-origin write; the CLI and curl send none.
//! - **Content type** ([`json_writes`]): a write under `/v1/` must say `application/json`,
//!   else 415. A page can send that type to another origin only after a CORS preflight,
//!   which this API never grants, so this holds even in a browser that leaves `Origin` out.
//!
//! Health probes are left out of the Host check: probers send whatever name they were set
//! up with (the kubelet sends the pod's IP, a load balancer a service name), a refused
//! liveness probe restarts the host, and the probes reveal nothing but "ok" and a job count.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::extract::{Request, State};
use axum::http::uri::Authority;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{ApiError, AppState};

/// A name the API answers to besides the loopback ones (`serve --api-host`): a host name,
/// lowercase without a trailing dot, or an IP address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiHostName(String);

impl FromStr for ApiHostName {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match split_authority(text) {
            Some((name, None)) if !name.is_empty() => Ok(ApiHostName(name)),
            _ => Err(format!(
                "{text:?} is not a host name or IP address (give it without scheme, port or path, \
                 e.g. sandcron.internal or 10.0.0.5)"
            )),
        }
    }
}

/// The local address of the connection a request came in on (set by the server).
#[derive(Clone, Copy, Debug)]
pub struct ConnectedTo(pub SocketAddr);

/// Middleware: 421 unless the request names this host; 403 for a write from another
/// site's page.
pub async fn same_site(State(context): AppState, request: Request, next: Next) -> Response {
    let local = request.extensions().get::<ConnectedTo>().map(|c| c.0.ip());
    let host = request.headers().get(header::HOST).map(|h| String::from_utf8_lossy(h.as_bytes()));
    // An absolute request target (`GET http://name/ HTTP/1.1`) names the host too.
    let named = host.as_deref().into_iter().chain(request.uri().authority().map(Authority::as_str));
    for name in named {
        if !names_this_host(name, local, &context.api_hosts) {
            return not_this_host(name);
        }
    }
    if is_write(request.method())
        && let Some(origin) = request.headers().get(header::ORIGIN)
    {
        let origin = String::from_utf8_lossy(origin.as_bytes());
        if !host.as_deref().is_some_and(|host| same_origin(&origin, host)) {
            return cross_origin(&origin, host.as_deref());
        }
    }
    next.run(request).await
}

/// Middleware for the write routes: 415 unless the body is declared `application/json`.
pub async fn json_writes(request: Request, next: Next) -> Response {
    if !is_json(request.headers()) {
        let given = request.headers().get(header::CONTENT_TYPE);
        let given = given.map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        return ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send writes with `Content-Type: application/json` (an empty body too)",
        )
        .with_details(json!({ "content_type": given }))
        .into_response();
    }
    next.run(request).await
}

fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// A `Host` value or an origin's authority as (lowercase name without brackets or trailing
/// dot, port); `None` when it is not one.
fn split_authority(text: &str) -> Option<(String, Option<u16>)> {
    if text.contains(['@', '/', '?', '#']) {
        return None;
    }
    let authority = Authority::from_str(text).ok()?;
    let name = authority.host().trim_start_matches('[').trim_end_matches(']');
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    Some((name, authority.port_u16()))
}

/// Whether `authority` (a `Host` value, port optional) names this host.
fn names_this_host(authority: &str, local: Option<IpAddr>, configured: &[ApiHostName]) -> bool {
    let Some((name, _port)) = split_authority(authority) else { return false };
    if name == "localhost" || configured.iter().any(|c| c.0 == name) {
        return true;
    }
    let Ok(ip) = name.parse::<IpAddr>() else { return false };
    let ip = ip.to_canonical();
    // An address cannot be rebound: a page at http://ADDRESS/ came from whoever has it.
    ip.is_loopback()
        || local.is_some_and(|local| local.to_canonical() == ip)
        || configured.iter().any(|c| c.0.parse::<IpAddr>().is_ok_and(|c| c.to_canonical() == ip))
}

/// Whether `origin` (`scheme://authority`) is the origin of a page served from `host`.
/// Ports compare with the scheme's default filled in, so a TLS proxy in front keeps working.
fn same_origin(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else { return false };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return false,
    };
    match (split_authority(authority), split_authority(host)) {
        (Some((origin_name, origin_port)), Some((host_name, host_port))) => {
            origin_name == host_name
                && origin_port.unwrap_or(default_port) == host_port.unwrap_or(default_port)
        }
        _ => false,
    }
}

fn not_this_host(name: &str) -> Response {
    let bare = split_authority(name).map_or_else(|| name.to_string(), |(bare, _)| bare);
    ApiError::new(
        StatusCode::MISDIRECTED_REQUEST,
        "host_not_allowed",
        format!(
            "this host does not answer to the name {name:?}: use localhost or a loopback \
             address, or start `sandcron serve` with `--api-host {bare}` if that name is meant"
        ),
    )
    .with_details(json!({ "host": name }))
    .into_response()
}

fn cross_origin(origin: &str, host: Option<&str>) -> Response {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "cross_origin",
        format!(
            "a write from a page at {origin} is refused: writes come from this host's own \
             pages or from clients that send no Origin"
        ),
    )
    .with_details(json!({ "origin": origin, "host": host }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(authority: &str) -> bool {
        let configured = ["sandcron.internal".parse().unwrap(), "10.1.2.3".parse().unwrap()];
        let local = Some("192.168.7.8".parse().unwrap());
        names_this_host(authority, local, &configured)
    }

    #[test]
    fn loopback_local_and_configured_names_are_this_host() {
        for good in [
            "localhost",
            "localhost:7070",
            "LOCALHOST.",
            "127.0.0.1:7070",
            "127.45.6.7",
            "[::1]:7070",
            "[::ffff:127.0.0.1]",
            "192.168.7.8:7070",
            "sandcron.internal:443",
            "Sandcron.Internal.",
            "10.1.2.3",
        ] {
            assert!(names(good), "{good}");
        }
        for bad in [
            "rebind.evil.example",
            "rebind.evil.example:7070",
            "localhost.evil.example",
            "sandcron.internal.evil.example",
            "127.0.0.1.nip.io",
            "0.0.0.0:7070",
            "192.168.7.9",
            "[::2]",
            "user@localhost",
            "",
        ] {
            assert!(!names(bad), "{bad}");
        }
    }

    #[test]
    fn only_the_origin_of_the_host_itself_is_the_same_origin() {
        assert!(same_origin("http://127.0.0.1:7070", "127.0.0.1:7070"));
        assert!(same_origin("http://LocalHost:7070", "localhost:7070"));
        assert!(same_origin("https://sandcron.internal", "sandcron.internal"));
        assert!(same_origin("http://sandcron.internal", "sandcron.internal:80"));
        assert!(!same_origin("https://evil.example", "127.0.0.1:7070"));
        assert!(!same_origin("http://127.0.0.1:1", "127.0.0.1:7070"));
        assert!(!same_origin("http://localhost:7070", "127.0.0.1:7070"));
        assert!(!same_origin("null", "127.0.0.1:7070"));
        assert!(!same_origin("file://", "127.0.0.1:7070"));
        assert!(!same_origin("http://127.0.0.1:7070/path", "127.0.0.1:7070"));
    }

    #[test]
    fn json_means_application_json_with_any_parameters() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            is_json(&headers)
        };
        assert!(with("application/json") && with("Application/JSON; charset=utf-8"));
        assert!(!with("text/plain") && !with("application/jsonx") && !with("application/json-seq"));
        assert!(!with("multipart/form-data; boundary=x") && !is_json(&HeaderMap::new()));
    }

    #[test]
    fn api_host_names_are_bare_names_or_addresses() {
        assert_eq!("Sandcron.Internal.".parse(), Ok(ApiHostName("sandcron.internal".into())));
        assert_eq!("[::1]".parse(), Ok(ApiHostName("::1".into())));
        for bad in ["", "http://x", "x:7070", "x/y", "a@b"] {
            assert!(bad.parse::<ApiHostName>().is_err(), "{bad}");
        }
    }
}
