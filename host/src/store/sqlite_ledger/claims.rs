//! Claims and their ends: the hot path. A claim inserts the run row before the guest starts
//! (S3), a finish records how it ended, a release gives back a claim taken ahead of its
//! instant whose guest never started.

use rusqlite::{Connection, TransactionBehavior, params};

use super::{Claim, NewRun, RunFinish, RunStatus, SqliteStore, StoreError, query_err};
use crate::words::SlotReason;

const CLAIM: &str = "INSERT INTO runs (run_id, job, slot_ms, attempt, status, reason, \
     trigger_kind, version, idempotency_key, owner, scheduled_at_ms, started_at_ms) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
     ON CONFLICT (job, slot_ms, attempt) WHERE slot_ms IS NOT NULL DO NOTHING \
     ON CONFLICT (job, idempotency_key, attempt) WHERE slot_ms IS NULL DO NOTHING";

fn insert_claim(conn: &Connection, run: &NewRun) -> rusqlite::Result<Claim> {
    debug_assert!(
        matches!(run.status, RunStatus::Running | RunStatus::Skipped | RunStatus::Missed),
        "a claim is running, skipped or missed, not {}",
        run.status
    );
    let inserted = conn.prepare_cached(CLAIM)?.execute(params![
        run.run_id,
        run.job,
        run.slot_ms,
        run.attempt,
        run.status,
        run.reason.map_or("", SlotReason::as_str),
        run.trigger,
        run.version,
        run.idempotency_key,
        run.owner,
        run.scheduled_at_ms,
        run.started_at_ms,
    ])?;
    Ok(if inserted == 1 { Claim::Claimed } else { Claim::Taken })
}

fn update_finish(conn: &Connection, run_id: &str, finish: &RunFinish) -> rusqlite::Result<bool> {
    debug_assert!(
        matches!(
            finish.status,
            RunStatus::Succeeded
                | RunStatus::Failed
                | RunStatus::Interrupted
                | RunStatus::Missed
                | RunStatus::Skipped
        ),
        "a run finishes succeeded, failed, interrupted, missed or skipped, not {}",
        finish.status
    );
    let updated = conn
        .prepare_cached(
            "UPDATE runs SET status = ?2, reason = ?3, outcome = ?4, finished_at_ms = ?5,
                 duration_ms = ?6, fuel_used = ?7, peak_memory = ?8, output = ?9,
                 logs_json = ?10, retry_at_ms = ?11, started_at_ms = ?12, net_json = ?13
             WHERE run_id = ?1 AND status = 'running'",
        )?
        .execute(params![
            run_id,
            finish.status,
            finish.reason,
            finish.outcome,
            finish.finished_at_ms,
            finish.duration_ms,
            finish.fuel_used,
            finish.peak_memory,
            finish.output,
            finish.logs_json,
            finish.retry_at_ms,
            finish.started_at_ms,
            finish.net.map(|net| serde_json::to_string(&net).expect("counts serialize")),
        ])?;
    Ok(updated == 1)
}

pub(super) fn claim(store: &SqliteStore, run: &NewRun) -> Result<Claim, StoreError> {
    insert_claim(&store.conn(), run).map_err(query_err("run claim"))
}

pub(super) fn claim_many(store: &SqliteStore, runs: &[NewRun]) -> Result<Vec<Claim>, StoreError> {
    let mut conn = store.conn();
    let batch = |conn: &mut Connection| -> rusqlite::Result<Vec<Claim>> {
        // IMMEDIATE: take the write lock up front, so the busy timeout applies instead of
        // a read transaction failing to upgrade when another process writes.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let claims = runs.iter().map(|run| insert_claim(&tx, run)).collect::<Result<_, _>>()?;
        tx.commit()?;
        Ok(claims)
    };
    batch(&mut conn).map_err(query_err("run claim batch"))
}

pub(super) fn finish(
    store: &SqliteStore,
    run_id: &str,
    finish: &RunFinish,
) -> Result<bool, StoreError> {
    update_finish(&store.conn(), run_id, finish).map_err(query_err("run finish"))
}

pub(super) fn finish_many(
    store: &SqliteStore,
    finishes: &[(String, RunFinish)],
) -> Result<Vec<bool>, StoreError> {
    let mut conn = store.conn();
    let batch = |conn: &mut Connection| -> rusqlite::Result<Vec<bool>> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let done = finishes
            .iter()
            .map(|(run_id, finish)| update_finish(&tx, run_id, finish))
            .collect::<Result<_, _>>()?;
        tx.commit()?;
        Ok(done)
    };
    batch(&mut conn).map_err(query_err("run finish batch"))
}

