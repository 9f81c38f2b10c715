//! Shutdown (S7): no new runs; running ones get the grace period, then an interrupt, and
//! their records are waited for.

use super::*;

impl Scheduler {
    /// S7: stop claiming (the loop is gone), wait up to the grace period, interrupt the rest.
    pub(super) async fn shut_down(&mut self, done_rx: &mut mpsc::UnboundedReceiver<RunDone>) {
        self.release_all_claims_ahead().await;
        tracing::info!(running = self.in_flight(), grace = ?self.config.grace, "shutting down: no new runs; waiting for running ones");
        self.wait_for_runs(done_rx, self.config.grace).await;
        let interrupt =
            Interrupt { grace: Duration::ZERO, reason: InterruptReason::ShutDown, retry: true };
        for entry in self.jobs.values() {
            for cancel in entry.running.values() {
                let _ = cancel.send(Some(interrupt.clone()));
            }
        }
        self.wait_for_runs(done_rx, INTERRUPTED_RECORD_WAIT).await;
        tracing::info!("scheduler stopped");
    }

    /// Runs in flight, all jobs together.
    pub(super) fn in_flight(&self) -> usize {
        self.jobs.values().map(|e| e.running.len()).sum()
    }

    /// Takes in the ends of runs, for at most `within`, until none is in flight.
    pub(super) async fn wait_for_runs(
        &mut self,
        done_rx: &mut mpsc::UnboundedReceiver<RunDone>,
        within: Duration,
    ) {
        let deadline = tokio::time::Instant::now() + within;
        while self.in_flight() > 0 {
            match tokio::time::timeout_at(deadline, done_rx.recv()).await {
                Ok(Some(done)) => {
                    if let Some(entry) = self.jobs.get_mut(&done.job) {
                        entry.running.remove(&done.run_key);
                    }
                }
                _ => break,
            }
        }
    }
}
