//! From wall-clock candidates to instants: the daylight-saving rules of S1.
//!
//! A cron pattern yields local times in order; a time zone maps each to zero instants (a
//! spring-forward gap), one, or two (an autumn fold). [`next_instant`] walks the candidates
//! and applies the policy:
//!
//! - gap, [`DstGap::Shift`]: fire once at the first instant after the gap (Vixie/ISC cron);
//!   [`DstGap::Skip`]: not at all.
//! - fold, [`DstFold::First`] / [`DstFold::Last`] / [`DstFold::Both`]: the earlier, the
//!   later, or both occurrences.
//!
//! Absolute-time schedules (hour `*` or a step) use the same walk with `Skip` + `Both`: an
//! instant fires exactly when its own local reading matches, so the clock change neither
//! skips nor repeats an hour of real time.
//!
//! Design: the walk asks the zone about each candidate (`from_local_datetime`) instead of
//! enumerating transitions, because chrono-tz keeps its transition table private. The price
//! is that local time is not monotonic in real time inside a fold; the walk therefore starts
//! one fold-width back when `after` is in a fold's first pass, and keeps going through
//! ambiguous candidates until no later one can come earlier (see the stop rules inline).

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::{GapInfo, Tz};

use super::{DstFold, DstGap};

/// The first instant strictly after `after` produced by the local-time candidates of
/// `next_local` (which returns the first candidate `>=` its argument) under the policies.
pub(crate) fn next_instant(
    tz: Tz,
    gap: DstGap,
    fold: DstFold,
    after: DateTime<Utc>,
    next_local: impl Fn(NaiveDateTime) -> Option<NaiveDateTime>,
) -> Option<DateTime<Utc>> {
    let local = after.with_timezone(&tz);
    // Checked, not `naive_local()`: at chrono's outer years the local reading does not
    // exist (found by tests/fuzz_schedule.rs); there is no next fire time to give then.
    let after_naive = after.naive_utc().checked_add_offset(local.offset().fix())?;
    let after_naive = after_naive.with_nanosecond(0)?;
    let mut from = after_naive;
    // In a fold's first pass, candidates a little *before* our local reading still have
    // their second occurrence ahead of us: start one fold-width back.
    if let LocalResult::Ambiguous(early, late) = tz.from_local_datetime(&after_naive) {
        let (early_off, late_off) = (offset_secs(&early), offset_secs(&late));
        if offset_secs(&local) == early_off {
            from = from.checked_sub_signed(TimeDelta::seconds(i64::from(early_off - late_off)))?;
        }
    }

    let mut best: Option<DateTime<Utc>> = None;
    let keep = |best: Option<DateTime<Utc>>, t: DateTime<Utc>| Some(best.map_or(t, |b| b.min(t)));
    while let Some(candidate) = next_local(from) {
        match tz.from_local_datetime(&candidate) {
            // Candidates after a single-valued one map later than it: done.
            LocalResult::Single(t) => {
                let t = t.with_timezone(&Utc);
                if t > after {
                    return keep(best, t);
                }
            }
            LocalResult::Ambiguous(early, late) => {
                let (early, late) = (early.with_timezone(&Utc), late.with_timezone(&Utc));
                // A first occurrence ahead of us beats everything later in local order.
                if fold != DstFold::Last && early > after {
                    return keep(best, early);
                }
                if fold != DstFold::First && late > after {
                    best = keep(best, late);
                    // With `Last` only second occurrences count, and they are in order.
                    // With `Both` a later candidate's first occurrence may still come
                    // before this second one, so keep walking.
                    if fold == DstFold::Last {
                        return best;
                    }
                }
            }
            LocalResult::None => {
                if gap == DstGap::Shift {
                    let end = GapInfo::new(&candidate, &tz).and_then(|g| g.end);
                    if let Some(end) = end.map(|e| e.with_timezone(&Utc))
                        && end > after
                    {
                        return keep(best, end);
                    }
                }
            }
        }
        let Some(next_from) = candidate.checked_add_signed(TimeDelta::seconds(1)) else { break };
        from = next_from;
    }
    best
}

