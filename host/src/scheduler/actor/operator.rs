//! The actor's side of the control surface (S5): status, pause, resume, manual trigger and
//! rate-limited backfill. Each request is answered on its one-shot; a manual run's answer
//! comes from its run task once the claim is durable.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Dispatch, JobEntry, ManualRun, RETRY_RECHECK_MS, Scheduler, Waiting, to_utc};
use crate::config::Overlap;
use crate::job::TriggerKind;
use crate::scheduler::handle::{
    BackfillPlan, Control, ControlError, JobStatus, MAX_BACKFILL_SLOTS, MAX_PENDING_HOST,
    MAX_PENDING_PER_JOB, StatusReport, TriggerRequest,
};
use crate::scheduler::launch::AttemptOf;
use crate::scheduler::queue::Due;
use crate::scheduler::slot_rules::{OverlapDecision, decide_overlap};
use crate::store::RunStatus;
use crate::words::InterruptReason;

/// While a job's run is in flight, a due backfill slot waits this long and checks again.
const BACKFILL_RECHECK_MS: i64 = 200;

impl Scheduler {
    pub(super) fn on_control(&mut self, request: Control) {
        match request {
            Control::Status { job, fires, reply } => {
                let _ = reply.send(self.status(job.as_deref(), fires));
            }
            Control::Pause { job, note, reply } => {
                // Pausing again without a note keeps the note the job was paused with.
                let kept = self.jobs.get(&job).and_then(|entry| entry.paused.clone());
                let note = if note.is_empty() { kept.unwrap_or_default() } else { note };
                let _ = reply.send(self.set_paused(&job, Some(note)));
            }
            Control::Resume { job, reply } => {
                let _ = reply.send(self.set_paused(&job, None));
            }
            Control::Trigger { request, reply } => self.on_trigger(request, reply),
            Control::Backfill { job, from_ms, to_ms, interval, reply } => {
                let _ = reply.send(self.on_backfill(&job, from_ms, to_ms, interval));
            }
        }
    }

    fn status(&self, only: Option<&str>, fires: usize) -> StatusReport {
        let now = self.now();
        let jobs = self
            .jobs
            .iter()
            .filter(|(name, _)| only.is_none_or(|only| only == name.as_str()))
            .map(|(_, entry)| self.job_status(entry, fires, now))
            .collect::<BTreeMap<_, _>>()
            .into_values()
            .collect();
        let invalid = self
            .invalid
            .iter()
            .filter(|(name, _)| only.is_none_or(|only| only == name.as_str()))
            .map(|(name, error)| (name.clone(), error.clone()))
            .collect();
        let compiling = self
            .compiling
            .iter()
            .filter(|(name, _)| only.is_none_or(|only| only == name.as_str()))
            .map(|(name, since)| (name.clone(), *since))
            .collect();
        StatusReport { jobs, invalid, compiling, ready: self.ready }
    }

    fn job_status(&self, entry: &JobEntry, fires: usize, now: i64) -> (String, JobStatus) {
        let mut next_fires_ms = Vec::with_capacity(fires);
        // A paused job fires nothing until it is resumed (from its next slot after then).
        let schedule = entry.def.spec.timing.schedule.as_ref().filter(|_| entry.paused.is_none());
        if let Some(schedule) = schedule {
            let from: DateTime<Utc> = to_utc(now.max(entry.schedule_epoch_ms));
            for slot in schedule.iter_after(from).take(fires) {
                let slot_ms = slot.timestamp_millis();
                next_fires_ms.push(slot_ms + self.jitter_ms(entry, slot_ms));
            }
        }
        let status = JobStatus {
            def: entry.def.clone(),
            paused: entry.paused.clone(),
            breaker: entry.breaker.state,
            consecutive_failures: entry.breaker.consecutive_failures,
            running: entry.running.len(),
            waiting: entry.waiting.len(),
            backfill_pending: entry.backfill.len(),
            next_fires_ms,
            load_error: self.load_errors.get(&entry.def.spec.name).cloned(),
        };
        (entry.def.spec.name.clone(), status)
    }

