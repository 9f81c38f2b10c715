//! Failures that speak up (O7): the [`Notifier`] the scheduler and watcher call where a run
//! fails, a breaker opens or closes, a version is rolled back, slots are missed or a job's
//! edit fails to load.
//!
//! Each call is cheap and never blocks: it writes the WARN line (run failures rate-limited
//! per job by `limiter`, so a flood stays readable) and, when webhooks are configured,
//! hands a small JSON document to the delivery threads.
//!
//! # Design decision
//! The handle is a plain `Clone` struct held in the scheduler's `Services`, so each hook
//! point is one line beside the metric it already updates; everything slow (HTTP, retries,
//! the summary of suppressed failures) happens on threads of this module.

mod limiter;

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::config::JobSpec;
use crate::store::{RunFinish, RunStatus};
use limiter::Limiter;

/// How often suppressed failures are summed up (and forgotten windows dropped).
const TICK: Duration = Duration::from_secs(1);

/// The handle the host's parts report events through. Cloning shares it.
#[derive(Clone, Default)]
pub struct Notifier {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// A std mutex: held for a map lookup, never across an await or I/O.
    limiter: Mutex<Limiter>,
}

/// The first line of `text` (a run's reason may carry a guest's whole backtrace).
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

impl Notifier {
    /// A notifier that logs; [`Notifier::start_ticker`] makes it sum up suppressed failures.
    pub fn new() -> Self {
        Notifier::default()
    }

    /// Starts the thread that sums up suppressed failures once their window closes; it ends
    /// when the last handle is dropped.
    pub fn start_ticker(&self) -> std::io::Result<()> {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        std::thread::Builder::new().name("sandcron-notify-tick".into()).spawn(move || {
            loop {
                std::thread::sleep(TICK);
                let Some(inner) = weak.upgrade() else { return };
                Notifier { inner }.tick(Instant::now());
            }
        })?;
        Ok(())
    }

    /// Sums up the failures each closed window suppressed.
    fn tick(&self, now: Instant) {
        let closed = self.lock_limiter().closed(now);
        for (job, count) in closed {
            self.summary(&job, count);
        }
    }

    fn lock_limiter(&self) -> std::sync::MutexGuard<'_, Limiter> {
        self.inner.limiter.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn summary(&self, job: &str, count: u32) {
        tracing::warn!(
            parent: None,
            job = %job,
            suppressed = count,
            "…and {count} more failures of {job} in the last minute (see `sandcron runs {job}`)"
        );
    }

    /// A run ended; reports it when it failed (an interrupted or missed run is no failure).
    pub fn run_failed(&self, spec: &JobSpec, run_id: &str, attempt: u32, finish: &RunFinish) {
        if finish.status != RunStatus::Failed {
            return;
        }
        let admit = self.lock_limiter().admit(&spec.name, Instant::now());
        if let Some(count) = admit.summary {
            self.summary(&spec.name, count);
        }
        if !admit.report {
            return;
        }
        let retry = if finish.retry_at_ms.is_some() { " (will retry)" } else { "" };
        tracing::warn!(
            parent: None,
            job = %spec.name,
            run = %run_id,
            attempt,
            outcome = %finish.outcome,
            "run failed: {}{retry}",
            first_line(&finish.reason)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_of_a_multi_line_reason() {
        assert_eq!(first_line("trap: boom\n  at frame 1\n  at frame 2"), "trap: boom");
        assert_eq!(first_line(""), "");
    }
}
