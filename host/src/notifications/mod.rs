//! Failures that speak up (O7): the [`Notifier`] the scheduler calls where a run fails, a
//! breaker opens or closes, a version is rolled back, slots are missed or a job's edit
//! fails to load.
//!
//! Each call is cheap and never blocks: it writes the WARN line (run failures rate-limited
//! per job by `limiter`, so a flood stays readable) and, when webhooks are configured,
//! builds one small JSON document (`{event, job, run_id, reason, at, host, ...}`) and
//! pushes it onto the queue of each webhook that wants it (`deliver`: one thread per
//! webhook, bounded queue, retries with backoff).
//!
//! At a clean stop the host calls [`Notifier::flush`]: suppressed failures are summed up
//! and the queues get up to [`FLUSH_WITHIN`] (5 s, all webhooks together) to deliver
//! what they hold; whatever is left then is logged and dropped.
//!
//! # Design decision
//! The handle is a plain `Clone` struct held in the scheduler's `Services`, so each hook
//! point is one line beside the metric it already updates; everything slow (HTTP, retries,
//! the summary of suppressed failures) happens on this module's threads.

mod deliver;
mod limiter;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::config::{EventKind, JobNotify, JobSpec, NotifySettings, Webhook};
use crate::metrics::Metrics;
use crate::store::{RunFinish, RunStatus};
use deliver::{Policy, Target};
use limiter::Limiter;

/// How often suppressed failures are summed up (and quiet windows forgotten).
const TICK: Duration = Duration::from_secs(1);
/// Longest reason sent in a document (a guest's message can be long).
const MAX_REASON: usize = 2000;
/// How long a stopping host waits for its webhooks, all together.
pub const FLUSH_WITHIN: Duration = Duration::from_secs(5);

/// The handle the host's parts report events through. Cloning shares it.
#[derive(Clone, Default)]
pub struct Notifier {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// A std mutex: held for a map lookup, never across I/O. Tagged with the failing
    /// job's `[notify]`, so a summary goes where its failures would have gone.
    limiter: Mutex<Limiter<JobNotify>>,
    /// The `host` field of every document.
    host: String,
    /// The host's webhooks, each with its delivery thread.
    targets: Vec<Arc<Target>>,
    /// Jobs' own webhooks, by URL, started on first use.
    job_targets: Mutex<HashMap<String, Arc<Target>>>,
    policy: Option<Policy>,
    metrics: Option<Arc<Metrics>>,
}

/// The first line of `text` (a run's reason may carry a guest's whole backtrace).
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

impl Notifier {
    /// A notifier that only logs (tests, benches).
    pub fn new() -> Self {
        Notifier::default()
    }

