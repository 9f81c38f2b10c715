//! The API under a fault campaign's requests (hardening issue, items 5 to 7), each test
//! named after what broke:
//! - a web page the operator visits, or a DNS-rebinding name, reached the tokenless
//!   loopback API (any content type, any `Host`, any `Origin`);
//! - idle and half-sent connections were never closed, and with no connection cap they
//!   used up the descriptors the store and the watcher need;
//! - run lists read every run's output and logs, so concurrent lists took gigabytes.
//!
//! Requests that a browser or an attacker would send are written by hand on a
//! `TcpStream` ([`raw`]), so every header is exactly the one under test.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::ops::ControlFlow::{Break, Continue};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::api::assert_error;
use crate::host::{Host, Site};
use crate::http::{Reply, get};
use crate::util::{guest, sandcron, wait_until};

/// An hourly schedule whose next slot is far away: runs come from the API only.
const MANUAL_ONLY: &str = "every = \"1h\"\nphase = \"1800s\"\n";

/// `host:port` of a base URL.
fn authority(base: &str) -> &str {
    base.trim_start_matches("http://")
}

/// An HTTP/1.1 request with `Connection: close` and a `Content-Length`; `Host` is the
/// given one if `headers` has one, else `addr`.
fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut text = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("host")) {
        text.push_str(&format!("Host: {addr}\r\n"));
    }
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()));
    text
}

/// Sends `request` on a fresh connection and reads the answer to the end (5 s at most).
fn raw(addr: &str, request: &str) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(request.as_bytes())?;
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let content_type = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-type").then(|| value.trim().to_string())
        })
        .unwrap_or_default();
    let body_json = serde_json::from_str(body).unwrap_or(Value::Null);
    Ok(Reply {
        status,
        body: body_json,
        text: body.to_string(),
        content_type,
        headers: Default::default(),
    })
}

