//! The web dashboard (O5): static files kept in `host/assets/dashboard/` and embedded in
//! the binary (no build step), served at `/`. With a token configured, the page answers
//! 401 with a login form until the browser holds the session cookie (see `auth`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;

use super::ApiContext;
use super::auth::{COOKIE, authorized, is_token, session_value};

const INDEX: &str = include_str!("../../assets/dashboard/index.html");
const APP_JS: &str = include_str!("../../assets/dashboard/app.js");
const STYLE_CSS: &str = include_str!("../../assets/dashboard/style.css");
const LOGIN: &str = include_str!("../../assets/dashboard/login.html");

/// The dashboard's routes.
pub fn routes() -> Router<Arc<ApiContext>> {
    Router::new()
        .route("/", get(index))
        .route("/assets/app.js", get(|| asset("text/javascript; charset=utf-8", APP_JS)))
        .route("/assets/style.css", get(|| asset("text/css; charset=utf-8", STYLE_CSS)))
        .route("/login", get(login_form).post(login))
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body)
        .into_response()
}

fn login_page(status: StatusCode, message: &str) -> Response {
    (status, Html(LOGIN.replace("{{message}}", message))).into_response()
}

async fn index(State(context): State<Arc<ApiContext>>, headers: HeaderMap) -> Response {
    if authorized(&context, &headers) {
        Html(INDEX).into_response()
    } else {
        login_page(StatusCode::UNAUTHORIZED, "This host requires its API token.")
    }
}

async fn login_form() -> Response {
    login_page(StatusCode::OK, "Enter this host's API token.")
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(State(context): State<Arc<ApiContext>>, Form(form): Form<LoginForm>) -> Response {
    if context.token.is_none() {
        return login_page(StatusCode::OK, "This host has no token; the dashboard is open.");
    }
    if !is_token(&context, form.token.trim()) {
        return login_page(StatusCode::UNAUTHORIZED, "That token is not valid.");
    }
    let value = session_value(form.token.trim());
    let cookie = format!("{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}
