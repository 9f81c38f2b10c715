//! The host's Prometheus metrics (O3): one [`Metrics`] per host, updated by the scheduler
//! and its run tasks, rendered as text at `/metrics`.
//!
//! Every metric is cheap to update (atomics behind a label-keyed map), so recording sits
//! on the run path. Label values are job names, outcomes and reasons: bounded sets. The
//! per-run metrics of each job are looked up once and kept ([`JobMetrics`]), so a run
//! pays one map lookup by `&str` instead of building label sets for five families.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabel {
    job: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    job: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotifyLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HostLabels {
    job: String,
    host: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    job: String,
    reason: String,
}

fn seconds_histogram() -> Histogram {
    // 0.5 ms .. ~137 min in 24 doublings: no-op runs and hour-long jobs both resolve.
    Histogram::new(exponential_buckets(0.0005, 2.0, 24))
}

fn bytes_histogram() -> Histogram {
    // 64 KiB .. 32 GiB.
    Histogram::new(exponential_buckets(65_536.0, 2.0, 20))
}

/// One job's per-run metrics: the same metrics its families hold (clones share their
/// value), so updates through these handles show in [`Metrics::render`].
struct JobMetrics {
    start_lag: Histogram,
    duration: Histogram,
    fuel: Counter,
    peak_memory: Histogram,
    /// Finished runs by outcome; a handful of entries at most.
    runs: Mutex<Vec<(String, Counter)>>,
}

/// The host's metrics.
pub struct Metrics {
    registry: Registry,
    runs: Family<OutcomeLabels, Counter>,
    duration: Family<JobLabel, Histogram, fn() -> Histogram>,
    start_lag: Family<JobLabel, Histogram, fn() -> Histogram>,
    fuel: Family<JobLabel, Counter>,
    peak_memory: Family<JobLabel, Histogram, fn() -> Histogram>,
    not_run: Family<ReasonLabels, Counter>,
    running: Gauge,
    queued: Gauge,
    breaker_open: Family<JobLabel, Gauge>,
    paused: Family<JobLabel, Gauge>,
    reload_errors: Family<JobLabel, Counter>,
    outbound: Family<HostLabels, Counter>,
    outbound_refused: Family<JobLabel, Counter>,
    notifications: Family<NotifyLabel, Counter>,
    per_job: RwLock<HashMap<String, Arc<JobMetrics>>>,
    store_healthy: Gauge,
    store_errors: Family<OpLabel, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabel {
    op: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric (prefix `sandcron_`).
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("sandcron");
        let metrics = Metrics {
            runs: Family::default(),
            duration: Family::new_with_constructor(seconds_histogram as fn() -> Histogram),
            start_lag: Family::new_with_constructor(seconds_histogram as fn() -> Histogram),
            fuel: Family::default(),
            peak_memory: Family::new_with_constructor(bytes_histogram as fn() -> Histogram),
            not_run: Family::default(),
            running: Gauge::default(),
            queued: Gauge::default(),
            breaker_open: Family::default(),
            paused: Family::default(),
            reload_errors: Family::default(),
            outbound: Family::default(),
            outbound_refused: Family::default(),
            notifications: Family::default(),
            per_job: RwLock::default(),
            store_healthy: Gauge::default(),
            store_errors: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "store_healthy",
            "1 while the store writes normally, 0 while it fails (disk full, read-only, corrupt, file deleted)",
            metrics.store_healthy.clone(),
        );
        registry.register(
            "store_errors",
            "Store faults by operation (run_claim, run_finish_batch, ...)",
            metrics.store_errors.clone(),
        );
        registry.register(
            "runs",
            "Finished runs by job and outcome (succeeded, guest-error, trap, limit, host-error, interrupted)",
            metrics.runs.clone(),
        );
        registry.register(
            "run_duration_seconds",
            "Wall-clock duration of finished runs",
            metrics.duration.clone(),
        );
        registry.register(
            "start_lag_seconds",
            "Actual start minus the scheduled instant (slot plus jitter)",
            metrics.start_lag.clone(),
        );
        registry.register("fuel_used", "Fuel consumed by finished runs", metrics.fuel.clone());
        registry.register(
            "peak_memory_bytes",
            "Peak linear memory of finished runs",
            metrics.peak_memory.clone(),
        );
        registry.register(
            "slots_not_run",
            "Slots recorded without running, by reason (missed:misfire, skipped:overlap, ...)",
            metrics.not_run.clone(),
        );
        registry.register("running_runs", "Runs executing now", metrics.running.clone());
        registry.register(
            "queue_depth",
            "Runs waiting for a worker plus slots buffered behind a running run",
            metrics.queued.clone(),
        );
        registry.register(
            "breaker_open",
            "1 while the job's breaker is open or half-open, else 0",
            metrics.breaker_open.clone(),
        );
        registry.register("paused", "1 while the job is paused, else 0", metrics.paused.clone());
        registry.register(
            "reload_errors",
            "Job files in the watched folder that failed to load",
            metrics.reload_errors.clone(),
        );
        registry.register(
            "outbound_requests",
            "Outbound HTTP requests and TCP connects by job, host (as allowed_hosts names it) and outcome (ok, error, limit)",
            metrics.outbound.clone(),
        );
        registry.register(
            "outbound_refused",
            "Outbound requests and connects refused by the job's allowed_hosts",
            metrics.outbound_refused.clone(),
        );
        registry.register(
            "notifications",
            "Webhook deliveries by outcome: sent, failed (no attempt left), dropped (queue full)",
            metrics.notifications.clone(),
        );
        Metrics { registry, ..metrics }
    }

