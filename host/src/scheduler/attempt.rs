//! One attempt, from claim to record: the task the scheduler spawns on the guest pool.
//!
//! Order matters for S3: durably claim the (job, slot, attempt) row, then wait for a worker,
//! then start the guest; a claim that finds the row taken means another process or node
//! owns this attempt, and nothing runs. Claiming before the worker wait lets the claims of
//! every slot due together commit in one batch (the store writer's); the finish then
//! records when the guest really started, or that it never did. The outcome is recorded
//! before the scheduler hears about it, so a crash between the two loses nothing.
//!
//! A scheduled slot is usually claimed ahead of its instant (`ClaimAhead`, see
//! `actor/claim_ahead.rs`): the task then only collects the answer, so the store's commit time is
//! not part of the start lag.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use tokio::sync::{Semaphore, mpsc, watch};

use super::handle::{ControlError, Triggered};
use super::launch::{Interrupt, Launcher, RowStart, RunDone, RunOrder, claim_row, new_run_id};
use super::recorder::Recorder;
use super::slot_rules::retry_delay;
use super::{JobDef, Services};
use crate::job::{RunOutcome, RunRequest, TriggerKind};
use crate::store::{Claim, RunFinish, RunStatus, StoreError};
use crate::words::SlotReason;

/// A random number in [0, 1) for retry jitter (std's per-process random SipHash keys).
fn unit_random(seed: &str) -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write(seed.as_bytes());
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

async fn interrupted(cancel: &mut watch::Receiver<Option<Interrupt>>) -> Interrupt {
    loop {
        let current = cancel.borrow_and_update().clone();
        if let Some(interrupt) = current {
            tokio::time::sleep(interrupt.grace).await;
            return interrupt;
        }
        if cancel.changed().await.is_err() {
            // The scheduler dropped the sender: it is gone, so nobody will interrupt us.
            std::future::pending::<()>().await;
        }
    }
}

/// The span a run task runs in: every log line of the run carries the job and run id.
fn run_span(job: &str) -> tracing::Span {
    tracing::info_span!("run", job = %job, run = tracing::field::Empty)
}

/// Runs each order as a [`run_one`] task on the guest pool.
pub(crate) struct GuestPool {
    pub(crate) services: Arc<Services>,
    pub(crate) recorder: Recorder,
    /// Host-wide worker slots (S6).
    pub(crate) workers: Arc<Semaphore>,
    /// Where finished runs report.
    pub(crate) done: mpsc::UnboundedSender<RunDone>,
    pub(crate) guests: tokio::runtime::Handle,
}

impl Launcher for GuestPool {
    fn launch(&self, order: RunOrder, cancel: watch::Receiver<Option<Interrupt>>) {
        let span = run_span(&order.def.spec.name);
        let task = run_one(
            order,
            self.services.clone(),
            self.recorder.clone(),
            self.workers.clone(),
            cancel,
            self.done.clone(),
        );
        self.guests.spawn(tracing::Instrument::instrument(task, span));
    }
}

/// A slot that passed its starting deadline here, after the scheduler let it through (a
/// late claim, a long wait for a worker): counted and notified like the slots the
/// scheduler itself records as `missed:deadline`.
fn missed_deadline(services: &Services, def: &JobDef) {
    services.slots_not_run(Some(&def.spec), &def.spec.name, SlotReason::Deadline, 1);
}

