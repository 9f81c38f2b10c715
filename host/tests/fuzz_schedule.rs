//! Fuzz target: schedules through [`ScheduleSpec`] (`new`, `next_after`, `describe`,
//! `to_record`).
//!
//! Three campaigns, each with the same properties (no panic; `next_after(t) > t`):
//! - `cron_agrees_with_minute_model`: generated 5-field expressions in UTC, whose fire
//!   times must equal a brute-force minute-by-minute model over an eight-year window. The
//!   model is written from PRODUCT.md S1, not from the code: fields as value sets, and the
//!   Vixie rule — when both day fields are restricted a day matching either fires; a field
//!   starting with `*` (or `?`) counts as unrestricted.
//! - `cron_text`: random and mutated expressions (5/6/7 fields, descriptors, `@every`) in
//!   random zones and DST policies.
//! - `every_and_at`: `every`/`phase` durations (against the epoch-grid model) and `at`
//!   strings, random and mutated.
//!
//! Long campaign: `SANDCRON_FUZZ_CASES=100000 cargo test --release -p sandcron --test
//! fuzz_schedule -- --nocapture`.

mod common;

use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Timelike, Utc};
use proptest::prelude::*;
use sandcron::schedule::{DstFold, DstGap, ScheduleSpec, Trigger};

use common::{Tally, cases, edits, kind_of, mutate, runner};

/// The model's window: long enough for the rarest (Feb 29 on a given weekday is 28 years,
/// but with the Vixie rule every pattern the generator builds fires far more often).
const WINDOW_DAYS: i64 = 8 * 366;

const MONTHS: [&str; 12] =
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// One list item of a cron field, as the generator builds it.
#[derive(Clone, Debug)]
enum Item {
    /// `*` or `*/step`.
    Star(Option<u32>),
    /// `?` (day fields only).
    Question,
    /// `n` or `n/step` (from n to the field's end).
    Value(u32, Option<u32>),
    /// `a-b` or `a-b/step`.
    Range(u32, u32, Option<u32>),
}

/// One generated field: its items, and whether values are written as names (JAN, MON).
#[derive(Clone, Debug)]
struct FieldAst {
    min: u32,
    max: u32,
    items: Vec<Item>,
    names: Option<&'static [&'static str]>,
    /// Index of the first name's value (JAN = 1, SUN = 0).
    name_base: u32,
    use_names: bool,
}

impl FieldAst {
    fn value_text(&self, v: u32) -> String {
        match self.names {
            Some(names) if self.use_names && ((v - self.name_base) as usize) < names.len() => {
                names[(v - self.name_base) as usize].to_string()
            }
            _ => v.to_string(),
        }
    }

    fn render(&self) -> String {
        let step = |s: &Option<u32>| s.map(|s| format!("/{s}")).unwrap_or_default();
        let items: Vec<String> = self
            .items
            .iter()
            .map(|item| match item {
                Item::Star(s) => format!("*{}", step(s)),
                Item::Question => "?".to_string(),
                Item::Value(v, s) => format!("{}{}", self.value_text(*v), step(s)),
                Item::Range(a, b, s) => {
                    format!("{}-{}{}", self.value_text(*a), self.value_text(*b), step(s))
                }
            })
            .collect();
        items.join(",")
    }

    /// The values the field allows (day-of-week 7 folded onto 0, Sunday).
    fn allows(&self, value: u32) -> bool {
        let hit = |lo: u32, hi: u32, step: Option<u32>| {
            let step = step.unwrap_or(1);
            (lo..=hi).step_by(step as usize).any(|v| {
                let v = if self.max == 7 && v == 7 { 0 } else { v };
                v == value
            })
        };
        self.items.iter().any(|item| match *item {
            Item::Star(s) => hit(self.min, self.max, s),
            Item::Question => hit(self.min, self.max, None),
            Item::Value(v, None) => hit(v, v, None),
            Item::Value(v, s) => hit(v, self.max, s),
            Item::Range(a, b, s) => hit(a, b, s),
        })
    }

    /// S1: a field written starting with `*` (or `?`) is unrestricted for the day rule.
    fn starts_with_star(&self) -> bool {
        matches!(self.items[0], Item::Star(_) | Item::Question)
    }
}