    /// The host's notifier: starts a delivery thread per webhook of `settings` and the
    /// thread that sums up suppressed failures; they end when the last handle is dropped.
    pub fn start(
        settings: &NotifySettings,
        host: String,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Notifier> {
        let policy = Policy::from(settings);
        let targets = settings
            .webhooks
            .iter()
            .map(|hook| Target::start(hook.clone(), policy.clone(), Some(metrics.clone())))
            .collect::<std::io::Result<Vec<_>>>()?;
        let inner = Arc::new(Inner {
            host: settings.host.clone().unwrap_or(host),
            targets,
            policy: Some(policy),
            metrics: Some(metrics),
            ..Inner::default()
        });
        let weak: Weak<Inner> = Arc::downgrade(&inner);
        std::thread::Builder::new().name("sandcron-notify-tick".into()).spawn(move || {
            loop {
                std::thread::sleep(TICK);
                let Some(inner) = weak.upgrade() else { return };
                Notifier { inner }.tick(Instant::now());
            }
        })?;
        Ok(Notifier { inner })
    }

    /// Sums up the failures each closed window suppressed.
    fn tick(&self, now: Instant) {
        let closed = self.lock_limiter().closed(now);
        for (job, count, notify) in closed {
            self.summary(&notify, &job, count);
        }
    }

    fn lock_limiter(&self) -> std::sync::MutexGuard<'_, Limiter<JobNotify>> {
        self.inner.limiter.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn summary(&self, notify: &JobNotify, job: &str, count: u32) {
        let reason = format!("{count} more failures of {job} in the last minute");
        tracing::warn!(parent: None, job = %job, suppressed = count, "…and {reason} (see `sandcron runs {job}`)");
        let details = json!({ "count": count });
        self.emit(EventKind::FailuresSuppressed, Some(notify), job, None, &reason, details);
    }

    /// Sums up every failure window now, then waits until each webhook's queue is
    /// delivered or `deadline` passes (a dead webhook holds it that long, no longer).
    /// Returns how many events were left undelivered; each webhook with some says so.
    pub fn flush(&self, deadline: Instant) -> usize {
        // A window that closes "a minute from now" closes every window there is.
        let pending = self.lock_limiter().closed(Instant::now() + limiter::WINDOW);
        for (job, count, notify) in pending {
            self.summary(&notify, &job, count);
        }
        let own: Vec<Arc<Target>> = self
            .inner
            .job_targets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        let mut left = 0;
        for target in self.inner.targets.iter().chain(&own) {
            let undelivered = target.flush(deadline);
            if undelivered > 0 {
                tracing::warn!(url = %target.hook.url, undelivered, "stopping with notifications undelivered");
            }
            left += undelivered;
        }
        left
    }

    /// [`Notifier::flush`] on a blocking thread, for the host's async stop path.
    pub async fn flush_at_stop(&self) -> usize {
        let (notifier, deadline) = (self.clone(), Instant::now() + FLUSH_WITHIN);
        tokio::task::spawn_blocking(move || notifier.flush(deadline)).await.unwrap_or(0)
    }

    /// A run ended; reports it when it failed (an interrupted or missed run is no failure).
    pub fn run_failed(&self, spec: &JobSpec, run_id: &str, attempt: u32, finish: &RunFinish) {
        if finish.status != RunStatus::Failed {
            return;
        }
        let admit = {
            let mut limiter = self.lock_limiter();
            let admit = limiter.admit(&spec.name, Instant::now(), spec.notify.clone());
            if !admit.report {
                limiter.retag(&spec.name, spec.notify.clone());
            }
            admit
        };
        if let Some(count) = admit.summary {
            self.summary(&spec.notify, &spec.name, count);
        }
        if !admit.report {
            return;
        }
        let will_retry = finish.retry_at_ms.is_some();
        tracing::warn!(
            parent: None,
            job = %spec.name,
            run = %run_id,
            attempt,
            outcome = %finish.outcome,
            "run failed: {}{}",
            first_line(&finish.reason),
            if will_retry { " (will retry)" } else { "" }
        );
        let details =
            json!({ "attempt": attempt, "outcome": finish.outcome, "will_retry": will_retry });
        let kind = EventKind::RunFailed;
        self.emit(kind, Some(&spec.notify), &spec.name, Some(run_id), &finish.reason, details);
    }

    /// The job's breaker opened after `failures` failed slots; it is paused until `until_ms`.
    pub fn breaker_opened(&self, spec: &JobSpec, failures: u32, until_ms: i64) {
        let until = chrono::DateTime::from_timestamp_millis(until_ms).unwrap_or_default();
        let reason = format!("{failures} consecutive failed slots; paused until {until}");
        let details = json!({ "failures": failures, "until": rfc3339(until) });
        self.emit(EventKind::BreakerOpened, Some(&spec.notify), &spec.name, None, &reason, details);
    }

    /// The job's breaker closed: the probe run succeeded.
    pub fn breaker_closed(&self, spec: &JobSpec) {
        let reason = "the probe run succeeded";
        self.emit(
            EventKind::BreakerClosed,
            Some(&spec.notify),
            &spec.name,
            None,
            reason,
            json!({}),
        );
    }

    /// Version `from` (of `spec`) failed its first `failures` slots: `to` was restored.
    pub fn rolled_back(&self, spec: &JobSpec, from: &str, to: &str, failures: u32) {
        let reason = format!("version {from} failed its first {failures} slot(s); {to} restored");
        let details = json!({ "from": from, "to": to, "failures": failures });
        self.emit(EventKind::Rollback, Some(&spec.notify), &spec.name, None, &reason, details);
    }

    /// `count` slots were recorded without running; only `missed:*` reasons are reported.
    pub fn slots_not_run(&self, spec: Option<&JobSpec>, job: &str, reason: &str, count: usize) {
        if !reason.starts_with("missed") {
            return;
        }
        let details = json!({ "count": count });
        self.emit(EventKind::MissedSlots, spec.map(|s| &s.notify), job, None, reason, details);
    }

    /// A job's new files failed to load; `running` is the version that keeps running, if any.
    pub fn reload_error(&self, running: Option<&JobSpec>, job: &str, error: &str) {
        let details = json!({ "keeps_running": running.is_some() });
        self.emit(EventKind::ReloadError, running.map(|s| &s.notify), job, None, error, details);
    }

    /// Builds the document once and queues it for every webhook that wants it.
    fn emit(
        &self,
        kind: EventKind,
        notify: Option<&JobNotify>,
        job: &str,
        run_id: Option<&str>,
        reason: &str,
        details: Value,
    ) {
        if notify.is_some_and(|notify| !notify.wants(kind)) {
            return;
        }
        let hosts = self.inner.targets.iter().filter(|t| t.hook.wants(kind));
        let own = notify.map_or(&[][..], |notify| &notify.webhooks[..]);
        let own = own.iter().filter(|hook| hook.wants(kind));
        let mut targets: Vec<Arc<Target>> = hosts.cloned().collect();
        targets.extend(own.filter_map(|hook| self.job_target(hook)));
        if targets.is_empty() {
            return;
        }
        let mut cut = reason.len().min(MAX_REASON);
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        let mut document = json!({
            "event": kind.as_str(),
            "job": job,
            "run_id": run_id,
            "reason": &reason[..cut],
            "at": rfc3339(std::time::SystemTime::now().into()),
            "host": self.inner.host,
        });
        if let (Some(document), Value::Object(details)) = (document.as_object_mut(), details) {
            document.extend(details);
        }
        let body: Arc<str> = Arc::from(document.to_string());
        for target in targets {
            target.push(body.clone());
        }
    }

    /// The delivery target of a job's own webhook, started on first use.
    fn job_target(&self, hook: &Webhook) -> Option<Arc<Target>> {
        let policy = self.inner.policy.clone()?;
        let mut known = self.inner.job_targets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(target) = known.get(&hook.url) {
            return Some(target.clone());
        }
        match Target::start(hook.clone(), policy, self.inner.metrics.clone()) {
            Ok(target) => Some(known.entry(hook.url.clone()).or_insert(target).clone()),
            Err(err) => {
                tracing::error!(url = %hook.url, "cannot start a webhook thread: {err}");
                None
            }
        }
    }
}

fn rfc3339(at: chrono::DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
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
