//! The slot ledger: the durable record of every claimed slot, every run and every job's
//! scheduling state, behind the [`Ledger`] trait.
//!
//! The scheduler claims a slot ([`Ledger::claim`]) before the guest starts and records how it
//! ended ([`Ledger::finish`]); after a crash it asks what was left running
//! ([`Ledger::recover_interrupted`]) and what still waits for a retry
//! ([`Ledger::pending_retries`]). The claim is a plain insert under a unique key, so the
//! database, not the scheduler's memory, decides which claim wins (S3): that holds within one
//! process, across a restart and, with a shared backend (D1), across nodes.
//!
//! Times are `i64` milliseconds since the Unix epoch (UTC), so the store needs no date crate
//! and every backend stores them as plain integers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{HealthReport, StoreError};
use crate::job::{NetCounts, TriggerKind};
use crate::words::{BreakerState, SlotReason};

/// Where a run, or a slot recorded without a run, stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Claimed and started; not finished yet (or its host died: see S8).
    Running,
    /// The guest returned success.
    Succeeded,
    /// The guest failed (guest error, trap, limit or host failure; see `outcome`).
    Failed,
    /// Stopped by the host: shutdown grace period over, or found running after a crash.
    Interrupted,
    /// A slot deliberately not run, e.g. because of the overlap policy.
    Skipped,
    /// A slot not started in time (misfire policy, starting deadline).
    Missed,
}

impl RunStatus {
    /// Every status, in declaration order.
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Interrupted,
        RunStatus::Skipped,
        RunStatus::Missed,
    ];

    /// The stored (and displayed) name: "running", "succeeded", ...
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Skipped => "skipped",
            RunStatus::Missed => "missed",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status name that is none of [`RunStatus`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown run status {0:?} (expected one of running, succeeded, failed, interrupted, skipped, missed)"
)]
pub struct UnknownRunStatus(pub String);

impl FromStr for RunStatus {
    type Err = UnknownRunStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownRunStatus(s.to_owned()))
    }
}

/// One claim: the row written before a guest starts, or a slot recorded without a run.
#[derive(Clone, Debug)]
pub struct NewRun {
    /// Unique id of this attempt.
    pub run_id: String,
    /// The job's name.
    pub job: String,
    /// The slot's nominal instant; `None` for manual runs, which are unique by
    /// `idempotency_key` instead.
    pub slot_ms: Option<i64>,
    /// 1-based; a retry claims the same slot with the next attempt.
    pub attempt: u32,
    /// Why it was started.
    pub trigger: TriggerKind,
    /// Stable across the attempts of one slot (or one manual trigger).
    pub idempotency_key: String,
    /// The job version (content hash) this attempt runs.
    pub version: String,
    /// The host instance that claimed it: crash recovery (S8) interrupts only runs whose
    /// owner is not the current instance.
    pub owner: String,
    /// When the run was due (the slot, jitter included; the request time for manual runs).
    pub scheduled_at_ms: i64,
    /// [`RunStatus::Running`] for a real start; [`RunStatus::Skipped`] or
    /// [`RunStatus::Missed`] to record a slot without running it.
    pub status: RunStatus,
    /// Why, for skipped or missed slots (`reason.status()` is `status`); `None` for a
    /// running claim.
    pub reason: Option<SlotReason>,
    /// The actual start; `None` for a slot recorded without a run.
    pub started_at_ms: Option<i64>,
}

/// What a claim found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a Taken claim means another claimant owns this slot: do not start the run"]
pub enum Claim {
    /// The row is ours: go ahead.
    Claimed,
    /// The unique key already exists: somebody claimed this slot and attempt (or this
    /// manual idempotency key and attempt) before. Not an error.
    Taken,
}