/// [`raw`] that must get an answer.
#[track_caller]
fn send(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let request = http(addr, method, path, headers, body);
    raw(addr, &request).unwrap_or_else(|err| panic!("{method} {path} {headers:?}: {err}"))
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

// ---- 5. cross-site requests and DNS rebinding -------------------------------------------

#[test]
fn cross_site_writes_are_refused_and_same_origin_json_still_works() {
    let site = Site::new();
    site.probe_job("probe", MANUAL_ONLY);
    let host = site.start(&[]);
    let base = host.api();
    let addr = authority(&base);
    let own = format!("http://{addr}");
    let evil = ("Origin", "https://evil.example");

    // The campaign's request: a page on another site posts a "simple" (no preflight) body.
    let campaign = send(
        addr,
        "POST",
        "/v1/jobs/probe/trigger",
        &[("Content-Type", "text/plain;charset=UTF-8"), evil],
        "{}",
    );
    assert!(matches!(campaign.status, 403 | 415), "a cross-site trigger ran: {campaign:?}");
    assert!(campaign.body["code"].is_string() && campaign.body["details"].is_object());

    // Each rule on its own. A write must say application/json, even with no body ...
    let resume = "/v1/jobs/probe/resume";
    let text_plain = send(addr, "POST", resume, &[("Content-Type", "text/plain")], "{}");
    assert_error(&text_plain, 415, "unsupported_media_type");
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    assert_error(&send(addr, "POST", resume, &[form], "a=1"), 415, "unsupported_media_type");
    assert_error(&send(addr, "POST", resume, &[], ""), 415, "unsupported_media_type");
    let lookalike = ("Content-Type", "application/jsonx");
    assert_error(&send(addr, "POST", resume, &[lookalike], "{}"), 415, "unsupported_media_type");
    // ... and an Origin, when there is one, must be the API's own.
    assert_error(&send(addr, "POST", resume, &[JSON, evil], "{}"), 403, "cross_origin");
    let null = ("Origin", "null");
    assert_error(&send(addr, "POST", resume, &[JSON, null], "{}"), 403, "cross_origin");
    let other_port = format!("http://{}:1", addr.split(':').next().unwrap());
    let other_port = ("Origin", other_port.as_str());
    assert_error(&send(addr, "POST", resume, &[JSON, other_port], "{}"), 403, "cross_origin");
    // The dashboard's login form is a write too.
    let login = send(addr, "POST", "/login", &[form, evil], "token=x");
    assert_error(&login, 403, "cross_origin");

    // What the API's own clients send still works: the dashboard (JSON, its own Origin),
    // the CLI (JSON, no Origin), a charset parameter.
    let dashboard = ("Origin", own.as_str());
    assert_eq!(send(addr, "POST", resume, &[JSON, dashboard], "{}").status, 200);
    assert_eq!(send(addr, "POST", resume, &[JSON], "").status, 200, "JSON with no body");
    let charset = ("Content-Type", "Application/JSON; charset=utf-8");
    assert_eq!(send(addr, "POST", resume, &[charset], "{}").status, 200);
    assert_eq!(send(addr, "POST", "/login", &[form, dashboard], "token=x").status, 200);
    // Reads need neither (a foreign page cannot read the answer without CORS headers).
    assert_eq!(send(addr, "GET", "/v1/jobs", &[evil], "").status, 200);
    let started = send(addr, "POST", "/v1/jobs/probe/trigger", &[JSON, dashboard], "{}");
    assert_eq!(started.status, 202, "{started:?}");
    site.wait_runs("probe", Duration::from_secs(20), |runs| {
        runs.iter().any(|r| r["status"] == "succeeded")
    });
    let cli = Command::new(sandcron())
        .args(["trigger", "probe", "--idempotency-key", "cli", "--api", &base])
        .output()
        .unwrap();
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));

    let runs = site.wait_runs("probe", Duration::from_secs(20), |runs| {
        runs.len() == 2 && runs.iter().all(|r| r["status"] == "succeeded")
    });
    assert_eq!(runs.len(), 2, "only the two accepted triggers ran: {runs:#?}");
}

#[test]
fn rebinding_host_names_are_refused_and_loopback_names_still_work() {
    let site = Site::new();
    site.probe_job("probe", MANUAL_ONLY);
    let host = site.start(&["--api-host", "sandcron.test"]);
    let base = host.api();
    let addr = authority(&base);
    let port = addr.rsplit(':').next().unwrap();

    // The campaign's request: a page on a name that now resolves to 127.0.0.1 reads runs.
    let evil = "rebind.evil.example";
    let rebound = send(addr, "GET", "/v1/runs", &[("Host", evil)], "");
    assert_error(&rebound, 421, "host_not_allowed");
    assert!(rebound.body["message"].as_str().unwrap().contains("--api-host"), "{rebound:?}");
    assert_eq!(rebound.body["details"]["host"], evil);
    let with_port = format!("{evil}:{port}");
    for path in ["/v1/jobs", "/", "/assets/app.js", "/v1/openapi.json", "/metrics"] {
        let reply = send(addr, "GET", path, &[("Host", &with_port)], "");
        assert_error(&reply, 421, "host_not_allowed");
    }
    // Its writes fail on the Host too, even when the page's Origin matches it.
    let origin = format!("http://{with_port}");
    let write = send(
        addr,
        "POST",
        "/v1/jobs/probe/trigger",
        &[("Host", &with_port), ("Origin", &origin), JSON],
        "{}",
    );
    assert_error(&write, 421, "host_not_allowed");
    for near_miss in ["sandcron.test.evil.example", "localhost.evil.example", "127.0.0.1.nip.io"] {
        let reply = send(addr, "GET", "/v1/jobs", &[("Host", near_miss)], "");
        assert_error(&reply, 421, "host_not_allowed");
    }

    // Loopback names and addresses, and the configured name, are this host.
    for good in [
        addr.to_string(),
        format!("localhost:{port}"),
        "LocalHost".to_string(),
        "127.8.9.10".to_string(),
        format!("[::1]:{port}"),
        format!("sandcron.test:{port}"),
        "SANDCRON.TEST".to_string(),
    ] {
        let reply = send(addr, "GET", "/v1/runs", &[("Host", &good)], "");
        assert_eq!(reply.status, 200, "Host {good}: {reply:?}");
    }
    let origin = format!("http://sandcron.test:{port}");
    let host_header = format!("sandcron.test:{port}");
    let headers = [("Host", host_header.as_str()), ("Origin", origin.as_str()), JSON];
    assert_eq!(send(addr, "POST", "/v1/jobs/probe/resume", &headers, "{}").status, 200);

    // Health probes answer whatever name the prober uses (a pod IP, a service name).
    assert_eq!(send(addr, "GET", "/healthz", &[("Host", evil)], "").status, 200);
    assert_eq!(send(addr, "GET", "/readyz", &[("Host", evil)], "").status, 200);

    // The CLI verbs still reach it.
    let cli = Command::new(sandcron()).args(["pause", "probe", "--api", &base]).output().unwrap();
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
}

