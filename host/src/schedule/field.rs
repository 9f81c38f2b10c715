//! One cron field: its text parsed into the set of values it allows.
//!
//! [`FieldKind`] knows each position's range and names; [`Field::parse`] turns `1-5/2,MON`
//! style text into a [`ValueSet`]. The parser is hand-written rather than borrowed from a
//! cron crate because the Vixie day rule (S1) needs to know whether a field *starts with*
//! `*`: of the crates we read, cron 0.17 always ANDs the two day fields and croner 4 tests
//! the field text `== "*"`, so `*/2` counts as restricted there; and our DST policies
//! (`dst_gap`, `dst_fold`) need the raw wall-clock candidates, which both hide.

use super::error::ScheduleError;

/// The seven cron positions, in the order they are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldKind {
    Second,
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
    Year,
}

const MONTH_NAMES: [&str; 12] =
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl FieldKind {
    /// The name used in error messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            FieldKind::Second => "second",
            FieldKind::Minute => "minute",
            FieldKind::Hour => "hour",
            FieldKind::DayOfMonth => "day-of-month",
            FieldKind::Month => "month",
            FieldKind::DayOfWeek => "day-of-week",
            FieldKind::Year => "year",
        }
    }

    /// Inclusive range as written; day-of-week accepts 7 as a second Sunday.
    pub(crate) fn range(self) -> (u32, u32) {
        match self {
            FieldKind::Second | FieldKind::Minute => (0, 59),
            FieldKind::Hour => (0, 23),
            FieldKind::DayOfMonth => (1, 31),
            FieldKind::Month => (1, 12),
            FieldKind::DayOfWeek => (0, 7),
            FieldKind::Year => (1970, 2099),
        }
    }

    /// Value of a three-letter name (JAN, MON), if this field has names.
    fn name_value(self, token: &str) -> Option<u32> {
        let (names, first): (&[&str], u32) = match self {
            FieldKind::Month => (&MONTH_NAMES, 1),
            FieldKind::DayOfWeek => (&DAY_NAMES, 0),
            _ => return None,
        };
        let pos = names.iter().position(|n| n.eq_ignore_ascii_case(token))?;
        Some(first + pos as u32)
    }
}

/// A set of small integers (at most 192 values above a base), as three bit words.
///
/// Bits rather than a `Vec` so "next allowed value from here" is a mask and a
/// `trailing_zeros`, which keeps the field-by-field search in `cron.rs` in microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ValueSet {
    base: u32,
    bits: [u64; 3],
}

impl ValueSet {
    fn empty(base: u32) -> Self {
        ValueSet { base, bits: [0; 3] }
    }

    fn insert(&mut self, value: u32) {
        let i = value - self.base;
        self.bits[(i / 64) as usize] |= 1 << (i % 64);
    }

    pub(crate) fn contains(&self, value: u32) -> bool {
        let Some(i) = value.checked_sub(self.base) else { return false };
        i < 192 && self.bits[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    /// The smallest member that is `>= from`.
    pub(crate) fn next_from(&self, from: u32) -> Option<u32> {
        let mut i = from.saturating_sub(self.base);
        while i < 192 {
            let word = self.bits[(i / 64) as usize] >> (i % 64);
            if word != 0 {
                return Some(self.base + i + word.trailing_zeros());
            }
            i = (i / 64 + 1) * 64;
        }
        None
    }

    /// Members `>= from`, ascending.
    pub(crate) fn iter_from(&self, from: u32) -> impl Iterator<Item = u32> + '_ {
        let mut next = self.next_from(from);
        std::iter::from_fn(move || {
            let v = next?;
            next = self.next_from(v + 1);
            Some(v)
        })
    }

    pub(crate) fn len(&self) -> u32 {
        self.bits.iter().map(|w| w.count_ones()).sum()
    }

    pub(crate) fn min(&self) -> Option<u32> {
        self.next_from(self.base)
    }
}

/// One parsed field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Field {
    pub(crate) kind: FieldKind,
    pub(crate) values: ValueSet,
    /// The field starts with `*` (or `?`): the Vixie rule calls it unrestricted even when
    /// a step narrows it, and the hour field decides absolute vs wall-clock time from it.
    pub(crate) star: bool,
    /// Kept for `describe` and messages.
    pub(crate) text: String,
}

