//! Errors from building a schedule out of a manifest's trigger.
//!
//! One enum, [`ScheduleError`], for every way a trigger can be rejected. Each variant names
//! the manifest key or cron field and the offending token, because the message is shown
//! as-is to an operator next to the file and line (M7) and should need no translation.

/// Why a trigger, timezone or DST policy was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// A stored schedule record could not be read back.
    #[error("unreadable stored schedule: {0}")]
    Record(String),
    /// The cron expression is empty or only whitespace.
    #[error("schedule is empty")]
    Empty,

    /// A cron expression with a field count other than 5, 6 or 7.
    #[error(
        "cron expression '{expr}' has {count} fields; expected 5 (minute hour day-of-month \
         month day-of-week), 6 (leading second) or 7 (leading second, trailing year)"
    )]
    FieldCount {
        /// The expression as written.
        expr: String,
        /// How many whitespace-separated fields it has.
        count: usize,
    },

    /// A value outside its field's range, e.g. hour 25.
    #[error("cron field '{field}': {value} is out of range {min}-{max}")]
    OutOfRange {
        /// The field's name (`minute`, `day-of-week`, ...).
        field: &'static str,
        /// The value as written (after name lookup).
        value: u64,
        /// Smallest allowed value.
        min: u32,
        /// Largest allowed value.
        max: u32,
    },

    /// A token that is not a number, name, range, list or step.
    #[error("cron field '{field}': {reason}")]
    InvalidField {
        /// The field's name.
        field: &'static str,
        /// What is wrong, quoting the token.
        reason: String,
    },

    /// Quartz-style extensions (`L`, `W`, `#`) that this scheduler does not implement.
    #[error("cron field '{field}': '{token}' ({feature}) is not supported")]
    Unsupported {
        /// The field's name.
        field: &'static str,
        /// The token as written.
        token: String,
        /// The feature that token asks for.
        feature: &'static str,
    },

    /// An `@word` that is not one of the known descriptors.
    #[error(
        "unknown schedule descriptor '{0}'; expected @yearly, @annually, @monthly, @weekly, \
         @daily, @midnight, @hourly or @every <duration>"
    )]
    UnknownDescriptor(String),

    /// A `timezone` that is not an IANA zone name, with the closest known name.
    #[error(
        "unknown timezone '{name}'; {}",
        match suggestion {
            Some(zone) => format!("did you mean '{zone}'?"),
            None => "expected an IANA name such as 'Europe/Berlin' or 'UTC'".to_string(),
        }
    )]
    UnknownTimezone {
        /// The name as written.
        name: String,
        /// The closest IANA name, when one is close enough to be a likely typo.
        suggestion: Option<String>,
    },

    /// A duration (`every`, `phase`, `@every`) that does not parse.
    #[error("{key}: invalid duration '{input}': {reason}")]
    InvalidDuration {
        /// The manifest key (`every`, `phase`, `schedule`).
        key: &'static str,
        /// The text as written.
        input: String,
        /// What is wrong with it.
        reason: String,
    },

    /// `phase` must place the slot inside its period.
    #[error("phase: '{phase}' must be shorter than the period '{period}'")]
    PhaseNotBelowPeriod {
        /// The phase as written.
        phase: String,
        /// The period as written.
        period: String,
    },

    /// An `at` that is not an RFC 3339 time.
    #[error("at: invalid time '{input}': {reason}; expected RFC 3339, e.g. 2026-12-01T00:00:00Z")]
    InvalidAt {
        /// The text as written.
        input: String,
        /// The parser's complaint.
        reason: String,
    },

    /// A `dst_gap` other than `shift` or `skip`.
    #[error("dst_gap: expected 'shift' or 'skip', got '{0}'")]
    InvalidDstGap(String),

    /// A `dst_fold` other than `first`, `last` or `both`.
    #[error("dst_fold: expected 'first', 'last' or 'both', got '{0}'")]
    InvalidDstFold(String),
}
