//! Reads of run history: one run with its text, filtered lists without it, the newest slot
//! and run per job, and a job's slot history for backfills.

use rusqlite::types::Value;
use rusqlite::{OptionalExtension, params};

use super::{
    RunDetail, RunFilter, RunRecord, RunStatus, SqliteStore, StoreError, query_err, run_detail,
    run_records, run_with_output,
};

/// `SELECT columns FROM runs` narrowed by `filter`, newest first, and its parameters. Only
/// the filters present become SQL terms, so SQLite can pick an index (a
/// `?1 IS NULL OR job = ?1` term would force a full scan); each shape is cached.
fn filtered_runs(columns: &str, filter: &RunFilter) -> (String, Vec<Value>) {
    let mut sql = format!("SELECT {columns} FROM runs WHERE 1");
    let mut values: Vec<Value> = Vec::new();
    let mut term = |clause: &str, value: Value| {
        sql.push_str(clause);
        values.push(value);
    };
    if let Some(job) = &filter.job {
        term(" AND job = ?", Value::Text(job.clone()));
    }
    if let Some(status) = filter.status {
        term(" AND status = ?", Value::Text(status.as_str().to_owned()));
    }
    if let Some(since) = filter.since_ms {
        term(" AND scheduled_at_ms >= ?", Value::Integer(since));
    }
    if let Some(until) = filter.until_ms {
        term(" AND scheduled_at_ms < ?", Value::Integer(until));
    }
    if let Some(before) = filter.before_id {
        term(" AND id < ?", Value::Integer(before));
    }
    if let Some(key) = &filter.idempotency_key {
        term(" AND idempotency_key = ?", Value::Text(key.clone()));
    }
    if filter.manual_only {
        // `IS ?` with NULL is `IS NULL`.
        term(" AND slot_ms IS ?", Value::Null);
    }
    term(" ORDER BY id DESC LIMIT ?", Value::Integer(filter.limit.try_into().unwrap_or(i64::MAX)));
    (sql, values)
}

pub(super) fn last_slot(store: &SqliteStore, job: &str) -> Result<Option<i64>, StoreError> {
    let conn = store.conn();
    let query = || -> rusqlite::Result<Option<i64>> {
        conn.prepare_cached("SELECT max(slot_ms) FROM runs WHERE job = ?1 AND slot_ms IS NOT NULL")?
            .query_row([job], |row| row.get(0))
    };
    query().map_err(query_err("last slot"))
}

