//! Deterministic jitter: a per-slot delay that spreads jobs sharing a schedule.
//!
//! The delay is a hash of (job name, slot instant) modulo the bound, so every node and
//! every restart computes the same start time for the same slot (S3 claims stay
//! predictable, retries of a slot do not wander). Design: the hash is FNV-1a followed by
//! the SplitMix64 finalizer, written out here with fixed constants, because std's
//! `RandomState` is seeded per process and `DefaultHasher`'s algorithm may change between
//! Rust releases; either would move every job's start time on upgrade or restart.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The delay to add to `slot` for `job`: in `[0, bound)`, at millisecond resolution, and
/// never reaching `next_slot` (at most `next_slot - slot - 1ms`) so a jittered run cannot
/// start after its successor's nominal time.
#[must_use]
pub fn jitter_delay(
    job: &str,
    slot: DateTime<Utc>,
    bound: Duration,
    next_slot: Option<DateTime<Utc>>,
) -> Duration {
    let mut limit_ms = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX);
    if let Some(next) = next_slot {
        let gap_ms = u64::try_from((next - slot).num_milliseconds()).unwrap_or(0);
        limit_ms = limit_ms.min(gap_ms);
    }
    if limit_ms == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(slot_hash(job, slot) % limit_ms)
}

/// Stable 64-bit hash of (job, slot). Changing it reshuffles every job's jitter once.
fn slot_hash(job: &str, slot: DateTime<Utc>) -> u64 {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = FNV_OFFSET;
    // Length-prefixed so ("ab", t) and ("a", t') can never feed the same bytes.
    let bytes = (job.len() as u64)
        .to_le_bytes()
        .into_iter()
        .chain(job.bytes())
        .chain(slot.timestamp().to_le_bytes())
        .chain(slot.timestamp_subsec_nanos().to_le_bytes());
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    // SplitMix64 finalizer: FNV's low bits are weak and `%` keeps only those.
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn slot(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[test]
    fn same_job_and_slot_give_the_same_delay() {
        let bound = Duration::from_secs(300);
        let a = jitter_delay("backup", slot(1_750_000_000), bound, None);
        assert_eq!(a, jitter_delay("backup", slot(1_750_000_000), bound, None));
        assert!(a < bound);
    }

    #[test]
    fn delay_is_pinned_across_releases() {
        // Golden values: if this fails the hash changed, and every deployed job's start
        // times would move. Only update it on purpose.
        assert_eq!(slot_hash("backup", slot(1_750_000_000)), GOLDEN);
        assert_eq!(
            jitter_delay("backup", slot(1_750_000_000), Duration::from_secs(300), None),
            Duration::from_millis(GOLDEN % 300_000)
        );
    }
    const GOLDEN: u64 = 4_038_323_810_922_855_560;

    #[test]
    fn delays_spread_over_the_bound_and_differ_by_job() {
        let bound = Duration::from_secs(60);
        let delays: Vec<_> =
            (0..1000).map(|k| jitter_delay("report", slot(k * 3600), bound, None)).collect();
        assert!(delays.iter().all(|d| *d < bound));
        assert!(delays.iter().any(|d| *d < Duration::from_secs(6)));
        assert!(delays.iter().any(|d| *d > Duration::from_secs(54)));
        let mean = delays.iter().map(|d| d.as_secs_f64()).sum::<f64>() / 1000.0;
        assert!((25.0..35.0).contains(&mean), "mean {mean}");
        let other: Vec<_> =
            (0..1000).map(|k| jitter_delay("reports", slot(k * 3600), bound, None)).collect();
        assert!(delays.iter().zip(&other).filter(|(a, b)| a == b).count() < 50);
    }

    #[test]
    fn never_past_the_next_slot() {
        let s = slot(1_750_000_000);
        let next = s + TimeDelta::seconds(10);
        for job in ["a", "b", "c", "backup", "report", "x1", "x2", "x3"] {
            for k in 0..200 {
                let s = s + TimeDelta::seconds(10 * k);
                let d = jitter_delay(
                    job,
                    s,
                    Duration::from_secs(3600),
                    Some(next + TimeDelta::seconds(10 * k)),
                );
                assert!(d <= Duration::from_millis(9_999), "{job} {k}: {d:?}");
            }
        }
        // A bound smaller than the gap is used as is.
        let d = jitter_delay("a", s, Duration::from_secs(2), Some(next));
        assert!(d < Duration::from_secs(2));
    }

    #[test]
    fn zero_bound_or_no_room_means_no_delay() {
        let s = slot(1_750_000_000);
        assert_eq!(jitter_delay("a", s, Duration::ZERO, None), Duration::ZERO);
        assert_eq!(jitter_delay("a", s, Duration::from_micros(500), None), Duration::ZERO);
        assert_eq!(jitter_delay("a", s, Duration::from_secs(5), Some(s)), Duration::ZERO);
        // One millisecond of room: the only delay that stays before the next slot is 0.
        assert_eq!(
            jitter_delay("a", s, Duration::from_secs(5), Some(s + TimeDelta::milliseconds(1))),
            Duration::ZERO
        );
    }
}
