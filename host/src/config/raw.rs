//! The manifest exactly as written: serde structs, no I/O, no cross-field checks.
//!
//! Every struct denies unknown keys, so a typo (`memroy = "64MiB"`) is an error naming the
//! file and line instead of a silently ignored limit. Values whose validation needs the
//! whole manifest are kept [`Spanned`] so that later errors can still point at their line.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::units::{ByteSize, Span};
use crate::schedule::{DstFold, DstGap};

/// A whole `NAME.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawManifest {
    // Triggers (M1): exactly one of these three when the job is scheduled.
    pub schedule: Option<Spanned<String>>,
    pub every: Option<Spanned<Span>>,
    pub at: Option<Spanned<String>>,
    pub phase: Option<Span>,
    pub timezone: Option<Spanned<String>>,
    pub dst_gap: Option<DstGap>,
    pub dst_fold: Option<DstFold>,
    pub jitter: Option<Span>,
    // Policies (M2).
    pub overlap: Option<Overlap>,
    pub misfire: Option<Misfire>,
    pub catchup_window: Option<Span>,
    pub max_catchup: Option<u32>,
    pub starting_deadline: Option<Span>,
    /// R6: restore the previous version after this many failed first runs of a new one.
    pub rollback_on_failure: Option<u32>,
    #[serde(default)]
    pub limits: RawLimits,
    pub retry: Option<RawRetry>,
    pub breaker: Option<RawBreaker>,
    #[serde(default)]
    pub retention: RetentionOverride,
    #[serde(default)]
    pub capabilities: RawCapabilities,
    #[serde(default)]
    pub secrets: BTreeMap<String, Spanned<RawSecret>>,
    #[serde(default)]
    pub config: BTreeMap<String, toml::Value>,
    /// Which of the job's events are reported, and its own webhooks (O7).
    pub notify: Option<super::notify::RawJobNotify>,
}

/// One `[secrets]` entry (M8): exactly one of `env` and `file`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSecret {
    pub env: Option<String>,
    pub file: Option<std::path::PathBuf>,
}

/// `[limits]` (M3). Absent keys take the host's safe defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub memory: Option<ByteSize>,
    pub fuel: Option<u64>,
    pub timeout: Option<Span>,
    pub output: Option<ByteSize>,
    pub log: Option<ByteSize>,
    pub max_concurrent: Option<u32>,
    // Network (M5): per-run caps on outbound requests and connections.
    pub connect_timeout: Option<Span>,
    pub first_byte_timeout: Option<Span>,
    pub bytes_in: Option<ByteSize>,
    pub bytes_out: Option<ByteSize>,
    pub requests: Option<u32>,
    pub concurrent_requests: Option<u32>,
}

/// `[retry]` (M4).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetry {
    pub max_attempts: Option<u32>,
    pub backoff: Option<Span>,
    pub max_backoff: Option<Span>,
    pub jitter: Option<f64>,
}

/// `[breaker]` (M4).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBreaker {
    pub failures: Option<u32>,
    pub cooldown: Option<Span>,
}

/// `[retention]` (issue 15): how much of this job's run history the host keeps; each key
/// present overrides the host's `--retention-*` setting. Already typed, so it is also the
/// validated form ([`super::JobSpec::retention`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionOverride {
    /// Runs due longer ago than this are pruned.
    pub max_age: Option<Span>,
    /// Most runs kept.
    pub max_runs: Option<u64>,
    /// Keep the newest failure whatever the limits.
    pub keep_last_failure: Option<bool>,
}

impl RetentionOverride {
    /// Whether the manifest set anything.
    pub fn is_set(&self) -> bool {
        *self != RetentionOverride::default()
    }

    /// A one-line description (`sandcron validate`): what the job sets, and that the
    /// host's `--retention-*` settings apply to the rest.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(age) = self.max_age {
            parts.push(format!("runs due over {age} ago pruned"));
        }
        if let Some(runs) = self.max_runs {
            parts.push(format!("newest {runs} runs kept"));
        }
        match self.keep_last_failure {
            Some(true) => parts.push("newest failure always kept".to_string()),
            Some(false) => parts.push("newest failure not kept apart".to_string()),
            None => {}
        }
        let all = self.max_age.is_some() && self.max_runs.is_some();
        match (parts.is_empty(), all && self.keep_last_failure.is_some()) {
            (true, _) => "the host's".to_string(),
            (false, true) => parts.join(", "),
            (false, false) => format!("{}; otherwise the host's", parts.join(", ")),
        }
    }
}

/// `[capabilities]` (M5). Nothing is granted unless listed here.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCapabilities {
    /// `"HOST:GUEST[:ro|:rw]"`, host paths relative to the manifest's folder.
    #[serde(default)]
    pub dirs: Vec<Spanned<String>>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// `SCHEME://HOST[:PORT]` entries; nothing reaches the network without one.
    #[serde(default)]
    pub allowed_hosts: Vec<Spanned<String>>,
}

/// What to do with a slot that comes due while the previous run still runs (M2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Overlap {
    /// Record the new slot as `skipped:overlap`.
    #[default]
    Skip,
    /// Keep at most one waiting slot.
    BufferOne,
    /// Queue every slot (bounded).
    BufferAll,
    /// Interrupt the running one after a grace period.
    CancelOther,
    /// Run side by side, capped by `max_concurrent`.
    Allow,
}

/// What to do with slots missed while the host was down (M2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Misfire {
    /// Record them as missed.
    Skip,
    /// Run the newest one once.
    #[default]
    Latest,
    /// Run them all, up to `max_catchup`.
    All,
}
