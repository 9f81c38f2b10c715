//! The scheduler actor: the loop and the state it owns (every job's entry, the timer
//! queue). Each event has its handler in a file of its own: job changes in `job_set.rs`,
//! a slot coming due in `slots.rs`, runs started and ended in `runs.rs`, claims ahead in
//! `claim_ahead.rs`, operator requests in `operator.rs`, shutdown in `shutdown.rs`. The
//! loop only reads clocks and channels; everything it decides goes through [`Scheduler`]'s
//! handlers, which `tests/` drives directly with a manual clock and a fake launcher.

mod claim_ahead;
mod job_set;
mod loads;
mod operator;
mod runs;
mod shutdown;
mod slots;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use super::attempt::GuestPool;
use super::clock::{Jump, JumpDetector, MAX_SLEEP};
use super::handle::{ControlError, ControlReceiver, Triggered};
use super::launch::{
    AttemptOf, ClaimAhead, Interrupt, Launcher, RowStart, RunDone, RunOrder, StartAt, claim_row,
    new_run_id,
};
use super::queue::{Due, RetryPlan, TimerQueue};
use super::recorder::Recorder;
use super::slot_rules::{Admission, Breaker, OverlapDecision, decide_overlap, plan_misfire};
use super::wake::PreciseTimer;
use super::{JobDef, JobEvent, SchedulerConfig, SchedulerError, Services};
use crate::config::Overlap;
use crate::job::TriggerKind;
use crate::schedule::jitter_delay;
use crate::store::{JobRow, NewRun};
use crate::words::{BreakerState, InterruptReason, SlotReason};

/// Slots due more than this before the host started were passed over by downtime.
const ON_TIME_SLACK_MS: i64 = 1_000;
/// After a shutdown's interrupts, how long their records may take.
const INTERRUPTED_RECORD_WAIT: Duration = Duration::from_secs(5);
/// Most due slots examined for one job in one pass (bounds work after long downtime).
const MAX_DUE_SLOTS: usize = 100_000;
/// A retry that comes due while the job still runs waits this long and checks again.
const RETRY_RECHECK_MS: i64 = 500;

