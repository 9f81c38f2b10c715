//! Durable storage behind traits: per-job state ([`StateStore`]) and the slot ledger of
//! runs and jobs ([`Ledger`]).
//!
//! The runtime and the scheduler talk to these traits, never to SQL, so the PostgreSQL
//! backend (D1) can slot in without touching them. [`SqliteStore`] is the embedded default
//! and implements both: one file, WAL mode, schema versioned with `PRAGMA user_version`.
//! Every write also feeds the store's health ([`StoreHealth`]: `/readyz`, metrics), watched
//! beside it for what writes cannot tell (a deleted store file).
//! The store depends on no other part of the crate; times cross it as `i64` milliseconds
//! since the Unix epoch.

mod checkpoint;
mod health;
mod ledger;
mod migrations;
mod prune_gate;
mod pruner;
mod retention;
mod sqlite;
pub(crate) mod sqlite_ledger;
mod ticker;
mod watch;

pub use health::{HealthReport, MISSED_STORE, StoreHealth, StoreProblem};
pub use ledger::{
    Claim, CompilingRow, JobRow, Ledger, LoadErrorRow, NewRun, RunDetail, RunFilter, RunFinish,
    RunRecord, RunStatus, UnknownRunStatus,
};
pub use pruner::{JobPolicies, Pruner};
pub use retention::{PruneOptions, PruneReport, RetentionPolicy};
pub use sqlite::SqliteStore;

/// A storage failure, with what was being done.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store writer thread has stopped (the host is shutting down).
    #[error("the store writer has stopped")]
    Closed,
    /// The database could not be opened or migrated.
    #[error("cannot open store {path}: {source}")]
    Open {
        /// The database location.
        path: String,
        /// The underlying failure.
        #[source]
        source: rusqlite::Error,
    },
    /// A command that reads an existing store found none.
    #[error("no store at {path}: `sandcron serve` creates it there; is the path right?")]
    Missing {
        /// Where it was expected.
        path: String,
    },
    /// The store's folder could not be created.
    #[error("cannot create store folder {path}: {source}")]
    Folder {
        /// The folder.
        path: String,
        /// The underlying failure.
        #[source]
        source: std::io::Error,
    },
    /// The store cannot be written: `serve` and `run` refuse to start on it.
    #[error(
        "store {path} is read-only ({reason}): the host must write there; fix its permissions or choose another --store"
    )]
    ReadOnly {
        /// The file or folder.
        path: String,
        /// What refused the write.
        reason: String,
    },
    /// A query failed.
    #[error("store {operation} failed: {source}")]
    Query {
        /// What was being done, e.g. "state get".
        operation: &'static str,
        /// The underlying failure.
        #[source]
        source: rusqlite::Error,
    },
}

/// Per-job persistent key-value state (F1 `state`).
pub trait StateStore: Send + Sync {
    /// The value of `key` for `job`, if set.
    fn state_get(&self, job: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Sets `key` for `job`, replacing any previous value.
    fn state_set(&self, job: &str, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Removes `key`; returns whether it existed.
    fn state_delete(&self, job: &str, key: &str) -> Result<bool, StoreError>;
    /// All keys of `job`, in lexical order.
    fn state_keys(&self, job: &str) -> Result<Vec<String>, StoreError>;
    /// How many keys `job` has and how many bytes its values take.
    fn state_usage(&self, job: &str) -> Result<StateUsage, StoreError>;
}

/// The footprint of one job's state, for quotas.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateUsage {
    /// Number of keys.
    pub keys: u64,
    /// Total bytes of keys and values.
    pub bytes: u64,
}

/// A database file in its own temporary folder, removed on drop.
#[cfg(test)]
pub(crate) struct TempDb {
    dir: std::path::PathBuf,
    /// The database file (not created yet).
    pub path: std::path::PathBuf,
}

#[cfg(test)]
impl TempDb {
    /// A fresh folder named after the test, so tests running in parallel never share a file.
    pub fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("sandcron-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("store.db");
        TempDb { dir, path }
    }
}

#[cfg(test)]
impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