pub(super) fn slot_history(
    store: &SqliteStore,
    job: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<(i64, u32, RunStatus)>, StoreError> {
    let conn = store.conn();
    let query = || -> rusqlite::Result<Vec<(i64, u32, RunStatus)>> {
        conn.prepare_cached(
            "SELECT slot_ms, attempt, status FROM runs \
             WHERE job = ?1 AND slot_ms >= ?2 AND slot_ms <= ?3 ORDER BY slot_ms, attempt",
        )?
        .query_map(params![job, from_ms, to_ms], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
        .collect()
    };
    query().map_err(query_err("slot history"))
}

pub(super) fn run(store: &SqliteStore, run_id: &str) -> Result<Option<RunDetail>, StoreError> {
    let conn = store.conn();
    let query = || -> rusqlite::Result<Option<RunDetail>> {
        let sql =
            concat!("SELECT ", run_columns!(), ", output, logs_json FROM runs WHERE run_id = ?1");
        conn.prepare_cached(sql)?.query_row([run_id], run_detail).optional()
    };
    query().map_err(query_err("run get"))
}

pub(super) fn runs(store: &SqliteStore, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
    let (sql, values) = filtered_runs(run_columns!(), filter);
    run_records(&store.conn(), &sql, rusqlite::params_from_iter(values))
        .map_err(query_err("run list"))
}

pub(super) fn runs_with_output(
    store: &SqliteStore,
    filter: &RunFilter,
) -> Result<Vec<(RunRecord, String)>, StoreError> {
    let (sql, values) = filtered_runs(concat!(run_columns!(), ", output"), filter);
    let conn = store.conn();
    let query = || -> rusqlite::Result<Vec<(RunRecord, String)>> {
        conn.prepare_cached(&sql)?
            .query_map(rusqlite::params_from_iter(values), run_with_output)?
            .collect()
    };
    query().map_err(query_err("run list with output"))
}

pub(super) fn last_runs(store: &SqliteStore) -> Result<Vec<RunRecord>, StoreError> {
    // A skip-scan over the distinct job names of `runs_job`, then one max(id) probe per
    // job: cost grows with the number of jobs, not with the length of history.
    let sql = concat!(
        "WITH RECURSIVE names(job) AS (
             SELECT min(job) FROM runs
             UNION ALL
             SELECT (SELECT min(job) FROM runs WHERE job > names.job)
             FROM names WHERE names.job IS NOT NULL)
         SELECT ",
        run_columns!(),
        " FROM runs WHERE id IN (
             SELECT (SELECT max(id) FROM runs AS r WHERE r.job = names.job)
             FROM names WHERE names.job IS NOT NULL)
         ORDER BY job"
    );
    run_records(&store.conn(), sql, []).map_err(query_err("last runs"))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use crate::store::{Claim, Ledger, TempDb};

    #[test]
    fn last_slot_is_the_newest_slot_of_the_job() {
        let db = TempDb::new("last-slot");
        let store = open(&db);
        assert_eq!(store.last_slot("a").unwrap(), None);
        assert_eq!(store.claim(&manual("m1", "a", "k", 1)).unwrap(), Claim::Claimed);
        assert_eq!(store.last_slot("a").unwrap(), None);
        for (run_id, job, slot) in [("r1", "a", 180_000), ("r2", "a", 60_000), ("r3", "b", 900_000)]
        {
            assert_eq!(store.claim(&scheduled(run_id, job, slot, 1)).unwrap(), Claim::Claimed);
        }
        assert_eq!(store.last_slot("a").unwrap(), Some(180_000));
        assert_eq!(store.last_slot("b").unwrap(), Some(900_000));
    }

    #[test]
    fn runs_filter_newest_first_and_page_by_id() {
        let db = TempDb::new("runs");
        let store = open(&db);
        for slot in 1..=5 {
            let slot_ms = slot * 60_000;
            assert_eq!(
                store.claim(&scheduled(&format!("a{slot}"), "a", slot_ms, 1)).unwrap(),
                Claim::Claimed
            );
            assert_eq!(
                store.claim(&scheduled(&format!("b{slot}"), "b", slot_ms, 1)).unwrap(),
                Claim::Claimed
            );
        }
        for run_id in ["a1", "a2", "b1"] {
            assert!(store.finish(run_id, &failed(1, None)).unwrap());
        }
        let ids = |filter: RunFilter| -> Vec<String> {
            store.runs(&filter).unwrap().into_iter().map(|run| run.run_id).collect()
        };
        let all = store.runs(&RunFilter::default()).unwrap();
        assert_eq!(all.len(), 10);
        assert!(all.windows(2).all(|pair| pair[0].id > pair[1].id));
        assert_eq!(ids(RunFilter { limit: 3, ..RunFilter::default() }), ["b5", "a5", "b4"]);

        let job_a = RunFilter { job: Some("a".to_owned()), limit: 2, ..RunFilter::default() };
        let first = store.runs(&job_a).unwrap();
        assert_eq!(first.iter().map(|run| run.run_id.as_str()).collect::<Vec<_>>(), ["a5", "a4"]);
        let next = RunFilter { before_id: Some(first[1].id), ..job_a.clone() };
        assert_eq!(ids(next.clone()), ["a3", "a2"]);
        let last = store.runs(&next).unwrap()[1].id;
        assert_eq!(ids(RunFilter { before_id: Some(last), ..job_a.clone() }), ["a1"]);

        let failed_runs = RunFilter { status: Some(RunStatus::Failed), ..RunFilter::default() };
        assert_eq!(ids(failed_runs.clone()), ["a2", "b1", "a1"]);
        assert_eq!(ids(RunFilter { job: Some("a".to_owned()), ..failed_runs }), ["a2", "a1"]);
        let window = RunFilter {
            since_ms: Some(120_000),
            until_ms: Some(240_000),
            job: Some("b".to_owned()),
            ..RunFilter::default()
        };
        assert_eq!(ids(window), ["b3", "b2"]);
        assert_eq!(ids(RunFilter { job: Some("zzz".to_owned()), ..RunFilter::default() }), [""; 0]);
        assert_eq!(ids(RunFilter { limit: 0, ..RunFilter::default() }), [""; 0]);
    }

    #[test]
    fn last_runs_gives_each_jobs_newest_run() {
        let db = TempDb::new("last-runs");
        let store = open(&db);
        assert_eq!(store.last_runs().unwrap(), []);
        for (run_id, job, slot) in
            [("a1", "a", 60_000), ("c1", "c", 60_000), ("a2", "a", 120_000), ("b1", "b", 1)]
        {
            assert_eq!(store.claim(&scheduled(run_id, job, slot, 1)).unwrap(), Claim::Claimed);
        }
        assert_eq!(store.claim(&manual("c2", "c", "k", 1)).unwrap(), Claim::Claimed);
        let last: Vec<(String, String)> =
            store.last_runs().unwrap().into_iter().map(|run| (run.job, run.run_id)).collect();
        let expected = [("a", "a2"), ("b", "b1"), ("c", "c2")];
        assert_eq!(last, expected.map(|(job, run)| (job.to_owned(), run.to_owned())));
    }
}
