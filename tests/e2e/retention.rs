//! Issue 15, retention: `sandcron prune` keeps the limits and a dry run deletes nothing;
//! `serve` prunes in the background, a job's `[retention]` over the host's flags, and a
//! removed job's history goes after the host's max age; `validate` lists a job's
//! `[retention]`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sandcron::store::{Claim, JobRow, Ledger, NewRun, RunFinish, RunStatus, SqliteStore};

use crate::host::{Site, now_ms};
use crate::util::sandcron;

const MINUTE: i64 = 60_000;
const DAY: i64 = 86_400_000;

/// One finished run of `job` due at `due_ms`.
fn finished(store: &SqliteStore, job: &str, due_ms: i64, failed: bool) {
    let run_id = format!("{job}-{due_ms}");
    let claim = NewRun {
        run_id: run_id.clone(),
        job: job.into(),
        slot_ms: Some(due_ms),
        attempt: 1,
        trigger: sandcron::job::TriggerKind::Schedule,
        idempotency_key: format!("{job}@{due_ms}"),
        version: "v1".into(),
        owner: "earlier-host".into(),
        scheduled_at_ms: due_ms,
        status: RunStatus::Running,
        reason: None,
        started_at_ms: Some(due_ms),
    };
    assert_eq!(store.claim(&claim).unwrap(), Claim::Claimed);
    let status = if failed { RunStatus::Failed } else { RunStatus::Succeeded };
    let end = RunFinish {
        status,
        reason: if failed { "trap: unreachable".into() } else { String::new() },
        outcome: if failed { "trap" } else { "succeeded" }.into(),
        finished_at_ms: due_ms + 10,
        duration_ms: 10.0,
        fuel_used: None,
        peak_memory: None,
        output: String::new(),
        logs_json: "[]".into(),
        retry_at_ms: None,
        started_at_ms: Some(due_ms),
        net: None,
    };
    assert!(store.finish(&run_id, &end).unwrap());
}

fn job_row(store: &SqliteStore, name: &str) {
    store
        .upsert_job(&JobRow {
            name: name.into(),
            version: "v1".into(),
            schedule: "every 1h".into(),
            paused: false,
            pause_note: String::new(),
            breaker: sandcron::words::BreakerState::Closed,
            consecutive_failures: 0,
            schedule_epoch_ms: 0,
            updated_at_ms: 0,
        })
        .unwrap();
}

fn prune(store: &Path, args: &[&str]) -> String {
    let output = Command::new(sandcron())
        .arg("prune")
        .args(args)
        .arg("--store")
        .arg(store)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

/// The statuses of the job's runs, oldest first.
fn history(site: &Site, job: &str) -> Vec<String> {
    site.runs(job).iter().map(|run| run["status"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn prune_keeps_max_runs_and_the_last_failure_and_a_dry_run_deletes_nothing() {
    let site = Site::new();
    let now = now_ms();
    {
        let store = SqliteStore::open(&site.store()).unwrap();
        job_row(&store, "daily");
        // Oldest first, as a host writes them: "newest" is by insertion.
        for day in (1..=10).rev() {
            finished(&store, "daily", now - day * DAY, day == 8);
        }
        for day in (2..=4).rev() {
            finished(&store, "removed", now - day * DAY, false);
        }
    }
    let dry = prune(&site.store(), &["--keep-runs", "3", "--dry-run"]);
    assert!(dry.contains("daily: would remove 6 runs"), "{dry}");
    assert_eq!(site.runs("daily").len(), 10, "a dry run deletes nothing");

    let done = prune(&site.store(), &["--keep-runs", "3"]);
    assert!(done.contains("daily: removed 6 runs"), "{done}");
    // The three newest, and the failure of day 8 beyond them.
    assert_eq!(history(&site, "daily"), ["failed", "succeeded", "succeeded", "succeeded"]);
    let again = prune(&site.store(), &["--keep-runs", "3", "--forget-last-failure"]);
    assert!(again.contains("daily: removed 1 runs"), "{again}");
    assert_eq!(site.runs("removed").len(), 3, "a removed job has no max runs, only max age");

    let aged = prune(&site.store(), &["--older-than", "36h", "--job", "removed"]);
    assert!(aged.contains("removed: removed 3 runs"), "{aged}");
    assert!(site.runs("removed").is_empty());
    assert_eq!(site.runs("daily").len(), 3, "--job touches that job only");
}

#[test]
fn serve_prunes_in_the_background_with_per_job_retention() {
    let site = Site::new();
    let now = now_ms();
    {
        let store = SqliteStore::open(&site.store()).unwrap();
        finished(&store, "hostwide", now - 3 * DAY, false);
        for minute in (1..=6).rev() {
            finished(&store, "own", now - minute * MINUTE, false);
            finished(&store, "hostwide", now - minute * MINUTE, false);
        }
        for day in (2..=3).rev() {
            finished(&store, "removed", now - day * DAY, false);
        }
    }
    site.probe_job("own", "every = \"1h\"\n[retention]\nmax_runs = 2\n");
    site.probe_job("hostwide", "every = \"1h\"\n");
    let _host = site.start(&["--retention-max-age", "1d"]);
    let pruned = site.wait_runs("own", Duration::from_secs(30), |runs| runs.len() == 2);
    assert_eq!(pruned.len(), 2, "own [retention] max_runs = 2");
    let removed = site.wait_runs("removed", Duration::from_secs(10), |runs| runs.is_empty());
    assert!(removed.is_empty(), "a removed job's rows past max age: {removed:#?}");
    let hostwide = site.wait_runs("hostwide", Duration::from_secs(10), |runs| runs.len() == 6);
    assert_eq!(hostwide.len(), 6, "the host's max age: only the 3-day-old row goes");
}

#[test]
fn validate_lists_a_jobs_retention_table() {
    let site = Site::new();
    let manifest = site.jobs().join("kept.toml");
    let validate = |text: &str| {
        std::fs::write(&manifest, text).unwrap();
        let (code, stdout, stderr) =
            crate::util::sandcron_cmd(&["validate".as_ref(), manifest.as_os_str()]);
        assert_eq!(code, 0, "{stdout}{stderr}");
        let line = stdout.lines().find(|l| l.starts_with("  retention: "));
        line.unwrap_or_else(|| panic!("no retention line: {stdout}")).to_string()
    };
    assert_eq!(validate("every = \"1m\"\n"), "  retention: the host's");
    assert_eq!(
        validate(
            "every = \"1m\"\n[retention]\nmax_age = \"7d\"\nmax_runs = 200\nkeep_last_failure = false\n"
        ),
        "  retention: runs due over 7days ago pruned, newest 200 runs kept, newest failure not kept apart"
    );
    assert_eq!(
        validate("every = \"1m\"\n[retention]\nmax_runs = 50\n"),
        "  retention: newest 50 runs kept; otherwise the host's"
    );
}
