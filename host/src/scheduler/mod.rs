//! The scheduler: jobs on their schedules, each slot started exactly once (S2-S8).
//!
//! # Layout
//! - `actor/`: the actor. One task owns every job's state and the timer queue; job changes
//!   (from the watched folder), operator requests, run completions, clock readings and
//!   shutdown arrive as events, so there are no locks around scheduling state. `mod.rs`
//!   the loop and its state; `job_set.rs` jobs added, replaced, removed; `slots.rs` a slot
//!   coming due (misfire, deadline, overlap, breaker); `runs.rs` starting runs and taking
//!   in their ends (retry, breaker verdict, rollback); `claim_ahead.rs` claiming before the
//!   instant; `operator.rs` answering the handle's requests; `shutdown.rs`; `tests/` the
//!   unit tests that drive it with a manual clock and a fake launcher.
//! - `handle`: the operator requests (status, pause, resume, trigger, backfill) and the
//!   [`SchedulerHandle`] the API sends them through.
//! - `launch`: the seam between the actor and its runs: run orders, the ledger rows the
//!   scheduler writes, the `launch::Launcher` that starts a run.
//! - `attempt`: one attempt from durable claim to recorded outcome, on the guest pool.
//! - `slot_rules`: overlap, misfire, retry and breaker rules as pure functions.
//! - `queue`: the timer queue (a heap of due times, O(log n) per fire).
//! - `recorder`: the store writer thread that batches claims and finishes.
//! - `wake`: the alarm thread that wakes the loop at a due instant to well under a ms.
//! - `clock`: wall-clock time behind a trait, and telling a clock jump from time passing.
//!
//! # Design decision
//! Guests run on their own tokio runtime (the "guest pool", handed in), the scheduler on
//! the caller's: a guest that never yields can stall at most a guest worker, never the
//! timers. The durable claim (a unique row per job, slot and attempt) is the only
//! exactly-once mechanism, so a restart, a second process or (later) a second node can
//! never start a slot twice, whatever the in-memory state believes.

mod actor;
mod attempt;
mod clock;
mod handle;
mod launch;
mod queue;
mod recorder;
mod slot_rules;
mod wake;

use std::sync::Arc;
use std::time::Duration;

pub use actor::run;
pub use clock::{Clock, ManualClock, SystemClock};
pub use handle::{
    BackfillPlan, ControlError, ControlReceiver, JobStatus, MAX_BACKFILL_SLOTS, MAX_PAYLOAD_BYTES,
    MAX_PENDING_HOST, MAX_PENDING_PER_JOB, SchedulerHandle, StatusReport, TriggerRequest,
    Triggered, control_channel,
};

use crate::config::JobSpec;
use crate::runtime::{LoadedJob, Runtime};
use crate::store::{Ledger, StateStore};

/// Why the scheduler could not run.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The store writer thread (`recorder.rs`) could not be started.
    #[error("cannot start the store writer thread")]
    StoreWriter(#[source] std::io::Error),
    /// The alarm thread (`wake.rs`) could not be started.
    #[error("cannot start the scheduler's alarm thread")]
    AlarmThread(#[source] std::io::Error),
}

/// A loaded job version: its validated manifest and compiled code.
pub struct JobDef {
    /// The manifest, validated.
    pub spec: JobSpec,
    /// The compiled, linked code (shared: jobs built from the same wasm can use one copy).
    pub code: Arc<LoadedJob>,
    /// Content hash of the wasm and manifest.
    pub version: String,
}

/// A change to the set of jobs (from the watched folder).
pub enum JobEvent {
    /// A job was added or replaced by a new version.
    Upsert(Arc<JobDef>),
    /// A job was deleted.
    Remove(String),
    /// Every job in the folder at start has been reported: the host is ready (`/readyz`).
    InitialScanDone,
    /// A new version of a job is invalid; the old version (if any) keeps running.
    Invalid {
        /// The job.
        name: String,
        /// Why, naming file and line.
        error: String,
    },
    /// The job's code has been compiling for a while and goes on in the background; its
    /// `Upsert` (or `Invalid`) follows. A new job's slots count from when the load began.
    Compiling {
        /// The job.
        name: String,
        /// When its load began (ms since the epoch).
        since_ms: i64,
    },
    /// A load announced by `Compiling` ended with nothing new: it is no longer compiling.
    CompileAbandoned(String),
}

/// What the scheduler works with.
pub struct Services {
    /// Runs jobs.
    pub runtime: Arc<Runtime>,
    /// Claims slots and records runs.
    pub ledger: Arc<dyn Ledger>,
    /// Per-job state handed to guests.
    pub state: Arc<dyn StateStore>,
    /// Wall-clock time.
    pub clock: Arc<dyn Clock>,
    /// This host instance's id, recorded on every run it claims.
    pub owner: Arc<str>,
    /// Prometheus metrics.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Failures that speak up: WARN lines and webhooks (cheap, never blocks).
    pub notify: crate::notifications::Notifier,
}

impl Services {
    /// Slots of `job` that do not run, for `reason`: counted in
    /// `sandcron_slots_not_run_total` and posted as `missed_slots` (the actor's records and
    /// the run task's late starts alike). `spec` is the job's, when it is loaded.
    pub(crate) fn slots_not_run(
        &self,
        spec: Option<&crate::config::JobSpec>,
        job: &str,
        reason: crate::words::SlotReason,
        count: usize,
    ) {
        self.metrics.slots_not_run(job, reason.as_str(), count);
        self.notify.slots_not_run(spec, job, reason.as_str(), count);
    }
}

/// Scheduler settings.
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// Runs executing at once, host-wide (S6).
    pub workers: usize,
    /// On shutdown, how long running jobs may take before they are interrupted (S7); also
    /// the grace period of `overlap = "cancel-other"`.
    pub grace: Duration,
    /// How long before its fire time a slot that will start at once is claimed, so the
    /// store's commit is not part of the start lag (`actor/claim_ahead.rs`); zero claims at the
    /// instant.
    pub claim_ahead: Duration,
    /// Where guests run.
    pub guests: tokio::runtime::Handle,
}
