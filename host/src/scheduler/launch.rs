//! The seam between the scheduler actor and its runs: what the actor decides a run is
//! ([`AttemptOf`], [`RunOrder`]), the one place its ledger rows are built ([`claim_row`]),
//! how a run is started ([`Launcher`]: the guest pool in the host, a recording fake in the
//! actor's unit tests), and what comes back ([`RunDone`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use super::JobDef;
use super::clock::Clock;
use super::handle::{ControlError, Triggered};
use super::wake::PreciseTimer;
use crate::job::TriggerKind;
use crate::store::{Claim, NewRun, RunStatus, StoreError};
use crate::words::{InterruptReason, SlotReason};

/// Why a run is being stopped from outside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Interrupt {
    /// How long the run may still take before it is dropped.
    pub(crate) grace: Duration,
    /// Recorded as the run's reason.
    pub(crate) reason: InterruptReason,
    /// Whether the slot should be retried (shutdown: yes; cancel-other: no).
    pub(crate) retry: bool,
}

/// Which attempt of which slot (or manual trigger) a run is: what its claim row names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AttemptOf {
    /// The slot's nominal instant; `None` for a manual run.
    pub(crate) slot_ms: Option<i64>,
    /// When it is due: the slot's fire time (jitter included), or the request time.
    pub(crate) scheduled_at_ms: i64,
    /// 1-based.
    pub(crate) attempt: u32,
    pub(crate) trigger: TriggerKind,
    /// Stable across the attempts of one slot or manual trigger.
    pub(crate) idempotency_key: String,
}

impl AttemptOf {
    /// The first attempt of a slot firing at `fire_ms`.
    pub(crate) fn slot(job: &str, slot_ms: i64, fire_ms: i64, trigger: TriggerKind) -> Self {
        AttemptOf {
            slot_ms: Some(slot_ms),
            scheduled_at_ms: fire_ms,
            attempt: 1,
            trigger,
            idempotency_key: slot_key(job, slot_ms),
        }
    }
}

/// The idempotency key of a slot: stable across retries, restarts and nodes (F1).
pub(crate) fn slot_key(job: &str, slot_ms: i64) -> String {
    let at = chrono::DateTime::from_timestamp_millis(slot_ms).unwrap_or_default();
    format!("{job}@{}", at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

/// How a claim row starts out: a run about to start, or a slot recorded without one.
#[derive(Clone, Copy, Debug)]
pub(crate) enum RowStart {
    /// `running`, with a provisional start (the finish records the real one).
    Running { provisional_start_ms: i64 },
    /// Skipped or missed, for this reason; never started.
    NotRun(SlotReason),
}

/// What the scheduler asks a run task to do.
pub(crate) struct RunOrder {
    pub(crate) def: Arc<JobDef>,
    pub(crate) run_key: u64,
    pub(crate) at: AttemptOf,
    pub(crate) payload: Option<Vec<u8>>,
    /// Past this instant (ms) the run must not start: it is recorded as missed (M2).
    pub(crate) start_by_ms: Option<i64>,
    /// A manual trigger waiting to hear whether the run was claimed.
    pub(crate) reply: Option<oneshot::Sender<Result<Triggered, ControlError>>>,
    /// The claim already sent for this run, ahead of its instant (`run_key` is its own).
    pub(crate) claimed_ahead: Option<ClaimAhead>,
    /// Dispatched ahead of its instant: the run starts itself then, not before.
    pub(crate) start_at: Option<StartAt>,
}

/// The instant a run armed ahead waits for (`actor/claim_ahead.rs`).
pub(crate) struct StartAt {
    pub(crate) at_ms: i64,
    pub(crate) timer: Arc<PreciseTimer>,
}

impl StartAt {
    /// Resolves once the clock reads `at_ms` or later (a wall clock set back waits longer).
    pub(crate) async fn reached(&self, clock: &dyn Clock) {
        loop {
            let left_us = self.at_ms * 1000 - clock.now_us();
            if left_us <= 0 {
                return;
            }
            self.timer.sleep(Duration::from_micros(left_us as u64)).await;
        }
    }
}

/// A slot's claim sent to the store before the slot's instant, and its pending answer.
pub(crate) struct ClaimAhead {
    pub(crate) slot_ms: i64,
    pub(crate) run_key: u64,
    pub(crate) run_id: String,
    /// The job version the row names: a different version at the instant claims afresh.
    pub(crate) version: String,
    pub(crate) answer: oneshot::Receiver<Result<Claim, StoreError>>,
}

/// The ledger row for `at`: the claim written before its guest starts, or the record of a
/// slot that does not run. Every row the scheduler writes is built here.
pub(crate) fn claim_row(
    def: &JobDef,
    at: &AttemptOf,
    run_id: String,
    owner: &str,
    start: RowStart,
) -> NewRun {
    let (status, reason, started_at_ms) = match start {
        // Provisional (so a running row shows roughly when it began, and a crash keeps
        // that): the finish records when, and whether, the guest really started.
        RowStart::Running { provisional_start_ms } => {
            (RunStatus::Running, None, Some(provisional_start_ms))
        }
        RowStart::NotRun(reason) => (reason.status(), Some(reason), None),
    };
    NewRun {
        run_id,
        job: def.spec.name.clone(),
        slot_ms: at.slot_ms,
        attempt: at.attempt,
        trigger: at.trigger,
        idempotency_key: at.idempotency_key.clone(),
        version: def.version.clone(),
        owner: owner.to_string(),
        scheduled_at_ms: at.scheduled_at_ms,
        status,
        reason,
        started_at_ms,
    }
}

/// What the run task tells the scheduler when it is done.
#[derive(Debug)]
pub(crate) struct RunDone {
    pub(crate) job: String,
    /// The job version the run executed.
    pub(crate) version: String,
    pub(crate) run_key: u64,
    /// The claim found the row taken: nothing ran.
    pub(crate) taken: bool,
    pub(crate) succeeded: bool,
    /// The next attempt, when the retry policy wants one: (due ms, attempt, key, slot, scheduled).
    pub(crate) retry: Option<super::queue::RetryPlan>,
    pub(crate) retry_at_ms: Option<i64>,
}

pub(crate) fn new_run_id(owner: &str, run_key: u64, now_ms: i64) -> String {
    // Unique per host instance (owner) and run; sortable by start time.
    let mut hash: u32 = 2166136261;
    for byte in owner.bytes() {
        hash = (hash ^ byte as u32).wrapping_mul(16777619);
    }
    format!("{now_ms:011x}-{hash:08x}-{run_key:x}")
}

/// Where the scheduler's runs go: the guest pool in the host ([`GuestPool`]), a recording
/// fake in the scheduler's unit tests. Starting a run is the one effect the scheduler does
/// not carry out itself.
pub(crate) trait Launcher: Send {
    /// Starts `order`; `cancel` carries an interrupt (shutdown, cancel-other) to it.
    fn launch(&self, order: RunOrder, cancel: watch::Receiver<Option<Interrupt>>);
}
