//! The scheduler through the real binary (S2-S8, M2, M4): every slot exactly once, across
//! overlap, downtime, crashes, retries, the breaker and shutdown.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow::{Break, Continue};
use std::time::Duration;

use serde_json::Value;

use crate::host::{Site, now_ms, slot_ms, with_status};
use crate::util::wait_until;

/// No slot has two rows for the same attempt, and attempts of a slot count up from 1.
fn assert_exactly_once(runs: &[Value]) {
    let mut attempts: HashMap<i64, Vec<u64>> = HashMap::new();
    for run in runs {
        attempts.entry(slot_ms(run)).or_default().push(run["attempt"].as_u64().unwrap());
    }
    for (slot, mut list) in attempts {
        list.sort();
        let expected: Vec<u64> = (1..=list.len() as u64).collect();
        assert_eq!(list, expected, "slot {slot}: attempts must be 1..n with no duplicate");
    }
}

#[test]
fn every_second_job_runs_once_per_consecutive_slot() {
    let site = Site::new();
    site.probe_job("tick", "every = \"1s\"\n");
    let mut host = site.start(&[]);
    site.wait_runs("tick", Duration::from_secs(20), |r| with_status(r, "succeeded").len() >= 8);
    assert_eq!(host.stop(), 0, "{}", host.log_text());
    let runs = site.runs("tick");
    assert!(runs.len() >= 8, "{runs:?}");
    assert_exactly_once(&runs);
    let slots: Vec<i64> = runs.iter().map(slot_ms).collect();
    for pair in slots.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            1000,
            "consecutive slots, no gap and no duplicate: {slots:?}"
        );
    }
    for run in &runs {
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["trigger"], "schedule");
        let lag = crate::host::parse_ms(run["started_at"].as_str().unwrap()) - slot_ms(run);
        assert!((0..1000).contains(&lag), "started {lag} ms after its slot");
    }
}

#[test]
fn overlap_skip_records_skipped_slots_and_buffer_one_catches_up() {
    let site = Site::new();
    site.probe_job("skipper", "every = \"1s\"\noverlap = \"skip\"\n[limits]\ntimeout = \"10s\"\n[config]\nmode = \"sleep:2500\"\n");
    site.probe_job("buffered", "every = \"1s\"\noverlap = \"buffer-one\"\n[limits]\ntimeout = \"10s\"\n[config]\nmode = \"sleep:2500\"\n");
    let mut host = site.start(&["--workers", "4"]);
    let ran = |runs: &[Value]| runs.iter().filter(|r| r["started_at"].is_string()).count();
    let late = |runs: &[Value]| {
        let late =
            |r: &&Value| crate::host::parse_ms(r["started_at"].as_str().unwrap()) - slot_ms(r);
        runs.iter().filter(|r| r["started_at"].is_string()).filter(|r| late(r) >= 1000).count()
    };
    // Until skipping has shown (skipped and finished slots) and, at one moment, buffering
    // has run more slots than skipping (read first, so skipping cannot have run later).
    let runs = |job: &str| if site.store().exists() { site.runs(job) } else { vec![] };
    let shown = wait_until(Duration::from_secs(30), || {
        let buffered = runs("buffered");
        let skipper = runs("skipper");
        let shown = with_status(&skipper, "skipped").len() >= 3
            && with_status(&skipper, "succeeded").len() >= 2
            && late(&buffered) >= 1
            && ran(&buffered) > ran(&skipper);
        if shown { Break(()) } else { Continue((buffered, skipper)) }
    });
    assert_eq!(host.stop(), 0);
    if let Err((buffered, skipper)) = shown {
        panic!(
            "in 30 s, skip never skipped 3 and ran 2, or buffering never ran more slots than \
             skipping:\nbuffered {buffered:#?}\nskipper {skipper:#?}"
        );
    }

    let skipper = site.runs("skipper");
    assert_exactly_once(&skipper);
    let skipped = with_status(&skipper, "skipped");
    assert!(skipped.len() >= 3, "{skipper:#?}");
    assert!(skipped.iter().all(|r| r["reason"] == "skipped:overlap"));
    assert!(with_status(&skipper, "succeeded").len() >= 2);

    let buffered = site.runs("buffered");
    assert_exactly_once(&buffered);
    assert!(
        late(&buffered) >= 1,
        "buffer-one runs a waiting slot after the previous run: {buffered:#?}"
    );
}

