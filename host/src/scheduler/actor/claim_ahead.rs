//! Claiming a slot ahead of its instant, and arming its run just before it, so neither the
//! store's commit time nor the scheduler loop is part of the start lag (trigger accuracy).
//!
//! A job's next slot enters the timer queue `claim_ahead` (`serve --claim-ahead`, 250 ms by
//! default) before its fire time, or at once if it fires sooner. If the slot would start at
//! once were it due now — not paused, nothing of the job running or waiting, breaker
//! closed, not passed over — its claim goes to the store writer then. If only the job's
//! own runs are in the way (a short run, and a next slot that fires soon), the claim waits
//! for them to end ([`Scheduler::claim_deferred`]) while there is still time.
//!
//! [`ARM_LEAD_MS`] before the fire time comes the slot's arming turn. If it is claimed and
//! its job is still idle, its run is dispatched then: the task collects the claim's answer
//! and waits on the guest pool for the instant itself (the precise timer, `wake.rs`), so a
//! busy or late-woken scheduler loop no longer delays the start. Otherwise the slot is
//! queued for its fire time and comes due the usual way, through every policy. S3 is
//! unchanged: the row is durable before the guest starts, and the guest never starts
//! before its instant. An armed run is a run in flight: a pause or a new version in its
//! last few ms does not stop it (as for a run that has started), and a shutdown interrupts
//! it like a run waiting for a worker (recorded, retried after the restart).
//!
//! The claim follows whatever happens to the slot meanwhile:
//! - it starts: the run task takes the claim over (`Scheduler::take_claim_ahead`);
//! - it is skipped or missed: the claimed row is finished with that status;
//! - it waits behind a running run (buffer policies): the claim waits with it;
//! - anything else (pause, edit, new version, removal, shutdown): the claim is released,
//!   which removes the row, so the slot is as if never claimed; a slot that still comes
//!   due is then claimed the usual way.
//!
//! A row claimed ahead reads `running` from the claim, with its fire time as provisional
//! `started_at` (the guest starts then, give or take the start lag); the finish records the
//! real start. After a crash it is recovered like any running row: interrupted and retried,
//! with no `started_at` if its fire time had not come.

use tokio::sync::mpsc;

use super::{Dispatch, JobEntry, Scheduler, Waiting, to_utc};
use crate::job::TriggerKind;
use crate::scheduler::attempt::empty_finish;
use crate::scheduler::launch::{AttemptOf, ClaimAhead, RowStart, claim_row, new_run_id};
use crate::scheduler::queue::Due;
use crate::scheduler::recorder::Recorder;
use crate::store::RunFinish;
use crate::words::BreakerState;
use crate::words::SlotReason;

/// How long before its fire time a claimed slot's run is dispatched, to wait for the
/// instant on the guest pool: the scheduler loop, busy or woken late by a few ms now and
/// then on a small VM, is then no longer between the instant and the start.
const ARM_LEAD_MS: i64 = 10;

