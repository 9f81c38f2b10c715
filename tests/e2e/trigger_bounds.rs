//! Manual triggers are bounded (hardening): `force` skips the overlap policy and a pause,
//! but not the cap on runs running or queued per job and per host, and a payload has a size
//! limit. Before, 1,000 forced triggers with 900 KB payloads took the host from 25 MB to
//! 976 MB and left 1,009 rows `running`.

use serde_json::json;

use crate::host::Site;
use crate::http::{get, request};

#[test]
fn forced_triggers_stop_at_the_per_job_cap_with_429_and_retry_after() {
    let site = Site::new();
    // Each run sleeps inside a WASI call (the payload picks the probe's mode), so forced
    // runs pile up as running.
    site.probe_job("sleeper", "[limits]\ntimeout = \"30s\"\n");
    let host = site.start(&["--grace", "1s"]);
    let api = host.api();
    let body = json!({ "payload": "sleep:20000", "force": true });
    let mut accepted = 0;
    let mut busy = None;
    for _ in 0..150 {
        let reply = request(&api, "POST", "/v1/jobs/sleeper/trigger", Some(&body), None, &[]);
        match reply.status {
            202 => accepted += 1,
            429 => {
                busy = Some(reply);
                break;
            }
            other => panic!("unexpected {other}: {}", reply.text),
        }
    }
    // max_concurrent 1 + 100 beyond it.
    assert_eq!(accepted, 101, "forced triggers accepted before the cap");
    let busy = busy.expect("the 102nd forced trigger was refused");
    assert_eq!(busy.body["code"], "busy", "{}", busy.text);
    assert!(busy.body["message"].as_str().unwrap().contains("101 runs of job"), "{}", busy.text);
    assert_eq!(busy.body["details"]["retry_after_s"], 30);
    let retry_after = busy.headers.get("retry-after").and_then(|v| v.to_str().ok());
    assert_eq!(retry_after, Some("30"), "Retry-After header");

    let running = site.runs("sleeper").iter().filter(|r| r["status"] == "running").count();
    assert!(running <= 101, "{running} rows running");
    // The host still answers, and a forced trigger of another job is not held back by this
    // job's cap.
    assert_eq!(get(&api, "/v1/jobs/sleeper").status, 200);
    drop(host);
}

#[test]
fn a_payload_over_256_kib_is_refused_with_413() {
    let site = Site::new();
    site.probe_job("taker", "[config]\nmode = \"ok\"\n");
    let host = site.start(&[]);
    let api = host.api();
    let body = json!({ "payload": "x".repeat((256 << 10) + 1) });
    let reply = request(&api, "POST", "/v1/jobs/taker/trigger", Some(&body), None, &[]);
    assert_eq!(reply.status, 413, "{}", reply.text);
    assert_eq!(reply.body["code"], "payload_too_large");
    assert!(reply.text.contains("at most 262144"), "{}", reply.text);
    let ok = json!({ "payload": "x".repeat(256 << 10) });
    let reply = request(&api, "POST", "/v1/jobs/taker/trigger", Some(&ok), None, &[]);
    assert_eq!(reply.status, 202, "{}", reply.text);
}