/// How a running run ended.
#[derive(Clone, Debug)]
pub struct RunFinish {
    /// [`RunStatus::Succeeded`], [`RunStatus::Failed`], [`RunStatus::Interrupted`], or
    /// [`RunStatus::Missed`] when the run waited for a worker past its starting deadline.
    pub status: RunStatus,
    /// The precise reason, e.g. "timeout after 10s"; empty on success.
    pub reason: String,
    /// The runtime's outcome kind: succeeded, guest-error, trap, limit, host-error or
    /// interrupted (kept apart from `status` so the four failure cases stay queryable).
    pub outcome: String,
    /// When the run ended.
    pub finished_at_ms: i64,
    /// Measured on the monotonic clock, hence not `finished_at - started_at`.
    pub duration_ms: f64,
    /// Fuel consumed, when fuel metering was on.
    pub fuel_used: Option<u64>,
    /// Peak linear memory, in bytes.
    pub peak_memory: Option<u64>,
    /// The guest's output (already capped by the runtime).
    pub output: String,
    /// The captured log lines as a JSON array (already capped by the runtime).
    pub logs_json: String,
    /// When the scheduler plans attempt + 1: recorded so a restarted host still retries
    /// ([`Ledger::pending_retries`]).
    pub retry_at_ms: Option<i64>,
    /// When the guest really started, replacing the claim's provisional time (a run is
    /// claimed before it waits for a worker); `None`: it never started.
    pub started_at_ms: Option<i64>,
    /// What it did on the network; `None` when it made no request.
    pub net: Option<NetCounts>,
}

/// One row of run history, every column typed but the captured output and logs (see
/// [`RunDetail`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunRecord {
    /// Insertion order; stable, hence the pagination cursor ([`RunFilter::before_id`]).
    pub id: i64,
    /// Unique id of this attempt.
    pub run_id: String,
    /// The job's name.
    pub job: String,
    /// The slot's nominal instant; `None` for manual runs.
    pub slot_ms: Option<i64>,
    /// 1-based attempt number.
    pub attempt: u32,
    /// Where the run stands.
    pub status: RunStatus,
    /// Why it ended (or was skipped or missed) that way.
    pub reason: String,
    /// The runtime's outcome kind; empty until the run finishes.
    pub outcome: String,
    /// Why it was started.
    pub trigger: TriggerKind,
    /// The job version (content hash) it ran.
    pub version: String,
    /// Stable across the attempts of one slot.
    pub idempotency_key: String,
    /// The host instance that claimed it.
    pub owner: String,
    /// When it was due.
    pub scheduled_at_ms: i64,
    /// When it started; `None` for skipped or missed slots.
    pub started_at_ms: Option<i64>,
    /// When it ended; `None` while running.
    pub finished_at_ms: Option<i64>,
    /// Monotonic run time; `None` unless finished normally.
    pub duration_ms: Option<f64>,
    /// Fuel consumed, when metered.
    pub fuel_used: Option<u64>,
    /// Peak linear memory, in bytes.
    pub peak_memory: Option<u64>,
    /// When attempt + 1 is planned, if it is.
    pub retry_at_ms: Option<i64>,
    /// What it did on the network; `None` when it made no request.
    pub net: Option<NetCounts>,
}

/// One run with the text it captured, which [`RunRecord`] leaves out: up to the output and
/// log caps (256 KiB of logs by default) per run, so lists never read it (a page of 500
/// runs would be 128 MiB) and only one run's page does ([`Ledger::run`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunDetail {
    /// Every other column.
    pub record: RunRecord,
    /// The guest's output.
    pub output: String,
    /// The captured log lines as a JSON array.
    pub logs_json: String,
}

/// Which runs [`Ledger::runs`] returns.
#[derive(Clone, Debug)]
pub struct RunFilter {
    /// Only this job's runs.
    pub job: Option<String>,
    /// Only runs in this status.
    pub status: Option<RunStatus>,
    /// Only runs scheduled at or after this instant.
    pub since_ms: Option<i64>,
    /// Only runs scheduled before this instant (exclusive).
    pub until_ms: Option<i64>,
    /// Only rows older than this id: pass the last id of the previous page.
    pub before_id: Option<i64>,
    /// Only runs with this idempotency key.
    pub idempotency_key: Option<String>,
    /// Only runs of no slot: manual triggers and their retries. Their keys are the client's
    /// own and live apart from the `job@slot` keys of scheduled runs, so a manual key is
    /// looked up among these alone.
    pub manual_only: bool,
    /// At most this many rows.
    pub limit: usize,
}

