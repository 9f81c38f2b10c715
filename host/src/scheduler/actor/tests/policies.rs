//! The slot policies, one test each: overlap (every mode), misfire and catch-up, starting
//! deadline, retries, breaker and half-open probe, rollback.

use super::*;
use crate::job::TriggerKind;
use crate::words::{BreakerState, InterruptReason};

const EVERY_10S: &str = "every = \"10s\"\n";

#[tokio::test]
async fn overlap_skip_records_a_slot_that_comes_while_a_run_is_in_flight() {
    let mut h = Harness::new("overlap-skip");
    h.add("a", &format!("{EVERY_10S}overlap = \"skip\"\n"));
    h.at(T0 + 10 * S);
    let first = h.one_started();
    assert_eq!(first.slot(), Some(T0 + 10 * S));
    h.at(T0 + 20 * S);
    assert!(h.started().is_empty(), "the second slot must not start beside the first");
    assert_eq!(h.reasons("a"), [(T0 + 20 * S, "skipped:overlap".to_string())]);
    h.finish(&first, true, None);
    h.at(T0 + 30 * S);
    assert_eq!(h.one_started().slot(), Some(T0 + 30 * S), "the job runs again once idle");
}

#[tokio::test]
async fn overlap_buffer_one_keeps_one_slot_waiting_and_skips_the_next() {
    let mut h = Harness::new("overlap-buffer-one");
    h.add("a", &format!("{EVERY_10S}overlap = \"buffer-one\"\n"));
    h.at(T0 + 10 * S);
    let first = h.one_started();
    h.at(T0 + 20 * S);
    h.at(T0 + 30 * S);
    assert!(h.started().is_empty());
    assert_eq!(h.reasons("a"), [(T0 + 30 * S, "skipped:overlap".to_string())]);
    h.finish(&first, true, None);
    assert_eq!(h.one_started().slot(), Some(T0 + 20 * S), "the buffered slot runs next");
}

#[tokio::test]
async fn overlap_buffer_all_runs_every_slot_in_order() {
    let mut h = Harness::new("overlap-buffer-all");
    h.add("a", &format!("{EVERY_10S}overlap = \"buffer-all\"\n"));
    for k in 1..=4 {
        h.at(T0 + k * 10 * S);
    }
    let mut ran = vec![];
    while let Some(run) = h.started().pop() {
        ran.push(run.slot().unwrap());
        h.finish(&run, true, None);
    }
    assert_eq!(ran, [10, 20, 30, 40].map(|s| T0 + s * S), "no slot lost, none out of order");
    assert!(h.rows("a").is_empty(), "nothing skipped");
}

#[tokio::test]
async fn overlap_cancel_other_interrupts_the_run_in_flight_for_the_new_slot() {
    let mut h = Harness::new("overlap-cancel-other");
    h.add("a", &format!("{EVERY_10S}overlap = \"cancel-other\"\n"));
    h.at(T0 + 10 * S);
    let mut first = h.one_started();
    h.at(T0 + 20 * S);
    assert_eq!(h.one_started().slot(), Some(T0 + 20 * S), "the new slot starts at once");
    let interrupt = first.cancel.borrow_and_update().clone().expect("the old run is cancelled");
    assert_eq!((interrupt.reason, interrupt.retry), (InterruptReason::CancelledBySlot, false));
}

#[tokio::test]
async fn overlap_allow_runs_side_by_side_up_to_max_concurrent() {
    let mut h = Harness::new("overlap-allow");
    h.add("a", &format!("{EVERY_10S}overlap = \"allow\"\n[limits]\nmax_concurrent = 2\n"));
    for k in 1..=3 {
        h.at(T0 + k * 10 * S);
    }
    assert_eq!(slots(&h.started()), [Some(T0 + 10 * S), Some(T0 + 20 * S)]);
    assert_eq!(h.reasons("a"), [(T0 + 30 * S, "skipped:max-concurrent".to_string())]);
}

