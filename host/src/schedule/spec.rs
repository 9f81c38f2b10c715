//! [`ScheduleSpec`]: a manifest trigger validated together with its zone and DST policy,
//! and the one question the scheduler asks of it: the next fire time after an instant.
//!
//! Design: the spec is a plain value (`Clone + Eq`), with no cache and no clock, so the
//! watcher can compare an edited job's spec with the running one and the scheduler can
//! recompute any slot on any node and get the same answer (S2, S3).

use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::cron::CronPattern;
use super::dst_policy::{DstFold, DstGap};
use super::error::ScheduleError;
use super::interval::Every;
use super::once::At;
use super::{describe, dst};

/// A manifest's trigger, as written (M1). Exactly one per job.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// `schedule = "..."`: 5 fields, 6 (leading seconds), 7 (trailing year), an
    /// `@descriptor`, or `@every <duration>`.
    Cron(String),
    /// `every = "30s"` with an optional `phase`: epoch-aligned slots
    /// `epoch + phase + k * period`.
    Every {
        /// The period; whole seconds, at least one.
        period: Duration,
        /// Offset of each slot from the epoch-aligned grid; shorter than `period`.
        phase: Duration,
    },
    /// `at = "2026-12-01T00:00:00Z"`: one-shot. Without an offset, a local time in the
    /// schedule's zone.
    At(String),
}

/// A validated schedule: when a job fires.
#[derive(Clone, Debug)]
pub struct ScheduleSpec {
    /// The trigger as written, kept so the spec can be stored and rebuilt ([`Self::to_record`]).
    /// Not part of equality: `@every 30s` and `every = "30s"` are the same schedule.
    source: Trigger,
    kind: Kind,
    /// Read by cron and by an offset-less `at`; `every` and an `at` with an offset are
    /// instants already and ignore it.
    tz: Tz,
    gap: DstGap,
    fold: DstFold,
}

impl PartialEq for ScheduleSpec {
    fn eq(&self, other: &Self) -> bool {
        (&self.kind, self.tz, self.gap, self.fold) == (&other.kind, other.tz, other.gap, other.fold)
    }
}

impl Eq for ScheduleSpec {}

/// The stored form of a [`ScheduleSpec`].
#[derive(serde::Serialize, serde::Deserialize)]
struct ScheduleRecord {
    trigger: Trigger,
    timezone: String,
    dst_gap: DstGap,
    dst_fold: DstFold,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    // Boxed: a pattern is seven fields with their text; the others are a few words.
    Cron(Box<CronPattern>),
    Every(Every),
    At(At),
}

impl ScheduleSpec {
    /// Validates a trigger. `tz` is an IANA zone name; `None` means UTC. The DST policies
    /// apply to cron schedules with fixed hours and to an offset-less `at`; schedules whose
    /// hour is `*` or a step are absolute time and ignore them (S1).
    ///
    /// # Errors
    /// A [`ScheduleError`] naming the offending key, cron field or token: an unknown zone,
    /// a bad field or duration, a `phase` not shorter than its period, an unparsable `at`.
    pub fn new(
        trigger: Trigger,
        tz: Option<&str>,
        dst_gap: DstGap,
        dst_fold: DstFold,
    ) -> Result<Self, ScheduleError> {
        let tz = match tz {
            None => Tz::UTC,
            Some(name) => parse_timezone(name)?,
        };
        let source = trigger.clone();
        let kind = match trigger {
            Trigger::Cron(expr) => {
                let trimmed = expr.trim();
                let word = trimmed.split_whitespace().next().unwrap_or_default();
                if word.eq_ignore_ascii_case("@every") {
                    let period = trimmed[word.len()..].trim();
                    Kind::Every(Every::parse("schedule", period)?)
                } else {
                    Kind::Cron(Box::new(CronPattern::parse(trimmed)?))
                }
            }
            Trigger::Every { period, phase } => Kind::Every(Every::new("every", period, phase)?),
            Trigger::At(text) => Kind::At(At::parse(&text)?),
        };
        Ok(ScheduleSpec { source, kind, tz, gap: dst_gap, fold: dst_fold })
    }

