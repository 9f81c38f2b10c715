//! Webhook delivery: one thread per webhook URL, each with a bounded queue, so a slow or
//! dead webhook delays only its own events and never the scheduler (which only pushes).
//!
//! A full queue drops its oldest event (counted: `sandcron_notifications_total{outcome=
//! "dropped"}`); a failed POST (no answer within the timeout, or not 2xx) is retried at
//! the head of its queue after an exponential backoff with a cap, so events stay in order,
//! until the attempts run out (`outcome="failed"`). A stopping host waits a bounded time
//! for the queues to drain ([`Target::flush`]).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::config::{NotifySettings, Webhook};
use crate::metrics::Metrics;

/// How deliveries are made (from the host's `[notify]`).
#[derive(Clone, Debug)]
pub(crate) struct Policy {
    pub(crate) queue: usize,
    pub(crate) timeout: Duration,
    pub(crate) attempts: u32,
    pub(crate) backoff: Duration,
    pub(crate) max_backoff: Duration,
}

impl From<&NotifySettings> for Policy {
    fn from(settings: &NotifySettings) -> Self {
        Policy {
            queue: settings.queue,
            timeout: settings.timeout,
            attempts: settings.attempts,
            backoff: settings.backoff,
            max_backoff: settings.max_backoff,
        }
    }
}

impl Policy {
    /// The pause after failed attempt `attempt` (1-based): backoff doubled, capped.
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        let doubled = self.backoff.saturating_mul(1u32 << (attempt - 1).min(20));
        doubled.min(self.max_backoff)
    }
}

/// One event for one webhook.
struct Delivery {
    body: Arc<str>,
    /// Attempts made so far.
    attempts: u32,
    /// Not before this instant (a retry's backoff).
    due: Instant,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Delivery>,
    /// A delivery is off the queue, its attempt under way.
    in_flight: bool,
}

impl Queue {
    /// Events not yet delivered nor given up: queued or in flight.
    fn pending(&self) -> usize {
        self.items.len() + usize::from(self.in_flight)
    }
}

/// A webhook and its queue; its thread ends when the last handle is dropped.
pub(crate) struct Target {
    pub(crate) hook: Webhook,
    /// A std mutex: held to push or pop, never across the HTTP request.
    queue: Mutex<Queue>,
    /// Signals the delivery thread: an event was queued.
    wake: Condvar,
    /// Signals [`Target::flush`]: an attempt ended.
    settled: Condvar,
    policy: Policy,
    metrics: Option<Arc<Metrics>>,
}

