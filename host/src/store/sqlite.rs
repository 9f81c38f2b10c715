//! The embedded SQLite store: one file, WAL, migrations by `PRAGMA user_version`.
//!
//! A single connection behind a `std::sync::Mutex`: every statement here is short, so a
//! blocking lock is cheaper than an async one and never held across an `.await`.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::{StateStore, StateUsage, StoreError};

/// Schema migrations, applied in order; the index + 1 is the schema version.
const MIGRATIONS: &[&str] = &[
    // 1: per-job key-value state.
    "CREATE TABLE job_state (
         job   TEXT NOT NULL,
         key   TEXT NOT NULL,
         value BLOB NOT NULL,
         updated_at_ms INTEGER NOT NULL,
         PRIMARY KEY (job, key)
     ) WITHOUT ROWID;",
];

/// The embedded store.
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::Folder {
                path: parent.display().to_string(),
                source,
            })?;
        }
        let open_err = |source| StoreError::Open { path: path.display().to_string(), source };
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(open_err)?;
        migrate(&mut conn).map_err(open_err)?;
        Ok(SqliteStore { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (each statement
        // is atomic), so a poisoned lock is safe to keep using.
        self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let version: usize = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
    }
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
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
        self.conn()
            .execute(
                "INSERT INTO job_state (job, key, value, updated_at_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (job, key) DO UPDATE SET value = excluded.value,
                                                      updated_at_ms = excluded.updated_at_ms",
                params![job, key, value, now_ms()],
            )
            .map(drop)
            .map_err(|source| StoreError::Query { operation: "state set", source })
    }

    fn state_delete(&self, job: &str, key: &str) -> Result<bool, StoreError> {
        self.conn()
            .execute("DELETE FROM job_state WHERE job = ?1 AND key = ?2", params![job, key])
            .map(|n| n > 0)
            .map_err(|source| StoreError::Query { operation: "state delete", source })
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
}
