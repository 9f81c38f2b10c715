//! Retention (issue 15): which run rows history keeps, and pruning the rest in small
//! batches that never hold up a claim.
//!
//! A job's rows go when older than `max_age` (by when they were due) or beyond its newest
//! `max_runs`; never a `running` row, never a failed or interrupted attempt whose retry is
//! still due, never the newest row of a job the host still has (it is the misfire
//! high-water mark, [`Ledger::last_slot`](super::Ledger::last_slot)), and with
//! `keep_last_failure` never the job's newest failure. Jobs no longer in the `jobs` table
//! (removed from the folder) keep nothing past `max_age`.
//!
//! Each batch is one transaction of at most [`PruneOptions::batch`] rows on the store's one
//! connection, run inside the store's prune gate (`prune_gate.rs`): a claim that finds the
//! connection busy with a batch stops it (the batch is rolled back whole) and goes first, so prune work never delays a claim (benches/prune.rs). After an interrupted batch
//! the next one is half the size, growing back while batches go through, and the pruner
//! pauses between batches, so a prune still finishes beside a steady stream of claims.

use std::time::Duration;

use rusqlite::{Connection, params};

use super::prune_gate::is_interrupted;
use super::{SqliteStore, StoreError};

/// How much history a job keeps; `None` limits nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Rows due longer ago than this go.
    pub max_age: Option<Duration>,
    /// At most this many rows per job.
    pub max_runs: Option<u64>,
    /// Keep the job's newest failed row whatever its age or rank.
    pub keep_last_failure: bool,
}

impl Default for RetentionPolicy {
    /// Keep everything (and the last failure).
    fn default() -> Self {
        RetentionPolicy { max_age: None, max_runs: None, keep_last_failure: true }
    }
}

impl RetentionPolicy {
    /// Whether this policy removes anything at all.
    pub fn limits(&self) -> bool {
        self.max_age.is_some() || self.max_runs.is_some()
    }
}

/// How a prune goes.
#[derive(Clone, Debug)]
pub struct PruneOptions {
    /// Now, in ms since the Unix epoch (ages count from it).
    pub now_ms: i64,
    /// Only this job's rows.
    pub job: Option<String>,
    /// Count what would go; delete nothing.
    pub dry_run: bool,
    /// Most rows per transaction.
    pub batch: usize,
    /// A pause between batches, so a long prune stays in the background.
    pub pause: Duration,
}

/// What a prune removed (or, dry, would remove), per job.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// (job, rows), by job name; jobs with nothing to remove are left out.
    pub jobs: Vec<(String, u64)>,
}

impl PruneReport {
    /// Rows in all.
    pub fn total(&self) -> u64 {
        self.jobs.iter().map(|(_, rows)| rows).sum()
    }
}

/// The rows of job ?1 a policy removes: ?2 age cutoff (or NULL), ?3 first id kept by
/// max_runs (or NULL), ?4 an id to keep (last failure or newest row, or NULL), ?5 the
/// newest row's id when it must stay (or NULL).
const VICTIMS: &str = "FROM runs AS r WHERE r.job = ?1 AND r.status <> 'running'
      AND ((?2 IS NOT NULL AND r.scheduled_at_ms < ?2) OR (?3 IS NOT NULL AND r.id < ?3))
      AND r.id IS NOT ?4 AND r.id IS NOT ?5
      AND NOT (r.retry_at_ms IS NOT NULL AND r.status IN ('failed', 'interrupted')
           AND NOT EXISTS (SELECT 1 FROM runs AS n WHERE n.job = r.job
               AND n.idempotency_key = r.idempotency_key AND n.attempt = r.attempt + 1))";

/// [`VICTIMS`]' parameters 2 to 5.
type PruneBounds = (Option<i64>, Option<i64>, Option<i64>, Option<i64>);