/// Records slots that could not be claimed while the store failed (already rows of
/// status missed, `missed:store`), in one transaction; returns how many were new.
pub(in crate::store) fn record_lost(
    conn: &mut Connection,
    runs: &[NewRun],
) -> rusqlite::Result<usize> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut recorded = 0;
    for run in runs {
        if insert_claim(&tx, run)? == Claim::Claimed {
            recorded += 1;
        }
    }
    tx.commit()?;
    Ok(recorded)
}

pub(super) fn release(store: &SqliteStore, run_id: &str) -> Result<bool, StoreError> {
    let removed = store
        .conn()
        .prepare_cached("DELETE FROM runs WHERE run_id = ?1 AND status = 'running'")
        .and_then(|mut statement| statement.execute(params![run_id]))
        .map_err(query_err("run release"))?;
    Ok(removed == 1)
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use crate::store::{Ledger, TempDb};

    #[test]
    fn a_slot_is_claimed_once_per_attempt_even_from_another_connection() {
        let db = TempDb::new("claim-slot");
        let store = open(&db);
        assert_eq!(store.claim(&scheduled("r1", "a", 60_000, 1)).unwrap(), Claim::Claimed);
        // The same claim replayed, and a rival claim with its own run id.
        assert_eq!(store.claim(&scheduled("r1", "a", 60_000, 1)).unwrap(), Claim::Taken);
        assert_eq!(store.claim(&scheduled("r2", "a", 60_000, 1)).unwrap(), Claim::Taken);
        // A second process-like connection on the same file.
        let other = open(&db);
        assert_eq!(other.claim(&scheduled("r3", "a", 60_000, 1)).unwrap(), Claim::Taken);
        // The next attempt of the slot, another slot, another job: all free.
        assert_eq!(other.claim(&scheduled("r4", "a", 60_000, 2)).unwrap(), Claim::Claimed);
        assert_eq!(store.claim(&scheduled("r4", "a", 60_000, 2)).unwrap(), Claim::Taken);
        assert_eq!(store.claim(&scheduled("r5", "a", 120_000, 1)).unwrap(), Claim::Claimed);
        assert_eq!(store.claim(&scheduled("r6", "b", 60_000, 1)).unwrap(), Claim::Claimed);
        let run = record(&store, "r1").unwrap();
        assert_eq!((run.status, run.attempt, run.slot_ms), (RunStatus::Running, 1, Some(60_000)));
        assert_eq!(run.started_at_ms, Some(60_003));
        assert_eq!(record(&store, "r2"), None);
    }

    #[test]
    fn release_removes_a_running_claim_so_the_slot_can_be_claimed_again() {
        let db = TempDb::new("release");
        let store = open(&db);
        assert_eq!(store.claim(&scheduled("early", "a", 60_000, 1)).unwrap(), Claim::Claimed);
        assert_eq!(store.claim(&scheduled("done", "a", 120_000, 1)).unwrap(), Claim::Claimed);
        assert!(store.finish("done", &succeeded(120_010)).unwrap());

        assert!(store.release("early").unwrap());
        assert_eq!(record(&store, "early"), None);
        assert_eq!(store.last_slot("a").unwrap(), Some(120_000));
        // Released, the slot can be claimed again (by this host or another).
        assert_eq!(store.claim(&scheduled("again", "a", 60_000, 1)).unwrap(), Claim::Claimed);
        // A finished run and an unknown id are never removed.
        assert!(!store.release("done").unwrap());
        assert!(!store.release("nope").unwrap());
        assert!(record(&store, "done").is_some());
    }

    #[test]
    fn finish_records_the_real_start_or_that_the_run_never_started() {
        let db = TempDb::new("finish-start");
        let store = open(&db);
        for run_id in ["waited", "never"] {
            let slot = if run_id == "waited" { 60_000 } else { 120_000 };
            assert_eq!(store.claim(&scheduled(run_id, "a", slot, 1)).unwrap(), Claim::Claimed);
        }
        // Claimed at slot + 3, started by a worker 500 ms later.
        let started = RunFinish { started_at_ms: Some(60_503), ..succeeded(61_000) };
        assert!(store.finish("waited", &started).unwrap());
        assert_eq!(record(&store, "waited").unwrap().started_at_ms, Some(60_503));
        // Missed its deadline while waiting for a worker: it never started.
        let missed = RunFinish {
            status: RunStatus::Missed,
            reason: SlotReason::Deadline.as_str().into(),
            started_at_ms: None,
            ..failed(121_000, None)
        };
        assert!(store.finish("never", &missed).unwrap());
        let never = record(&store, "never").unwrap();
        assert_eq!((never.status, never.started_at_ms), (RunStatus::Missed, None));
    }

    #[test]
    fn racing_connections_claim_each_slot_exactly_once() {
        let db = TempDb::new("claim-race");
        drop(open(&db)); // migrate once, up front
        let claimants: Vec<_> = (0..4)
            .map(|claimant| {
                let store = open(&db);
                std::thread::spawn(move || {
                    let mut won = Vec::new();
                    for slot in 0..200 {
                        let run = scheduled(&format!("c{claimant}-{slot}"), "a", slot, 1);
                        if store.claim(&run).unwrap() == Claim::Claimed {
                            won.push(slot);
                        }
                    }
                    won
                })
            })
            .collect();
        let mut won: Vec<i64> =
            claimants.into_iter().flat_map(|claimant| claimant.join().unwrap()).collect();
        won.sort_unstable();
        assert_eq!(won, (0..200).collect::<Vec<_>>());
    }

    #[test]
    fn a_reused_run_id_is_an_error_not_a_taken_slot() {
        let db = TempDb::new("claim-run-id");
        let store = open(&db);
        assert_eq!(store.claim(&scheduled("r1", "a", 60_000, 1)).unwrap(), Claim::Claimed);
        let err = store.claim(&scheduled("r1", "a", 120_000, 1)).unwrap_err();
        assert!(matches!(err, StoreError::Query { operation: "run claim", .. }), "{err}");
    }

    #[test]
    fn manual_runs_are_unique_by_idempotency_key() {
        let db = TempDb::new("claim-manual");
        let store = open(&db);
        assert_eq!(store.claim(&manual("m1", "a", "key-1", 1)).unwrap(), Claim::Claimed);
        assert_eq!(store.claim(&manual("m2", "a", "key-1", 1)).unwrap(), Claim::Taken);
        assert_eq!(store.claim(&manual("m3", "a", "key-2", 1)).unwrap(), Claim::Claimed);
        assert_eq!(store.claim(&manual("m4", "a", "key-1", 2)).unwrap(), Claim::Claimed);
        assert_eq!(store.claim(&manual("m5", "b", "key-1", 1)).unwrap(), Claim::Claimed);
        // A scheduled run sharing the key is a different claim space.
        let mut slot = scheduled("s1", "a", 60_000, 1);
        slot.idempotency_key = "key-1".to_owned();
        assert_eq!(store.claim(&slot).unwrap(), Claim::Claimed);
        assert_eq!(store.last_slot("a").unwrap(), Some(60_000));
    }

    #[test]
    fn claim_many_claims_in_one_batch_and_answers_in_order() {
        let db = TempDb::new("claim-many");
        let store = open(&db);
        assert_eq!(store.claim(&scheduled("r1", "a", 60_000, 1)).unwrap(), Claim::Claimed);
        let missed = |run_id: &str, slot_ms| NewRun {
            status: RunStatus::Missed,
            reason: Some(SlotReason::Misfire),
            started_at_ms: None,
            ..scheduled(run_id, "a", slot_ms, 1)
        };
        let batch = [missed("x1", 60_000), missed("x2", 120_000), missed("x3", 120_000), {
            let mut skipped = missed("x4", 180_000);
            skipped.status = RunStatus::Skipped;
            skipped.reason = Some(SlotReason::Overlap);
            skipped
        }];
        let claims = store.claim_many(&batch).unwrap();
        assert_eq!(claims, [Claim::Taken, Claim::Claimed, Claim::Taken, Claim::Claimed]);
        let x2 = record(&store, "x2").unwrap();
        assert_eq!((x2.status, x2.reason.as_str()), (RunStatus::Missed, "missed:misfire"));
        assert_eq!((x2.started_at_ms, x2.finished_at_ms), (None, None));
        assert_eq!(record(&store, "x4").unwrap().status, RunStatus::Skipped);
        assert_eq!(store.last_slot("a").unwrap(), Some(180_000));
        assert_eq!(store.claim_many(&[]).unwrap(), []);
    }

    #[test]
    fn finish_records_the_end_of_a_running_run_only() {
        let db = TempDb::new("finish");
        let store = open(&db);
        assert_eq!(store.claim(&scheduled("r1", "a", 60_000, 1)).unwrap(), Claim::Claimed);
        assert!(store.finish("r1", &succeeded(60_010)).unwrap());
        let detail = store.run("r1").unwrap().unwrap();
        assert_eq!((detail.output.as_str(), detail.logs_json.as_str()), ("done", LOGS));
        let run = detail.record;
        assert_eq!(run.status, RunStatus::Succeeded);
        assert_eq!(run.outcome, "succeeded");
        assert_eq!(run.finished_at_ms, Some(60_010));
        assert_eq!(run.duration_ms, Some(1.5));
        assert_eq!(run.fuel_used, Some(u64::from(u32::MAX) + 7));
        assert_eq!(run.peak_memory, Some(65_536));
        assert_eq!(run.net.map(|n| (n.requests, n.refused, n.bytes_in)), Some((3, 1, 42)));
        // A finished run stays as it ended.
        assert!(!store.finish("r1", &failed(60_020, Some(70_000))).unwrap());
        assert_eq!(record(&store, "r1").unwrap(), run);
        // A slot recorded without a run, and an unknown run, have nothing to finish.
        let skipped = NewRun {
            status: RunStatus::Skipped,
            reason: Some(SlotReason::Overlap),
            started_at_ms: None,
            ..scheduled("r2", "a", 120_000, 1)
        };
        assert_eq!(store.claim(&skipped).unwrap(), Claim::Claimed);
        assert!(!store.finish("r2", &succeeded(120_010)).unwrap());
        assert_eq!(record(&store, "r2").unwrap().status, RunStatus::Skipped);
        assert!(!store.finish("nope", &succeeded(1)).unwrap());
    }

    #[test]
    fn finish_many_finishes_in_one_batch_and_answers_in_order() {
        let db = TempDb::new("finish-many");
        let store = open(&db);
        for (run_id, slot) in [("r1", 60_000), ("r2", 120_000)] {
            assert_eq!(store.claim(&scheduled(run_id, "a", slot, 1)).unwrap(), Claim::Claimed);
        }
        let batch = [
            ("r1".to_owned(), succeeded(60_010)),
            ("nope".to_owned(), succeeded(60_010)),
            ("r2".to_owned(), failed(120_010, Some(130_000))),
            ("r1".to_owned(), failed(60_020, None)),
        ];
        assert_eq!(store.finish_many(&batch).unwrap(), [true, false, true, false]);
        assert_eq!(record(&store, "r1").unwrap().status, RunStatus::Succeeded);
        let r2 = record(&store, "r2").unwrap();
        assert_eq!((r2.status, r2.retry_at_ms), (RunStatus::Failed, Some(130_000)));
        assert!(store.finish_many(&[]).unwrap().is_empty());
    }

    /// `cargo test --release -- --ignored --nocapture claim_finish_throughput`
    #[test]
    #[ignore = "a measurement, not a check"]
    fn claim_finish_throughput() {
        let db = TempDb::new("bench");
        let store = open(&db);
        let run = |i: i64| {
            // Scattered ids, as random run ids are, so the run_id index is not appended to.
            let run_id = format!("{:016x}", (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut run = scheduled(&run_id, "noop", i, 1);
            run.job = format!("noop-{}", i % 10);
            run
        };
        let report = |what: &str, pairs: i64, elapsed: std::time::Duration| {
            println!(
                "{what}: {pairs} claim+finish pairs in {elapsed:.2?}: {:.0} pairs/s, {:.1} µs each",
                pairs as f64 / elapsed.as_secs_f64(),
                elapsed.as_secs_f64() * 1e6 / pairs as f64
            );
        };
        let pairs = 30_000;
        let started = std::time::Instant::now();
        for i in 0..pairs {
            let run = run(i);
            assert_eq!(store.claim(&run).unwrap(), Claim::Claimed);
            assert!(store.finish(&run.run_id, &succeeded(i + 1)).unwrap());
        }
        report("one by one", pairs, started.elapsed());

        let batch = 64;
        let started = std::time::Instant::now();
        for chunk in 1..=pairs / batch {
            let runs: Vec<NewRun> = (0..batch).map(|i| run(chunk * 1_000_000 + i)).collect();
            assert!(store.claim_many(&runs).unwrap().iter().all(|c| *c == Claim::Claimed));
            let finishes: Vec<(String, RunFinish)> =
                runs.into_iter().map(|run| (run.run_id, succeeded(1))).collect();
            assert!(store.finish_many(&finishes).unwrap().iter().all(|done| *done));
        }
        report("batches of 64", pairs / batch * batch, started.elapsed());
    }
}