fn field(
    min: u32,
    max: u32,
    names: Option<&'static [&'static str]>,
    name_base: u32,
    question: bool,
) -> impl Strategy<Value = FieldAst> {
    let span = max - min + 1;
    let step = prop_oneof![2 => Just(None), 1 => (1..=span).prop_map(Some)];
    let item = prop_oneof![
        2 => step.clone().prop_map(Item::Star),
        (if question { 1 } else { 0 }) => Just(Item::Question),
        3 => (min..=max, step.clone()).prop_map(|(v, s)| Item::Value(v, s)),
        2 => (min..=max, min..=max, step).prop_map(|(a, b, s)| Item::Range(a.min(b), a.max(b), s)),
    ];
    (proptest::collection::vec(item, 1..4), any::<bool>()).prop_map(move |(items, use_names)| {
        FieldAst { min, max, items, names, name_base, use_names }
    })
}

/// A 5-field expression the model understands.
#[derive(Clone, Debug)]
struct Cron {
    minute: FieldAst,
    hour: FieldAst,
    dom: FieldAst,
    month: FieldAst,
    dow: FieldAst,
}

impl Cron {
    fn render(&self) -> String {
        [&self.minute, &self.hour, &self.dom, &self.month, &self.dow]
            .map(FieldAst::render)
            .join(" ")
    }

