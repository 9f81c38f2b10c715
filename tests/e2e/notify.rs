//! Failures that speak up (O7): at the default log level a failing job writes one WARN line
//! per failed run (rate-limited per job) and the host says where its API listens.

use std::time::Duration;

use crate::host::{Site, with_status};

/// The host's log at the default level (no SANDCRON_LOG / RUST_LOG).
const DEFAULT_LEVEL: [(&str, &str); 2] = [("SANDCRON_LOG", ""), ("RUST_LOG", "")];

/// The lines of `log` that report a failed run.
fn failure_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains("WARN") && l.contains("run failed:")).collect()
}

#[test]
fn failed_runs_warn_at_the_default_level_rate_limited_and_the_api_address_is_logged() {
    let site = Site::new();
    site.probe_job(
        "flaky",
        "every = \"1s\"\n[retry]\nmax_attempts = 1\n[config]\nmode = \"fatal\"\n",
    );
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