#[tokio::test]
async fn misfire_policies_sort_passed_over_slots_into_catch_ups_and_misses() {
    let mut h = Harness::new("misfire");
    h.add("latest", &format!("{EVERY_10S}misfire = \"latest\"\n"));
    h.add("all", &format!("{EVERY_10S}misfire = \"all\"\nmax_catchup = 2\n"));
    h.add("skip", &format!("{EVERY_10S}misfire = \"skip\"\n"));
    // The wall clock jumps 55 s (a suspend): slots 10..=50 s were passed over.
    h.clock.advance(55 * S);
    h.sched.on_clock(T0 + 55 * S, crate::scheduler::clock::Jump::Forward(55 * S));
    h.sched.fire_due(T0 + 55 * S);
    let mut started: Vec<(String, i64, TriggerKind)> = h
        .started()
        .iter()
        .map(|r| (r.order.def.spec.name.clone(), r.slot().unwrap(), r.order.at.trigger))
        .collect();
    started.sort_by_key(|(job, slot, _)| (job.clone(), *slot));
    // Catch-ups run one at a time: `all` starts its older one first.
    let expected = [("all", 40), ("latest", 50)];
    let expected = expected.map(|(job, s)| (job.to_string(), T0 + s * S, TriggerKind::CatchUp));
    assert_eq!(started, expected);
    let missed = |job: &str| h.rows(job).iter().filter(|r| r.reason == "missed:misfire").count();
    assert_eq!((missed("latest"), missed("all"), missed("skip")), (4, 3, 5));
}

#[tokio::test]
async fn a_late_slot_past_its_starting_deadline_is_missed_not_started() {
    let mut h = Harness::new("deadline");
    h.add("a", &format!("{EVERY_10S}starting_deadline = \"2s\"\n"));
    h.at(T0 + 13 * S); // a busy host, 3 s late: no clock jump, so not a misfire
    assert!(h.started().is_empty(), "a slot 3 s late with a 2 s deadline must not start");
    assert_eq!(h.reasons("a"), [(T0 + 10 * S, "missed:deadline".to_string())]);
    h.at(T0 + 21 * S);
    let on_time = h.one_started();
    assert_eq!(on_time.order.start_by_ms, Some(T0 + 22 * S), "the run task checks it too");
}

#[tokio::test]
async fn a_failed_attempt_is_retried_at_its_backoff_under_the_same_key() {
    let mut h = Harness::new("retry");
    h.add("a", &format!("{EVERY_10S}[retry]\nmax_attempts = 3\nbackoff = \"2s\"\n"));
    h.at(T0 + 10 * S);
    let first = h.one_started();
    h.finish(&first, false, Some(T0 + 12 * S));
    h.at(T0 + 12 * S - 1);
    assert!(h.started().is_empty(), "not before the backoff");
    h.at(T0 + 12 * S);
    let retry = h.one_started();
    assert_eq!((retry.order.at.attempt, retry.order.at.trigger), (2, TriggerKind::Retry));
    assert_eq!(retry.order.at.idempotency_key, first.order.at.idempotency_key);
    assert_eq!(retry.slot(), first.slot());
    // A slot's intermediate failures are not the breaker's business: only its last word.
    assert_eq!(h.sched.jobs["a"].breaker.consecutive_failures, 0);
    h.finish(&retry, false, None);
    assert_eq!(h.sched.jobs["a"].breaker.consecutive_failures, 1);
}

#[tokio::test]
async fn the_breaker_opens_skips_slots_then_lets_one_probe_through() {
    let mut h = Harness::new("breaker");
    h.add("a", &format!("{EVERY_10S}[breaker]\nfailures = 2\ncooldown = \"30s\"\n"));
    for k in 1..=2 {
        h.at(T0 + k * 10 * S);
        let run = h.one_started();
        h.finish(&run, false, None);
    }
    let open = BreakerState::Open { until_ms: T0 + 50 * S };
    assert_eq!(h.sched.jobs["a"].breaker.state, open);
    assert_eq!(h.store.job("a").unwrap().unwrap().breaker, open, "recorded for a restart");
    for k in 3..=4 {
        h.at(T0 + k * 10 * S);
    }
    assert!(h.started().is_empty(), "no slot starts while open");
    let skipped: Vec<_> = h.rows("a").into_iter().map(|r| r.reason).collect();
    assert_eq!(skipped, ["skipped:breaker-open"], "one row per opening, not one per slot");
    h.at(T0 + 50 * S);
    let probe = h.one_started();
    assert_eq!(h.sched.jobs["a"].breaker.state, BreakerState::HalfOpen);
    h.at(T0 + 60 * S);
    assert!(h.started().is_empty(), "one probe at a time");
    h.finish(&probe, true, None);
    assert_eq!(h.sched.jobs["a"].breaker.state, BreakerState::Closed);
    h.at(T0 + 70 * S);
    h.one_started();
}

