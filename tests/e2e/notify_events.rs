//! The scheduler's other notifications, end to end (issue 15): with the built host and a
//! webhook served by the test, a breaker that opens and closes posts `breaker_opened` and
//! `breaker_closed`, a new version rolled back posts `rollback`, and slots recorded as
//! missed (after downtime, or past their starting deadline) post `missed_slots`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::host::{Site, now_ms, parse_ms, with_status};
use crate::store_health::{holds_within, metric};
use crate::webhook::{Recorder, config_for};

/// A webhook recording every event, and a host on `site` sending them to it.
fn host_with_hook(site: &Site, extra: &[&str]) -> (Recorder, crate::host::Host) {
    crate::util::sandcron(); // built before the recorder starts its two-minute life
    let hook = Recorder::start(&[200]);
    let config = config_for(site.dir.path(), &hook.url(), "2s");
    let mut args = vec!["--config", config.as_str()];
    args.extend_from_slice(extra);
    let host = site.start(&args);
    (hook, host)
}

/// Where the first document of `event` is among `bodies`.
fn position(bodies: &[Value], event: &str) -> usize {
    bodies.iter().position(|b| b["event"] == event).unwrap_or(usize::MAX)
}

#[test]
fn a_breaker_posts_breaker_opened_and_when_its_probe_succeeds_breaker_closed() {
    let site = Site::new();
    let manifest = |mode: &str| {
        format!(
            "every = \"1s\"\n[retry]\nmax_attempts = 1\n[breaker]\nfailures = 2\n\
             cooldown = \"2s\"\n[config]\nmode = \"{mode}\"\n"
        )
    };
    site.probe_job("fragile", &manifest("retryable"));
    let (hook, mut host) = host_with_hook(&site, &[]);
    let opened = hook.event("breaker_opened", Duration::from_secs(30), &host.log);
    assert_eq!(opened["job"], "fragile", "{opened}");
    assert_eq!(opened["host"], "test-host");
    assert_eq!(opened["failures"], 2, "{opened}");
    assert_eq!(opened["run_id"], Value::Null);
    let (at, until) = (parse_ms(opened["at"].as_str().unwrap()), opened["until"].as_str());
    let until = parse_ms(until.unwrap());
    assert!((1_000..=3_000).contains(&(until - at)), "paused for the 2 s cooldown: {opened}");
    let reason = opened["reason"].as_str().unwrap();
    assert!(reason.starts_with("2 consecutive failed slots; paused until "), "{reason}");

    // Fixed (same schedule, new config): the half-open probe succeeds and closes it.
    std::fs::write(site.jobs().join("fragile.toml"), manifest("ok")).unwrap();
    let closed = hook.event("breaker_closed", Duration::from_secs(30), &host.log);
    host.stop();
    assert_eq!(closed["job"], "fragile", "{closed}");
    assert_eq!(closed["reason"], "the probe run succeeded");
    let bodies = hook.bodies();
    assert!(position(&bodies, "breaker_opened") < position(&bodies, "breaker_closed"));
    let opened_count = bodies.iter().filter(|b| b["event"] == "breaker_opened").count();
    assert_eq!(opened_count, 1, "one opening, one document: {bodies:#?}");
}

#[test]
fn a_new_version_rolled_back_posts_rollback_with_both_versions() {
    let site = Site::new();
    let manifest = |mode: &str| {
        format!(
            "every = \"1s\"\nrollback_on_failure = 2\n[retry]\nmax_attempts = 1\n\
             [config]\nmode = \"{mode}\"\n"
        )
    };
    site.probe_job("careful", &manifest("ok"));
    let (hook, mut host) = host_with_hook(&site, &[]);
    site.wait_runs("careful", Duration::from_secs(20), |r| with_status(r, "succeeded").len() >= 2);
    std::fs::write(site.jobs().join("careful.toml"), manifest("retryable")).unwrap();
    let rollback = hook.event("rollback", Duration::from_secs(30), &host.log);
    let runs = site.wait_runs("careful", Duration::from_secs(10), |r| {
        r.last().is_some_and(|run| run["version"] == rollback["to"] && run["status"] != "running")
    });
    host.stop();
    assert_eq!(rollback["job"], "careful", "{rollback}");
    assert_eq!(rollback["failures"], 2, "{rollback}");
    let (from, to) = (&rollback["from"], &rollback["to"]);
    assert_ne!(from, to);
    assert_eq!(runs[0]["version"], *to, "back to the version that ran first: {runs:#?}");
    let bad: Vec<&Value> = runs.iter().filter(|r| r["version"] == *from).collect();
    assert_eq!(bad.len(), 2, "the new version's two failed slots: {runs:#?}");
    assert!(bad.iter().all(|r| r["status"] == "failed"), "{bad:#?}");
    let reason = rollback["reason"].as_str().unwrap();
    assert!(
        reason.contains("failed its first 2 slot(s)") && reason.contains("restored"),
        "{reason}"
    );
}

