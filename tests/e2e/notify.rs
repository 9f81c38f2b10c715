//! Failures that speak up (O7): at the default log level a failing job writes one WARN line
//! per failed run (rate-limited per job) and the host says where its API listens; with
//! webhooks in the host config file, failures and broken edits are POSTed as JSON.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::host::{Site, with_status};
use crate::net_servers::{Reply, TestServer};
use crate::store_health::holds_within;
use crate::webhook::{Recorder, config_for};

/// The host's log at the default level (no SANDCRON_LOG / RUST_LOG).
const DEFAULT_LEVEL: [(&str, &str); 2] = [("SANDCRON_LOG", ""), ("RUST_LOG", "")];

/// A job failing every second, never retried.
const FAILING: &str = "every = \"1s\"\n[retry]\nmax_attempts = 1\n[config]\nmode = \"fatal\"\n";

/// The lines of `log` that report a failed run.
fn failure_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains("WARN") && l.contains("run failed:")).collect()
}

#[test]
fn failed_runs_warn_at_the_default_level_rate_limited_and_the_api_address_is_logged() {
    let site = Site::new();
    site.probe_job("flaky", FAILING);
    let mut host = site.start_with_env(&[], &DEFAULT_LEVEL);
    let api = host.api_address();
    assert!(api.starts_with("http://127.0.0.1:"), "{api}");
    // Seven failures in well under a minute: five reported one by one, the rest counted.
    let runs = site
        .wait_runs("flaky", Duration::from_secs(30), |runs| with_status(runs, "failed").len() >= 7);
    let failed = with_status(&runs, "failed");
    assert!(failed.len() >= 7, "{runs:?}");
    host.stop();
    let log = host.log_text();
    let lines = failure_lines(&log);
    assert_eq!(lines.len(), 5, "five per job and minute:\n{log}");
    let first = lines[0];
    let run_id = failed[0]["run_id"].as_str().unwrap();
    assert!(first.contains("job=flaky") || first.contains("\"flaky\""), "{first}");
    assert!(first.contains(run_id), "the first failed run's id {run_id}: {first}");
    assert!(first.contains("run failed: fatal: probe says give up"), "{first}");
    // The default level shows warnings and the host's own lines, not every run.
    assert!(!log.contains("run started"), "{log}");
    assert!(log.contains("INFO") && log.contains("API listening on http://127.0.0.1:"), "{log}");
}

#[test]
fn a_failing_job_posts_to_the_webhook_which_is_retried_and_a_dead_one_delays_nothing() {
    let site = Site::new();
    site.probe_job("flaky", FAILING);
    site.probe_job(
        "quiet",
        "every = \"1s\"\n[retry]\nmax_attempts = 1\n[notify]\non_failure = false\n\
         [config]\nmode = \"fatal\"\n",
    );
    crate::util::sandcron(); // built before the servers start their two-minute lives
    // The first POST gets a 500: the same document must come again.
    let hook = Recorder::start(&[500, 200]);
    // Accepts and never answers: each attempt costs the whole timeout.
    let dead = TestServer::http(Reply::Silent);
    let config = site.dir.path().join("sandcron.toml");
    std::fs::write(
        &config,
        format!(
            "[notify]\nhost = \"test-host\"\ntimeout = \"2s\"\nbackoff = \"100ms\"\n\
             [[notify.webhook]]\nurl = \"{}\"\n\
             [[notify.webhook]]\nurl = \"{}\"\nevents = [\"run_failed\"]\n",
            hook.url(),
            dead.url("/dead")
        ),
    )
    .unwrap();
    let mut host = site.start(&["--config", config.to_str().unwrap()]);
    let failures = |bodies: &[Value]| {
        bodies.iter().filter(|b| b["event"] == "run_failed").cloned().collect::<Vec<_>>()
    };
    let bodies = hook.wait(Duration::from_secs(30), |b| failures(b).len() >= 3);
    let failed = failures(&bodies);
    let log = host.log_text();
    let notes: Vec<&str> = log.lines().filter(|l| l.contains("notification")).collect();
    assert!(failed.len() >= 3, "{bodies:?}\n{notes:#?}");
    assert_eq!(failed[0], failed[1], "the answer 500 makes the same document come again");
    assert_ne!(failed[1]["run_id"], failed[2]["run_id"]);
    let first = &failed[0];
    assert_eq!(first["job"], "flaky");
    assert_eq!(first["reason"], "fatal: probe says give up");
    assert_eq!(first["host"], "test-host");
    assert_eq!(first["outcome"], "guest-error");
    assert_eq!(first["will_retry"], false);
    assert!(crate::host::parse_ms(first["at"].as_str().unwrap()) > 0);
    let runs = site.runs("flaky");
    let run_ids: Vec<&Value> = with_status(&runs, "failed").iter().map(|r| &r["run_id"]).collect();
    assert!(run_ids.contains(&&first["run_id"]), "{first} not in {run_ids:?}");
    assert!(bodies.iter().all(|b| b["job"] != "quiet"), "quiet silenced its failures: {bodies:?}");

    // The dead webhook holds its own thread for 2 s per attempt; slots still start on time.
    for run in with_status(&runs, "failed") {
        let lag = crate::host::parse_ms(run["started_at"].as_str().unwrap())
            - crate::host::parse_ms(run["scheduled_at"].as_str().unwrap());
        assert!(lag < 500, "a run started {lag} ms late: {run}");
    }
    assert!(dead.connections() >= 1, "the dead webhook was tried");

    // A broken edit of a running job is reported too.
    std::fs::write(site.jobs().join("flaky.toml"), "every = \"1s\"\ntimezone = \"Mars/Base\"\n")
        .unwrap();
    let bodies =
        hook.wait(Duration::from_secs(15), |b| b.iter().any(|b| b["event"] == "reload_error"));
    let reload = bodies
        .iter()
        .find(|b| b["event"] == "reload_error")
        .unwrap_or_else(|| panic!("no reload_error in {bodies:?}\n{}", host.log_text()));
    assert_eq!(reload["job"], "flaky");
    assert!(reload["reason"].as_str().unwrap().contains("Mars/Base"), "{reload}");
    assert_eq!(reload["keeps_running"], true);

    let metrics = crate::http::get(&host.api(), "/metrics").text;
    assert!(metrics.contains("sandcron_notifications_total{outcome=\"sent\"}"), "{metrics}");
    host.stop();
}

