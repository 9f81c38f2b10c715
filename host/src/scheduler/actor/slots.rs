//! A slot coming due: misfire after downtime, a clock jump (M2, S2) or a cold compile, then
//! the deadline, overlap and breaker policies decide whether it starts, waits, or is
//! recorded as not run.

use super::*;

impl Scheduler {
    /// A slot came due: run it, or (after downtime, a clock jump, or while the job's code
    /// compiled) sort the slots that were passed over through the misfire policy (M2, S2).
    pub(super) fn on_slot(&mut self, name: &str, first_slot_ms: i64, now: i64) {
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
        // Passed over: by downtime or a clock jump (host-wide), or while the job compiled.
        let host_passed_over = self.passed_over_before_ms;
        let job_passed_over = host_passed_over.max(entry.loaded_at_ms - ON_TIME_SLACK_MS);
        let fire = |s: i64| s + self.jitter_ms(entry, s);
        let split = due.partition_point(|&s| fire(s) < job_passed_over);
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
            let downtime = plan.missed.partition_point(|&s| fire(s) < host_passed_over);
            let (misfired, compiling) = plan.missed.split_at(downtime);
            let (misfired, compiling) = (misfired.to_vec(), compiling.to_vec());
            tracing::warn!(job = %name, missed = passed_over.len(), catch_up = plan.run.len(), "slots were passed over (host down, clock jump, or the job still compiling)");
            self.record_slots(name, &misfired, SlotReason::Misfire);
            self.record_slots(name, &compiling, SlotReason::Compiling);
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
    pub(super) fn start_slot(&mut self, name: &str, slot_ms: i64, trigger: TriggerKind, now: i64) {
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
            self.record_slots(name, &[slot_ms], SlotReason::Deadline);
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
                return self.record_slots(name, &[slot_ms], reason);
            }
            OverlapDecision::Buffer => {
                self.services.metrics.queue_change(1);
                return entry.waiting.push_back(Waiting::Slot { slot_ms, trigger });
            }
            OverlapDecision::Start | OverlapDecision::CancelOthers => {}
        }
        let admission = entry.breaker.admit(now);
        if decision == OverlapDecision::CancelOthers && admission != Admission::Reject {
            entry.cancel_running(self.config.grace, InterruptReason::CancelledBySlot);
        }
        match admission {
            Admission::Reject => return self.skip_for_open_breaker(name, slot_ms),
            Admission::Probe => {
                tracing::info!(job = %name, "breaker half-open: this slot is the probe");
                self.persist_job(name);
            }
            Admission::Run => {}
        }
        self.dispatch(name, Dispatch::of(AttemptOf::slot(name, slot_ms, fire_ms, trigger)));
    }

    /// A slot the open (or half-open) breaker holds back: counted every time, recorded once
    /// per opening. The first slot skipped after the breaker opened gets the
    /// `skipped:breaker-open` row; a job every second with a 10-minute cooldown would
    /// otherwise write 600 rows per opening. A probe that fails reopens the breaker: a new
    /// opening, a new row (`runs.rs` clears the flag).
    fn skip_for_open_breaker(&mut self, name: &str, slot_ms: i64) {
        let reason = SlotReason::BreakerOpen;
        let Some(entry) = self.jobs.get_mut(name) else { return };
        // A slot claimed ahead has a row already: it is finished with the reason either way.
        let claimed = entry.claimed_ahead.as_ref().is_some_and(|ahead| ahead.slot_ms == slot_ms);
        if !entry.breaker_skip_recorded || claimed {
            entry.breaker_skip_recorded = true;
            return self.record_slots(name, &[slot_ms], reason);
        }
        self.count_not_run(name, reason, 1);
        tracing::debug!(job = %name, slot = slot_ms, "slot skipped: breaker open (this opening is recorded)");
    }

    /// The metric and the notification for slots that do not run.
    fn count_not_run(&self, name: &str, reason: SlotReason, count: usize) {
        let spec = self.jobs.get(name).map(|e| &e.def.spec);
        self.services.slots_not_run(spec, name, reason, count);
    }

    /// Records slots that do not run (skipped, missed) in one transaction.
    pub(super) fn record_slots(&mut self, name: &str, slots: &[i64], reason: SlotReason) {
        if slots.is_empty() {
            return;
        }
        self.count_not_run(name, reason, slots.len());
        let unclaimed = self.settle_claimed_slot(name, slots, reason);
        let Some(entry) = self.jobs.get(name) else { return };
        let now = self.now();
        // Scheduled for the slot's fire time (its instant plus its jitter), as a run is.
        let fires: Vec<(i64, i64)> =
            unclaimed.iter().map(|&slot| (slot, slot + self.jitter_ms(entry, slot))).collect();
        let owner = &self.services.owner;
        let rows: Vec<NewRun> = fires
            .into_iter()
            .map(|(slot, fire_ms)| {
                self.next_run_key += 1;
                let at = AttemptOf::slot(name, slot, fire_ms, TriggerKind::Schedule);
                let run_id = new_run_id(owner, self.next_run_key, now);
                claim_row(&entry.def, &at, run_id, owner, RowStart::NotRun(reason))
            })
            .collect();
        if rows.is_empty() {
            return tracing::info!(job = %name, %reason, "slot recorded without running");
        }
        match self.services.ledger.claim_many(&rows) {
            Ok(_) => {
                tracing::info!(job = %name, count = slots.len(), %reason, "slots recorded without running")
            }
            Err(err) => tracing::error!(job = %name, "cannot record {reason} slots: {err}"),
        }
    }
}
