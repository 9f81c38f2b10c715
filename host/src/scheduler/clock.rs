//! The scheduler's view of wall-clock time, behind a trait so tests can move it by hand.
//!
//! Only "now" is abstracted. Waiting uses tokio's timer (monotonic, pausable in tests);
//! the loop never sleeps more than [`MAX_SLEEP`] before re-reading the wall clock, which is
//! how forward jumps (NTP step, suspend) are noticed (S2).

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Longest the loop sleeps on the monotonic clock before re-reading the wall clock.
pub(crate) const MAX_SLEEP: Duration = Duration::from_secs(1);

/// Wall-clock time in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    /// Now, in ms since the Unix epoch (UTC).
    fn now_ms(&self) -> i64;

    /// Now, in µs since the Unix epoch: for measuring start lag below a millisecond.
    fn now_us(&self) -> i64 {
        self.now_ms() * 1000
    }
}

/// The real clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
    }

    fn now_us(&self) -> i64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
    }
}

/// A clock that only moves when told to (unit tests).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock reading `start_ms`.
    pub fn new(start_ms: i64) -> Self {
        ManualClock(AtomicI64::new(start_ms))
    }

    /// Moves the clock by `by_ms` (negative moves it back).
    pub fn advance(&self, by_ms: i64) {
        self.0.fetch_add(by_ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}