impl Target {
    /// Starts the delivery thread of `hook`.
    pub(crate) fn start(
        hook: Webhook,
        policy: Policy,
        metrics: Option<Arc<Metrics>>,
    ) -> std::io::Result<Arc<Target>> {
        let target = Arc::new(Target {
            hook,
            queue: Mutex::default(),
            wake: Condvar::new(),
            settled: Condvar::new(),
            policy,
            metrics,
        });
        let (weak, timeout) = (Arc::downgrade(&target), target.policy.timeout);
        std::thread::Builder::new().name("sandcron-webhook".into()).spawn(move || {
            let agent = ureq::Agent::new_with_config(
                ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .max_redirects(0)
                    .timeout_global(Some(timeout))
                    .build(),
            );
            while let Some(target) = weak.upgrade() {
                target.deliver_next(&agent);
            }
        })?;
        Ok(target)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn count(&self, outcome: &'static str) {
        if let Some(metrics) = &self.metrics {
            metrics.notification(outcome);
        }
    }

    /// Queues one event; never blocks beyond the queue's lock.
    pub(crate) fn push(&self, body: Arc<str>) {
        let mut queue = self.lock();
        if queue.items.len() >= self.policy.queue {
            queue.items.pop_front();
            drop(queue);
            self.count("dropped");
            tracing::warn!(url = %self.hook.url, "notification queue full: the oldest event was dropped");
            queue = self.lock();
        }
        queue.items.push_back(Delivery { body, attempts: 0, due: Instant::now() });
        drop(queue);
        self.wake.notify_one();
    }

    /// Waits (at most a second, so the thread notices its target is gone) for the next
    /// due delivery and makes one attempt.
    fn deliver_next(&self, agent: &ureq::Agent) {
        let mut queue = self.lock();
        let now = Instant::now();
        let wait = match queue.items.front() {
            None => Duration::from_secs(1),
            Some(head) if head.due > now => (head.due - now).min(Duration::from_secs(1)),
            Some(_) => Duration::ZERO,
        };
        if !wait.is_zero() {
            let _ = self.wake.wait_timeout(queue, wait);
            return;
        }
        let Some(mut delivery) = queue.items.pop_front() else { return };
        queue.in_flight = true;
        drop(queue);
        delivery.attempts += 1;
        let retry = match self.post(agent, &delivery.body) {
            Ok(()) => {
                self.count("sent");
                None
            }
            Err(err) if delivery.attempts >= self.policy.attempts => {
                self.count("failed");
                tracing::warn!(url = %self.hook.url, attempts = delivery.attempts, "notification not delivered: {err}");
                None
            }
            Err(err) => {
                tracing::info!(url = %self.hook.url, attempt = delivery.attempts, "notification failed, will retry: {err}");
                delivery.due = Instant::now() + self.policy.delay(delivery.attempts);
                Some(delivery)
            }
        };
        // One lock for both, so a flush never sees the retry neither queued nor in flight.
        let mut queue = self.lock();
        queue.in_flight = false;
        if let Some(delivery) = retry {
            queue.items.push_front(delivery);
        }
        drop(queue);
        self.settled.notify_all();
    }

    /// Waits until every queued event is delivered (or given up after its attempts), or
    /// `deadline` passes; returns how many were still pending. A webhook that never
    /// answers holds this until the deadline, not longer.
    pub(crate) fn flush(&self, deadline: Instant) -> usize {
        let mut queue = self.lock();
        loop {
            let now = Instant::now();
            if queue.pending() == 0 || now >= deadline {
                return queue.pending();
            }
            queue = match self.settled.wait_timeout(queue, deadline - now) {
                Ok((queue, _)) => queue,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    fn post(&self, agent: &ureq::Agent, body: &str) -> Result<(), String> {
        let mut request = agent.post(&self.hook.url).header("Content-Type", "application/json");
        for (name, value) in &self.hook.headers {
            request = request.header(name, value);
        }
        if let Some(token) = &self.hook.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let response = request.send(body).map_err(|err| err.to_string())?;
        let status = response.status();
        if status.is_success() { Ok(()) } else { Err(format!("answered {status}")) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let policy = Policy {
            queue: 1,
            timeout: Duration::from_secs(1),
            attempts: 5,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
        };
        let delays: Vec<u128> = (1..=5).map(|a| policy.delay(a).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 500, 500]);
    }

    /// A webhook on port 1 (refused at once) whose hour-long backoff keeps its queue
    /// undrained.
    fn undrained(queue: usize, metrics: Option<Arc<Metrics>>) -> Arc<Target> {
        let policy = Policy {
            queue,
            timeout: Duration::from_millis(200),
            attempts: 100,
            backoff: Duration::from_secs(3600),
            max_backoff: Duration::from_secs(3600),
        };
        let hook = Webhook {
            url: "http://127.0.0.1:1/".into(),
            events: None,
            headers: Default::default(),
            token: None,
        };
        Target::start(hook, policy, metrics).unwrap()
    }

    #[test]
    fn a_flush_returns_at_once_when_empty_and_at_its_deadline_when_stuck() {
        let target = undrained(10, None);
        let started = Instant::now();
        assert_eq!(target.flush(started + Duration::from_secs(5)), 0);
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());

        target.push(Arc::from("{}"));
        target.push(Arc::from("{}"));
        let started = Instant::now();
        let bound = Duration::from_millis(300);
        assert_eq!(target.flush(started + bound), 2, "both still pending");
        let took = started.elapsed();
        assert!(took >= bound && took < bound + Duration::from_secs(1), "{took:?}");
    }

    #[test]
    fn a_full_queue_drops_its_oldest_event_and_counts_it() {
        let metrics = Arc::new(Metrics::new());
        let target = undrained(2, Some(metrics.clone()));
        for i in 0..5 {
            target.push(Arc::from(format!("{{\"n\":{i}}}")));
        }
        let text = metrics.render();
        let dropped = text
            .lines()
            .find(|l| l.starts_with("sandcron_notifications_total{outcome=\"dropped\"}"))
            .unwrap_or_else(|| panic!("{text}"));
        let count: u64 = dropped.rsplit(' ').next().unwrap().parse().unwrap();
        // Five pushed into a queue of two: at least two dropped (three if the thread had
        // not taken the first one yet), and the newest event is still queued.
        assert!((2..=3).contains(&count), "{dropped}");
        assert!(target.lock().items.back().is_some_and(|d| &*d.body == "{\"n\":4}"));
    }
}
