//! [`Context`]: what a run knows about itself, and [`Trigger`]: why it was started.
//!
//! Times are kept as the host sends them, milliseconds since the Unix epoch, in public
//! fields (easy to log, compare and build in tests), with [`SystemTime`] accessors for
//! arithmetic.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::wit::sandcron::job::types::{RunContext, TriggerKind};

/// Why a run was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Trigger {
    /// A slot of the job's schedule came due.
    #[default]
    Schedule,
    /// An operator asked for it (CLI, API or dashboard).
    Manual,
    /// A previous attempt of the same slot failed or was interrupted.
    Retry,
    /// A slot missed while the host was down, run late under the misfire policy.
    CatchUp,
}

impl Trigger {
    /// The WIT name: `schedule`, `manual`, `retry` or `catch-up`.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
            Trigger::Retry => "retry",
            Trigger::CatchUp => "catch-up",
        }
    }

    fn from_wit(kind: TriggerKind) -> Self {
        match kind {
            TriggerKind::Schedule => Trigger::Schedule,
            TriggerKind::Manual => Trigger::Manual,
            TriggerKind::Retry => Trigger::Retry,
            TriggerKind::CatchUp => Trigger::CatchUp,
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything a run knows about itself, handed to the job's function.
///
/// Fields are public so that a job's own unit tests can build one
/// (`Context { payload: Some(b"x".to_vec()), ..Default::default() }`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Context {
    /// The job's name (the manifest's file stem).
    pub job_name: String,
    /// Content hash of the job's `.wasm` and manifest: which version is running.
    pub job_version: String,
    /// Unique id of this attempt.
    pub run_id: String,
    /// Stable across retries of the same slot: key side effects on it to make them
    /// idempotent.
    pub idempotency_key: String,
    /// The slot's nominal instant, milliseconds since the Unix epoch (UTC); for a manual run,
    /// when it was requested.
    pub scheduled_at_ms: u64,
    /// When this attempt actually started, milliseconds since the Unix epoch (UTC).
    pub started_at_ms: u64,
    /// 1 for the first attempt of a slot, 2 for its first retry, ...
    pub attempt: u32,
    /// Why the run was started.
    pub trigger: Trigger,
    /// Bytes handed over by a manual trigger, if any.
    pub payload: Option<Vec<u8>>,
}

impl Context {
    /// The slot's nominal instant.
    pub fn scheduled_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.scheduled_at_ms)
    }

    /// When this attempt started.
    pub fn started_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.started_at_ms)
    }

    /// The payload as text: `None` when there is none or it is not valid UTF-8.
    pub fn payload_str(&self) -> Option<&str> {
        self.payload.as_deref().and_then(|bytes| std::str::from_utf8(bytes).ok())
    }

    pub(crate) fn from_wit(ctx: RunContext) -> Self {
        Context {
            job_name: ctx.job_name,
            job_version: ctx.job_version,
            run_id: ctx.run_id,
            idempotency_key: ctx.idempotency_key,
            scheduled_at_ms: ctx.scheduled_at_ms,
            started_at_ms: ctx.started_at_ms,
            attempt: ctx.attempt,
            trigger: Trigger::from_wit(ctx.trigger),
            payload: ctx.payload,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_names_match_wit() {
        let names: Vec<_> = [Trigger::Schedule, Trigger::Manual, Trigger::Retry, Trigger::CatchUp]
            .iter()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(names, ["schedule", "manual", "retry", "catch-up"]);
    }

    #[test]
    fn payload_str_rejects_invalid_utf8() {
        let mut ctx = Context { payload: Some(b"ok".to_vec()), ..Default::default() };
        assert_eq!(ctx.payload_str(), Some("ok"));
        ctx.payload = Some(vec![0xff, 0xfe]);
        assert_eq!(ctx.payload_str(), None);
        ctx.payload = None;
        assert_eq!(ctx.payload_str(), None);
    }

    #[test]
    fn times_convert_from_millis() {
        let ctx = Context { scheduled_at_ms: 1_500, ..Default::default() };
        assert_eq!(ctx.scheduled_at(), UNIX_EPOCH + Duration::from_millis(1_500));
    }
}
