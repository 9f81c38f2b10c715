//! Domain types shared by the runtime, the store and the CLI: how a run is asked for
//! ([`RunRequest`]) and how it ended ([`RunOutcome`], [`RunReport`]).
//!
//! The outcome keeps four failure cases apart (STYLE 5): the guest's own error, a trap, a
//! limit, and a host failure. Each says whether the slot should be retried, so the
//! scheduler never has to interpret error text.

use std::time::{Duration, SystemTime};

use serde::{Serialize, Serializer};

use crate::config::ByteSize;

/// `t` in milliseconds since the Unix epoch (0 for times before it): the one conversion
/// the runtime, store and host use for recorded times.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Why a run was started (mirrors the WIT `trigger-kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TriggerKind {
    /// A scheduled slot came due.
    Schedule,
    /// An operator asked for it.
    Manual,
    /// A retry of a failed or interrupted attempt.
    Retry,
    /// A missed slot run late.
    CatchUp,
    /// A past slot run on an operator's backfill request (the guest sees `catch-up`).
    Backfill,
}

impl TriggerKind {
    /// Every trigger, in declaration order.
    pub const ALL: [TriggerKind; 5] = [
        TriggerKind::Schedule,
        TriggerKind::Manual,
        TriggerKind::Retry,
        TriggerKind::CatchUp,
        TriggerKind::Backfill,
    ];

    /// The stored (and displayed) word, as in the WIT `trigger-kind`: "schedule", "catch-up", ...
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerKind::Schedule => "schedule",
            TriggerKind::Manual => "manual",
            TriggerKind::Retry => "retry",
            TriggerKind::CatchUp => "catch-up",
            TriggerKind::Backfill => "backfill",
        }
    }
}

impl std::fmt::Display for TriggerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TriggerKind {
    type Err = crate::words::UnknownWord;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::words::parse_word(s, "trigger", &TriggerKind::ALL, TriggerKind::as_str)
    }
}

/// Everything the runtime needs to know about one attempt, besides the job itself.
#[derive(Clone, Debug)]
pub struct RunRequest {
    /// Unique id of this attempt.
    pub run_id: String,
    /// Stable across retries of the same slot.
    pub idempotency_key: String,
    /// The slot's nominal instant (the request time for manual runs).
    pub scheduled_at: SystemTime,
    /// 1-based attempt number.
    pub attempt: u32,
    /// Why the run was started.
    pub trigger: TriggerKind,
    /// Bytes from a manual trigger.
    pub payload: Option<Vec<u8>>,
}

impl RunRequest {
    /// A manual, first-attempt run starting now.
    pub fn manual(job: &str, payload: Option<Vec<u8>>) -> Self {
        let now = SystemTime::now();
        let nanos = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let run_id = format!("{nanos:x}-{:x}", std::process::id());
        RunRequest {
            idempotency_key: format!("{job}:manual:{run_id}"),
            run_id,
            scheduled_at: now,
            attempt: 1,
            trigger: TriggerKind::Manual,
            payload,
        }
    }
}

/// Which resource limit stopped a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LimitKind {
    /// The wall-clock timeout passed.
    Timeout(Duration),
    /// The fuel budget ran out.
    Fuel(u64),
    /// The guest tried to grow its memories past the limit.
    Memory(ByteSize),
    /// The guest handed the host more than this in one call (a string, a list, or its
    /// result).
    Transfer(ByteSize),
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// `run` returned `ok`, or a command exited 0.
    Succeeded,
    /// The guest reported a failure itself: a `job-error`, or a non-zero exit code.
    GuestError {
        /// `false` for a `fatal` job-error: the slot is not retried.
        retryable: bool,
        /// The guest's message.
        message: String,
    },
    /// The guest trapped (panic, unreachable, stack overflow, bad memory access, ...).
    Trap {
        /// The trap and, for a panic, its text.
        message: String,
    },
    /// A resource limit stopped the guest.
    Limit(LimitKind),
    /// The host could not run the job (instantiation, I/O, ...).
    HostError {
        /// What went wrong.
        message: String,
    },
}

