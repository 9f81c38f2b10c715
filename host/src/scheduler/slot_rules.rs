//! Slot policies as pure functions (M2, M4, S4): what to do with missed slots, with a slot
//! that arrives while the job still runs, when to retry, and the circuit breaker.
//!
//! Nothing here reads a clock or touches the store: the scheduler passes times in and
//! carries out the decision, so every rule is unit-tested on plain numbers.

use std::time::Duration;

use crate::config::{BreakerPolicy, Misfire, Overlap, RetryPolicy};
use crate::words::{BreakerState, SlotReason};

/// What to do with slots that were passed over (host down, clock jumped forward).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct MisfirePlan {
    /// Slots to run now as catch-up runs, oldest first.
    pub(crate) run: Vec<i64>,
    /// Slots to record as `missed` (with reason `missed:misfire`).
    pub(crate) missed: Vec<i64>,
}

/// Splits missed slots (oldest first) into catch-up runs and recorded misses.
pub(crate) fn plan_misfire(missed_slots: &[i64], policy: Misfire, max_catchup: u32) -> MisfirePlan {
    let keep = match policy {
        Misfire::Skip => 0,
        Misfire::Latest => 1,
        Misfire::All => max_catchup as usize,
    };
    let split = missed_slots.len().saturating_sub(keep);
    MisfirePlan { run: missed_slots[split..].to_vec(), missed: missed_slots[..split].to_vec() }
}

/// What to do with a slot that comes due while runs of the same job are in flight.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum OverlapDecision {
    /// Start it now.
    Start,
    /// Keep it waiting until a run finishes.
    Buffer,
    /// Interrupt the running ones (after a grace period), then start.
    CancelOthers,
    /// Record it as skipped with this reason.
    Skip(SlotReason),
}

/// Most slots `buffer-all` keeps waiting; beyond this they are skipped and counted.
pub(crate) const BUFFER_ALL_LIMIT: usize = 100;

/// Applies the overlap policy (M2). `running` counts runs in flight (queued for a worker
/// included); `waiting` counts slots already buffered.
pub(crate) fn decide_overlap(
    policy: Overlap,
    running: usize,
    waiting: usize,
    max_concurrent: u32,
) -> OverlapDecision {
    // Nothing running: this slot goes first (waiting slots are drained before new ones
    // arrive, so an idle job with a queue only happens while the queue is being drained).
    if running == 0 {
        return OverlapDecision::Start;
    }
    match policy {
        Overlap::Skip => OverlapDecision::Skip(SlotReason::Overlap),
        Overlap::BufferOne if waiting == 0 => OverlapDecision::Buffer,
        Overlap::BufferOne => OverlapDecision::Skip(SlotReason::Overlap),
        Overlap::BufferAll if waiting < BUFFER_ALL_LIMIT => OverlapDecision::Buffer,
        Overlap::BufferAll => OverlapDecision::Skip(SlotReason::BufferFull),
        Overlap::CancelOther => OverlapDecision::CancelOthers,
        Overlap::Allow if running < max_concurrent as usize => OverlapDecision::Start,
        Overlap::Allow => OverlapDecision::Skip(SlotReason::MaxConcurrent),
    }
}

/// Delay before attempt `attempt + 1`, or `None` when `attempt` was the last one allowed.
/// `unit` is a random number in `[0, 1)` for the jitter.
pub(crate) fn retry_delay(policy: &RetryPolicy, attempt: u32, unit: f64) -> Option<Duration> {
    if attempt >= policy.max_attempts {
        return None;
    }
    let doublings = attempt.saturating_sub(1).min(30);
    let base = policy.backoff.saturating_mul(1 << doublings).min(policy.max_backoff);
    Some(base.mul_f64(1.0 + policy.jitter * unit.clamp(0.0, 1.0)))
}

/// Whether a slot may start under the breaker.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Run normally.
    Run,
    /// Run as the half-open probe.
    Probe,
    /// Skip: the breaker is open.
    Reject,
}

/// Consecutive failed slots and the state they lead to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Breaker {
    pub(crate) state: BreakerState,
    pub(crate) consecutive_failures: u32,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker { state: BreakerState::Closed, consecutive_failures: 0 }
    }
}

impl Breaker {
    /// Decides whether a slot due at `now_ms` may start; an expired cooldown turns half-open.
    pub(crate) fn admit(&mut self, now_ms: i64) -> Admission {
        match self.state {
            BreakerState::Closed => Admission::Run,
            BreakerState::Open { until_ms } if now_ms < until_ms => Admission::Reject,
            BreakerState::Open { .. } => {
                self.state = BreakerState::HalfOpen;
                Admission::Probe
            }
            // One probe at a time: further slots wait for its verdict.
            BreakerState::HalfOpen => Admission::Reject,
        }
    }