impl Field {
    pub(crate) fn parse(kind: FieldKind, text: &str) -> Result<Field, ScheduleError> {
        let field = kind.name();
        let invalid = |reason: String| ScheduleError::InvalidField { field, reason };
        let (min, max) = kind.range();
        let mut values = ValueSet::empty(min);
        let star = text.starts_with('*') || text.starts_with('?');

        for item in text.split(',') {
            if item.is_empty() {
                return Err(invalid(format!("empty list item in '{text}'")));
            }
            reject_extensions(kind, item)?;
            let (range, step) = match item.split_once('/') {
                Some((range, step)) => (range, Some(parse_step(kind, item, step)?)),
                None => (item, None),
            };
            let (lo, hi) = if range == "*" || (range == "?" && is_day_field(kind)) {
                (min, max)
            } else if let Some((a, b)) = range.split_once('-') {
                let (a, b) = (parse_value(kind, a)?, parse_value(kind, b)?);
                if a > b {
                    return Err(invalid(format!("range '{range}' runs backwards")));
                }
                (a, b)
            } else {
                let a = parse_value(kind, range)?;
                // `5/15` means "from 5 to the end, every 15", as in Vixie cron.
                if step.is_some() { (a, max) } else { (a, a) }
            };
            let step = step.unwrap_or(1);
            let mut v = lo;
            while v <= hi {
                // Sunday is both 0 and 7; store it once.
                values.insert(if kind == FieldKind::DayOfWeek && v == 7 { 0 } else { v });
                v += step;
            }
        }
        Ok(Field { kind, values, star, text: text.to_string() })
    }

    /// Every value of the range is allowed.
    pub(crate) fn is_full(&self) -> bool {
        let (min, max) = self.kind.range();
        let span = if self.kind == FieldKind::DayOfWeek { 7 } else { max - min + 1 };
        self.values.len() == span
    }

    /// The single allowed value, if there is exactly one.
    pub(crate) fn single(&self) -> Option<u32> {
        if self.values.len() == 1 { self.values.min() } else { None }
    }

    /// `N` when the field is written exactly `*/N`.
    pub(crate) fn star_step(&self) -> Option<u32> {
        self.text.strip_prefix("*/").and_then(|n| n.parse().ok())
    }
}

fn is_day_field(kind: FieldKind) -> bool {
    matches!(kind, FieldKind::DayOfMonth | FieldKind::DayOfWeek)
}

/// Quartz extensions get a message that says what they are, not "invalid number".
fn reject_extensions(kind: FieldKind, item: &str) -> Result<(), ScheduleError> {
    let field = kind.name();
    let unsupported =
        |feature| Err(ScheduleError::Unsupported { field, token: item.to_string(), feature });
    if item.contains('#') {
        return unsupported("nth weekday of the month");
    }
    if is_day_field(kind) {
        let upper = item.to_ascii_uppercase();
        if kind == FieldKind::DayOfMonth && (upper == "L" || upper == "LW") {
            return unsupported("last day of the month");
        }
        if kind == FieldKind::DayOfWeek && upper.ends_with('L') {
            return unsupported("last weekday of the month");
        }
        if kind == FieldKind::DayOfMonth && upper.ends_with('W') {
            return unsupported("nearest weekday");
        }
    }
    Ok(())
}

fn parse_step(kind: FieldKind, item: &str, step: &str) -> Result<u32, ScheduleError> {
    let field = kind.name();
    let (min, max) = kind.range();
    let n: u32 = step.parse().map_err(|_| ScheduleError::InvalidField {
        field,
        reason: format!("step '{step}' in '{item}' is not a positive number"),
    })?;
    if n == 0 {
        return Err(ScheduleError::InvalidField {
            field,
            reason: format!("step 0 in '{item}' is not allowed"),
        });
    }
    if n > max - min + 1 {
        return Err(ScheduleError::InvalidField {
            field,
            reason: format!("step {n} in '{item}' is larger than the range {min}-{max}"),
        });
    }
    Ok(n)
}

