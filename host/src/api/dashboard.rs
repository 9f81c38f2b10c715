//! The web dashboard (O5): static files kept in `host/assets/dashboard/` and embedded in
//! the binary (no build step), served at `/`. With a token configured, the page answers
//! 401 with a login form until the browser holds the session cookie (see `auth` and
//! `session`); sign-in attempts are throttled per client address (see `throttle`).

use std::sync::Arc;

use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;

use super::ApiContext;
use super::auth::{authorized, is_token};
use super::session;
use super::throttle::{ClientAddr, LoginThrottle};

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
        .layer(Extension(Arc::new(LoginThrottle::default())))
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

async fn login(
    State(context): State<Arc<ApiContext>>,
    Extension(throttle): Extension<Arc<LoginThrottle>>,
    client: Option<Extension<ClientAddr>>,
    Form(form): Form<LoginForm>,
) -> Response {
    let Some(token) = context.token.as_deref() else {
        return login_page(StatusCode::OK, "This host has no token; the dashboard is open.");
    };
    // Counted before the guess is compared, so a right guess past the limit looks no
    // different from a wrong one.
    if let Some(Extension(ClientAddr(client))) = client {
        if let Err(wait) = throttle.attempt(client.ip()) {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let message = format!("Too many sign-in attempts from this address: wait {seconds} s.");
            let mut page = login_page(StatusCode::TOO_MANY_REQUESTS, &message);
            page.headers_mut().insert(header::RETRY_AFTER, seconds.into());
            return page;
        }
    }
    if !is_token(&context, form.token.trim()) {
        return login_page(StatusCode::UNAUTHORIZED, "That token is not valid.");
    }
    let cookie = session::set_cookie(&session::value(token, std::time::SystemTime::now()));
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}
