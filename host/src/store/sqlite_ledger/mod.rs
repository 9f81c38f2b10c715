//! [`Ledger`] for [`SqliteStore`]: the slot ledger as the `runs` and `jobs` tables
//! (schema in `migrations.rs`, migration 2).
//!
//! A claim is one `INSERT ... ON CONFLICT DO NOTHING` against the partial unique indexes on
//! (job, slot_ms, attempt) and (job, idempotency_key, attempt): the row count says who won,
//! so a lost race is an answer ([`Claim::Taken`]), not an error, and no read-then-write
//! window exists. Only those two conflicts are absorbed; any other (a reused run id) is an
//! error. Every statement is cached, so the hot pair (claim, finish) costs no parsing.
//!
//! # Layout
//! This file maps rows to types and delegates each [`Ledger`] method to the file that owns
//! it: `claims.rs` (claim, finish, release), `recovery.rs` (what a restart picks up),
//! `queries.rs` (run history reads) and `jobs.rs` (jobs' scheduling state). Every write goes
//! through [`SqliteStore::tracked`], so store faults reach the store's health (`health.rs`).

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{Connection, Row, ToSql};

use crate::job::TriggerKind;
use crate::words::BreakerState;

use super::{
    Claim, CompilingRow, HealthReport, JobRow, Ledger, LoadErrorRow, NewRun, RunDetail, RunFilter,
    RunFinish, RunRecord, RunStatus, SqliteStore, StoreError,
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

mod claims;
mod jobs;
mod loads;
mod queries;
mod recovery;
#[cfg(test)]
pub(crate) mod test_util;

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

impl ToSql for TriggerKind {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(self.as_str().as_bytes())))
    }
}

impl FromSql for TriggerKind {
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

/// A row of `SELECT job_columns!()`.
fn job_row(row: &Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        name: row.get(0)?,
        version: row.get(1)?,
        schedule: row.get(2)?,
        paused: row.get(3)?,
        pause_note: row.get(4)?,
        breaker: BreakerState::from_stored(row.get_ref(5)?.as_str()?, row.get(6)?).map_err(
            |err| {
                rusqlite::Error::FromSqlConversionFailure(
                    5,
                    rusqlite::types::Type::Text,
                    Box::new(err),
                )
            },
        )?,
        consecutive_failures: row.get(7)?,
        schedule_epoch_ms: row.get(8)?,
        updated_at_ms: row.get(9)?,
    })
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
        self.tracked(claims::claim(self, run), std::slice::from_ref(run))
    }

    fn claim_many(&self, runs: &[NewRun]) -> Result<Vec<Claim>, StoreError> {
        self.tracked(claims::claim_many(self, runs), runs)
    }

    fn finish(&self, run_id: &str, finish: &RunFinish) -> Result<bool, StoreError> {
        self.tracked(claims::finish(self, run_id, finish), &[])
    }

    fn finish_many(&self, finishes: &[(String, RunFinish)]) -> Result<Vec<bool>, StoreError> {
        self.tracked(claims::finish_many(self, finishes), &[])
    }

    fn release(&self, run_id: &str) -> Result<bool, StoreError> {
        self.tracked(claims::release(self, run_id), &[])
    }

    fn recover_interrupted(
        &self,
        current_owner: &str,
        now_ms: i64,
    ) -> Result<Vec<RunRecord>, StoreError> {
        self.tracked(recovery::recover_interrupted(self, current_owner, now_ms), &[])
    }

    fn pending_retries(&self) -> Result<Vec<RunRecord>, StoreError> {
        recovery::pending_retries(self)
    }

    fn last_slot(&self, job: &str) -> Result<Option<i64>, StoreError> {
        queries::last_slot(self, job)
    }

    fn slot_history(
        &self,
        job: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(i64, u32, RunStatus)>, StoreError> {
        queries::slot_history(self, job, from_ms, to_ms)
    }

    fn run(&self, run_id: &str) -> Result<Option<RunDetail>, StoreError> {
        queries::run(self, run_id)
    }

    fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        queries::runs(self, filter)
    }

    fn runs_with_output(&self, filter: &RunFilter) -> Result<Vec<(RunRecord, String)>, StoreError> {
        queries::runs_with_output(self, filter)
    }

    fn upsert_job(&self, job: &JobRow) -> Result<(), StoreError> {
        self.tracked(jobs::upsert_job(self, job), &[])
    }

    fn remove_job(&self, name: &str) -> Result<(), StoreError> {
        self.tracked(jobs::remove_job(self, name), &[])
    }

    fn job(&self, name: &str) -> Result<Option<JobRow>, StoreError> {
        jobs::job(self, name)
    }

    fn jobs(&self) -> Result<Vec<JobRow>, StoreError> {
        jobs::jobs(self)
    }

    fn last_runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        queries::last_runs(self)
    }

    fn set_load_error(&self, row: &LoadErrorRow) -> Result<(), StoreError> {
        self.tracked(loads::set_load_error(self, row), &[])
    }

    fn clear_load_error(&self, name: &str) -> Result<(), StoreError> {
        self.tracked(loads::clear_load_error(self, name), &[])
    }

    fn load_errors(&self) -> Result<Vec<LoadErrorRow>, StoreError> {
        loads::load_errors(self)
    }

    fn set_compiling(&self, row: &CompilingRow) -> Result<(), StoreError> {
        self.tracked(loads::set_compiling(self, row), &[])
    }

    fn clear_compiling(&self, name: &str) -> Result<(), StoreError> {
        self.tracked(loads::clear_compiling(self, name), &[])
    }

    fn compiling(&self) -> Result<Vec<CompilingRow>, StoreError> {
        loads::compiling(self)
    }

    fn health(&self) -> HealthReport {
        self.health().report()
    }
}

pub(super) use claims::record_lost;

#[cfg(test)]
mod tests {
    use super::*;

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
}
