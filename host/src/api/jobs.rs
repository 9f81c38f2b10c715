//! `/v1/jobs`: list, detail, pause, resume, manual trigger and backfill (O2, S5).

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::input::{instant, json_body, query};
use super::runs::{blocking, find_by_key};
use super::{ApiContext, ApiError, AppState};
use crate::scheduler::{ControlError, JobStatus, MAX_PAYLOAD_BYTES, TriggerRequest, Triggered};
use crate::store::{RunFilter, RunRecord};
use crate::views::{job_detail, job_summary, rfc3339, run_summary};

/// Runs listed on a job's detail.
const RECENT_RUNS: usize = 20;
/// Fire times listed on a job's detail.
const NEXT_FIRES: usize = 5;
/// Backfill starts per second unless the request says otherwise, and the most it may ask.
const DEFAULT_BACKFILL_RATE: f64 = 1.0;
const MAX_BACKFILL_RATE: f64 = 50.0;
/// One start per 100 s at the slowest: a slower backfill would look like one that hangs.
const MIN_BACKFILL_RATE: f64 = 0.01;
/// Longest idempotency key accepted.
const MAX_KEY_LEN: usize = 200;

async fn one_status(context: &ApiContext, name: &str, fires: usize) -> Result<JobStatus, ApiError> {
    let report = context
        .scheduler
        .status(Some(name.to_string()), fires)
        .await
        .ok_or(ControlError::Stopped)?;
    if let Some(status) = report.jobs.into_iter().next() {
        return Ok(status);
    }
    if let Some((_, error)) = report.invalid.into_iter().next() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "job_invalid",
            format!("job {name:?} failed to load and is not running"),
        )
        .with_details(json!({ "job": name, "error": error })));
    }
    Err(ControlError::NotFound(name.to_string()).into())
}

async fn recent_runs(
    context: &ApiContext,
    name: &str,
    limit: usize,
) -> Result<Vec<RunRecord>, ApiError> {
    let filter = RunFilter { job: Some(name.to_string()), limit, ..RunFilter::default() };
    blocking(context, move |ledger| ledger.runs(&filter)).await
}

/// `GET /v1/jobs`: every loaded job with its state and last run, and the job files that
/// failed to load.
pub async fn list(State(context): AppState) -> Result<Json<Value>, ApiError> {
    let report = context.scheduler.status(None, 1).await.ok_or(ControlError::Stopped)?;
    let last_runs = blocking(&context, |ledger| ledger.last_runs()).await?;
    let jobs: Vec<Value> = report
        .jobs
        .iter()
        .map(|status| {
            let last = last_runs.iter().find(|r| r.job == status.def.spec.name);
            job_summary(status, last)
        })
        .collect();
    let invalid: Vec<Value> = report
        .invalid
        .iter()
        .map(|(name, error)| json!({ "name": name, "error": error }))
        .collect();
    let compiling: Vec<Value> = report
        .compiling
        .iter()
        .map(|(name, since)| json!({ "name": name, "since": rfc3339(*since) }))
        .collect();
    Ok(Json(json!({ "jobs": jobs, "invalid": invalid, "compiling": compiling })))
}

/// `GET /v1/jobs/{name}`.
pub async fn detail(
    State(context): AppState,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let status = one_status(&context, &name, NEXT_FIRES).await?;
    let recent = recent_runs(&context, &name, RECENT_RUNS).await?;
    Ok(Json(job_detail(&status, &recent)))
}