fn to_utc(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// A slot or manual run waiting for the job's previous run (overlap = buffer-one /
/// buffer-all).
enum Waiting {
    Slot { slot_ms: i64, trigger: TriggerKind },
    Manual(ManualRun),
}

/// A run to dispatch: which attempt, and what only a manual trigger brings.
struct Dispatch {
    at: AttemptOf,
    payload: Option<Vec<u8>>,
    reply: Option<oneshot::Sender<Result<Triggered, ControlError>>>,
    /// Dispatched ahead of its instant (`claim_ahead.rs`): the run waits for it itself.
    armed: bool,
}

impl Dispatch {
    fn of(at: AttemptOf) -> Self {
        Dispatch { at, payload: None, reply: None, armed: false }
    }
}

/// A manual trigger, ready to dispatch.
struct ManualRun {
    idempotency_key: String,
    payload: Option<Vec<u8>>,
    reply: Option<oneshot::Sender<Result<Triggered, ControlError>>>,
}

/// Everything the scheduler knows about one job.
struct JobEntry {
    def: Arc<JobDef>,
    /// Bumped when the schedule changes or the job goes away: older queue entries are stale.
    generation: u64,
    /// The schedule record, to tell a schedule edit from a code-only change (S5).
    schedule_record: String,
    /// Runs in flight (including those waiting for a worker), by run key.
    running: HashMap<u64, watch::Sender<Option<Interrupt>>>,
    waiting: VecDeque<Waiting>,
    breaker: Breaker,
    /// The breaker's current opening has its one `skipped:breaker-open` row: later slots it
    /// holds back are counted in the metric but not recorded (one row per opening).
    breaker_skip_recorded: bool,
    /// Slots at or before this instant never fire (set when the schedule starts or changes).
    schedule_epoch_ms: i64,
    /// When this host first loaded the job. Slots that came due before then (while its code
    /// compiled) were passed over: the misfire policy sorts them, and those it does not
    /// catch up are recorded `missed:compiling`, never skipped as overlapping each other.
    loaded_at_ms: i64,
    /// The version whose slot last succeeded: a new version may be rolled back to it (R6).
    last_good: Option<Arc<JobDef>>,
    /// Failed slots of the current version since it replaced `last_good`, none succeeded.
    new_version_failures: u32,
    /// Paused by an operator (with their note): no slot starts, none is recorded.
    paused: Option<String>,
    /// Backfill slots still to start, oldest first: (slot ms, attempt).
    backfill: VecDeque<(i64, u32)>,
    /// The pause between two backfill starts.
    backfill_interval_ms: i64,
    /// A `Due::Backfill` entry for this job is in the queue.
    backfill_timer: bool,
    /// The claim of the next slot, sent before its instant (`claim_ahead.rs`).
    claimed_ahead: Option<ClaimAhead>,
    /// The next slot (and the generation it was queued in), whose claim ahead waits for
    /// the job's runs in flight to end (`claim_ahead.rs`).
    deferred_claim: Option<(i64, u64)>,
}

impl JobEntry {
    /// overlap = cancel-other: every run in flight stops after `grace`, not retried.
    fn cancel_running(&self, grace: Duration, reason: InterruptReason) {
        let interrupt = Interrupt { grace, reason, retry: false };
        for cancel in self.running.values() {
            let _ = cancel.send(Some(interrupt.clone()));
        }
    }
}

struct Scheduler {
    config: SchedulerConfig,
    services: Arc<Services>,
    jobs: HashMap<String, JobEntry>,
    queue: TimerQueue,
    /// Retries (from crash recovery or a previous life) whose job is not loaded yet.
    parked: HashMap<String, Vec<(i64, RetryPlan)>>,
    next_run_key: u64,
    next_generation: u64,
    /// Slots whose fire time is before this were passed over by a discontinuity — downtime
    /// before this host started, or a forward wall-clock jump — and go through the misfire
    /// policy. Later due slots are merely late (a busy host) and run under the usual
    /// policies; treating lateness as a misfire would make an overloaded host worse.
    passed_over_before_ms: i64,
    /// Where runs are started: the guest pool (a recording fake in unit tests).
    launcher: Box<dyn Launcher>,
    /// Batches claims and finishes into few commits (one writer thread).
    recorder: Recorder,
    /// Job files that failed to load and have no running version: name -> error.
    invalid: BTreeMap<String, String>,
    /// Failed edits of jobs whose previous version keeps running: name -> error.
    load_errors: BTreeMap<String, String>,
    /// Jobs whose code compiles in the background: name -> when the load began (ms).
    compiling: BTreeMap<String, i64>,
    /// The jobs folder's initial scan has been taken in (every job in it loaded, invalid
    /// or compiling in the background).
    ready: bool,
    /// Wakes the loop, and runs armed ahead of their instant, to the µs (`wake.rs`).
    timer: Arc<PreciseTimer>,
}

/// Runs the scheduler until `shutdown` resolves, then stops claiming, lets running jobs
/// finish within the grace period, interrupts the rest and records them (S7).
///
/// # Errors
/// When the store writer or the alarm thread cannot be started; nothing was scheduled.
pub async fn run(
    config: SchedulerConfig,
    services: Arc<Services>,
    mut events: mpsc::Receiver<JobEvent>,
    control: ControlReceiver,
    shutdown: impl Future<Output = ()>,
) -> Result<(), SchedulerError> {
    let mut control = control.0;
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let recorder = Recorder::start(services.ledger.clone()).map_err(SchedulerError::StoreWriter)?;
    let timer = Arc::new(PreciseTimer::start().map_err(SchedulerError::AlarmThread)?);
    let launcher = Box::new(GuestPool {
        services: services.clone(),
        recorder: recorder.clone(),
        workers: Arc::new(Semaphore::new(config.workers.max(1))),
        done: done_tx,
        guests: config.guests.clone(),
    });
    let mut scheduler = Scheduler::new(config, services, recorder, timer.clone(), launcher);
    scheduler.recover();
    tokio::pin!(shutdown);
    let (mut events_open, mut control_open) = (true, true);
    let mut jumps = JumpDetector::new(scheduler.now(), std::time::Instant::now());
    loop {
        let now = scheduler.now();
        let jump = jumps.observe(now, std::time::Instant::now());
        scheduler.on_clock(now, jump);
        scheduler.fire_due(now);
        // Read the clock again: a burst (1,000 slots or claims at one instant) can take
        // milliseconds, and a sleep measured from before it would wake that much late.
        let now = scheduler.now();
        let until_due = scheduler.queue.next_due_ms().map_or(i64::MAX, |due| due - now);
        // tokio's timer rounds sleeps up to whole milliseconds: sleep on it until just before
        // the slot, then let the precise alarm wake the loop at the due instant itself.
        let (wait, close) = match until_due {
            ..=2 => {
                let due_us = scheduler.queue.next_due_ms().unwrap_or(now) * 1000;
                let micros = due_us - scheduler.services.clock.now_us();
                (Duration::from_micros(micros.max(0) as u64), true)
            }
            ms => (Duration::from_millis((ms - 2).min(MAX_SLEEP.as_millis() as i64) as u64), false),
        };
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            // Job changes first: completions are frequent under load, changes are rare and
            // must not starve (hot reload within a second, R5).
            event = events.recv(), if events_open => match event {
                Some(event) => scheduler.on_event(event),
                None => events_open = false,
            },
            request = control.recv(), if control_open => match request {
                Some(request) => scheduler.on_control(request),
                None => control_open = false,
            },
            Some(done) = done_rx.recv() => scheduler.on_done(done),
            () = timer.sleep(wait), if close => {}
            () = tokio::time::sleep(wait), if !close => {}
        }
    }
    scheduler.shut_down(&mut done_rx).await;
    Ok(())
}

