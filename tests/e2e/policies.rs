//! Policies that need contention to show (M2, S6): cancel-other, the starting deadline
//! while every worker is busy, and the host-wide worker limit.

use std::time::Duration;

use serde_json::Value;

use crate::host::{Site, parse_ms, slot_ms, with_status};

fn hourly_soon(extra: &str) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    format!("every = \"1h\"\nphase = \"{}s\"\n{extra}", (now + 2) % 3600)
}

#[test]
fn cancel_other_interrupts_the_running_slot_for_the_new_one() {
    let site = Site::new();
    site.probe_job("impatient", "every = \"2s\"\noverlap = \"cancel-other\"\n[limits]\ntimeout = \"60s\"\n[config]\nmode = \"sleep:10000\"\n");
    let mut host = site.start(&["--grace", "300ms"]);
    let runs = site.wait_runs("impatient", Duration::from_secs(20), |r| {
        with_status(r, "interrupted").len() >= 2
    });
    host.stop();
    let cancelled: Vec<&Value> = runs
        .iter()
        .filter(|r| {
            r["reason"] == "interrupted: cancelled by a newer slot (overlap = cancel-other)"
        })
        .collect();
    assert!(cancelled.len() >= 2, "{runs:#?}");
    for run in &cancelled {
        let lived = parse_ms(run["finished_at"].as_str().unwrap())
            - parse_ms(run["started_at"].as_str().unwrap());
        assert!(
            (2_000..3_500).contains(&lived),
            "cancelled at the next slot plus the grace: {lived} ms"
        );
    }
    assert!(runs.iter().all(|r| r["attempt"] == 1), "a cancelled run is not retried");
}

#[test]
fn with_every_worker_busy_late_slots_are_missed_not_started_late() {
    let site = Site::new();
    site.probe_job(
        "hog",
        &hourly_soon("[limits]\ntimeout = \"60s\"\n[config]\nmode = \"sleep:4000\"\n"),
    );
    site.probe_job("punctual", "every = \"1s\"\nstarting_deadline = \"500ms\"\n");
    let mut host = site.start(&["--workers", "1"]);
    let hog =
        site.wait_runs("hog", Duration::from_secs(20), |r| with_status(r, "succeeded").len() == 1);
    let hog_done = parse_ms(hog[0]["finished_at"].as_str().expect("the hog finished"));
    // The slot that waited behind the hog is missed, later ones skipped, and once the
    // worker is free again a slot runs on time.
    site.wait_runs("punctual", Duration::from_secs(20), |r| {
        let reason = |why: &str| r.iter().filter(|r| r["reason"] == why).count();
        reason("missed:deadline") >= 1
            && reason("skipped:overlap") >= 2
            && with_status(r, "succeeded")
                .iter()
                .any(|r| r["started_at"].as_str().is_some_and(|at| parse_ms(at) > hog_done))
    });
    host.stop();

    let punctual = site.runs("punctual");
    let missed = punctual.iter().filter(|r| r["reason"] == "missed:deadline").count();
    assert!(missed >= 1, "the slot waiting behind the hog misses its deadline: {punctual:#?}");
    // While that slot waited for the worker it counted as in flight: later slots were
    // skipped by the overlap policy, not queued behind it.
    let skipped = punctual.iter().filter(|r| r["reason"] == "skipped:overlap").count();
    assert!(skipped >= 2, "{punctual:#?}");
    for run in with_status(&punctual, "succeeded") {
        let lag = parse_ms(run["started_at"].as_str().unwrap()) - slot_ms(run);
        assert!(lag <= 500, "a run never starts past its deadline: {lag} ms");
    }

    // One worker: no two runs of any job ever overlapped.
    let mut spans: Vec<(i64, i64)> = site
        .runs("hog")
        .iter()
        .chain(punctual.iter())
        .filter(|r| r["started_at"].is_string() && r["finished_at"].is_string())
        .map(|r| {
            (
                parse_ms(r["started_at"].as_str().unwrap()),
                parse_ms(r["finished_at"].as_str().unwrap()),
            )
        })
        .collect();
    spans.sort();
    for pair in spans.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "runs overlapped with --workers 1: {pair:?}");
    }
}

#[test]
fn a_run_still_waiting_for_a_worker_at_shutdown_runs_after_the_restart() {
    // The only worker is busy with `hog` when `waiter` is triggered: its run is claimed and
    // waits. A shutdown then interrupts both; the waiter never started, so it is retried on
    // the next start even with max_attempts = 1 (execution is at least once).
    let manual_only = "every = \"1h\"\nphase = \"1800s\"\n[retry]\nmax_attempts = 1\n";
    let site = Site::new();
    site.probe_job("hog", &format!("{manual_only}[limits]\ntimeout = \"60s\"\n"));
    site.probe_job("waiter", manual_only);
    let mut host = site.start(&["--workers", "1", "--grace", "200ms"]);
    let api = host.api();
    let trigger = |job: &str, payload: &str| {
        let reply = crate::http::post(
            &api,
            &format!("/v1/jobs/{job}/trigger"),
            &serde_json::json!({ "payload": payload }),
        );
        assert_eq!(reply.status, 202, "{reply:?}");
    };
    trigger("hog", "sleep:30000");
    site.wait_runs("hog", Duration::from_secs(20), |r| !r.is_empty());
    trigger("waiter", "ok");
    // The 202 comes once the run is claimed: it is in the store, waiting for the worker.
    site.wait_runs("waiter", Duration::from_secs(20), |r| !r.is_empty());
    host.stop();
    let waiter = site.runs("waiter");
    assert_eq!(waiter.len(), 1, "{waiter:#?}");
    assert_eq!(waiter[0]["status"], "interrupted", "{waiter:#?}");
    assert!(waiter[0]["started_at"].is_null(), "it never started: {waiter:#?}");

    let mut host = site.start(&["--workers", "1"]);
    let waiter = site.wait_runs("waiter", Duration::from_secs(20), |r| {
        r.iter().any(|r| r["status"] == "succeeded")
    });
    host.stop();
    assert_eq!(waiter.len(), 2, "{waiter:#?}");
    assert_eq!(waiter[1]["attempt"], 2);
    assert_eq!(waiter[1]["status"], "succeeded");
    assert_eq!(waiter[1]["trigger"], "retry");
    assert_eq!(waiter[1]["idempotency_key"], waiter[0]["idempotency_key"]);
    let hog = site.runs("hog");
    assert_eq!(hog.len(), 1, "max_attempts = 1: the started hog is not retried: {hog:#?}");
    assert_eq!(hog[0]["status"], "interrupted");
    assert!(hog[0]["started_at"].is_string());
}
