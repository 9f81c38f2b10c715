//! `sandcron jobs`: every job the store knows, with schedule, next fire, state and last
//! outcome, read straight from the store. Next fire times are recomputed here from the
//! stored schedule (the schedule module is pure), so the host writes nothing per slot.
//!
//! The store alone cannot say whether anything will fire, so the host's lock file does:
//! with no host holding it, no next fire is shown and the jobs read `stopped`. A job whose
//! latest edit failed shows the error beside the version still running; a job file that
//! never loaded is listed as `invalid` with its error; a job whose code the running host is
//! still compiling in the background (a cold compile) is listed as `compiling`, or, if an
//! older version runs meanwhile, says so under it.

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::cli::JobsArgs;
use crate::schedule::ScheduleSpec;
use crate::store::{
    CompilingRow, JobRow, Ledger, LoadErrorRow, RunRecord, SqliteStore, StoreError,
};
use crate::views::rfc3339;
use crate::words::BreakerState;

use super::runs::{newest_ran, open_store};
use super::{Exit, default_store_path};

/// Whether a host is serving `store`: `serve` holds an exclusive lock on `STORE.lock` for
/// as long as it runs (daemon.rs), so a shared lock that can be taken means none is.
pub(crate) fn host_running(store: &Path) -> bool {
    let Ok(file) = std::fs::File::open(store.with_extension("lock")) else {
        return false;
    };
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            false
        }
        Err(_) => true,
    }
}

/// Prints the jobs.
pub fn main(args: JobsArgs) -> Exit {
    let path = args.store.clone().unwrap_or_else(default_store_path);
    let store = match open_store(Some(&path)) {
        Ok(store) => store,
        Err(exit) => return exit,
    };
    let host = host_running(&path);
    let rows = match rows(&store, host) {
        Ok(rows) => rows,
        Err(err) => {
            eprintln!("error: {err}");
            return Exit::HostError;
        }
    };
    if args.json {
        println!("{}", Value::Array(rows));
        return Exit::Success;
    }
    if !host {
        println!(
            "no host is serving {}: nothing fires until `sandcron serve` runs",
            path.display()
        );
    }
    if rows.is_empty() {
        println!("no jobs yet");
        return Exit::Success;
    }
    print!("{}", table(&rows));
    Exit::Success
}

/// What the store says about a job's latest load, beside its row.
struct Load<'a> {
    /// Its latest load failed.
    error: Option<&'a LoadErrorRow>,
    /// The running host is compiling its latest version (none while no host runs).
    compiling: Option<&'a CompilingRow>,
}

impl Load<'_> {
    /// Whether the running host holds a version of the job: a failed load or a compile
    /// without a running version means it holds none (it has not loaded since it started).
    fn running(&self) -> bool {
        self.error.is_none_or(|e| e.running_version.is_some())
            && self.compiling.is_none_or(|c| c.running_version.is_some())
    }
}

/// One JSON object per job row, then one per job file that never loaded or is still
/// compiling for the first time.
fn rows(store: &SqliteStore, host: bool) -> Result<Vec<Value>, StoreError> {
    let errors: HashMap<String, LoadErrorRow> =
        store.load_errors()?.into_iter().map(|row| (row.name.clone(), row)).collect();
    // Only the running host compiles: a row left by a host that stopped means nothing.
    let compiling: HashMap<String, CompilingRow> = match host {
        true => store.compiling()?.into_iter().map(|row| (row.name.clone(), row)).collect(),
        false => HashMap::new(),
    };
    let now = DateTime::<Utc>::from(std::time::SystemTime::now());
    let mut rows = Vec::new();
    let jobs = store.jobs()?;
    for job in &jobs {
        let load = Load { error: errors.get(&job.name), compiling: compiling.get(&job.name) };
        let last = newest_ran(store, &job.name)?;
        rows.push(job_row(job, &load, host, last.as_ref(), now));
    }
    let no_row = |name: &str| !jobs.iter().any(|job| job.name == name);
    for compile in compiling.values().filter(|c| no_row(&c.name)) {
        rows.push(json!({
            "name": compile.name,
            "state": "compiling",
            "host_running": host,
            "running": false,
            "compiling_since": rfc3339(compile.since_ms),
            "next_fire": null,
        }));
    }
    let first_compile = |name: &str| no_row(name) && !compiling.contains_key(name);
    for error in errors.values().filter(|e| first_compile(&e.name)) {
        rows.push(json!({
            "name": error.name,
            "state": "invalid",
            "host_running": host,
            "running": false,
            "load_error": error.error,
            "next_fire": null,
        }));
    }
    rows.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(rows)
}

