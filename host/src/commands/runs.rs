//! `sandcron runs JOB`: a job's runs, newest first, read straight from the store (so it
//! works while the host runs).

use crate::cli::RunsArgs;
use crate::store::{Ledger, RunFilter, RunRecord, RunStatus, SqliteStore, StoreError};
use crate::views::{rfc3339, run_detail, run_json};

use super::{Exit, default_store_path};

/// Opens the store for reading; a missing store is an error, not an empty one.
pub(crate) fn open_store(path: Option<&std::path::Path>) -> Result<SqliteStore, Exit> {
    let path = path.map_or_else(default_store_path, |p| p.to_path_buf());
    SqliteStore::open_existing(&path).map_err(|err| {
        eprintln!("error: {err}");
        Exit::InvalidInput
    })
}

/// Whether the store knows `job`: it has a job row, a recorded load error or any run (a
/// removed job keeps its history).
pub(crate) fn known_job(store: &SqliteStore, job: &str) -> Result<bool, StoreError> {
    let filter = RunFilter { job: Some(job.to_string()), limit: 1, ..RunFilter::default() };
    Ok(store.job(job)?.is_some()
        || !store.runs(&filter)?.is_empty()
        || store.load_errors()?.iter().any(|error| error.name == job))
}

/// Rows `newest_ran` looks through, past skipped or missed slots.
const RAN_WINDOW: usize = 200;

/// The newest run of `job` that ran to an end (succeeded, failed or interrupted) among its
/// latest rows; else the newest still running; else its newest row of any kind (a skipped
/// or missed slot, which has a reason but no logs). What `jobs` shows as LAST and what
/// `logs` shows by default: a claim taken ahead of its instant, or an open breaker's
/// skipped slots, must not hide the last real outcome.
pub(crate) fn newest_ran(store: &SqliteStore, job: &str) -> Result<Option<RunRecord>, StoreError> {
    let filter =
        RunFilter { job: Some(job.to_string()), limit: RAN_WINDOW, ..RunFilter::default() };
    let runs = store.runs(&filter)?;
    let ended = |run: &&RunRecord| {
        matches!(run.status, RunStatus::Succeeded | RunStatus::Failed | RunStatus::Interrupted)
    };
    let running = |run: &&RunRecord| run.status == RunStatus::Running;
    Ok(runs.iter().find(ended).or_else(|| runs.iter().find(running)).or(runs.first()).cloned())
}

/// `runs --json`: each run with its output, and with its log lines when asked (one read
/// per run: lists never read the logs column in bulk).
fn print_json(store: &SqliteStore, filter: &RunFilter, logs: bool) -> Result<(), StoreError> {
    let runs: Vec<serde_json::Value> = if logs {
        let mut runs = Vec::new();
        for run in store.runs(filter)? {
            if let Some(detail) = store.run(&run.run_id)? {
                runs.push(run_detail(&detail));
            }
        }
        runs
    } else {
        store.runs_with_output(filter)?.iter().map(|(run, output)| run_json(run, output)).collect()
    };
    println!("{}", serde_json::Value::Array(runs));
    Ok(())
}

/// Prints the runs.
pub fn main(args: RunsArgs) -> Exit {
    let store = match open_store(args.store.as_deref()) {
        Ok(store) => store,
        Err(exit) => return exit,
    };
    match known_job(&store, &args.job) {
        Ok(true) => {}
        Ok(false) => {
            eprintln!("error: no job named {:?} in this store (see `sandcron jobs`)", args.job);
            return Exit::InvalidInput;
        }
        Err(err) => {
            eprintln!("error: {err}");
            return Exit::HostError;
        }
    }
    let filter =
        RunFilter { job: Some(args.job.clone()), limit: args.limit, ..RunFilter::default() };
    if args.json {
        return match print_json(&store, &filter, args.logs) {
            Ok(()) => Exit::Success,
            Err(err) => {
                eprintln!("error: {err}");
                Exit::HostError
            }
        };
    }
    let runs = match store.runs(&filter) {
        Ok(runs) => runs,
        Err(err) => {
            eprintln!("error: {err}");
            return Exit::HostError;
        }
    };
    if runs.is_empty() {
        println!("no runs of {} yet", args.job);
        return Exit::Success;
    }
    let id_width = runs.iter().map(|run| run.run_id.len()).max().unwrap_or(0).max(6);
    println!(
        "{:<id_width$}  {:<24} {:>3}  {:<11} {:<9} {:>10}  REASON",
        "RUN ID", "SLOT / REQUESTED", "ATT", "STATUS", "TRIGGER", "DURATION"
    );
    for run in &runs {
        let when = run.slot_ms.unwrap_or(run.scheduled_at_ms);
        let duration = run.duration_ms.map_or("-".to_string(), |ms| format!("{ms:.1}ms"));
        println!(
            "{:<id_width$}  {:<24} {:>3}  {:<11} {:<9} {:>10}  {}",
            run.run_id,
            rfc3339(when),
            run.attempt,
            run.status.as_str(),
            run.trigger.as_str(),
            duration,
            run.reason
        );
    }
    Exit::Success
}
