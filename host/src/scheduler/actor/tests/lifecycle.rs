//! Claim-ahead and its release, pause and resume, backfill, shutdown, and clock jumps.

use super::*;
use crate::job::TriggerKind;
use crate::scheduler::clock::Jump;
use crate::store::RunStatus;
use crate::words::InterruptReason;

const EVERY_10S: &str = "every = \"10s\"\n";

#[tokio::test]
async fn a_slot_is_claimed_ahead_and_its_run_armed_before_its_instant() {
    let mut h = Harness::with_claim_ahead("claim-ahead", Duration::from_millis(250));
    h.add("a", EVERY_10S);
    h.at(T0 + 10 * S - 251);
    assert!(h.sched.jobs["a"].claimed_ahead.is_none(), "not before claim_ahead");
    h.at(T0 + 10 * S - 250);
    assert!(h.sched.jobs["a"].claimed_ahead.is_some(), "claimed 250 ms ahead");
    let rows = h.wait_rows("a", |rows| !rows.is_empty());
    assert_eq!(rows.len(), 1, "the claim is durable before the instant");
    assert_eq!((rows[0].status, rows[0].slot_ms), (RunStatus::Running, Some(T0 + 10 * S)));
    assert!(h.started().is_empty());
    h.at(T0 + 10 * S - 10);
    let armed = h.one_started();
    assert!(armed.order.claimed_ahead.is_some(), "the run takes the claim over");
    let start_at = armed.order.start_at.as_ref().expect("armed: it waits for its instant");
    assert_eq!(start_at.at_ms, T0 + 10 * S);
}

#[tokio::test]
async fn a_claim_taken_ahead_is_released_when_the_job_is_paused() {
    let mut h = Harness::with_claim_ahead("claim-release", Duration::from_millis(250));
    h.add("a", EVERY_10S);
    h.at(T0 + 10 * S - 250);
    assert_eq!(h.wait_rows("a", |rows| !rows.is_empty()).len(), 1);
    let pause = |reply| Control::Pause { job: "a".into(), note: "maintenance".into(), reply };
    h.control(pause).expect("paused");
    assert!(h.sched.jobs["a"].claimed_ahead.is_none());
    assert!(h.wait_rows("a", |rows| rows.is_empty()).is_empty(), "the claimed row is gone");
}

#[tokio::test]
async fn a_paused_job_starts_and_records_nothing_and_resumes_from_its_next_slot() {
    let mut h = Harness::new("pause");
    h.add("a", EVERY_10S);
    let pause = |reply| Control::Pause { job: "a".into(), note: "disk swap".into(), reply };
    let status = h.control(pause).expect("paused");
    assert_eq!(status.paused.as_deref(), Some("disk swap"));
    assert!(status.next_fires_ms.is_empty(), "a paused job fires nothing");
    assert!(h.store.job("a").unwrap().unwrap().paused, "recorded for a restart");
    for k in 1..=3 {
        h.at(T0 + k * 10 * S);
    }
    assert!(h.started().is_empty(), "nothing starts while paused");
    assert!(h.rows("a").is_empty(), "and nothing is recorded");
    h.at(T0 + 35 * S);
    let status = h.control(|reply| Control::Resume { job: "a".into(), reply }).expect("resumed");
    assert_eq!(status.next_fires_ms.first(), Some(&(T0 + 40 * S)));
    assert!(h.started().is_empty(), "a resume never fires a slot itself");
    h.at(T0 + 40 * S);
    assert_eq!(h.one_started().slot(), Some(T0 + 40 * S));
}

#[tokio::test]
async fn shutdown_interrupts_runs_still_going_after_the_grace_period_for_a_retry() {
    let mut h = Harness::new("shutdown");
    h.add("a", &format!("{EVERY_10S}overlap = \"allow\"\n[limits]\nmax_concurrent = 2\n"));
    h.at(T0 + 10 * S);
    h.at(T0 + 20 * S);
    let mut runs = h.started();
    assert_eq!(runs.len(), 2);
    // The first ends within the grace period; the second does not, and is interrupted.
    let quick = runs.remove(0);
    h.done_tx.send(done_of(&quick)).unwrap();
    let mut slow = runs.remove(0);
    let done_tx = h.done_tx.clone();
    let stopped = tokio::spawn(async move {
        let interrupt = slow.cancel.wait_for(Option::is_some).await.expect("interrupted").clone();
        let _ = done_tx.send(done_of(&slow));
        interrupt
    });
    let mut done_rx = std::mem::replace(&mut h.done_rx, mpsc::unbounded_channel().1);
    let shutdown = h.sched.shut_down(&mut done_rx);
    tokio::time::timeout(Duration::from_secs(5), shutdown).await.expect("shutdown ends");
    let interrupt = stopped.await.unwrap().expect("the slow run was interrupted");
    assert_eq!((interrupt.reason, interrupt.retry), (InterruptReason::ShutDown, true));
    assert_eq!(h.sched.in_flight(), 0, "every run accounted for");
}