fn parse_value(kind: FieldKind, token: &str) -> Result<u32, ScheduleError> {
    let field = kind.name();
    let (min, max) = kind.range();
    if let Some(v) = kind.name_value(token) {
        return Ok(v);
    }
    let value: u64 = token.parse().map_err(|_| {
        let expected = match kind {
            FieldKind::Month => format!("a number {min}-{max} or a name JAN-DEC"),
            FieldKind::DayOfWeek => format!("a number {min}-{max} or a name SUN-SAT"),
            _ => format!("a number {min}-{max}"),
        };
        ScheduleError::InvalidField { field, reason: format!("'{token}' is not {expected}") }
    })?;
    if value < u64::from(min) || value > u64::from(max) {
        return Err(ScheduleError::OutOfRange { field, value, min, max });
    }
    Ok(value as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(kind: FieldKind, text: &str) -> Vec<u32> {
        Field::parse(kind, text).unwrap().values.iter_from(0).collect()
    }

    fn err(kind: FieldKind, text: &str) -> String {
        Field::parse(kind, text).unwrap_err().to_string()
    }

    #[test]
    fn lists_ranges_and_steps() {
        assert_eq!(values(FieldKind::Minute, "5"), [5]);
        assert_eq!(values(FieldKind::Minute, "1,2,59"), [1, 2, 59]);
        assert_eq!(values(FieldKind::Hour, "9-12"), [9, 10, 11, 12]);
        assert_eq!(values(FieldKind::Minute, "*/20"), [0, 20, 40]);
        assert_eq!(values(FieldKind::Minute, "10-30/10"), [10, 20, 30]);
        assert_eq!(values(FieldKind::Hour, "5/6"), [5, 11, 17, 23]);
        assert_eq!(values(FieldKind::DayOfMonth, "*/10"), [1, 11, 21, 31]);
        assert_eq!(values(FieldKind::Year, "2030-2032").len(), 3);
    }

    #[test]
    fn names_and_sunday_as_seven() {
        assert_eq!(values(FieldKind::Month, "jan,MAR-may"), [1, 3, 4, 5]);
        assert_eq!(values(FieldKind::DayOfWeek, "MON-FRI"), [1, 2, 3, 4, 5]);
        assert_eq!(values(FieldKind::DayOfWeek, "7"), [0]);
        assert_eq!(values(FieldKind::DayOfWeek, "5-7"), [0, 5, 6]);
        assert!(Field::parse(FieldKind::DayOfWeek, "*").unwrap().is_full());
        assert!(Field::parse(FieldKind::DayOfWeek, "0-7").unwrap().is_full());
    }

    #[test]
    fn star_marks_unrestricted_even_with_a_step() {
        assert!(Field::parse(FieldKind::DayOfMonth, "*/2").unwrap().star);
        assert!(Field::parse(FieldKind::DayOfMonth, "?").unwrap().star);
        assert!(!Field::parse(FieldKind::DayOfMonth, "1-31").unwrap().star);
        assert_eq!(Field::parse(FieldKind::Minute, "*/15").unwrap().star_step(), Some(15));
    }

    #[test]
    fn value_set_next_from_crosses_words() {
        let f = Field::parse(FieldKind::Year, "1975,2040,2099").unwrap();
        assert_eq!(f.values.next_from(1976), Some(2040));
        assert_eq!(f.values.next_from(2041), Some(2099));
        assert_eq!(f.values.next_from(2100), None);
        assert!(f.values.contains(2040) && !f.values.contains(1969));
    }

    #[test]
    fn errors_name_field_and_token() {
        assert_eq!(err(FieldKind::Hour, "25"), "cron field 'hour': 25 is out of range 0-23");
        assert_eq!(
            err(FieldKind::DayOfMonth, "0"),
            "cron field 'day-of-month': 0 is out of range 1-31"
        );
        assert_eq!(err(FieldKind::Minute, "x"), "cron field 'minute': 'x' is not a number 0-59");
        assert_eq!(
            err(FieldKind::Month, "FOO"),
            "cron field 'month': 'FOO' is not a number 1-12 or a name JAN-DEC"
        );
        assert_eq!(
            err(FieldKind::Minute, "*/0"),
            "cron field 'minute': step 0 in '*/0' is not allowed"
        );
        assert_eq!(
            err(FieldKind::Minute, "*/61"),
            "cron field 'minute': step 61 in '*/61' is larger than the range 0-59"
        );
        assert_eq!(err(FieldKind::Hour, "5-1"), "cron field 'hour': range '5-1' runs backwards");
        assert_eq!(err(FieldKind::Hour, "1,,2"), "cron field 'hour': empty list item in '1,,2'");
        assert_eq!(
            err(FieldKind::Year, "1969"),
            "cron field 'year': 1969 is out of range 1970-2099"
        );
        assert_eq!(err(FieldKind::Hour, "?"), "cron field 'hour': '?' is not a number 0-23");
    }

    #[test]
    fn quartz_extensions_are_rejected_by_name() {
        assert_eq!(
            err(FieldKind::DayOfMonth, "L"),
            "cron field 'day-of-month': 'L' (last day of the month) is not supported"
        );
        assert_eq!(
            err(FieldKind::DayOfMonth, "15W"),
            "cron field 'day-of-month': '15W' (nearest weekday) is not supported"
        );
        assert_eq!(
            err(FieldKind::DayOfWeek, "MON#2"),
            "cron field 'day-of-week': 'MON#2' (nth weekday of the month) is not supported"
        );
        assert_eq!(
            err(FieldKind::DayOfWeek, "5L"),
            "cron field 'day-of-week': '5L' (last weekday of the month) is not supported"
        );
    }
}