    fn set_paused(&mut self, name: &str, note: Option<String>) -> Result<JobStatus, ControlError> {
        let entry =
            self.jobs.get_mut(name).ok_or_else(|| ControlError::NotFound(name.to_string()))?;
        match &note {
            Some(note) => tracing::info!(job = %name, note = %note, "job paused"),
            None if entry.paused.is_some() => tracing::info!(job = %name, "job resumed"),
            None => {}
        }
        let pausing = note.is_some();
        entry.paused = note;
        if pausing {
            self.release_claim_ahead(name);
        }
        self.persist_job(name);
        let now = self.now();
        Ok(self.job_status(&self.jobs[name], 5, now).1)
    }

    fn on_trigger(
        &mut self,
        request: TriggerRequest,
        reply: tokio::sync::oneshot::Sender<Result<super::Triggered, ControlError>>,
    ) {
        let now = self.now();
        let TriggerRequest { job, payload, idempotency_key, force } = request;
        let host_pending: usize =
            self.jobs.values().map(|e| e.running.len() + e.waiting.len()).sum();
        let Some(entry) = self.jobs.get_mut(&job) else {
            let _ = reply.send(Err(ControlError::NotFound(job)));
            return;
        };
        if let (Some(note), false) = (&entry.paused, force) {
            let _ = reply.send(Err(ControlError::Paused { job, note: note.clone() }));
            return;
        }
        let spec = &entry.def.spec;
        let job_cap = MAX_PENDING_PER_JOB + spec.limits.max_concurrent as usize;
        let pending = entry.running.len() + entry.waiting.len();
        let full = if pending >= job_cap {
            Some(format!("{pending} runs of job {job:?} are running or queued (at most {job_cap})"))
        } else if host_pending >= MAX_PENDING_HOST {
            Some(format!(
                "{host_pending} runs are running or queued on this host (at most {MAX_PENDING_HOST})"
            ))
        } else {
            None
        };
        if let Some(reason) = full {
            let retry_after = spec.limits.timeout;
            tracing::warn!(job = %job, "manual trigger refused: {reason}");
            let _ = reply.send(Err(ControlError::Busy { job, reason, retry_after }));
            return;
        }
        self.next_run_key += 1;
        let idempotency_key =
            idempotency_key.unwrap_or_else(|| format!("manual-{now:x}-{}", self.next_run_key));
        let manual = ManualRun { idempotency_key, payload, reply: Some(reply) };
        if force {
            return self.dispatch_manual(&job, manual, now);
        }
        let spec = &entry.def.spec;
        let decision = decide_overlap(
            spec.timing.overlap,
            entry.running.len(),
            entry.waiting.len(),
            spec.limits.max_concurrent,
        );
        match decision {
            OverlapDecision::Skip(reason) => {
                if let Some(reply) = manual.reply {
                    let _ = reply.send(Err(ControlError::Overlap { job, reason }));
                }
            }
            OverlapDecision::Buffer => {
                let key = manual.idempotency_key.clone();
                let mut manual = manual;
                if let Some(reply) = manual.reply.take() {
                    let _ = reply.send(Ok(super::Triggered::Queued { idempotency_key: key }));
                }
                self.services.metrics.queue_change(1);
                entry.waiting.push_back(Waiting::Manual(manual));
            }
            OverlapDecision::Start | OverlapDecision::CancelOthers => {
                if decision == OverlapDecision::CancelOthers {
                    entry.cancel_running(self.config.grace, InterruptReason::CancelledByRun);
                }
                self.dispatch_manual(&job, manual, now);
            }
        }
    }

    pub(super) fn dispatch_manual(&mut self, name: &str, manual: ManualRun, now: i64) {
        let ManualRun { idempotency_key, payload, reply } = manual;
        tracing::info!(job = %name, key = %idempotency_key, "manual trigger");
        let (trigger, attempt) = (TriggerKind::Manual, 1);
        let at =
            AttemptOf { slot_ms: None, scheduled_at_ms: now, attempt, trigger, idempotency_key };
        self.dispatch(name, Dispatch { payload, reply, ..Dispatch::of(at) });
    }