/// Claims, runs and records one attempt, then reports to the scheduler.
pub(crate) async fn run_one(
    mut order: RunOrder,
    services: Arc<Services>,
    recorder: Recorder,
    workers: Arc<Semaphore>,
    mut cancel: watch::Receiver<Option<Interrupt>>,
    done: mpsc::UnboundedSender<RunDone>,
) {
    let def = &order.def;
    let job = def.spec.name.clone();
    let mut report = RunDone {
        job: job.clone(),
        version: def.version.clone(),
        run_key: order.run_key,
        taken: false,
        succeeded: false,
        retry: None,
        retry_at_ms: None,
    };
    // Until a worker takes the run, it counts in the queue-depth gauge (a run armed ahead,
    // from its instant).
    let start_at = order.start_at.take();
    let queued = start_at.is_none().then(|| Queued::new(&services.metrics));
    let clock = &services.clock;
    let claimed_ms = clock.now_ms();
    let ahead = order.claimed_ahead.take();
    // The deadline counts until the guest actually starts, worker wait included.
    let too_late = ahead.is_none() && order.start_by_ms.is_some_and(|by| claimed_ms > by);
    let (run_id, claimed) = match ahead {
        // Claimed before the instant: the answer is normally in already. A claim sent ahead
        // is never `too_late`; the check after the worker wait below applies to it.
        Some(ahead) => (ahead.run_id, ahead.answer.await.unwrap_or(Err(StoreError::Closed))),
        None => {
            let run_id = new_run_id(&services.owner, order.run_key, claimed_ms);
            let start = match too_late {
                true => RowStart::NotRun(SlotReason::Deadline),
                false => RowStart::Running { provisional_start_ms: claimed_ms },
            };
            let claim = claim_row(def, &order.at, run_id.clone(), &services.owner, start);
            // Claim first, then wait for a worker: claims from every due slot queue up at the
            // store writer together and commit in one batch, not one commit per worker turn.
            (run_id, recorder.claim(claim).await)
        }
    };
    // The span (opened by the scheduler with the job name) carries the run id from here on.
    tracing::Span::current().record("run", run_id.as_str());
    if let Some(reply) = order.reply.take() {
        let key = order.at.idempotency_key.clone();
        let _ = reply.send(match &claimed {
            Ok(Claim::Claimed) => {
                Ok(Triggered::Started { run_id: run_id.clone(), idempotency_key: key })
            }
            Ok(Claim::Taken) => Ok(Triggered::Duplicate { idempotency_key: key }),
            Err(err) => Err(ControlError::Store(err.to_string())),
        });
    }
    match claimed {
        Ok(Claim::Claimed) => {}
        Ok(Claim::Taken) => {
            tracing::info!(
                slot = order.at.slot_ms,
                attempt = order.at.attempt,
                "slot already claimed elsewhere; not starting"
            );
            report.taken = true;
            let _ = done.send(report);
            return;
        }
        Err(err) => {
            tracing::error!("cannot claim run: {err}; not starting");
            report.taken = true;
            let _ = done.send(report);
            return;
        }
    }
    if too_late {
        tracing::warn!(slot = order.at.slot_ms, "missed: waited past starting_deadline");
        missed_deadline(&services, &order.def);
        report.taken = true; // nothing ran: no retry, no breaker verdict
        let _ = done.send(report);
        return;
    }
    // Wait for the instant (armed ahead), then for a worker; an interrupt (shutdown,
    // cancel-other) may come first.
    let worker = async {
        let _queued = match &start_at {
            Some(start_at) => {
                start_at.reached(clock.as_ref()).await;
                Some(Queued::new(&services.metrics))
            }
            None => queued,
        };
        workers.acquire_owned().await
    };
    let permit = tokio::select! {
        biased;
        interrupt = interrupted(&mut cancel) => Err(interrupt),
        permit = worker => Ok(permit),
    };
    let (_permit, started_us) = match permit {
        Ok(Ok(permit)) => (permit, clock.now_us()),
        Ok(Err(_closed)) => {
            let _ = done.send(report);
            return;
        }
        Err(interrupt) => {
            // It never started, so it used up no attempt of the retry policy: a shutdown
            // always hands the slot to the next start (execution is at least once).
            let now_ms = clock.now_ms();
            let retry_at_ms = interrupt.retry.then_some(now_ms);
            let finish = interrupted_finish(&interrupt, now_ms, None, retry_at_ms);
            return record(recorder, run_id, finish, report, &order, done);
        }
    };
    let started_ms = started_us.div_euclid(1000);
    if order.start_by_ms.is_some_and(|by| started_ms > by) {
        tracing::warn!(
            slot = order.at.slot_ms,
            "missed: waited for a worker past starting_deadline"
        );
        missed_deadline(&services, &order.def);
        report.taken = true; // nothing ran: no retry, no breaker verdict
        let finish = RunFinish {
            status: RunStatus::Missed,
            reason: SlotReason::Deadline.as_str().into(),
            outcome: "missed".into(),
            ..empty_finish(started_ms)
        };
        return record(recorder, run_id, finish, report, &order, done);
    }
    let lag_ms = (started_us - order.at.scheduled_at_ms * 1000) as f64 / 1e3;
    tracing::info!(
        slot = order.at.slot_ms,
        attempt = order.at.attempt,
        trigger = order.at.trigger.as_str(),
        lag_ms,
        "run started"
    );
    services
        .metrics
        .run_started(&job, (order.at.trigger == TriggerKind::Schedule).then_some(lag_ms));

    let request = RunRequest {
        run_id: run_id.clone(),
        idempotency_key: order.at.idempotency_key.clone(),
        scheduled_at: UNIX_EPOCH + Duration::from_millis(order.at.scheduled_at_ms.max(0) as u64),
        attempt: order.at.attempt,
        trigger: order.at.trigger,
        payload: order.payload.clone(),
    };
    let execution =
        services.runtime.execute(&def.code, &def.spec, Some(services.state.clone()), &request);
    let result = tokio::select! {
        report = execution => Ok(report),
        interrupt = interrupted(&mut cancel) => Err(interrupt),
    };

    let finished_ms = clock.now_ms();
    let finish = match &result {
        Ok(run) => {
            report.succeeded = run.outcome == RunOutcome::Succeeded;
            let mut output = run.summary.clone().unwrap_or_default();
            if !run.stdout.is_empty() {
                if !output.is_empty() {
                    output.push('\n');
                }
                output.push_str(&run.stdout);
            }
            RunFinish {
                status: if report.succeeded { RunStatus::Succeeded } else { RunStatus::Failed },
                reason: run.outcome.reason(),
                outcome: run.outcome.kind().to_string(),
                finished_at_ms: finished_ms,
                duration_ms: run.duration.as_secs_f64() * 1e3,
                fuel_used: run.fuel_used,
                peak_memory: Some(run.peak_memory),
                output,
                logs_json: serde_json::to_string(&run.logs).unwrap_or_else(|_| "[]".into()),
                retry_at_ms: retry_at(
                    &order,
                    &run_id,
                    finished_ms,
                    !report.succeeded && run.outcome.retryable(),
                ),
                started_at_ms: Some(started_ms),
                net: (!run.net.counts.is_empty()).then_some(run.net.counts),
            }
        }
        Err(interrupt) => {
            let retry_at_ms =
                retry_at(&order, &run_id, finished_ms, interrupt.retry).map(|_| finished_ms);
            interrupted_finish(interrupt, finished_ms, Some(started_ms), retry_at_ms)
        }
    };
    tracing::info!(status = finish.status.as_str(), reason = %finish.reason, duration_ms = (finish.duration_ms * 10.0).round() / 10.0, "run finished");
    services.notify.run_failed(&def.spec, &run_id, order.at.attempt, &finish);
    services.metrics.run_finished(
        &job,
        &finish.outcome,
        finish.duration_ms / 1e3,
        finish.fuel_used,
        finish.peak_memory,
    );
    if let Ok(run) = &result
        && !run.net.counts.is_empty()
    {
        let tallies = run.net.by_host.iter().map(|t| (t.host.as_str(), t.outcome, t.count));
        services.metrics.outbound(&job, run.net.counts.refused, tallies);
    }
    record(recorder, run_id, finish, report, &order, done);
}

