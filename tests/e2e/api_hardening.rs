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

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::host::Site;
use crate::http::{Reply, get};

/// An hourly schedule whose next slot is far away: runs come from the API only.
const MANUAL_ONLY: &str = "every = \"1h\"\nphase = \"1800s\"\n";

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
            trigger: "manual".into(),
            idempotency_key: format!("seeded-{i:04}"),
            version: "seed".into(),
            owner: "seed".into(),
            scheduled_at_ms: at + i as i64,
            status: RunStatus::Running,
            reason: String::new(),
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
    let deadline = Instant::now() + Duration::from_secs(30);
    let detail = loop {
        let detail = get(&base, &format!("/v1/runs/{run_id}"));
        if detail.body["status"] == "succeeded" {
            break detail;
        }
        assert!(Instant::now() < deadline, "the run never finished: {detail:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
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