impl RunOutcome {
    /// Stable one-word status for tables, JSON and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::GuestError { .. } => "guest-error",
            RunOutcome::Trap { .. } => "trap",
            RunOutcome::Limit(_) => "limit",
            RunOutcome::HostError { .. } => "host-error",
        }
    }

    /// The precise reason, e.g. `timeout after 10s` or `fatal: bad input`; empty on success.
    pub fn reason(&self) -> String {
        match self {
            RunOutcome::Succeeded => String::new(),
            RunOutcome::GuestError { retryable: true, message } => format!("retryable: {message}"),
            RunOutcome::GuestError { retryable: false, message } => format!("fatal: {message}"),
            RunOutcome::Trap { message } => format!("trap: {message}"),
            RunOutcome::Limit(LimitKind::Timeout(after)) => {
                format!("timeout after {}", humantime::format_duration(*after))
            }
            RunOutcome::Limit(LimitKind::Fuel(budget)) => {
                format!("fuel exhausted (budget {budget})")
            }
            RunOutcome::Limit(LimitKind::Memory(limit)) => format!("memory limit {limit} exceeded"),
            RunOutcome::Limit(LimitKind::Transfer(limit)) => {
                format!("transfer limit {limit} exceeded (data handed to the host in one call)")
            }
            RunOutcome::HostError { message } => format!("host error: {message}"),
        }
    }

    /// Whether the retry policy may run this slot again (a `fatal` guest error says no).
    pub fn retryable(&self) -> bool {
        !matches!(self, RunOutcome::Succeeded | RunOutcome::GuestError { retryable: false, .. })
    }
}

/// Everything recorded about one finished run.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// How it ended.
    #[serde(serialize_with = "serialize_outcome_kind")]
    pub outcome: RunOutcome,
    /// Wall-clock start, ms since the Unix epoch.
    pub started_at_ms: u64,
    /// Time from instantiation to the end of the call.
    #[serde(serialize_with = "serialize_ms", rename = "duration_ms")]
    pub duration: Duration,
    /// Fuel consumed, when the run had a fuel budget and did not time out. The engine counts
    /// for every run (fuel is engine-wide), but inside a hot loop the count lives in a
    /// register and reaches the store only at calls and returns: a run stopped by its
    /// deadline mid-loop reported ~2,100 instructions for a second of busy loop, budget or
    /// not. A figure that is not a budget's measure is left out.
    pub fuel_used: Option<u64>,
    /// Highest total linear memory, in bytes.
    pub peak_memory: u64,
    /// The job's summary (`run-output`), capped.
    pub summary: Option<String>,
    /// Captured stdout, capped, lossily decoded.
    pub stdout: String,
    /// Bytes of stdout past the cap.
    pub stdout_dropped: u64,
    /// Log lines: the guest's `log` calls and its stderr.
    pub logs: Vec<crate::runtime::LogLine>,
    /// Log lines and stderr bytes past the cap.
    pub logs_dropped: u64,
    /// Outbound requests and connections: made, refused, stopped by a cap, bytes.
    pub net: crate::runtime::NetStats,
}

/// What a run did on the network (M5), as kept in its record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct NetCounts {
    /// HTTP requests and TCP connects the allowlist let through.
    pub requests: u64,
    /// Requests and connects the allowlist refused.
    pub refused: u64,
    /// Requests and connects stopped by a per-run cap (count, bytes, concurrency).
    pub limited: u64,
    /// HTTP response body bytes received.
    pub bytes_in: u64,
    /// HTTP request body bytes sent.
    pub bytes_out: u64,
}

impl NetCounts {
    /// Whether the run touched the network at all.
    pub fn is_empty(&self) -> bool {
        self.requests == 0 && self.refused == 0 && self.limited == 0
    }
}

/// Serializes a duration as fractional milliseconds.
pub(crate) fn serialize_ms<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1e6).round() / 1e3)
}

fn serialize_outcome_kind<S: Serializer>(o: &RunOutcome, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(o.kind())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_precise() {
        let timeout = RunOutcome::Limit(LimitKind::Timeout(Duration::from_secs(10)));
        assert_eq!(timeout.reason(), "timeout after 10s");
        let memory = RunOutcome::Limit(LimitKind::Memory(ByteSize(64 << 20)));
        assert_eq!(memory.reason(), "memory limit 64MiB exceeded");
        let transfer = RunOutcome::Limit(LimitKind::Transfer(ByteSize(128 << 20)));
        assert_eq!(
            transfer.reason(),
            "transfer limit 128MiB exceeded (data handed to the host in one call)"
        );
        let fatal = RunOutcome::GuestError { retryable: false, message: "no".into() };
        assert_eq!(fatal.reason(), "fatal: no");
        assert!(!fatal.retryable());
        assert!(RunOutcome::Trap { message: "x".into() }.retryable());
    }

    #[test]
    fn triggers_round_trip_and_match_their_json() {
        for trigger in TriggerKind::ALL {
            assert_eq!(trigger.as_str().parse::<TriggerKind>(), Ok(trigger));
            let json = serde_json::to_string(&trigger).unwrap();
            assert_eq!(json, format!("\"{trigger}\""));
        }
        let err = "cron".parse::<TriggerKind>().unwrap_err();
        assert!(err.to_string().starts_with("unknown trigger \"cron\""), "{err}");
    }
}