/// Longest a shutdown waits for its releases to be applied.
const RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl Scheduler {
    /// Queues a slot of the job: its claim-ahead turn when there is time for one (at once
    /// if the slot fires sooner than `claim_ahead`), else the slot itself at its fire time.
    pub(super) fn queue_slot(&mut self, name: &str, slot_ms: i64, now: i64) {
        let Some(entry) = self.jobs.get(name) else { return };
        let fire_ms = slot_ms + self.jitter_ms(entry, slot_ms);
        let (job, generation) = (name.to_string(), entry.generation);
        let ahead_ms = self.config.claim_ahead.as_millis() as i64;
        if ahead_ms > 0 && fire_ms - ARM_LEAD_MS > now {
            let due = Due::ClaimAhead { job, generation, slot_ms };
            self.queue.push((fire_ms - ahead_ms).max(now), due);
        } else {
            self.queue.push(fire_ms, Due::Slot { job, generation, slot_ms });
        }
    }

    /// A slot's claim-ahead turn: claim it if it will start at its instant, then queue its
    /// arming. A job whose runs are still going has its claim deferred until they end
    /// ([`Scheduler::claim_deferred`]): short runs of a job whose next slot fires soon.
    pub(super) fn on_claim_ahead(&mut self, name: &str, slot_ms: i64) {
        let passed_over_before_ms = self.passed_over_before_ms;
        let Some(entry) = self.jobs.get(name) else { return };
        let fire_ms = slot_ms + self.jitter_ms(entry, slot_ms);
        let generation = entry.generation;
        let arm = Due::Arm { job: name.to_string(), generation, slot_ms };
        if fire_ms < passed_over_before_ms {
            self.queue.push(fire_ms, Due::Slot { job: name.to_string(), generation, slot_ms });
        } else if will_start_now(entry) {
            self.claim_ahead_now(name, slot_ms, fire_ms);
            self.queue.push(fire_ms - ARM_LEAD_MS, arm);
        } else if is_idle_but_running(entry) {
            let entry = self.jobs.get_mut(name).expect("looked up above");
            entry.deferred_claim = Some((slot_ms, generation));
            // Claimed or not by then, the arming turn decides how the slot starts.
            self.queue.push(fire_ms - ARM_LEAD_MS, arm);
        } else {
            self.queue.push(fire_ms, Due::Slot { job: name.to_string(), generation, slot_ms });
        }
    }

    /// After a run of the job ended: the claim deferred while it ran, if the slot's arming
    /// turn has not come yet and the job is now idle.
    pub(super) fn claim_deferred(&mut self, name: &str, now: i64) {
        let Some(entry) = self.jobs.get(name) else { return };
        let Some((slot_ms, generation)) = entry.deferred_claim else { return };
        let fire_ms = slot_ms + self.jitter_ms(entry, slot_ms);
        let stale = generation != entry.generation || fire_ms - ARM_LEAD_MS <= now;
        if !stale && !will_start_now(entry) {
            return; // still running (or paused): a later end of a run looks again
        }
        self.jobs.get_mut(name).expect("looked up above").deferred_claim = None;
        if !stale && fire_ms >= self.passed_over_before_ms {
            self.claim_ahead_now(name, slot_ms, fire_ms);
        }
    }

    /// Sends the slot's claim to the store writer and keeps it as the job's claim ahead.
    fn claim_ahead_now(&mut self, name: &str, slot_ms: i64, fire_ms: i64) {
        let owner = self.services.owner.clone();
        self.next_run_key += 1;
        let run_key = self.next_run_key;
        let run_id = new_run_id(&owner, run_key, self.now());
        let Some(entry) = self.jobs.get_mut(name) else { return };
        let at = AttemptOf::slot(name, slot_ms, fire_ms, TriggerKind::Schedule);
        let start = RowStart::Running { provisional_start_ms: fire_ms };
        let row = claim_row(&entry.def, &at, run_id.clone(), &owner, start);
        let answer = self.recorder.submit_claim(row);
        let version = entry.def.version.clone();
        entry.claimed_ahead = Some(ClaimAhead { slot_ms, run_key, run_id, version, answer });
    }

    /// A claimed slot's turn to be armed, [`ARM_LEAD_MS`] before it fires: if its job is
    /// still idle and the claim still fits, its run is dispatched now and waits on the guest
    /// pool for the instant itself; otherwise the slot comes due the usual way.
    pub(super) fn on_arm(&mut self, name: &str, slot_ms: i64, now: i64) {
        let passed_over_before_ms = self.passed_over_before_ms;
        let Some(entry) = self.jobs.get_mut(name) else { return };
        entry.deferred_claim = None; // too late to claim ahead now
        let entry = &self.jobs[name];
        let fire_ms = slot_ms + self.jitter_ms(entry, slot_ms);
        let claim_fits = entry
            .claimed_ahead
            .as_ref()
            .is_some_and(|ahead| ahead.slot_ms == slot_ms && ahead.version == entry.def.version);
        let on_time = now < fire_ms && fire_ms >= passed_over_before_ms;
        if !(claim_fits && on_time && is_idle(entry)) {
            let (job, generation) = (name.to_string(), entry.generation);
            self.queue.push(fire_ms, Due::Slot { job, generation, slot_ms });
            return;
        }
        let schedule = entry.def.spec.timing.schedule.as_ref();
        let next =
            schedule.and_then(|s| s.next_after(to_utc(slot_ms))).map(|t| t.timestamp_millis());
        // Idle and on time: the overlap, breaker and deadline policies would start it.
        let at = AttemptOf::slot(name, slot_ms, fire_ms, TriggerKind::Schedule);
        self.dispatch(name, Dispatch { armed: true, ..Dispatch::of(at) });
        if let Some(next) = next {
            self.queue_slot(name, next, now);
        }
    }

    /// The claim sent ahead for this slot, for the run about to start it; `None` if there
    /// is none, or it no longer fits (another version, or not a plain scheduled start), in
    /// which case it is released and the run claims afresh.
    pub(super) fn take_claim_ahead(
        &mut self,
        name: &str,
        slot_ms: Option<i64>,
        attempt: u32,
        trigger: TriggerKind,
    ) -> Option<ClaimAhead> {
        let entry = self.jobs.get_mut(name)?;
        if slot_ms.is_none() || attempt != 1 {
            return None;
        }
        if entry.claimed_ahead.as_ref()?.slot_ms != slot_ms? {
            return None;
        }
        let ahead = entry.claimed_ahead.take()?;
        if ahead.version == entry.def.version && trigger == TriggerKind::Schedule {
            return Some(ahead);
        }
        self.release(name, ahead);
        None
    }

    /// Finishes the claimed-ahead row of a slot among `slots` that does not run (skipped,
    /// missed) with that status; returns the slots that still need a row of their own.
    pub(super) fn settle_claimed_slot(
        &mut self,
        name: &str,
        slots: &[i64],
        reason: SlotReason,
    ) -> Vec<i64> {
        let now = self.now();
        let Some(entry) = self.jobs.get_mut(name) else { return slots.to_vec() };
        let Some(claimed) = entry.claimed_ahead.as_ref().map(|a| a.slot_ms) else {
            return slots.to_vec();
        };
        if !slots.contains(&claimed) {
            return slots.to_vec();
        }
        let ahead = entry.claimed_ahead.take().expect("checked above");
        let status = reason.status();
        let finish = RunFinish {
            status,
            reason: reason.as_str().to_string(),
            outcome: status.as_str().to_string(),
            ..empty_finish(now)
        };
        let job = name.to_string();
        self.recorder.finish(ahead.run_id, finish, move |recorded| {
            if let Err(err) = recorded {
                tracing::error!(job = %job, slot = claimed, "cannot record the slot: {err}");
            }
        });
        slots.iter().copied().filter(|&s| s != claimed).collect()
    }

    /// After a slot's turn: a claim sent ahead that neither started nor waits in the job's
    /// queue is not going to be used.
    pub(super) fn drop_unused_claim_ahead(&mut self, name: &str) {
        let Some(entry) = self.jobs.get(name) else { return };
        let Some(claimed) = entry.claimed_ahead.as_ref().map(|a| a.slot_ms) else { return };
        let waits = entry
            .waiting
            .iter()
            .any(|w| matches!(w, Waiting::Slot { slot_ms, .. } if *slot_ms == claimed));
        if !waits {
            self.release_claim_ahead(name);
        }
    }

    /// Releases the job's claim sent ahead, if any (pause, reload, removal).
    pub(super) fn release_claim_ahead(&mut self, name: &str) {
        if let Some(ahead) = self.jobs.get_mut(name).and_then(|e| e.claimed_ahead.take()) {
            self.release(name, ahead);
        }
    }

    fn release(&self, name: &str, ahead: ClaimAhead) {
        release_then(&self.recorder, name, ahead, || {});
    }

    /// Shutdown: releases every claim sent ahead and waits until the store has applied them,
    /// so a restart finds those slots unclaimed.
    pub(super) async fn release_all_claims_ahead(&mut self) {
        let (applied_tx, mut applied) = mpsc::unbounded_channel();
        let mut pending = 0usize;
        for (name, entry) in self.jobs.iter_mut() {
            let Some(ahead) = entry.claimed_ahead.take() else { continue };
            pending += 1;
            let applied_tx = applied_tx.clone();
            release_then(&self.recorder, name, ahead, move || {
                let _ = applied_tx.send(());
            });
        }
        let deadline = tokio::time::Instant::now() + RELEASE_WAIT;
        while pending > 0 {
            match tokio::time::timeout_at(deadline, applied.recv()).await {
                Ok(Some(())) => pending -= 1,
                _ => break,
            }
        }
        if pending > 0 {
            tracing::warn!(
                pending,
                "claims taken ahead not released in time; they will be recovered as interrupted"
            );
        }
    }
}

