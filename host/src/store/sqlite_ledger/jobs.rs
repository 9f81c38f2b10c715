//! Jobs' durable scheduling state (the `jobs` table): pause, breaker, schedule epoch.

use rusqlite::{OptionalExtension, params};

use super::{JobRow, SqliteStore, StoreError, job_row, query_err};
#[cfg(test)]
use crate::words::BreakerState;

pub(super) fn upsert_job(store: &SqliteStore, job: &JobRow) -> Result<(), StoreError> {
    let conn = store.conn();
    let upsert = || -> rusqlite::Result<usize> {
        conn.prepare_cached(concat!(
            "INSERT INTO jobs (",
            job_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (name) DO UPDATE SET version = excluded.version,
                 schedule = excluded.schedule, paused = excluded.paused,
                 pause_note = excluded.pause_note, breaker = excluded.breaker,
                 breaker_until_ms = excluded.breaker_until_ms,
                 consecutive_failures = excluded.consecutive_failures,
                 schedule_epoch_ms = excluded.schedule_epoch_ms,
                 updated_at_ms = excluded.updated_at_ms"
        ))?
        .execute(params![
            job.name,
            job.version,
            job.schedule,
            job.paused,
            job.pause_note,
            job.breaker.as_str(),
            job.breaker.until_ms(),
            job.consecutive_failures,
            job.schedule_epoch_ms,
            job.updated_at_ms,
        ])
    };
    upsert().map(drop).map_err(query_err("job upsert"))
}

pub(super) fn remove_job(store: &SqliteStore, name: &str) -> Result<(), StoreError> {
    let conn = store.conn();
    conn.prepare_cached("DELETE FROM jobs WHERE name = ?1")
        .and_then(|mut stmt| stmt.execute([name]))
        .map(drop)
        .map_err(query_err("job remove"))
}

pub(super) fn job(store: &SqliteStore, name: &str) -> Result<Option<JobRow>, StoreError> {
    let conn = store.conn();
    let query = || -> rusqlite::Result<Option<JobRow>> {
        conn.prepare_cached(concat!("SELECT ", job_columns!(), " FROM jobs WHERE name = ?1"))?
            .query_row([name], job_row)
            .optional()
    };
    query().map_err(query_err("job get"))
}

pub(super) fn jobs(store: &SqliteStore) -> Result<Vec<JobRow>, StoreError> {
    let conn = store.conn();
    let query = || -> rusqlite::Result<Vec<JobRow>> {
        conn.prepare_cached(concat!("SELECT ", job_columns!(), " FROM jobs ORDER BY name"))?
            .query_map([], job_row)?
            .collect()
    };
    query().map_err(query_err("job list"))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use crate::store::{Ledger, TempDb};

    #[test]
    fn jobs_upsert_and_read_back() {
        let db = TempDb::new("jobs");
        let store = open(&db);
        let mut job = JobRow {
            name: "backup".to_owned(),
            version: "v1".to_owned(),
            schedule: "0 3 * * *".to_owned(),
            paused: false,
            pause_note: String::new(),
            breaker: BreakerState::Closed,
            consecutive_failures: 0,
            schedule_epoch_ms: 1_000,
            updated_at_ms: 1_000,
        };
        assert_eq!(store.job("backup").unwrap(), None);
        store.upsert_job(&job).unwrap();
        store.upsert_job(&JobRow { name: "alpha".to_owned(), ..job.clone() }).unwrap();
        job.paused = true;
        job.pause_note = "disk swap".to_owned();
        job.breaker = BreakerState::Open { until_ms: 9_000 };
        job.consecutive_failures = 3;
        job.updated_at_ms = 2_000;
        store.upsert_job(&job).unwrap();
        assert_eq!(store.job("backup").unwrap(), Some(job.clone()));
        let names: Vec<String> = store.jobs().unwrap().into_iter().map(|job| job.name).collect();
        assert_eq!(names, ["alpha", "backup"]);
        // Survives a reopen.
        drop(store);
        assert_eq!(SqliteStore::open_existing(&db.path).unwrap().job("backup").unwrap(), Some(job));
    }
}
