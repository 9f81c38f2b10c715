//! Fixed intervals (`every = "30s"`, `@every 30s`) and the duration syntax they share.
//!
//! Slots are `epoch + phase + k * period` in real (UTC) time. Design: anchoring to the Unix
//! epoch rather than to the host's start time is what makes the slots identical across
//! restarts and across nodes (S2, S3), so two nodes compute the same slot keys without
//! talking; `phase` is how an operator spreads jobs with the same period apart.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::error::ScheduleError;

/// An epoch-aligned interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Every {
    pub(crate) period_secs: i64,
    pub(crate) phase_secs: i64,
}

impl Every {
    /// `@every 30s`: a duration written in the cron string, no phase.
    pub(crate) fn parse(key: &'static str, text: &str) -> Result<Every, ScheduleError> {
        let period = humantime::parse_duration(text.trim())
            .map_err(|e| invalid(key, text.trim(), &e.to_string()))?;
        Every::new(key, period, Duration::ZERO)
    }

    /// `every` + `phase` as parsed durations. `key` names the manifest key the period came
    /// from, for messages.
    pub(crate) fn new(
        key: &'static str,
        period: Duration,
        phase: Duration,
    ) -> Result<Every, ScheduleError> {
        let period_secs = whole_secs(key, period)?;
        if period_secs == 0 {
            return Err(invalid(key, &show(period), "the period must be at least 1 second"));
        }
        let phase_secs = whole_secs("phase", phase)?;
        if phase_secs >= period_secs {
            return Err(ScheduleError::PhaseNotBelowPeriod {
                phase: show(phase),
                period: show(period),
            });
        }
        Ok(Every { period_secs, phase_secs })
    }

    /// The first slot strictly after `after`.
    pub(crate) fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // `timestamp()` floors, so an `after` with nanoseconds sitting exactly on a slot's
        // second still moves to the next slot.
        let since_phase = after.timestamp().checked_sub(self.phase_secs)?;
        let k = since_phase.div_euclid(self.period_secs).checked_add(1)?;
        let secs = k.checked_mul(self.period_secs)?.checked_add(self.phase_secs)?;
        DateTime::from_timestamp(secs, 0)
    }
}

/// Slots are whole seconds, like cron's, so slot keys never carry sub-second noise.
fn whole_secs(key: &'static str, d: Duration) -> Result<i64, ScheduleError> {
    if d.subsec_nanos() != 0 {
        return Err(invalid(key, &show(d), "must be a whole number of seconds"));
    }
    i64::try_from(d.as_secs()).map_err(|_| invalid(key, &show(d), "too long"))
}

fn show(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

fn invalid(key: &'static str, input: &str, reason: &str) -> ScheduleError {
    ScheduleError::InvalidDuration { key, input: input.to_string(), reason: reason.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// Parses like the manifest does (humantime) and builds the interval.
    fn every(period: &str, phase: Option<&str>) -> Every {
        try_every(period, phase).unwrap()
    }

    fn try_every(period: &str, phase: Option<&str>) -> Result<Every, ScheduleError> {
        let d = |t: &str| humantime::parse_duration(t).unwrap();
        Every::new("every", d(period), phase.map_or(Duration::ZERO, d))
    }

    #[test]
    fn durations() {
        assert_eq!(every("30s", None).period_secs, 30);
        assert_eq!(every("5m", None).period_secs, 300);
        assert_eq!(every("1h30m", None).period_secs, 5400);
        assert_eq!(every("1h 30m", None).period_secs, 5400);
        assert_eq!(every("2d", None).period_secs, 172_800);
    }

    #[test]
    fn slots_are_aligned_to_the_epoch() {
        let e = every("30s", None);
        assert_eq!(e.next_after(utc("2025-06-01T10:00:07Z")), Some(utc("2025-06-01T10:00:30Z")));
        // Strictly after: a slot itself moves on, also with nanoseconds past it.
        assert_eq!(e.next_after(utc("2025-06-01T10:00:30Z")), Some(utc("2025-06-01T10:01:00Z")));
        assert_eq!(
            e.next_after(utc("2025-06-01T10:00:30.001Z")),
            Some(utc("2025-06-01T10:01:00Z"))
        );
        // 7 minutes does not divide an hour: slots are multiples of 420 s since 1970.
        let e = every("7m", None);
        let next = e.next_after(utc("2025-06-01T10:00:00Z")).unwrap();
        assert_eq!(next.timestamp() % 420, 0);
        assert!(next > utc("2025-06-01T10:00:00Z") && next <= utc("2025-06-01T10:07:00Z"));
        assert_eq!(e.next_after(next), Some(next + chrono::TimeDelta::seconds(420)));
        // Before the epoch works too (div_euclid, not `/`).
        assert_eq!(
            every("1h", None).next_after(utc("1969-12-31T22:30:00Z")),
            Some(utc("1969-12-31T23:00:00Z"))
        );
    }

    #[test]
    fn phase_shifts_every_slot() {
        let e = every("1h", Some("15m"));
        assert_eq!(e.next_after(utc("2025-06-01T10:00:00Z")), Some(utc("2025-06-01T10:15:00Z")));
        assert_eq!(e.next_after(utc("2025-06-01T10:15:00Z")), Some(utc("2025-06-01T11:15:00Z")));
        assert_eq!(e.next_after(utc("2025-06-01T10:14:59Z")), Some(utc("2025-06-01T10:15:00Z")));
        // A daily interval is midnight UTC plus the phase, whatever the host's zone.
        let e = every("1d", Some("2h"));
        assert_eq!(e.next_after(utc("2025-06-01T03:00:00Z")), Some(utc("2025-06-02T02:00:00Z")));
    }

    #[test]
    fn errors() {
        let err = |p: &str, ph: Option<&str>| try_every(p, ph).unwrap_err().to_string();
        assert_eq!(err("1m", Some("1m")), "phase: '1m' must be shorter than the period '1m'");
        assert_eq!(err("30s", Some("2m")), "phase: '2m' must be shorter than the period '30s'");
        assert_eq!(
            err("0s", None),
            "every: invalid duration '0s': the period must be at least 1 second"
        );
        assert_eq!(
            err("500ms", None),
            "every: invalid duration '500ms': must be a whole number of seconds"
        );
        assert_eq!(
            err("1m", Some("1500ms")),
            "phase: invalid duration '1s 500ms': must be a whole number of seconds"
        );
        let text = |t: &str| Every::parse("schedule", t).unwrap_err().to_string();
        assert!(text("30x").starts_with("schedule: invalid duration '30x': "), "{}", text("30x"));
        assert!(text("").starts_with("schedule: invalid duration '': "), "{}", text(""));
        assert_eq!(Every::parse("schedule", " 1h30m ").unwrap(), every("90m", None));
    }
}