    /// Records the final result of a slot (after its retries). Returns the new state when
    /// it changed, so the scheduler can record and log the transition.
    pub(crate) fn record(
        &mut self,
        succeeded: bool,
        now_ms: i64,
        policy: Option<&BreakerPolicy>,
    ) -> Option<BreakerState> {
        let before = self.state;
        if succeeded {
            self.consecutive_failures = 0;
            self.state = BreakerState::Closed;
        } else {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
            if let Some(policy) = policy {
                let trips = self.state == BreakerState::HalfOpen
                    || self.consecutive_failures >= policy.failures;
                if trips {
                    self.state = BreakerState::Open {
                        until_ms: now_ms + policy.cooldown.as_millis() as i64,
                    };
                }
            }
        }
        (self.state != before).then_some(self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misfire_policies_split_missed_slots() {
        let missed = [1, 2, 3, 4, 5];
        assert_eq!(
            plan_misfire(&missed, Misfire::Skip, 10),
            MisfirePlan { run: vec![], missed: missed.to_vec() }
        );
        assert_eq!(
            plan_misfire(&missed, Misfire::Latest, 10),
            MisfirePlan { run: vec![5], missed: vec![1, 2, 3, 4] }
        );
        assert_eq!(
            plan_misfire(&missed, Misfire::All, 3),
            MisfirePlan { run: vec![3, 4, 5], missed: vec![1, 2] }
        );
        assert_eq!(plan_misfire(&missed, Misfire::All, 10).run, missed.to_vec());
        assert_eq!(plan_misfire(&[], Misfire::Latest, 10), MisfirePlan::default());
    }

    #[test]
    fn overlap_policies() {
        use OverlapDecision::*;
        assert_eq!(decide_overlap(Overlap::Skip, 0, 0, 1), Start);
        assert_eq!(decide_overlap(Overlap::Skip, 0, 3, 1), Start, "draining the queue");
        assert_eq!(decide_overlap(Overlap::Skip, 1, 0, 1), Skip(SlotReason::Overlap));
        assert_eq!(decide_overlap(Overlap::BufferOne, 1, 0, 1), Buffer);
        assert_eq!(decide_overlap(Overlap::BufferOne, 1, 1, 1), Skip(SlotReason::Overlap));
        assert_eq!(decide_overlap(Overlap::BufferAll, 1, 99, 1), Buffer);
        assert_eq!(decide_overlap(Overlap::BufferAll, 1, 100, 1), Skip(SlotReason::BufferFull));
        assert_eq!(decide_overlap(Overlap::CancelOther, 1, 0, 1), CancelOthers);
        assert_eq!(decide_overlap(Overlap::Allow, 2, 0, 3), Start);
        assert_eq!(decide_overlap(Overlap::Allow, 3, 0, 3), Skip(SlotReason::MaxConcurrent));
    }

    #[test]
    fn retries_back_off_and_stop() {
        let policy = RetryPolicy {
            max_attempts: 4,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(3),
            jitter: 0.5,
        };
        assert_eq!(retry_delay(&policy, 1, 0.0), Some(Duration::from_secs(1)));
        assert_eq!(retry_delay(&policy, 2, 0.0), Some(Duration::from_secs(2)));
        assert_eq!(
            retry_delay(&policy, 3, 0.0),
            Some(Duration::from_secs(3)),
            "capped by max_backoff"
        );
        assert_eq!(retry_delay(&policy, 4, 0.0), None, "attempt 4 was the last");
        assert_eq!(
            retry_delay(&policy, 1, 1.0),
            Some(Duration::from_millis(1500)),
            "jitter adds up to 50%"
        );
    }

    #[test]
    fn breaker_opens_probes_and_closes() {
        let policy = BreakerPolicy { failures: 2, cooldown: Duration::from_secs(10) };
        let mut breaker = Breaker::default();
        assert_eq!(breaker.record(false, 0, Some(&policy)), None);
        assert_eq!(
            breaker.record(false, 1_000, Some(&policy)),
            Some(BreakerState::Open { until_ms: 11_000 })
        );
        assert_eq!(breaker.admit(5_000), Admission::Reject);
        assert_eq!(breaker.admit(11_000), Admission::Probe);
        assert_eq!(breaker.admit(11_500), Admission::Reject, "one probe at a time");
        assert_eq!(
            breaker.record(false, 12_000, Some(&policy)),
            Some(BreakerState::Open { until_ms: 22_000 })
        );
        assert_eq!(breaker.admit(22_000), Admission::Probe);
        assert_eq!(breaker.record(true, 23_000, Some(&policy)), Some(BreakerState::Closed));
        assert_eq!(breaker.consecutive_failures, 0);
        assert_eq!(breaker.admit(23_001), Admission::Run);
    }

    #[test]
    fn without_a_policy_failures_are_only_counted() {
        let mut breaker = Breaker::default();
        for _ in 0..10 {
            assert_eq!(breaker.record(false, 0, None), None);
        }
        assert_eq!(breaker.consecutive_failures, 10);
        assert_eq!(breaker.admit(0), Admission::Run);
    }
}