    /// A self-contained text form (JSON) that [`Self::from_record`] turns back into an equal
    /// spec: how the store keeps a job's schedule for readers such as `sandcron jobs`.
    pub fn to_record(&self) -> String {
        let record = ScheduleRecord {
            trigger: self.source.clone(),
            timezone: self.tz.name().to_string(),
            dst_gap: self.gap,
            dst_fold: self.fold,
        };
        serde_json::to_string(&record).expect("a schedule record serializes")
    }

    /// Rebuilds a spec from [`Self::to_record`]'s text.
    ///
    /// # Errors
    /// Malformed text, or a record this version cannot validate any more.
    pub fn from_record(text: &str) -> Result<Self, ScheduleError> {
        let record: ScheduleRecord =
            serde_json::from_str(text).map_err(|err| ScheduleError::Record(err.to_string()))?;
        ScheduleSpec::new(record.trigger, Some(&record.timezone), record.dst_gap, record.dst_fold)
    }

    /// The first fire time strictly after `after`, or `None` if there is none (an `at`
    /// already past, a year range used up, a date that never exists).
    #[must_use]
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.kind {
            Kind::Cron(p) => {
                // Checked once per call, not cached: it is cheap next to a zone lookup and
                // keeps the spec a plain value.
                if p.year.is_none() && p.never_matches().is_some() {
                    return None;
                }
                let (gap, fold) = if p.is_absolute() {
                    (DstGap::Skip, DstFold::Both)
                } else {
                    (self.gap, self.fold)
                };
                dst::next_instant(self.tz, gap, fold, after, |from| p.next_local(from))
            }
            Kind::Every(e) => e.next_after(after),
            Kind::At(At::Instant(t)) => (*t > after).then_some(*t),
            Kind::At(At::Local(t)) => {
                let t = *t;
                dst::next_instant(self.tz, self.gap, self.fold, after, |from| {
                    (from <= t).then_some(t)
                })
            }
        }
    }

    /// Fire times strictly after `after`, ascending, each computed from the schedule (never
    /// from when a run ended, S2). Finite for `at` and bounded years, endless otherwise.
    pub fn iter_after(&self, after: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        let mut last = after;
        std::iter::from_fn(move || {
            let next = self.next_after(last)?;
            last = next;
            Some(next)
        })
    }

    /// The schedule in words, e.g. "every 10 seconds" or "at 02:30 every day
    /// (Europe/Berlin)".
    #[must_use]
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Cron(p) => describe::cron(p, self.tz),
            Kind::Every(e) => describe::every(e),
            Kind::At(a) => describe::at(a, self.tz),
        }
    }

    /// Why this schedule can never fire, when that is known without a clock (e.g.
    /// `0 0 30 2 *`: February has no 30th). `None` does not promise a future fire time:
    /// an `at` or a year range may simply be past; `next_after(now)` tells that.
    #[must_use]
    pub fn never_fires(&self) -> Option<String> {
        match &self.kind {
            Kind::Cron(p) => p.never_matches(),
            Kind::Every(_) | Kind::At(_) => None,
        }
    }

    /// The trigger as the manifest wrote it.
    #[must_use]
    pub fn source(&self) -> &Trigger {
        &self.source
    }

    /// The trigger as the manifest wrote it, in one line: the cron expression, `every 30s`
    /// (`+ 5s` with a phase), or the `at` instant.
    #[must_use]
    pub fn expression(&self) -> String {
        match &self.source {
            Trigger::Cron(text) | Trigger::At(text) => text.clone(),
            Trigger::Every { period, phase } if phase.is_zero() => {
                format!("every {}", humantime::format_duration(*period))
            }
            Trigger::Every { period, phase } => format!(
                "every {} + {}",
                humantime::format_duration(*period),
                humantime::format_duration(*phase)
            ),
        }
    }

    /// The zone cron fields are read in.
    #[must_use]
    pub fn timezone(&self) -> Tz {
        self.tz
    }
}

