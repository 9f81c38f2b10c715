//! Per-job rate limit for failure reports, so a job failing every second writes a readable
//! log: the first [`Limiter::burst`] failures of a job in a window are reported one by one,
//! the rest are counted and summed up in one line when the window closes.
//!
//! Pure (time is passed in), so the table tests below drive it without a clock.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The window a job's failure burst is counted in.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);
/// Failures reported one by one per job and window.
pub(crate) const BURST: u32 = 5;

/// One job's current window.
#[derive(Debug)]
struct Window {
    started: Instant,
    reported: u32,
    suppressed: u32,
}

/// What to do with one failure.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Admit {
    /// Report this failure.
    pub(crate) report: bool,
    /// The previous window of this job closed with this many failures unreported: say so
    /// first.
    pub(crate) summary: Option<u32>,
}

/// Failure bursts by job.
#[derive(Debug)]
pub(crate) struct Limiter {
    burst: u32,
    window: Duration,
    jobs: HashMap<String, Window>,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter { burst: BURST, window: WINDOW, jobs: HashMap::new() }
    }
}

impl Limiter {
    /// A job failed at `now`.
    pub(crate) fn admit(&mut self, job: &str, now: Instant) -> Admit {
        let window = self.window;
        let entry = self.jobs.entry(job.to_string()).or_insert(Window {
            started: now,
            reported: 0,
            suppressed: 0,
        });
        let mut summary = None;
        if now.duration_since(entry.started) >= window {
            summary = (entry.suppressed > 0).then_some(entry.suppressed);
            *entry = Window { started: now, reported: 0, suppressed: 0 };
        }
        let report = entry.reported < self.burst;
        if report {
            entry.reported += 1;
        } else {
            entry.suppressed += 1;
        }
        Admit { report, summary }
    }

    /// Windows closed by `now` with unreported failures: (job, count), each once. Jobs
    /// whose window closed quietly are forgotten, so the map holds only recent failers.
    pub(crate) fn closed(&mut self, now: Instant) -> Vec<(String, u32)> {
        let window = self.window;
        let mut due = Vec::new();
        self.jobs.retain(|job, entry| {
            if now.duration_since(entry.started) < window {
                return true;
            }
            if entry.suppressed > 0 {
                due.push((job.clone(), entry.suppressed));
            }
            false
        });
        due.sort();
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_reported_then_counted_then_summed_up_once() {
        let mut limiter = Limiter::default();
        let t0 = Instant::now();
        for i in 0..BURST {
            let admit = limiter.admit("a", t0 + Duration::from_millis(i as u64));
            assert_eq!(admit, Admit { report: true, summary: None });
        }
        for _ in 0..7 {
            assert!(!limiter.admit("a", t0 + Duration::from_secs(1)).report);
        }
        // Another job has its own budget.
        assert!(limiter.admit("b", t0 + Duration::from_secs(1)).report);
        assert!(limiter.closed(t0 + Duration::from_secs(59)).is_empty());
        assert_eq!(limiter.closed(t0 + WINDOW), vec![("a".to_string(), 7)]);
        assert!(limiter.closed(t0 + WINDOW * 2).is_empty(), "a summary is given once");
    }

    #[test]
    fn a_failure_after_the_window_carries_the_summary() {
        let mut limiter = Limiter::default();
        let t0 = Instant::now();
        for _ in 0..BURST + 2 {
            limiter.admit("a", t0);
        }
        let admit = limiter.admit("a", t0 + WINDOW);
        assert_eq!(admit, Admit { report: true, summary: Some(2) });
        assert!(limiter.closed(t0 + WINDOW + Duration::from_secs(1)).is_empty());
    }
}
