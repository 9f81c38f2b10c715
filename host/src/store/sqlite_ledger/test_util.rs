//! Fixtures shared by the ledger's tests: claims and finishes with fixed, readable values.

use super::{NewRun, RunFinish, RunRecord, RunStatus, SqliteStore};
use crate::job::TriggerKind;
use crate::store::{Ledger, TempDb};

pub(crate) const HOST: &str = "host-a";
pub(crate) const LOGS: &str = r#"[{"level":"info","message":"hi"}]"#;

/// One run without its text, as lists read it.
pub(crate) fn record(store: &SqliteStore, run_id: &str) -> Option<RunRecord> {
    store.run(run_id).unwrap().map(|detail| detail.record)
}

pub(crate) fn scheduled(run_id: &str, job: &str, slot_ms: i64, attempt: u32) -> NewRun {
    NewRun {
        run_id: run_id.to_owned(),
        job: job.to_owned(),
        slot_ms: Some(slot_ms),
        attempt,
        trigger: if attempt == 1 { TriggerKind::Schedule } else { TriggerKind::Retry },
        idempotency_key: format!("{job}@{slot_ms}"),
        version: "v1".to_owned(),
        owner: HOST.to_owned(),
        scheduled_at_ms: slot_ms,
        status: RunStatus::Running,
        reason: None,
        started_at_ms: Some(slot_ms + 3),
    }
}

pub(crate) fn manual(run_id: &str, job: &str, key: &str, attempt: u32) -> NewRun {
    NewRun {
        slot_ms: None,
        trigger: TriggerKind::Manual,
        idempotency_key: key.to_owned(),
        ..scheduled(run_id, job, 5_000, attempt)
    }
}

pub(crate) fn failed(at_ms: i64, retry_at_ms: Option<i64>) -> RunFinish {
    RunFinish {
        status: RunStatus::Failed,
        reason: "trap: unreachable".to_owned(),
        outcome: "trap".to_owned(),
        finished_at_ms: at_ms,
        duration_ms: 1.5,
        fuel_used: None,
        peak_memory: Some(65_536),
        output: String::new(),
        logs_json: "[]".to_owned(),
        retry_at_ms,
        // `scheduled(.., 60_000, ..)` claims with a provisional start of slot + 3.
        started_at_ms: Some(60_003),
        net: None,
    }
}

pub(crate) fn succeeded(at_ms: i64) -> RunFinish {
    RunFinish {
        status: RunStatus::Succeeded,
        reason: String::new(),
        outcome: "succeeded".to_owned(),
        fuel_used: Some(u64::from(u32::MAX) + 7),
        output: "done".to_owned(),
        logs_json: LOGS.to_owned(),
        net: Some(crate::job::NetCounts {
            requests: 3,
            refused: 1,
            limited: 0,
            bytes_in: 42,
            bytes_out: 7,
        }),
        ..failed(at_ms, None)
    }
}

pub(crate) fn open(db: &TempDb) -> SqliteStore {
    SqliteStore::open(&db.path).unwrap()
}
