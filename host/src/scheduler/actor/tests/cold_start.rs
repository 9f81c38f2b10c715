//! A cold start (issue 15): a job whose code compiles in the background is listed as
//! compiling and does not hold readiness; the slots that came due meanwhile go through its
//! misfire policy and are recorded `missed:compiling` (or caught up), never
//! `skipped:overlap` for piling up at once.

use super::*;
use crate::job::TriggerKind;
use crate::store::CompilingRow;

const EVERY_10S: &str = "every = \"10s\"\n";

fn status(h: &mut Harness) -> crate::scheduler::StatusReport {
    h.control(|reply| Control::Status { job: None, fires: 0, reply })
}

fn missed(h: &Harness, job: &str, reason: &str) -> Vec<i64> {
    h.reasons(job).into_iter().filter(|(_, r)| r == reason).map(|(slot, _)| slot).collect()
}

#[tokio::test]
async fn a_new_job_compiling_in_the_background_misses_or_catches_up_its_slots_then_runs() {
    let mut h = Harness::new("cold-start-new");
    h.add("quick", EVERY_10S);
    h.sched.on_event(JobEvent::Compiling { name: "slow".into(), since_ms: T0 });
    h.sched.on_event(JobEvent::InitialScanDone);
    let report = status(&mut h);
    assert!(report.ready, "ready while `slow` compiles");
    assert_eq!(report.compiling, [("slow".to_string(), T0)]);
    let stored = h.store.compiling().unwrap();
    assert_eq!(stored.len(), 1, "recorded for `sandcron jobs`: {stored:?}");
    assert_eq!((stored[0].name.as_str(), stored[0].since_ms), ("slow", T0));
    assert_eq!(stored[0].running_version, None, "no version of `slow` runs yet");
    for k in 1..=3 {
        h.at(T0 + k * 10 * S);
        let quick = h.one_started();
        assert_eq!(quick.slot(), Some(T0 + k * 10 * S), "the other job runs on time meanwhile");
        h.finish(&quick, true, None);
    }

    // Compiled 35 s after its load began: slots 10, 20 and 30 s came due meanwhile.
    h.clock.advance(5 * S);
    h.add("slow", EVERY_10S);
    assert!(status(&mut h).compiling.is_empty(), "loaded: no longer compiling");
    assert!(h.store.compiling().unwrap().is_empty(), "nor in the store");
    h.at(T0 + 35 * S);
    let catch_up = h.one_started();
    assert_eq!(catch_up.order.def.spec.name, "slow");
    assert_eq!(
        (catch_up.slot(), catch_up.order.at.trigger),
        (Some(T0 + 30 * S), TriggerKind::CatchUp)
    );
    assert_eq!(missed(&h, "slow", "missed:compiling"), [T0 + 10 * S, T0 + 20 * S]);
    assert!(missed(&h, "slow", "skipped:overlap").is_empty(), "{:?}", h.reasons("slow"));
    h.finish(&catch_up, true, None);
    h.at(T0 + 40 * S);
    let on_time: Vec<_> =
        h.started().iter().map(|r| (r.order.def.spec.name.clone(), r.slot())).collect();
    assert!(on_time.contains(&("slow".to_string(), Some(T0 + 40 * S))), "{on_time:?}");
}

#[tokio::test]
async fn a_known_job_loaded_late_after_a_restart_misfires_its_downtime_and_misses_its_compile() {
    let mut before = Harness::new("cold-start-known");
    before.sched.on_event(JobEvent::Upsert(job(
        "a",
        &format!("{EVERY_10S}misfire = \"skip\"\n"),
        "v1",
    )));

    // The host stopped at once and was down until 40 s, then `a` compiled from 40 s to 75 s.
    before.clock.advance(40 * S);
    let mut h = Harness::with_store(before.store.clone(), before.clock.clone());
    // The earlier host also left a compile of a job since removed unfinished.
    let stale = CompilingRow { name: "gone".into(), since_ms: T0, running_version: None };
    h.store.set_compiling(&stale).unwrap();
    h.sched.on_event(JobEvent::Compiling { name: "a".into(), since_ms: T0 + 40 * S });
    h.sched.on_event(JobEvent::InitialScanDone);
    let row = h.store.job("a").unwrap();
    assert!(row.is_some(), "ready while `a` compiles: its record is kept, not forgotten");
    let stored: Vec<String> = h.store.compiling().unwrap().into_iter().map(|c| c.name).collect();
    assert_eq!(stored, ["a"], "the earlier host's unfinished compile is forgotten");
    h.clock.advance(35 * S);
    h.add("a", &format!("{EVERY_10S}misfire = \"skip\"\n"));
    h.at(T0 + 75 * S);
    assert!(h.started().is_empty(), "misfire = skip catches nothing up");
    assert_eq!(missed(&h, "a", "missed:misfire"), [T0 + 10 * S, T0 + 20 * S, T0 + 30 * S]);
    let compiling = missed(&h, "a", "missed:compiling");
    assert_eq!(compiling, [T0 + 40 * S, T0 + 50 * S, T0 + 60 * S, T0 + 70 * S]);
    assert!(missed(&h, "a", "skipped:overlap").is_empty(), "{:?}", h.reasons("a"));
    h.at(T0 + 80 * S);
    assert_eq!(h.one_started().slot(), Some(T0 + 80 * S), "then it runs on time");
}