async fn summary(context: &ApiContext, status: &JobStatus) -> Result<Json<Value>, ApiError> {
    let last = recent_runs(context, &status.def.spec.name, 1).await?;
    Ok(Json(job_summary(status, last.first())))
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PauseBody {
    #[serde(default)]
    note: String,
}

/// `POST /v1/jobs/{name}/pause` with an optional `{"note": "..."}`.
pub async fn pause(
    State(context): AppState,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let PauseBody { note } = json_body(&body)?;
    let status = context.scheduler.pause(name, note).await?;
    summary(&context, &status).await
}

/// `POST /v1/jobs/{name}/resume` with an empty body or `{}`.
pub async fn resume(
    State(context): AppState,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let fields: serde_json::Map<String, Value> = json_body(&body)?;
    if let Some(field) = fields.keys().next() {
        return Err(ApiError::invalid("body", format!("resume takes no fields, not `{field}`")));
    }
    let status = context.scheduler.resume(name).await?;
    summary(&context, &status).await
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TriggerBody {
    /// Text handed to the guest as the payload.
    payload: Option<String>,
    #[serde(default)]
    force: bool,
}

#[derive(Default, Deserialize)]
struct ForceQuery {
    #[serde(default)]
    force: bool,
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_KEY_LEN)
        .ok_or_else(|| {
            ApiError::invalid(
                "Idempotency-Key",
                format!(
                    "the Idempotency-Key header must be 1 to {MAX_KEY_LEN} visible ASCII characters"
                ),
            )
        })?;
    Ok(Some(key.to_string()))
}

fn duplicate(existing: &RunRecord) -> Response {
    let body = json!({
        "status": "duplicate",
        "job": existing.job,
        "run_id": existing.run_id,
        "idempotency_key": existing.idempotency_key,
        "run": run_summary(existing),
    });
    (StatusCode::OK, Json(body)).into_response()
}

/// `POST /v1/jobs/{name}/trigger[?force=true]` with an optional
/// `{"payload": "...", "force": bool}` and `Idempotency-Key` header: the same key starts one
/// run. 202 when a run started or was queued behind the running one, 200 with the existing
/// run for a repeated key, 409 when the overlap policy or a pause refuses.
pub async fn trigger(
    State(context): AppState,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let ForceQuery { force: force_query } = query(&uri)?;
    let TriggerBody { payload, force } = json_body(&body)?;
    if let Some(payload) = payload.as_ref().filter(|p| p.len() > MAX_PAYLOAD_BYTES) {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the payload is {} bytes; a trigger's payload is at most {MAX_PAYLOAD_BYTES}",
                payload.len()
            ),
        )
        .with_details(json!({ "field": "payload", "max": MAX_PAYLOAD_BYTES })));
    }
    let key = idempotency_key(&headers)?;
    if let Some(key) = &key
        && let Some(existing) = find_by_key(&context, &name, key).await?
    {
        return Ok(duplicate(&existing));
    }
    let request = TriggerRequest {
        job: name.clone(),
        payload: payload.map(String::into_bytes),
        idempotency_key: key,
        force: force || force_query,
    };
    let body = match context.scheduler.trigger(request).await? {
        Triggered::Started { run_id, idempotency_key } => {
            json!({ "status": "started", "job": name, "run_id": run_id, "idempotency_key": idempotency_key })
        }
        Triggered::Queued { idempotency_key } => {
            json!({ "status": "queued", "job": name, "run_id": null, "idempotency_key": idempotency_key })
        }
        Triggered::Duplicate { idempotency_key } => {
            // Another request with this key won the claim an instant earlier.
            return match find_by_key(&context, &name, &idempotency_key).await? {
                Some(existing) => Ok(duplicate(&existing)),
                None => Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "duplicate",
                    "a run with this idempotency key is being claimed; retry to see it",
                )),
            };
        }
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackfillBody {
    from: Option<String>,
    to: Option<String>,
    /// Starts per second.
    rate: Option<f64>,
}

/// `POST /v1/jobs/{name}/backfill` with `{"from": T, "to": T, "rate": runs-per-second}`:
/// runs the schedule's past slots in the range that never started, one at a time, at most
/// `rate` starts per second (default 1).
pub async fn backfill(
    State(context): AppState,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let BackfillBody { from, to, rate } = json_body(&body)?;
    let from = from.ok_or_else(|| ApiError::invalid("from", "`from` is required"))?;
    let to = to.ok_or_else(|| ApiError::invalid("to", "`to` is required"))?;
    let (from_ms, to_ms) = (instant("from", &from)?, instant("to", &to)?);
    let rate = rate.unwrap_or(DEFAULT_BACKFILL_RATE);
    if !(MIN_BACKFILL_RATE..=MAX_BACKFILL_RATE).contains(&rate) {
        return Err(ApiError::invalid(
            "rate",
            format!("`rate` must be {MIN_BACKFILL_RATE} to {MAX_BACKFILL_RATE} starts per second"),
        ));
    }
    let interval = Duration::from_secs_f64(1.0 / rate);
    let plan = context.scheduler.backfill(name.clone(), from_ms, to_ms, interval).await?;
    let body = json!({
        "job": name,
        "slots": plan.slots,
        "queued": plan.queued,
        "already_run": plan.already_run,
        "before_schedule": plan.before_schedule,
        "schedule_since": rfc3339(plan.schedule_since_ms),
        "first_slot": plan.first_ms.map(rfc3339),
        "last_slot": plan.last_ms.map(rfc3339),
        "interval_ms": plan.interval.as_millis() as u64,
    });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}