#[test]
fn validate_lists_a_jobs_notify_table_and_rejects_a_bad_webhook_at_its_line() {
    let site = Site::new();
    let manifest = site.jobs().join("hook.toml");
    std::fs::write(
        &manifest,
        "every = \"1m\"\n[notify]\non_failure = false\nwebhooks = [\"http://127.0.0.1:9/team\"]\n",
    )
    .unwrap();
    let (code, stdout, stderr) =
        crate::util::sandcron_cmd(&["validate".as_ref(), manifest.as_os_str()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains(
            "notify:  all events, run failures silenced; webhooks: the host's and http://127.0.0.1:9/team"
        ),
        "{stdout}"
    );
    std::fs::write(&manifest, "every = \"1m\"\n[notify]\nwebhooks = [\"mailto:ops\"]\n").unwrap();
    let (code, stdout, _) = crate::util::sandcron_cmd(&["validate".as_ref(), manifest.as_os_str()]);
    assert_eq!(code, 2, "{stdout}");
    let at = format!("{}:3:13: notify.webhooks: invalid URL \"mailto:ops\"", manifest.display());
    assert!(stdout.contains(&at), "{stdout}");
}

/// The failure lines in the host's log file so far.
fn logged_failures(log: &std::path::Path) -> usize {
    failure_lines(&std::fs::read_to_string(log).unwrap_or_default()).len()
}

#[test]
fn at_a_stop_what_is_queued_for_a_slow_webhook_is_delivered_before_the_host_exits() {
    let site = Site::new();
    site.probe_job("flaky", FAILING);
    crate::util::sandcron();
    // The first document is held unanswered, so the next failure's waits in the queue.
    let hook = Recorder::holding_first(Duration::from_secs(1));
    let config = config_for(site.dir.path(), &hook.url(), "10s");
    let host = site.start(&["--config", &config]);
    let log = host.log.clone();
    let logged = holds_within(Duration::from_secs(30), || logged_failures(&log) >= 2);
    assert!(logged, "two failures logged:\n{}", host.log_text());
    let stopping = std::thread::spawn(move || {
        let mut host = host;
        let started = Instant::now();
        (host.stop(), started.elapsed())
    });
    // The webhook answers only once the host is stopping, and then a second late.
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(holds_within(Duration::from_secs(10), || text().contains("SIGTERM received")));
    hook.release();
    let (code, took) = stopping.join().unwrap();
    assert_eq!(code, 0, "{}", text());
    // Exited: whatever arrived, arrived while it ran.
    let bodies = hook.bodies();
    let failed = site.runs("flaky");
    let failed = with_status(&failed, "failed");
    assert!(failed.len() >= 2, "{failed:#?}");
    for run in &failed[..2] {
        let delivered =
            bodies.iter().any(|b| b["event"] == "run_failed" && b["run_id"] == run["run_id"]);
        assert!(
            delivered,
            "{} not delivered before the exit: {bodies:#?}\n{}",
            run["run_id"],
            text()
        );
    }
    eprintln!("stop with a slow webhook took {took:?}");
    assert!(took >= Duration::from_secs(1), "the stop waited for the slow answer: {took:?}");
    assert!(took < FLUSH_BOUND, "{took:?}");
    assert!(!text().contains("undelivered"), "{}", text());
}

/// The stop's flush bound (5 s) plus a margin for the rest of the stop.
const FLUSH_BOUND: Duration = Duration::from_secs(8);

#[test]
fn at_a_stop_a_webhook_that_never_answers_holds_the_exit_only_the_flush_bound() {
    let site = Site::new();
    site.probe_job("flaky", FAILING);
    crate::util::sandcron();
    let dead = TestServer::http(Reply::Silent);
    // Each attempt could wait a minute for an answer; the stop must not.
    let config = config_for(site.dir.path(), &dead.url("/dead"), "60s");
    let mut host = site.start(&["--config", &config]);
    let log = host.log.clone();
    let tried = holds_within(Duration::from_secs(30), || {
        logged_failures(&log) >= 1 && dead.connections() >= 1
    });
    assert!(tried, "a failure was posted:\n{}", host.log_text());
    let started = Instant::now();
    assert_eq!(host.stop(), 0, "{}", host.log_text());
    let took = started.elapsed();
    eprintln!("stop with a dead webhook took {took:?}");
    assert!(took < FLUSH_BOUND, "the dead webhook held the stop for {took:?}");
    assert!(took >= Duration::from_secs(4), "the stop gave the queue its time: {took:?}");
    let text = host.log_text();
    assert!(text.contains("stopping with notifications undelivered"), "{text}");
    assert!(text.contains(&dead.url("/dead")), "names the webhook: {text}");
}
