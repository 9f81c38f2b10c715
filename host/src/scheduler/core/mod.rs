//! The scheduler actor: the loop, per-job state, and what happens when a slot comes due.
//! Operator requests (pause, trigger, backfill, status) are handled in `control.rs`;
//! claiming slots ahead of their instant in `ahead.rs`.

mod ahead;
mod control;
mod loads;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tracing::Instrument;

use super::clock::MAX_SLEEP;
use super::control::{ControlError, ControlReceiver, Triggered};
use super::policy::{
    Admission, Breaker, BreakerState, OverlapDecision, decide_overlap, plan_misfire,
};
use super::queue::{Due, RetryPlan, TimerQueue};
use super::recorder::Recorder;
use super::run::{
    ClaimAhead, Interrupt, RunDone, RunOrder, StartAt, run_one, run_span, trigger_word,
};
use super::wake::PreciseTimer;
use super::{JobDef, JobEvent, SchedulerConfig, Services};
use crate::config::Overlap;
use crate::job::TriggerKind;
use crate::schedule::jitter_delay;
use crate::store::{JobRow, NewRun, RunStatus};

/// Slots due more than this before the host started were passed over by downtime.
const ON_TIME_SLACK_MS: i64 = 1_000;
/// The wall clock moving this much more than the monotonic clock between two loop turns
/// is a forward jump (NTP step, suspend): the slots it skipped go through misfire (S2).
const JUMP_THRESHOLD_MS: i64 = 1_000;
/// Most due slots examined for one job in one pass (bounds work after long downtime).
const MAX_DUE_SLOTS: usize = 100_000;
/// A retry that comes due while the job still runs waits this long and checks again.
const RETRY_RECHECK_MS: i64 = 500;

