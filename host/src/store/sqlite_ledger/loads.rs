//! The state of each job's latest load, beside the version still running: a failed load
//! (the `load_errors` table) or a compile still going on in the background (`compiling`).
//! Written by the host, read by `jobs`, the API and the dashboard.

use rusqlite::params;

use super::{CompilingRow, LoadErrorRow, SqliteStore, StoreError, query_err};

pub(super) fn set_load_error(store: &SqliteStore, row: &LoadErrorRow) -> Result<(), StoreError> {
    store
        .conn()
        .prepare_cached(
            "INSERT INTO load_errors (name, error, running_version, at_ms)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO UPDATE SET error = excluded.error,
                 running_version = excluded.running_version, at_ms = excluded.at_ms",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![row.name, row.error, row.running_version, row.at_ms])
        })
        .map(drop)
        .map_err(query_err("load error set"))
}

pub(super) fn clear_load_error(store: &SqliteStore, name: &str) -> Result<(), StoreError> {
    store
        .conn()
        .prepare_cached("DELETE FROM load_errors WHERE name = ?1")
        .and_then(|mut stmt| stmt.execute([name]))
        .map(drop)
        .map_err(query_err("load error clear"))
}

pub(super) fn load_errors(store: &SqliteStore) -> Result<Vec<LoadErrorRow>, StoreError> {
    let conn = store.conn();
    let query = || -> rusqlite::Result<Vec<LoadErrorRow>> {
        conn.prepare_cached(
            "SELECT name, error, running_version, at_ms FROM load_errors ORDER BY name",
        )?
        .query_map([], |row| {
            Ok(LoadErrorRow {
                name: row.get(0)?,
                error: row.get(1)?,
                running_version: row.get(2)?,
                at_ms: row.get(3)?,
            })
        })?
        .collect()
    };
    query().map_err(query_err("load error list"))
}

pub(super) fn set_compiling(store: &SqliteStore, row: &CompilingRow) -> Result<(), StoreError> {
    store
        .conn()
        .prepare_cached(
            "INSERT INTO compiling (name, since_ms, running_version) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET since_ms = excluded.since_ms,
                 running_version = excluded.running_version",
        )
        .and_then(|mut stmt| stmt.execute(params![row.name, row.since_ms, row.running_version]))
        .map(drop)
        .map_err(query_err("compiling set"))
}

pub(super) fn clear_compiling(store: &SqliteStore, name: &str) -> Result<(), StoreError> {
    store
        .conn()
        .prepare_cached("DELETE FROM compiling WHERE name = ?1")
        .and_then(|mut stmt| stmt.execute([name]))
        .map(drop)
        .map_err(query_err("compiling clear"))
}

pub(super) fn compiling(store: &SqliteStore) -> Result<Vec<CompilingRow>, StoreError> {
    let conn = store.conn();
    let query = || -> rusqlite::Result<Vec<CompilingRow>> {
        conn.prepare_cached("SELECT name, since_ms, running_version FROM compiling ORDER BY name")?
            .query_map([], |row| {
                Ok(CompilingRow {
                    name: row.get(0)?,
                    since_ms: row.get(1)?,
                    running_version: row.get(2)?,
                })
            })?
            .collect()
    };
    query().map_err(query_err("compiling list"))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::store::{CompilingRow, Ledger, LoadErrorRow, TempDb};

    #[test]
    fn load_errors_replace_and_clear() {
        let db = TempDb::new("load-errors");
        let store = open(&db);
        let row = |name: &str, error: &str, running: Option<&str>| LoadErrorRow {
            name: name.to_owned(),
            error: error.to_owned(),
            running_version: running.map(str::to_owned),
            at_ms: 5,
        };
        store.set_load_error(&row("b", "b.toml:1:1: bad", Some("v1"))).unwrap();
        store.set_load_error(&row("a", "a.toml:2:1: bad", None)).unwrap();
        store.set_load_error(&row("b", "b.toml:3:1: worse", Some("v1"))).unwrap();
        assert_eq!(
            store.load_errors().unwrap(),
            [row("a", "a.toml:2:1: bad", None), row("b", "b.toml:3:1: worse", Some("v1"))]
        );
        store.clear_load_error("a").unwrap();
        store.clear_load_error("nope").unwrap();
        assert_eq!(store.load_errors().unwrap(), [row("b", "b.toml:3:1: worse", Some("v1"))]);
    }

    #[test]
    fn compiling_rows_replace_and_clear() {
        let db = TempDb::new("compiling");
        let store = open(&db);
        let row = |name: &str, since_ms: i64, running: Option<&str>| CompilingRow {
            name: name.to_owned(),
            since_ms,
            running_version: running.map(str::to_owned),
        };
        store.set_compiling(&row("py", 1, None)).unwrap();
        store.set_compiling(&row("js", 2, Some("v1"))).unwrap();
        store.set_compiling(&row("py", 3, None)).unwrap();
        assert_eq!(store.compiling().unwrap(), [row("js", 2, Some("v1")), row("py", 3, None)]);
        store.clear_compiling("js").unwrap();
        store.clear_compiling("nope").unwrap();
        assert_eq!(store.compiling().unwrap(), [row("py", 3, None)]);
    }
}
