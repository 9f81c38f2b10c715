//! [`Ledger`] for [`SqliteStore`]: the slot ledger as the `runs` and `jobs` tables
//! (schema in `sqlite.rs`, migration 2).
//!
//! A claim is one `INSERT ... ON CONFLICT DO NOTHING` against the partial unique indexes on
//! (job, slot_ms, attempt) and (job, idempotency_key, attempt): the row count says who won,
//! so a lost race is an answer ([`Claim::Taken`]), not an error, and no read-then-write
//! window exists. Only those two conflicts are absorbed; any other (a reused run id) is an
//! error. Every statement is cached, so the hot pair (claim, finish) costs no parsing.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, ToSql, TransactionBehavior, params};

use super::{
    Claim, JobRow, Ledger, NewRun, RunDetail, RunFilter, RunFinish, RunRecord, RunStatus,
    SqliteStore, StoreError,
};

/// The `runs` columns in [`run_record`]'s order: every one but the captured text, which
/// can be megabytes per row and is read only where it is shown ([`RUN_TEXT`]).
macro_rules! run_columns {
    () => {
        "id, run_id, job, slot_ms, attempt, status, reason, outcome, trigger_kind, version, \
         idempotency_key, owner, scheduled_at_ms, started_at_ms, finished_at_ms, duration_ms, \
         fuel_used, peak_memory, retry_at_ms, net_json"
    };
}

/// Where the text columns start when a query selects them after [`run_columns!`].
const RUN_TEXT: usize = 20;

/// The `jobs` columns in [`job_row`]'s order.
macro_rules! job_columns {
    () => {
        "name, version, schedule, paused, pause_note, breaker, breaker_until_ms, \
         consecutive_failures, schedule_epoch_ms, updated_at_ms"
    };
}

const CLAIM: &str = "INSERT INTO runs (run_id, job, slot_ms, attempt, status, reason, \
     trigger_kind, version, idempotency_key, owner, scheduled_at_ms, started_at_ms) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
     ON CONFLICT (job, slot_ms, attempt) WHERE slot_ms IS NOT NULL DO NOTHING \
     ON CONFLICT (job, idempotency_key, attempt) WHERE slot_ms IS NULL DO NOTHING";

const INTERRUPTED_REASON: &str = "interrupted: host stopped while running";

fn query_err(operation: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Query { operation, source }
}

impl ToSql for RunStatus {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(self.as_str().as_bytes())))
    }
}

impl FromSql for RunStatus {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        value.as_str()?.parse().map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

fn run_record(row: &Row<'_>) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        id: row.get(0)?,
        run_id: row.get(1)?,
        job: row.get(2)?,
        slot_ms: row.get(3)?,
        attempt: row.get(4)?,
        status: row.get(5)?,
        reason: row.get(6)?,
        outcome: row.get(7)?,
        trigger: row.get(8)?,
        version: row.get(9)?,
        idempotency_key: row.get(10)?,
        owner: row.get(11)?,
        scheduled_at_ms: row.get(12)?,
        started_at_ms: row.get(13)?,
        finished_at_ms: row.get(14)?,
        duration_ms: row.get(15)?,
        fuel_used: row.get(16)?,
        peak_memory: row.get(17)?,
        retry_at_ms: row.get(18)?,
        net: match row.get_ref(19)? {
            ValueRef::Null => None,
            value => Some(serde_json::from_str(value.as_str()?).map_err(|err| {
                rusqlite::Error::FromSqlConversionFailure(
                    19,
                    rusqlite::types::Type::Text,
                    Box::new(err),
                )
            })?),
        },
    })
}

/// A row of `SELECT run_columns!(), output, logs_json`.
fn run_detail(row: &Row<'_>) -> rusqlite::Result<RunDetail> {
    Ok(RunDetail {
        record: run_record(row)?,
        output: row.get(RUN_TEXT)?,
        logs_json: row.get(RUN_TEXT + 1)?,
    })
}

/// A row of `SELECT run_columns!(), output`.
fn run_with_output(row: &Row<'_>) -> rusqlite::Result<(RunRecord, String)> {
    Ok((run_record(row)?, row.get(RUN_TEXT)?))
}

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

fn job_row(row: &Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        name: row.get(0)?,
        version: row.get(1)?,
        schedule: row.get(2)?,
        paused: row.get(3)?,
        pause_note: row.get(4)?,
        breaker: row.get(5)?,
        breaker_until_ms: row.get(6)?,
        consecutive_failures: row.get(7)?,
        schedule_epoch_ms: row.get(8)?,
        updated_at_ms: row.get(9)?,
    })
}

