//! Starting runs (through the launcher) and taking in their ends: retries, the breaker's
//! verdict (M4), rollback of a failing new version (R6), and the job's waiting slots.

use super::*;

impl Scheduler {
    pub(super) fn on_retry(&mut self, plan: RetryPlan, now: i64) {
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
            tracing::warn!(job = %plan.job, slot = ?plan.slot_ms, attempt = plan.attempt, "not retrying: the retry policy allows {limit} attempts");
            return;
        }
        let RetryPlan { job, slot_ms, scheduled_at_ms, attempt, idempotency_key } = plan;
        let trigger = TriggerKind::Retry;
        let at = AttemptOf { slot_ms, scheduled_at_ms, attempt, trigger, idempotency_key };
        self.dispatch(&job, Dispatch::of(at));
    }

    /// Hands a run to the launcher, taking over the slot's claim sent ahead if it fits.
    pub(super) fn dispatch(&mut self, name: &str, run: Dispatch) {
        let Dispatch { at, payload, reply, armed } = run;
        let claimed_ahead = self.take_claim_ahead(name, at.slot_ms, at.attempt, at.trigger);
        let Some(entry) = self.jobs.get_mut(name) else { return };
        self.next_run_key += 1;
        let run_key = claimed_ahead.as_ref().map_or(self.next_run_key, |ahead| ahead.run_key);
        let (cancel_tx, cancel_rx) = watch::channel(None);
        entry.running.insert(run_key, cancel_tx);
        // The starting deadline is about the slot's first start; retries have their own backoff.
        let start_by_ms = (at.attempt == 1)
            .then_some(entry.def.spec.timing.starting_deadline)
            .flatten()
            .map(|d| at.scheduled_at_ms + d.as_millis() as i64);
        // Armed ahead: the run waits for its instant (the slot's fire time) itself.
        let start_at =
            armed.then(|| StartAt { at_ms: at.scheduled_at_ms, timer: self.timer.clone() });
        let order = RunOrder {
            def: entry.def.clone(),
            run_key,
            at,
            payload,
            start_by_ms,
            reply,
            claimed_ahead,
            start_at,
        };
        self.launcher.launch(order, cancel_rx);
    }

    pub(super) fn on_done(&mut self, done: RunDone) {
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
                        // A new opening (a failed probe reopens): its first skip is recorded.
                        entry.breaker_skip_recorded = false;
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
    pub(super) fn check_rollback(&mut self, name: &str, version: &str, succeeded: bool) {
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
    pub(super) fn drain_waiting(&mut self, name: &str, now: i64) {
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
}
