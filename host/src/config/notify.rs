//! `[notify]`, in two places: a job's manifest says which of its events are reported and
//! to which extra webhooks ([`JobNotify`]); the host config file lists the host's webhooks
//! and the delivery policy ([`NotifySettings`]). Both are checked here, once, with
//! file:line:column errors; delivery lives in `notifications/`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::error::{HostFileError, ManifestError};
use super::units::Span;

/// What a notification is about (the `event` field of the JSON document).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A run failed (guest error, trap, limit or host error).
    RunFailed,
    /// A job failed more than 5 times in a minute: the rest, summed up once.
    FailuresSuppressed,
    /// The job's breaker opened: it is paused until the cooldown ends.
    BreakerOpened,
    /// The breaker's probe run succeeded: the job runs again.
    BreakerClosed,
    /// A new version failed its first runs and the previous one was restored.
    Rollback,
    /// Slots recorded as missed (downtime, misfire policy, starting deadline).
    MissedSlots,
    /// A job's `.wasm` or `.toml` in the watched folder failed to load.
    ReloadError,
}

impl EventKind {
    /// Every kind, in declaration order.
    pub const ALL: [EventKind; 7] = [
        EventKind::RunFailed,
        EventKind::FailuresSuppressed,
        EventKind::BreakerOpened,
        EventKind::BreakerClosed,
        EventKind::Rollback,
        EventKind::MissedSlots,
        EventKind::ReloadError,
    ];

    /// The word in the JSON document and in `events` filters.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::RunFailed => "run_failed",
            EventKind::FailuresSuppressed => "failures_suppressed",
            EventKind::BreakerOpened => "breaker_opened",
            EventKind::BreakerClosed => "breaker_closed",
            EventKind::Rollback => "rollback",
            EventKind::MissedSlots => "missed_slots",
            EventKind::ReloadError => "reload_error",
        }
    }

    /// A run failure, counted one by one or summed up.
    fn is_failure(self) -> bool {
        matches!(self, EventKind::RunFailed | EventKind::FailuresSuppressed)
    }
}

/// One webhook: where to POST, and which events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    /// `http://` or `https://` URL.
    pub url: String,
    /// The events it wants; `None`: all.
    pub events: Option<Vec<EventKind>>,
    /// Extra request headers.
    pub headers: BTreeMap<String, String>,
    /// Sent as `Authorization: Bearer TOKEN`.
    pub token: Option<String>,
}

impl Webhook {
    /// Whether this webhook wants `kind`.
    pub fn wants(&self, kind: EventKind) -> bool {
        self.events.as_ref().is_none_or(|events| events.contains(&kind))
    }
}

/// A job's `[notify]` (manifest).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobNotify {
    /// `on_failure = false` silences the job's run failures (its WARN lines stay).
    pub on_failure: bool,
    /// The job's events that are sent at all; `None`: all.
    pub events: Option<Vec<EventKind>>,
    /// The job's own webhooks, besides the host's.
    pub webhooks: Vec<Webhook>,
}

impl Default for JobNotify {
    fn default() -> Self {
        JobNotify { on_failure: true, events: None, webhooks: Vec::new() }
    }
}

impl JobNotify {
    /// Whether this job's `kind` events are sent.
    pub fn wants(&self, kind: EventKind) -> bool {
        (self.on_failure || !kind.is_failure())
            && self.events.as_ref().is_none_or(|events| events.contains(&kind))
    }

    /// A one-line description (`sandcron validate`).
    pub fn describe(&self) -> String {
        let events = match &self.events {
            None => "all events".to_string(),
            Some(events) => events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", "),
        };
        let failures = if self.on_failure { "" } else { ", run failures silenced" };
        let hooks: Vec<&str> = self.webhooks.iter().map(|w| w.url.as_str()).collect();
        let hooks = if hooks.is_empty() {
            "the host's".to_string()
        } else {
            format!("the host's and {}", hooks.join(", "))
        };
        format!("{events}{failures}; webhooks: {hooks}")
    }
}

/// A job's `[notify]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawJobNotify {
    pub on_failure: Option<bool>,
    pub events: Option<Vec<EventKind>>,
    #[serde(default)]
    pub webhooks: Vec<Spanned<String>>,
}

impl RawJobNotify {
    /// Validates the URLs; errors point at the bad one.
    pub(crate) fn validate(self, path: &Path, source: &str) -> Result<JobNotify, ManifestError> {
        let mut webhooks = Vec::new();
        for url in self.webhooks {
            check_url(url.get_ref()).map_err(|message| {
                ManifestError::at(
                    path,
                    source,
                    url.span().start,
                    format!("notify.webhooks: {message}"),
                )
            })?;
            webhooks.push(Webhook {
                url: url.into_inner(),
                events: None,
                headers: BTreeMap::new(),
                token: None,
            });
        }
        Ok(JobNotify { on_failure: self.on_failure.unwrap_or(true), events: self.events, webhooks })
    }
}

