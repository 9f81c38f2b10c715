//! Per-job rate limit for failure reports, so a job failing every second writes a readable
//! log: the first [`BURST`] failures of a job in a window are reported one by one, the rest
//! are counted and summed up once when the window closes.
//!
//! Pure (time is passed in), so the tests below drive it without a clock. Each window keeps
//! a tag from its latest failure (the job's notify settings), handed back with its summary.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The window a job's failure burst is counted in.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);
/// Failures reported one by one per job and window.
pub(crate) const BURST: u32 = 5;

/// One job's current window.
#[derive(Debug)]
struct Window<T> {
    started: Instant,
    reported: u32,
    suppressed: u32,
    tag: T,
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
pub(crate) struct Limiter<T> {
    burst: u32,
    window: Duration,
    jobs: HashMap<String, Window<T>>,
}

impl<T> Default for Limiter<T> {
    fn default() -> Self {
        Limiter { burst: BURST, window: WINDOW, jobs: HashMap::new() }
    }
}

impl<T> Limiter<T> {
    /// A job failed at `now`; `tag` is the tag of a window this opens ([`Limiter::retag`]
    /// replaces it later).
    pub(crate) fn admit(&mut self, job: &str, now: Instant, tag: T) -> Admit {
        let window = self.window;
        let entry = self.jobs.entry(job.to_string()).or_insert(Window {
            started: now,
            reported: 0,
            suppressed: 0,
            tag,
        });
        let mut summary = None;
        if now.duration_since(entry.started) >= window {
            summary = (entry.suppressed > 0).then_some(entry.suppressed);
            (entry.started, entry.reported, entry.suppressed) = (now, 0, 0);
        }
        let report = entry.reported < self.burst;
        if report {
            entry.reported += 1;
        } else {
            entry.suppressed += 1;
        }
        Admit { report, summary }
    }

    /// Replaces the tag of `job`'s window (the job's settings at its latest failure).
    pub(crate) fn retag(&mut self, job: &str, tag: T) {
        if let Some(entry) = self.jobs.get_mut(job) {
            entry.tag = tag;
        }
    }

    /// Windows closed by `now` with unreported failures: (job, count, tag), each once.
    /// Every closed window is forgotten, so the map holds only recent failers.
    pub(crate) fn closed(&mut self, now: Instant) -> Vec<(String, u32, T)> {
        let window = self.window;
        let (closed, open): (Vec<_>, Vec<_>) = std::mem::take(&mut self.jobs)
            .into_iter()
            .partition(|(_, entry)| now.duration_since(entry.started) >= window);
        self.jobs = open.into_iter().collect();
        let mut due: Vec<(String, u32, T)> = closed
            .into_iter()
            .filter(|(_, entry)| entry.suppressed > 0)
            .map(|(job, entry)| (job, entry.suppressed, entry.tag))
            .collect();
        due.sort_by(|a, b| a.0.cmp(&b.0));
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
            let admit = limiter.admit("a", t0 + Duration::from_millis(i as u64), i);
            assert_eq!(admit, Admit { report: true, summary: None });
        }
        for _ in 0..7 {
            assert!(!limiter.admit("a", t0 + Duration::from_secs(1), 0).report);
        }
        limiter.retag("a", 16);
        // Another job has its own budget.
        assert!(limiter.admit("b", t0 + Duration::from_secs(1), 0).report);
        assert!(limiter.closed(t0 + Duration::from_secs(59)).is_empty());
        // The summary carries the latest tag.
        assert_eq!(limiter.closed(t0 + WINDOW), vec![("a".to_string(), 7, 16)]);
        assert!(limiter.closed(t0 + WINDOW * 2).is_empty(), "a summary is given once");
    }

    #[test]
    fn a_failure_after_the_window_carries_the_summary() {
        let mut limiter = Limiter::default();
        let t0 = Instant::now();
        for _ in 0..BURST + 2 {
            limiter.admit("a", t0, ());
        }
        let admit = limiter.admit("a", t0 + WINDOW, ());
        assert_eq!(admit, Admit { report: true, summary: Some(2) });
        assert!(limiter.closed(t0 + WINDOW + Duration::from_secs(1)).is_empty());
    }
}
