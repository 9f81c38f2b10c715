//! O6: the API binds to loopback by default; a non-loopback bind needs a token; with a
//! token, every API call, `/metrics` and the dashboard need it.

use std::process::Command;

use crate::api::assert_error;
use crate::host::Site;
use crate::http::request;
use crate::util::sandcron;

#[test]
fn a_non_loopback_api_without_a_token_refuses_to_start() {
    let site = Site::new();
    let output = Command::new(sandcron())
        .args(["serve", "--jobs"])
        .arg(site.jobs())
        .arg("--store")
        .arg(site.store())
        .args(["--api", "0.0.0.0:0"])
        .env_remove("SANDCRON_TOKEN")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a loopback address") && stderr.contains("--token"), "{stderr}");
    assert!(!site.store().exists(), "nothing started");
}

#[test]
fn with_a_token_every_route_but_health_needs_it() {
    let site = Site::new();
    site.probe_job("probe", "every = \"1h\"\n");
    // Non-loopback is allowed once a token is set (and plain HTTP is asked for: see tls.rs).
    let host = site.start(&["--api", "0.0.0.0:0", "--token", "s3cret", "--insecure-http"]);
    let api = host.api().replace("0.0.0.0", "127.0.0.1");
    let protected = [
        ("GET", "/v1/jobs"),
        ("GET", "/v1/jobs/probe"),
        ("GET", "/v1/runs"),
        ("POST", "/v1/jobs/probe/pause"),
        ("POST", "/v1/jobs/probe/resume"),
        ("POST", "/v1/jobs/probe/trigger"),
        ("POST", "/v1/jobs/probe/backfill"),
        ("GET", "/metrics"),
    ];
    for (method, path) in protected {
        let none = request(&api, method, path, None, None, &[]);
        assert_error(&none, 401, "unauthorized");
        let wrong = request(&api, method, path, None, Some("s3cre"), &[]);
        assert_error(&wrong, 401, "unauthorized");
    }
    let ok = request(&api, "GET", "/v1/jobs", None, Some("s3cret"), &[]);
    assert_eq!(ok.status, 200, "{ok:?}");
    // The scheme is case-insensitive (RFC 9110): a lowercase `bearer` is accepted too.
    let lower = request(&api, "GET", "/v1/jobs", None, None, &[("Authorization", "bearer s3cret")]);
    assert_eq!(lower.status, 200, "{lower:?}");
    assert_eq!(ok.body["jobs"][0]["name"], "probe");
    let metrics = request(&api, "GET", "/metrics", None, Some("s3cret"), &[]);
    assert_eq!(metrics.status, 200);
    assert!(metrics.text.contains("sandcron_running_runs"));

    // The dashboard asks for the token instead of showing anything.
    let page = request(&api, "GET", "/", None, None, &[]);
    assert_eq!(page.status, 401);
    assert!(page.text.contains("name=\"token\"") && !page.text.contains("probe"), "{page:?}");
    // Health probes stay open for load balancers; they reveal nothing.
    assert_eq!(request(&api, "GET", "/healthz", None, None, &[]).status, 200);

    // The CLI verbs send the token.
    let cli = |token: &str| {
        Command::new(sandcron())
            .args(["pause", "probe", "--note", "n", "--api", &api, "--token", token])
            .output()
            .unwrap()
    };
    let denied = cli("nope");
    assert_eq!(denied.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&denied.stderr).contains("unauthorized"));
    let allowed = cli("s3cret");
    assert!(allowed.status.success(), "{}", String::from_utf8_lossy(&allowed.stderr));
}
