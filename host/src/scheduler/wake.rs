//! Waking tasks at a due instant to well under a millisecond, without spinning.
//!
//! tokio's timer rounds every sleep up to a whole millisecond, so the scheduler loop sleeps
//! on it only until shortly before a due instant, and a run armed ahead of its instant
//! (`actor/claim_ahead.rs`) waits for the instant itself; both ask [`PreciseTimer`] for the rest.
//! One thread holds every pending deadline in a heap, waits on a condition variable with
//! the exact timeout to the earliest (a kernel high-resolution timer: tens of µs late), and
//! wakes the tasks whose deadline has come. Before this the loop polled the clock for the
//! last two milliseconds, which kept a core busy whenever fires were dense (1,000 jittered
//! jobs per second: about one fire per millisecond, so always).

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// A task to wake at `at`; the heap's top is the earliest.
struct Alarm {
    at: Instant,
    waker: Waker,
}

impl PartialEq for Alarm {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl Eq for Alarm {}
impl PartialOrd for Alarm {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Alarm {
    fn cmp(&self, other: &Self) -> Ordering {
        other.at.cmp(&self.at) // reversed: BinaryHeap is a max-heap
    }
}

#[derive(Default)]
struct Shared {
    alarms: BinaryHeap<Alarm>,
    stop: bool,
}

/// A one-thread precise timer for the scheduler; stops its thread when dropped.
pub(crate) struct PreciseTimer {
    shared: Arc<(Mutex<Shared>, Condvar)>,
}

impl PreciseTimer {
    /// Starts the alarm thread.
    pub(crate) fn start() -> std::io::Result<PreciseTimer> {
        let shared = Arc::new((Mutex::new(Shared::default()), Condvar::new()));
        let thread_shared = shared.clone();
        std::thread::Builder::new()
            .name("sandcron-wake".into())
            .spawn(move || alarm_loop(&thread_shared))?;
        Ok(PreciseTimer { shared })
    }

    /// Resolves `after` from now (at once, after a yield, if zero).
    pub(crate) async fn sleep(&self, after: Duration) {
        if after.is_zero() {
            return tokio::task::yield_now().await;
        }
        self.sleep_until(Instant::now() + after).await
    }

    /// Resolves at `deadline`, never before. A dropped sleep leaves its alarm to fire
    /// unheard: at most one spurious wake-up of the task that dropped it.
    pub(crate) fn sleep_until(&self, deadline: Instant) -> PreciseSleep<'_> {
        PreciseSleep { timer: self, deadline }
    }

    fn register(&self, at: Instant, waker: Waker) {
        let (lock, signal) = &*self.shared;
        let mut shared = lock.lock().unwrap_or_else(|p| p.into_inner());
        let earliest = shared.alarms.peek().is_none_or(|top| at < top.at);
        shared.alarms.push(Alarm { at, waker });
        if earliest {
            signal.notify_one();
        }
    }
}

impl Drop for PreciseTimer {
    fn drop(&mut self) {
        let (lock, signal) = &*self.shared;
        lock.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
        signal.notify_one();
    }
}

/// The future of [`PreciseTimer::sleep_until`].
pub(crate) struct PreciseSleep<'a> {
    timer: &'a PreciseTimer,
    deadline: Instant,
}

impl Future for PreciseSleep<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        self.timer.register(self.deadline, cx.waker().clone());
        Poll::Pending
    }
}

fn alarm_loop(shared: &(Mutex<Shared>, Condvar)) {
    tighten_timer_slack();
    let (lock, signal) = shared;
    let mut state = lock.lock().unwrap_or_else(|p| p.into_inner());
    let mut due = Vec::new();
    loop {
        if state.stop {
            return;
        }
        let now = Instant::now();
        while state.alarms.peek().is_some_and(|top| top.at <= now) {
            due.extend(state.alarms.pop().map(|alarm| alarm.waker));
        }
        if !due.is_empty() {
            drop(state);
            due.drain(..).for_each(Waker::wake);
            state = lock.lock().unwrap_or_else(|p| p.into_inner());
            continue;
        }
        state = match state.alarms.peek().map(|top| top.at - now) {
            None => signal.wait(state).unwrap_or_else(|p| p.into_inner()),
            Some(left) => signal.wait_timeout(state, left).unwrap_or_else(|p| p.into_inner()).0,
        };
    }
}

/// Linux delays a thread's timer expiries by up to its timer slack (50 µs by default) so it
/// can batch wake-ups; this thread exists to be on time, so it asks for the minimum. Measured
/// on the 2-core VM: 1.5 ms waits p50 109 -> 58 µs late; the scheduler bench's wake-up at each
/// second, p50 about 150 -> 90 µs late.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn tighten_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes a plain integer and affects only the calling thread.
    let _ = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
}

#[cfg(not(target_os = "linux"))]
fn tighten_timer_slack() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wakes_after_each_deadline_never_before() {
        // How late it wakes is measured by the scheduler bench, not asserted here.
        let timer = PreciseTimer::start().unwrap();
        for micros in [1500, 300, 2000, 50, 1000] {
            let started = Instant::now();
            let after = Duration::from_micros(micros);
            tokio::time::timeout(Duration::from_secs(5), timer.sleep(after))
                .await
                .expect("the alarm wakes the sleeper");
            assert!(started.elapsed() >= after, "woke early: {:?} < {after:?}", started.elapsed());
        }
        timer.sleep(Duration::ZERO).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wakes_many_sleepers_each_at_its_own_deadline() {
        let timer = Arc::new(PreciseTimer::start().unwrap());
        let start = Instant::now();
        // Registered out of order, some sharing a deadline, one dropped before it fires.
        let offsets_us = [3000, 500, 2000, 500, 1200, 4000, 800];
        let sleepers = offsets_us.map(|us| {
            let timer = timer.clone();
            let deadline = start + Duration::from_micros(us);
            tokio::spawn(async move {
                timer.sleep_until(deadline).await;
                Instant::now() >= deadline
            })
        });
        // Far from every other deadline, so a loaded machine that wakes the timeout late
        // cannot let this sleep end first: only its dropped registration is under test.
        let dropped = tokio::time::timeout(
            Duration::from_micros(100),
            timer.sleep_until(start + Duration::from_secs(60)),
        );
        assert!(dropped.await.is_err(), "a 60 s sleep cannot end within 100 µs");
        for sleeper in sleepers {
            let on_time = tokio::time::timeout(Duration::from_secs(5), sleeper)
                .await
                .expect("every sleeper is woken")
                .unwrap();
            assert!(on_time, "a sleeper was woken before its deadline");
        }
    }
}