// ---- 6. idle and half-sent connections, and the connection cap ---------------------------

/// Opens `n` connections that send nothing, half a request head, or a head and half a
/// body, in turn.
fn hold_connections(addr: &str, n: usize) -> Vec<(TcpStream, Instant)> {
    (0..n)
        .map(|i| {
            let mut stream =
                TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(5))
                    .unwrap_or_else(|err| panic!("connection {i} of {n}: {err}"));
            match i % 3 {
                0 => {}
                1 => stream.write_all(b"GET /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n").unwrap(),
                _ => stream
                    .write_all(
                        b"POST /v1/jobs/probe/pause HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                          Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"note\":",
                    )
                    .unwrap(),
            }
            (stream, Instant::now())
        })
        .collect()
}

/// What the server sent on `stream` before closing it, if it closed it by `deadline`.
fn closed_by(stream: &mut TcpStream, deadline: Instant) -> Option<String> {
    let mut sent = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return Some(String::from_utf8_lossy(&sent).into_owned()),
            Ok(n) => sent.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == ErrorKind::ConnectionReset => {
                return Some(String::from_utf8_lossy(&sent).into_owned());
            }
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return None;
            }
            Err(err) => panic!("reading a held connection: {err}"),
        }
    }
}

/// GET /healthz on a fresh connection; its status and how long it took.
fn timed_health(addr: &str) -> (u16, Duration) {
    let started = Instant::now();
    let reply = raw(addr, &http(addr, "GET", "/healthz", &[], ""));
    (reply.map_or(0, |r| r.status), started.elapsed())
}

#[test]
fn idle_and_half_sent_connections_are_closed_and_health_answers_meanwhile() {
    let site = Site::new();
    site.probe_job("probe", MANUAL_ONLY);
    let host = site.start(&[]);
    let base = host.api();
    let addr = authority(&base);

    let mut held = hold_connections(addr, 200);
    let (status, took) = timed_health(addr);
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(2), "/healthz took {took:?} beside 200 idle connections");
    assert_eq!(get(&base, "/v1/jobs").status, 200);

    // Every one of them is closed by the server within its 10 s header timeout.
    let mut open = 0;
    let mut last_close = Duration::ZERO;
    for (i, (stream, opened)) in held.iter_mut().enumerate() {
        let Some(sent) = closed_by(stream, *opened + Duration::from_secs(13)) else {
            open += 1;
            continue;
        };
        last_close = last_close.max(opened.elapsed());
        if i % 3 == 2 {
            // A half-sent body is answered, in the one error shape, before the close.
            assert!(sent.starts_with("HTTP/1.1 408"), "{sent}");
            assert!(sent.contains(r#""code":"request_timeout""#), "{sent}");
        } else {
            assert_eq!(sent, "", "nothing is answered to an incomplete head");
        }
    }
    eprintln!("idle connections: /healthz in {took:?}; last closed after {last_close:?}");
    assert_eq!(open, 0, "{open} of 200 idle or half-sent connections still open after 13 s");
    assert!(last_close > Duration::from_secs(5), "closed too early: {last_close:?}");
}

fn fd_count(host: &Host) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", host.pid())).map_or(0, |dir| dir.count())
}

