//! Claiming a slot ahead of its instant (`serve --claim-ahead`), through the real binary:
//! the claim is durable before the instant, the guest still starts at the instant, and a
//! claim whose slot does not start as planned is finished or given up, never left behind.
//! A wide window (3 s) makes each case reachable from outside without racing the host.

use std::time::Duration;

use serde_json::{Value, json};

use crate::host::{Host, Site, now_ms, parse_ms, slot_ms, with_status};
use crate::http::request;

const AHEAD: &[&str] = &["--claim-ahead", "3s"];

/// An hourly schedule whose slot is `in_s` seconds from now; returns it and the slot (ms).
fn hourly_in(in_s: u64, extra: &str) -> (String, i64) {
    let now = now_ms();
    let slot = (now / 1000 + in_s as i64) * 1000;
    let phase = (slot / 1000) % 3600;
    (format!("every = \"1h\"\nphase = \"{phase}s\"\n{extra}"), slot)
}

/// Waits for the slot's claim, taken ahead: a `running` row whose provisional start (the
/// fire time) has not come yet.
fn wait_for_claim(site: &Site, job: &str, slot: i64) -> Value {
    let runs = site.wait_runs(job, Duration::from_secs(10), |runs| {
        runs.iter().any(|r| r["status"] == "running")
    });
    let claim = runs.iter().find(|r| r["status"] == "running");
    let claim = claim.unwrap_or_else(|| panic!("the slot is claimed ahead: {runs:#?}"));
    assert_eq!(slot_ms(claim), slot, "{claim}");
    assert_eq!((claim["attempt"].as_u64(), claim["trigger"].as_str()), (Some(1), Some("schedule")));
    let now = now_ms();
    assert!(now < slot, "claimed {} ms before the instant, as asked", slot - now);
    assert_eq!(parse_ms(claim["started_at"].as_str().unwrap()), slot, "provisional start");
    claim.clone()
}

/// The rows of one slot (manual runs have none).
fn of_slot(runs: &[Value], slot: i64) -> Vec<&Value> {
    runs.iter().filter(|r| r["slot"].is_string() && slot_ms(r) == slot).collect()
}

/// Waits until the slot's row is no longer `running`, and returns the job's runs.
fn wait_settled(site: &Site, job: &str, slot: i64) -> Vec<Value> {
    site.wait_runs(job, Duration::from_secs(15), |runs| {
        let rows = of_slot(runs, slot);
        !rows.is_empty() && rows.iter().all(|r| r["status"] != "running")
    })
}

/// Starts a host with the wide window on the (empty) jobs folder and waits until it is
/// ready, so a job added next is loaded well before its claim-ahead time however slowly
/// the host started.
fn start_ready(site: &Site) -> Host {
    let host = site.start(AHEAD);
    host.api();
    host
}

fn post(host: &Host, path: &str, body: Value) -> Value {
    let reply = request(&host.api(), "POST", path, Some(&body), None, &[]);
    assert!(reply.status < 300, "{path}: {reply:?}");
    reply.body
}

#[test]
fn a_stop_before_the_instant_gives_the_claim_up_and_the_slot_runs_after_a_restart() {
    let site = Site::new();
    let mut host = start_ready(&site);
    let (manifest, slot) = hourly_in(6, "");
    site.probe_job("soon", &manifest);
    wait_for_claim(&site, "soon", slot);
    assert_eq!(host.stop(), 0, "{}", host.log_text());
    assert!(now_ms() < slot, "stopped before the instant");
    assert_eq!(site.runs("soon"), Vec::<Value>::new(), "the claim was given up: no row left");

    // A new life claims the slot again (at the default 250 ms) and runs it once, on time.
    let mut host = site.start(&[]);
    let runs = wait_settled(&site, "soon", slot);
    assert_eq!(host.stop(), 0, "{}", host.log_text());
    assert_eq!(runs.len(), 1, "{runs:#?}");
    let run = &runs[0];
    assert_eq!((run["status"].as_str(), run["attempt"].as_u64()), (Some("succeeded"), Some(1)));
    let lag = parse_ms(run["started_at"].as_str().unwrap()) - slot;
    assert!((0..1000).contains(&lag), "started {lag} ms after its instant, never before");
}

#[test]
fn a_run_started_inside_the_window_turns_the_claimed_slot_into_a_skip() {
    let site = Site::new();
    let mut host = start_ready(&site);
    let (manifest, slot) = hourly_in(6, "[limits]\ntimeout = \"30s\"\n");
    site.probe_job("busy", &manifest);
    let claim = wait_for_claim(&site, "busy", slot);
    // A manual run that outlasts the instant: with overlap = "skip" (the default) the slot
    // must be recorded skipped, on the row already claimed.
    let triggered = post(&host, "/v1/jobs/busy/trigger", json!({ "payload": "sleep:4000" }));
    assert_eq!(triggered["status"], "started", "{triggered}");
    let runs = wait_settled(&site, "busy", slot);
    assert_eq!(host.stop(), 0, "{}", host.log_text());
    let rows = of_slot(&runs, slot);
    assert_eq!(rows.len(), 1, "one row for the slot: {runs:#?}");
    assert_eq!(rows[0]["run_id"], claim["run_id"], "the claimed row itself");
    assert_eq!(rows[0]["status"], "skipped");
    assert_eq!(rows[0]["reason"], "skipped:overlap");
    assert_eq!(rows[0]["started_at"], Value::Null, "it never started");
    assert!(with_status(&site.runs("busy"), "running").is_empty());
}

#[test]
fn pausing_inside_the_window_gives_the_claim_up() {
    let site = Site::new();
    let mut host = start_ready(&site);
    let (manifest, slot) = hourly_in(6, "");
    site.probe_job("held", &manifest);
    wait_for_claim(&site, "held", slot);
    post(&host, "/v1/jobs/held/pause", json!({ "note": "maintenance" }));
    let released = site.wait_runs("held", Duration::from_secs(5), |runs| runs.is_empty());
    assert_eq!(released, Vec::<Value>::new(), "the claim went with the pause");
    // Past the instant, nothing ran and nothing is recorded (a pause records nothing).
    // Kept: "nothing happens" until a wall-clock instant has passed is what is under test.
    std::thread::sleep(Duration::from_millis((slot - now_ms()).max(0) as u64 + 1500));
    assert_eq!(host.stop(), 0, "{}", host.log_text());
    assert_eq!(site.runs("held"), Vec::<Value>::new());
}

#[test]
fn a_new_version_inside_the_window_runs_the_slot_on_the_new_version() {
    let site = Site::new();
    let mut host = start_ready(&site);
    let (manifest, slot) = hourly_in(7, "");
    site.probe_job("swap", &manifest);
    let claim = wait_for_claim(&site, "swap", slot);
    // Same schedule, new config: a new version of the job.
    site.probe_job("swap", &format!("{manifest}[config]\nmode = \"config\"\n"));
    let runs = wait_settled(&site, "swap", slot);
    assert_eq!(host.stop(), 0, "{}", host.log_text());
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0]["status"], "succeeded");
    assert_ne!(runs[0]["version"], claim["version"], "the claim of the old version was given up");
    assert_ne!(runs[0]["run_id"], claim["run_id"]);
    let jobs = site.jobs_json();
    assert_eq!(runs[0]["version"], jobs[0]["version"], "{jobs:#?}");
}
