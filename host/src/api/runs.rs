//! `/v1/runs`: run history from the ledger, filtered and paged by id, and one run with its
//! output and logs (O2).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use serde::Deserialize;
use serde_json::{Value, json};

use super::input::{instant, query};
use super::{ApiContext, ApiError, AppState};
use crate::store::{Ledger, RunFilter, RunRecord, RunStatus, StoreError};
use crate::views::{run_detail, run_summary};

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 500;

/// Runs a ledger call off the async runtime (SQLite blocks).
pub async fn blocking<T: Send + 'static>(
    context: &ApiContext,
    call: impl FnOnce(&dyn Ledger) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let ledger = context.ledger.clone();
    tokio::task::spawn_blocking(move || call(ledger.as_ref()))
        .await
        .map_err(|err| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", err.to_string())
        })?
        .map_err(ApiError::from)
}

/// The newest manual run of `job` with this idempotency key.
pub async fn find_by_key(
    context: &ApiContext,
    job: &str,
    key: &str,
) -> Result<Option<RunRecord>, ApiError> {
    let filter = RunFilter {
        job: Some(job.to_string()),
        idempotency_key: Some(key.to_string()),
        // A manual key never matches a scheduled run's `job@slot` key.
        manual_only: true,
        limit: 1,
        ..RunFilter::default()
    };
    Ok(blocking(context, move |ledger| ledger.runs(&filter)).await?.into_iter().next())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunsQuery {
    job: Option<String>,
    status: Option<String>,
    since: Option<String>,
    until: Option<String>,
    before: Option<i64>,
    limit: Option<usize>,
}

/// `GET /v1/runs?job=&status=&since=&until=&before=&limit=`: newest first; pass the
/// answer's `next_before` as `before` for the next page.
pub async fn list(State(context): AppState, uri: Uri) -> Result<Json<Value>, ApiError> {
    let q: RunsQuery = query(&uri)?;
    let status = q
        .status
        .as_deref()
        .map(|s| s.parse::<RunStatus>().map_err(|err| ApiError::invalid("status", err.to_string())))
        .transpose()?;
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::invalid("limit", format!("`limit` must be 1 to {MAX_PAGE}")));
    }
    let filter = RunFilter {
        job: q.job,
        status,
        since_ms: q.since.as_deref().map(|t| instant("since", t)).transpose()?,
        until_ms: q.until.as_deref().map(|t| instant("until", t)).transpose()?,
        before_id: q.before,
        limit,
        ..RunFilter::default()
    };
    let runs = blocking(&context, move |ledger| ledger.runs(&filter)).await?;
    let next_before = (runs.len() == limit).then(|| runs.last().map(|r| r.id)).flatten();
    Ok(Json(json!({
        "runs": runs.iter().map(run_summary).collect::<Vec<_>>(),
        "next_before": next_before,
    })))
}

/// `GET /v1/runs/{run_id}`: one run with output and logs.
pub async fn detail(
    State(context): AppState,
    Path(run_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = run_id.clone();
    match blocking(&context, move |ledger| ledger.run(&id)).await? {
        Some(run) => Ok(Json(run_detail(&run))),
        None => {
            Err(ApiError::new(StatusCode::NOT_FOUND, "run_not_found", format!("no run {run_id:?}"))
                .with_details(json!({ "run_id": run_id })))
        }
    }
}
