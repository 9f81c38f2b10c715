//! The OpenAPI document (`host/assets/openapi.json`, served at `/v1/openapi.json`) against
//! the code and the live API (O2): every route the router serves is documented and every
//! documented operation is served; the token guards exactly the operations the document
//! says it does; and schemathesis (scripts/api-conformance.sh) finds no response whose
//! status, content type, headers or body the document does not allow.

use std::collections::BTreeSet;
use std::ops::ControlFlow::{Break, Continue};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::host::{Host, Site};
use crate::http::request;
use crate::util::{guest, root, wait_until};

const TOKEN: &str = "conformance-token";

fn document() -> Value {
    let text = std::fs::read_to_string(root().join("host/assets/openapi.json")).unwrap();
    serde_json::from_str(&text).expect("openapi.json is JSON")
}

/// Every documented (METHOD, path template), e.g. ("POST", "/v1/jobs/{name}/pause").
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in ["get", "post", "put", "patch", "delete", "head", "options"] {
            if item.get(method).is_some() {
                ops.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

/// Every (METHOD, path) the router declares, read from `host/src/api/*.rs`: each
/// `.route("PATH", get(..).post(..))` call, with `/v1` in front of the routes of the router
/// that `mod.rs` nests there (the ones declared on `let v1 = Router::new()`). Reading the
/// source keeps this test free of the host crate's private items; the live test below
/// then proves each one is really served.
fn routed() -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for entry in std::fs::read_dir(root().join("host/src/api")).unwrap() {
        let path = entry.unwrap().path();
        let source = std::fs::read_to_string(&path).unwrap();
        let nested = source.find("let v1 = Router::new()").map(|at| {
            let end = source[at..].find(';').map_or(source.len(), |e| at + e);
            at..end
        });
        for (at, _) in source.match_indices(".route(\"") {
            let rest = &source[at + ".route(\"".len()..];
            let route = &rest[..rest.find('"').unwrap()];
            // The methods: up to the next `.route(` or the end of the statement.
            let call_end = [rest.find(".route("), rest.find(';')]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(rest.len());
            let call = &rest[..call_end];
            let prefix = if nested.as_ref().is_some_and(|r| r.contains(&at)) { "/v1" } else { "" };
            let mut found = false;
            for method in ["get", "post", "put", "patch", "delete"] {
                let called = call.match_indices(&format!("{method}(")).any(|(i, _)| {
                    i == 0
                        || !call.as_bytes()[i - 1].is_ascii_alphanumeric()
                            && call.as_bytes()[i - 1] != b'_'
                });
                if called {
                    routes.insert((method.to_uppercase(), format!("{prefix}{route}")));
                    found = true;
                }
            }
            assert!(found, "{}: no method found for route {route:?}", path.display());
        }
    }
    routes
}

#[test]
fn every_route_is_documented_and_every_documented_route_is_routed() {
    let doc = document();
    let (documented, routed) = (documented(&doc), routed());
    assert!(routed.len() >= 16, "the route scan found too little: {routed:?}");
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(undocumented.is_empty(), "routes missing from openapi.json: {undocumented:?}");
    assert!(unrouted.is_empty(), "openapi.json documents routes the router lacks: {unrouted:?}");
}

/// A site with a scheduled job (hello-rust), a probe job and a job that fails to load.
fn site() -> Site {
    let site = Site::new();
    std::fs::copy(guest("hello-rust"), site.jobs().join("hello-rust.wasm")).unwrap();
    std::fs::copy(
        root().join("examples/hello-rust/hello-rust.toml"),
        site.jobs().join("hello-rust.toml"),
    )
    .unwrap();
    site.probe_job(
        "probe",
        "every = \"1h\"\n[retry]\nmax_attempts = 2\n[breaker]\nfailures = 3\ncooldown = \"1m\"\n\
         [config]\nmode = \"ok\"\n",
    );
    site.probe_job("broken", "every = \"soon\"\n");
    site
}

/// Starts the host with the token and waits until both good jobs are loaded and the probe
/// has one manual run with logs in the ledger, so lists and details are not empty.
fn start(site: &Site) -> (Host, String) {
    let host = site.start(&["--token", TOKEN]);
    let base = host.api();
    wait_until(Duration::from_secs(30), || {
        let jobs = request(&base, "GET", "/v1/jobs", None, Some(TOKEN), &[]);
        let loaded =
            jobs.status == 200 && jobs.body["jobs"].as_array().is_some_and(|j| j.len() == 2);
        if loaded { Break(()) } else { Continue(jobs) }
    })
    .unwrap_or_else(|jobs| panic!("jobs not loaded: {jobs:?}"));
    let payload = serde_json::json!({ "payload": "context" });
    let trigger =
        request(&base, "POST", "/v1/jobs/probe/trigger", Some(&payload), Some(TOKEN), &[]);
    assert_eq!(trigger.status, 202, "{trigger:?}");
    let run = format!("/v1/runs/{}", trigger.body["run_id"].as_str().unwrap());
    wait_until(Duration::from_secs(30), || {
        let reply = request(&base, "GET", &run, None, Some(TOKEN), &[]);
        if reply.body["status"] == "succeeded" { Break(()) } else { Continue(reply) }
    })
    .unwrap_or_else(|reply| panic!("probe run: {reply:?}"));
    (host, base)
}

/// Whether the document protects this operation: its own `security`, else the global one.
fn protected(doc: &Value, method: &str, path: &str) -> bool {
    let op = &doc["paths"][path][method.to_lowercase()];
    let security = op.get("security").unwrap_or(&doc["security"]);
    security.as_array().is_some_and(|s| !s.is_empty())
}

#[test]
fn token_guards_exactly_the_documented_operations_and_each_is_served() {
    let doc = document();
    let site = site();
    let (_host, base) = start(&site);
    for (method, template) in documented(&doc) {
        let path = template.replace("{name}", "hello-rust").replace("{run_id}", "no-such-run");
        let body = match template.as_str() {
            "/v1/jobs/{name}/backfill" => Some(serde_json::json!({
                "from": "2026-01-01T00:00:00Z", "to": "2026-01-01T00:00:30Z", "rate": 50,
            })),
            "/login" if method == "POST" => None,
            _ if method == "POST" => Some(serde_json::json!({})),
            _ => None,
        };
        let send = |token: Option<&str>| {
            request(&base, &method, &path, body.as_ref(), token, &[("Accept", "*/*")])
        };
        let (anonymous, authorized) = (send(None), send(Some(TOKEN)));
        let what = format!("{method} {path}");
        for reply in [&anonymous, &authorized] {
            assert!(
                !(reply.body["code"] == "not_found" && reply.body["message"] == "no such route"),
                "{what} reached the router's fallback: {reply:?}"
            );
            assert_ne!(reply.status, 405, "{what}: method not routed: {reply:?}");
            assert!(reply.status < 500, "{what}: server error: {reply:?}");
        }
        assert_ne!(authorized.status, 401, "{what} refused the token: {authorized:?}");
        if protected(&doc, &method, &template) {
            assert_eq!(anonymous.status, 401, "{what} is documented as protected: {anonymous:?}");
            if anonymous.content_type.starts_with("application/json") {
                assert_eq!(anonymous.body["code"], "unauthorized", "{what}: {anonymous:?}");
            }
        } else {
            assert_ne!(anonymous.status, 401, "{what} is documented as open: {anonymous:?}");
        }
    }
}

#[test]
fn live_api_conforms_to_the_document_under_schemathesis() {
    let site = site();
    let (_host, base) = start(&site);
    let started = Instant::now();
    let output = Command::new("bash")
        .arg(root().join("scripts/api-conformance.sh"))
        .args([&base, TOKEN])
        .output()
        .expect("bash runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "the live API drifted from openapi.json:\n{report}");
    // A vacuous pass (the document not loaded, operations filtered out) fails too.
    // schemathesis leaves out the operation that serves the document itself.
    let operations = documented(&document()).len() - 1;
    let all = format!("{operations} selected / {operations} total");
    assert!(report.contains(&all), "expected {all} operations tested:\n{report}");
    eprintln!("schemathesis finished in {:.1?}", started.elapsed());
}
