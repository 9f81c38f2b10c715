//! The HTTP API (O2, S5) against a real host: list, detail, pause/resume, trigger with an
//! Idempotency-Key, backfill and runs agree with what `sandcron runs --json` reads from the
//! store; every error answers in the one shape.

use std::time::Duration;

use serde_json::{Value, json};

use crate::host::{Site, now_ms, slot_ms, with_status};
use crate::http::{Reply, get, post, post_raw, request};

/// An hourly schedule whose next slot is far away: runs come from the API only.
const MANUAL_ONLY: &str = "every = \"1h\"\nphase = \"1800s\"\n";

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap().to_rfc3339()
}

/// The one error shape: status, a stable code, a message and a details object.
#[track_caller]
pub fn assert_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{reply:?}");
    assert!(reply.content_type.starts_with("application/json"), "{reply:?}");
    assert_eq!(reply.body["code"], code, "{reply:?}");
    assert!(reply.body["message"].as_str().is_some_and(|m| !m.is_empty()), "{reply:?}");
    assert!(reply.body["details"].is_object(), "{reply:?}");
    let keys: Vec<&String> = reply.body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["code", "details", "message"], "nothing else in the shape: {reply:?}");
}

fn trigger(base: &str, job: &str, body: Value, key: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = key.map(|k| ("Idempotency-Key", k)).into_iter().collect();
    request(base, "POST", &format!("/v1/jobs/{job}/trigger"), Some(&body), None, &headers)
}

/// Waits until the store shows `count` finished runs with this key.
fn wait_key(site: &Site, job: &str, key: &str, count: usize) -> Vec<Value> {
    let runs = site.wait_runs(job, Duration::from_secs(20), |runs| {
        runs.iter().filter(|r| r["idempotency_key"] == key && r["status"] != "running").count()
            >= count
    });
    runs.into_iter().filter(|r| r["idempotency_key"] == key).collect()
}