#[test]
fn kill_9_mid_run_retries_the_slot_with_the_same_key_and_never_twice() {
    let site = Site::new();
    site.probe_job(
        "long",
        "every = \"2s\"\n[limits]\ntimeout = \"30s\"\n[retry]\nmax_attempts = 10\nbackoff = \"100ms\"\n[config]\nmode = \"sleep:5000\"\n",
    );
    let mut seen_running: HashSet<String> = HashSet::new();
    for cycle in 1..=3 {
        let mut host = site.start(&[]);
        // Wait for a run this host started (the dead host's row reads `running` until
        // the new one's crash recovery marks it interrupted).
        let is_new_running = |run: &Value| {
            run["status"] == "running" && !seen_running.contains(run["run_id"].as_str().unwrap())
        };
        let runs =
            site.wait_runs("long", Duration::from_secs(20), |r| r.iter().any(is_new_running));
        let running: Vec<&Value> = runs.iter().filter(|r| is_new_running(r)).collect();
        assert!(!running.is_empty(), "cycle {cycle}: nothing started");
        seen_running.extend(running.iter().map(|r| r["run_id"].as_str().unwrap().to_string()));
        // Mid-run: its start has come (a claim taken ahead reads `running` before that).
        let started = |run: &Value| {
            run["status"] == "running"
                && run["started_at"].as_str().is_some_and(|at| crate::host::parse_ms(at) < now_ms())
        };
        site.wait_runs("long", Duration::from_secs(5), |r| {
            r.iter().any(|run| started(run) && running.iter().any(|s| s["run_id"] == run["run_id"]))
        });
        host.kill9();
    }
    // A last, clean life: recovery marks the dead run interrupted and retries it.
    let mut host = site.start(&[]);
    site.wait_runs("long", Duration::from_secs(20), |r| {
        r.iter().any(|run| run["attempt"].as_u64() >= Some(2) && run["status"] == "succeeded")
    });
    host.stop();
    let runs = site.runs("long");
    assert_exactly_once(&runs);
    let interrupted = with_status(&runs, "interrupted");
    assert!(interrupted.len() >= 3, "each kill leaves an interrupted run: {runs:#?}");
    for dead in &interrupted {
        let retry = runs.iter().find(|r| {
            r["slot"] == dead["slot"]
                && r["attempt"].as_u64() == Some(dead["attempt"].as_u64().unwrap() + 1)
        });
        let retry = retry.unwrap_or_else(|| panic!("interrupted run was not retried: {dead}"));
        assert_eq!(retry["idempotency_key"], dead["idempotency_key"]);
        assert_eq!(retry["trigger"], "retry");
    }
    let first_attempts: Vec<_> = runs.iter().filter(|r| r["attempt"] == 1).map(slot_ms).collect();
    assert_eq!(first_attempts.len(), first_attempts.iter().collect::<HashSet<_>>().len());
}

