//! `sandcron logs JOB [RUN_ID] [--follow]`: one run's log lines and output, read straight
//! from the store, like `kubectl logs`.
//!
//! A run's logs are written to the store once, when it ends (the runtime caps and masks
//! them first), so "following" a job means printing each run as it ends: the command polls
//! the store every [`POLL`] (a bounded wait, never a busy loop) for runs newer than the last
//! it printed, and for those it saw running. Without RUN_ID the newest run that ended is
//! shown (`runs::newest_ran`); a slot that was skipped or missed has no logs, only a reason.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Deserialize;

use crate::cli::LogsArgs;
use crate::store::{Ledger, RunDetail, RunFilter, RunRecord, RunStatus, SqliteStore, StoreError};
use crate::views::{rfc3339, run_detail};

use super::Exit;
use super::runs::{known_job, newest_ran, open_store};

/// How often `--follow` reads the store.
const POLL: Duration = Duration::from_millis(250);
/// Runs read per poll: more runs than this ending within one poll would be missed.
const PAGE: usize = 200;

/// One stored log line (`runtime::LogLine` as serialized).
#[derive(Deserialize)]
struct StoredLine {
    at_ms: i64,
    level: String,
    message: String,
    #[serde(default)]
    fields: Vec<(String, String)>,
    #[serde(default)]
    fields_dropped: u64,
}

/// Prints the logs.
pub fn main(args: LogsArgs) -> Exit {
    let store = match open_store(args.store.as_deref()) {
        Ok(store) => store,
        Err(exit) => return exit,
    };
    match follow_or_print(&store, &args) {
        Ok(exit) => exit,
        Err(err) => {
            eprintln!("error: {err}");
            Exit::HostError
        }
    }
}

fn follow_or_print(store: &SqliteStore, args: &LogsArgs) -> Result<Exit, StoreError> {
    if !known_job(store, &args.job)? {
        eprintln!("error: no job named {:?} in this store (see `sandcron jobs`)", args.job);
        return Ok(Exit::InvalidInput);
    }
    let first = match &args.run {
        Some(run_id) => match store.run(run_id)?.filter(|run| run.record.job == args.job) {
            Some(run) => Some(run),
            None => {
                eprintln!(
                    "error: {} has no run {run_id:?} (see `sandcron runs {}`)",
                    args.job, args.job
                );
                return Ok(Exit::InvalidInput);
            }
        },
        None => match newest_ran(store, &args.job)? {
            Some(run) => store.run(&run.run_id)?,
            None => None,
        },
    };
    let Some(first) = first else {
        if !args.follow {
            println!("no runs of {} yet", args.job);
            return Ok(Exit::Success);
        }
        return follow(store, args, 0);
    };
    let first = if args.follow { wait_until_ended(store, first)? } else { first };
    print_run(&first, args.json);
    if !args.follow || args.run.is_some() {
        return Ok(Exit::Success);
    }
    follow(store, args, first.record.id)
}

/// Polls until `run` is no longer running.
fn wait_until_ended(store: &SqliteStore, mut run: RunDetail) -> Result<RunDetail, StoreError> {
    if run.record.status == RunStatus::Running {
        eprintln!("run {} is running; its logs are printed when it ends", run.record.run_id);
    }
    while run.record.status == RunStatus::Running {
        std::thread::sleep(POLL);
        match store.run(&run.record.run_id)? {
            Some(now) => run = now,
            None => break, // released before it started: nothing more will come
        }
    }
    Ok(run)
}

/// Prints every run of the job newer than `high` as it ends, until the process is stopped.
fn follow(store: &SqliteStore, args: &LogsArgs, mut high: i64) -> Result<Exit, StoreError> {
    let filter = RunFilter { job: Some(args.job.clone()), limit: PAGE, ..RunFilter::default() };
    // Runs seen running, printed once they end.
    let mut pending = BTreeSet::new();
    loop {
        let page = store.runs(&filter)?;
        // A run released before it started (its row deleted) never ends: forget whatever
        // fell out of the page.
        let oldest = page.last().map_or(i64::MAX, |run| run.id);
        pending.retain(|id| *id >= oldest);
        let mut runs: Vec<RunRecord> =
            page.into_iter().filter(|run| run.id > high || pending.contains(&run.id)).collect();
        runs.sort_by_key(|run| run.id);
        for run in runs {
            high = high.max(run.id);
            if run.status == RunStatus::Running {
                pending.insert(run.id);
                continue;
            }
            pending.remove(&run.id);
            if let Some(detail) = store.run(&run.run_id)? {
                print_run(&detail, args.json);
            }
        }
        std::thread::sleep(POLL);
    }
}

fn print_run(run: &RunDetail, json: bool) {
    if json {
        println!("{}", run_detail(run));
        return;
    }
    print!("{}", render(run));
}

/// The text form: a header line, the log lines, then the output.
fn render(run: &RunDetail) -> String {
    use std::fmt::Write;
    let record = &run.record;
    let mut text = String::new();
    let when = record.started_at_ms.or(record.slot_ms).unwrap_or(record.scheduled_at_ms);
    let _ = write!(
        text,
        "== {} run {} (attempt {}, {}) at {}: {}",
        record.job,
        record.run_id,
        record.attempt,
        record.trigger,
        rfc3339(when),
        record.status
    );
    if !record.reason.is_empty() {
        let _ = write!(text, ": {}", record.reason);
    }
    if let Some(ms) = record.duration_ms {
        let _ = write!(text, " ({ms:.1} ms)");
    }
    text.push('\n');
    let lines: Vec<StoredLine> = serde_json::from_str(&run.logs_json).unwrap_or_default();
    for line in &lines {
        let _ = write!(text, "{} {:<6} {}", rfc3339(line.at_ms), line.level, line.message);
        for (key, value) in &line.fields {
            let _ = write!(text, " {key}={value}");
        }
        if line.fields_dropped > 0 {
            let _ = write!(text, " (+{} fields dropped)", line.fields_dropped);
        }
        text.push('\n');
    }
    if !run.output.is_empty() {
        text.push_str("-- output --\n");
        text.push_str(&run.output);
        if !run.output.ends_with('\n') {
            text.push('\n');
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_renders_as_header_lines_and_output() {
        let record = RunRecord {
            id: 7,
            run_id: "r-1".into(),
            job: "backup".into(),
            slot_ms: Some(60_000),
            attempt: 2,
            status: RunStatus::Failed,
            reason: "retryable: disk full".into(),
            outcome: "guest-error".into(),
            trigger: crate::job::TriggerKind::Retry,
            version: "v1".into(),
            idempotency_key: "k".into(),
            owner: "o".into(),
            scheduled_at_ms: 60_000,
            started_at_ms: Some(61_000),
            finished_at_ms: Some(62_000),
            duration_ms: Some(5.126),
            fuel_used: None,
            peak_memory: None,
            retry_at_ms: None,
            net: None,
        };
        let run = RunDetail {
            record,
            output: "partial".into(),
            logs_json: r#"[{"at_ms":61500,"level":"warn","message":"low space","fields":[["free","3"]]},{"at_ms":61600,"level":"stderr","message":"Traceback"}]"#.into(),
        };
        assert_eq!(
            render(&run),
            "== backup run r-1 (attempt 2, retry) at 1970-01-01T00:01:01.000Z: failed: \
             retryable: disk full (5.1 ms)\n\
             1970-01-01T00:01:01.500Z warn   low space free=3\n\
             1970-01-01T00:01:01.600Z stderr Traceback\n\
             -- output --\npartial\n"
        );
    }
}
