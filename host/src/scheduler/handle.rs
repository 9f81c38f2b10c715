//! The scheduler's control surface (S5): what an operator may ask a running scheduler —
//! status, pause, resume, manual trigger, backfill — as messages to the actor, each with a
//! one-shot reply. [`SchedulerHandle`] is the cloneable sender the API holds.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::JobDef;
use crate::words::{BreakerState, SlotReason};

/// Most slots one backfill request may cover.
pub const MAX_BACKFILL_SLOTS: usize = 1_000;

/// Most runs of one job running or queued at once, beyond its `max_concurrent`, that a
/// manual trigger may add to, `force` included: a forced run still holds a row, a payload
/// and a place in the worker queue until it ends.
pub const MAX_PENDING_PER_JOB: usize = 100;

/// Most runs of all jobs running or queued at once that a manual trigger may add to.
pub const MAX_PENDING_HOST: usize = 1_000;

/// Largest manual trigger payload: an argument for the run, not a data transfer.
pub const MAX_PAYLOAD_BYTES: usize = 256 << 10;

/// Why a control request was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// No job by that name is loaded.
    #[error("no job named {0:?} is loaded")]
    NotFound(String),
    /// The job is paused; a manual trigger needs `force`.
    #[error("job {job:?} is paused ({note}); resume it or pass force")]
    Paused {
        /// The job.
        job: String,
        /// The operator's note.
        note: String,
    },
    /// The overlap policy refused a manual trigger (a run is in flight).
    #[error(
        "job {job:?} is running and its overlap policy refuses another run ({reason}); pass force to start anyway"
    )]
    Overlap {
        /// The job.
        job: String,
        /// The policy's reason, e.g. `skipped:overlap`.
        reason: SlotReason,
    },
    /// A backfill range that cannot be run.
    #[error("{0}")]
    BadRange(String),
    /// A backfill range with too many slots.
    #[error("the range holds {count} slots; one backfill may cover at most {max}")]
    TooManySlots {
        /// Slots in the range (counted up to `max + 1`).
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Too many runs are running or queued: try again later.
    #[error("{reason}; try again in {}s", retry_after.as_secs().max(1))]
    Busy {
        /// The job.
        job: String,
        /// What is full.
        reason: String,
        /// When a slot is likely to be free (the job's timeout).
        retry_after: Duration,
    },
    /// The store refused the request.
    #[error("store error: {0}")]
    Store(String),
    /// The scheduler is shutting down or gone.
    #[error("the scheduler is shutting down")]
    Stopped,
}

/// What a manual trigger asks for.
#[derive(Clone, Debug, Default)]
pub struct TriggerRequest {
    /// The job.
    pub job: String,
    /// Bytes handed to the guest as the run context's payload.
    pub payload: Option<Vec<u8>>,
    /// The same key starts one run, however often it is sent; `None` makes a fresh one.
    pub idempotency_key: Option<String>,
    /// Start even if the overlap policy or a pause would refuse.
    pub force: bool,
}

/// What a manual trigger did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Triggered {
    /// The run was claimed and is starting.
    Started {
        /// The new run's id.
        run_id: String,
        /// Its idempotency key.
        idempotency_key: String,
    },
    /// The run waits behind the running one (overlap = buffer-one / buffer-all).
    Queued {
        /// Its idempotency key.
        idempotency_key: String,
    },
    /// A run with this key exists already: nothing new started.
    Duplicate {
        /// The key.
        idempotency_key: String,
    },
}

/// What a backfill request queued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackfillPlan {
    /// Slots of the schedule in the range.
    pub slots: usize,
    /// Slots queued to run (never started before: no row, or only missed / skipped rows).
    pub queued: usize,
    /// Slots that already ran (or are running) and are left alone.
    pub already_run: usize,
    /// Slots at or before `schedule_since_ms`, never queued: the job did not exist yet, or
    /// had another schedule.
    pub before_schedule: usize,
    /// When the job's schedule began: it was added, or its schedule last changed, then.
    pub schedule_since_ms: i64,
    /// The first and last slot in the range (ms), if any.
    pub first_ms: Option<i64>,
    /// See `first_ms`.
    pub last_ms: Option<i64>,
    /// The pause between two backfill starts (the rate limit).
    pub interval: Duration,
}

