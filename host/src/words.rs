//! The words the API, the CLI, the metrics and the stored rows promise about slots and jobs,
//! as enums: why a slot did not run ([`SlotReason`]), why a run was stopped from outside
//! ([`InterruptReason`]), the circuit breaker's state ([`BreakerState`]). The trigger is
//! [`crate::job::TriggerKind`]; the run status is [`crate::store::RunStatus`].
//!
//! Each word is spelled once, here (`as_str`), and read back strictly (`FromStr`): an unknown
//! word is an error naming it, never a default. Strings exist only where the words leave the
//! process (SQL columns, JSON fields, log lines, metric labels).
//!
//! Adding a reason (say `missed:store`) is one variant and one line in its table: `ALL`, the
//! spelling and the parser follow from it.

use std::fmt;
use std::str::FromStr;

use crate::store::RunStatus;

/// An unknown word where one of a fixed set was expected (`what` names the set).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {word:?} (expected one of {expected})")]
pub struct UnknownWord {
    /// Which set: "slot reason", "breaker state", "trigger", ...
    pub what: &'static str,
    /// The word found.
    pub word: String,
    /// The words allowed, comma-separated.
    pub expected: String,
}

/// Looks `word` up among `all` by their spelling, or says what was expected.
pub(crate) fn parse_word<T: Copy>(
    word: &str,
    what: &'static str,
    all: &[T],
    spell: impl Fn(T) -> &'static str,
) -> Result<T, UnknownWord> {
    all.iter().copied().find(|&item| spell(item) == word).ok_or_else(|| UnknownWord {
        what,
        word: word.to_owned(),
        expected: all.iter().map(|&item| spell(item)).collect::<Vec<_>>().join(", "),
    })
}

/// Why a slot was recorded without running (stored as the row's `reason`, counted by the
/// `sandcron_slots_not_run_total` metric under the same word).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SlotReason {
    /// overlap = skip (or buffer-one with its one place taken): a run was in flight.
    Overlap,
    /// overlap = buffer-all with its buffer full.
    BufferFull,
    /// overlap = allow with `max_concurrent` runs in flight.
    MaxConcurrent,
    /// The circuit breaker is open (or its half-open probe is still running).
    BreakerOpen,
    /// Passed over (host down, clock jumped forward) and not caught up by the misfire policy.
    Misfire,
    /// Not started within `starting_deadline` of its fire time.
    Deadline,
    /// Lost while the store could not be written (recorded once it writes again).
    Store,
    /// Came due while the job's code was still compiling (a cold start) and not caught up
    /// by the misfire policy.
    Compiling,
}

impl SlotReason {
    /// Every reason, in declaration order.
    pub const ALL: [SlotReason; 8] = [
        SlotReason::Overlap,
        SlotReason::BufferFull,
        SlotReason::MaxConcurrent,
        SlotReason::BreakerOpen,
        SlotReason::Misfire,
        SlotReason::Deadline,
        SlotReason::Store,
        SlotReason::Compiling,
    ];

    /// The stored word: "skipped:overlap", "missed:deadline", ...
    pub const fn as_str(self) -> &'static str {
        match self {
            SlotReason::Overlap => "skipped:overlap",
            SlotReason::BufferFull => "skipped:buffer-full",
            SlotReason::MaxConcurrent => "skipped:max-concurrent",
            SlotReason::BreakerOpen => "skipped:breaker-open",
            SlotReason::Misfire => "missed:misfire",
            SlotReason::Deadline => "missed:deadline",
            SlotReason::Store => "missed:store",
            SlotReason::Compiling => "missed:compiling",
        }
    }

    /// The status a slot recorded for this reason gets: skipped (a policy chose not to run
    /// it) or missed (it could not run in time).
    pub fn status(self) -> RunStatus {
        match self {
            SlotReason::Overlap
            | SlotReason::BufferFull
            | SlotReason::MaxConcurrent
            | SlotReason::BreakerOpen => RunStatus::Skipped,
            SlotReason::Misfire
            | SlotReason::Deadline
            | SlotReason::Store
            | SlotReason::Compiling => RunStatus::Missed,
        }
    }
}

impl fmt::Display for SlotReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SlotReason {
    type Err = UnknownWord;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_word(s, "slot reason", &SlotReason::ALL, SlotReason::as_str)
    }
}

/// Why a run was stopped from outside (stored as an `interrupted` row's reason).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InterruptReason {
    /// The host shut down and the grace period ended first (the slot is retried).
    ShutDown,
    /// overlap = cancel-other: a newer slot of the job came due.
    CancelledBySlot,
    /// overlap = cancel-other: a manual run of the job was triggered.
    CancelledByRun,
    /// Found `running` after its host died (crash recovery; the slot is retried).
    HostStopped,
}