/// The bounds of one job's prune, as [`VICTIMS`]' parameters 2 to 5.
fn bounds(
    conn: &Connection,
    job: &str,
    policy: &RetentionPolicy,
    live: bool,
    now_ms: i64,
) -> rusqlite::Result<PruneBounds> {
    let cutoff = policy.max_age.map(|age| now_ms - age.as_millis() as i64);
    let first_kept = match policy.max_runs.filter(|_| live) {
        Some(max) => conn
            .prepare_cached(
                "SELECT id FROM runs WHERE job = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2",
            )?
            .query_row(params![job, max.saturating_sub(1) as i64], |row| row.get(0))
            .or_else(|err| match err {
                rusqlite::Error::QueryReturnedNoRows => Ok(i64::MIN),
                err => Err(err),
            })
            .map(Some)?,
        None => None,
    };
    let first_kept = if policy.max_runs == Some(0) && live { Some(i64::MAX) } else { first_kept };
    let last_failure = if policy.keep_last_failure {
        conn.prepare_cached("SELECT max(id) FROM runs WHERE job = ?1 AND status = 'failed'")?
            .query_row([job], |row| row.get(0))?
    } else {
        None
    };
    let newest = if live {
        conn.prepare_cached("SELECT max(id) FROM runs WHERE job = ?1")?
            .query_row([job], |row| row.get(0))?
    } else {
        None
    };
    Ok((cutoff, first_kept, last_failure, newest))
}

impl SqliteStore {
    /// Prunes history: `policy_of(job)` gives each job's policy and whether the caller
    /// knows the job is loaded (else it is live when it has a row in `jobs`). Returns what
    /// went (or would go).
    pub fn prune(
        &self,
        options: &PruneOptions,
        policy_of: &dyn Fn(&str) -> (RetentionPolicy, bool),
    ) -> Result<PruneReport, StoreError> {
        let err = |source| StoreError::Query { operation: "prune", source };
        let jobs = {
            let conn = self.conn();
            job_names(&conn, options.job.as_deref()).map_err(err)?
        };
        let mut report = PruneReport::default();
        for (job, in_table) in jobs {
            let (policy, known) = policy_of(&job);
            let live = in_table || known;
            // A removed job keeps nothing past the age limit; without one, it is kept.
            let policy = if live { policy } else { RetentionPolicy { max_runs: None, ..policy } };
            if !policy.limits() {
                continue;
            }
            let removed = self.prune_job(&job, &policy, live, options).map_err(err)?;
            if removed > 0 {
                report.jobs.push((job, removed));
            }
        }
        Ok(report)
    }

    fn prune_job(
        &self,
        job: &str,
        policy: &RetentionPolicy,
        live: bool,
        options: &PruneOptions,
    ) -> rusqlite::Result<u64> {
        let bounds = bounds(&self.conn(), job, policy, live, options.now_ms)?;
        let (cutoff, first_kept, keep, newest) = bounds;
        if options.dry_run {
            let sql = format!("SELECT count(*) {VICTIMS}");
            return self
                .conn()
                .prepare_cached(&sql)?
                .query_row(params![job, cutoff, first_kept, keep, newest], |row| row.get(0));
        }
        let sql =
            format!("DELETE FROM runs WHERE id IN (SELECT r.id {VICTIMS} ORDER BY r.id LIMIT ?6)");
        let mut removed = 0u64;
        let mut batch = options.batch.max(1);
        loop {
            // One batch per lock, inside the prune gate: whoever wants the connection
            // meanwhile stops the batch (rolled back whole) and goes first.
            let (deleted, result) = {
                let conn = self.conn();
                self.prune_gate.run(&conn, || {
                    let params = params![job, cutoff, first_kept, keep, newest, batch as i64];
                    let before = conn.total_changes();
                    let result = conn.prepare_cached(&sql).and_then(|mut s| s.execute(params));
                    // Counted by SQLite, not from the result: a batch stopped after its
                    // commit (SQLite checks the handler once more on the way out) still
                    // reports SQLITE_INTERRUPT, and its rows are gone.
                    ((conn.total_changes() - before) as usize, result)
                })
            };
            removed += deleted as u64;
            match result {
                Ok(_) if deleted < batch => return Ok(removed),
                // Back towards the configured size while batches go through.
                Ok(_) => batch = (batch + batch / 4 + 1).min(options.batch.max(1)),
                // Smaller next time, so that a batch fits between the claims.
                Err(err) if is_interrupted(&err) => batch = (batch / 2).max(1),
                Err(err) => return Err(err),
            }
            if options.pause.is_zero() {
                std::thread::yield_now();
            } else {
                std::thread::sleep(options.pause);
            }
        }
    }
}