/// What the run task reports when `run` ends (succeeded, no retry).
fn done_of(run: &Launched) -> RunDone {
    RunDone {
        job: run.order.def.spec.name.clone(),
        version: run.order.def.version.clone(),
        run_key: run.order.run_key,
        taken: false,
        succeeded: true,
        retry: None,
        retry_at_ms: None,
    }
}

#[tokio::test]
async fn a_busy_host_runs_late_slots_but_a_forward_jump_sends_them_through_misfire() {
    let mut late = Harness::new("late");
    late.add("a", &format!("{EVERY_10S}misfire = \"skip\"\noverlap = \"buffer-all\"\n"));
    late.at(T0 + 35 * S); // late, no jump: every slot still runs
    let first = late.one_started();
    assert_eq!(first.slot(), Some(T0 + 10 * S));
    assert!(late.rows("a").is_empty(), "lateness is not a misfire");

    let mut jumped = Harness::new("jump");
    jumped.add("a", &format!("{EVERY_10S}misfire = \"skip\"\noverlap = \"buffer-all\"\n"));
    jumped.clock.advance(35 * S);
    jumped.sched.on_clock(T0 + 35 * S, Jump::Forward(35 * S));
    jumped.sched.fire_due(T0 + 35 * S);
    assert!(jumped.started().is_empty(), "misfire = skip runs none of the jumped-over slots");
    assert_eq!(jumped.rows("a").len(), 3, "all three recorded as missed");
}

#[tokio::test]
async fn a_backward_jump_never_starts_a_slot_twice() {
    let mut h = Harness::new("jump-back");
    h.add("a", EVERY_10S);
    h.at(T0 + 10 * S);
    let first = h.one_started();
    h.finish(&first, true, None);
    h.clock.advance(-8 * S);
    h.sched.on_clock(T0 + 2 * S, Jump::Back(-8 * S));
    for ms in [T0 + 2 * S, T0 + 10 * S, T0 + 19 * S] {
        h.at(ms);
    }
    assert!(h.started().is_empty(), "slot 10 s ran already; 20 s is not due");
    h.at(T0 + 20 * S);
    assert_eq!(h.one_started().slot(), Some(T0 + 20 * S));
}

#[tokio::test]
async fn backfill_queues_only_slots_since_the_job_began() {
    let mut h = Harness::new("backfill-epoch");
    h.add("a", EVERY_10S); // added at T0: its schedule begins then
    let pause = |reply| Control::Pause { job: "a".into(), note: String::new(), reply };
    h.control(pause).expect("paused");
    h.at(T0 + 30 * S); // three slots pass without a run
    h.control(|reply| Control::Resume { job: "a".into(), reply }).expect("resumed");
    let (from_ms, to_ms, interval) = (T0 - 30 * S, T0 + 30 * S, Duration::from_secs(1));
    let backfill = |reply| Control::Backfill { job: "a".into(), from_ms, to_ms, interval, reply };
    let plan = h.control(backfill).expect("planned");
    assert_eq!(plan.schedule_since_ms, T0);
    // T0 - 30 s ..= T0 are before the job existed; T0 + 10 s ..= T0 + 30 s never ran.
    assert_eq!((plan.slots, plan.before_schedule, plan.queued, plan.already_run), (7, 4, 3, 0));
    let mut ran = Vec::new();
    for k in 0..3 {
        h.at(T0 + 30 * S + k * S);
        let run = h.one_started();
        assert_eq!(run.order.at.trigger, TriggerKind::Backfill);
        ran.push(run.slot().unwrap());
        h.finish(&run, true, None);
    }
    assert_eq!(ran, [T0 + 10 * S, T0 + 20 * S, T0 + 30 * S]);
    h.at(T0 + 39 * S);
    assert!(h.started().is_empty(), "nothing from before the job began");
}
