//! The validated job description ([`JobSpec`]) and the one place raw manifests become it.
//!
//! Validation happens once, here; everything downstream (runtime, scheduler) trusts a
//! `JobSpec`. Limits are clamped to the host-wide ceiling ([`HostLimits`]) rather than
//! rejected, so an operator can lower the ceiling without breaking existing jobs; the clamp
//! is reported as a warning.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::allowlist::AllowedHost;
use super::error::ManifestError;
use super::grants::{Capabilities, DirGrant, HostLimits, Limits, NetLimits};
use super::raw::{Misfire, Overlap, RawManifest};
use super::secrets::{self, Secret, SecretSource};
use super::units::{ByteSize, Span};
use crate::schedule::{ScheduleSpec, Trigger};

/// When a job fires (M1) and how it behaves around slots (M2).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timing {
    /// The validated trigger, zone and DST rules; `None` for a job that only runs when
    /// triggered by hand.
    pub schedule: Option<ScheduleSpec>,
    /// Bound of the deterministic per-slot delay.
    pub jitter: Option<Duration>,
    /// Overlap policy.
    pub overlap: Overlap,
    /// Misfire policy.
    pub misfire: Misfire,
    /// How far back a missed slot still counts.
    pub catchup_window: Duration,
    /// Bound for `misfire = "all"`.
    pub max_catchup: u32,
    /// A slot not started this long after its instant is recorded as missed.
    pub starting_deadline: Option<Duration>,
}

/// Retry policy (M4).
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts per slot, the first included.
    pub max_attempts: u32,
    /// Delay before the first retry; doubles each time.
    pub backoff: Duration,
    /// Ceiling of the doubling.
    pub max_backoff: Duration,
    /// Random fraction (0..=1) added to each delay.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            jitter: 0.1,
        }
    }
}

/// Circuit breaker (M4).
#[derive(Clone, Debug, PartialEq)]
pub struct BreakerPolicy {
    /// Consecutive failed slots that open the breaker.
    pub failures: u32,
    /// How long it stays open before a half-open probe.
    pub cooldown: Duration,
}

/// A job, validated: everything the runtime and scheduler need from its manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct JobSpec {
    /// The job's name (the manifest's file stem).
    pub name: String,
    /// Schedule and slot policies.
    pub timing: Timing,
    /// Resource limits.
    pub limits: Limits,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Breaker, when configured.
    pub breaker: Option<BreakerPolicy>,
    /// Rollback after this many failed first runs of a new version.
    pub rollback_on_failure: Option<u32>,
    /// `[retention]`: overrides of the host's history limits for this job.
    pub retention: super::raw::RetentionOverride,
    /// Granted capabilities.
    pub capabilities: Capabilities,
    /// `[config]`, flattened to strings (non-strings as JSON text).
    pub config: BTreeMap<String, String>,
    /// `[secrets]`, read from the host at load; given to the guest as env variables.
    pub secrets: Vec<Secret>,
    /// Which of the job's events are reported, and where besides the host's webhooks.
    pub notify: super::notify::JobNotify,
    /// Things that were accepted but adjusted (e.g. a limit clamped to the host ceiling).
    pub warnings: Vec<String>,
}

impl JobSpec {
    /// A job with every default and no manifest (used by `sandcron run` without a file).
    pub fn unconfigured(name: &str) -> Self {
        JobSpec {
            name: name.to_string(),
            timing: Timing::default(),
            limits: Limits::default(),
            retry: RetryPolicy::default(),
            breaker: None,
            rollback_on_failure: None,
            retention: Default::default(),
            capabilities: Capabilities::default(),
            config: BTreeMap::new(),
            secrets: Vec::new(),
            notify: Default::default(),
            warnings: Vec::new(),
        }
    }

