//! One-shot triggers: `at = "2026-12-01T00:00:00Z"`.
//!
//! An RFC 3339 time with an offset is an exact instant. Without an offset
//! (`2026-12-01T09:00:00`) it is a wall-clock time in the job's `timezone`, resolved with the
//! same `dst_gap` / `dst_fold` rules as cron (see `dst.rs`), so an operator can write the
//! local time they mean without looking up the offset for that date.

use chrono::{DateTime, NaiveDateTime, Utc};

use super::error::ScheduleError;

/// When a one-shot fires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum At {
    /// Written with an offset: one exact instant.
    Instant(DateTime<Utc>),
    /// Written without one: a local time in the schedule's zone.
    Local(NaiveDateTime),
}

impl At {
    pub(crate) fn parse(text: &str) -> Result<At, ScheduleError> {
        let text = text.trim();
        match DateTime::parse_from_rfc3339(text) {
            Ok(t) => Ok(At::Instant(t.with_timezone(&Utc))),
            Err(rfc_err) => ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
                .map(At::Local)
                .ok_or_else(|| ScheduleError::InvalidAt {
                    input: text.to_string(),
                    reason: rfc_err.to_string(),
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_make_instants_and_bare_times_are_local() {
        let utc = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(
            At::parse("2026-12-01T00:00:00Z").unwrap(),
            At::Instant(utc("2026-12-01T00:00:00Z"))
        );
        assert_eq!(
            At::parse("2026-12-01T01:00:00+01:00").unwrap(),
            At::Instant(utc("2026-12-01T00:00:00Z"))
        );
        let local =
            NaiveDateTime::parse_from_str("2026-12-01 09:30:00", "%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(At::parse("2026-12-01T09:30:00").unwrap(), At::Local(local));
        assert_eq!(At::parse(" 2026-12-01 09:30:00 ").unwrap(), At::Local(local));
    }

    #[test]
    fn garbage_is_an_error_naming_the_input() {
        let e = At::parse("tomorrow").unwrap_err().to_string();
        assert!(e.starts_with("at: invalid time 'tomorrow': "), "{e}");
        assert!(e.ends_with("expected RFC 3339, e.g. 2026-12-01T00:00:00Z"), "{e}");
        assert!(At::parse("2026-02-30T00:00:00Z").is_err());
    }
}
