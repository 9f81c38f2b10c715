//! Wall-clock jumps (S2) with the real scheduler, runtime and store in process and only
//! "now" faked: a forward jump sends the passed-over slots through the misfire policy, a
//! backward jump never starts a slot the ledger already holds.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sandcron::config::{HostLimits, parse_manifest};
use sandcron::runtime::{Runtime, RuntimeConfig};
use sandcron::scheduler::{self, JobDef, JobEvent, ManualClock, SchedulerConfig, Services};
use sandcron::store::{Ledger, RunFilter, SqliteStore};

use crate::util::{guest, tempdir};

#[test]
fn clock_jumps_forward_and_back_without_losing_or_repeating_slots() {
    let dir = tempdir();
    let store = Arc::new(SqliteStore::open(&dir.path().join("jump.db")).unwrap());
    let runtime = Arc::new(Runtime::new(&RuntimeConfig::default()).unwrap());
    let code = Arc::new(runtime.load(&std::fs::read(guest("probe")).unwrap()).unwrap());
    let manifest = "every = \"1s\"\nmisfire = \"latest\"\n";
    let spec =
        parse_manifest(manifest, Path::new("jump.toml"), "jump", &HostLimits::default()).unwrap();
    let def = Arc::new(JobDef { spec, code, version: "v1".into() });

    // Mid-second, so every slot is half a second away from the clock's readings.
    let wall =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
            as i64;
    let start = (wall / 1000 + 1) * 1000 + 500;
    let clock = Arc::new(ManualClock::new(start));
    let services = Arc::new(Services {
        runtime,
        ledger: store.clone(),
        state: store.clone(),
        clock: clock.clone(),
        owner: Arc::from("clock-test"),
        metrics: Arc::new(sandcron::metrics::Metrics::new()),
        notify: Default::default(),
    });
    let guests = tokio::runtime::Runtime::new().unwrap();
    let host = tokio::runtime::Runtime::new().unwrap();
    let (events, events_rx) = tokio::sync::mpsc::channel(4);
    let (_control, control_rx) = scheduler::control_channel();
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let config = SchedulerConfig {
        workers: 2,
        grace: Duration::from_secs(1),
        claim_ahead: Duration::from_millis(250),
        guests: guests.handle().clone(),
    };
    let scheduler = host.spawn(scheduler::run(config, services, events_rx, control_rx, async {
        let _ = stop_rx.await;
    }));
    events.blocking_send(JobEvent::Upsert(def)).unwrap();
    // Let the scheduler register the job at `start` before the clock moves.
    std::thread::sleep(Duration::from_millis(300));

    let tick = |by_ms: i64| {
        clock.advance(by_ms);
        // The loop re-reads the wall clock at least every second; give it time to act.
        std::thread::sleep(Duration::from_millis(700));
    };
    for _ in 0..3 {
        tick(1_000);
    }
    tick(10_000); // forward jump: slots start+4s ..= start+12s were passed over
    tick(-6_000); // backward jump: start+7.5s, slots up to start+13s are already held
    for _ in 0..8 {
        tick(1_000);
    }
    let _ = stop.send(());
    host.block_on(scheduler).unwrap().expect("the scheduler started");

    let mut runs = store
        .runs(&RunFilter { job: Some("jump".into()), limit: 1000, ..RunFilter::default() })
        .unwrap();
    runs.sort_by_key(|r| r.slot_ms);
    let slots: Vec<i64> = runs.iter().map(|r| r.slot_ms.unwrap()).collect();
    let unique: HashSet<_> = runs.iter().map(|r| (r.slot_ms, r.attempt)).collect();
    assert_eq!(unique.len(), runs.len(), "no slot was claimed twice: {slots:?}");
    for pair in slots.windows(2) {
        assert_eq!(pair[1] - pair[0], 1_000, "every slot accounted for, none twice: {slots:?}");
    }
    let first = (start / 1000 + 1) * 1000;
    assert_eq!(slots.first(), Some(&first));
    let catch_ups: Vec<i64> = runs
        .iter()
        .filter(|r| r.trigger == sandcron::job::TriggerKind::CatchUp)
        .map(|r| r.slot_ms.unwrap())
        .collect();
    assert_eq!(
        catch_ups,
        [first + 11_000],
        "misfire = latest: one catch-up, the newest passed-over slot"
    );
    let missed = runs.iter().filter(|r| r.reason == "missed:misfire").count();
    assert_eq!(missed, 8, "the other passed-over slots are recorded missed");
    // After the backward jump the clock re-covered start+7.5s ..= start+13.5s: nothing in
    // that span ran again; the schedule resumed at the first slot not yet held.
    assert_eq!(*slots.last().unwrap(), first + 14_000);
}