impl Default for RunFilter {
    /// Everything, newest first, one page of 100.
    fn default() -> Self {
        RunFilter {
            job: None,
            status: None,
            since_ms: None,
            until_ms: None,
            before_id: None,
            idempotency_key: None,
            manual_only: false,
            limit: 100,
        }
    }
}

/// A job's durable scheduling state: what survives a restart besides its runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobRow {
    /// The job's name (its file stem).
    pub name: String,
    /// The loaded version (content hash).
    pub version: String,
    /// The schedule, described for people ("every 30s", "0 3 * * * (Europe/Paris)").
    pub schedule: String,
    /// Paused by an operator (S5).
    pub paused: bool,
    /// The operator's note on pause or resume.
    pub pause_note: String,
    /// The circuit breaker (M4); while open, when it lets a half-open probe through
    /// (stored as the `breaker` word and `breaker_until_ms`).
    pub breaker: BreakerState,
    /// Failed slots in a row, for the breaker.
    pub consecutive_failures: u32,
    /// Slots at or before this instant are never fired: set when the job is added or its
    /// schedule changes, so an edit never fires a slot immediately (S5) and misfire handling
    /// never reaches back before the job existed.
    pub schedule_epoch_ms: i64,
    /// When this row was last written.
    pub updated_at_ms: i64,
}

/// A job whose latest version is still compiling in the background (a cold compile).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CompilingRow {
    /// The job's name (its file stem).
    pub name: String,
    /// When the compile began.
    pub since_ms: i64,
    /// The version the host keeps running meanwhile; `None`: no version of the job runs yet.
    pub running_version: Option<String>,
}

/// A job whose latest load failed (M7): a broken edit beside the version still running,
/// or a job file that is not running at all.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoadErrorRow {
    /// The job's name (its file stem).
    pub name: String,
    /// Why, naming file and line.
    pub error: String,
    /// The version the host keeps running; `None`: no version of the job runs.
    pub running_version: Option<String>,
    /// When the load failed.
    pub at_ms: i64,
}

/// The durable slot ledger (S3, S4, S7, S8). Every method is a short, synchronous
/// database call; the scheduler calls it from a blocking-tolerant context.
pub trait Ledger: Send + Sync {
    /// Durably inserts the run row before the guest starts (S3). Unique on
    /// (job, slot_ms, attempt) for scheduled runs and on (job, idempotency_key, attempt)
    /// for manual runs; a second claim returns [`Claim::Taken`], never an error.
    fn claim(&self, run: &NewRun) -> Result<Claim, StoreError>;

    /// Many claims in one transaction (slots missed or skipped during downtime, batches).
    /// Same semantics per row; the answers are in the order of `runs`.
    fn claim_many(&self, runs: &[NewRun]) -> Result<Vec<Claim>, StoreError>;

    /// Records the end of a running run. Only a row still `running` changes; returns whether
    /// one did (false: unknown run id, or already finished or recovered as interrupted).
    fn finish(&self, run_id: &str, finish: &RunFinish) -> Result<bool, StoreError>;

    /// Many finishes in one transaction: what a recorder draining completed runs calls, so
    /// a burst of short runs costs one commit, not one each. Answers in order, as
    /// [`Ledger::finish`] would.
    fn finish_many(&self, finishes: &[(String, RunFinish)]) -> Result<Vec<bool>, StoreError>;

    /// Gives up a claim taken ahead of its slot's instant whose guest never started (the
    /// job was paused, edited or removed, or the host stopped, before the instant): the
    /// row goes, so the slot is as if never claimed. Only a row still `running` is removed
    /// (the caller knows its guest never started); returns whether one was.
    fn release(&self, run_id: &str) -> Result<bool, StoreError>;

