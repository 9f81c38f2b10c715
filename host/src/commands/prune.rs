//! `sandcron prune`: removes old run history from the store, beside a running host or
//! without one. It opens the store like `runs` does (WAL: the host keeps claiming while
//! this deletes, each batch a short transaction) and takes no lock file: pruning only
//! deletes finished rows, which the host never rereads but for the newest of each job, and
//! that one is kept.

use std::time::{Duration, SystemTime};

use crate::cli::PruneArgs;
use crate::job::unix_ms;
use crate::store::{PruneOptions, RetentionPolicy};

use super::Exit;
use super::runs::open_store;

/// Rows per transaction, as the host's background pruning does (short, so that a host
/// claiming beside it waits little).
pub const BATCH: usize = 100;

/// Prunes and prints what went.
pub fn main(args: PruneArgs) -> Exit {
    let policy = RetentionPolicy {
        max_age: args.older_than.map(|span| span.0),
        max_runs: args.keep_runs,
        keep_last_failure: !args.forget_last_failure,
    };
    if !policy.limits() {
        eprintln!("error: say what to prune: --older-than DURATION and/or --keep-runs N");
        return Exit::InvalidInput;
    }
    let store = match open_store(args.store.as_deref()) {
        Ok(store) => store,
        Err(exit) => return exit,
    };
    let options = PruneOptions {
        now_ms: unix_ms(SystemTime::now()) as i64,
        job: args.job.clone(),
        dry_run: args.dry_run,
        batch: BATCH,
        pause: Duration::from_millis(1),
    };
    let report = match store.prune(&options, &|_| (policy, false)) {
        Ok(report) => report,
        Err(err) => {
            eprintln!("error: {err}");
            return Exit::HostError;
        }
    };
    let verb = if args.dry_run { "would remove" } else { "removed" };
    for (job, rows) in &report.jobs {
        println!("{job}: {verb} {rows} runs");
    }
    println!("{verb} {} runs in all", report.total());
    Exit::Success
}