/// Issue 15: an open breaker records one row per opening, however many slots it holds
/// back; the metric counts every one. A probe that fails reopens it: a new opening, a new
/// row. A restarted host whose breaker is still open does not record that opening again.
#[tokio::test]
async fn an_open_breaker_records_one_row_per_opening_and_counts_every_slot() {
    let mut h = Harness::new("breaker-rows");
    h.add("a", "every = \"1s\"\n[breaker]\nfailures = 1\ncooldown = \"60s\"\n");
    h.at(T0 + S);
    let run = h.one_started();
    h.finish(&run, false, None);
    for k in 2..=60 {
        h.at(T0 + k * S);
    }
    assert!(h.started().is_empty(), "nothing runs while open");
    let breaker_rows = |h: &Harness| {
        h.rows("a").into_iter().filter(|r| r.reason == "skipped:breaker-open").count()
    };
    assert_eq!(breaker_rows(&h), 1, "59 slots held back, one row: {:?}", h.reasons("a"));
    assert_eq!(h.reasons("a")[0].0, T0 + 2 * S, "the row is the first slot skipped");
    let counted = |h: &Harness| {
        let text = h.sched.services.metrics.render();
        let line = r#"sandcron_slots_not_run_total{job="a",reason="skipped:breaker-open"} "#;
        let at = text.find(line).unwrap_or_else(|| panic!("no metric line in:\n{text}"));
        text[at + line.len()..].lines().next().unwrap().parse::<f64>().unwrap()
    };
    assert_eq!(counted(&h), 59.0, "the metric counts every slot not run");

    // The cooldown ends at 61 s: the probe fails and the breaker reopens: a second row.
    h.at(T0 + 61 * S);
    let probe = h.one_started();
    h.finish(&probe, false, None);
    for k in 62..=70 {
        h.at(T0 + k * S);
    }
    assert_eq!(breaker_rows(&h), 2, "a failed probe is a new opening: {:?}", h.reasons("a"));
    assert_eq!(counted(&h), 68.0);

    // A restart while it is still open: the opening is on record, nothing more is written.
    let (store, clock) = (h.store.clone(), h.clock.clone());
    let mut again = Harness::with_store(store, clock);
    again.add("a", "every = \"1s\"\n[breaker]\nfailures = 1\ncooldown = \"60s\"\n");
    again.at(T0 + 75 * S);
    assert!(again.started().is_empty());
    assert_eq!(breaker_rows(&again), 2, "the restarted host kept the one row per opening");
}

#[tokio::test]
async fn a_new_version_that_fails_where_the_old_one_succeeded_is_rolled_back() {
    let mut h = Harness::new("rollback");
    let manifest = format!("{EVERY_10S}rollback_on_failure = 2\n");
    h.add("a", &manifest);
    h.at(T0 + 10 * S);
    let good = h.one_started();
    h.finish(&good, true, None);
    h.sched.on_event(JobEvent::Upsert(job("a", &manifest, "v2")));
    for k in 2..=3 {
        h.at(T0 + k * 10 * S);
        let run = h.one_started();
        assert_eq!(run.order.def.version, "v2");
        h.finish(&run, false, None);
    }
    assert_eq!(h.sched.jobs["a"].def.version, "v1", "two failed slots of v2: back to v1");
    h.at(T0 + 40 * S);
    assert_eq!(h.one_started().order.def.version, "v1");
}
