//! What a restarted host picks up (S8): runs a dead owner left `running`, and failed or
//! interrupted attempts whose retry was planned but never claimed.

use rusqlite::params;

use super::{RunRecord, SqliteStore, StoreError, query_err, run_records};
use crate::words::InterruptReason;

const INTERRUPTED_REASON: &str = InterruptReason::HostStopped.as_str();

pub(super) fn recover_interrupted(
    store: &SqliteStore,
    current_owner: &str,
    now_ms: i64,
) -> Result<Vec<RunRecord>, StoreError> {
    // One statement, so recovery is atomic: a row is either still running or interrupted
    // and returned, never interrupted without being reported.
    let sql = concat!(
        "UPDATE runs SET status = 'interrupted', reason = ?3, outcome = 'interrupted',
             finished_at_ms = ?2, retry_at_ms = ?2,
             started_at_ms = CASE WHEN started_at_ms > ?2 THEN NULL ELSE started_at_ms END
         WHERE status = 'running' AND owner <> ?1
         RETURNING ",
        run_columns!()
    );
    let mut rows =
        run_records(&store.conn(), sql, params![current_owner, now_ms, INTERRUPTED_REASON])
            .map_err(query_err("run recovery"))?;
    rows.sort_by_key(|run| run.id); // RETURNING has no defined order
    Ok(rows)
}

pub(super) fn pending_retries(store: &SqliteStore) -> Result<Vec<RunRecord>, StoreError> {
    // Two NOT EXISTS rather than one with OR, so each probes its own unique index. The
    // outer scan walks every row that ever planned a retry; it runs once per start.
    let sql = concat!(
        "SELECT ",
        run_columns!(),
        " FROM runs AS r
         WHERE r.retry_at_ms IS NOT NULL AND r.status IN ('failed', 'interrupted')
           AND NOT EXISTS (SELECT 1 FROM runs AS n
               WHERE r.slot_ms IS NOT NULL AND n.job = r.job AND n.slot_ms = r.slot_ms
                 AND n.attempt = r.attempt + 1)
           AND NOT EXISTS (SELECT 1 FROM runs AS n
               WHERE r.slot_ms IS NULL AND n.slot_ms IS NULL AND n.job = r.job
                 AND n.idempotency_key = r.idempotency_key AND n.attempt = r.attempt + 1)
         ORDER BY r.retry_at_ms, r.id"
    );
    run_records(&store.conn(), sql, []).map_err(query_err("pending retries"))
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use crate::store::{Claim, Ledger, NewRun, RunStatus, TempDb};

    #[test]
    fn recovery_interrupts_only_other_owners_running_runs() {
        let db = TempDb::new("recover");
        let store = open(&db);
        let dead = |run_id: &str, slot_ms| NewRun {
            owner: "host-dead".to_owned(),
            ..scheduled(run_id, "a", slot_ms, 1)
        };
        assert_eq!(store.claim(&dead("d1", 60_000)).unwrap(), Claim::Claimed);
        assert_eq!(store.claim(&dead("d2", 120_000)).unwrap(), Claim::Claimed);
        assert_eq!(store.claim(&dead("d3", 180_000)).unwrap(), Claim::Claimed);
        assert!(store.finish("d3", &succeeded(180_010)).unwrap());
        assert_eq!(store.claim(&scheduled("mine", "b", 60_000, 1)).unwrap(), Claim::Claimed);
        // Claimed ahead of a fire time the dead host never reached: it never started.
        assert_eq!(store.claim(&dead("d4", 999_200)).unwrap(), Claim::Claimed);

        let recovered = store.recover_interrupted(HOST, 999_000).unwrap();
        let ids: Vec<&str> = recovered.iter().map(|run| run.run_id.as_str()).collect();
        assert_eq!(ids, ["d1", "d2", "d4"]);
        assert_eq!(recovered[0].started_at_ms, Some(60_003));
        assert_eq!(recovered[2].started_at_ms, None);
        for run in &recovered {
            assert_eq!(run.status, RunStatus::Interrupted);
            assert_eq!(run.reason, "interrupted: host stopped while running");
            assert_eq!(run.outcome, "interrupted");
            assert_eq!(run.finished_at_ms, Some(999_000));
            assert_eq!(run.retry_at_ms, Some(999_000));
            assert_eq!(record(&store, &run.run_id).as_ref(), Some(run));
        }
        assert_eq!(record(&store, "d3").unwrap().status, RunStatus::Succeeded);
        assert_eq!(record(&store, "mine").unwrap().status, RunStatus::Running);
        // A recovered run is no longer running: a late finish from the dead owner is refused.
        assert!(!store.finish("d1", &succeeded(999_500)).unwrap());
        assert_eq!(store.recover_interrupted(HOST, 1_000_000).unwrap(), []);
    }

    #[test]
    fn pending_retries_last_until_the_next_attempt_is_claimed() {
        let db = TempDb::new("retries");
        let store = open(&db);
        let pending = |store: &SqliteStore| -> Vec<String> {
            store.pending_retries().unwrap().into_iter().map(|run| run.run_id).collect()
        };
        for (run_id, slot) in [("r1", 60_000), ("r2", 120_000), ("r3", 180_000)] {
            assert_eq!(store.claim(&scheduled(run_id, "a", slot, 1)).unwrap(), Claim::Claimed);
        }
        assert!(store.finish("r1", &failed(60_010, Some(90_000))).unwrap());
        assert!(store.finish("r2", &failed(120_010, None)).unwrap()); // fatal: no retry
        assert!(store.finish("r3", &failed(180_010, Some(80_000))).unwrap());
        assert_eq!(store.claim(&manual("m1", "a", "key-1", 1)).unwrap(), Claim::Claimed);
        assert!(store.finish("m1", &failed(5_010, Some(85_000))).unwrap());
        assert_eq!(pending(&store), ["r3", "m1", "r1"]); // by retry_at

        assert_eq!(store.claim(&scheduled("r1b", "a", 60_000, 2)).unwrap(), Claim::Claimed);
        assert_eq!(store.claim(&manual("m1b", "a", "key-1", 2)).unwrap(), Claim::Claimed);
        assert_eq!(pending(&store), ["r3"]);

        // Runs a crash left running are retried at once, and stay pending until claimed.
        assert_eq!(store.claim(&scheduled("r4", "b", 60_000, 1)).unwrap(), Claim::Claimed);
        assert_eq!(pending(&store), ["r3"]); // running is not pending
        let recovered = store.recover_interrupted("host-b", 65_000).unwrap();
        assert_eq!(recovered.len(), 3); // r4, and the retries r1b and m1b left running
        assert_eq!(pending(&store), ["r1b", "m1b", "r4", "r3"]);
        let restarted = open(&db);
        assert_eq!(restarted.claim(&scheduled("r4b", "b", 60_000, 2)).unwrap(), Claim::Claimed);
        assert_eq!(pending(&restarted), ["r1b", "m1b", "r3"]);
    }
}