/// Hands the release of a claim sent ahead to the store writer; `applied` runs once it is.
fn release_then(
    recorder: &Recorder,
    name: &str,
    ahead: ClaimAhead,
    applied: impl FnOnce() + Send + 'static,
) {
    let (job, slot) = (name.to_string(), ahead.slot_ms);
    tracing::debug!(job = %job, slot, "claim taken ahead of the slot released");
    recorder.release(ahead.run_id, move |released| {
        if let Err(err) = released {
            tracing::error!(job = %job, slot, "cannot release the slot's claim: {err}");
        }
        applied();
    });
}

/// Whether a slot of the job due now would start at once under any overlap policy.
fn will_start_now(entry: &JobEntry) -> bool {
    is_idle(entry) && entry.claimed_ahead.is_none()
}

/// Would start at once but for runs of its own still going (that usually end soon).
fn is_idle_but_running(entry: &JobEntry) -> bool {
    !entry.running.is_empty() && entry.claimed_ahead.is_none() && nothing_else_in_the_way(entry)
}

/// Not paused, nothing running or waiting, breaker closed.
fn is_idle(entry: &JobEntry) -> bool {
    entry.running.is_empty() && nothing_else_in_the_way(entry)
}

/// Not paused, nothing waiting, breaker closed.
fn nothing_else_in_the_way(entry: &JobEntry) -> bool {
    entry.paused.is_none()
        && entry.waiting.is_empty()
        && entry.breaker.state == BreakerState::Closed
}