#[test]
fn slots_missed_while_the_host_was_down_post_missed_slots() {
    let site = Site::new();
    site.probe_job("steady", "every = \"1s\"\nmisfire = \"skip\"\n");
    let (hook, mut host) = host_with_hook(&site, &[]);
    site.wait_runs("steady", Duration::from_secs(20), |r| !with_status(r, "succeeded").is_empty());
    assert_eq!(host.stop(), 0);
    // Down across a few slots (time passing, not synchronisation).
    let stopped = now_ms();
    assert!(holds_within(Duration::from_secs(10), || now_ms() >= stopped + 4_500));
    let config = config_for(site.dir.path(), &hook.url(), "2s");
    let mut host = site.start(&["--config", &config]);
    let missed = hook.event("missed_slots", Duration::from_secs(20), &host.log);
    host.stop();
    assert_eq!(missed["job"], "steady", "{missed}");
    assert_eq!(missed["reason"], "missed:misfire", "{missed}");
    let recorded = site.runs("steady");
    let recorded = recorded.iter().filter(|r| r["reason"] == "missed:misfire").count();
    assert!(recorded >= 2, "{recorded} missed slots recorded");
    assert_eq!(missed["count"], recorded, "the document counts the recorded slots");
}

/// A slot that waits for a worker past its deadline is recorded `missed:deadline` by the
/// run task (scheduler/attempt.rs), not by the scheduler's own deadline check: it too
/// posts `missed_slots` and counts in `sandcron_slots_not_run_total` (issue 15; before,
/// neither happened).
#[test]
fn a_slot_that_waited_past_its_starting_deadline_posts_missed_slots() {
    let site = Site::new();
    site.probe_job("hog", "every = \"1h\"\n[limits]\ntimeout = \"60s\"\n");
    site.probe_job("punctual", "every = \"1s\"\nstarting_deadline = \"500ms\"\n");
    let (hook, mut host) = host_with_hook(&site, &["--workers", "1"]);
    // The only worker is busy for 4 s: punctual's next slot waits past its deadline.
    let trigger = json!({ "payload": "sleep:4000" });
    let started = crate::http::post(&host.api(), "/v1/jobs/hog/trigger", &trigger);
    assert_eq!(started.status, 202, "{started:?}");
    let runs = site.wait_runs("punctual", Duration::from_secs(20), |r| {
        r.iter().any(|run| run["reason"] == "missed:deadline")
    });
    assert!(runs.iter().any(|r| r["reason"] == "missed:deadline"), "{runs:#?}");
    let bodies = hook.wait(Duration::from_secs(5), |b| {
        b.iter().any(|b| b["event"] == "missed_slots" && b["reason"] == "missed:deadline")
    });
    let labels = "reason=\"missed:deadline\"";
    let counted = metric(&host.api(), "sandcron_slots_not_run_total", labels);
    host.stop();
    let missed = bodies.iter().find(|b| b["event"] == "missed_slots");
    let missed = missed.unwrap_or_else(|| {
        panic!("no missed_slots document (slots_not_run_total counted {counted}): {bodies:#?}")
    });
    assert!(counted >= 1.0, "the metric counts it too: {counted}");
    assert_eq!(missed["job"], "punctual", "{missed}");
    assert_eq!(missed["reason"], "missed:deadline", "{missed}");
    assert!(missed["count"].as_u64().is_some_and(|n| n >= 1), "{missed}");
}
