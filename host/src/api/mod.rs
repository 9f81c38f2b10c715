//! The host's HTTP surface: the JSON API under `/v1/` (O2), `/metrics` (O3), health
//! probes, and the dashboard (O5), served by axum on the host runtime.
//!
//! # Layout
//! - `error`: the one error shape, and the layer that puts axum's own errors in it.
//! - `auth`: the bearer token (O6), also accepted from the dashboard's session cookie
//!   (`session`: signed, expiring); `throttle` limits sign-in attempts per client.
//! - `headers`: the security headers on every answer (CSP, framing, sniffing, referrer).
//! - `guard`: what a web page could forge (cross-site writes, DNS rebinding): `Host`,
//!   `Origin` and content-type checks.
//! - `input`: JSON bodies and query strings parsed into that error shape.
//! - `jobs`, `runs`: the `/v1/` handlers.
//! - `dashboard`: the static dashboard, embedded in the binary, and its login form.
//! - `server`: the accept loop (connection cap, idle timeouts), over `slots` (which
//!   connections are open, busy or idle) and `timeouts` (body and write deadlines).
//! - `tls`: the certificate and key (`serve --tls-cert/--tls-key`) and the handshake.
//!
//! Reads (runs, last outcomes) go straight to the ledger; anything about live state or
//! that changes it (status, pause, trigger, backfill) goes to the scheduler actor through
//! its [`SchedulerHandle`], so the API never races the scheduler.

mod auth;
mod dashboard;
mod error;
mod guard;
mod headers;
mod input;
mod jobs;
mod runs;
mod server;
mod session;
mod slots;
mod throttle;
mod timeouts;
mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

pub use error::ApiError;
pub use guard::ApiHostName;
pub use server::{ConnectionLimits, connection_budget};
pub use tls::{ApiTls, TlsError};

use crate::metrics::Metrics;
use crate::scheduler::SchedulerHandle;
use crate::store::Ledger;

/// The OpenAPI 3 document describing every route (also in the repo at
/// `host/assets/openapi.json`).
pub const OPENAPI: &str = include_str!("../../assets/openapi.json");

/// What the handlers share.
pub struct ApiContext {
    /// Run history and job records.
    pub ledger: Arc<dyn Ledger>,
    /// The live scheduler.
    pub scheduler: SchedulerHandle,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// The bearer token every request needs; `None` on a loopback bind without one.
    pub token: Option<String>,
    /// Names the API answers to besides localhost and its addresses (`serve --api-host`).
    pub api_hosts: Vec<ApiHostName>,
}

type AppState = State<Arc<ApiContext>>;

/// Every route.
pub fn router(context: Arc<ApiContext>) -> Router {
    // Writes take JSON only (see `guard`); layered on the POST handlers alone, so that other
    // methods still get 405.
    let json = || middleware::from_fn(guard::json_writes);
    let v1 = Router::new()
        .route("/jobs", get(jobs::list))
        .route("/jobs/{name}", get(jobs::detail))
        .route("/jobs/{name}/pause", post(jobs::pause).route_layer(json()))
        .route("/jobs/{name}/resume", post(jobs::resume).route_layer(json()))
        .route("/jobs/{name}/trigger", post(jobs::trigger).route_layer(json()))
        .route("/jobs/{name}/backfill", post(jobs::backfill).route_layer(json()))
        .route("/runs", get(runs::list))
        .route("/runs/{run_id}", get(runs::detail));
    let protected = Router::new()
        .nest("/v1", v1)
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(context.clone(), auth::require_token));
    let same_site = Router::new()
        .merge(protected)
        .merge(dashboard::routes())
        .route("/v1/openapi.json", get(openapi))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(context.clone(), guard::same_site));
    // Health probes answer to any Host (see `guard`).
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(same_site)
        .layer(middleware::map_response(error::shape_errors))
        .layer(middleware::map_response(headers::secure))
        .layer(axum::extract::DefaultBodyLimit::max(1 << 20))
        .with_state(context)
}

/// Serves the API on `listener` (over TLS when `tls` is given) until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    context: Arc<ApiContext>,
    tls: Option<ApiTls>,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    server::serve(listener, router(context), tls, limits, shutdown).await
}

/// Whether an API address may be served without a token (O6: loopback only).
pub fn needs_token(addr: &SocketAddr) -> bool {
    !addr.ip().is_loopback()
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn healthz() -> impl IntoResponse {
    axum::Json(json!({ "status": "ok" }))
}

async fn readyz(State(context): AppState) -> Response {
    if let Some(problem) = context.ledger.health().problem {
        return store_failing(&problem).into_response();
    }
    let why = match context.scheduler.status(None, 0).await {
        Some(report) if report.ready => {
            let (jobs, compiling) = (report.jobs.len(), report.compiling.len());
            let body = json!({ "status": "ready", "jobs": jobs, "compiling": compiling });
            return axum::Json(body).into_response();
        }
        Some(_) => "the jobs folder is still being loaded",
        None => "the scheduler is not running",
    };
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", why).into_response()
}

/// 503 while the store cannot write: runs would not be recorded, so the host is not ready.
fn store_failing(problem: &crate::store::StoreProblem) -> ApiError {
    let message = format!("the store is failing: {}: {}", problem.operation, problem.error);
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store_failing", message)
        .with_details(json!({ "operation": problem.operation, "since_ms": problem.since_ms }))
}

async fn metrics(State(context): AppState) -> impl IntoResponse {
    let health = context.ledger.health();
    context.metrics.store_health(health.healthy(), &health.errors);
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], context.metrics.render())
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}
