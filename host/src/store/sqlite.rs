//! The embedded SQLite store: one file, WAL, migrations by `PRAGMA user_version`.
//!
//! A single connection behind a `std::sync::Mutex`: every statement here is short, so a
//! blocking lock is cheaper than an async one and never held across an `.await`. This file
//! owns opening and the schema; the [`StateStore`] queries are below, the
//! [`Ledger`](super::Ledger) ones in `sqlite_ledger.rs`. WAL with `synchronous = NORMAL`
//! makes a commit a write to the log without an fsync: a claim costs microseconds, not
//! milliseconds, a killed process (S8) loses nothing, and only a power loss or OS crash may
//! roll back the last commits (never corrupting the file).

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use std::time::SystemTime;

use rusqlite::{Connection, MAIN_DB, OpenFlags, OptionalExtension, params};

use crate::job::unix_ms;

use super::health::{StoreHealth, is_store_fault};
use super::prune_gate::PruneGate;
use super::{StateStore, StateUsage, StoreError};

/// The embedded store.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// Who waits for `conn`: a prune batch gives way to them (`prune_gate.rs`).
    pub(super) prune_gate: PruneGate,
    /// Fed by every write; shared with the API's reader (see [`SqliteStore::sharing_health`]).
    health: Arc<StoreHealth>,
    /// Checkpoints in the background for the serving store; `None` for CLI readers.
    _checkpointer: Option<super::checkpoint::Checkpointer>,
    /// Watches the store file of a writing store; `None` for CLI readers.
    _watch: Option<super::watch::StoreWatch>,
}

/// Enough cached statements for every ledger and state query plus the `runs` filter shapes,
/// so the hot claim and finish statements are never evicted and re-prepared.
const STATEMENT_CACHE: usize = 64;

/// With the background checkpointer running, the automatic checkpoint only bounds the WAL
/// (64 MiB of 4 KiB pages) in case the background thread cannot keep up.
const WAL_FALLBACK_CHECKPOINT_PAGES: u32 = 16_384;

