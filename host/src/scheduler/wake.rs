//! Waking the scheduler at a due instant to well under a millisecond, without spinning.
//!
//! tokio's timer rounds every sleep up to a whole millisecond, so the loop sleeps on it
//! only until shortly before a due instant; for the rest it asks [`PreciseWake`]. One
//! thread waits on a condition variable with the exact timeout (a kernel high-resolution
//! timer: tens of µs late) and then notifies the loop. Before this the loop polled the
//! clock for the last two milliseconds, which kept a core busy whenever fires were dense
//! (1,000 jittered jobs per second: about one fire per millisecond, so always).

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

#[derive(Default)]
struct Shared {
    /// When to notify next; `None`: nothing to wait for.
    deadline: Option<Instant>,
    stop: bool,
}

/// A one-thread precise alarm for the scheduler loop; stops its thread when dropped.
pub(crate) struct PreciseWake {
    shared: Arc<(Mutex<Shared>, Condvar)>,
    notify: Arc<Notify>,
}

impl PreciseWake {
    /// Starts the alarm thread.
    pub(crate) fn start() -> std::io::Result<PreciseWake> {
        let shared = Arc::new((Mutex::new(Shared::default()), Condvar::new()));
        let notify = Arc::new(Notify::new());
        let (thread_shared, thread_notify) = (shared.clone(), notify.clone());
        std::thread::Builder::new()
            .name("sandcron-wake".into())
            .spawn(move || alarm_loop(&thread_shared, &thread_notify))?;
        Ok(PreciseWake { shared, notify })
    }

    /// Resolves `after` from now (at once if zero). A wake-up left over from an earlier
    /// call may resolve it early; the loop then just looks at the clock again.
    pub(crate) async fn sleep(&self, after: Duration) {
        if after.is_zero() {
            return tokio::task::yield_now().await;
        }
        let notified = self.notify.notified();
        {
            let (lock, signal) = &*self.shared;
            let mut shared = lock.lock().unwrap_or_else(|p| p.into_inner());
            shared.deadline = Some(Instant::now() + after);
            signal.notify_one();
        }
        notified.await;
    }
}

impl Drop for PreciseWake {
    fn drop(&mut self) {
        let (lock, signal) = &*self.shared;
        lock.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
        signal.notify_one();
    }
}

fn alarm_loop(shared: &(Mutex<Shared>, Condvar), notify: &Notify) {
    tighten_timer_slack();
    let (lock, signal) = shared;
    let mut state = lock.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        if state.stop {
            return;
        }
        match state.deadline {
            None => state = signal.wait(state).unwrap_or_else(|p| p.into_inner()),
            Some(deadline) => {
                let now = Instant::now();
                if now >= deadline {
                    state.deadline = None;
                    notify.notify_one();
                    continue;
                }
                state =
                    signal.wait_timeout(state, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
            }
        }
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
        let wake = PreciseWake::start().unwrap();
        for micros in [1500, 300, 2000, 50, 1000] {
            let started = Instant::now();
            let after = Duration::from_micros(micros);
            tokio::time::timeout(Duration::from_secs(5), wake.sleep(after))
                .await
                .expect("the alarm wakes the sleeper");
            assert!(started.elapsed() >= after, "woke early: {:?} < {after:?}", started.elapsed());
        }
        wake.sleep(Duration::ZERO).await;
    }
}