fn to_utc(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The idempotency key of a slot: stable across retries, restarts and nodes (F1).
fn slot_key(job: &str, slot_ms: i64) -> String {
    format!("{job}@{}", to_utc(slot_ms).to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// A slot or manual run waiting for the job's previous run (overlap = buffer-one /
/// buffer-all).
enum Waiting {
    Slot { slot_ms: i64, trigger: TriggerKind },
    Manual(ManualRun),
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
    /// Slots at or before this instant never fire (set when the schedule starts or changes).
    schedule_epoch_ms: i64,
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
    /// The claim of the next slot, sent before its instant (`ahead.rs`).
    claimed_ahead: Option<ClaimAhead>,
    /// The next slot (and the generation it was queued in), whose claim ahead waits for
    /// the job's runs in flight to end (`ahead.rs`).
    deferred_claim: Option<(i64, u64)>,
}

impl JobEntry {
    /// overlap = cancel-other: every run in flight stops after `grace`, not retried.
    fn cancel_running(&self, grace: Duration, reason: &'static str) {
        let interrupt = Interrupt { grace, reason, retry: false };
        for cancel in self.running.values() {
            let _ = cancel.send(Some(interrupt.clone()));
        }
    }
}

struct Scheduler {
    config: SchedulerConfig,
    services: Arc<Services>,
    workers: Arc<Semaphore>,
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
    done_tx: mpsc::UnboundedSender<RunDone>,
    /// Batches claims and finishes into few commits (one writer thread).
    recorder: Recorder,
    /// Job files that failed to load and have no running version: name -> error.
    invalid: BTreeMap<String, String>,
    /// Failed edits of jobs whose previous version keeps running: name -> error.
    load_errors: BTreeMap<String, String>,
    /// The jobs folder's initial scan has been taken in.
    ready: bool,
    /// Wakes the loop, and runs armed ahead of their instant, to the µs (`wake.rs`).
    timer: Arc<PreciseTimer>,
}

/// Runs the scheduler until `shutdown` resolves, then stops claiming, lets running jobs
/// finish within the grace period, interrupts the rest and records them (S7).
pub async fn run(
    config: SchedulerConfig,
    services: Arc<Services>,
    mut events: mpsc::Receiver<JobEvent>,
    control: ControlReceiver,
    shutdown: impl Future<Output = ()>,
) {
    let mut control = control.0;
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let started_ms = services.clock.now_ms();
    let recorder = match Recorder::start(services.ledger.clone()) {
        Ok(recorder) => recorder,
        Err(err) => {
            tracing::error!("cannot start the store writer thread: {err}; not scheduling");
            return;
        }
    };
    let timer = match PreciseTimer::start() {
        Ok(timer) => Arc::new(timer),
        Err(err) => {
            tracing::error!("cannot start the scheduler's alarm thread: {err}; not scheduling");
            return;
        }
    };
    let mut scheduler = Scheduler {
        workers: Arc::new(Semaphore::new(config.workers.max(1))),
        config,
        services,
        jobs: HashMap::new(),
        queue: TimerQueue::default(),
        parked: HashMap::new(),
        next_run_key: 0,
        next_generation: 0,
        passed_over_before_ms: started_ms - ON_TIME_SLACK_MS,
        done_tx,
        recorder,
        invalid: BTreeMap::new(),
        load_errors: BTreeMap::new(),
        ready: false,
        timer: timer.clone(),
    };
    scheduler.recover();
    tokio::pin!(shutdown);
    let (mut events_open, mut control_open) = (true, true);
    let (mut last_wall, mut last_mono) = (scheduler.now(), std::time::Instant::now());
    loop {
        let now = scheduler.services.clock.now_ms();
        let mono = std::time::Instant::now();
        let drift = (now - last_wall) - mono.duration_since(last_mono).as_millis() as i64;
        if drift > JUMP_THRESHOLD_MS {
            tracing::warn!(
                jump_ms = drift,
                "wall clock jumped forward; skipped slots go through the misfire policy"
            );
            scheduler.passed_over_before_ms = now - ON_TIME_SLACK_MS;
        } else if drift < -JUMP_THRESHOLD_MS {
            tracing::warn!(
                jump_ms = drift,
                "wall clock jumped back; slots already claimed will not run again"
            );
        }
        (last_wall, last_mono) = (now, mono);
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
}

impl Scheduler {
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

    fn on_event(&mut self, event: JobEvent) {
        match event {
            JobEvent::Upsert(def) => {
                self.forget_load_error(&def.spec.name);
                self.upsert(def)
            }
            JobEvent::Remove(name) => {
                self.forget_load_error(&name);
                self.release_claim_ahead(&name);
                if let Some(entry) = self.jobs.remove(&name) {
                    self.services.metrics.queue_change(-(entry.waiting.len() as i64));
                    self.services.metrics.job_removed(&name);
                    tracing::info!(job = %name, "job removed; it will not be scheduled again");
                    if let Err(err) = self.services.ledger.remove_job(&name) {
                        tracing::error!(job = %name, "cannot forget the removed job: {err}");
                    }
                }
            }
            JobEvent::InitialScanDone => {
                tracing::info!(
                    jobs = self.jobs.len(),
                    invalid = self.invalid.len(),
                    "jobs folder loaded; ready"
                );
                self.reconcile_store();
                self.ready = true;
            }
            JobEvent::Invalid { name, error } => self.on_invalid(name, error),
        }
    }

    fn upsert(&mut self, def: Arc<JobDef>) {
        let now = self.now();
        let name = def.spec.name.clone();
        let record = def.spec.timing.schedule.as_ref().map_or_else(String::new, |s| s.to_record());
        // A claim sent ahead names the old version (and maybe a slot the edit drops).
        self.release_claim_ahead(&name);
        if let Some(entry) = self.jobs.get_mut(&name) {
            if entry.def.version != def.version {
                tracing::info!(job = %name, version = %def.version, "new version loaded; runs in flight finish on the old one");
                entry.new_version_failures = 0;
            }
            entry.def = def;
            if entry.schedule_record == record {
                self.persist_job(&name);
                return;
            }
            // S5: an edited schedule starts from the edit and never fires a slot because of it.
            entry.schedule_record = record;
            entry.schedule_epoch_ms = now;
            self.next_generation += 1;
            entry.generation = self.next_generation;
            self.persist_job(&name);
            self.queue_next(&name, now);
            return;
        }

        let stored = self.services.ledger.job(&name).unwrap_or_else(|err| {
            tracing::error!(job = %name, "cannot read job record: {err}");
            None
        });
        let paused = stored.as_ref().filter(|row| row.paused).map(|row| row.pause_note.clone());
        let (schedule_epoch_ms, breaker) = match &stored {
            Some(row) if row.schedule == record => (row.schedule_epoch_ms, restore_breaker(row)),
            Some(row) => (now, restore_breaker(row)),
            None => (now, Breaker::default()),
        };
        tracing::info!(job = %name, version = %def.version, schedule = %def.spec.timing.schedule.as_ref().map_or("none".into(), |s| s.describe()), "job loaded");
        self.next_generation += 1;
        self.jobs.insert(
            name.clone(),
            JobEntry {
                def,
                generation: self.next_generation,
                schedule_record: record,
                running: HashMap::new(),
                waiting: VecDeque::new(),
                breaker,
                schedule_epoch_ms,
                last_good: None,
                new_version_failures: 0,
                paused,
                backfill: VecDeque::new(),
                backfill_interval_ms: 0,
                backfill_timer: false,
                claimed_ahead: None,
                deferred_claim: None,
            },
        );
        self.persist_job(&name);
        // Continue from the newest slot on record, so downtime shows up as missed slots.
        let last = self.services.ledger.last_slot(&name).ok().flatten().unwrap_or(i64::MIN);
        self.queue_next(&name, last.max(schedule_epoch_ms));
        for (due, plan) in self.parked.remove(&name).unwrap_or_default() {
            self.queue.push(due, Due::Retry(plan));
        }
    }

    /// Queues the job's first slot strictly after `after_ms` (not older than its catch-up
    /// window: older slots are not recorded one by one).
    fn queue_next(&mut self, name: &str, after_ms: i64) {
        let now = self.now();
        let Some(entry) = self.jobs.get(name) else { return };
        let Some(schedule) = entry.def.spec.timing.schedule.as_ref() else { return };
        let window = entry.def.spec.timing.catchup_window.as_millis() as i64;
        let from = after_ms.max(now - window - 1).max(entry.schedule_epoch_ms);
        if let Some(slot) = schedule.next_after(to_utc(from)) {
            self.queue_slot(name, slot.timestamp_millis(), now);
        }
    }

    fn jitter_ms(&self, entry: &JobEntry, slot_ms: i64) -> i64 {
        let (Some(bound), Some(schedule)) =
            (entry.def.spec.timing.jitter, entry.def.spec.timing.schedule.as_ref())
        else {
            return 0;
        };
        let slot = to_utc(slot_ms);
        jitter_delay(&entry.def.spec.name, slot, bound, schedule.next_after(slot)).as_millis()
            as i64
    }

    /// A slot came due: run it, or (after downtime or a clock jump) sort the slots that
    /// were passed over through the misfire policy (M2, S2).
    fn on_slot(&mut self, name: &str, first_slot_ms: i64, now: i64) {
        if self.jobs[name].paused.is_some() {
            // Paused: nothing starts and nothing is recorded; look again at the next slot.
            self.release_claim_ahead(name);
            return self.queue_next(name, now.max(first_slot_ms));
        }
        let (due, next) = {
            let entry = &self.jobs[name];
            let schedule =
                entry.def.spec.timing.schedule.as_ref().expect("queued slots have a schedule");
            let mut due = vec![first_slot_ms];
            let mut next = schedule.next_after(to_utc(first_slot_ms)).map(|t| t.timestamp_millis());
            // A slot is due when its fire time (slot + jitter) has come, not its nominal time.
            let fired = |s: i64| s + self.jitter_ms(entry, s) <= now;
            while let Some(slot) = next.filter(|&s| fired(s) && due.len() < MAX_DUE_SLOTS) {
                due.push(slot);
                next = schedule.next_after(to_utc(slot)).map(|t| t.timestamp_millis());
            }
            (due, next)
        };
        let entry = &self.jobs[name];
        let timing = &entry.def.spec.timing;
        let split =
            due.partition_point(|&s| s + self.jitter_ms(entry, s) < self.passed_over_before_ms);
        let (passed_over, late_or_on_time) = due.split_at(split);
        if !passed_over.is_empty() {
            let window_start = now - timing.catchup_window.as_millis() as i64;
            let in_window: Vec<i64> =
                passed_over.iter().copied().filter(|&s| s >= window_start).collect();
            let too_old = passed_over.len() - in_window.len();
            if too_old > 0 {
                tracing::warn!(job = %name, count = too_old, "missed slots older than catchup_window are not recorded");
            }
            let plan = plan_misfire(&in_window, timing.misfire, timing.max_catchup);
            tracing::warn!(job = %name, missed = passed_over.len(), catch_up = plan.run.len(), "slots were passed over (host down or clock jump)");
            self.record_slots(name, &plan.missed, RunStatus::Missed, "missed:misfire");
            // Catch-ups run one after another, oldest first, then the on-time slot: they
            // wait in the job's queue instead of overlapping (and skipping) each other.
            if let Some(entry) = self.jobs.get_mut(name) {
                let catch_ups = plan
                    .run
                    .into_iter()
                    .map(|slot_ms| Waiting::Slot { slot_ms, trigger: TriggerKind::CatchUp });
                let current = late_or_on_time
                    .iter()
                    .map(|&slot_ms| Waiting::Slot { slot_ms, trigger: TriggerKind::Schedule });
                let before = entry.waiting.len();
                entry.waiting.extend(catch_ups.chain(current));
                let added = entry.waiting.len() - before;
                self.services.metrics.queue_change(added as i64);
            }
            self.drain_waiting(name, now);
        } else {
            // Usually one slot; several only when the host fell behind, and then the overlap
            // policy decides (skip records them, buffer policies queue them).
            for &slot in late_or_on_time {
                self.start_slot(name, slot, TriggerKind::Schedule, now);
            }
        }
        self.drop_unused_claim_ahead(name);
        if let Some(next) = next {
            self.queue_slot(name, next, now);
        }
    }

    /// Applies the deadline, breaker and overlap policies to one slot, then starts it,
    /// buffers it, or records why not.
    fn start_slot(&mut self, name: &str, slot_ms: i64, trigger: TriggerKind, now: i64) {
        // The run is scheduled for the slot's fire time: its instant plus its jitter.
        let Some(fire_ms) = self.jobs.get(name).map(|e| slot_ms + self.jitter_ms(e, slot_ms))
        else {
            return;
        };
        let Some(entry) = self.jobs.get_mut(name) else { return };
        let timing = &entry.def.spec.timing;
        if let Some(deadline) = timing.starting_deadline
            && now - fire_ms > deadline.as_millis() as i64
        {
            self.record_slots(name, &[slot_ms], RunStatus::Missed, "missed:deadline");
            return;
        }
        let decision = decide_overlap(
            timing.overlap,
            entry.running.len(),
            entry.waiting.len(),
            entry.def.spec.limits.max_concurrent,
        );
        match decision {
            OverlapDecision::Skip(reason) => {
                return self.record_slots(name, &[slot_ms], RunStatus::Skipped, reason);
            }
            OverlapDecision::Buffer => {
                self.services.metrics.queue_change(1);
                return entry.waiting.push_back(Waiting::Slot { slot_ms, trigger });
            }
            OverlapDecision::Start | OverlapDecision::CancelOthers => {}
        }
        let admission = entry.breaker.admit(now);
        if decision == OverlapDecision::CancelOthers && admission != Admission::Reject {
            let reason = "interrupted: cancelled by a newer slot (overlap = cancel-other)";
            entry.cancel_running(self.config.grace, reason);
        }
        match admission {
            Admission::Reject => {
                return self.record_slots(
                    name,
                    &[slot_ms],
                    RunStatus::Skipped,
                    "skipped:breaker-open",
                );
            }
            Admission::Probe => {
                tracing::info!(job = %name, "breaker half-open: this slot is the probe");
                self.persist_job(name);
            }
            Admission::Run => {}
        }
        let key = slot_key(name, slot_ms);
        self.dispatch(name, Some(slot_ms), fire_ms, 1, trigger, key, None, None, false);
    }

    fn on_retry(&mut self, plan: RetryPlan, now: i64) {
        let Some(entry) = self.jobs.get(&plan.job) else {
            self.parked.entry(plan.job.clone()).or_default().push((now, plan));
            return;
        };
        let busy = !entry.running.is_empty() && entry.def.spec.timing.overlap != Overlap::Allow;
        if busy || entry.paused.is_some() {
            self.queue.push(now + RETRY_RECHECK_MS, Due::Retry(plan));
            return;
        }
        // Interrupted runs are retried even with `max_attempts = 1` (execution is at least
        // once), but a slot whose runs keep dying is not retried forever.
        let limit = entry.def.spec.retry.max_attempts.max(2);
        if plan.attempt > limit {
            tracing::warn!(job = %plan.job, slot = plan.slot_ms, attempt = plan.attempt, "not retrying: the retry policy allows {limit} attempts");
            return;
        }
        let RetryPlan { job, slot_ms, scheduled_at_ms, attempt, idempotency_key } = plan;
        self.dispatch(
            &job,
            slot_ms,
            scheduled_at_ms,
            attempt,
            TriggerKind::Retry,
            idempotency_key,
            None,
            None,
            false,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn dispatch(
        &mut self,
        name: &str,
        slot_ms: Option<i64>,
        scheduled_at_ms: i64,
        attempt: u32,
        trigger: TriggerKind,
        idempotency_key: String,
        payload: Option<Vec<u8>>,
        reply: Option<oneshot::Sender<Result<Triggered, ControlError>>>,
        armed: bool,
    ) {
        let claimed_ahead = self.take_claim_ahead(name, slot_ms, attempt, trigger);
        let Some(entry) = self.jobs.get_mut(name) else { return };
        self.next_run_key += 1;
        let run_key = claimed_ahead.as_ref().map_or(self.next_run_key, |ahead| ahead.run_key);
        let (cancel_tx, cancel_rx) = watch::channel(None);
        entry.running.insert(run_key, cancel_tx);
        // The starting deadline is about the slot's first start; retries have their own backoff.
        let start_by_ms = (attempt == 1)
            .then_some(entry.def.spec.timing.starting_deadline)
            .flatten()
            .map(|d| scheduled_at_ms + d.as_millis() as i64);
        let order = RunOrder {
            def: entry.def.clone(),
            run_key,
            slot_ms,
            scheduled_at_ms,
            attempt,
            trigger,
            idempotency_key,
            payload,
            start_by_ms,
            reply,
            claimed_ahead,
            // Armed ahead: the run waits for its instant (the slot's fire time) itself.
            start_at: armed.then(|| StartAt { at_ms: scheduled_at_ms, timer: self.timer.clone() }),
        };
        let task = run_one(
            order,
            self.services.clone(),
            self.recorder.clone(),
            self.workers.clone(),
            cancel_rx,
            self.done_tx.clone(),
        );
        self.config.guests.spawn(task.instrument(run_span(name)));
    }

    fn on_done(&mut self, done: RunDone) {
        let now = self.now();
        let Some(entry) = self.jobs.get_mut(&done.job) else { return };
        entry.running.remove(&done.run_key);
        if let (Some(plan), Some(at)) = (done.retry, done.retry_at_ms) {
            self.queue.push(at, Due::Retry(plan));
        } else if !done.taken {
            // The slot's last word: it succeeded, or failed with no retry left.
            let policy = entry.def.spec.breaker.clone();
            let (breaker_before, version_before) =
                (entry.breaker.clone(), entry.def.version.clone());
            if let Some(state) = entry.breaker.record(done.succeeded, now, policy.as_ref()) {
                match state {
                    BreakerState::Open { until_ms } => {
                        tracing::warn!(job = %done.job, failures = entry.breaker.consecutive_failures, until = %to_utc(until_ms), "breaker opened: job paused until the cooldown ends");
                        self.services.notify.breaker_opened(
                            &entry.def.spec,
                            entry.breaker.consecutive_failures,
                            until_ms,
                        );
                    }
                    BreakerState::Closed => {
                        tracing::info!(job = %done.job, "breaker closed: the probe succeeded");
                        self.services.notify.breaker_closed(&entry.def.spec);
                    }
                    BreakerState::HalfOpen => {}
                }
            }
            self.check_rollback(&done.job, &done.version, done.succeeded);
            // The job's record changes only with the breaker or a rollback: most runs
            // succeed after a success, and skipping the write saves a commit per run.
            let changed = self
                .jobs
                .get(&done.job)
                .is_some_and(|e| e.breaker != breaker_before || e.def.version != version_before);
            if changed {
                self.persist_job(&done.job);
            }
        }
        self.drain_waiting(&done.job, now);
        self.claim_deferred(&done.job, now);
    }

    /// R6: a new version whose first `rollback_on_failure` slots all fail, where the
    /// previous version had succeeded, is replaced by that previous version.
    fn check_rollback(&mut self, name: &str, version: &str, succeeded: bool) {
        let Some(entry) = self.jobs.get_mut(name) else { return };
        if version != entry.def.version {
            return; // a run of an older version finishing late says nothing about this one
        }
        if succeeded {
            entry.last_good = Some(entry.def.clone());
            entry.new_version_failures = 0;
            return;
        }
        let (Some(limit), Some(good)) =
            (entry.def.spec.rollback_on_failure, entry.last_good.clone())
        else {
            return;
        };
        if good.version == entry.def.version {
            return;
        }
        entry.new_version_failures += 1;
        if entry.new_version_failures >= limit {
            tracing::warn!(
                job = %name, from = %entry.def.version, to = %good.version, failures = entry.new_version_failures,
                "rolled back: the new version failed its first {limit} slot(s) where the previous one succeeded"
            );
            self.services.notify.rolled_back(
                &entry.def.spec,
                &entry.def.version,
                &good.version,
                entry.new_version_failures,
            );
            entry.def = good;
            entry.new_version_failures = 0;
        }
    }

    /// Starts waiting slots one at a time while the job has nothing running.
    fn drain_waiting(&mut self, name: &str, now: i64) {
        while let Some(entry) = self.jobs.get_mut(name) {
            if !entry.running.is_empty() {
                break;
            }
            let Some(waiting) = entry.waiting.pop_front() else { break };
            self.services.metrics.queue_change(-1);
            match waiting {
                Waiting::Slot { slot_ms, trigger } => self.start_slot(name, slot_ms, trigger, now),
                Waiting::Manual(manual) => self.dispatch_manual(name, manual, now),
            }
        }
    }

    /// Records slots that do not run (skipped, missed) in one transaction.
    fn record_slots(&mut self, name: &str, slots: &[i64], status: RunStatus, reason: &'static str) {
        if slots.is_empty() {
            return;
        }
        self.services.metrics.slots_not_run(name, reason, slots.len());
        self.services.notify.slots_not_run(
            self.jobs.get(name).map(|e| &e.def.spec),
            name,
            reason,
            slots.len(),
        );
        let unclaimed = self.settle_claimed_slot(name, slots, status, reason);
        let Some(entry) = self.jobs.get(name) else { return };
        let now = self.now();
        // Scheduled for the slot's fire time (its instant plus its jitter), as a run is.
        let fires: Vec<(i64, i64)> =
            unclaimed.iter().map(|&slot| (slot, slot + self.jitter_ms(entry, slot))).collect();
        let rows: Vec<NewRun> = fires
            .into_iter()
            .map(|(slot, fire_ms)| {
                self.next_run_key += 1;
                NewRun {
                    run_id: format!("{now:011x}-{}-{}", status.as_str(), self.next_run_key),
                    job: name.to_string(),
                    slot_ms: Some(slot),
                    attempt: 1,
                    trigger: trigger_word(TriggerKind::Schedule).to_string(),
                    idempotency_key: slot_key(name, slot),
                    version: entry.def.version.clone(),
                    owner: self.services.owner.to_string(),
                    scheduled_at_ms: fire_ms,
                    status,
                    reason: reason.to_string(),
                    started_at_ms: None,
                }
            })
            .collect();
        if rows.is_empty() {
            return tracing::info!(job = %name, reason, "slot recorded without running");
        }
        match self.services.ledger.claim_many(&rows) {
            Ok(_) => {
                tracing::info!(job = %name, count = slots.len(), reason, "slots recorded without running")
            }
            Err(err) => tracing::error!(job = %name, "cannot record {reason} slots: {err}"),
        }
    }

    fn persist_job(&self, name: &str) {
        let Some(entry) = self.jobs.get(name) else { return };
        let (breaker, until) = match entry.breaker.state {
            BreakerState::Open { until_ms } => ("open", Some(until_ms)),
            other => (other.as_str(), None),
        };
        let row = JobRow {
            name: name.to_string(),
            version: entry.def.version.clone(),
            schedule: entry.schedule_record.clone(),
            paused: entry.paused.is_some(),
            pause_note: entry.paused.clone().unwrap_or_default(),
            breaker: breaker.to_string(),
            breaker_until_ms: until,
            consecutive_failures: entry.breaker.consecutive_failures,
            schedule_epoch_ms: entry.schedule_epoch_ms,
            updated_at_ms: self.now(),
        };
        let breaker_open = entry.breaker.state != BreakerState::Closed;
        self.services.metrics.job_state(name, breaker_open, entry.paused.is_some());
        if let Err(err) = self.services.ledger.upsert_job(&row) {
            tracing::error!(job = %name, "cannot record job state: {err}");
        }
    }

    /// S7: stop claiming (the loop is gone), wait up to the grace period, interrupt the rest.
    async fn shut_down(&mut self, done_rx: &mut mpsc::UnboundedReceiver<RunDone>) {
        let in_flight = |jobs: &HashMap<String, JobEntry>| {
            jobs.values().map(|e| e.running.len()).sum::<usize>()
        };
        self.release_all_claims_ahead().await;
        tracing::info!(running = in_flight(&self.jobs), grace = ?self.config.grace, "shutting down: no new runs; waiting for running ones");
        let deadline = tokio::time::Instant::now() + self.config.grace;
        while in_flight(&self.jobs) > 0 {
            match tokio::time::timeout_at(deadline, done_rx.recv()).await {
                Ok(Some(done)) => self.forget(done),
                _ => break,
            }
        }
        let interrupt = Interrupt {
            grace: Duration::ZERO,
            reason: "interrupted: host shut down before the run finished",
            retry: true,
        };
        for entry in self.jobs.values() {
            for cancel in entry.running.values() {
                let _ = cancel.send(Some(interrupt.clone()));
            }
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while in_flight(&self.jobs) > 0 {
            match tokio::time::timeout_at(deadline, done_rx.recv()).await {
                Ok(Some(done)) => self.forget(done),
                _ => break,
            }
        }
        tracing::info!("scheduler stopped");
    }

    fn forget(&mut self, done: RunDone) {
        if let Some(entry) = self.jobs.get_mut(&done.job) {
            entry.running.remove(&done.run_key);
        }
    }
}

fn restore_breaker(row: &JobRow) -> Breaker {
    let state = match (row.breaker.as_str(), row.breaker_until_ms) {
        ("open", Some(until_ms)) => BreakerState::Open { until_ms },
        ("half-open", _) => BreakerState::HalfOpen,
        _ => BreakerState::Closed,
    };
    Breaker { state, consecutive_failures: row.consecutive_failures }
}