/// WAL pages between automatic checkpoints (SQLite's default is 1000): each checkpoint
/// fsyncs, so fewer, larger ones roughly double claim + finish throughput on a slow disk,
/// for a WAL file of up to 16 MiB.
const WAL_AUTOCHECKPOINT_PAGES: u32 = 4000;

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::Folder {
                path: parent.display().to_string(),
                source,
            })?;
        }
        check_folder_writable(path)?;
        let conn = Connection::open(path)
            .map_err(|source| StoreError::Open { path: path.display().to_string(), source })?;
        // SQLite opens a file it may not write read-only, silently: say so instead of
        // failing at the first claim.
        if conn.is_readonly(MAIN_DB).unwrap_or(false) {
            let reason = "the file cannot be opened for writing".to_owned();
            return Err(StoreError::ReadOnly { path: path.display().to_string(), reason });
        }
        let mut store = Self::configure(conn, path)?;
        store.probe_write(path)?;
        // Checkpoints move to a background connection; the automatic one stays as a bound.
        store._checkpointer = super::checkpoint::Checkpointer::start(path);
        if store._checkpointer.is_some() {
            let conn = store.conn();
            conn.pragma_update(None, "wal_autocheckpoint", WAL_FALLBACK_CHECKPOINT_PAGES)
                .map_err(|source| StoreError::Open { path: path.display().to_string(), source })?;
        }
        store._watch = super::watch::StoreWatch::start(path, store.health.clone());
        Ok(store)
    }

    /// A write that changes nothing (`user_version` rewritten), so a store that cannot be
    /// written (immutable file, full or read-only file system) is refused at open.
    fn probe_write(&self, path: &Path) -> Result<(), StoreError> {
        let conn = self.conn();
        let probe = || -> rusqlite::Result<()> {
            let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
            conn.pragma_update(None, "user_version", version)
        };
        probe().map_err(|err| StoreError::ReadOnly {
            path: path.display().to_string(),
            reason: err.to_string(),
        })
    }

    /// This store's health, shared by whoever reports it.
    pub fn health(&self) -> Arc<StoreHealth> {
        self.health.clone()
    }

    /// Reports `other`'s health as its own: the API reads through its own connection but
    /// must report the serving store's health.
    pub fn sharing_health(mut self, other: &SqliteStore) -> Self {
        self.health = other.health();
        self
    }

    /// Passes `result` through, feeding store faults to the health (with the slots a failed
    /// claim could not take) and successes too.
    pub(super) fn tracked<T>(
        &self,
        result: Result<T, StoreError>,
        claims: &[super::NewRun],
    ) -> Result<T, StoreError> {
        match &result {
            Ok(_) => self.health.write_ok(),
            Err(StoreError::Query { operation, source }) if is_store_fault(source) => {
                self.health.write_failed(operation, source, claims)
            }
            Err(_) => {}
        }
        result
    }

    /// Opens the existing database at `path`, for commands that read while a host may be
    /// serving from it: WAL lets this reader run beside the host's writer, and the busy
    /// timeout waits out the host's short write locks. Never creates a file or folder; a
    /// database from an older sandcron is migrated like [`SqliteStore::open`] does.
    pub fn open_existing(path: &Path) -> Result<Self, StoreError> {
        // SQLite would report a missing file as a bare "unable to open database file".
        if !path.is_file() {
            return Err(StoreError::Missing { path: path.display().to_string() });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .map_err(|source| StoreError::Open { path: path.display().to_string(), source })?;
        Self::configure(conn, path)
    }

    fn configure(mut conn: Connection, path: &Path) -> Result<Self, StoreError> {
        let open_err = |source| StoreError::Open { path: path.display().to_string(), source };
        conn.busy_timeout(Duration::from_secs(5)).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(open_err)?;
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
            .map_err(open_err)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        super::migrations::migrate(&mut conn).map_err(open_err)?;
        Ok(SqliteStore {
            prune_gate: PruneGate::default(),
            conn: Mutex::new(conn),
            health: Arc::default(),
            _checkpointer: None,
            _watch: None,
        })
    }

    /// Whether someone holds the connection now (tests wait for a prune batch with it).
    #[cfg(test)]
    pub(super) fn is_busy(&self) -> bool {
        self.conn.try_lock().is_err()
    }

    pub(super) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (each statement
        // is atomic), so a poisoned lock is safe to keep using.
        match self.conn.try_lock() {
            Ok(conn) => conn,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => {
                // Said before blocking, so that a prune batch holding the lock gives way.
                let _waiting = self.prune_gate.waiting();
                self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
            }
        }
    }
}