    fn on_backfill(
        &mut self,
        name: &str,
        from_ms: i64,
        to_ms: i64,
        interval: Duration,
    ) -> Result<BackfillPlan, ControlError> {
        let now = self.now();
        let entry = self.jobs.get(name).ok_or_else(|| ControlError::NotFound(name.to_string()))?;
        if let Some(note) = &entry.paused {
            return Err(ControlError::Paused { job: name.to_string(), note: note.clone() });
        }
        let Some(schedule) = entry.def.spec.timing.schedule.as_ref() else {
            return Err(ControlError::BadRange(format!(
                "job {name:?} has no schedule to backfill"
            )));
        };
        if from_ms > to_ms {
            return Err(ControlError::BadRange("`from` is after `to`".into()));
        }
        if to_ms > now {
            return Err(ControlError::BadRange(
                "`to` is in the future: backfill covers past slots only".into(),
            ));
        }
        let slots: Vec<i64> = schedule
            .iter_after(to_utc(from_ms - 1))
            .map(|slot| slot.timestamp_millis())
            .take_while(|&slot| slot <= to_ms)
            .take(MAX_BACKFILL_SLOTS + 1)
            .collect();
        if slots.len() > MAX_BACKFILL_SLOTS {
            return Err(ControlError::TooManySlots { count: slots.len(), max: MAX_BACKFILL_SLOTS });
        }
        // Slots at or before the schedule's epoch belong to no version of this job that ever
        // ran (it was added, or its schedule last changed, then): they are never queued.
        let schedule_since_ms = entry.schedule_epoch_ms;
        let before_schedule = slots.iter().filter(|&&slot| slot <= schedule_since_ms).count();
        let history = self
            .services
            .ledger
            .slot_history(name, from_ms, to_ms)
            .map_err(|err| ControlError::Store(err.to_string()))?;
        // A slot that ever started (or is running) is left alone; one only recorded as
        // missed or skipped runs as its next attempt.
        let mut started = HashSet::new();
        let mut last_attempt = BTreeMap::new();
        for (slot, attempt, status) in history {
            if !matches!(status, RunStatus::Missed | RunStatus::Skipped) {
                started.insert(slot);
            }
            last_attempt.insert(slot, attempt);
        }
        let entry = self.jobs.get_mut(name).expect("checked above");
        let queued_before: HashSet<i64> = entry.backfill.iter().map(|&(slot, _)| slot).collect();
        let mut queued = 0;
        for &slot in &slots[before_schedule..] {
            if started.contains(&slot) || queued_before.contains(&slot) {
                continue;
            }
            let attempt = last_attempt.get(&slot).map_or(1, |a| a + 1);
            entry.backfill.push_back((slot, attempt));
            queued += 1;
        }
        entry.backfill_interval_ms = interval.as_millis() as i64;
        if !entry.backfill.is_empty() && !entry.backfill_timer {
            entry.backfill_timer = true;
            self.queue.push(now, Due::Backfill { job: name.to_string() });
        }
        tracing::info!(job = %name, slots = slots.len(), queued, before_schedule, interval = ?interval, "backfill queued");
        Ok(BackfillPlan {
            slots: slots.len(),
            queued,
            already_run: slots[before_schedule..].iter().filter(|s| started.contains(s)).count(),
            before_schedule,
            schedule_since_ms,
            first_ms: slots.first().copied(),
            last_ms: slots.last().copied(),
            interval,
        })
    }

    /// Starts the job's next backfill slot when it is idle, then waits out the rate limit.
    pub(super) fn on_backfill_due(&mut self, name: &str, now: i64) {
        let Some(entry) = self.jobs.get_mut(name) else { return };
        let busy = !entry.running.is_empty() && entry.def.spec.timing.overlap != Overlap::Allow;
        if entry.paused.is_some() || busy {
            let wait = if busy { BACKFILL_RECHECK_MS } else { RETRY_RECHECK_MS };
            self.queue.push(now + wait, Due::Backfill { job: name.to_string() });
            return;
        }
        let Some((slot_ms, attempt)) = entry.backfill.pop_front() else {
            entry.backfill_timer = false;
            return;
        };
        if entry.backfill.is_empty() {
            entry.backfill_timer = false;
        } else {
            let next = now + entry.backfill_interval_ms;
            self.queue.push(next, Due::Backfill { job: name.to_string() });
        }
        let at = AttemptOf::slot(name, slot_ms, slot_ms, TriggerKind::Backfill);
        self.dispatch(name, Dispatch::of(AttemptOf { attempt, ..at }));
    }
}
