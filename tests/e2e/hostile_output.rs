//! Hostile output (the hardening issue's log-cap defect): what a guest can hand the host
//! cheaply — empty log lines, empty fields, bare newlines on stderr — is kept only up to
//! its cap, in the `run --json` report, in the host's memory, in the store and in the API.

use std::time::Duration;

use serde_json::{Value, json};

use crate::host::Site;
use crate::http::{get, post};
use crate::util::{Run, guest, run, tempdir};

/// The default `limits.log`.
const LOG_CAP: usize = 256 << 10;
/// What an empty line costs against the log cap (its JSON frame, see `host/log.rs`).
const LINE_COST: usize = 54;

fn probe(payload: &str, extra: &[&str]) -> Run {
    let dir = tempdir();
    let mut args = vec!["--payload", payload, "--timeout", "60s"];
    args.extend_from_slice(extra);
    run(&guest("probe"), dir.path(), &args)
}

/// A run that must succeed, and its kept log lines.
fn succeeding(payload: &str, extra: &[&str]) -> (Run, Vec<Value>) {
    let run = probe(payload, extra);
    assert_eq!(run.outcome(), "succeeded", "{payload}: {:.200}", run.reason());
    let logs = run.json["logs"].as_array().expect("a logs array").clone();
    (run, logs)
}

fn serialized_len(value: &Value) -> usize {
    value.to_string().len()
}

/// Before: 5,000,000 lines kept under a 256 KiB cap (`logs_dropped` 0), a 260 MB report and
/// 4.3 GB of host RSS. An empty line now costs its JSON frame, so the kept logs serialize
/// within the cap, and a full buffer only counts.
#[test]
fn five_million_empty_log_lines_are_charged_and_counted() {
    let lines = 5_000_000u64;
    let (run, logs) = succeeding(&format!("empty-lines:{lines}"), &[]);
    let kept = logs.len() as u64;
    assert_eq!(kept, (LOG_CAP / LINE_COST) as u64, "an empty info line costs its frame");
    assert_eq!(kept + run.json["logs_dropped"].as_u64().unwrap(), lines);
    assert!(serialized_len(&run.json["logs"]) <= LOG_CAP, "logs past the cap as JSON");
    assert!(
        serialized_len(&run.json) < LOG_CAP + (16 << 10),
        "{} bytes",
        serialized_len(&run.json)
    );
    let rss = run.json["host_peak_rss"].as_u64().expect("host_peak_rss reported on Linux");
    assert!(rss < 128 << 20, "host peak RSS {rss} bytes for 5M empty lines");
}

/// Before: one line kept all 1,000,000 of its empty fields (an 8 MB report).
#[test]
fn a_line_with_a_million_empty_fields_keeps_64_and_counts_the_rest() {
    let (run, logs) = succeeding("many-fields:1000000", &["--memory", "256MiB"]);
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0]["message"], "many fields");
    assert_eq!(logs[0]["fields"].as_array().unwrap().len(), 64);
    assert_eq!(logs[0]["fields_dropped"], 1_000_000 - 64);
    assert!(serialized_len(&run.json) < 16 << 10, "{} bytes", serialized_len(&run.json));
}

/// Before: 262,144 empty stderr lines kept (the stderr byte cap let every newline through
/// as a free line), a 14 MB report.
#[test]
fn bare_newlines_on_stderr_are_charged_like_log_lines() {
    let newlines = 1_000_000u64;
    let (run, logs) = succeeding(&format!("stderr-lines:{newlines}"), &[]);
    assert!(logs.iter().all(|line| line["level"] == "stderr"));
    assert_eq!(logs.len(), LOG_CAP / LINE_COST);
    let stderr_bytes_dropped = newlines - LOG_CAP as u64;
    let lines_dropped = (LOG_CAP - LOG_CAP / LINE_COST) as u64;
    assert_eq!(run.json["logs_dropped"].as_u64().unwrap(), lines_dropped + stderr_bytes_dropped);
    assert!(serialized_len(&run.json["logs"]) <= LOG_CAP);
}

/// An hourly schedule whose next slot is far away: runs come from the API only.
const MANUAL_ONLY: &str = "every = \"1h\"\nphase = \"1800s\"\n";

/// Before: one run of a million empty lines stored a 52 MB `logs_json` row, served whole by
/// `GET /v1/runs/{id}`.
#[test]
fn a_hostile_run_is_stored_and_served_bounded() {
    let site = Site::new();
    site.probe_job("quiet", MANUAL_ONLY);
    let mut host = site.start(&[]);
    let api = host.api();
    let reply = post(&api, "/v1/jobs/quiet/trigger", &json!({ "payload": "empty-lines:1000000" }));
    assert_eq!(reply.status, 202, "{reply:?}");
    let run_id = reply.body["run_id"].as_str().unwrap().to_string();
    let runs = site.wait_runs("quiet", Duration::from_secs(60), |runs| {
        runs.iter().any(|r| r["status"] != "running")
    });
    assert!(runs.iter().any(|r| r["status"] != "running"), "quiet never finished");

    let quiet = get(&api, &format!("/v1/runs/{run_id}"));
    assert_eq!((quiet.status, quiet.body["status"].as_str()), (200, Some("succeeded")));
    assert_eq!(quiet.body["logs"].as_array().unwrap().len(), LOG_CAP / LINE_COST);
    assert!(quiet.text.len() < LOG_CAP + (16 << 10), "{} bytes served", quiet.text.len());

    assert_eq!(host.stop(), 0);
    let stored: u64 = ["sandcron.db", "sandcron.db-wal"]
        .iter()
        .filter_map(|name| std::fs::metadata(site.dir.path().join(name)).ok())
        .map(|meta| meta.len())
        .sum();
    assert!(stored < 8 << 20, "the store holds {stored} bytes");
}
