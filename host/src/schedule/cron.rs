//! Cron expressions: 5, 6 or 7 fields and the `@daily`-style descriptors, matched against
//! *wall-clock* (naive local) times.
//!
//! [`CronPattern`] owns the parsed fields and one question: "the first local time at or
//! after this one that the fields allow" ([`CronPattern::next_local`]). It knows nothing of
//! time zones; `dst.rs` turns those local times into instants. The search goes field by
//! field (year, month, day, hour, minute, second) and jumps with bit masks, so the next
//! `0 0 29 2 *` is found by looking at one day per year, not by stepping minutes.

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};

use super::error::ScheduleError;
use super::field::{Field, FieldKind};

/// How many years ahead to look when the pattern has no year field. A pattern that can fire
/// at all fires within 28 years (the weekday cycle of Feb 29); impossible ones are caught at
/// parse time, so this bound only guards against a bug turning into an endless loop.
const SEARCH_YEARS: i32 = 400;

/// A parsed cron expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CronPattern {
    /// The expression as written (descriptors kept as `@daily`), for `describe`.
    pub(crate) text: String,
    pub(crate) second: Field,
    pub(crate) minute: Field,
    pub(crate) hour: Field,
    pub(crate) dom: Field,
    pub(crate) month: Field,
    pub(crate) dow: Field,
    /// `None` when there is no year field: any year.
    pub(crate) year: Option<Field>,
}

impl CronPattern {
    /// Parses a 5/6/7-field expression or one of the fixed descriptors. `@every` is not a
    /// cron pattern and is handled by the caller.
    pub(crate) fn parse(expr: &str) -> Result<CronPattern, ScheduleError> {
        let expr = expr.trim();
        if expr.is_empty() {
            return Err(ScheduleError::Empty);
        }
        let expanded = if expr.starts_with('@') { descriptor(expr)? } else { expr };
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        let (sec, rest, year) = match parts.len() {
            5 => ("0", &parts[..], None),
            6 => (parts[0], &parts[1..], None),
            7 => (parts[0], &parts[1..6], Some(parts[6])),
            count => return Err(ScheduleError::FieldCount { expr: expr.to_string(), count }),
        };
        Ok(CronPattern {
            text: expr.to_string(),
            second: Field::parse(FieldKind::Second, sec)?,
            minute: Field::parse(FieldKind::Minute, rest[0])?,
            hour: Field::parse(FieldKind::Hour, rest[1])?,
            dom: Field::parse(FieldKind::DayOfMonth, rest[2])?,
            month: Field::parse(FieldKind::Month, rest[3])?,
            dow: Field::parse(FieldKind::DayOfWeek, rest[4])?,
            // A year field of `*` is the same as none; keeping it `None` keeps the search
            // unbounded instead of stopping at 2099.
            year: match year {
                Some(y) if y != "*" => Some(Field::parse(FieldKind::Year, y)?),
                _ => None,
            },
        })
    }

    /// S1: an hour field that is a wildcard or a step (`*`, `*/2`, `1-5/2`) is absolute
    /// time; fixed hours (`2`, `1,3`, `9-17`) are wall-clock time subject to `dst_gap` /
    /// `dst_fold`.
    pub(crate) fn is_absolute(&self) -> bool {
        self.hour.star || self.hour.text.contains('/')
    }

    /// The Vixie day rule: when both day fields are restricted a day matching either one
    /// fires; when either starts with `*` both must match (the `*` one matches broadly).
    fn day_matches(&self, day: u32, weekday: u32) -> bool {
        let dom = self.dom.values.contains(day);
        let dow = self.dow.values.contains(weekday);
        if self.dom.star || self.dow.star { dom && dow } else { dom || dow }
    }

    fn year_allowed(&self, year: i32) -> bool {
        match &self.year {
            None => true,
            Some(f) => u32::try_from(year).is_ok_and(|y| f.values.contains(y)),
        }
    }

