//! Store health (issue 14, defect 8): whether the serving store can still write, since
//! when it cannot and why, and the scheduled slots it could not claim meanwhile.
//!
//! Two sources feed one [`StoreHealth`]: every write through [`SqliteStore`](super::SqliteStore)
//! (a failed write marks it failing, the next successful one clears that), and the
//! store watch (`watch.rs`), which notices the file at the store path is no longer the one
//! opened. The second is sticky on purpose: writes into a deleted file still succeed, into
//! an inode nobody can open again, so only the file coming back clears it.
//!
//! Only faults of the store itself count (disk full, I/O error, read-only, corrupt, cannot
//! open): a constraint violation is a caller's bug, not an unhealthy store. Claims of
//! scheduled slots that failed that way are kept (bounded, deduplicated by slot and
//! attempt) and written as `missed:store` once the store writes again, so a store outage
//! leaves the same trace in history as any other missed slot (S4).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::SystemTime;

use rusqlite::ErrorCode;
use serde::Serialize;

use super::{NewRun, RunStatus};
use crate::job::unix_ms;
use crate::words::SlotReason;

/// The reason recorded for a slot whose claim failed because the store did.
pub const MISSED_STORE: &str = SlotReason::Store.as_str();

/// Most lost slots kept in memory until the store is back; later ones are only counted.
const LOST_CAP: usize = 10_000;

/// One reason the store is failing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoreProblem {
    /// What failed: "run claim", "run finish batch", ..., or "store file" for the watch.
    pub operation: String,
    /// The error, for people.
    pub error: String,
    /// When it started failing (ms since the Unix epoch).
    pub since_ms: i64,
}

/// A snapshot of [`StoreHealth`], for `/readyz` and `/metrics`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HealthReport {
    /// The first problem still standing; `None` when the store is healthy.
    pub problem: Option<StoreProblem>,
    /// Store faults so far, by operation.
    pub errors: Vec<(&'static str, u64)>,
    /// Slots waiting to be recorded as `missed:store`.
    pub lost_slots: usize,
}

impl HealthReport {
    /// Whether the store is writing normally.
    pub fn healthy(&self) -> bool {
        self.problem.is_none()
    }
}

/// The health of one store file, shared by its connections (the API's reader reports the
/// writer's health).
#[derive(Debug, Default)]
pub struct StoreHealth {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The last write failed; cleared by the next write that succeeds.
    write: Option<StoreProblem>,
    /// The file at the path is not the one opened; cleared only when it is again.
    file: Option<StoreProblem>,
    errors: Vec<(&'static str, u64)>,
    /// Keyed by (job, slot, attempt): the recorder retries a failed batch one by one, so
    /// the same claim can fail twice.
    lost: BTreeMap<(String, i64, u32), NewRun>,
    lost_dropped: u64,
}

/// Whether `err` is a fault of the store (disk, file, database) rather than of the caller.
pub(crate) fn is_store_fault(err: &rusqlite::Error) -> bool {
    let rusqlite::Error::SqliteFailure(failure, _) = err else { return false };
    matches!(
        failure.code,
        ErrorCode::DiskFull
            | ErrorCode::SystemIoFailure
            | ErrorCode::ReadOnly
            | ErrorCode::DatabaseCorrupt
            | ErrorCode::NotADatabase
            | ErrorCode::CannotOpen
            | ErrorCode::PermissionDenied
            | ErrorCode::FileLockingProtocolFailed
    )
}

impl StoreHealth {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A write succeeded: a failing store is back.
    pub(crate) fn write_ok(&self) {
        let mut inner = self.lock();
        if let Some(problem) = inner.write.take() {
            let secs = (unix_ms(SystemTime::now()) as i64 - problem.since_ms) / 1000;
            tracing::warn!(
                lost_slots = inner.lost.len(),
                "the store writes again after failing for {secs}s ({}: {})",
                problem.operation,
                problem.error
            );
        }
    }

    /// A write failed with a store fault; `claims` are the rows it tried to claim.
    pub(crate) fn write_failed(
        &self,
        operation: &'static str,
        err: &rusqlite::Error,
        claims: &[NewRun],
    ) {
        let mut inner = self.lock();
        match inner.errors.iter_mut().find(|(op, _)| *op == operation) {
            Some((_, count)) => *count += 1,
            None => inner.errors.push((operation, 1)),
        }
        if inner.write.is_none() {
            tracing::error!(
                "the store is failing: {operation}: {err}; /readyz answers 503 until it writes again"
            );
            inner.write = Some(StoreProblem {
                operation: operation.to_owned(),
                error: err.to_string(),
                since_ms: unix_ms(SystemTime::now()) as i64,
            });
        }
        for run in claims {
            let Some(slot_ms) = run.slot_ms else { continue };
            if inner.lost.len() >= LOST_CAP {
                inner.lost_dropped += 1;
                continue;
            }
            let missed = NewRun {
                status: RunStatus::Missed,
                reason: Some(SlotReason::Store),
                started_at_ms: None,
                ..run.clone()
            };
            inner.lost.insert((run.job.clone(), slot_ms, run.attempt), missed);
        }
    }