/// When the next attempt is due (after the policy's backoff), if `retryable` and the retry
/// policy allows another attempt.
fn retry_at(order: &RunOrder, run_id: &str, now_ms: i64, retryable: bool) -> Option<i64> {
    if !retryable {
        return None;
    }
    let delay = retry_delay(&order.def.spec.retry, order.at.attempt, unit_random(run_id))?;
    Some(now_ms + delay.as_millis() as i64)
}

/// The finish of a run stopped from outside (`started_ms` is `None` if it never started).
fn interrupted_finish(
    interrupt: &Interrupt,
    now_ms: i64,
    started_ms: Option<i64>,
    retry_at_ms: Option<i64>,
) -> RunFinish {
    RunFinish {
        status: RunStatus::Interrupted,
        reason: interrupt.reason.as_str().to_string(),
        outcome: "interrupted".into(),
        duration_ms: started_ms.map_or(0.0, |started| (now_ms - started) as f64),
        retry_at_ms,
        started_at_ms: started_ms,
        ..empty_finish(now_ms)
    }
}

/// A finish with nothing measured, at `now_ms`.
pub(crate) fn empty_finish(now_ms: i64) -> RunFinish {
    RunFinish {
        status: RunStatus::Failed,
        reason: String::new(),
        outcome: String::new(),
        finished_at_ms: now_ms,
        duration_ms: 0.0,
        fuel_used: None,
        peak_memory: None,
        output: String::new(),
        logs_json: "[]".into(),
        retry_at_ms: None,
        started_at_ms: None,
        net: None,
    }
}

/// Records the finish, then tells the scheduler (with the next attempt, if the finish
/// plans one). The scheduler hears of the end only once it is recorded, so a retry it
/// plans is always backed by the failed attempt's row.
fn record(
    recorder: Recorder,
    run_id: String,
    finish: RunFinish,
    mut report: RunDone,
    order: &RunOrder,
    done: mpsc::UnboundedSender<RunDone>,
) {
    if let Some(retry_at) = finish.retry_at_ms {
        report.retry_at_ms = Some(retry_at);
        report.retry = Some(super::queue::RetryPlan {
            job: report.job.clone(),
            slot_ms: order.at.slot_ms,
            scheduled_at_ms: order.at.scheduled_at_ms,
            attempt: order.at.attempt + 1,
            idempotency_key: order.at.idempotency_key.clone(),
        });
    }
    let job = report.job.clone();
    recorder.finish(run_id.clone(), finish, move |recorded| {
        if let Err(err) = recorded {
            tracing::error!(job = %job, run = %run_id, "cannot record the end of the run: {err}");
        }
        let _ = done.send(report);
    });
}

/// One run counted in the queue-depth gauge until dropped.
struct Queued<'a>(&'a crate::metrics::Metrics);

impl<'a> Queued<'a> {
    fn new(metrics: &'a crate::metrics::Metrics) -> Self {
        metrics.queue_change(1);
        Queued(metrics)
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.queue_change(-1);
    }
}