    /// The first local time `>= from` (to the second) that the fields allow.
    pub(crate) fn next_local(&self, from: NaiveDateTime) -> Option<NaiveDateTime> {
        let start_year = from.year();
        let last_year = match &self.year {
            Some(f) => f.values.iter_from(0).last()? as i32,
            None => start_year.saturating_add(SEARCH_YEARS),
        };
        for year in start_year..=last_year {
            if !self.year_allowed(year) {
                continue;
            }
            // `on_*` = every field above this one still equals `from`'s, so this field
            // starts at `from`'s value instead of its minimum.
            let on_year = year == start_year;
            for month in self.month.values.iter_from(if on_year { from.month() } else { 1 }) {
                let on_month = on_year && month == from.month();
                let first = NaiveDate::from_ymd_opt(year, month, 1)?;
                let first_weekday = first.weekday().num_days_from_sunday();
                let first_day = if on_month { from.day() } else { 1 };
                for day in first_day..=days_in_month(year, month) {
                    if !self.day_matches(day, (first_weekday + day - 1) % 7) {
                        continue;
                    }
                    let on_day = on_month && day == from.day();
                    if let Some(t) = self.time_in_day(on_day.then_some(from)) {
                        return Some(first.with_day(day)?.and_time(t));
                    }
                }
            }
        }
        None
    }

    /// The first allowed time of day, at or after `from`'s time when given.
    fn time_in_day(&self, from: Option<NaiveDateTime>) -> Option<chrono::NaiveTime> {
        let (h0, m0, s0) = from.map_or((0, 0, 0), |f| (f.hour(), f.minute(), f.second()));
        for hour in self.hour.values.iter_from(h0) {
            let on_hour = from.is_some() && hour == h0;
            for minute in self.minute.values.iter_from(if on_hour { m0 } else { 0 }) {
                let on_minute = on_hour && minute == m0;
                if let Some(second) = self.second.values.next_from(if on_minute { s0 } else { 0 }) {
                    return chrono::NaiveTime::from_hms_opt(hour, minute, second);
                }
            }
        }
        None
    }

    /// Why the pattern can never match any date, when the fields alone show it
    /// (e.g. `0 0 30 2 *`). `None` means it matches some date.
    pub(crate) fn never_matches(&self) -> Option<String> {
        if let Some(year) = &self.year {
            let first = year.values.min()? as i32;
            let start = NaiveDate::from_ymd_opt(first, 1, 1)?.and_hms_opt(0, 0, 0)?;
            return self.next_local(start).is_none().then(|| {
                format!(
                    "no date in year(s) '{}' matches day-of-month '{}', month '{}' and \
                     day-of-week '{}'",
                    year.text, self.dom.text, self.month.text, self.dow.text
                )
            });
        }
        // Both day fields restricted: any weekday in any month fires.
        if !self.dom.star && !self.dow.star {
            return None;
        }
        // Otherwise the day-of-month must exist in one of the months; every weekday falls
        // on every (month, day) over the years, Feb 29 included, so the weekday can't
        // make it impossible.
        let possible = self.month.values.iter_from(1).any(|m| {
            let longest = if m == 2 { 29 } else { days_in_month(2001, m) };
            self.dom.values.next_from(1).is_some_and(|d| d <= longest)
        });
        (!possible).then(|| {
            format!("day-of-month '{}' never occurs in month '{}'", self.dom.text, self.month.text)
        })
    }
}

/// The fixed descriptors as 6-field expressions.
fn descriptor(word: &str) -> Result<&'static str, ScheduleError> {
    Ok(match word.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 0 1 1 *",
        "@monthly" => "0 0 0 1 * *",
        "@weekly" => "0 0 0 * * 0",
        "@daily" | "@midnight" => "0 0 0 * * *",
        "@hourly" => "0 0 * * * *",
        _ => return Err(ScheduleError::UnknownDescriptor(word.to_string())),
    })
}