    /// What the watch found at the store path: `None` when it is the file opened.
    pub(crate) fn file_problem(&self, problem: Option<String>) {
        let mut inner = self.lock();
        match (problem, &inner.file) {
            (None, None) => {}
            (None, Some(_)) => {
                tracing::warn!("the store file is back at its path");
                inner.file = None;
            }
            (Some(error), None) => {
                tracing::error!("{error}; /readyz answers 503");
                inner.file = Some(StoreProblem {
                    operation: "store file".to_owned(),
                    error,
                    since_ms: unix_ms(SystemTime::now()) as i64,
                });
            }
            (Some(_), Some(_)) => {}
        }
    }

    /// Whether the last write failed (the watch then probes until one succeeds).
    pub(crate) fn write_failing(&self) -> bool {
        self.lock().write.is_some()
    }

    /// The lost slots to record now, when the store writes again; empty while it fails.
    pub(crate) fn take_lost(&self) -> Vec<NewRun> {
        let mut inner = self.lock();
        if inner.write.is_some() {
            return Vec::new();
        }
        if inner.lost_dropped > 0 {
            tracing::warn!(
                "{} more slots were lost while the store failed than can be recorded",
                inner.lost_dropped
            );
            inner.lost_dropped = 0;
        }
        std::mem::take(&mut inner.lost).into_values().collect()
    }

    /// Lost slots whose recording failed again: kept for the next try.
    pub(crate) fn keep_lost(&self, runs: Vec<NewRun>) {
        let mut inner = self.lock();
        for run in runs {
            let key = (run.job.clone(), run.slot_ms.unwrap_or_default(), run.attempt);
            inner.lost.insert(key, run);
        }
    }

    /// A snapshot.
    pub fn report(&self) -> HealthReport {
        let inner = self.lock();
        HealthReport {
            problem: inner.file.clone().or_else(|| inner.write.clone()),
            errors: inner.errors.clone(),
            lost_slots: inner.lost.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::TriggerKind;

    fn fault(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    fn claim(job: &str, slot_ms: Option<i64>) -> NewRun {
        NewRun {
            run_id: format!("{job}-{slot_ms:?}"),
            job: job.to_owned(),
            slot_ms,
            attempt: 1,
            trigger: TriggerKind::Schedule,
            idempotency_key: "k".to_owned(),
            version: "v".to_owned(),
            owner: "o".to_owned(),
            scheduled_at_ms: 0,
            status: RunStatus::Running,
            reason: None,
            started_at_ms: Some(1),
        }
    }

    #[test]
    fn only_store_faults_count() {
        assert!(is_store_fault(&fault(rusqlite::ffi::SQLITE_FULL)));
        assert!(is_store_fault(&fault(rusqlite::ffi::SQLITE_IOERR_WRITE)));
        assert!(is_store_fault(&fault(rusqlite::ffi::SQLITE_READONLY)));
        assert!(is_store_fault(&fault(rusqlite::ffi::SQLITE_CORRUPT)));
        assert!(!is_store_fault(&fault(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)));
        assert!(!is_store_fault(&rusqlite::Error::QueryReturnedNoRows));
    }

    #[test]
    fn failing_writes_keep_lost_slots_until_a_write_succeeds() {
        let health = StoreHealth::default();
        assert!(health.report().healthy());
        let batch = [claim("a", Some(60_000)), claim("b", None)];
        health.write_failed("run claim batch", &fault(rusqlite::ffi::SQLITE_FULL), &batch);
        // The recorder retries the batch one by one: the same slot is kept once.
        health.write_failed("run claim", &fault(rusqlite::ffi::SQLITE_FULL), &batch[..1]);
        let report = health.report();
        let problem = report.problem.clone().expect("failing");
        assert_eq!(problem.operation, "run claim batch");
        assert_eq!(report.errors, [("run claim batch", 1), ("run claim", 1)]);
        assert_eq!(report.lost_slots, 1, "a manual claim has no slot to record");
        assert!(health.take_lost().is_empty(), "nothing is written while the store fails");

        health.write_ok();
        assert!(health.report().healthy());
        let lost = health.take_lost();
        assert_eq!(lost.len(), 1);
        assert_eq!(
            (lost[0].status, lost[0].reason.map(SlotReason::as_str)),
            (RunStatus::Missed, Some(MISSED_STORE))
        );
        assert_eq!(lost[0].started_at_ms, None);
        assert_eq!(health.report().lost_slots, 0);
        health.keep_lost(lost);
        assert_eq!(health.report().lost_slots, 1);
    }

    #[test]
    fn a_file_problem_stays_until_the_watch_clears_it() {
        let health = StoreHealth::default();
        health.file_problem(Some("store file deleted".into()));
        health.write_ok();
        assert_eq!(health.report().problem.unwrap().error, "store file deleted");
        health.file_problem(None);
        assert!(health.report().healthy());
    }
}