    /// Crash recovery (S8): every run still `running` whose owner is not `current_owner`
    /// becomes `interrupted` (reason "interrupted: host stopped while running", outcome
    /// "interrupted", finished at `now_ms`) with its retry due at `now_ms`: S3 promises a
    /// crash mid-run retries the slot, and marking it in the same statement means another
    /// crash before the retry is claimed cannot lose it ([`Ledger::pending_retries`] still
    /// finds it). A provisional `started_at_ms` still in the future (a claim taken ahead of
    /// a fire time the dead host never reached) becomes `None`. Returns those rows, as
    /// updated.
    fn recover_interrupted(
        &self,
        current_owner: &str,
        now_ms: i64,
    ) -> Result<Vec<RunRecord>, StoreError>;

    /// Attempts that ended failed or interrupted with a `retry_at_ms` and whose next attempt
    /// (attempt + 1 of the same job and slot, or job and idempotency key) does not exist yet:
    /// what a restarted scheduler must still retry. Ordered by `retry_at_ms`.
    fn pending_retries(&self) -> Result<Vec<RunRecord>, StoreError>;

    /// The newest `slot_ms` recorded for `job` (any status): the high-water mark for
    /// misfire handling.
    fn last_slot(&self, job: &str) -> Result<Option<i64>, StoreError>;

    /// Every recorded attempt of the job's slots in `[from_ms, to_ms]`, as (slot, attempt,
    /// status), oldest slot first: what a backfill of that range must not start again.
    fn slot_history(
        &self,
        job: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(i64, u32, RunStatus)>, StoreError>;

    /// One run by its id, with its output and logs.
    fn run(&self, run_id: &str) -> Result<Option<RunDetail>, StoreError>;

    /// Runs matching `filter`, newest first (by id), at most `filter.limit`; their output
    /// and logs are not read.
    fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError>;

    /// [`Ledger::runs`] with each run's output (not its logs): what `sandcron runs --json`
    /// prints.
    fn runs_with_output(&self, filter: &RunFilter) -> Result<Vec<(RunRecord, String)>, StoreError>;

    /// Inserts or replaces a job's row.
    fn upsert_job(&self, job: &JobRow) -> Result<(), StoreError>;
    /// Forgets a job that left the jobs folder (its runs stay in the history). Re-adding it
    /// later starts its schedule afresh, without catching up the time it was gone.
    fn remove_job(&self, name: &str) -> Result<(), StoreError>;

    /// One job's row.
    fn job(&self, name: &str) -> Result<Option<JobRow>, StoreError>;

    /// Every job's row, by name.
    fn jobs(&self) -> Result<Vec<JobRow>, StoreError>;

    /// The latest run of each job that has one, by job name (`sandcron jobs`' last outcome).
    fn last_runs(&self) -> Result<Vec<RunRecord>, StoreError>;

    /// Records a job's failed load, replacing the one before.
    fn set_load_error(&self, row: &LoadErrorRow) -> Result<(), StoreError>;
    /// Forgets a job's failed load (it loaded, or left the folder).
    fn clear_load_error(&self, name: &str) -> Result<(), StoreError>;
    /// Every recorded failed load, by name.
    fn load_errors(&self) -> Result<Vec<LoadErrorRow>, StoreError>;
    /// Records that a job's latest version is compiling in the background.
    fn set_compiling(&self, row: &CompilingRow) -> Result<(), StoreError>;
    /// Forgets it: the compile ended (loaded, failed or abandoned).
    fn clear_compiling(&self, name: &str) -> Result<(), StoreError>;
    /// Every job compiling, by name.
    fn compiling(&self) -> Result<Vec<CompilingRow>, StoreError>;
    /// Whether the store is writing normally (`/readyz`, `/metrics`); a backend that
    /// does not track it reports healthy.
    fn health(&self) -> HealthReport {
        HealthReport::default()
    }
}
