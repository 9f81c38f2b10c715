//! `sandcron runs JOB`: a job's runs, newest first, read straight from the store (so it
//! works while the host runs).

use crate::cli::RunsArgs;
use crate::store::{Ledger, RunFilter, SqliteStore};
use crate::views::{rfc3339, run_json};

use super::{Exit, default_store_path};

/// Opens the store for reading; a missing store is an error, not an empty one.
pub(crate) fn open_store(path: Option<&std::path::Path>) -> Result<SqliteStore, Exit> {
    let path = path.map_or_else(default_store_path, |p| p.to_path_buf());
    SqliteStore::open_existing(&path).map_err(|err| {
        eprintln!("error: {err}");
        Exit::InvalidInput
    })
}

/// Prints the runs.
pub fn main(args: RunsArgs) -> Exit {
    let store = match open_store(args.store.as_deref()) {
        Ok(store) => store,
        Err(exit) => return exit,
    };
    let filter =
        RunFilter { job: Some(args.job.clone()), limit: args.limit, ..RunFilter::default() };
    if args.json {
        return match store.runs_with_output(&filter) {
            Ok(runs) => {
                let runs = runs.iter().map(|(run, output)| run_json(run, output)).collect();
                println!("{}", serde_json::Value::Array(runs));
                Exit::Success
            }
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
    println!(
        "{:<24} {:>3}  {:<11} {:<9} {:>10}  REASON",
        "SLOT / REQUESTED", "ATT", "STATUS", "TRIGGER", "DURATION"
    );
    for run in &runs {
        let when = run.slot_ms.unwrap_or(run.scheduled_at_ms);
        let duration = run.duration_ms.map_or("-".to_string(), |ms| format!("{ms:.1}ms"));
        println!(
            "{:<24} {:>3}  {:<11} {:<9} {:>10}  {}",
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