/// One job as the scheduler sees it now.
#[derive(Clone)]
pub struct JobStatus {
    /// The loaded version: manifest and code.
    pub def: Arc<JobDef>,
    /// Paused by an operator, with their note.
    pub paused: Option<String>,
    /// The circuit breaker (while open, until when).
    pub breaker: BreakerState,
    /// Failed slots in a row.
    pub consecutive_failures: u32,
    /// Runs in flight (including those waiting for a worker).
    pub running: usize,
    /// Slots and manual runs buffered behind the running one.
    pub waiting: usize,
    /// Backfill slots not started yet.
    pub backfill_pending: usize,
    /// The next fire instants (ms, jitter included), as many as asked for; none while paused.
    pub next_fires_ms: Vec<i64>,
    /// Why the job's latest edit failed to load (this version keeps running), if it did.
    pub load_error: Option<String>,
}

/// Every job's status, plus the job files that failed to load.
#[derive(Clone, Default)]
pub struct StatusReport {
    /// Loaded jobs, by name.
    pub jobs: Vec<JobStatus>,
    /// Job files that failed to load and are not running: (name, error naming file and line).
    pub invalid: Vec<(String, String)>,
    /// Jobs whose code compiles in the background (a cold start): (name, since ms). A job
    /// with a running version may be here too, for its next version.
    pub compiling: Vec<(String, i64)>,
    /// Every job in the folder at start has been loaded, reported invalid, or is compiling
    /// in the background.
    pub ready: bool,
}

type Reply<T> = oneshot::Sender<Result<T, ControlError>>;

/// A request to the scheduler actor.
pub(crate) enum Control {
    Status {
        job: Option<String>,
        fires: usize,
        reply: oneshot::Sender<StatusReport>,
    },
    Pause {
        job: String,
        note: String,
        reply: Reply<JobStatus>,
    },
    Resume {
        job: String,
        reply: Reply<JobStatus>,
    },
    Trigger {
        request: TriggerRequest,
        reply: Reply<Triggered>,
    },
    Backfill {
        job: String,
        from_ms: i64,
        to_ms: i64,
        interval: Duration,
        reply: Reply<BackfillPlan>,
    },
}

/// The receiving end, handed to [`super::run`].
pub struct ControlReceiver(pub(crate) mpsc::Receiver<Control>);

/// Talks to a running scheduler. Cheap to clone.
#[derive(Clone)]
pub struct SchedulerHandle {
    tx: mpsc::Sender<Control>,
}

/// A connected handle and receiver.
pub fn control_channel() -> (SchedulerHandle, ControlReceiver) {
    let (tx, rx) = mpsc::channel(64);
    (SchedulerHandle { tx }, ControlReceiver(rx))
}

impl SchedulerHandle {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Control) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(make(reply)).await.ok()?;
        answer.await.ok()
    }

    /// Every job (or just `job`) with its next `fires` fire times; `None` once stopped.
    pub async fn status(&self, job: Option<String>, fires: usize) -> Option<StatusReport> {
        self.ask(|reply| Control::Status { job, fires, reply }).await
    }

    /// Pauses a job: no slot starts until it is resumed (and none is recorded meanwhile).
    pub async fn pause(&self, job: String, note: String) -> Result<JobStatus, ControlError> {
        self.ask(|reply| Control::Pause { job, note, reply })
            .await
            .unwrap_or(Err(ControlError::Stopped))
    }

    /// Resumes a paused job from its next slot after now (a resume never fires a slot).
    pub async fn resume(&self, job: String) -> Result<JobStatus, ControlError> {
        self.ask(|reply| Control::Resume { job, reply }).await.unwrap_or(Err(ControlError::Stopped))
    }

    /// Starts a manual run; answers once the run is durably claimed (or queued, or a
    /// duplicate of its key).
    pub async fn trigger(&self, request: TriggerRequest) -> Result<Triggered, ControlError> {
        self.ask(|reply| Control::Trigger { request, reply })
            .await
            .unwrap_or(Err(ControlError::Stopped))
    }

    /// Queues the job's slots in `[from_ms, to_ms]` that never started, one at a time,
    /// at most one start per `interval`.
    pub async fn backfill(
        &self,
        job: String,
        from_ms: i64,
        to_ms: i64,
        interval: Duration,
    ) -> Result<BackfillPlan, ControlError> {
        self.ask(|reply| Control::Backfill { job, from_ms, to_ms, interval, reply })
            .await
            .unwrap_or(Err(ControlError::Stopped))
    }
}