    fn day_fires(&self, date: NaiveDate) -> bool {
        if !self.month.allows(date.month()) {
            return false;
        }
        let dom = self.dom.allows(date.day());
        let dow = self.dow.allows(date.weekday().num_days_from_sunday());
        if self.dom.starts_with_star() || self.dow.starts_with_star() {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// Brute force: the first whole minute strictly after `after` that matches, looking at
    /// every minute of every matching day up to `WINDOW_DAYS` ahead. `Err(end)` when none
    /// fires before `end`.
    fn model_next(&self, after: DateTime<Utc>) -> Result<DateTime<Utc>, DateTime<Utc>> {
        let start_day = after.date_naive();
        for d in 0..WINDOW_DAYS {
            let date = start_day + TimeDelta::days(d);
            if !self.day_fires(date) {
                continue;
            }
            for minute_of_day in 0..1440u32 {
                let (h, m) = (minute_of_day / 60, minute_of_day % 60);
                if !self.hour.allows(h) || !self.minute.allows(m) {
                    continue;
                }
                let t = date.and_hms_opt(h, m, 0).expect("a valid time").and_utc();
                if t > after {
                    return Ok(t);
                }
            }
        }
        Err((start_day + TimeDelta::days(WINDOW_DAYS)).and_hms_opt(0, 0, 0).unwrap().and_utc())
    }
}

fn cron() -> impl Strategy<Value = Cron> {
    (
        field(0, 59, None, 0, false),
        field(0, 23, None, 0, false),
        field(1, 31, None, 0, true),
        field(1, 12, Some(&MONTHS), 1, false),
        field(0, 7, Some(&DAYS), 0, true),
    )
        .prop_map(|(minute, hour, dom, month, dow)| Cron { minute, hour, dom, month, dow })
}

/// An instant between 1971 and 2098, to the millisecond.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (31_536_000_000i64..4_070_908_800_000)
        .prop_map(|ms| DateTime::from_timestamp_millis(ms).unwrap())
}

/// Mostly ordinary instants; sometimes the far edges chrono allows.
fn any_instant() -> impl Strategy<Value = DateTime<Utc>> {
    prop_oneof![
        8 => instant(),
        1 => (-8_000_000_000_000i64..250_000_000_000_000).prop_map(|ms| DateTime::from_timestamp_millis(ms).unwrap()),
        1 => prop_oneof![Just(DateTime::<Utc>::MIN_UTC), Just(DateTime::<Utc>::MAX_UTC), Just(DateTime::<Utc>::UNIX_EPOCH)],
    ]
}

/// The shared properties of any valid spec: no panic, strictly increasing fire times,
/// and a record that rebuilds an equal spec.
fn check_spec(
    spec: &ScheduleSpec,
    after: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, TestCaseError> {
    let _ = spec.describe();
    let _ = spec.never_fires();
    let rebuilt = ScheduleSpec::from_record(&spec.to_record());
    prop_assert!(rebuilt.as_ref().is_ok_and(|r| r == spec), "record round trip: {rebuilt:?}");
    let first = spec.next_after(after);
    let mut last = after;
    for t in spec.iter_after(after).take(3) {
        prop_assert!(t > last, "next_after({last}) = {t} does not move forward");
        last = t;
    }
    Ok(first)
}

#[test]
fn cron_agrees_with_minute_model() {
    let tally = Tally::default();
    let result = runner(cases(common::DEFAULT_CASES)).run(&(cron(), instant()), |(cron, after)| {
        let text = cron.render();
        let spec = ScheduleSpec::new(
            Trigger::Cron(text.clone()),
            None,
            DstGap::default(),
            DstFold::default(),
        );
        let spec = match spec {
            Ok(spec) => spec,
            Err(err) => {
                // The generator writes only valid fields; the one rejection allowed is a
                // day-of-month no month has, which S1 calls "never fires".
                let message = err.to_string();
                prop_assert!(message.contains("never occurs"), "{text}: {message}");
                tally.rejected(kind_of(&message));
                return Ok(());
            }
        };
        check_spec(&spec, after)?;
        // Three successive fires against the model.
        let mut from = after;
        for _ in 0..3 {
            let got = spec.next_after(from);
            match (cron.model_next(from), got) {
                (Ok(want), Some(got)) => prop_assert_eq!(got, want, "{} after {}", text, from),
                (Ok(want), None) => prop_assert!(false, "{text} after {from}: None, model {want}"),
                (Err(end), Some(got)) => {
                    prop_assert!(got >= end, "{text} after {from}: {got}, model none before {end}")
                }
                (Err(_), None) => {}
            }
            match got {
                Some(t) => from = t,
                None => break,
            }
        }
        tally.accepted();
        Ok(())
    });
    tally.finish("schedule/cron-model", result);
}

const ZONES: &[&str] = &[
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "America/Santiago",
    "Africa/Casablanca",
    "Pacific/Apia",
    "Etc/GMT+12",
    "Asia/Tehran",
    "Europe/London",
    "Mars/Olympus",
    "",
];

const CRON_SEEDS: &[&str] = &[
    "* * * * *",
    "*/5 * * * *",
    "0 2 * * *",
    "30 2 * * *",
    "0 0 29 2 *",
    "0 0 31 * *",
    "0 0 13 * FRI",
    "0 0 1,15 * MON-FRI",
    "*/15 9-17 * * 1-5",
    "0 0 * * 7",
    "5/15 * * * *",
    "0 12 * JAN-MAR,DEC SUN",
    "0 0 30 2 *",
    "0 0 ? * MON",
    "*/10 * * * * *",
    "0 0 12 * * ? 2030",
    "0 0 0 29 2 * 2030-2040",
    "0 0 0 1 1 * 2099",
    "@daily",
    "@hourly",
    "@weekly",
    "@monthly",
    "@yearly",
    "@every 90s",
    "@every 1h 30m",
    "0 1,2,3 * * *",
    "59 23 31 12 *",
    "0 0 L * *",
    "0 0 * * 5L",
    "0 0 15W * *",
    "0 0 * * 1#2",
];

const CRON_DICTIONARY: &[&str] = &[
    "*",
    "/",
    "-",
    ",",
    "?",
    " ",
    "  ",
    "\t",
    "0",
    "1",
    "7",
    "12",
    "23",
    "24",
    "29",
    "31",
    "59",
    "60",
    "99",
    "1970",
    "2099",
    "2100",
    "4294967296",
    "18446744073709551616",
    "JAN",
    "DEC",
    "SUN",
    "SAT",
    "MON",
    "L",
    "W",
    "#",
    "@",
    "@every",
    "@daily",
    "s",
    "ms",
    "h",
    "d",
    "y",
    "\u{0}",
    "é",
    "\u{1F600}",
    "-1",
    "*/0",
    "/0",
    "0/",
    "--",
    ",,",
];

fn dst_gap() -> impl Strategy<Value = DstGap> {
    prop_oneof![Just(DstGap::Skip), Just(DstGap::Shift)]
}

fn dst_fold() -> impl Strategy<Value = DstFold> {
    prop_oneof![Just(DstFold::Last), Just(DstFold::Both), Just(DstFold::First)]
}

#[test]
fn cron_text() {
    let tally = Tally::default();
    // Generated expressions, some with seconds and a year, so the zones and DST policies
    // see many valid schedules and not only rejections.
    let generated = || {
        let seconds = proptest::sample::select(&["", "0 ", "*/7 ", "5-10 ", "59 "][..]);
        let years =
            proptest::sample::select(&["", " *", " 2030", " 2025-2099", " 1970-1980", " */3"][..]);
        (seconds, cron(), years).prop_map(|(s, c, y)| format!("{s}{}{y}", c.render()))
    };
    let text = prop_oneof![
        3 => generated(),
        2 => (generated(), edits(2)).prop_map(|(t, e)| mutate(&t, &e, CRON_DICTIONARY)),
        3 => (0..CRON_SEEDS.len(), edits(3)).prop_map(|(i, e)| mutate(CRON_SEEDS[i], &e, CRON_DICTIONARY)),
        2 => proptest::collection::vec(proptest::sample::select(CRON_DICTIONARY), 0..16).prop_map(|p| p.concat()),
        1 => any::<String>(),
    ];
    let input = (text, proptest::sample::select(ZONES), dst_gap(), dst_fold(), any_instant());
    let result =
        runner(cases(common::DEFAULT_CASES)).run(&input, |(text, zone, gap, fold, after)| {
            let tz = (!zone.is_empty()).then_some(zone);
            match ScheduleSpec::new(Trigger::Cron(text), tz, gap, fold) {
                Ok(spec) => {
                    check_spec(&spec, after)?;
                    tally.accepted();
                }
                Err(err) => tally.rejected(kind_of(&err.to_string())),
            }
            Ok(())
        });
    tally.finish("schedule/cron-text", result);
}

const AT_SEEDS: &[&str] = &[
    "2030-01-01T00:00:00Z",
    "2026-12-01T01:00:00+01:00",
    "2030-03-31T02:30:00",
    "2030-10-27 02:30:00",
    "1970-01-01T00:00:00Z",
    "2099-12-31T23:59:59.999-12:00",
    "9999-12-31T23:59:59Z",
    "0000-01-01T00:00:00Z",
];

#[test]
fn every_and_at() {
    let tally = Tally::default();
    let every = (any::<u64>(), any::<u64>(), 0..4u8).prop_map(|(p, q, scale)| {
        // Mostly small periods; sometimes anything a `Duration` holds.
        let (period, phase) = match scale {
            0 => (Duration::from_secs(p % 120), Duration::from_secs(q % 120)),
            1 => (Duration::from_millis(p % 200_000), Duration::from_millis(q % 200_000)),
            2 => (Duration::from_secs(p % 10_000_000_000), Duration::from_secs(q % 100_000)),
            _ => (Duration::from_secs(p), Duration::from_secs(q)),
        };
        Trigger::Every { period, phase }
    });
    let every_text = prop_oneof![
        (0..4usize, edits(4)).prop_map(|(i, e)| mutate(
            ["30s", "1h 30m", "2days", "500ms"][i],
            &e,
            CRON_DICTIONARY
        )),
        any::<String>(),
    ]
    .prop_map(|t| Trigger::Cron(format!("@every {t}")));
    let at = prop_oneof![
        4 => (0..AT_SEEDS.len(), edits(4)).prop_map(|(i, e)| mutate(AT_SEEDS[i], &e, CRON_DICTIONARY)),
        1 => any::<String>(),
    ]
    .prop_map(Trigger::At);
    let input = (
        prop_oneof![every, every_text, at],
        proptest::sample::select(ZONES),
        dst_gap(),
        dst_fold(),
        any_instant(),
    );
    let result =
        runner(cases(common::DEFAULT_CASES)).run(&input, |(trigger, zone, gap, fold, after)| {
            let tz = (!zone.is_empty()).then_some(zone);
            let spec = match ScheduleSpec::new(trigger.clone(), tz, gap, fold) {
                Ok(spec) => spec,
                Err(err) => {
                    tally.rejected(kind_of(&err.to_string()));
                    return Ok(());
                }
            };
            let next = check_spec(&spec, after)?;
            if let (Trigger::Every { period, phase }, Some(next)) = (&trigger, next) {
                // The epoch grid: phase + k * period, the first one past `after`, at most one
                // period later.
                let (p, q) = (period.as_secs() as i128, phase.as_secs() as i128);
                let n = i128::from(next.timestamp());
                prop_assert_eq!((n - q).rem_euclid(p), 0, "{} not on the grid", next);
                prop_assert!(
                    n - i128::from(after.timestamp()) <= p,
                    "{next} skips a slot after {after}"
                );
                prop_assert_eq!(next.timestamp_subsec_nanos(), 0);
            }
            if let Some(next) = next {
                prop_assert!(next.second() < 60);
            }
            tally.accepted();
            Ok(())
        });
    tally.finish("schedule/every-at", result);
}