/// Refuses a store folder the host cannot create files in (SQLite needs its `-wal` and
/// `-shm` files there), before SQLite fails with a bare "unable to open database file".
fn check_folder_writable(path: &Path) -> Result<(), StoreError> {
    let folder = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(folder) => folder,
        None => Path::new("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let probe = folder.join(format!(".{name}.probe-{}", std::process::id()));
    match std::fs::File::create_new(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(err) => Err(StoreError::ReadOnly {
            path: folder.display().to_string(),
            reason: format!("cannot create files in the folder: {err}"),
        }),
    }
}

impl StateStore for SqliteStore {
    fn state_get(&self, job: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn()
            .query_row(
                "SELECT value FROM job_state WHERE job = ?1 AND key = ?2",
                params![job, key],
                |row| row.get(0),
            )
            .optional()
            .map_err(|source| StoreError::Query { operation: "state get", source })
    }

    fn state_set(&self, job: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let result = self
            .conn()
            .execute(
                "INSERT INTO job_state (job, key, value, updated_at_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (job, key) DO UPDATE SET value = excluded.value,
                                                      updated_at_ms = excluded.updated_at_ms",
                params![job, key, value, unix_ms(SystemTime::now()) as i64],
            )
            .map(drop)
            .map_err(|source| StoreError::Query { operation: "state set", source });
        self.tracked(result, &[])
    }

    fn state_delete(&self, job: &str, key: &str) -> Result<bool, StoreError> {
        let result = self
            .conn()
            .execute("DELETE FROM job_state WHERE job = ?1 AND key = ?2", params![job, key])
            .map(|n| n > 0)
            .map_err(|source| StoreError::Query { operation: "state delete", source });
        self.tracked(result, &[])
    }

    fn state_keys(&self, job: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let query = |conn: &Connection| -> rusqlite::Result<Vec<String>> {
            let mut stmt =
                conn.prepare_cached("SELECT key FROM job_state WHERE job = ?1 ORDER BY key")?;
            let keys = stmt.query_map([job], |row| row.get(0))?;
            keys.collect()
        };
        query(&conn).map_err(|source| StoreError::Query { operation: "state keys", source })
    }

    fn state_usage(&self, job: &str) -> Result<StateUsage, StoreError> {
        self.conn()
            .query_row(
                "SELECT count(*), coalesce(sum(length(key) + length(value)), 0)
                 FROM job_state WHERE job = ?1",
                [job],
                |row| Ok(StateUsage { keys: row.get(0)?, bytes: row.get(1)? }),
            )
            .map_err(|source| StoreError::Query { operation: "state usage", source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Ledger, RunFilter, TempDb};

    #[test]
    fn state_round_trips_and_survives_reopen() {
        let dir = std::env::temp_dir().join(format!("sandcron-store-{}", std::process::id()));
        let path = dir.join("state.db");
        let _ = std::fs::remove_dir_all(&dir);
        {
            let store = SqliteStore::open(&path).unwrap();
            store.state_set("a", "k2", b"two").unwrap();
            store.state_set("a", "k1", b"one").unwrap();
            store.state_set("a", "k1", b"uno").unwrap();
            store.state_set("b", "k1", b"other job").unwrap();
            assert!(store.state_delete("a", "k2").unwrap());
            assert!(!store.state_delete("a", "k2").unwrap());
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.state_get("a", "k1").unwrap().as_deref(), Some(&b"uno"[..]));
        assert_eq!(store.state_get("a", "k2").unwrap(), None);
        assert_eq!(store.state_keys("a").unwrap(), vec!["k1"]);
        assert_eq!(store.state_keys("b").unwrap(), vec!["k1"]);
        assert_eq!(store.state_usage("a").unwrap(), StateUsage { keys: 1, bytes: 5 });
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn migrations_upgrade_a_version_1_database_and_keep_its_state() {
        let db = TempDb::new("migrate-v1");
        std::fs::create_dir_all(db.path.parent().unwrap()).unwrap();
        {
            // What sandcron wrote before the ledger existed.
            let conn = Connection::open(&db.path).unwrap();
            conn.execute_batch(super::super::migrations::MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                "INSERT INTO job_state (job, key, value, updated_at_ms) VALUES ('a', 'k', x'01', 1)",
                [],
            )
            .unwrap();
        }
        let store = SqliteStore::open(&db.path).unwrap();
        let version: usize =
            store.conn().pragma_query_value(None, "user_version", |row| row.get(0)).unwrap();
        assert_eq!(version, super::super::migrations::MIGRATIONS.len());
        assert_eq!(store.state_get("a", "k").unwrap().as_deref(), Some(&[1u8][..]));
        assert_eq!(Ledger::runs(&store, &RunFilter::default()).unwrap(), vec![]);
        assert_eq!(store.jobs().unwrap(), vec![]);
        drop(store);
        // Reopening an up-to-date store applies nothing twice.
        let store = SqliteStore::open(&db.path).unwrap();
        assert_eq!(store.state_keys("a").unwrap(), vec!["k"]);
    }

    #[test]
    fn open_existing_refuses_a_missing_file_without_creating_it() {
        let db = TempDb::new("open-missing");
        let err = SqliteStore::open_existing(&db.path).err().expect("a missing store is an error");
        assert!(matches!(err, StoreError::Missing { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.starts_with("no store at "), "{message}");
        assert!(message.contains(&db.path.display().to_string()), "{message}");
        assert!(!db.path.exists() && !db.path.parent().unwrap().exists());
    }

    #[test]
    fn open_existing_reads_beside_a_serving_store() {
        let db = TempDb::new("open-existing");
        let host = SqliteStore::open(&db.path).unwrap();
        host.state_set("a", "k", b"v").unwrap();
        let reader = SqliteStore::open_existing(&db.path).unwrap();
        assert_eq!(reader.state_get("a", "k").unwrap().as_deref(), Some(&b"v"[..]));
        // The host keeps writing while the reader holds its connection, and the reader sees it.
        host.state_set("a", "k2", b"w").unwrap();
        assert_eq!(reader.state_keys("a").unwrap(), vec!["k", "k2"]);
    }
}
