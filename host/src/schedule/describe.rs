//! Schedules in words, for `sandcron next`, the API and the dashboard.
//!
//! Covers the common shapes ("every 10 seconds", "at 02:30 every day", "every 15 minutes
//! on Monday and Friday") and falls back to quoting the expression for anything else.
//! Design: a correct "on cron schedule '...'" beats a fluent sentence that is subtly wrong,
//! so each phrase is produced only when the fields have exactly the shape it describes.

use chrono::{NaiveDateTime, SecondsFormat};
use chrono_tz::Tz;

use super::cron::CronPattern;
use super::field::Field;
use super::interval::Every;
use super::once::At;

const WEEKDAYS: [&str; 7] =
    ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

pub(crate) fn cron(p: &CronPattern, tz: Tz) -> String {
    let text = match (time_phrase(p), day_phrase(p)) {
        (Some(time), Some(days))
            if p.dom.is_full() && p.dow.is_full() && time.starts_with("at ") =>
        {
            format!("{time} every day{days}")
        }
        (Some(time), Some(days)) => format!("{time}{days}"),
        _ => format!("on cron schedule '{}'", p.text),
    };
    if tz == Tz::UTC { text } else { format!("{text} ({})", tz.name()) }
}

pub(crate) fn every(e: &Every) -> String {
    let base = span(e.period_secs);
    if e.phase_secs == 0 {
        return base;
    }
    let phase = humantime::format_duration(std::time::Duration::from_secs(e.phase_secs as u64));
    format!("{base}, phase {phase}")
}

