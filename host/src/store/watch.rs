//! The store watch: a thread beside the serving store that notices what no write reports.
//!
//! Every [`INTERVAL`] it checks that the file at the store path is still the one opened
//! (same device and inode): a store deleted or replaced under a running host keeps
//! "working", into a file nobody can open again, so only this check can tell. While writes
//! fail it probes with a write of its own, so health comes back within a second of the
//! store doing so, not at the next slot (maybe an hour away); once the store writes again
//! it records the slots lost meanwhile as `missed:store`. It has its own connection, opened
//! without `CREATE`, so a probe never makes a fresh empty database at a deleted path.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::health::{MISSED_STORE, StoreHealth, is_store_fault};
use super::ticker::Ticker;

/// How often the path and, while failing, the store are checked.
const INTERVAL: Duration = Duration::from_secs(1);

/// Stops and joins the watch thread when dropped.
pub(crate) struct StoreWatch {
    _ticker: Ticker,
}

/// What identifies the opened file: its device and inode.
fn identity(path: &Path) -> std::io::Result<(u64, u64)> {
    std::fs::metadata(path).map(|meta| (meta.dev(), meta.ino()))
}

impl StoreWatch {
    /// Starts watching the store at `path`, just opened; `None` if it cannot (the store
    /// then still reports failed writes, only not a deleted file).
    pub(crate) fn start(path: &Path, health: Arc<StoreHealth>) -> Option<Self> {
        let opened = identity(path).ok()?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags).ok()?;
        conn.busy_timeout(Duration::from_secs(1)).ok()?;
        let path = path.to_path_buf();
        let ticker = Ticker::spawn("sandcron-store-watch", INTERVAL, move || {
            check(&path, opened, &mut conn, &health)
        })?;
        Some(StoreWatch { _ticker: ticker })
    }
}

/// One round: the path, a probe while failing, then the lost slots once writing again.
fn check(path: &Path, opened: (u64, u64), conn: &mut Connection, health: &StoreHealth) {
    let problem = match identity(path) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Some(format!(
            "the store file {} was deleted under the running host: its writes go to a file \
             nobody can open again; put it back or restart the host",
            path.display()
        )),
        Ok(now) if now != opened => Some(format!(
            "the store file {} was replaced under the running host: it still writes the file \
             it opened; restart the host",
            path.display()
        )),
        // Present and the same, or unreadable for a reason this check cannot judge.
        _ => None,
    };
    health.file_problem(problem);
    if health.write_failing() {
        match probe(conn) {
            Ok(()) => health.write_ok(),
            Err(err) => tracing::debug!("store probe: {err}"),
        }
    }
    let lost = health.take_lost();
    if lost.is_empty() {
        return;
    }
    match super::sqlite_ledger::record_lost(conn, &lost) {
        Ok(recorded) => tracing::warn!(
            "the store writes again: {recorded} slots that could not be claimed meanwhile are \
             recorded as {MISSED_STORE}"
        ),
        // Kept for the next round only when the store failed again; any other error would
        // fail every round the same way.
        Err(err) if is_store_fault(&err) => {
            health.write_failed("missed slot record", &err, &[]);
            health.keep_lost(lost);
        }
        Err(err) => tracing::error!("cannot record slots lost while the store failed: {err}"),
    }
}

/// A real write that changes nothing: `user_version` rewritten with its own value commits
/// page 1, so it fails exactly when the store cannot write.
fn probe(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    conn.pragma_update(None, "user_version", version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Claim, Ledger, NewRun, RunFilter, RunStatus, SqliteStore, TempDb};

    #[test]
    fn a_deleted_store_file_is_reported_and_a_restored_one_clears_it() {
        let db = TempDb::new("watch-deleted");
        let store = SqliteStore::open(&db.path).unwrap();
        let health = store.health();
        let aside = db.path.with_extension("aside");
        let mut conn = Connection::open(&db.path).unwrap();
        let opened = identity(&db.path).unwrap();
        std::fs::rename(&db.path, &aside).unwrap();
        check(&db.path, opened, &mut conn, &health);
        let problem = health.report().problem.expect("a deleted file is a problem");
        assert!(problem.error.contains("was deleted under the running host"), "{problem:?}");
        std::fs::rename(&aside, &db.path).unwrap();
        check(&db.path, opened, &mut conn, &health);
        assert!(health.report().healthy());
    }

    #[test]
    fn lost_slots_are_recorded_as_missed_once_the_store_writes() {
        let db = TempDb::new("watch-lost");
        let store = SqliteStore::open(&db.path).unwrap();
        let health = store.health();
        let lost = NewRun {
            run_id: "lost-1".into(),
            job: "a".into(),
            slot_ms: Some(60_000),
            attempt: 1,
            trigger: crate::job::TriggerKind::Schedule,
            idempotency_key: "a@60000".into(),
            version: "v".into(),
            owner: "o".into(),
            scheduled_at_ms: 60_000,
            status: RunStatus::Running,
            reason: None,
            started_at_ms: Some(60_001),
        };
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        health.write_failed("run claim", &full, std::slice::from_ref(&lost));
        let mut conn = Connection::open(&db.path).unwrap();
        let opened = identity(&db.path).unwrap();
        // The probe succeeds (the store is fine), so the lost slot is written at once.
        check(&db.path, opened, &mut conn, &health);
        assert!(health.report().healthy());
        let runs = store.runs(&RunFilter::default()).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!((runs[0].status, runs[0].reason.as_str()), (RunStatus::Missed, MISSED_STORE));
        assert_eq!(runs[0].started_at_ms, None);
        // Recorded: the slot is taken, and nothing is left to write.
        let again = NewRun { run_id: "again".into(), ..lost };
        assert_eq!(store.claim(&again).unwrap(), Claim::Taken);
        assert_eq!(health.report().lost_slots, 0);
    }
}