fn job_row(
    job: &JobRow,
    load: &Load,
    host: bool,
    last: Option<&RunRecord>,
    now: DateTime<Utc>,
) -> Value {
    let running = host && load.running();
    let schedule =
        (!job.schedule.is_empty()).then(|| ScheduleSpec::from_record(&job.schedule).ok()).flatten();
    let after = now.max(DateTime::from_timestamp_millis(job.schedule_epoch_ms).unwrap_or(now));
    let next = schedule.as_ref().filter(|_| running && !job.paused);
    let next = next.and_then(|s| s.next_after(after));
    let state = match job.breaker {
        _ if !host => if job.paused { "paused, stopped" } else { "stopped" }.to_string(),
        _ if !running && load.compiling.is_some() => "compiling".to_string(),
        _ if !running => "invalid, not running".to_string(),
        BreakerState::Open { until_ms } => format!("breaker open until {}", rfc3339(until_ms)),
        BreakerState::HalfOpen => "breaker half-open".to_string(),
        BreakerState::Closed if job.paused => "paused".to_string(),
        BreakerState::Closed => "active".to_string(),
    };
    json!({
        "name": job.name,
        "version": job.version,
        "schedule": schedule.as_ref().map(|s| s.describe()),
        "timezone": schedule.as_ref().map(|s| s.timezone().name().to_string()),
        "next_fire": next.map(|t| rfc3339(t.timestamp_millis())),
        "state": state,
        "host_running": host,
        "running": running,
        "pause_note": job.paused.then_some(&job.pause_note),
        "breaker": job.breaker,
        "consecutive_failures": job.consecutive_failures,
        "load_error": load.error.map(|e| &e.error),
        "compiling_since": load.compiling.map(|c| rfc3339(c.since_ms)),
        "last_status": last.map(|r| r.status.as_str()),
        "last_reason": last.map(|r| r.reason.clone()),
        "last_at": last.map(|r| rfc3339(r.finished_at_ms.unwrap_or(r.scheduled_at_ms))),
    })
}