fn insert_claim(conn: &Connection, run: &NewRun) -> rusqlite::Result<Claim> {
    debug_assert!(
        matches!(run.status, RunStatus::Running | RunStatus::Skipped | RunStatus::Missed),
        "a claim is running, skipped or missed, not {}",
        run.status
    );
    let inserted = conn.prepare_cached(CLAIM)?.execute(params![
        run.run_id,
        run.job,
        run.slot_ms,
        run.attempt,
        run.status,
        run.reason,
        run.trigger,
        run.version,
        run.idempotency_key,
        run.owner,
        run.scheduled_at_ms,
        run.started_at_ms,
    ])?;
    Ok(if inserted == 1 { Claim::Claimed } else { Claim::Taken })
}

fn update_finish(conn: &Connection, run_id: &str, finish: &RunFinish) -> rusqlite::Result<bool> {
    debug_assert!(
        matches!(
            finish.status,
            RunStatus::Succeeded
                | RunStatus::Failed
                | RunStatus::Interrupted
                | RunStatus::Missed
                | RunStatus::Skipped
        ),
        "a run finishes succeeded, failed, interrupted, missed or skipped, not {}",
        finish.status
    );
    let updated = conn
        .prepare_cached(
            "UPDATE runs SET status = ?2, reason = ?3, outcome = ?4, finished_at_ms = ?5,
                 duration_ms = ?6, fuel_used = ?7, peak_memory = ?8, output = ?9,
                 logs_json = ?10, retry_at_ms = ?11, started_at_ms = ?12, net_json = ?13
             WHERE run_id = ?1 AND status = 'running'",
        )?
        .execute(params![
            run_id,
            finish.status,
            finish.reason,
            finish.outcome,
            finish.finished_at_ms,
            finish.duration_ms,
            finish.fuel_used,
            finish.peak_memory,
            finish.output,
            finish.logs_json,
            finish.retry_at_ms,
            finish.started_at_ms,
            finish.net.map(|net| serde_json::to_string(&net).expect("counts serialize")),
        ])?;
    Ok(updated == 1)
}

