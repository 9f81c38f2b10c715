//! Hostile output (the hardening issue's log-cap and reason-cap defects): what a guest can
//! hand the host cheaply — empty log lines, empty fields, bare newlines on stderr, a huge
//! error or panic text — is kept only up to its cap, in the `run --json` report, in the
//! host's memory, in the store, in the API and in the host's own log.

use std::time::Duration;

use serde_json::{Value, json};

use crate::host::Site;
use crate::http::{get, post};
use crate::util::{Run, guest, run, tempdir};

/// The default `limits.log`.
const LOG_CAP: usize = 256 << 10;
/// What an empty line costs against the log cap (its JSON frame, see `host/log.rs`).
const LINE_COST: usize = 54;
/// Bytes of a failure's message kept in its reason (`runtime/truncate.rs`).
const REASON_CAP: usize = 4 << 10;
/// A reason: its kind prefix (`fatal: `, `trap: panic: `), the kept message, the marker.
const REASON_MAX: usize = REASON_CAP + 64;

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

/// Before: the whole 20 MB message was the reason (in the report, the store, every
/// `GET /v1/jobs` and the host's log line).
#[test]
fn a_20mb_error_message_is_cut_to_the_reason_cap() {
    let run = probe("big-error:20000000", &[]);
    assert_eq!((run.outcome(), run.code), ("guest-error", 3), "{:.200}", run.reason());
    let reason = run.reason();
    assert!(reason.starts_with("fatal: xxxx"), "{reason:.200}");
    assert!(reason.ends_with(&format!("x… [{} bytes truncated]", 20_000_000 - REASON_CAP)));
    assert!(reason.len() <= REASON_MAX, "{} bytes", reason.len());
    assert_eq!(run.json["retryable"], false, "still the guest's own fatal error");
}

/// Before: the panic text read back from stderr was the reason, up to the log cap
/// (16 MiB at the ceiling), its location at the far end.
#[test]
fn a_huge_panic_message_is_cut_and_keeps_its_location() {
    let run = probe("big-panic:200000", &[]);
    assert_eq!((run.outcome(), run.code), ("trap", 4), "{:.200}", run.reason());
    let reason = run.reason();
    assert!(reason.starts_with("trap: panic: xxxx"), "{reason:.200}");
    let tail = &reason[reason.floor_char_boundary(reason.len().saturating_sub(200))..];
    assert!(reason.contains(" bytes truncated] (at tests/guests/probe/src/output.rs:"), "…{tail}");
    assert!(reason.len() <= REASON_MAX, "{} bytes", reason.len());
}

/// Before: an error message over wasmtime's 128 MiB per-call transfer ("hostcall fuel")
/// failed the lift and the run was a `host-error`, as if the host had broken; under it,
/// the whole message was kept. Now over it is a named limit, and under it the guest's error
/// with its reason cut. (A 300 MB message needs a memory limit above 300 MB; 129 MiB
/// crosses the same line.)
#[test]
fn error_messages_either_side_of_the_transfer_limit() {
    let over = probe(&format!("big-error:{}", 129u64 << 20), &["--memory", "512MiB"]);
    assert_eq!((over.outcome(), over.code), ("limit", 5), "{:.200}", over.reason());
    assert_eq!(
        over.reason(),
        "transfer limit 128MiB exceeded (data handed to the host in one call)"
    );

    let under = probe("big-error:100000000", &["--memory", "512MiB"]);
    assert_eq!((under.outcome(), under.code), ("guest-error", 3), "{:.200}", under.reason());
    assert!(under.reason().len() <= REASON_MAX, "{} bytes", under.reason().len());
}

/// An hourly schedule whose next slot is far away: runs come from the API only.
const MANUAL_ONLY: &str = "every = \"1h\"\nphase = \"1800s\"\n";

/// Before: one run of a million empty lines stored a 52 MB `logs_json` row served whole by
/// `GET /v1/runs/{id}`; a 20 MB error made `GET /v1/jobs`, `sandcron jobs` and the host's
/// "run finished" log line 20 MB each.
#[test]
fn a_hostile_run_is_stored_and_served_bounded() {
    let site = Site::new();
    site.probe_job("quiet", MANUAL_ONLY);
    site.probe_job("loud", MANUAL_ONLY);
    let mut host = site.start(&[]);
    let api = host.api();
    let mut run_ids = Vec::new();
    for (job, payload) in [("quiet", "empty-lines:1000000"), ("loud", "big-error:20000000")] {
        let reply = post(&api, &format!("/v1/jobs/{job}/trigger"), &json!({ "payload": payload }));
        assert_eq!(reply.status, 202, "{reply:?}");
        run_ids.push(reply.body["run_id"].as_str().unwrap().to_string());
        let runs = site.wait_runs(job, Duration::from_secs(60), |runs| {
            runs.iter().any(|r| r["status"] != "running")
        });
        assert!(runs.iter().any(|r| r["status"] != "running"), "{job} never finished");
    }

    let quiet = get(&api, &format!("/v1/runs/{}", run_ids[0]));
    assert_eq!((quiet.status, quiet.body["status"].as_str()), (200, Some("succeeded")));
    assert_eq!(quiet.body["logs"].as_array().unwrap().len(), LOG_CAP / LINE_COST);
    assert!(quiet.text.len() < LOG_CAP + (16 << 10), "{} bytes served", quiet.text.len());

    let loud = get(&api, &format!("/v1/runs/{}", run_ids[1]));
    assert_eq!(loud.body["status"], "failed");
    assert!(loud.text.len() < 16 << 10, "{} bytes served", loud.text.len());
    let jobs = get(&api, "/v1/jobs");
    assert!(jobs.text.len() < 16 << 10, "GET /v1/jobs is {} bytes", jobs.text.len());
    let loud_job = |jobs: &[Value]| -> Value {
        jobs.iter().find(|j| j["name"] == "loud").expect("loud is listed").clone()
    };
    let served = loud_job(jobs.body["jobs"].as_array().unwrap())["last_run"]["reason"].clone();
    let served = served.as_str().unwrap_or_default();
    assert!(served.starts_with("fatal: xxxx") && served.len() <= REASON_MAX, "{served:.200}");
    let listed = loud_job(&site.jobs_json())["last_reason"].clone();
    assert_eq!(listed.as_str(), Some(served), "`sandcron jobs` lists the same capped reason");

    assert_eq!(host.stop(), 0);
    let log = host.log_text();
    assert!(log.contains("fatal: xxxx"), "the run-finished line names the reason:\n{log:.2000}");
    assert!(log.len() < 64 << 10, "host log is {} bytes", log.len());
    let stored: u64 = ["sandcron.db", "sandcron.db-wal"]
        .iter()
        .filter_map(|name| std::fs::metadata(site.dir.path().join(name)).ok())
        .map(|meta| meta.len())
        .sum();
    assert!(stored < 8 << 20, "the store holds {stored} bytes");
}