impl InterruptReason {
    /// Every reason, in declaration order.
    pub const ALL: [InterruptReason; 4] = [
        InterruptReason::ShutDown,
        InterruptReason::CancelledBySlot,
        InterruptReason::CancelledByRun,
        InterruptReason::HostStopped,
    ];

    /// The stored sentence, starting `interrupted: `.
    pub const fn as_str(self) -> &'static str {
        match self {
            InterruptReason::ShutDown => "interrupted: host shut down before the run finished",
            InterruptReason::CancelledBySlot => {
                "interrupted: cancelled by a newer slot (overlap = cancel-other)"
            }
            InterruptReason::CancelledByRun => {
                "interrupted: cancelled by a newer run (overlap = cancel-other)"
            }
            InterruptReason::HostStopped => "interrupted: host stopped while running",
        }
    }
}

impl fmt::Display for InterruptReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for InterruptReason {
    type Err = UnknownWord;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_word(s, "interrupt reason", &InterruptReason::ALL, InterruptReason::as_str)
    }
}

/// The circuit breaker's state (M4), as kept per job and stored in the `jobs` table as a
/// word (`breaker`) and, while open, an instant (`breaker_until_ms`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Slots run normally.
    Closed,
    /// Slots are skipped until the cooldown ends.
    Open {
        /// End of the cooldown, ms since the epoch.
        until_ms: i64,
    },
    /// The next slot is a probe; its outcome decides.
    HalfOpen,
}

/// A breaker word with no instant, or `open` stored without one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadBreaker {
    /// Not `closed`, `open` or `half-open`.
    #[error(transparent)]
    Unknown(#[from] UnknownWord),
    /// `open` needs the end of its cooldown.
    #[error("breaker state \"open\" stored without breaker_until_ms")]
    OpenWithoutEnd,
}

impl BreakerState {
    const WORDS: [&'static str; 3] = ["closed", "open", "half-open"];

    /// The stored word: `closed`, `open` or `half-open`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open { .. } => "open",
            BreakerState::HalfOpen => "half-open",
        }
    }

    /// While open, the end of the cooldown.
    pub fn until_ms(self) -> Option<i64> {
        match self {
            BreakerState::Open { until_ms } => Some(until_ms),
            _ => None,
        }
    }

    /// The state stored as `word` and `until_ms`, strictly: an unknown word, or `open`
    /// without its instant, is an error (a job must never reopen as closed by accident).
    pub fn from_stored(word: &str, until_ms: Option<i64>) -> Result<Self, BadBreaker> {
        match (parse_word(word, "breaker state", &Self::WORDS, |w| w)?, until_ms) {
            ("closed", _) => Ok(BreakerState::Closed),
            ("half-open", _) => Ok(BreakerState::HalfOpen),
            (_, Some(until_ms)) => Ok(BreakerState::Open { until_ms }),
            (_, None) => Err(BadBreaker::OpenWithoutEnd),
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for BreakerState {
    /// The word alone (the instant travels in its own field).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_reasons_round_trip_and_unknown_words_are_errors() {
        for reason in SlotReason::ALL {
            assert_eq!(reason.as_str().parse::<SlotReason>(), Ok(reason));
            let prefix = format!("{}:", reason.status());
            assert!(reason.as_str().starts_with(&prefix), "{reason} is not {prefix}...");
        }
        let err = "skipped:whatever".parse::<SlotReason>().unwrap_err();
        assert!(err.to_string().starts_with("unknown slot reason \"skipped:whatever\""), "{err}");
        for reason in InterruptReason::ALL {
            assert_eq!(reason.as_str().parse::<InterruptReason>(), Ok(reason));
            assert!(reason.as_str().starts_with("interrupted: "));
        }
        assert!("interrupted".parse::<InterruptReason>().is_err());
    }

    #[test]
    fn breaker_states_are_read_back_strictly() {
        for state in
            [BreakerState::Closed, BreakerState::HalfOpen, BreakerState::Open { until_ms: 9 }]
        {
            assert_eq!(BreakerState::from_stored(state.as_str(), state.until_ms()), Ok(state));
        }
        assert_eq!(BreakerState::from_stored("open", None), Err(BadBreaker::OpenWithoutEnd));
        let err = BreakerState::from_stored("Closed", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown breaker state \"Closed\" (expected one of closed, open, half-open)"
        );
        assert_eq!(serde_json::to_string(&BreakerState::Open { until_ms: 1 }).unwrap(), "\"open\"");
    }
}