#[test]
fn downtime_goes_through_the_misfire_policy() {
    let site = Site::new();
    site.probe_job("latest", "every = \"1s\"\nmisfire = \"latest\"\n");
    site.probe_job("all", "every = \"1s\"\nmisfire = \"all\"\nmax_catchup = 2\n");
    site.probe_job("skip", "every = \"1s\"\nmisfire = \"skip\"\n");
    let mut host = site.start(&[]);
    site.wait_runs("skip", Duration::from_secs(20), |r| with_status(r, "succeeded").len() >= 2);
    assert_eq!(host.stop(), 0);
    // Kept: the downtime under test, a wall-clock gap in which about five slots pass.
    std::thread::sleep(Duration::from_secs(5));
    let mut host = site.start(&[]);
    // Until each policy has decided about the slots it slept through.
    let decided = |job: &str, caught: usize, missed: usize| {
        let runs = site.runs(job);
        runs.iter().filter(|r| r["trigger"] == "catch-up" && r["status"] != "running").count()
            >= caught
            && runs.iter().filter(|r| r["reason"] == "missed:misfire").count() >= missed
    };
    let all_decided = wait_until(Duration::from_secs(20), || {
        let done = decided("latest", 1, 3) && decided("all", 2, 2) && decided("skip", 0, 4);
        if done { Break(()) } else { Continue(()) }
    });
    assert_eq!(host.stop(), 0);

    let catch_ups = |job: &str| -> (usize, usize) {
        let runs = site.runs(job);
        assert_exactly_once(&runs);
        let caught = runs.iter().filter(|r| r["trigger"] == "catch-up").count();
        let missed = runs
            .iter()
            .filter(|r| r["status"] == "missed" && r["reason"] == "missed:misfire")
            .count();
        let mut slots: Vec<i64> = runs.iter().map(slot_ms).collect();
        slots.sort();
        for pair in slots.windows(2) {
            assert_eq!(pair[1] - pair[0], 1000, "{job}: every slot is accounted for: {slots:?}");
        }
        (caught, missed)
    };
    let (latest_runs, latest_missed) = catch_ups("latest");
    assert_eq!(latest_runs, 1, "latest: exactly one catch-up");
    assert!(latest_missed >= 3);
    let (all_runs, all_missed) = catch_ups("all");
    assert_eq!(all_runs, 2, "all: up to max_catchup");
    assert!(all_missed >= 2);
    let (skip_runs, skip_missed) = catch_ups("skip");
    assert_eq!(skip_runs, 0, "skip: none");
    assert!(skip_missed >= 4);
    assert!(all_decided.is_ok(), "the policies decided within 20 s of the restart");
}

#[test]
fn retries_back_off_and_stop_fatal_is_not_retried() {
    let site = Site::new();
    let retry =
        "[retry]\nmax_attempts = 3\nbackoff = \"200ms\"\nmax_backoff = \"1s\"\njitter = 0.0\n";
    site.probe_job("flaky", &format!("every = \"1h\"\n{retry}[config]\nmode = \"retryable\"\n"));
    site.probe_job("doomed", &format!("every = \"1h\"\n{retry}[config]\nmode = \"fatal\"\n"));
    // An hourly job only fires on its slot, so start at the slot: `every = "1h"` with a
    // phase that puts the next slot two seconds from now.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let phase = (now + 2) % 3600;
    for job in ["flaky", "doomed"] {
        let path = site.jobs().join(format!("{job}.toml"));
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("every = \"1h\"\n", &format!("every = \"1h\"\nphase = \"{phase}s\"\n"));
        std::fs::write(path, text).unwrap();
    }
    let mut host = site.start(&[]);
    site.wait_runs("flaky", Duration::from_secs(20), |r| {
        r.iter().filter(|r| r["status"] == "failed").count() >= 3
    });
    // Kept: "then no more" is under test; a fourth attempt would come within max_backoff
    // (1 s), so two quiet seconds show there is none.
    std::thread::sleep(Duration::from_secs(2));
    host.stop();

    let flaky = site.runs("flaky");
    assert_exactly_once(&flaky);
    let attempts: Vec<u64> = flaky.iter().map(|r| r["attempt"].as_u64().unwrap()).collect();
    assert_eq!(attempts, [1, 2, 3], "three attempts, then no more: {flaky:#?}");
    assert!(flaky.iter().all(|r| r["reason"] == "retryable: probe says try again"));
    let gaps: Vec<i64> = flaky
        .windows(2)
        .map(|w| {
            crate::host::parse_ms(w[1]["started_at"].as_str().unwrap())
                - crate::host::parse_ms(w[0]["finished_at"].as_str().unwrap())
        })
        .collect();
    assert!(gaps[0] >= 200 && gaps[1] >= 400, "backoff doubles: {gaps:?}");

    let doomed = site.runs("doomed");
    assert_eq!(doomed.len(), 1, "fatal is not retried: {doomed:#?}");
    assert_eq!(doomed[0]["reason"], "fatal: probe says give up");
}