    /// A webhook delivery ended: `sent`, `failed` or `dropped`.
    pub fn notification(&self, outcome: &'static str) {
        self.notifications.get_or_create(&NotifyLabel { outcome }).inc();
    }

    /// A finished run's network activity: `tallies` are (host, outcome, count); the host
    /// label is bounded by the manifest (an exact host or the wildcard entry that admitted
    /// it), so no guest can grow the label set at will.
    pub fn outbound<'a>(
        &self,
        job: &str,
        refused: u64,
        tallies: impl IntoIterator<Item = (&'a str, &'a str, u64)>,
    ) {
        if refused > 0 {
            self.outbound_refused.get_or_create(&JobLabel { job: job.to_string() }).inc_by(refused);
        }
        for (host, outcome, count) in tallies {
            let labels = HostLabels {
                job: job.to_string(),
                host: host.to_string(),
                outcome: outcome.to_string(),
            };
            self.outbound.get_or_create(&labels).inc_by(count);
        }
    }

    /// Renders every metric in the OpenMetrics text format (which Prometheus scrapes).
    pub fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }

    /// The store's health as of now: `errors` are totals by operation, as the store counts
    /// them (set at each scrape, so the store needs no metrics of its own).
    pub fn store_health(&self, healthy: bool, errors: &[(&str, u64)]) {
        self.store_healthy.set(i64::from(healthy));
        for (op, total) in errors {
            let counter =
                self.store_errors.get_or_create_owned(&OpLabel { op: op.replace(' ', "_") });
            counter.inc_by(total.saturating_sub(counter.get()));
        }
    }

    /// A run started, `lag_ms` (µs precision) after its scheduled instant when it is a
    /// scheduled slot (manual runs, retries and catch-ups have no meaningful lag).
    pub fn run_started(&self, job: &str, lag_ms: Option<f64>) {
        self.running.inc();
        if let Some(lag_ms) = lag_ms {
            self.job(job).start_lag.observe(lag_ms.max(0.0) / 1e3);
        }
    }

    /// A started run finished with this outcome (`running_runs` goes down by one).
    pub fn run_finished(
        &self,
        job: &str,
        outcome: &str,
        duration_secs: f64,
        fuel: Option<u64>,
        peak_memory: Option<u64>,
    ) {
        self.running.dec();
        let metrics = self.job(job);
        {
            let mut runs = metrics.runs.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            match runs.iter().find(|(known, _)| known == outcome) {
                Some((_, counter)) => {
                    counter.inc();
                }
                None => {
                    let labels = OutcomeLabels { job: job.to_string(), outcome: outcome.into() };
                    let counter = self.runs.get_or_create_owned(&labels);
                    counter.inc();
                    runs.push((outcome.to_string(), counter));
                }
            }
        }
        metrics.duration.observe(duration_secs);
        if let Some(fuel) = fuel {
            metrics.fuel.inc_by(fuel);
        }
        if let Some(bytes) = peak_memory {
            metrics.peak_memory.observe(bytes as f64);
        }
    }

    /// The job's per-run metrics, created in their families on first use.
    fn job(&self, job: &str) -> Arc<JobMetrics> {
        let known = self.per_job.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(metrics) = known.get(job) {
            return metrics.clone();
        }
        drop(known);
        let label = JobLabel { job: job.to_string() };
        let mut known = self.per_job.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        known
            .entry(job.to_string())
            .or_insert_with(|| {
                Arc::new(JobMetrics {
                    start_lag: self.start_lag.get_or_create_owned(&label),
                    duration: self.duration.get_or_create_owned(&label),
                    fuel: self.fuel.get_or_create_owned(&label),
                    peak_memory: self.peak_memory.get_or_create_owned(&label),
                    runs: Mutex::default(),
                })
            })
            .clone()
    }

    /// `count` slots were recorded without running, for `reason`.
    pub fn slots_not_run(&self, job: &str, reason: &str, count: usize) {
        let labels = ReasonLabels { job: job.to_string(), reason: reason.to_string() };
        self.not_run.get_or_create(&labels).inc_by(count as u64);
    }

    /// A run or slot joined (`+1`) or left (`-1`) a queue.
    pub fn queue_change(&self, delta: i64) {
        self.queued.inc_by(delta);
    }

    /// The job's breaker and pause state.
    pub fn job_state(&self, job: &str, breaker_open: bool, paused: bool) {
        let label = JobLabel { job: job.to_string() };
        self.breaker_open.get_or_create(&label).set(i64::from(breaker_open));
        self.paused.get_or_create(&label).set(i64::from(paused));
    }

    /// A job is gone: its state gauges go with it.
    pub fn job_removed(&self, job: &str) {
        let label = JobLabel { job: job.to_string() };
        self.breaker_open.remove(&label);
        self.paused.remove(&label);
    }

    /// A job file in the watched folder failed to load.
    pub fn reload_error(&self, job: &str) {
        self.reload_errors.get_or_create(&JobLabel { job: job.to_string() }).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_has_every_family_and_counts_move() {
        let metrics = Metrics::new();
        metrics.run_started("a", Some(3.0));
        metrics.run_finished("a", "succeeded", 0.002, Some(10), Some(1 << 20));
        metrics.run_started("a", None);
        metrics.run_finished("a", "succeeded", 0.002, Some(5), Some(1 << 20));
        metrics.run_started("a", None);
        metrics.run_finished("a", "trap", 0.002, None, None);
        metrics.slots_not_run("a", "skipped:overlap", 2);
        let text = metrics.render();
        assert!(text.contains(r#"sandcron_runs_total{job="a",outcome="succeeded"} 2"#), "{text}");
        assert!(text.contains(r#"sandcron_runs_total{job="a",outcome="trap"} 1"#), "{text}");
        assert!(text.contains(r#"sandcron_run_duration_seconds_count{job="a"} 3"#), "{text}");
        assert!(text.contains(r#"sandcron_peak_memory_bytes_count{job="a"} 2"#), "{text}");
        assert!(
            text.contains(r#"sandcron_slots_not_run_total{job="a",reason="skipped:overlap"} 2"#)
        );
        assert!(text.contains(r#"sandcron_fuel_used_total{job="a"} 15"#));
        metrics.outbound("a", 2, [("api.example.com", "ok", 3), ("*.example.com", "error", 1)]);
        let text = metrics.render();
        assert!(text.contains(r#"sandcron_outbound_refused_total{job="a"} 2"#), "{text}");
        assert!(
            text.contains(
                r#"sandcron_outbound_requests_total{job="a",host="api.example.com",outcome="ok"} 3"#
            ),
            "{text}"
        );
        assert!(text.contains("sandcron_running_runs 0"));
        assert!(text.contains(r#"sandcron_start_lag_seconds_count{job="a"} 1"#));
        assert!(text.trim_end().ends_with("# EOF"));
    }
}
