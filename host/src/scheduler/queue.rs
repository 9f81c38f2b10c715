//! The timer queue: a min-heap of due times over all jobs (O(log n) per fire).
//!
//! Each job keeps at most one slot entry in the queue (its next slot) plus any pending
//! retries. Entries carry the job's generation at the time they were queued; reloading or
//! removing a job bumps the generation, so stale entries are dropped when they come due
//! instead of being searched for and removed.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// What comes due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Due {
    /// The job's next scheduled slot (nominal instant, ms).
    Slot { job: String, generation: u64, slot_ms: i64 },
    /// The job's next slot, the claim-ahead time before it fires (`actor/claim_ahead.rs`):
    /// its claim may be sent to the store now (then it is queued again as `Slot`).
    ClaimAhead { job: String, generation: u64, slot_ms: i64 },
    /// The job's next slot, claimed ahead, a few ms before it fires (`actor/claim_ahead.rs`): its
    /// run may be dispatched now, to wait for the instant itself (else it is queued again
    /// as `Slot`).
    Arm { job: String, generation: u64, slot_ms: i64 },
    /// Another attempt of a failed or interrupted run.
    Retry(RetryPlan),
    /// The job's next backfill slot may start (rate-limited, S5).
    Backfill { job: String },
}

/// Everything needed to start attempt `attempt` of an earlier run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RetryPlan {
    pub(crate) job: String,
    /// The slot being retried; `None` for a manual run.
    pub(crate) slot_ms: Option<i64>,
    pub(crate) scheduled_at_ms: i64,
    pub(crate) attempt: u32,
    pub(crate) idempotency_key: String,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    due_ms: i64,
    /// Insertion order breaks ties, so equal due times fire first-in first-out.
    seq: u64,
}

/// Min-heap of [`Due`] entries by due time.
#[derive(Default)]
pub(crate) struct TimerQueue {
    heap: BinaryHeap<Reverse<(Key, Entry)>>,
    seq: u64,
}

/// Wrapper so the heap never compares payloads (only keys, which are unique).
#[derive(Debug)]
struct Entry(Due);

impl PartialEq for Entry {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

impl TimerQueue {
    pub(crate) fn push(&mut self, due_ms: i64, due: Due) {
        self.seq += 1;
        self.heap.push(Reverse((Key { due_ms, seq: self.seq }, Entry(due))));
    }

    /// The earliest due time, if any.
    pub(crate) fn next_due_ms(&self) -> Option<i64> {
        self.heap.peek().map(|Reverse((key, _))| key.due_ms)
    }

    /// Removes and returns the earliest entry if it is due at `now_ms`.
    pub(crate) fn pop_due(&mut self, now_ms: i64) -> Option<(i64, Due)> {
        if self.next_due_ms()? > now_ms {
            return None;
        }
        self.heap.pop().map(|Reverse((key, Entry(due)))| (key.due_ms, due))
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(job: &str, slot_ms: i64) -> Due {
        Due::Slot { job: job.into(), generation: 0, slot_ms }
    }

    #[test]
    fn pops_in_due_order_and_fifo_on_ties() {
        let mut queue = TimerQueue::default();
        queue.push(30, slot("c", 30));
        queue.push(10, slot("a", 10));
        queue.push(10, slot("b", 10));
        assert_eq!(queue.next_due_ms(), Some(10));
        assert_eq!(queue.pop_due(5), None);
        assert_eq!(queue.pop_due(10), Some((10, slot("a", 10))));
        assert_eq!(queue.pop_due(10), Some((10, slot("b", 10))));
        assert_eq!(queue.pop_due(29), None);
        assert_eq!(queue.pop_due(100), Some((30, slot("c", 30))));
        assert_eq!(queue.len(), 0);
    }
}