/// Runs a cached query that yields run rows.
fn run_records(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<Vec<RunRecord>> {
    conn.prepare_cached(sql)?.query_map(params, run_record)?.collect()
}

impl Ledger for SqliteStore {
    fn claim(&self, run: &NewRun) -> Result<Claim, StoreError> {
        insert_claim(&self.conn(), run).map_err(query_err("run claim"))
    }

    fn claim_many(&self, runs: &[NewRun]) -> Result<Vec<Claim>, StoreError> {
        let mut conn = self.conn();
        let batch = |conn: &mut Connection| -> rusqlite::Result<Vec<Claim>> {
            // IMMEDIATE: take the write lock up front, so the busy timeout applies instead of
            // a read transaction failing to upgrade when another process writes.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let claims = runs.iter().map(|run| insert_claim(&tx, run)).collect::<Result<_, _>>()?;
            tx.commit()?;
            Ok(claims)
        };
        batch(&mut conn).map_err(query_err("run claim batch"))
    }

    fn finish(&self, run_id: &str, finish: &RunFinish) -> Result<bool, StoreError> {
        update_finish(&self.conn(), run_id, finish).map_err(query_err("run finish"))
    }

    fn finish_many(&self, finishes: &[(String, RunFinish)]) -> Result<Vec<bool>, StoreError> {
        let mut conn = self.conn();
        let batch = |conn: &mut Connection| -> rusqlite::Result<Vec<bool>> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let done = finishes
                .iter()
                .map(|(run_id, finish)| update_finish(&tx, run_id, finish))
                .collect::<Result<_, _>>()?;
            tx.commit()?;
            Ok(done)
        };
        batch(&mut conn).map_err(query_err("run finish batch"))
    }

    fn release(&self, run_id: &str) -> Result<bool, StoreError> {
        let removed = self
            .conn()
            .prepare_cached("DELETE FROM runs WHERE run_id = ?1 AND status = 'running'")
            .and_then(|mut statement| statement.execute(params![run_id]))
            .map_err(query_err("run release"))?;
        Ok(removed == 1)
    }

    fn recover_interrupted(
        &self,
        current_owner: &str,
        now_ms: i64,
    ) -> Result<Vec<RunRecord>, StoreError> {
        // One statement, so recovery is atomic: a row is either still running or interrupted
        // and returned, never interrupted without being reported.
        let sql = concat!(
            "UPDATE runs SET status = 'interrupted', reason = ?3, outcome = 'interrupted',
                 finished_at_ms = ?2, retry_at_ms = ?2,
                 started_at_ms = CASE WHEN started_at_ms > ?2 THEN NULL ELSE started_at_ms END
             WHERE status = 'running' AND owner <> ?1
             RETURNING ",
            run_columns!()
        );
        let mut rows =
            run_records(&self.conn(), sql, params![current_owner, now_ms, INTERRUPTED_REASON])
                .map_err(query_err("run recovery"))?;
        rows.sort_by_key(|run| run.id); // RETURNING has no defined order
        Ok(rows)
    }

    fn pending_retries(&self) -> Result<Vec<RunRecord>, StoreError> {
        // Two NOT EXISTS rather than one with OR, so each probes its own unique index. The
        // outer scan walks every row that ever planned a retry; it runs once per start.
        let sql = concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs AS r
             WHERE r.retry_at_ms IS NOT NULL AND r.status IN ('failed', 'interrupted')
               AND NOT EXISTS (SELECT 1 FROM runs AS n
                   WHERE r.slot_ms IS NOT NULL AND n.job = r.job AND n.slot_ms = r.slot_ms
                     AND n.attempt = r.attempt + 1)
               AND NOT EXISTS (SELECT 1 FROM runs AS n
                   WHERE r.slot_ms IS NULL AND n.slot_ms IS NULL AND n.job = r.job
                     AND n.idempotency_key = r.idempotency_key AND n.attempt = r.attempt + 1)
             ORDER BY r.retry_at_ms, r.id"
        );
        run_records(&self.conn(), sql, []).map_err(query_err("pending retries"))
    }

    fn last_slot(&self, job: &str) -> Result<Option<i64>, StoreError> {
        let conn = self.conn();
        let query = || -> rusqlite::Result<Option<i64>> {
            conn.prepare_cached(
                "SELECT max(slot_ms) FROM runs WHERE job = ?1 AND slot_ms IS NOT NULL",
            )?
            .query_row([job], |row| row.get(0))
        };
        query().map_err(query_err("last slot"))
    }

    fn slot_history(
        &self,
        job: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(i64, u32, RunStatus)>, StoreError> {
        let conn = self.conn();
        let query = || -> rusqlite::Result<Vec<(i64, u32, RunStatus)>> {
            conn.prepare_cached(
                "SELECT slot_ms, attempt, status FROM runs \
                 WHERE job = ?1 AND slot_ms >= ?2 AND slot_ms <= ?3 ORDER BY slot_ms, attempt",
            )?
            .query_map(params![job, from_ms, to_ms], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?
            .collect()
        };
        query().map_err(query_err("slot history"))
    }

    fn run(&self, run_id: &str) -> Result<Option<RunDetail>, StoreError> {
        let conn = self.conn();
        let query = || -> rusqlite::Result<Option<RunDetail>> {
            let sql = concat!(
                "SELECT ",
                run_columns!(),
                ", output, logs_json FROM runs WHERE run_id = ?1"
            );
            conn.prepare_cached(sql)?.query_row([run_id], run_detail).optional()
        };
        query().map_err(query_err("run get"))
    }

    fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        let (sql, values) = filtered_runs(run_columns!(), filter);
        run_records(&self.conn(), &sql, rusqlite::params_from_iter(values))
            .map_err(query_err("run list"))
    }

    fn runs_with_output(&self, filter: &RunFilter) -> Result<Vec<(RunRecord, String)>, StoreError> {
        let (sql, values) = filtered_runs(concat!(run_columns!(), ", output"), filter);
        let conn = self.conn();
        let query = || -> rusqlite::Result<Vec<(RunRecord, String)>> {
            conn.prepare_cached(&sql)?
                .query_map(rusqlite::params_from_iter(values), run_with_output)?
                .collect()
        };
        query().map_err(query_err("run list with output"))
    }

    fn upsert_job(&self, job: &JobRow) -> Result<(), StoreError> {
        let conn = self.conn();
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
                job.breaker,
                job.breaker_until_ms,
                job.consecutive_failures,
                job.schedule_epoch_ms,
                job.updated_at_ms,
            ])
        };
        upsert().map(drop).map_err(query_err("job upsert"))
    }

    fn remove_job(&self, name: &str) -> Result<(), StoreError> {
        let conn = self.conn();
        conn.prepare_cached("DELETE FROM jobs WHERE name = ?1")
            .and_then(|mut stmt| stmt.execute([name]))
            .map(drop)
            .map_err(query_err("job remove"))
    }

    fn job(&self, name: &str) -> Result<Option<JobRow>, StoreError> {
        let conn = self.conn();
        let query = || -> rusqlite::Result<Option<JobRow>> {
            conn.prepare_cached(concat!("SELECT ", job_columns!(), " FROM jobs WHERE name = ?1"))?
                .query_row([name], job_row)
                .optional()
        };
        query().map_err(query_err("job get"))
    }

    fn jobs(&self) -> Result<Vec<JobRow>, StoreError> {
        let conn = self.conn();
        let query = || -> rusqlite::Result<Vec<JobRow>> {
            conn.prepare_cached(concat!("SELECT ", job_columns!(), " FROM jobs ORDER BY name"))?
                .query_map([], job_row)?
                .collect()
        };
        query().map_err(query_err("job list"))
    }

    fn last_runs(&self) -> Result<Vec<RunRecord>, StoreError> {
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
        run_records(&self.conn(), sql, []).map_err(query_err("last runs"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TempDb;

    const HOST: &str = "host-a";
    const LOGS: &str = r#"[{"level":"info","message":"hi"}]"#;

    /// One run without its text, as lists read it.
    fn record(store: &SqliteStore, run_id: &str) -> Option<RunRecord> {
        store.run(run_id).unwrap().map(|detail| detail.record)
    }

    fn scheduled(run_id: &str, job: &str, slot_ms: i64, attempt: u32) -> NewRun {
        NewRun {
            run_id: run_id.to_owned(),
            job: job.to_owned(),
            slot_ms: Some(slot_ms),
            attempt,
            trigger: if attempt == 1 { "schedule" } else { "retry" }.to_owned(),
            idempotency_key: format!("{job}@{slot_ms}"),
            version: "v1".to_owned(),
            owner: HOST.to_owned(),
            scheduled_at_ms: slot_ms,
            status: RunStatus::Running,
            reason: String::new(),
            started_at_ms: Some(slot_ms + 3),
        }
    }

    fn manual(run_id: &str, job: &str, key: &str, attempt: u32) -> NewRun {
        NewRun {
            slot_ms: None,
            trigger: "manual".to_owned(),
            idempotency_key: key.to_owned(),
            ..scheduled(run_id, job, 5_000, attempt)
        }
    }

    fn failed(at_ms: i64, retry_at_ms: Option<i64>) -> RunFinish {
        RunFinish {
            status: RunStatus::Failed,
            reason: "trap: unreachable".to_owned(),
            outcome: "trap".to_owned(),
            finished_at_ms: at_ms,
            duration_ms: 1.5,
            fuel_used: None,
            peak_memory: Some(65_536),
            output: String::new(),
            logs_json: "[]".to_owned(),
            retry_at_ms,
            // `scheduled(.., 60_000, ..)` claims with a provisional start of slot + 3.
            started_at_ms: Some(60_003),
            net: None,
        }
    }

    fn succeeded(at_ms: i64) -> RunFinish {
        RunFinish {
            status: RunStatus::Succeeded,
            reason: String::new(),
            outcome: "succeeded".to_owned(),
            fuel_used: Some(u64::from(u32::MAX) + 7),
            output: "done".to_owned(),
            logs_json: LOGS.to_owned(),
            net: Some(crate::job::NetCounts {
                requests: 3,
                refused: 1,
                limited: 0,
                bytes_in: 42,
                bytes_out: 7,
            }),
            ..failed(at_ms, None)
        }
    }

    fn open(db: &TempDb) -> SqliteStore {
        SqliteStore::open(&db.path).unwrap()
    }

    #[test]
    fn a_slot_is_claimed_once_per_attempt_even_from_another_connection() {
        let db = TempDb::new("claim-slot");
        let store = open(&db);
        assert_eq!(store.claim(&scheduled("r1", "a", 60_000, 1)).unwrap(), Claim::Claimed);
        // The same claim replayed, and a rival claim with its own run id.
        assert_eq!(store.claim(&scheduled("r1", "a", 60_000, 1)).unwrap(), Claim::Taken);
        assert_eq!(store.claim(&scheduled("r2", "a", 60_000, 1)).unwrap(), Claim::Taken);
        // A second process-like connection on the same file.
        let other = open(&db);
        assert_eq!(other.claim(&scheduled("r3", "a", 60_000, 1)).unwrap(), Claim::Taken);
        // The next attempt of the slot, another slot, another job: all free.
        assert_eq!(other.claim(&scheduled("r4", "a", 60_000, 2)).unwrap(), Claim::Claimed);
        assert_eq!(store.claim(&scheduled("r4", "a", 60_000, 2)).unwrap(), Claim::Taken);
        assert_eq!(store.claim(&scheduled("r5", "a", 120_000, 1)).unwrap(), Claim::Claimed);
        assert_eq!(store.claim(&scheduled("r6", "b", 60_000, 1)).unwrap(), Claim::Claimed);
        let run = record(&store, "r1").unwrap();
        assert_eq!((run.status, run.attempt, run.slot_ms), (RunStatus::Running, 1, Some(60_000)));
        assert_eq!(run.started_at_ms, Some(60_003));
        assert_eq!(record(&store, "r2"), None);
    }

    #[test]
    fn release_removes_a_running_claim_so_the_slot_can_be_claimed_again() {
        let db = TempDb::new("release");
        let store = open(&db);
        assert_eq!(store.claim(&scheduled("early", "a", 60_000, 1)).unwrap(), Claim::Claimed);
        assert_eq!(store.claim(&scheduled("done", "a", 120_000, 1)).unwrap(), Claim::Claimed);
        assert!(store.finish("done", &succeeded(120_010)).unwrap());

        assert!(store.release("early").unwrap());
        assert_eq!(record(&store, "early"), None);
        assert_eq!(store.last_slot("a").unwrap(), Some(120_000));
        // Released, the slot can be claimed again (by this host or another).
        assert_eq!(store.claim(&scheduled("again", "a", 60_000, 1)).unwrap(), Claim::Claimed);
        // A finished run and an unknown id are never removed.
        assert!(!store.release("done").unwrap());
        assert!(!store.release("nope").unwrap());
        assert!(record(&store, "done").is_some());
    }

    #[test]
    fn finish_records_the_real_start_or_that_the_run_never_started() {
        let db = TempDb::new("finish-start");
        let store = open(&db);
        for run_id in ["waited", "never"] {
            let slot = if run_id == "waited" { 60_000 } else { 120_000 };
            assert_eq!(store.claim(&scheduled(run_id, "a", slot, 1)).unwrap(), Claim::Claimed);
        }
        // Claimed at slot + 3, started by a worker 500 ms later.
        let started = RunFinish { started_at_ms: Some(60_503), ..succeeded(61_000) };
        assert!(store.finish("waited", &started).unwrap());
        assert_eq!(record(&store, "waited").unwrap().started_at_ms, Some(60_503));
        // Missed its deadline while waiting for a worker: it never started.
        let missed = RunFinish {
            status: RunStatus::Missed,
            reason: "missed:deadline".into(),
            started_at_ms: None,
            ..failed(121_000, None)
        };
        assert!(store.finish("never", &missed).unwrap());
        let never = record(&store, "never").unwrap();
        assert_eq!((never.status, never.started_at_ms), (RunStatus::Missed, None));
    }

    #[test]
    fn racing_connections_claim_each_slot_exactly_once() {
        let db = TempDb::new("claim-race");
        drop(open(&db)); // migrate once, up front
        let claimants: Vec<_> = (0..4)
            .map(|claimant| {
                let store = open(&db);
                std::thread::spawn(move || {
                    let mut won = Vec::new();
                    for slot in 0..200 {
                        let run = scheduled(&format!("c{claimant}-{slot}"), "a", slot, 1);
                        if store.claim(&run).unwrap() == Claim::Claimed {
                            won.push(slot);
                        }
                    }
                    won
                })
            })
            .collect();
        let mut won: Vec<i64> =
            claimants.into_iter().flat_map(|claimant| claimant.join().unwrap()).collect();
        won.sort_unstable();
        assert_eq!(won, (0..200).collect::<Vec<_>>());
    }

    #[test]
    fn a_reused_run_id_is_an_error_not_a_taken_slot() {
        let db = TempDb::new("claim-run-id");
        let store = open(&db);
        assert_eq!(store.claim(&scheduled("r1", "a", 60_000, 1)).unwrap(), Claim::Claimed);
        let err = store.claim(&scheduled("r1", "a", 120_000, 1)).unwrap_err();
        assert!(matches!(err, StoreError::Query { operation: "run claim", .. }), "{err}");
    }

    #[test]
    fn manual_runs_are_unique_by_idempotency_key() {
        let db = TempDb::new("claim-manual");
        let store = open(&db);
        assert_eq!(store.claim(&manual("m1", "a", "key-1", 1)).unwrap(), Claim::Claimed);
        assert_eq!(store.claim(&manual("m2", "a", "key-1", 1)).unwrap(), Claim::Taken);
        assert_eq!(store.claim(&manual("m3", "a", "key-2", 1)).unwrap(), Claim::Claimed);
        assert_eq!(store.claim(&manual("m4", "a", "key-1", 2)).unwrap(), Claim::Claimed);
        assert_eq!(store.claim(&manual("m5", "b", "key-1", 1)).unwrap(), Claim::Claimed);
        // A scheduled run sharing the key is a different claim space.
        let mut slot = scheduled("s1", "a", 60_000, 1);
        slot.idempotency_key = "key-1".to_owned();
        assert_eq!(store.claim(&slot).unwrap(), Claim::Claimed);
        assert_eq!(store.last_slot("a").unwrap(), Some(60_000));
    }

    #[test]
    fn claim_many_claims_in_one_batch_and_answers_in_order() {
        let db = TempDb::new("claim-many");
        let store = open(&db);
        assert_eq!(store.claim(&scheduled("r1", "a", 60_000, 1)).unwrap(), Claim::Claimed);
        let missed = |run_id: &str, slot_ms| NewRun {
            status: RunStatus::Missed,
            reason: "missed:catchup-window".to_owned(),
            started_at_ms: None,
            ..scheduled(run_id, "a", slot_ms, 1)
        };
        let batch = [missed("x1", 60_000), missed("x2", 120_000), missed("x3", 120_000), {
            let mut skipped = missed("x4", 180_000);
            skipped.status = RunStatus::Skipped;
            skipped.reason = "skipped:overlap".to_owned();
            skipped
        }];
        let claims = store.claim_many(&batch).unwrap();
        assert_eq!(claims, [Claim::Taken, Claim::Claimed, Claim::Taken, Claim::Claimed]);
        let x2 = record(&store, "x2").unwrap();
        assert_eq!((x2.status, x2.reason.as_str()), (RunStatus::Missed, "missed:catchup-window"));
        assert_eq!((x2.started_at_ms, x2.finished_at_ms), (None, None));
        assert_eq!(record(&store, "x4").unwrap().status, RunStatus::Skipped);
        assert_eq!(store.last_slot("a").unwrap(), Some(180_000));
        assert_eq!(store.claim_many(&[]).unwrap(), []);
    }

    #[test]
    fn finish_records_the_end_of_a_running_run_only() {
        let db = TempDb::new("finish");
        let store = open(&db);
        assert_eq!(store.claim(&scheduled("r1", "a", 60_000, 1)).unwrap(), Claim::Claimed);
        assert!(store.finish("r1", &succeeded(60_010)).unwrap());
        let detail = store.run("r1").unwrap().unwrap();
        assert_eq!((detail.output.as_str(), detail.logs_json.as_str()), ("done", LOGS));
        let run = detail.record;
        assert_eq!(run.status, RunStatus::Succeeded);
        assert_eq!(run.outcome, "succeeded");
        assert_eq!(run.finished_at_ms, Some(60_010));
        assert_eq!(run.duration_ms, Some(1.5));
        assert_eq!(run.fuel_used, Some(u64::from(u32::MAX) + 7));
        assert_eq!(run.peak_memory, Some(65_536));
        assert_eq!(run.net.map(|n| (n.requests, n.refused, n.bytes_in)), Some((3, 1, 42)));
        // A finished run stays as it ended.
        assert!(!store.finish("r1", &failed(60_020, Some(70_000))).unwrap());
        assert_eq!(record(&store, "r1").unwrap(), run);
        // A slot recorded without a run, and an unknown run, have nothing to finish.
        let skipped = NewRun {
            status: RunStatus::Skipped,
            reason: "skipped:overlap".to_owned(),
            started_at_ms: None,
            ..scheduled("r2", "a", 120_000, 1)
        };
        assert_eq!(store.claim(&skipped).unwrap(), Claim::Claimed);
        assert!(!store.finish("r2", &succeeded(120_010)).unwrap());
        assert_eq!(record(&store, "r2").unwrap().status, RunStatus::Skipped);
        assert!(!store.finish("nope", &succeeded(1)).unwrap());
    }

    #[test]
    fn recovery_interrupts_only_other_owners_running_runs() {
        let db = TempDb::new("recover");
        let store = open(&db);
        let dead = |run_id: &str, slot_ms| NewRun {
            owner: "host-dead".to_owned(),
            ..scheduled(run_id, "a", slot_ms, 1)
        };
        assert_eq!(store.claim(&dead("d1", 60_000)).unwrap(), Claim::Claimed);
        assert_eq!(store.claim(&dead("d2", 120_000)).unwrap(), Claim::Claimed);
        assert_eq!(store.claim(&dead("d3", 180_000)).unwrap(), Claim::Claimed);
        assert!(store.finish("d3", &succeeded(180_010)).unwrap());
        assert_eq!(store.claim(&scheduled("mine", "b", 60_000, 1)).unwrap(), Claim::Claimed);
        // Claimed ahead of a fire time the dead host never reached: it never started.
        assert_eq!(store.claim(&dead("d4", 999_200)).unwrap(), Claim::Claimed);

        let recovered = store.recover_interrupted(HOST, 999_000).unwrap();
        let ids: Vec<&str> = recovered.iter().map(|run| run.run_id.as_str()).collect();
        assert_eq!(ids, ["d1", "d2", "d4"]);
        assert_eq!(recovered[0].started_at_ms, Some(60_003));
        assert_eq!(recovered[2].started_at_ms, None);
        for run in &recovered {
            assert_eq!(run.status, RunStatus::Interrupted);
            assert_eq!(run.reason, "interrupted: host stopped while running");
            assert_eq!(run.outcome, "interrupted");
            assert_eq!(run.finished_at_ms, Some(999_000));
            assert_eq!(run.retry_at_ms, Some(999_000));
            assert_eq!(record(&store, &run.run_id).as_ref(), Some(run));
        }
        assert_eq!(record(&store, "d3").unwrap().status, RunStatus::Succeeded);
        assert_eq!(record(&store, "mine").unwrap().status, RunStatus::Running);
        // A recovered run is no longer running: a late finish from the dead owner is refused.
        assert!(!store.finish("d1", &succeeded(999_500)).unwrap());
        assert_eq!(store.recover_interrupted(HOST, 1_000_000).unwrap(), []);
    }

    #[test]
    fn pending_retries_last_until_the_next_attempt_is_claimed() {
        let db = TempDb::new("retries");
        let store = open(&db);
        let pending = |store: &SqliteStore| -> Vec<String> {
            store.pending_retries().unwrap().into_iter().map(|run| run.run_id).collect()
        };
        for (run_id, slot) in [("r1", 60_000), ("r2", 120_000), ("r3", 180_000)] {
            assert_eq!(store.claim(&scheduled(run_id, "a", slot, 1)).unwrap(), Claim::Claimed);
        }
        assert!(store.finish("r1", &failed(60_010, Some(90_000))).unwrap());
        assert!(store.finish("r2", &failed(120_010, None)).unwrap()); // fatal: no retry
        assert!(store.finish("r3", &failed(180_010, Some(80_000))).unwrap());
        assert_eq!(store.claim(&manual("m1", "a", "key-1", 1)).unwrap(), Claim::Claimed);
        assert!(store.finish("m1", &failed(5_010, Some(85_000))).unwrap());
        assert_eq!(pending(&store), ["r3", "m1", "r1"]); // by retry_at

        assert_eq!(store.claim(&scheduled("r1b", "a", 60_000, 2)).unwrap(), Claim::Claimed);
        assert_eq!(store.claim(&manual("m1b", "a", "key-1", 2)).unwrap(), Claim::Claimed);
        assert_eq!(pending(&store), ["r3"]);

        // Runs a crash left running are retried at once, and stay pending until claimed.
        assert_eq!(store.claim(&scheduled("r4", "b", 60_000, 1)).unwrap(), Claim::Claimed);
        assert_eq!(pending(&store), ["r3"]); // running is not pending
        let recovered = store.recover_interrupted("host-b", 65_000).unwrap();
        assert_eq!(recovered.len(), 3); // r4, and the retries r1b and m1b left running
        assert_eq!(pending(&store), ["r1b", "m1b", "r4", "r3"]);
        let restarted = open(&db);
        assert_eq!(restarted.claim(&scheduled("r4b", "b", 60_000, 2)).unwrap(), Claim::Claimed);
        assert_eq!(pending(&restarted), ["r1b", "m1b", "r3"]);
    }

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
            breaker: "closed".to_owned(),
            breaker_until_ms: None,
            consecutive_failures: 0,
            schedule_epoch_ms: 1_000,
            updated_at_ms: 1_000,
        };
        assert_eq!(store.job("backup").unwrap(), None);
        store.upsert_job(&job).unwrap();
        store.upsert_job(&JobRow { name: "alpha".to_owned(), ..job.clone() }).unwrap();
        job.paused = true;
        job.pause_note = "disk swap".to_owned();
        job.breaker = "open".to_owned();
        job.breaker_until_ms = Some(9_000);
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

    #[test]
    fn run_status_names_round_trip() {
        for status in RunStatus::ALL {
            assert_eq!(status.as_str().parse::<RunStatus>().unwrap(), status);
            assert_eq!(status.to_string(), status.as_str());
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{status}\""));
        }
        let err = "done".parse::<RunStatus>().unwrap_err();
        assert!(err.to_string().starts_with("unknown run status \"done\""), "{err}");
    }

    #[test]
    fn finish_many_finishes_in_one_batch_and_answers_in_order() {
        let db = TempDb::new("finish-many");
        let store = open(&db);
        for (run_id, slot) in [("r1", 60_000), ("r2", 120_000)] {
            assert_eq!(store.claim(&scheduled(run_id, "a", slot, 1)).unwrap(), Claim::Claimed);
        }
        let batch = [
            ("r1".to_owned(), succeeded(60_010)),
            ("nope".to_owned(), succeeded(60_010)),
            ("r2".to_owned(), failed(120_010, Some(130_000))),
            ("r1".to_owned(), failed(60_020, None)),
        ];
        assert_eq!(store.finish_many(&batch).unwrap(), [true, false, true, false]);
        assert_eq!(record(&store, "r1").unwrap().status, RunStatus::Succeeded);
        let r2 = record(&store, "r2").unwrap();
        assert_eq!((r2.status, r2.retry_at_ms), (RunStatus::Failed, Some(130_000)));
        assert!(store.finish_many(&[]).unwrap().is_empty());
    }

    /// `cargo test --release -- --ignored --nocapture claim_finish_throughput`
    #[test]
    #[ignore = "a measurement, not a check"]
    fn claim_finish_throughput() {
        let db = TempDb::new("bench");
        let store = open(&db);
        let run = |i: i64| {
            // Scattered ids, as random run ids are, so the run_id index is not appended to.
            let run_id = format!("{:016x}", (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut run = scheduled(&run_id, "noop", i, 1);
            run.job = format!("noop-{}", i % 10);
            run
        };
        let report = |what: &str, pairs: i64, elapsed: std::time::Duration| {
            println!(
                "{what}: {pairs} claim+finish pairs in {elapsed:.2?}: {:.0} pairs/s, {:.1} µs each",
                pairs as f64 / elapsed.as_secs_f64(),
                elapsed.as_secs_f64() * 1e6 / pairs as f64
            );
        };
        let pairs = 30_000;
        let started = std::time::Instant::now();
        for i in 0..pairs {
            let run = run(i);
            assert_eq!(store.claim(&run).unwrap(), Claim::Claimed);
            assert!(store.finish(&run.run_id, &succeeded(i + 1)).unwrap());
        }
        report("one by one", pairs, started.elapsed());

        let batch = 64;
        let started = std::time::Instant::now();
        for chunk in 1..=pairs / batch {
            let runs: Vec<NewRun> = (0..batch).map(|i| run(chunk * 1_000_000 + i)).collect();
            assert!(store.claim_many(&runs).unwrap().iter().all(|c| *c == Claim::Claimed));
            let finishes: Vec<(String, RunFinish)> =
                runs.into_iter().map(|run| (run.run_id, succeeded(1))).collect();
            assert!(store.finish_many(&finishes).unwrap().iter().all(|done| *done));
        }
        report("batches of 64", pairs / batch * batch, started.elapsed());
    }
}