impl Scheduler {
    fn new(
        config: SchedulerConfig,
        services: Arc<Services>,
        recorder: Recorder,
        timer: Arc<PreciseTimer>,
        launcher: Box<dyn Launcher>,
    ) -> Self {
        let started_ms = services.clock.now_ms();
        Scheduler {
            config,
            services,
            jobs: HashMap::new(),
            queue: TimerQueue::default(),
            parked: HashMap::new(),
            next_run_key: 0,
            next_generation: 0,
            passed_over_before_ms: started_ms - ON_TIME_SLACK_MS,
            launcher,
            recorder,
            invalid: BTreeMap::new(),
            load_errors: BTreeMap::new(),
            compiling: BTreeMap::new(),
            ready: false,
            timer,
        }
    }

    /// The loop's reading of the clock, with the jump it shows since the last one (S2).
    fn on_clock(&mut self, now: i64, jump: Jump) {
        match jump {
            Jump::Forward(jump_ms) => {
                tracing::warn!(
                    jump_ms,
                    "wall clock jumped forward; skipped slots go through the misfire policy"
                );
                self.passed_over_before_ms = now - ON_TIME_SLACK_MS;
            }
            Jump::Back(jump_ms) => tracing::warn!(
                jump_ms,
                "wall clock jumped back; slots already claimed will not run again"
            ),
            Jump::None => {}
        }
    }

    fn now(&self) -> i64 {
        self.services.clock.now_ms()
    }

    /// S8: runs a dead process left `running` become `interrupted` and are retried under
    /// the same idempotency key; retries a previous life had planned are picked up too.
    fn recover(&mut self) {
        let now = self.now();
        let ledger = &self.services.ledger;
        match ledger.recover_interrupted(&self.services.owner, now) {
            Ok(rows) => {
                for row in &rows {
                    tracing::warn!(job = %row.job, run = %row.run_id, slot = row.slot_ms, attempt = row.attempt, "run was interrupted by a host stop; it will be retried");
                }
            }
            Err(err) => tracing::error!("crash recovery failed: {err}"),
        }
        match ledger.pending_retries() {
            Ok(rows) => {
                for row in rows {
                    let plan = RetryPlan {
                        job: row.job.clone(),
                        slot_ms: row.slot_ms,
                        scheduled_at_ms: row.scheduled_at_ms,
                        attempt: row.attempt + 1,
                        idempotency_key: row.idempotency_key.clone(),
                    };
                    // Crash recovery sets an interrupted run's retry time to now.
                    let due = row.retry_at_ms.unwrap_or(now);
                    self.parked.entry(row.job).or_default().push((due, plan));
                }
            }
            Err(err) => tracing::error!("cannot read pending retries: {err}"),
        }
    }

    fn fire_due(&mut self, now: i64) {
        while let Some((_, due)) = self.queue.pop_due(now) {
            match due {
                Due::Slot { job, generation, slot_ms } => {
                    if self.jobs.get(&job).is_some_and(|e| e.generation == generation) {
                        self.on_slot(&job, slot_ms, now);
                    }
                }
                Due::ClaimAhead { job, generation, slot_ms } => {
                    if self.jobs.get(&job).is_some_and(|e| e.generation == generation) {
                        self.on_claim_ahead(&job, slot_ms);
                    }
                }
                Due::Arm { job, generation, slot_ms } => {
                    if self.jobs.get(&job).is_some_and(|e| e.generation == generation) {
                        self.on_arm(&job, slot_ms, now);
                    }
                }
                Due::Retry(plan) => self.on_retry(plan, now),
                Due::Backfill { job } => self.on_backfill_due(&job, now),
            }
        }
    }
}