pub(crate) fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if NaiveDate::from_ymd_opt(year, 2, 29).is_some() => 29,
        2 => 28,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    fn next(expr: &str, from: &str) -> Option<String> {
        let p = CronPattern::parse(expr).unwrap();
        p.next_local(at(from)).map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
    }

    fn nexts(expr: &str, from: &str, n: usize) -> Vec<String> {
        let p = CronPattern::parse(expr).unwrap();
        let mut out = Vec::new();
        let mut t = at(from);
        for _ in 0..n {
            let m = p.next_local(t).unwrap();
            out.push(m.format("%Y-%m-%d %H:%M:%S").to_string());
            t = m + chrono::Duration::seconds(1);
        }
        out
    }

    #[test]
    fn five_fields_have_second_zero_and_search_is_inclusive() {
        assert_eq!(next("30 2 * * *", "2025-06-01 02:30:00").unwrap(), "2025-06-01 02:30:00");
        assert_eq!(next("30 2 * * *", "2025-06-01 02:30:01").unwrap(), "2025-06-02 02:30:00");
        assert_eq!(
            nexts("*/20 9-10 * * *", "2025-06-01 09:50:00", 3),
            ["2025-06-01 10:00:00", "2025-06-01 10:20:00", "2025-06-01 10:40:00"]
        );
    }

    #[test]
    fn six_fields_lead_with_seconds() {
        assert_eq!(
            nexts("*/20 * * * * *", "2025-06-01 09:59:41", 3),
            ["2025-06-01 10:00:00", "2025-06-01 10:00:20", "2025-06-01 10:00:40"]
        );
        assert_eq!(next("15 30 2 * * *", "2025-06-01 02:30:16").unwrap(), "2025-06-02 02:30:15");
    }

    #[test]
    fn seven_fields_end_with_a_year() {
        assert_eq!(
            next("0 0 12 1 1 * 2030", "2025-06-01 00:00:00").unwrap(),
            "2030-01-01 12:00:00"
        );
        assert_eq!(next("0 0 12 1 1 * 2020-2024", "2025-06-01 00:00:00"), None);
        assert_eq!(
            nexts("0 0 0 1 1 * 2026,2028", "2025-01-01 00:00:00", 2),
            ["2026-01-01 00:00:00", "2028-01-01 00:00:00"]
        );
        // `*` as the year is the same as no year: not capped at 2099.
        assert_eq!(next("0 0 0 1 1 * *", "2150-06-01 00:00:00").unwrap(), "2151-01-01 00:00:00");
    }

    #[test]
    fn descriptors() {
        let from = "2025-06-11 13:14:15"; // a Wednesday
        assert_eq!(next("@yearly", from).unwrap(), "2026-01-01 00:00:00");
        assert_eq!(next("@annually", from).unwrap(), "2026-01-01 00:00:00");
        assert_eq!(next("@monthly", from).unwrap(), "2025-07-01 00:00:00");
        assert_eq!(next("@weekly", from).unwrap(), "2025-06-15 00:00:00");
        assert_eq!(next("@daily", from).unwrap(), "2025-06-12 00:00:00");
        assert_eq!(next("@MIDNIGHT", from).unwrap(), "2025-06-12 00:00:00");
        assert_eq!(next("@hourly", from).unwrap(), "2025-06-11 14:00:00");
        assert!(CronPattern::parse("@hourly").unwrap().is_absolute());
        assert!(!CronPattern::parse("@daily").unwrap().is_absolute());
    }

    #[test]
    fn vixie_rule_ors_two_restricted_day_fields() {
        // The 15th or any Monday. 2025-06-11 is a Wednesday.
        assert_eq!(
            nexts("0 0 15 * MON", "2025-06-11 00:00:00", 4),
            [
                "2025-06-15 00:00:00", // Sunday the 15th
                "2025-06-16 00:00:00", // Monday
                "2025-06-23 00:00:00",
                "2025-06-30 00:00:00",
            ]
        );
    }

    #[test]
    fn vixie_rule_star_step_day_of_month_counts_as_unrestricted() {
        // `*/2` starts with `*`, so it ANDs with Monday: odd days that are Mondays.
        // June 2025 Mondays: 2, 9, 16, 23, 30; odd ones: 9, 23. July: 7, 21.
        assert_eq!(
            nexts("0 0 */2 * 1", "2025-06-01 00:00:00", 4),
            [
                "2025-06-09 00:00:00",
                "2025-06-23 00:00:00",
                "2025-07-07 00:00:00",
                "2025-07-21 00:00:00"
            ]
        );
        // Only one restricted: it alone decides.
        assert_eq!(next("0 0 * * FRI", "2025-06-11 00:00:00").unwrap(), "2025-06-13 00:00:00");
        assert_eq!(next("0 0 20 * *", "2025-06-11 00:00:00").unwrap(), "2025-06-20 00:00:00");
        // Sunday as 7.
        assert_eq!(next("0 0 * * 7", "2025-06-11 00:00:00").unwrap(), "2025-06-15 00:00:00");
    }

    #[test]
    fn absolute_when_the_hour_is_a_wildcard_or_a_step() {
        let abs = |e: &str| CronPattern::parse(e).unwrap().is_absolute();
        assert!(abs("*/5 * * * *") && abs("0 */2 * * *") && abs("*/30 * * * * *"));
        assert!(abs("0 1-5/2 * * *") && abs("0 * * * *"));
        assert!(!abs("30 2 * * *") && !abs("*/15 2 * * *") && !abs("0 1,3 * * *"));
        assert!(!abs("0 9-17 * * *"));
    }

    #[test]
    fn step_hours_and_names() {
        assert_eq!(
            nexts("0 */6 * * *", "2025-06-11 07:00:00", 3),
            ["2025-06-11 12:00:00", "2025-06-11 18:00:00", "2025-06-12 00:00:00"]
        );
        assert_eq!(
            next("0 9 * JUL-AUG MON-FRI", "2025-06-11 00:00:00").unwrap(),
            "2025-07-01 09:00:00"
        );
    }

    #[test]
    fn feb_29_is_found_without_scanning() {
        let p = CronPattern::parse("0 0 29 2 *").unwrap();
        let start = std::time::Instant::now();
        assert_eq!(p.next_local(at("2025-03-01 00:00:00")), Some(at("2028-02-29 00:00:00")));
        assert_eq!(p.next_local(at("2096-03-01 00:00:00")), Some(at("2104-02-29 00:00:00")));
        assert!(start.elapsed() < std::time::Duration::from_millis(50));
        // A star-step day ANDs with the weekday: the 1st or 29th of February on a Monday.
        assert_eq!(next("0 0 */28 2 MON", "2025-01-01 00:00:00").unwrap(), "2027-02-01 00:00:00");
    }

    #[test]
    fn impossible_dates_are_known_at_parse_time() {
        let never = |e: &str| CronPattern::parse(e).unwrap().never_matches();
        assert_eq!(never("0 0 30 2 *").unwrap(), "day-of-month '30' never occurs in month '2'");
        assert!(never("0 0 31 4,6 *").is_some());
        assert!(never("0 0 31 4,5 *").is_none());
        assert!(never("0 0 29 2 *").is_none());
        // Both day fields restricted: Mondays in February fire.
        assert!(never("0 0 30 2 MON").is_none());
        // Feb 29 2025 does not exist and that is the only year allowed.
        assert_eq!(
            never("0 0 0 29 2 * 2025").unwrap(),
            "no date in year(s) '2025' matches day-of-month '29', month '2' and day-of-week '*'"
        );
        assert!(never("0 0 0 29 2 * 2028").is_none());
        assert_eq!(next("0 0 30 2 *", "2025-01-01 00:00:00"), None);
    }

    #[test]
    fn parse_errors() {
        let err = |e: &str| CronPattern::parse(e).unwrap_err().to_string();
        assert_eq!(err("0 25 * * *"), "cron field 'hour': 25 is out of range 0-23");
        assert_eq!(err("60 * * * * *"), "cron field 'second': 60 is out of range 0-59");
        assert_eq!(err("* * * 13 *"), "cron field 'month': 13 is out of range 1-12");
        assert_eq!(err("* * * * 8"), "cron field 'day-of-week': 8 is out of range 0-7");
        assert!(err("* * * *").starts_with("cron expression '* * * *' has 4 fields; expected 5"));
        assert!(err("* * * * * * * *").contains("has 8 fields"));
        assert!(err("@reboot").starts_with("unknown schedule descriptor '@reboot'"));
        assert_eq!(err("  "), "schedule is empty");
    }
}