#[test]
fn breaker_opens_after_failed_slots_and_a_good_probe_closes_it() {
    let site = Site::new();
    let manifest = |mode: &str| {
        format!(
            "every = \"1s\"\n[retry]\nmax_attempts = 1\n[breaker]\nfailures = 2\ncooldown = \"3s\"\n[config]\nmode = \"{mode}\"\n"
        )
    };
    site.probe_job("fragile", &manifest("retryable"));
    let mut host = site.start(&[]);
    let runs = site.wait_runs("fragile", Duration::from_secs(20), |r| {
        r.iter().any(|run| run["reason"] == "skipped:breaker-open")
    });
    assert!(runs.iter().any(|r| r["reason"] == "skipped:breaker-open"), "{runs:#?}");
    let state = &site.jobs_json()[0];
    assert_eq!(state["breaker"], "open", "{state}");
    assert!(state["state"].as_str().unwrap().starts_with("breaker open until"));

    // Fix the job (same schedule, new config): the half-open probe succeeds and closes it.
    std::fs::write(site.jobs().join("fragile.toml"), manifest("ok")).unwrap();
    let runs = site.wait_runs("fragile", Duration::from_secs(20), |r| {
        r.iter().filter(|run| run["status"] == "succeeded").count() >= 2
    });
    host.stop();
    assert!(with_status(&runs, "succeeded").len() >= 2, "{runs:#?}");
    assert_eq!(site.jobs_json()[0]["breaker"], "closed");
    // Between opening and the probe, no slot ran.
    let first_skip = runs.iter().position(|r| r["reason"] == "skipped:breaker-open").unwrap();
    let failed_before = runs[..first_skip].iter().filter(|r| r["status"] == "failed").count();
    assert_eq!(failed_before, 2, "opens after `failures` failed slots");
}

#[test]
fn sigterm_lets_a_short_run_finish_and_interrupts_a_long_one() {
    let site = Site::new();
    let hourly_soon = |mode: &str| {
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        format!(
            "every = \"1h\"\nphase = \"{}s\"\n[limits]\ntimeout = \"60s\"\n[config]\nmode = \"{mode}\"\n",
            (now + 2) % 3600
        )
    };
    site.probe_job("short", &hourly_soon("sleep:1500"));
    site.probe_job("long", &hourly_soon("sleep:30000"));
    let mut host = site.start(&["--grace", "3s"]);
    // Started: running, and its (provisional) start has come. A slot is claimed ahead of
    // its instant, so `running` alone may still be a claim that a stop gives up.
    let started = |run: &Value| {
        run["status"] == "running"
            && run["started_at"].as_str().is_some_and(|at| crate::host::parse_ms(at) <= now_ms())
    };
    site.wait_runs("long", Duration::from_secs(20), |r| r.iter().any(started));
    site.wait_runs("short", Duration::from_secs(5), |r| r.iter().any(started));
    assert_eq!(host.stop(), 0);
    let short = site.runs("short");
    assert_eq!(short[0]["status"], "succeeded", "{short:#?}");
    let long = site.runs("long");
    assert_eq!(long[0]["status"], "interrupted", "{long:#?}");
    assert_eq!(long[0]["reason"], "interrupted: host shut down before the run finished");
}