    /// Validates a parsed manifest. `source` is the file's text (for line numbers).
    pub(crate) fn from_raw(
        name: &str,
        raw: RawManifest,
        path: &Path,
        source: &str,
        ceiling: &HostLimits,
    ) -> Result<Self, ManifestError> {
        let invalid =
            |offset: usize, message: String| ManifestError::at(path, source, offset, message);
        let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));

        let mut triggers = Vec::new();
        if let Some(s) = raw.schedule {
            triggers.push((s.span().start, Trigger::Cron(s.into_inner())));
        }
        if let Some(e) = raw.every {
            let phase = raw.phase.map_or(Duration::ZERO, |p| p.0);
            let start = e.span().start;
            let period = e.into_inner().0;
            if period.is_zero() {
                return Err(invalid(start, "`every` must be longer than zero".into()));
            }
            if phase >= period {
                return Err(invalid(
                    start,
                    format!(
                        "`phase` ({}) must be shorter than `every` ({})",
                        Span(phase),
                        Span(period)
                    ),
                ));
            }
            triggers.push((start, Trigger::Every { period, phase }));
        }
        if let Some(a) = raw.at {
            triggers.push((a.span().start, Trigger::At(a.into_inner())));
        }
        triggers.sort_by_key(|(offset, _)| *offset);
        // Checked here, so that a typo is reported at the timezone's own line.
        let timezone = raw.timezone.map(|tz| (tz.span().start, tz.into_inner()));
        if let Some((offset, name)) = &timezone {
            crate::schedule::parse_timezone(name)
                .map_err(|err| invalid(*offset, err.to_string()))?;
        }
        let mut warnings = Vec::new();
        if let (Some((offset, _)), Some((_, Trigger::Every { .. }))) = (&timezone, triggers.first())
        {
            // A warning, not an error: such a manifest ran before, and refusing it now would
            // stop a working job on upgrade. The line says what to use instead.
            let message = "`timezone` has no effect on `every` (its slots are instants aligned \
                           to the Unix epoch); for local times use `schedule` with a cron \
                           expression";
            warnings.push(ManifestError::at(path, source, *offset, message.into()).to_string());
        }
        if triggers.len() > 1 {
            return Err(invalid(
                triggers[1].0,
                "a job has exactly one trigger: use one of `schedule`, `every` or `at`".into(),
            ));
        }
        let schedule = match triggers.pop() {
            None => None,
            Some((offset, trigger)) => {
                let gap = raw.dst_gap.unwrap_or_default();
                let fold = raw.dst_fold.unwrap_or_default();
                let zone = timezone.as_ref().map(|(_, name)| name.as_str());
                let spec = ScheduleSpec::new(trigger, zone, gap, fold)
                    .map_err(|err| invalid(offset, err.to_string()))?;
                if let Some(why) = spec.never_fires() {
                    return Err(invalid(offset, format!("this schedule never fires: {why}")));
                }
                Some(spec)
            }
        };

        let defaults = Limits::default();
        let mut clamp = |what: &str, asked: u64, max: u64, show: &dyn Fn(u64) -> String| {
            if asked > max {
                warnings.push(format!(
                    "limits.{what} = {} exceeds the host ceiling; using {}",
                    show(asked),
                    show(max)
                ));
                max
            } else {
                asked
            }
        };
        let size = |n: u64| ByteSize(n).to_string();
        let memory = raw.limits.memory.unwrap_or(defaults.memory).0;
        let output = raw.limits.output.unwrap_or(defaults.output).0;
        let log = raw.limits.log.unwrap_or(defaults.log).0;
        let timeout = raw.limits.timeout.map_or(defaults.timeout, |t| t.0);
        let limits = Limits {
            memory: ByteSize(clamp("memory", memory, ceiling.memory.0, &size)),
            fuel: raw.limits.fuel,
            timeout: Duration::from_millis(clamp(
                "timeout",
                timeout.as_millis() as u64,
                ceiling.timeout.as_millis() as u64,
                &|ms| Span(Duration::from_millis(ms)).to_string(),
            )),
            output: ByteSize(clamp("output", output, ceiling.output.0, &size)),
            log: ByteSize(clamp("log", log, ceiling.log.0, &size)),
            max_concurrent: raw.limits.max_concurrent.unwrap_or(defaults.max_concurrent).max(1),
            net: NetLimits {
                connect_timeout: raw
                    .limits
                    .connect_timeout
                    .map_or(defaults.net.connect_timeout, |s| s.0),
                first_byte_timeout: raw
                    .limits
                    .first_byte_timeout
                    .map_or(defaults.net.first_byte_timeout, |s| s.0),
                bytes_in: raw.limits.bytes_in.unwrap_or(defaults.net.bytes_in),
                bytes_out: raw.limits.bytes_out.unwrap_or(defaults.net.bytes_out),
                requests: raw.limits.requests.unwrap_or(defaults.net.requests),
                concurrent_requests: raw
                    .limits
                    .concurrent_requests
                    .unwrap_or(defaults.net.concurrent_requests)
                    .max(1),
            },
        };
        if limits.timeout.is_zero() {
            return Err(invalid(0, "limits.timeout must be longer than zero".into()));
        }

        let mut allowed_hosts = Vec::new();
        for entry in &raw.capabilities.allowed_hosts {
            let host: AllowedHost = entry.get_ref().parse().map_err(|message: String| {
                invalid(entry.span().start, format!("capabilities.allowed_hosts: {message}"))
            })?;
            allowed_hosts.push(host);
        }
        let mut secrets = Vec::new();
        for (name, entry) in &raw.secrets {
            let at = entry.span().start;
            secrets::check_name(name).map_err(|message| invalid(at, message))?;
            if raw.capabilities.env.contains_key(name) {
                return Err(invalid(
                    at,
                    format!("secrets.{name}: capabilities.env also sets {name}; keep one"),
                ));
            }
            let source = match (&entry.get_ref().env, &entry.get_ref().file) {
                (Some(var), None) => SecretSource::Env(var.clone()),
                (None, Some(file)) => SecretSource::File(file.clone()),
                _ => {
                    return Err(invalid(
                        at,
                        format!(
                            "secrets.{name}: give exactly one source: {{ env = \"HOST_VAR\" }} or \
                             {{ file = \"/path\" }}"
                        ),
                    ));
                }
            };
            let secret =
                secrets::resolve(name, &source, base).map_err(|message| invalid(at, message))?;
            secrets.push(secret);
        }
        let mut dirs = Vec::new();
        for dir in &raw.capabilities.dirs {
            let grant = DirGrant::parse(dir.get_ref(), base).map_err(|message| {
                invalid(dir.span().start, format!("capabilities.dirs: {message}"))
            })?;
            dirs.push(grant);
        }

        let retry = raw.retry.unwrap_or_default();
        let retry_defaults = RetryPolicy::default();
        let jitter = retry.jitter.unwrap_or(retry_defaults.jitter);
        if !(0.0..=1.0).contains(&jitter) {
            return Err(invalid(0, format!("retry.jitter must be between 0 and 1, got {jitter}")));
        }
        let retry = RetryPolicy {
            max_attempts: retry.max_attempts.unwrap_or(retry_defaults.max_attempts).max(1),
            backoff: retry.backoff.map_or(retry_defaults.backoff, |s| s.0),
            max_backoff: retry.max_backoff.map_or(retry_defaults.max_backoff, |s| s.0),
            jitter,
        };
        let breaker = raw.breaker.map(|b| BreakerPolicy {
            failures: b.failures.unwrap_or(5).max(1),
            cooldown: b.cooldown.map_or(Duration::from_secs(300), |s| s.0),
        });

        let config = raw.config.into_iter().map(|(k, v)| (k, config_value_text(v))).collect();
        let notify = match raw.notify {
            Some(notify) => notify.validate(path, source)?,
            None => Default::default(),
        };

        Ok(JobSpec {
            name: name.to_string(),
            timing: Timing {
                schedule,
                jitter: raw.jitter.map(|s| s.0),
                overlap: raw.overlap.unwrap_or_default(),
                misfire: raw.misfire.unwrap_or_default(),
                catchup_window: raw.catchup_window.map_or(Duration::from_secs(3600), |s| s.0),
                max_catchup: raw.max_catchup.unwrap_or(10),
                starting_deadline: raw.starting_deadline.map(|s| s.0),
            },
            limits,
            retry,
            breaker,
            rollback_on_failure: raw.rollback_on_failure,
            retention: raw.retention,
            capabilities: Capabilities { dirs, env: raw.capabilities.env, allowed_hosts },
            config,
            secrets,
            notify,
            warnings,
        })
    }
}

/// A `[config]` value as the guest sees it: strings verbatim, anything else as JSON text.
fn config_value_text(value: toml::Value) -> String {
    match value {
        toml::Value::String(s) => s,
        toml::Value::Datetime(d) => d.to_string(),
        other => serde_json::to_string(&other).unwrap_or_else(|_| other.to_string()),
    }
}
