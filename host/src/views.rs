//! The stable JSON shapes of runs and jobs, shared by the CLI (`runs --json`, `jobs
//! --json`) and the HTTP API, so both always agree. Times are RFC 3339 UTC with
//! milliseconds; absent times are `null`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::runtime::JobShape;
use crate::scheduler::JobStatus;
use crate::store::{RunDetail, RunRecord};

/// RFC 3339 UTC text of a ms timestamp.
pub fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A run, without its output and logs (lists).
pub fn run_summary(run: &RunRecord) -> Value {
    json!({
        "id": run.id,
        "run_id": run.run_id,
        "job": run.job,
        "slot": run.slot_ms.map(rfc3339),
        "attempt": run.attempt,
        "status": run.status.as_str(),
        "reason": run.reason,
        "outcome": run.outcome,
        "trigger": run.trigger,
        "version": run.version,
        "idempotency_key": run.idempotency_key,
        "scheduled_at": rfc3339(run.scheduled_at_ms),
        "started_at": run.started_at_ms.map(rfc3339),
        "finished_at": run.finished_at_ms.map(rfc3339),
        "duration_ms": run.duration_ms,
        "fuel_used": run.fuel_used,
        "peak_memory": run.peak_memory,
        "retry_at": run.retry_at_ms.map(rfc3339),
        "net": run.net.unwrap_or_default(),
    })
}

/// A run with its captured output (what `sandcron runs --json` prints).
pub fn run_json(run: &RunRecord, output: &str) -> Value {
    let mut value = run_summary(run);
    value["output"] = json!(output);
    value
}

/// A run with output and structured logs (the API's run detail).
pub fn run_detail(run: &RunDetail) -> Value {
    let mut value = run_json(&run.record, &run.output);
    value["logs"] = serde_json::from_str(&run.logs_json).unwrap_or_else(|_| json!([]));
    value
}

fn shape_word(shape: JobShape) -> &'static str {
    match shape {
        JobShape::Job => "job",
        JobShape::Command => "command",
        JobShape::Preview1Command => "preview1-command",
    }
}

/// A loaded job as the scheduler sees it, with its last run (lists and the dashboard).
pub fn job_summary(status: &JobStatus, last_run: Option<&RunRecord>) -> Value {
    let spec = &status.def.spec;
    let schedule = spec.timing.schedule.as_ref().map(|s| {
        json!({
            "expression": s.expression(),
            "description": s.describe(),
            "timezone": s.timezone().name(),
        })
    });
    json!({
        "name": spec.name,
        "version": status.def.version,
        "shape": shape_word(status.def.code.shape),
        "schedule": schedule,
        "next_fire": status.next_fires_ms.first().copied().map(rfc3339),
        "paused": status.paused.is_some(),
        "pause_note": status.paused,
        "breaker": status.breaker.as_str(),
        "breaker_until": status.breaker.until_ms().map(rfc3339),
        "consecutive_failures": status.consecutive_failures,
        "running": status.running,
        "waiting": status.waiting,
        "backfill_pending": status.backfill_pending,
        "load_error": status.load_error,
        "last_run": last_run.map(run_summary),
    })
}

/// A job with its manifest summary, next fire times and recent runs (the job page).
pub fn job_detail(status: &JobStatus, recent: &[RunRecord]) -> Value {
    let spec = &status.def.spec;
    let timing = &spec.timing;
    let mut value = job_summary(status, recent.first());
    value["next_fires"] =
        json!(status.next_fires_ms.iter().copied().map(rfc3339).collect::<Vec<_>>());
    value["manifest"] = json!({
        "overlap": timing.overlap,
        "misfire": timing.misfire,
        "jitter_ms": timing.jitter.map(|d| d.as_millis() as u64),
        "catchup_window_ms": timing.catchup_window.as_millis() as u64,
        "max_catchup": timing.max_catchup,
        "starting_deadline_ms": timing.starting_deadline.map(|d| d.as_millis() as u64),
        "timeout_ms": spec.limits.timeout.as_millis() as u64,
        "memory_bytes": spec.limits.memory.0,
        "fuel": spec.limits.fuel,
        "max_concurrent": spec.limits.max_concurrent,
        "max_attempts": spec.retry.max_attempts,
        "breaker_failures": spec.breaker.as_ref().map(|b| b.failures),
        "dirs": spec.capabilities.dirs.iter().map(|d| json!({
            "guest": d.guest, "writable": d.writable,
        })).collect::<Vec<_>>(),
        "env": spec.capabilities.env.keys().collect::<Vec<_>>(),
        "allowed_hosts": spec.capabilities.allowed_hosts.iter().map(|h| &h.text).collect::<Vec<_>>(),
        "secrets": spec.secrets.iter().map(|s| &s.name).collect::<Vec<_>>(),
        "config_keys": spec.config.keys().collect::<Vec<_>>(),
    });
    value["recent_runs"] = json!(recent.iter().map(run_summary).collect::<Vec<_>>());
    value
}
