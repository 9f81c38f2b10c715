//! Background pruning for `serve`: a thread that applies the retention policies to the
//! serving store soon after start and then every [`EVERY`], in batches (see
//! `retention.rs`) that give way to any claim (`prune_gate.rs`).
//!
//! Policies come from a shared map the host keeps current as jobs load (a job's
//! `[retention]` over the host's `--retention-*` flags), so the pruner needs no part of the
//! scheduler.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use super::SqliteStore;
use super::retention::{PruneOptions, RetentionPolicy};
use super::ticker::Ticker;
use crate::job::unix_ms;

/// How often history is pruned after the first round.
pub const EVERY: Duration = Duration::from_secs(600);

/// The first round comes this soon after start.
const FIRST: Duration = Duration::from_secs(1);

/// Most rows per transaction. A claim no longer waits for a batch (it stops it: see
/// `prune_gate.rs`), so this bounds only the part nothing can cut short, the commit.
/// benches/prune.rs, claim p99 during a prune of 100,000 rows, three runs on a busy
/// 2-core machine: 0.23-1.6 ms with batches of at most 100, 0.27-0.45 ms with 500,
/// 0.11-0.17 ms without a prune (before the gate: 0.5-3.7 ms and 6.2-11.3 ms).
const BATCH: usize = 100;

/// Per-job policies that override the host's, shared with whoever loads jobs.
#[derive(Debug, Default)]
pub struct JobPolicies {
    map: RwLock<HashMap<String, RetentionPolicy>>,
    /// A policy changed: prune at the next tick instead of waiting for [`EVERY`].
    changed: AtomicBool,
}

impl JobPolicies {
    /// Sets (`Some`) or clears a job's own policy.
    pub fn set(&self, job: &str, policy: Option<RetentionPolicy>) {
        let mut map = self.map.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let changed = match policy {
            Some(policy) => map.insert(job.to_owned(), policy) != Some(policy),
            None => map.remove(job).is_some(),
        };
        if changed {
            self.changed.store(true, Ordering::Relaxed);
        }
    }

    fn snapshot(&self) -> HashMap<String, RetentionPolicy> {
        self.map.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}

/// Stops the pruning thread when dropped (after the batch in progress).
pub struct Pruner {
    _ticker: Ticker,
}

impl Pruner {
    /// Prunes `store` with `host` as every job's policy unless `jobs` has its own.
    pub fn start(
        store: Arc<SqliteStore>,
        host: RetentionPolicy,
        jobs: Arc<JobPolicies>,
    ) -> Option<Pruner> {
        let mut next = Instant::now();
        let ticker = Ticker::spawn("sandcron-prune", FIRST, move || {
            if Instant::now() < next && !jobs.changed.swap(false, Ordering::Relaxed) {
                return;
            }
            next = Instant::now() + EVERY;
            let options = PruneOptions {
                now_ms: unix_ms(SystemTime::now()) as i64,
                job: None,
                dry_run: false,
                batch: BATCH,
                pause: Duration::from_millis(1),
            };
            let policies = jobs.snapshot();
            // A job with its own policy is loaded, hence live, even before its row is written.
            let policy_of = |job: &str| match policies.get(job) {
                Some(policy) => (*policy, true),
                None => (host, false),
            };
            match store.prune(&options, &policy_of) {
                Ok(report) if report.total() > 0 => {
                    tracing::info!(
                        rows = report.total(),
                        jobs = report.jobs.len(),
                        "pruned run history"
                    )
                }
                Ok(_) => {}
                Err(err) => tracing::error!("pruning run history failed: {err}"),
            }
        })?;
        Some(Pruner { _ticker: ticker })
    }
}