fn offset_secs<T: TimeZone>(t: &DateTime<T>) -> i32 {
    t.offset().fix().local_minus_utc()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::cron::CronPattern;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// The next `n` fire instants, as RFC 3339 in the zone (offset shows which pass).
    fn fires(expr: &str, tz: Tz, gap: DstGap, fold: DstFold, after: &str, n: usize) -> Vec<String> {
        let p = CronPattern::parse(expr).unwrap();
        let (gap, fold) = if p.is_absolute() { (DstGap::Skip, DstFold::Both) } else { (gap, fold) };
        let mut t = utc(after);
        let mut out = Vec::new();
        for _ in 0..n {
            let Some(next) = next_instant(tz, gap, fold, t, |f| p.next_local(f)) else { break };
            assert!(next > t, "not strictly after");
            out.push(next.with_timezone(&tz).to_rfc3339());
            t = next;
        }
        out
    }

    use DstFold::{Both, First, Last};
    use DstGap::{Shift, Skip};
    use chrono_tz::America::New_York as NY;
    use chrono_tz::Australia::Lord_Howe as LH;
    use chrono_tz::Europe::Berlin as BER;

    // Berlin: 2025-03-30 02:00 CET -> 03:00 CEST; 2025-10-26 03:00 CEST -> 02:00 CET.
    // New York: 2025-03-09 02:00 EST -> 03:00 EDT; 2025-11-02 02:00 EDT -> 01:00 EST.
    // Lord Howe: 2025-04-06 02:00 +11 -> 01:30 +10:30; 2025-10-05 02:00 +10:30 -> 02:30 +11.

    #[test]
    fn gap_shift_fires_once_at_the_end_of_the_gap() {
        assert_eq!(
            fires("30 2 * * *", BER, Shift, First, "2025-03-29T12:00:00+01:00", 3),
            ["2025-03-30T03:00:00+02:00", "2025-03-31T02:30:00+02:00", "2025-04-01T02:30:00+02:00"]
        );
        assert_eq!(
            fires("30 2 * * *", NY, Shift, First, "2025-03-08T12:00:00-05:00", 2),
            ["2025-03-09T03:00:00-04:00", "2025-03-10T02:30:00-04:00"]
        );
        // Several slots inside the gap collapse into one firing, and a slot at the gap's
        // end is that same instant.
        assert_eq!(
            fires("0,20,40 2,3 * * *", BER, Shift, First, "2025-03-30T01:00:00+01:00", 3),
            ["2025-03-30T03:00:00+02:00", "2025-03-30T03:20:00+02:00", "2025-03-30T03:40:00+02:00"]
        );
    }

    #[test]
    fn gap_skip_does_not_fire_that_day() {
        assert_eq!(
            fires("30 2 * * *", BER, Skip, First, "2025-03-29T12:00:00+01:00", 2),
            ["2025-03-31T02:30:00+02:00", "2025-04-01T02:30:00+02:00"]
        );
        assert_eq!(
            fires("30 2 * * *", NY, Skip, First, "2025-03-08T12:00:00-05:00", 1),
            ["2025-03-10T02:30:00-04:00"]
        );
    }

    #[test]
    fn fold_first_last_both() {
        let after = "2025-10-25T12:00:00+02:00";
        assert_eq!(
            fires("30 2 * * *", BER, Shift, First, after, 2),
            ["2025-10-26T02:30:00+02:00", "2025-10-27T02:30:00+01:00"]
        );
        assert_eq!(
            fires("30 2 * * *", BER, Shift, Last, after, 2),
            ["2025-10-26T02:30:00+01:00", "2025-10-27T02:30:00+01:00"]
        );
        assert_eq!(
            fires("30 2 * * *", BER, Shift, Both, after, 3),
            ["2025-10-26T02:30:00+02:00", "2025-10-26T02:30:00+01:00", "2025-10-27T02:30:00+01:00"]
        );
        let after = "2025-11-01T12:00:00-04:00";
        assert_eq!(
            fires("30 1 * * *", NY, Shift, First, after, 2),
            ["2025-11-02T01:30:00-04:00", "2025-11-03T01:30:00-05:00"]
        );
        assert_eq!(fires("30 1 * * *", NY, Shift, Last, after, 1), ["2025-11-02T01:30:00-05:00"]);
        assert_eq!(
            fires("30 1 * * *", NY, Shift, Both, after, 2),
            ["2025-11-02T01:30:00-04:00", "2025-11-02T01:30:00-05:00"]
        );
    }

    #[test]
    fn fold_both_interleaves_several_slots_in_real_time_order() {
        // Fixed hour 2, minutes 0 and 30: both passes, in instant order.
        assert_eq!(
            fires("0,30 2 * * *", BER, Shift, Both, "2025-10-26T01:50:00+02:00", 5),
            [
                "2025-10-26T02:00:00+02:00",
                "2025-10-26T02:30:00+02:00",
                "2025-10-26T02:00:00+01:00",
                "2025-10-26T02:30:00+01:00",
                "2025-10-27T02:00:00+01:00",
            ]
        );
        // Starting inside the first pass, between the two slots.
        assert_eq!(
            fires("0,30 2 * * *", BER, Shift, Both, "2025-10-26T02:10:00+02:00", 3),
            ["2025-10-26T02:30:00+02:00", "2025-10-26T02:00:00+01:00", "2025-10-26T02:30:00+01:00"]
        );
        // Starting inside the first pass after the slot, `Last` still finds its repeat.
        assert_eq!(
            fires("0 2 * * *", BER, Shift, Last, "2025-10-26T02:10:00+02:00", 1),
            ["2025-10-26T02:00:00+01:00"]
        );
        // And `First` does not fire it again.
        assert_eq!(
            fires("0 2 * * *", BER, Shift, First, "2025-10-26T02:10:00+02:00", 1),
            ["2025-10-27T02:00:00+01:00"]
        );
    }

    /// All fire times of an absolute schedule from `after` over `hours` of real time.
    fn absolute_run(expr: &str, tz: Tz, after: &str, hours: i64) -> Vec<DateTime<Utc>> {
        let p = CronPattern::parse(expr).unwrap();
        assert!(p.is_absolute());
        let start = utc(after);
        let end = start + TimeDelta::hours(hours);
        let mut out = Vec::new();
        let mut t = start;
        while let Some(next) = next_instant(tz, Skip, Both, t, |f| p.next_local(f)) {
            if next > end {
                break;
            }
            out.push(next);
            t = next;
        }
        out
    }

    #[test]
    fn absolute_quarter_hours_never_skip_or_repeat_real_time() {
        for (tz, after) in [
            (BER, "2025-03-30T00:00:00+01:00"),
            (BER, "2025-10-26T01:00:00+02:00"),
            (NY, "2025-03-09T00:00:00-05:00"),
            (NY, "2025-11-02T00:00:00-04:00"),
            (LH, "2025-04-06T00:00:00+11:00"),
            (LH, "2025-10-05T00:00:00+10:30"),
        ] {
            let run = absolute_run("*/15 * * * *", tz, after, 4);
            assert_eq!(run.len(), 16, "{tz} from {after}: {run:?}");
            for pair in run.windows(2) {
                assert_eq!(pair[1] - pair[0], TimeDelta::minutes(15), "{tz} from {after}");
            }
        }
    }

    #[test]
    fn absolute_seconds_step_across_the_fold() {
        // 3 hours of real time across Berlin's fall-back: 360 firings 30 s apart.
        let run = absolute_run("*/30 * * * * *", BER, "2025-10-26T01:30:00+02:00", 3);
        assert_eq!(run.len(), 360);
        assert!(run.windows(2).all(|w| w[1] - w[0] == TimeDelta::seconds(30)));
    }

    #[test]
    fn absolute_hour_step_follows_the_local_clock() {
        // `0 */2`: even local hours. Spring forward: 02:00 does not exist, so 00:00 is
        // followed by 04:00 (two real hours later, not three: 03:00 CEST = 02:00 CET).
        assert_eq!(
            fires("0 */2 * * *", BER, Shift, First, "2025-03-29T23:00:00+01:00", 3),
            ["2025-03-30T00:00:00+01:00", "2025-03-30T04:00:00+02:00", "2025-03-30T06:00:00+02:00"]
        );
        // Fall back: 02:00 happens twice and both are real instants, one hour apart.
        assert_eq!(
            fires("0 */2 * * *", BER, Shift, First, "2025-10-26T01:00:00+02:00", 3),
            ["2025-10-26T02:00:00+02:00", "2025-10-26T02:00:00+01:00", "2025-10-26T04:00:00+01:00"]
        );
    }

    #[test]
    fn lord_howe_half_hour_shift() {
        // 02:15 is inside the 02:00-02:30 spring gap: shift to 02:30 (+11).
        assert_eq!(
            fires("15 2 * * *", LH, Shift, First, "2025-10-04T12:00:00+10:30", 2),
            ["2025-10-05T02:30:00+11:00", "2025-10-06T02:15:00+11:00"]
        );
        assert_eq!(
            fires("15 2 * * *", LH, Skip, First, "2025-10-04T12:00:00+10:30", 1),
            ["2025-10-06T02:15:00+11:00"]
        );
        // 01:45 happens twice in April (01:30-02:00 repeats).
        assert_eq!(
            fires("45 1 * * *", LH, Shift, Both, "2025-04-05T12:00:00+11:00", 3),
            ["2025-04-06T01:45:00+11:00", "2025-04-06T01:45:00+10:30", "2025-04-07T01:45:00+10:30"]
        );
        assert_eq!(
            fires("45 1 * * *", LH, Shift, Last, "2025-04-05T12:00:00+11:00", 1),
            ["2025-04-06T01:45:00+10:30"]
        );
    }

    #[test]
    fn zones_without_dst_are_plain() {
        assert_eq!(
            fires(
                "0 9 * * *",
                chrono_tz::Asia::Kolkata,
                Shift,
                First,
                "2025-06-01T10:00:00+05:30",
                1
            ),
            ["2025-06-02T09:00:00+05:30"]
        );
        assert_eq!(
            fires("0 9 * * *", Tz::UTC, Shift, First, "2025-06-01T09:00:00Z", 1),
            ["2025-06-02T09:00:00+00:00"]
        );
    }

    /// Reference model of the policies, by brute force over every real minute: an instant
    /// fires when its own local reading matches (in a fold: only the allowed pass), or
    /// when it ends a gap that swallowed a matching local time and the gap policy shifts.
    fn brute_force(
        p: &CronPattern,
        tz: Tz,
        gap: DstGap,
        fold: DstFold,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<DateTime<Utc>> {
        let matches = |n: NaiveDateTime| p.next_local(n) == Some(n);
        let mut out = Vec::new();
        let mut t = from + TimeDelta::minutes(1);
        while t <= to {
            let local = t.with_timezone(&tz);
            let n = local.naive_local();
            let fires = match tz.from_local_datetime(&n) {
                LocalResult::Single(_) => matches(n),
                LocalResult::Ambiguous(e, _) => {
                    let first = local.offset() == e.offset();
                    matches(n)
                        && match fold {
                            DstFold::First => first,
                            DstFold::Last => !first,
                            DstFold::Both => true,
                        }
                }
                LocalResult::None => unreachable!("a real instant's reading exists"),
            };
            let before = (t - TimeDelta::seconds(1)).with_timezone(&tz);
            let jump = offset_secs(&local) - offset_secs(&before);
            let gap_hit = gap == DstGap::Shift && jump > 0 && {
                let gap_start = before.naive_local() + TimeDelta::seconds(1);
                p.next_local(gap_start).is_some_and(|m| m < n)
            };
            if fires || gap_hit {
                out.push(t);
            }
            t += TimeDelta::minutes(1);
        }
        out
    }

    #[test]
    fn matches_the_brute_force_model_around_transitions() {
        let patterns = [
            "30 2 * * *",
            "0,30 2 * * *",
            "*/15 2 * * *",
            "* 2 * * *",
            "0 1-3 * * *",
            "45 1 * * *",
            "15 2 * * *",
            "0 0 * * *",
            "0 1,2,3 * * *",
            "*/7 1-3 * * *",
            "59 1 * * *",
            "0 3 * * *",
            "30 0-4 * * *",
            // absolute ones: the policies must not matter
            "*/15 * * * *",
            "0 */2 * * *",
            "0 * * * *",
            "30 * * * *",
            "*/7 */3 * * *",
        ];
        let transitions = [
            (BER, "2025-03-30T01:00:00Z"),
            (BER, "2025-10-26T01:00:00Z"),
            (NY, "2025-03-09T07:00:00Z"),
            (NY, "2025-11-02T06:00:00Z"),
            (LH, "2025-04-05T15:00:00Z"),
            (LH, "2025-10-04T15:30:00Z"),
            (chrono_tz::Europe::London, "2025-03-30T01:00:00Z"),
            (chrono_tz::Europe::London, "2025-10-26T01:00:00Z"),
            (chrono_tz::Australia::Sydney, "2025-04-05T16:00:00Z"),
            (chrono_tz::Australia::Sydney, "2025-10-04T16:00:00Z"),
            (BER, "2025-07-01T00:00:00Z"),
        ];
        let mut checked = 0;
        for (tz, at) in transitions {
            let center = utc(at);
            for expr in patterns {
                let p = CronPattern::parse(expr).unwrap();
                for gap in [Shift, Skip] {
                    for fold in [First, Last, Both] {
                        // Absolute schedules ignore the policies: check them once.
                        if p.is_absolute() && (gap, fold) != (Skip, Both) {
                            continue;
                        }
                        let (g, f) = (gap, fold);
                        // Several starting points, some inside the gap/fold hours.
                        for start_m in [-180, -53, 7, 37] {
                            let from = center + TimeDelta::minutes(start_m);
                            let to = center + TimeDelta::hours(4);
                            let want = brute_force(&p, tz, g, f, from, to);
                            let mut got = Vec::new();
                            let mut t = from;
                            while let Some(n) = next_instant(tz, g, f, t, |x| p.next_local(x)) {
                                if n > to {
                                    break;
                                }
                                got.push(n);
                                t = n;
                            }
                            assert_eq!(got, want, "{expr} {tz} {gap:?} {fold:?} from {from}");
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 11 * (13 * 6 + 5) * 4);
    }

    #[test]
    fn sub_second_after_is_strict() {
        let p = CronPattern::parse("* * * * * *").unwrap();
        let after = utc("2025-06-01T00:00:00.5Z");
        let next = next_instant(Tz::UTC, Skip, Both, after, |f| p.next_local(f));
        assert_eq!(next, Some(utc("2025-06-01T00:00:01Z")));
    }

    /// Regression (tests/fuzz_schedule.rs): `0 0 29 * 2` in America/New_York after
    /// chrono's earliest instant panicked with "Local time out of range for
    /// `NaiveDateTime`": the local reading of that instant does not exist.
    #[test]
    fn far_edge_instants_in_a_zone_do_not_panic() {
        let p = CronPattern::parse("0 0 29 * 2").unwrap();
        let ny = chrono_tz::America::New_York;
        let tokyo = chrono_tz::Asia::Tokyo;
        for (tz, after) in [(ny, DateTime::<Utc>::MIN_UTC), (tokyo, DateTime::<Utc>::MAX_UTC)] {
            for fold in [DstFold::First, DstFold::Last, DstFold::Both] {
                let _ = next_instant(tz, Skip, fold, after, |f| p.next_local(f));
            }
        }
    }
}