/// Every job with history, and whether the host still has it (a row in `jobs`).
fn job_names(conn: &Connection, only: Option<&str>) -> rusqlite::Result<Vec<(String, bool)>> {
    // The same skip-scan over `runs_job` as `last_runs`: one probe per job.
    let sql = "WITH RECURSIVE names(job) AS (
                   SELECT min(job) FROM runs
                   UNION ALL
                   SELECT (SELECT min(job) FROM runs WHERE job > names.job)
                   FROM names WHERE names.job IS NOT NULL)
               SELECT job, EXISTS (SELECT 1 FROM jobs WHERE name = names.job)
               FROM names WHERE job IS NOT NULL AND (?1 IS NULL OR job = ?1)";
    conn.prepare_cached(sql)?.query_map([only], |row| Ok((row.get(0)?, row.get(1)?)))?.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite_ledger::test_util::{failed, scheduled, succeeded};
    use crate::store::{Claim, JobRow, Ledger, RunFilter, TempDb};

    const DAY: i64 = 86_400_000;

    fn options(now_ms: i64) -> PruneOptions {
        PruneOptions { now_ms, job: None, dry_run: false, batch: 3, pause: Duration::ZERO }
    }

    fn live(store: &SqliteStore, name: &str) {
        let row = JobRow {
            name: name.into(),
            version: "v1".into(),
            schedule: "every 1m".into(),
            paused: false,
            pause_note: String::new(),
            breaker: crate::words::BreakerState::Closed,
            consecutive_failures: 0,
            schedule_epoch_ms: 0,
            updated_at_ms: 0,
        };
        store.upsert_job(&row).unwrap();
    }

    fn ids(store: &SqliteStore, job: &str) -> Vec<String> {
        let filter = RunFilter { job: Some(job.into()), limit: 1000, ..RunFilter::default() };
        let mut ids: Vec<String> =
            store.runs(&filter).unwrap().into_iter().map(|run| run.run_id).collect();
        ids.reverse();
        ids
    }

    /// Job `a`: ten finished runs a day apart (r0 oldest), r3 failed, r9 still running.
    fn history(db: &TempDb) -> SqliteStore {
        let store = SqliteStore::open(&db.path).unwrap();
        live(&store, "a");
        for day in 0..10 {
            let id = format!("r{day}");
            assert_eq!(store.claim(&scheduled(&id, "a", day * DAY, 1)).unwrap(), Claim::Claimed);
            let end = if day == 3 { failed(day * DAY + 5, None) } else { succeeded(day * DAY + 5) };
            if day != 9 {
                assert!(store.finish(&id, &end).unwrap());
            }
        }
        store
    }

    #[test]
    fn max_runs_keeps_the_newest_and_the_last_failure() {
        let db = TempDb::new("prune-max-runs");
        let store = history(&db);
        let keep4 = RetentionPolicy { max_runs: Some(4), ..RetentionPolicy::default() };
        let report = store.prune(&options(10 * DAY), &|_| (keep4, false)).unwrap();
        assert_eq!(report.jobs, [("a".to_string(), 5)]);
        assert_eq!(ids(&store, "a"), ["r3", "r6", "r7", "r8", "r9"]);
        let forget = RetentionPolicy { keep_last_failure: false, ..keep4 };
        store.prune(&options(10 * DAY), &|_| (forget, false)).unwrap();
        assert_eq!(ids(&store, "a"), ["r6", "r7", "r8", "r9"]);
    }

    #[test]
    fn max_age_spares_running_rows_and_dry_runs_delete_nothing() {
        let db = TempDb::new("prune-max-age");
        let store = history(&db);
        // Due more than 2.5 days before day 10: r0..r7, but r3 failed last and r9 runs.
        let age = RetentionPolicy {
            max_age: Some(Duration::from_millis((2.5 * DAY as f64) as u64)),
            ..RetentionPolicy::default()
        };
        let dry = PruneOptions { dry_run: true, ..options(10 * DAY) };
        assert_eq!(store.prune(&dry, &|_| (age, false)).unwrap().total(), 7);
        assert_eq!(ids(&store, "a").len(), 10);
        assert_eq!(store.prune(&options(10 * DAY), &|_| (age, false)).unwrap().total(), 7);
        assert_eq!(ids(&store, "a"), ["r3", "r8", "r9"]);
        // Far in the future: only what must stay stays (the running row, the last failure).
        assert_eq!(store.prune(&options(100 * DAY), &|_| (age, false)).unwrap().total(), 1);
        assert_eq!(ids(&store, "a"), ["r3", "r9"]);
    }

    #[test]
    fn removed_jobs_lose_everything_past_the_age_and_pending_retries_stay() {
        let db = TempDb::new("prune-removed");
        let store = SqliteStore::open(&db.path).unwrap();
        for day in 0..3 {
            let id = format!("g{day}");
            assert_eq!(store.claim(&scheduled(&id, "gone", day * DAY, 1)).unwrap(), Claim::Claimed);
            assert!(store.finish(&id, &succeeded(day * DAY + 5)).unwrap());
        }
        assert_eq!(store.claim(&scheduled("p1", "pending", 0, 1)).unwrap(), Claim::Claimed);
        assert!(store.finish("p1", &failed(5, Some(DAY))).unwrap());
        live(&store, "pending");
        let policy = RetentionPolicy {
            max_age: Some(Duration::from_millis(DAY as u64)),
            max_runs: Some(1),
            keep_last_failure: false,
        };
        store.prune(&options(100 * DAY), &|_| (policy, false)).unwrap();
        assert_eq!(ids(&store, "gone"), [""; 0], "a removed job keeps nothing past max age");
        assert_eq!(ids(&store, "pending"), ["p1"], "a retry still due is never pruned");
        let only = PruneOptions { job: Some("nope".into()), ..options(100 * DAY) };
        assert_eq!(store.prune(&only, &|_| (policy, false)).unwrap(), PruneReport::default());
    }

    /// Issue 15: a claim made during a prune batch does not wait for it. One batch of all
    /// 20,000 rows takes far longer than a claim; the claim interrupts it, the batch is
    /// rolled back whole (every row still there when the claim returns, as the pruner then
    /// pauses), and the prune still removes everything in smaller batches afterwards.
    #[test]
    fn a_claim_interrupts_a_prune_batch_and_the_prune_still_finishes() {
        const ROWS: i64 = 20_000;
        let db = TempDb::new("prune-interrupted");
        let store = SqliteStore::open(&db.path).unwrap();
        let runs: Vec<_> = (0..ROWS).map(|i| scheduled(&format!("o{i}"), "old", i, 1)).collect();
        store.claim_many(&runs).unwrap();
        let ends: Vec<_> =
            runs.iter().map(|r| (r.run_id.clone(), succeeded(r.slot_ms.unwrap() + 1))).collect();
        store.finish_many(&ends).unwrap();
        let old = |store: &SqliteStore| -> i64 {
            store
                .conn()
                .query_row("SELECT count(*) FROM runs WHERE job = 'old'", [], |r| r.get(0))
                .unwrap()
        };
        let options = PruneOptions {
            batch: ROWS as usize,
            pause: Duration::from_millis(300),
            ..options(1_000 * DAY)
        };
        let age =
            RetentionPolicy { max_age: Some(Duration::from_secs(1)), ..RetentionPolicy::default() };
        std::thread::scope(|scope| {
            let pruner = scope.spawn(|| store.prune(&options, &|_| (age, false)).unwrap());
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            // The pruner holds the connection (its batch, or the bounds just before it).
            while !store.is_busy() {
                assert!(std::time::Instant::now() < deadline, "no prune batch started");
                std::thread::yield_now();
            }
            assert_eq!(store.claim(&scheduled("hot", "hot", 0, 1)).unwrap(), Claim::Claimed);
            assert_eq!(old(&store), ROWS, "the claim waited for the batch to commit");
            assert_eq!(pruner.join().unwrap().total(), ROWS as u64);
        });
        assert_eq!(old(&store), 0);
    }
}