pub(crate) fn at(a: &At, tz: Tz) -> String {
    match a {
        At::Instant(t) => format!("once at {}", t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        At::Local(t) => format!("once at {} ({})", local(t), tz.name()),
    }
}

fn local(t: &NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// "every second" / "every 5 minutes": the largest unit that divides the period.
fn span(secs: i64) -> String {
    for (unit, name) in [(86_400, "day"), (3_600, "hour"), (60, "minute"), (1, "second")] {
        if secs % unit == 0 {
            return plural_every(secs / unit, name);
        }
    }
    unreachable!("every period is a whole number of seconds")
}

fn plural_every(n: i64, unit: &str) -> String {
    if n == 1 { format!("every {unit}") } else { format!("every {n} {unit}s") }
}

fn time_phrase(p: &CronPattern) -> Option<String> {
    let (s, m, h) = (&p.second, &p.minute, &p.hour);
    if m.is_full() && h.is_full() {
        if s.is_full() {
            return Some("every second".into());
        }
        if let Some(n) = s.star_step() {
            return Some(plural_every(n.into(), "second"));
        }
    }
    let sec = s.single()?;
    let at_sec = if sec == 0 { String::new() } else { format!(", at second {sec}") };
    if h.is_full() {
        if m.is_full() {
            return Some(format!("every minute{at_sec}"));
        }
        if let Some(n) = m.star_step() {
            return Some(format!("{}{at_sec}", plural_every(n.into(), "minute")));
        }
    }
    let min = m.single()?;
    let past = format!("at minute {min}{at_sec}");
    if h.is_full() {
        return Some(format!("every hour {past}"));
    }
    if let Some(n) = h.star_step() {
        return Some(format!("{} {past}", plural_every(n.into(), "hour")));
    }
    if p.is_absolute() || h.values.len() > 6 {
        return None;
    }
    let clock = |hour: u32| {
        if sec == 0 {
            format!("{hour:02}:{min:02}")
        } else {
            format!("{hour:02}:{min:02}:{sec:02}")
        }
    };
    let times: Vec<String> = h.values.iter_from(0).map(clock).collect();
    Some(format!("at {}", join(&times)))
}

/// The day, month and year restrictions, starting with a space; empty for "every day".
fn day_phrase(p: &CronPattern) -> Option<String> {
    let dom = || day_numbers(&p.dom).map(|d| format!(" on day {d} of the month"));
    let dow = || {
        let names: Vec<String> =
            p.dow.values.iter_from(0).map(|d| WEEKDAYS[d as usize].into()).collect();
        format!(" on {}", join(&names))
    };
    // "on January 1" reads better than "on day 1 of the month in January".
    if let (false, true, Some(m)) = (p.dom.is_full(), p.dow.is_full(), p.month.single()) {
        let days = day_numbers(&p.dom)?;
        return Some(format!(" on {} {days}{}", MONTHS[m as usize - 1], year_phrase(p)?));
    }
    let mut out = match (p.dom.is_full(), p.dow.is_full()) {
        (true, true) => String::new(),
        (false, true) => dom()?,
        (true, false) => dow(),
        // Vixie OR; the AND of a partial `*/n` with weekdays has no short phrase.
        (false, false) if !p.dom.star && !p.dow.star => format!("{} or{}", dom()?, dow()),
        (false, false) => return None,
    };
    if !p.month.is_full() {
        let names: Vec<String> =
            p.month.values.iter_from(1).map(|m| MONTHS[m as usize - 1].into()).collect();
        out = format!("{out} in {}", join(&names));
    }
    out.push_str(&year_phrase(p)?);
    Some(out)
}

fn year_phrase(p: &CronPattern) -> Option<String> {
    let Some(year) = &p.year else { return Some(String::new()) };
    let years: Vec<String> = year.values.iter_from(0).map(|y| y.to_string()).collect();
    (years.len() <= 6).then(|| format!(" in {}", join(&years)))
}

fn day_numbers(f: &Field) -> Option<String> {
    let days: Vec<String> = f.values.iter_from(1).map(|d| d.to_string()).collect();
    (days.len() <= 8).then(|| join(&days))
}

/// "a", "a and b", "a, b and c".
fn join(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(expr: &str) -> String {
        cron(&CronPattern::parse(expr).unwrap(), Tz::UTC)
    }

    #[test]
    fn common_cron_shapes() {
        assert_eq!(d("*/10 * * * * *"), "every 10 seconds");
        assert_eq!(d("* * * * * *"), "every second");
        assert_eq!(d("* * * * *"), "every minute");
        assert_eq!(d("*/15 * * * *"), "every 15 minutes");
        assert_eq!(d("30 */5 * * * *"), "every 5 minutes, at second 30");
        assert_eq!(d("5 * * * *"), "every hour at minute 5");
        assert_eq!(d("@hourly"), "every hour at minute 0");
        assert_eq!(d("0 */2 * * *"), "every 2 hours at minute 0");
        assert_eq!(d("30 2 * * *"), "at 02:30 every day");
        assert_eq!(d("@daily"), "at 00:00 every day");
        assert_eq!(d("15 0 9 * * *"), "at 09:00:15 every day");
        assert_eq!(d("0 9,17 * * *"), "at 09:00 and 17:00 every day");
        assert_eq!(
            d("0 9 * * MON-FRI"),
            "at 09:00 on Monday, Tuesday, Wednesday, Thursday and Friday"
        );
        assert_eq!(d("0 0 1,15 * *"), "at 00:00 on day 1 and 15 of the month");
        assert_eq!(d("0 0 15 * MON"), "at 00:00 on day 15 of the month or on Monday");
        assert_eq!(d("@yearly"), "at 00:00 on January 1");
        assert_eq!(d("0 0 12 1 1 * 2030"), "at 12:00 on January 1 in 2030");
        assert_eq!(d("0 0 1 1,7 *"), "at 00:00 on day 1 of the month in January and July");
        assert_eq!(d("0 0 * 12 *"), "at 00:00 every day in December");
        assert_eq!(d("*/5 * * * SAT,SUN"), "every 5 minutes on Sunday and Saturday");
    }

    #[test]
    fn unusual_shapes_quote_the_expression() {
        assert_eq!(d("0 0 */2 * MON"), "on cron schedule '0 0 */2 * MON'");
        assert_eq!(d("1,2 3 * * *"), "on cron schedule '1,2 3 * * *'");
        assert_eq!(d("0 1-5/2 * * *"), "on cron schedule '0 1-5/2 * * *'");
    }

    #[test]
    fn zone_is_named_unless_utc() {
        let p = CronPattern::parse("30 2 * * *").unwrap();
        assert_eq!(cron(&p, chrono_tz::Europe::Berlin), "at 02:30 every day (Europe/Berlin)");
    }

    #[test]
    fn intervals_and_one_shots() {
        let e = |p: &str, ph: Option<&str>| {
            let d = |t: &str| humantime::parse_duration(t).unwrap();
            every(&Every::new("every", d(p), ph.map_or(std::time::Duration::ZERO, d)).unwrap())
        };
        assert_eq!(e("10s", None), "every 10 seconds");
        assert_eq!(e("1s", None), "every second");
        assert_eq!(e("5m", None), "every 5 minutes");
        assert_eq!(e("1h30m", None), "every 90 minutes");
        assert_eq!(e("1h", Some("15m")), "every hour, phase 15m");
        assert_eq!(e("2d", None), "every 2 days");
        assert_eq!(
            at(&At::parse("2026-12-01T00:00:00Z").unwrap(), Tz::UTC),
            "once at 2026-12-01T00:00:00Z"
        );
        assert_eq!(
            at(&At::parse("2026-12-01T09:30:00").unwrap(), chrono_tz::Europe::Berlin),
            "once at 2026-12-01 09:30:00 (Europe/Berlin)"
        );
    }
}