#[test]
fn connections_past_the_descriptor_limit_neither_starve_health_nor_the_watcher() {
    let site = Site::new();
    site.probe_job("probe", MANUAL_ONLY);
    // The campaign's setting, scaled down: more idle connections than descriptors.
    let host = site.start_under(&["prlimit", "--nofile=256:256", "--"], &[], &[]);
    let base = host.api();
    let addr = authority(&base);

    let idle_fds = fd_count(&host);
    let held = hold_connections(addr, 600);
    // Until the host has taken in connections up to its cap (the log says the cap; a few
    // below it, as one idle connection is closed each time a newcomer takes its slot).
    let log = host.log_text();
    let cap: usize = log
        .split("max_connections=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .unwrap_or_else(|| panic!("no max_connections in the log:\n{log}"));
    let full = wait_until(Duration::from_secs(10), || {
        let fds = fd_count(&host);
        if fds + 4 >= idle_fds + cap { Break(fds) } else { Continue(fds) }
    });
    let fds = fd_count(&host);
    let (status, took) = timed_health(addr);
    eprintln!(
        "600 connections under nofile 256: host holds {fds} fds; /healthz {status} in {took:?}"
    );
    assert_eq!(status, 200, "/healthz did not answer in 5 s");
    assert!(took < Duration::from_secs(3), "/healthz took {took:?}");
    assert!(fds < 230, "the host holds {fds} of its 256 descriptors");
    assert!(full.is_ok(), "the host never held {cap} connections: {full:?} fds, {idle_fds} idle");

    // The watcher can still open the jobs folder and load a new job.
    std::fs::write(site.jobs().join("late.toml"), MANUAL_ONLY).unwrap();
    std::fs::copy(guest("probe"), site.jobs().join("late.wasm")).unwrap();
    let loaded = wait_until(Duration::from_secs(20), || {
        let jobs = raw(addr, &http(addr, "GET", "/v1/jobs", &[], ""));
        let loaded = jobs.as_ref().is_ok_and(|reply| {
            reply.body["jobs"]
                .as_array()
                .is_some_and(|jobs| jobs.iter().any(|j| j["name"] == "late"))
        });
        if loaded { Break(()) } else { Continue(jobs) }
    });
    loaded.unwrap_or_else(|jobs| panic!("late job never loaded: {jobs:?}"));
    let log = host.log_text();
    assert!(!log.contains("Too many open files"), "descriptors ran out:\n{log}");
    drop(held);
}

// ---- 7. run lists and big logs ----------------------------------------------------------

/// Peak resident memory of a process, from `/proc/PID/status`, in KiB.
fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Writes `count` finished runs of `job` whose logs are `log_bytes` long, straight into the
/// store (what a job logging at its cap leaves after a while).
fn seed_runs(site: &Site, job: &str, count: usize, log_bytes: usize) {
    use sandcron::store::{Claim, Ledger, NewRun, RunFinish, RunStatus, SqliteStore};
    let store = SqliteStore::open(&site.store()).unwrap();
    let line = json!({ "level": "info", "message": "x".repeat(1000) });
    let logs = Value::Array(vec![line; log_bytes / 1030]).to_string();
    let at = crate::host::now_ms() - 3_600_000;
    let claims: Vec<NewRun> = (0..count)
        .map(|i| NewRun {
            run_id: format!("seeded-{i:04}"),
            job: job.into(),
            slot_ms: None,
            attempt: 1,
            trigger: sandcron::job::TriggerKind::Manual,
            idempotency_key: format!("seeded-{i:04}"),
            version: "seed".into(),
            owner: "seed".into(),
            scheduled_at_ms: at + i as i64,
            status: RunStatus::Running,
            reason: None,
            started_at_ms: Some(at + i as i64),
        })
        .collect();
    assert!(store.claim_many(&claims).unwrap().iter().all(|c| *c == Claim::Claimed));
    let finishes: Vec<(String, RunFinish)> = claims
        .iter()
        .map(|claim| {
            let finish = RunFinish {
                status: RunStatus::Succeeded,
                reason: String::new(),
                outcome: "succeeded".into(),
                finished_at_ms: claim.scheduled_at_ms + 5,
                duration_ms: 5.0,
                fuel_used: None,
                peak_memory: None,
                output: "o".repeat(4096),
                logs_json: logs.clone(),
                retry_at_ms: None,
                started_at_ms: claim.started_at_ms,
                net: None,
            };
            (claim.run_id.clone(), finish)
        })
        .collect();
    assert!(store.finish_many(&finishes).unwrap().iter().all(|done| *done));
}

#[test]
fn run_lists_do_not_read_output_and_logs() {
    let site = Site::new();
    site.probe_job("chatty", &format!("{MANUAL_ONLY}[config]\nmode = \"log-flood:4000\"\n"));
    seed_runs(&site, "chatty", 500, 256 << 10);
    let host = site.start(&[]);
    let base = host.api();

    // A real run logs at its cap (256 KiB); its page shows the logs, lists do not.
    let started = crate::http::post(&base, "/v1/jobs/chatty/trigger", &json!({}));
    assert_eq!(started.status, 202, "{started:?}");
    let run_id = started.body["run_id"].as_str().unwrap().to_string();
    let detail = wait_until(Duration::from_secs(30), || {
        let detail = get(&base, &format!("/v1/runs/{run_id}"));
        if detail.body["status"] == "succeeded" { Break(detail) } else { Continue(detail) }
    })
    .unwrap_or_else(|detail| panic!("the run never finished: {detail:?}"));
    assert!(detail.text.len() > 200 << 10, "the detail has the logs: {} bytes", detail.text.len());
    assert_eq!(detail.body["output"], "logged 4000");

    let before = vm_hwm_kib(host.pid());
    let started = Instant::now();
    let lists: Vec<Reply> = std::thread::scope(|scope| {
        let workers: Vec<_> =
            (0..40).map(|_| scope.spawn(|| get(&base, "/v1/runs?job=chatty&limit=500"))).collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let took = started.elapsed();
    let after = vm_hwm_kib(host.pid());
    eprintln!(
        "40 lists of 500 runs with 256 KiB logs: VmHWM {} -> {} MiB in {took:?}; one list is {} KiB",
        before / 1024,
        after / 1024,
        lists[0].text.len() / 1024
    );
    for list in &lists {
        assert_eq!(list.status, 200, "{list:?}");
        assert_eq!(list.body["runs"].as_array().unwrap().len(), 500);
        assert!(!list.text.contains("xxxxxxxxxx") && !list.text.contains("probe log flood"));
        assert!(
            list.body["runs"][0].get("output").is_none()
                && list.body["runs"][0].get("logs").is_none()
        );
    }
    assert!(
        after - before < 64 << 10,
        "concurrent lists grew the peak RSS by {} MiB",
        (after - before) / 1024
    );

    // `sandcron runs --json` still prints each run's output.
    let runs = site.runs("chatty");
    assert_eq!(runs.len(), 501);
    assert!(runs.iter().all(|r| r["output"].as_str().is_some_and(|o| !o.is_empty())));
    assert_eq!(runs.last().unwrap()["output"], "logged 4000");
}
