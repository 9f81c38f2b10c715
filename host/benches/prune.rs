//! Issue 15: a claim made while 100,000 rows are pruned is not delayed. Claim latency
//! (p50 / p99 / max of `Ledger::claim` on the real `SqliteStore`, one claim per ms) with no
//! prune, and during a prune of 100,000 rows with batches of at most 500 rows, at most 100
//! (what `serve` and `sandcron prune` use) and at most all of them (one transaction), side
//! by side in one run. Since the prune gate (`store/prune_gate.rs`) a claim interrupts the
//! batch it finds running instead of waiting for it, and the pruner halves its next batch,
//! so the batch size now sets how long the prune takes, not how long a claim waits.
//! The table before the gate (same bench, same machine, two runs): p99 0.5-3.7 ms with
//! batches of 100, 6.2-11.3 ms with 500, 52-91 ms as one transaction, against 0.10 ms
//! without a prune; after it (three runs): 0.23-1.6 ms, 0.27-0.45 ms and 0.12-0.26 ms,
//! against 0.11-0.17 ms.
//!
//! `cargo bench -p sandcron --bench prune`

use std::time::{Duration, Instant};

use sandcron::store::{
    Claim, Ledger, NewRun, PruneOptions, RetentionPolicy, RunFinish, RunStatus, SqliteStore,
};

const ROWS: i64 = 100_000;
const DAY: i64 = 86_400_000;

fn claim(job: &str, slot_ms: i64, status: RunStatus) -> NewRun {
    NewRun {
        run_id: format!("{job}-{slot_ms}"),
        job: job.into(),
        slot_ms: Some(slot_ms),
        attempt: 1,
        trigger: sandcron::job::TriggerKind::Schedule,
        idempotency_key: format!("{job}@{slot_ms}"),
        version: "v1".into(),
        owner: "bench".into(),
        scheduled_at_ms: slot_ms,
        status,
        reason: (status == RunStatus::Missed).then_some(sandcron::words::SlotReason::Misfire),
        started_at_ms: None,
    }
}

/// 100,000 finished rows of job `old`, all due long ago, with some output each.
fn fill(store: &SqliteStore, round: i64) {
    for chunk in 0..ROWS / 1000 {
        let runs: Vec<NewRun> = (0..1000)
            .map(|i| claim("old", round * ROWS * 10 + chunk * 1000 + i, RunStatus::Running))
            .collect();
        assert!(store.claim_many(&runs).unwrap().iter().all(|c| *c == Claim::Claimed));
        let finish = RunFinish {
            status: RunStatus::Succeeded,
            reason: String::new(),
            outcome: "succeeded".into(),
            finished_at_ms: 1,
            duration_ms: 1.0,
            fuel_used: None,
            peak_memory: None,
            output: "x".repeat(200),
            logs_json: r#"[{"level":"info","message":"a line of log"}]"#.into(),
            retry_at_ms: None,
            started_at_ms: Some(1),
            net: None,
        };
        let finishes: Vec<(String, RunFinish)> =
            runs.into_iter().map(|run| (run.run_id, finish.clone())).collect();
        assert!(store.finish_many(&finishes).unwrap().iter().all(|done| *done));
    }
}

/// Claims one slot per ms of job `hot` until `until` says stop; the latencies, sorted.
fn claims(store: &SqliteStore, first_slot: i64, until: impl Fn(usize) -> bool) -> Vec<Duration> {
    let mut latencies = Vec::new();
    let mut slot = first_slot;
    while !until(latencies.len()) {
        let started = Instant::now();
        let answer = store.claim(&claim("hot", slot, RunStatus::Missed)).unwrap();
        latencies.push(started.elapsed());
        assert_eq!(answer, Claim::Claimed);
        slot += 1;
        std::thread::sleep(Duration::from_millis(1));
    }
    latencies.sort();
    latencies
}

fn report(what: &str, latencies: &[Duration], prune: Option<Duration>) {
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "{what:<34} claims {:>5}  p50 {:>9.1?}  p99 {:>9.1?}  max {:>9.1?}{}",
        latencies.len(),
        at(0.5),
        at(0.99),
        latencies.last().unwrap(),
        prune.map_or(String::new(), |d| format!("  (prune took {d:.2?})"))
    );
}

/// Claims while `batch`-row transactions prune the 100,000 rows of `old`.
fn during_prune(store: &SqliteStore, batch: usize, first_slot: i64) -> (Vec<Duration>, Duration) {
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let pruner = scope.spawn(|| {
            let options = PruneOptions {
                now_ms: 1_000 * DAY,
                job: Some("old".into()),
                dry_run: false,
                batch,
                pause: Duration::from_millis(1),
            };
            let policy = RetentionPolicy {
                max_age: Some(Duration::from_secs(86_400)),
                ..RetentionPolicy::default()
            };
            let started = Instant::now();
            let report = store.prune(&options, &|_| (policy, false)).unwrap();
            let took = started.elapsed();
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            assert_eq!(report.total(), ROWS as u64, "{report:?}");
            took
        });
        let latencies = claims(store, first_slot, |n| {
            n >= 50 && done.load(std::sync::atomic::Ordering::Relaxed)
        });
        (latencies, pruner.join().unwrap())
    })
}

fn main() {
    let dir = std::env::temp_dir().join(format!("sandcron-bench-prune-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = SqliteStore::open(&dir.join("store.db")).unwrap();
    println!("claim latency, one claim per ms, 100,000 rows pruned beside it (2 cores)");
    fill(&store, 0);
    report("no prune", &claims(&store, 0, |n| n >= 2_000), None);
    let (latencies, took) = during_prune(&store, 500, 1_000_000);
    report("prune, batches of at most 500", &latencies, Some(took));
    fill(&store, 1);
    let (latencies, took) = during_prune(&store, 100, 2_000_000);
    report("prune, batches of at most 100", &latencies, Some(took));
    fill(&store, 2);
    let (latencies, took) = during_prune(&store, ROWS as usize + 1, 3_000_000);
    report("prune, at most one transaction", &latencies, Some(took));
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