/// An IANA zone by its exact name (`Europe/Berlin`, `UTC`); an unknown name is answered
/// with the closest one, if any is close enough to be a typo.
pub(crate) fn parse_timezone(name: &str) -> Result<Tz, ScheduleError> {
    name.trim().parse().map_err(|_| ScheduleError::UnknownTimezone {
        name: name.to_string(),
        suggestion: closest_timezone(name.trim()),
    })
}

/// The IANA name nearest to `name` by edit distance (case-insensitive), when it differs by
/// at most a third of its length: `Europe/Berln` -> `Europe/Berlin`, `europe/paris` ->
/// `Europe/Paris`, but nothing for `Mars/Olympus`.
fn closest_timezone(name: &str) -> Option<String> {
    let wanted = name.to_ascii_lowercase();
    let (distance, zone) = chrono_tz::TZ_VARIANTS
        .iter()
        .map(|zone| (strsim::levenshtein(&wanted, &zone.name().to_ascii_lowercase()), zone))
        .min_by_key(|(distance, _)| *distance)?;
    (distance <= (wanted.chars().count() / 3).max(1)).then(|| zone.name().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn records_round_trip_to_equal_specs() {
        let specs = [
            ScheduleSpec::new(
                Trigger::Cron("30 2 * * *".into()),
                Some("Europe/Berlin"),
                DstGap::Skip,
                DstFold::Both,
            )
            .unwrap(),
            spec(Trigger::Every { period: secs(30), phase: secs(5) }, None),
            spec(Trigger::At("2026-12-01T00:00:00Z".into()), None),
        ];
        for original in specs {
            let back = ScheduleSpec::from_record(&original.to_record()).unwrap();
            assert_eq!(back, original);
        }
        assert!(ScheduleSpec::from_record("{").is_err());
    }

    fn spec(trigger: Trigger, tz: Option<&str>) -> ScheduleSpec {
        ScheduleSpec::new(trigger, tz, DstGap::default(), DstFold::default()).unwrap()
    }

    fn cron(expr: &str, tz: Option<&str>) -> ScheduleSpec {
        spec(Trigger::Cron(expr.into()), tz)
    }

    fn take(s: &ScheduleSpec, after: &str, n: usize) -> Vec<String> {
        s.iter_after(utc(after)).take(n).map(|t| t.to_rfc3339()).collect()
    }

    #[test]
    fn cron_in_a_zone_returns_utc_instants() {
        let s = cron("30 2 * * *", Some("Europe/Berlin"));
        assert_eq!(
            take(&s, "2025-06-01T00:00:00Z", 2),
            ["2025-06-01T00:30:00+00:00", "2025-06-02T00:30:00+00:00"]
        );
        // Default zone is UTC.
        let s = cron("30 2 * * *", None);
        assert_eq!(take(&s, "2025-06-01T00:00:00Z", 1), ["2025-06-01T02:30:00+00:00"]);
    }

    #[test]
    fn five_six_seven_fields_and_descriptors_end_to_end() {
        let after = "2025-06-11T13:14:15Z";
        assert_eq!(take(&cron("0 14 * * *", None), after, 1), ["2025-06-11T14:00:00+00:00"]);
        assert_eq!(take(&cron("20 14 13 * * *", None), after, 1), ["2025-06-11T13:14:20+00:00"]);
        assert_eq!(take(&cron("0 0 0 1 1 * 2027", None), after, 2), ["2027-01-01T00:00:00+00:00"]);
        assert_eq!(take(&cron("@weekly", None), after, 1), ["2025-06-15T00:00:00+00:00"]);
        assert_eq!(take(&cron("@monthly", None), after, 1), ["2025-07-01T00:00:00+00:00"]);
    }

    #[test]
    fn every_forms_agree() {
        let a = spec(Trigger::Cron("@every 30s".into()), None);
        let b = spec(Trigger::Every { period: secs(30), phase: Duration::ZERO }, None);
        assert_eq!(a, b);
        assert_eq!(
            take(&a, "2025-06-01T10:00:07Z", 3),
            ["2025-06-01T10:00:30+00:00", "2025-06-01T10:01:00+00:00", "2025-06-01T10:01:30+00:00"]
        );
        // `every` ignores the zone: slots are real-time instants.
        let c = spec(Trigger::Every { period: secs(3600), phase: secs(600) }, Some("Asia/Kolkata"));
        assert_eq!(take(&c, "2025-06-01T10:00:00Z", 1), ["2025-06-01T10:10:00+00:00"]);
        assert_eq!(c.describe(), "every hour, phase 10m");
    }

    #[test]
    fn at_fires_once_and_is_none_when_past() {
        let s = spec(Trigger::At("2026-12-01T00:00:00Z".into()), None);
        assert_eq!(take(&s, "2025-01-01T00:00:00Z", 5), ["2026-12-01T00:00:00+00:00"]);
        assert_eq!(s.next_after(utc("2026-12-01T00:00:00Z")), None);
        assert_eq!(s.never_fires(), None);
        // A local `at` inside Berlin's spring gap shifts to the gap's end, or is skipped.
        let local = Trigger::At("2026-03-29T02:30:00".into());
        let shift = spec(local.clone(), Some("Europe/Berlin"));
        assert_eq!(take(&shift, "2026-01-01T00:00:00Z", 5), ["2026-03-29T01:00:00+00:00"]);
        let skip =
            ScheduleSpec::new(local, Some("Europe/Berlin"), DstGap::Skip, DstFold::First).unwrap();
        assert_eq!(skip.next_after(utc("2026-01-01T00:00:00Z")), None);
        // In the autumn fold, `both` fires twice.
        let fold = Trigger::At("2026-10-25T02:30:00".into());
        let both =
            ScheduleSpec::new(fold, Some("Europe/Berlin"), DstGap::Shift, DstFold::Both).unwrap();
        assert_eq!(
            take(&both, "2026-01-01T00:00:00Z", 5),
            ["2026-10-25T00:30:00+00:00", "2026-10-25T01:30:00+00:00"]
        );
    }

    #[test]
    fn never_firing_schedules() {
        let feb30 = cron("0 0 30 2 *", None);
        assert_eq!(feb30.next_after(utc("2025-01-01T00:00:00Z")), None);
        assert_eq!(feb30.never_fires().unwrap(), "day-of-month '30' never occurs in month '2'");
        assert_eq!(feb30.iter_after(utc("2025-01-01T00:00:00Z")).count(), 0);
        // A year range fully in the past: nothing after `after`, but not impossible.
        let past = cron("0 0 0 1 1 * 2020-2024", None);
        assert_eq!(past.next_after(utc("2025-01-01T00:00:00Z")), None);
        assert_eq!(past.never_fires(), None);
        assert_eq!(past.iter_after(utc("2019-06-01T00:00:00Z")).count(), 5);
    }

    #[test]
    fn next_feb_29_is_fast() {
        let s = cron("0 0 29 2 *", Some("America/New_York"));
        let start = std::time::Instant::now();
        let times = take(&s, "2025-01-01T00:00:00Z", 3);
        assert_eq!(
            times,
            ["2028-02-29T05:00:00+00:00", "2032-02-29T05:00:00+00:00", "2036-02-29T05:00:00+00:00"]
        );
        assert!(start.elapsed() < std::time::Duration::from_millis(50));
    }

    #[test]
    fn typical_cron_is_microseconds() {
        let s = cron("*/5 9-17 * * MON-FRI", Some("Europe/Berlin"));
        let mut t = utc("2025-01-01T00:00:00Z");
        let start = std::time::Instant::now();
        for _ in 0..10_000 {
            t = s.next_after(t).unwrap();
        }
        // 10k calls; even an unoptimised test build should stay far below 1 s.
        assert!(start.elapsed() < std::time::Duration::from_secs(1), "{:?}", start.elapsed());
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let err = |t: Trigger, tz: Option<&str>| {
            ScheduleSpec::new(t, tz, DstGap::Shift, DstFold::First).unwrap_err().to_string()
        };
        assert_eq!(
            err(Trigger::Cron("0 0 * * *".into()), Some("Europe/Berln")),
            "unknown timezone 'Europe/Berln'; did you mean 'Europe/Berlin'?"
        );
        assert_eq!(
            err(Trigger::Cron("0 0 * * *".into()), Some("america/new_york")),
            "unknown timezone 'america/new_york'; did you mean 'America/New_York'?"
        );
        assert_eq!(
            err(Trigger::Cron("0 0 * * *".into()), Some("Mars/Olympus")),
            "unknown timezone 'Mars/Olympus'; expected an IANA name such as 'Europe/Berlin' or 'UTC'"
        );
        assert_eq!(
            err(Trigger::Cron("0 25 * * *".into()), None),
            "cron field 'hour': 25 is out of range 0-23"
        );
        assert_eq!(
            err(Trigger::Every { period: secs(30), phase: secs(30) }, None),
            "phase: '30s' must be shorter than the period '30s'"
        );
        assert!(
            err(Trigger::Cron("@every".into()), None).starts_with("schedule: invalid duration ''")
        );
        assert!(
            err(Trigger::Cron("@every 5x".into()), None)
                .starts_with("schedule: invalid duration '5x'")
        );
        assert!(
            err(Trigger::At("next week".into()), None).starts_with("at: invalid time 'next week'")
        );
        assert_eq!(
            "sometimes".parse::<DstGap>().unwrap_err().to_string(),
            "dst_gap: expected 'shift' or 'skip', got 'sometimes'"
        );
        assert_eq!(
            "twice".parse::<DstFold>().unwrap_err().to_string(),
            "dst_fold: expected 'first', 'last' or 'both', got 'twice'"
        );
    }

    #[test]
    fn describe_and_timezone() {
        let s = cron("30 2 * * *", Some("Europe/Berlin"));
        assert_eq!(s.describe(), "at 02:30 every day (Europe/Berlin)");
        assert_eq!(s.timezone(), chrono_tz::Europe::Berlin);
        assert_eq!(spec(Trigger::Cron("@every 10s".into()), None).describe(), "every 10 seconds");
    }

    /// The S1 examples, through the public API, in both zones: a wall-clock job shifts /
    /// folds per policy while `*/15 * * * *` keeps a steady 15 real minutes.
    #[test]
    fn s1_dst_through_the_public_api() {
        for (tz, spring, fall) in [
            ("Europe/Berlin", "2025-03-30T00:00:00Z", "2025-10-26T00:00:00Z"),
            ("America/New_York", "2025-03-09T06:00:00Z", "2025-11-02T04:00:00Z"),
        ] {
            let q = cron("*/15 * * * *", Some(tz));
            for start in [spring, fall] {
                let v: Vec<_> = q.iter_after(utc(start)).take(20).collect();
                assert!(v.windows(2).all(|w| (w[1] - w[0]).num_minutes() == 15), "{tz} {start}");
            }
        }
        let wall = cron("30 2 * * *", Some("America/New_York"));
        assert_eq!(take(&wall, "2025-03-09T00:00:00Z", 1), ["2025-03-09T07:00:00+00:00"]);
        let wall = cron("30 1 * * *", Some("America/New_York"));
        assert_eq!(
            take(&wall, "2025-11-02T00:00:00Z", 2),
            ["2025-11-02T05:30:00+00:00", "2025-11-03T06:30:00+00:00"]
        );
    }
}