#[test]
fn jobs_runs_and_trigger_agree_with_the_store() {
    let site = Site::new();
    site.probe_job("probe", MANUAL_ONLY);
    site.probe_job("other", MANUAL_ONLY);
    let host = site.start(&[]);
    let api = host.api();

    let jobs = get(&api, "/v1/jobs");
    assert_eq!(jobs.status, 200, "{jobs:?}");
    let names: Vec<&str> =
        jobs.body["jobs"].as_array().unwrap().iter().map(|j| j["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["other", "probe"], "sorted by name");
    let probe = &jobs.body["jobs"][1];
    assert_eq!(probe["schedule"]["expression"], "every 1h + 30m");
    assert!(probe["schedule"]["description"].as_str().is_some_and(|d| d.starts_with("every")));
    assert_eq!(probe["paused"], false);
    assert!(probe["next_fire"].is_string());

    let detail = get(&api, "/v1/jobs/probe");
    assert_eq!(detail.status, 200, "{detail:?}");
    let fires = detail.body["next_fires"].as_array().unwrap();
    assert_eq!(fires.len(), 5);
    assert_eq!(detail.body["manifest"]["overlap"], "skip");

    // The same Idempotency-Key starts one run.
    let first = trigger(&api, "probe", json!({ "payload": "context" }), Some("deploy-42"));
    assert_eq!(first.status, 202, "{first:?}");
    assert_eq!(first.body["status"], "started");
    let run_id = first.body["run_id"].as_str().unwrap().to_string();
    let runs = wait_key(&site, "probe", "deploy-42", 1);
    let again = trigger(&api, "probe", json!({ "payload": "context" }), Some("deploy-42"));
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(again.body["status"], "duplicate");
    assert_eq!(again.body["run_id"], run_id.as_str());
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(runs[0]["run_id"], run_id.as_str());
    assert_eq!(runs[0]["trigger"], "manual");
    assert_eq!(runs[0]["status"], "succeeded");
    let output = runs[0]["output"].as_str().unwrap();
    assert!(output.contains(r#""trigger":"manual""#), "the guest saw a manual run: {output}");
    assert!(output.contains(r#""idempotency_key":"deploy-42""#), "{output}");

    // The API's run list and detail say what the store says.
    let listed = get(&api, "/v1/runs?job=probe");
    assert_eq!(listed.status, 200);
    let from_store = site.runs("probe");
    let api_ids: Vec<&Value> =
        listed.body["runs"].as_array().unwrap().iter().map(|r| &r["run_id"]).collect();
    let store_ids: Vec<&Value> = from_store.iter().rev().map(|r| &r["run_id"]).collect();
    assert_eq!(api_ids, store_ids);
    for field in ["status", "trigger", "attempt", "idempotency_key", "version", "started_at"] {
        assert_eq!(listed.body["runs"][0][field], from_store.last().unwrap()[field], "{field}");
    }
    let one = get(&api, &format!("/v1/runs/{run_id}"));
    assert_eq!(one.status, 200);
    assert!(one.body["logs"].is_array() && one.body["output"].is_string(), "{one:?}");

    // Unknown names and runs.
    assert_error(&trigger(&api, "nope", json!({}), None), 404, "job_not_found");
    assert_error(&get(&api, "/v1/jobs/nope"), 404, "job_not_found");
    assert_error(&get(&api, "/v1/runs/nope"), 404, "run_not_found");
}

#[test]
fn one_key_sent_at_once_from_many_clients_starts_one_run() {
    let site = Site::new();
    site.probe_job("racy", &format!("{MANUAL_ONLY}overlap = \"allow\"\n"));
    let host = site.start(&[]);
    let api = host.api();
    let replies: Vec<Reply> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    trigger(&api, "racy", json!({ "payload": "sleep:300" }), Some("once"))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let started = replies.iter().filter(|r| r.body["status"] == "started").count();
    assert_eq!(started, 1, "{replies:#?}");
    assert!(replies.iter().all(|r| [200, 202, 409].contains(&r.status)), "{replies:#?}");
    // Every reply is in, and a started run is claimed before its 202: once the one run has
    // finished, the store holds every run the eight calls started.
    let runs = wait_key(&site, "racy", "once", 1);
    assert_eq!(runs.len(), 1, "exactly one run for the key: {runs:#?}");
}

#[test]
fn pause_resume_and_the_overlap_policy_gate_manual_triggers() {
    let site = Site::new();
    site.probe_job("gated", MANUAL_ONLY);
    let host = site.start(&[]);
    let api = host.api();

    let paused = post(&api, "/v1/jobs/gated/pause", &json!({ "note": "db migration" }));
    assert_eq!(paused.status, 200, "{paused:?}");
    assert_eq!(paused.body["paused"], true);
    assert_eq!(paused.body["pause_note"], "db migration");
    let detail = get(&api, "/v1/jobs/gated").body;
    assert_eq!(detail["paused"], true);
    assert!(detail["next_fire"].is_null() && detail["next_fires"] == json!([]), "{detail}");
    // The pause is durable: the store (read by `sandcron jobs`) has it too.
    let stored = site.jobs_json();
    assert_eq!(stored[0]["state"], "paused", "{stored:#?}");
    let refused = trigger(&api, "gated", json!({}), None);
    assert_error(&refused, 409, "job_paused");
    assert_eq!(refused.body["details"]["note"], "db migration");
    let forced = trigger(&api, "gated", json!({ "force": true }), Some("forced"));
    assert_eq!(forced.status, 202, "{forced:?}");
    wait_key(&site, "gated", "forced", 1);

    let resumed = post(&api, "/v1/jobs/gated/resume", &json!({}));
    assert_eq!(resumed.status, 200);
    assert_eq!(resumed.body["paused"], false);
    assert!(resumed.body["next_fire"].is_string(), "{resumed:?}");

    // overlap = skip: a second trigger while one runs is refused, unless forced.
    let long = trigger(&api, "gated", json!({ "payload": "sleep:3000" }), Some("long"));
    assert_eq!(long.status, 202, "{long:?}");
    let refused = trigger(&api, "gated", json!({}), None);
    assert_error(&refused, 409, "overlap");
    let forced = request(
        &api,
        "POST",
        "/v1/jobs/gated/trigger?force=true",
        None,
        None,
        &[("Idempotency-Key", "forced-2"), ("Content-Type", "application/json")],
    );
    assert_eq!(forced.status, 202, "{forced:?}");
    let runs = wait_key(&site, "gated", "forced-2", 1);
    assert_eq!(runs[0]["status"], "succeeded");
}

#[test]
fn backfill_runs_past_slots_once_at_a_limited_rate() {
    let site = Site::new();
    // Every 2 s; slots missed while the host is down are recorded, not run.
    site.probe_job("filler", "every = \"2s\"\nmisfire = \"skip\"\n");
    let added = now_ms();
    // The job was added a minute ago: the range below is in its life, before any run.
    site.backdate_jobs(Duration::from_secs(60));
    let host = site.start(&[]);
    let api = host.api();
    let to = added - 1_000;
    let from = to - 20_000;
    let body = json!({ "from": rfc3339(from), "to": rfc3339(to), "rate": 20 });
    let plan = post(&api, "/v1/jobs/filler/backfill", &body);
    assert_eq!(plan.status, 202, "{plan:?}");
    let queued = plan.body["queued"].as_u64().unwrap() as usize;
    assert!((10..=11).contains(&queued), "{plan:?}");
    assert_eq!(plan.body["interval_ms"], 50);
    assert_eq!(plan.body["before_schedule"], 0, "{plan:?}");
    let began = crate::host::parse_ms(plan.body["schedule_since"].as_str().unwrap());
    assert!((added - 60_000..added - 50_000).contains(&began), "{plan:?}");
    let runs = site.wait_runs("filler", Duration::from_secs(20), |runs| {
        runs.iter().filter(|r| r["trigger"] == "backfill" && r["status"] == "succeeded").count()
            == queued
    });
    let backfilled: Vec<&Value> = runs.iter().filter(|r| r["trigger"] == "backfill").collect();
    assert_eq!(backfilled.len(), queued, "{runs:#?}");
    let mut slots: Vec<i64> = backfilled.iter().map(|r| slot_ms(r)).collect();
    slots.dedup();
    assert_eq!(slots.len(), queued, "one run per slot");
    assert!(slots.iter().all(|&s| s >= from && s <= to && s % 2000 == 0));
    // Rate-limited: starts are dispatched 50 ms apart (one start's own delay, a few ms on a
    // loaded machine, can bring it nearer its neighbour, so the whole span is checked).
    let mut starts: Vec<i64> = backfilled
        .iter()
        .map(|r| crate::host::parse_ms(r["started_at"].as_str().unwrap()))
        .collect();
    starts.sort();
    let span = starts[starts.len() - 1] - starts[0];
    assert!(span >= (queued as i64 - 1) * 50 - 25, "{starts:?}");

    // The same range again: everything already ran, nothing is queued.
    let again = post(&api, "/v1/jobs/filler/backfill", &body);
    assert_eq!(again.body["queued"], 0, "{again:?}");
    assert_eq!(again.body["already_run"].as_u64().unwrap() as usize, queued);

    // Slots from before the job existed are never queued, and the reply says how many.
    let before = json!({ "from": rfc3339(began - 20_000), "to": rfc3339(began) });
    let before = post(&api, "/v1/jobs/filler/backfill", &before);
    assert_eq!(before.status, 202, "{before:?}");
    assert_eq!(before.body["queued"], 0, "{before:?}");
    let slots = before.body["slots"].as_u64().unwrap();
    assert!((10..=11).contains(&slots), "{before:?}");
    assert_eq!(before.body["before_schedule"].as_u64(), Some(slots), "{before:?}");

    let future = json!({ "from": rfc3339(from), "to": rfc3339(now_ms() + 60_000) });
    assert_error(&post(&api, "/v1/jobs/filler/backfill", &future), 400, "invalid_range");
    let huge = json!({ "from": "2020-01-01T00:00:00Z", "to": rfc3339(to) });
    assert_error(&post(&api, "/v1/jobs/filler/backfill", &huge), 400, "too_many_slots");
    let too_fast = json!({ "from": rfc3339(from), "to": rfc3339(to), "rate": 1000 });
    assert_error(&post(&api, "/v1/jobs/filler/backfill", &too_fast), 400, "invalid_argument");
    assert!(with_status(&site.runs("filler"), "running").len() <= 1);
}

#[test]
fn every_error_has_the_one_shape() {
    let site = Site::new();
    site.probe_job("probe", MANUAL_ONLY);
    let host = site.start(&[]);
    let api = host.api();
    assert_error(&get(&api, "/v1/nothing-here"), 404, "not_found");
    assert_error(&request(&api, "DELETE", "/v1/jobs", None, None, &[]), 405, "method_not_allowed");
    let bad_json = request(
        &api,
        "POST",
        "/v1/jobs/probe/trigger",
        None,
        None,
        &[("Content-Type", "application/json")],
    );
    assert_eq!(bad_json.status, 202, "an empty body is an empty request: {bad_json:?}");
    let agent_body = post_raw(&api, "/v1/jobs/probe/pause", "{not json");
    assert_error(&agent_body, 400, "invalid_argument");
    let unknown_field = post(&api, "/v1/jobs/probe/pause", &json!({ "notes": "typo" }));
    assert_error(&unknown_field, 400, "invalid_argument");
    assert_error(&get(&api, "/v1/runs?status=bogus"), 400, "invalid_argument");
    assert_error(&get(&api, "/v1/runs?since=yesterday"), 400, "invalid_argument");
    assert_error(&get(&api, "/v1/runs?limit=0"), 400, "invalid_argument");
    let long_key = "k".repeat(300);
    assert_error(&trigger(&api, "probe", json!({}), Some(&long_key)), 400, "invalid_argument");

    // Paging: `next_before` continues where the page ended, without overlap.
    for i in 0..3 {
        assert_eq!(trigger(&api, "probe", json!({}), Some(&format!("p{i}"))).status, 202);
        wait_key(&site, "probe", &format!("p{i}"), 1);
    }
    let page = get(&api, "/v1/runs?job=probe&limit=2");
    assert_eq!(page.body["runs"].as_array().unwrap().len(), 2);
    let before = page.body["next_before"].as_i64().expect("a next page");
    let rest = get(&api, &format!("/v1/runs?job=probe&limit=2&before={before}"));
    let rest_runs = rest.body["runs"].as_array().unwrap();
    assert!(!rest_runs.is_empty());
    assert!(rest_runs.iter().all(|r| r["id"].as_i64().unwrap() < before));
}
