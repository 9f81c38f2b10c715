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

/// The wall clock moving this much more (or less) than the monotonic clock between two
/// readings is a jump (NTP step, suspend, an operator setting the time).
pub(crate) const JUMP_THRESHOLD_MS: i64 = 1_000;

/// What the wall clock did between two readings, beyond what the monotonic clock did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Jump {
    /// Nothing past [`JUMP_THRESHOLD_MS`].
    None,
    /// Forward by this many ms: the slots it skipped go through the misfire policy (S2).
    Forward(i64),
    /// Back by this many ms (negative): slots already claimed do not run again.
    Back(i64),
}

/// Tells a wall-clock jump from time passing, by comparing it with the monotonic clock.
pub(crate) struct JumpDetector {
    last_wall_ms: i64,
    last_mono: std::time::Instant,
}

impl JumpDetector {
    pub(crate) fn new(wall_ms: i64, mono: std::time::Instant) -> Self {
        JumpDetector { last_wall_ms: wall_ms, last_mono: mono }
    }

    /// The jump between the previous reading and this one.
    pub(crate) fn observe(&mut self, wall_ms: i64, mono: std::time::Instant) -> Jump {
        let passed = mono.saturating_duration_since(self.last_mono).as_millis() as i64;
        let drift = (wall_ms - self.last_wall_ms) - passed;
        (self.last_wall_ms, self.last_mono) = (wall_ms, mono);
        match drift {
            d if d > JUMP_THRESHOLD_MS => Jump::Forward(d),
            d if d < -JUMP_THRESHOLD_MS => Jump::Back(d),
            _ => Jump::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_are_wall_time_beyond_monotonic_time() {
        let start = std::time::Instant::now();
        let mut jumps = JumpDetector::new(100_000, start);
        let mono = |ms| start + Duration::from_millis(ms);
        assert_eq!(jumps.observe(101_000, mono(1_000)), Jump::None, "time passing");
        assert_eq!(jumps.observe(101_900, mono(1_000)), Jump::None, "within the threshold");
        assert_eq!(jumps.observe(161_900, mono(2_000)), Jump::Forward(59_000));
        assert_eq!(jumps.observe(151_900, mono(2_000)), Jump::Back(-10_000));
        assert_eq!(
            jumps.observe(152_900, mono(3_000)),
            Jump::None,
            "measured from the last reading"
        );
    }
}