/// The host's `[notify]`: webhooks and how they are delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotifySettings {
    /// The `host` field of every document; `None`: the machine's hostname.
    pub host: Option<String>,
    /// Events waiting per webhook; when full the oldest is dropped.
    pub queue: usize,
    /// Per request.
    pub timeout: Duration,
    /// Attempts per event and webhook, the first included.
    pub attempts: u32,
    /// Before the first retry; doubles each time up to `max_backoff`.
    pub backoff: Duration,
    /// Ceiling of the doubling.
    pub max_backoff: Duration,
    /// The host's webhooks.
    pub webhooks: Vec<Webhook>,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            host: None,
            queue: 1000,
            timeout: Duration::from_secs(5),
            attempts: 5,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            webhooks: Vec::new(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawHostNotify {
    host: Option<String>,
    queue: Option<usize>,
    timeout: Option<Span>,
    attempts: Option<u32>,
    backoff: Option<Span>,
    max_backoff: Option<Span>,
    #[serde(default)]
    webhook: Vec<RawWebhook>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    url: Spanned<String>,
    events: Option<Vec<EventKind>>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    token: Option<String>,
}

/// The `[notify]` table of the host config file at `path` (the other keys are flags,
/// checked by `host_file`).
pub fn host_notify(source: &str, path: &Path) -> Result<NotifySettings, HostFileError> {
    #[derive(Deserialize)]
    struct File {
        #[serde(default)]
        notify: RawHostNotify,
    }
    let file: File =
        toml::from_str(source).map_err(|err| HostFileError::from_toml(path, source, &err))?;
    let raw = file.notify;
    let defaults = NotifySettings::default();
    let mut webhooks = Vec::new();
    for hook in raw.webhook {
        check_url(hook.url.get_ref()).map_err(|message| {
            HostFileError::at(
                path,
                source,
                hook.url.span().start,
                format!("notify.webhook.url: {message}"),
            )
        })?;
        webhooks.push(Webhook {
            url: hook.url.into_inner(),
            events: hook.events,
            headers: hook.headers,
            token: hook.token,
        });
    }
    Ok(NotifySettings {
        host: raw.host,
        queue: raw.queue.unwrap_or(defaults.queue).max(1),
        timeout: raw.timeout.map_or(defaults.timeout, |s| s.0),
        attempts: raw.attempts.unwrap_or(defaults.attempts).max(1),
        backoff: raw.backoff.map_or(defaults.backoff, |s| s.0),
        max_backoff: raw.max_backoff.map_or(defaults.max_backoff, |s| s.0),
        webhooks,
    })
}

/// A webhook URL: absolute `http` or `https` with a host.
fn check_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url.parse().map_err(|err| format!("invalid URL {url:?}: {err}"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(_)) => Ok(()),
        _ => Err(format!("invalid URL {url:?}: expected http://HOST/... or https://HOST/...")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "/etc/sandcron/sandcron.toml";

    #[test]
    fn host_webhooks_are_typed_and_checked_at_their_line() {
        let text = "workers = 2\n[notify]\nqueue = 10\ntimeout = \"2s\"\n\
                    [[notify.webhook]]\nurl = \"http://127.0.0.1:9/hook\"\nevents = [\"run_failed\"]\n\
                    token = \"t\"\nheaders = { X-Team = \"ops\" }\n";
        let settings = host_notify(text, Path::new(FILE)).unwrap();
        assert_eq!(settings.queue, 10);
        assert_eq!(settings.timeout, Duration::from_secs(2));
        assert_eq!(settings.attempts, 5);
        let hook = &settings.webhooks[0];
        assert!(hook.wants(EventKind::RunFailed) && !hook.wants(EventKind::Rollback));
        assert_eq!(hook.headers["X-Team"], "ops");
        let err = host_notify("[notify]\n[[notify.webhook]]\nurl = \"ftp://x\"\n", Path::new(FILE))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(&format!("{FILE}:3:7: notify.webhook.url: invalid URL")), "{err}");
        let err = host_notify("[notify]\nqueu = 3\n", Path::new(FILE)).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{FILE}:2:1: unknown field `queu`")), "{err}");
        let err = host_notify(
            "[notify]\n[[notify.webhook]]\nurl = \"http://a\"\nevents = [\"run_faild\"]\n",
            Path::new(FILE),
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with(&format!("{FILE}:4:")) && err.contains("run_faild"), "{err}");
    }

    #[test]
    fn a_jobs_notify_table_is_validated_with_its_manifest() {
        let parse = |text: &str| {
            let ceiling = crate::config::HostLimits::default();
            crate::config::parse_manifest(text, Path::new("jobs/demo.toml"), "demo", &ceiling)
        };
        let spec =
            parse("[notify]\non_failure = false\nwebhooks = [\"http://127.0.0.1:9/a\"]\n").unwrap();
        assert!(!spec.notify.on_failure);
        assert_eq!(spec.notify.webhooks[0].url, "http://127.0.0.1:9/a");
        let err = parse("[notify]\nwebhooks = [\n  \"ftp://x\",\n]\n").unwrap_err().to_string();
        assert!(err.starts_with("jobs/demo.toml:3:3: notify.webhooks: invalid URL"), "{err}");
        let err = parse("[notify]\non_fail = false\n").unwrap_err().to_string();
        assert!(err.starts_with("jobs/demo.toml:2:1: unknown field `on_fail`"), "{err}");
    }

    #[test]
    fn a_job_can_silence_failures_or_pick_events() {
        let silent = JobNotify { on_failure: false, ..JobNotify::default() };
        assert!(
            !silent.wants(EventKind::RunFailed) && !silent.wants(EventKind::FailuresSuppressed)
        );
        assert!(silent.wants(EventKind::BreakerOpened));
        let picky = JobNotify { events: Some(vec![EventKind::Rollback]), ..JobNotify::default() };
        assert!(picky.wants(EventKind::Rollback) && !picky.wants(EventKind::RunFailed));
        assert!(EventKind::ALL.iter().all(|kind| JobNotify::default().wants(*kind)));
    }
}