/// The text table: columns as wide as their widest cell, then each load error or compile
/// in the background under its job.
fn table(rows: &[Value]) -> String {
    let text = |row: &Value, key: &str| row[key].as_str().unwrap_or("-").to_string();
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|row| {
            let last = match (row["last_status"].as_str(), row["last_reason"].as_str()) {
                (Some(status), Some(reason)) if !reason.is_empty() => format!("{status}: {reason}"),
                (Some(status), _) => status.to_string(),
                _ => "-".to_string(),
            };
            [
                text(row, "name"),
                text(row, "schedule"),
                text(row, "next_fire"),
                text(row, "state"),
                last,
            ]
        })
        .collect();
    let header = ["JOB", "SCHEDULE", "NEXT FIRE (UTC)", "STATE", "LAST"];
    let widths: Vec<usize> = (0..4)
        .map(|i| {
            cells.iter().map(|c| c[i].chars().count()).chain([header[i].len()]).max().unwrap_or(0)
        })
        .collect();
    let line = |cols: [&str; 5]| {
        let mut out = String::new();
        for (i, col) in cols.iter().enumerate().take(4) {
            out.push_str(&format!("{col:<width$}  ", width = widths[i]));
        }
        out.push_str(cols[4]);
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(header);
    for (row, cell) in rows.iter().zip(&cells) {
        out.push_str(&line([&cell[0], &cell[1], &cell[2], &cell[3], &cell[4]]));
        if let Some(error) = row["load_error"].as_str() {
            let what = if row["running"] == true {
                "latest edit failed; the previous version keeps running"
            } else {
                "not loaded"
            };
            out.push_str(&format!("  ! {what}: {error}\n"));
        }
        if let Some(since) = row["compiling_since"].as_str() {
            let what = if row["running"] == true {
                "a new version is compiling in the background; the previous version keeps running"
            } else {
                "compiling in the background; it runs once compiled"
            };
            out.push_str(&format!("  ~ {what} (since {since})\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_whatever_the_state_and_errors_go_under_their_job() {
        let rows = [
            json!({"name": "a", "schedule": "every 10 seconds", "next_fire": null,
                   "state": "breaker open until 2026-11-29T23:00:00.000Z",
                   "last_status": "failed", "last_reason": "trap: boom"}),
            json!({"name": "bb", "schedule": "every minute", "next_fire": "2026-11-29T23:01:00.000Z",
                   "state": "active", "running": true, "load_error": "bb.toml:2:12: bad",
                   "last_status": "succeeded", "last_reason": ""}),
        ];
        let text = table(&rows);
        let lines: Vec<&str> = text.lines().collect();
        let last_col =
            |line: &str| line.find("LAST").or(line.find("failed")).or(line.find("succeeded"));
        assert_eq!(last_col(lines[0]), last_col(lines[1]), "{text}");
        assert_eq!(last_col(lines[1]), last_col(lines[2]), "{text}");
        assert!(lines[1].ends_with("failed: trap: boom"), "{text}");
        assert_eq!(
            lines[3],
            "  ! latest edit failed; the previous version keeps running: bb.toml:2:12: bad"
        );
    }

    #[test]
    fn a_job_compiling_reads_compiling_unless_a_version_of_it_runs() {
        let db = crate::store::TempDb::new("jobs-compiling");
        let store = SqliteStore::open(&db.path).unwrap();
        for name in ["known", "edited"] {
            let job = JobRow {
                name: name.into(),
                version: "v1".into(),
                schedule: String::new(),
                paused: false,
                pause_note: String::new(),
                breaker: BreakerState::Closed,
                consecutive_failures: 0,
                schedule_epoch_ms: 0,
                updated_at_ms: 0,
            };
            store.upsert_job(&job).unwrap();
        }
        let compiling = |name: &str, running: Option<&str>| CompilingRow {
            name: name.into(),
            since_ms: 1_000,
            running_version: running.map(str::to_owned),
        };
        // `known` is in the store from an earlier host, and this host has not loaded it yet;
        // `edited` runs v1 while v2 compiles; `new` has never loaded.
        store.set_compiling(&compiling("known", None)).unwrap();
        store.set_compiling(&compiling("edited", Some("v1"))).unwrap();
        store.set_compiling(&compiling("new", None)).unwrap();
        let state = |rows: &[Value], name: &str| {
            let row = rows.iter().find(|row| row["name"] == name).unwrap();
            (row["state"].as_str().unwrap().to_owned(), row["compiling_since"].is_string())
        };
        let listed = rows(&store, true).unwrap();
        assert_eq!(listed.len(), 3, "{listed:#?}");
        assert_eq!(state(&listed, "known"), ("compiling".into(), true));
        assert_eq!(state(&listed, "edited"), ("active".into(), true));
        assert_eq!(state(&listed, "new"), ("compiling".into(), true));
        // With no host running, a compile row is an earlier host's leftover: not shown.
        let listed = rows(&store, false).unwrap();
        assert_eq!(listed.len(), 2, "{listed:#?}");
        assert_eq!(state(&listed, "known"), ("stopped".into(), false));
    }

    #[test]
    fn a_compile_in_the_background_is_said_under_its_job() {
        let since = "2026-11-30T06:00:00.000Z";
        let rows = [
            json!({"name": "js", "state": "active", "running": true, "compiling_since": since}),
            json!({"name": "py", "state": "compiling", "running": false, "compiling_since": since}),
        ];
        let text = table(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].starts_with("js ") && lines[1].contains("active"), "{text}");
        assert_eq!(
            lines[2],
            format!(
                "  ~ a new version is compiling in the background; the previous version keeps \
                 running (since {since})"
            )
        );
        assert!(lines[3].starts_with("py ") && lines[3].contains("compiling"), "{text}");
        let first =
            format!("  ~ compiling in the background; it runs once compiled (since {since})");
        assert_eq!(lines[4], first);
    }
}
