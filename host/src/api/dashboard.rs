//! The web dashboard (O5): static files kept in `host/assets/dashboard/` and embedded in
//! the binary (no build step), served at `/`. With a token configured, the page answers
//! 401 with a login form until the browser holds the session cookie (see `auth` and
//! `session`); sign-in attempts are throttled per client address (see `throttle`).

use std::sync::Arc;

use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;

use super::auth::{authorized, is_token};
use super::session;
use super::throttle::{ClientAddr, LoginThrottle};
use super::{ApiContext, ApiError};

const INDEX: &str = include_str!("../../assets/dashboard/index.html");
const LOGIN: &str = include_str!("../../assets/dashboard/login.html");

/// Browsers run a module script only when it is served as JavaScript.
const JS: &str = "text/javascript; charset=utf-8";

/// The files under `/assets/`: the stylesheet and the script's ES modules, `app.js` the
/// entry point (index.html loads it with `<script type="module">`; it imports the rest).
const ASSETS: &[(&str, &str, &str)] = &[
    ("style.css", "text/css; charset=utf-8", include_str!("../../assets/dashboard/style.css")),
    ("app.js", JS, include_str!("../../assets/dashboard/app.js")),
    ("api.js", JS, include_str!("../../assets/dashboard/api.js")),
    ("dom.js", JS, include_str!("../../assets/dashboard/dom.js")),
    ("format.js", JS, include_str!("../../assets/dashboard/format.js")),
    ("actions.js", JS, include_str!("../../assets/dashboard/actions.js")),
    ("list.js", JS, include_str!("../../assets/dashboard/list.js")),
    ("job.js", JS, include_str!("../../assets/dashboard/job.js")),
    ("runs.js", JS, include_str!("../../assets/dashboard/runs.js")),
    ("chart.js", JS, include_str!("../../assets/dashboard/chart.js")),
];

/// The dashboard's routes.
pub fn routes() -> Router<Arc<ApiContext>> {
    Router::new()
        .route("/", get(index))
        .route("/assets/{file}", get(asset))
        .route("/login", get(login_form).post(login))
        .layer(Extension(Arc::new(LoginThrottle::default())))
}

async fn asset(Path(file): Path<String>) -> Response {
    let Some(&(_, content_type, body)) = ASSETS.iter().find(|(name, _, _)| *name == file) else {
        return ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such dashboard file")
            .into_response();
    };
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
    if let Some(Extension(ClientAddr(client))) = client
        && let Err(wait) = throttle.attempt(client.ip())
    {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let message = format!("Too many sign-in attempts from this address: wait {seconds} s.");
        let mut page = login_page(StatusCode::TOO_MANY_REQUESTS, &message);
        page.headers_mut().insert(header::RETRY_AFTER, seconds.into());
        return page;
    }
    if !is_token(&context, form.token.trim()) {
        return login_page(StatusCode::UNAUTHORIZED, "That token is not valid.");
    }
    let cookie = session::set_cookie(&session::value(token, std::time::SystemTime::now()));
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module added to the folder but not to [`ASSETS`] would be a 404 in the browser,
    /// and so would an import of a file that is not served.
    #[test]
    fn every_module_is_served_and_every_import_names_a_served_module() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/dashboard");
        let served: Vec<&str> = ASSETS.iter().map(|(name, _, _)| *name).collect();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name.ends_with(".js") || name.ends_with(".css") {
                assert!(served.contains(&name.as_str()), "{name} is not in ASSETS");
            }
        }
        for (name, content_type, body) in ASSETS.iter().filter(|(_, t, _)| *t == JS) {
            assert!(content_type.starts_with("text/javascript"));
            for import in body.lines().filter_map(|line| line.split(" from './").nth(1)) {
                let file = import.split('\'').next().unwrap();
                assert!(served.contains(&file), "{name} imports {file}, which is not served");
            }
        }
        assert!(INDEX.contains(r#"<script type="module" src="/assets/app.js">"#));
        let doc: serde_json::Value = serde_json::from_str(super::super::OPENAPI).unwrap();
        let documented = &doc["paths"]["/assets/{file}"]["get"]["parameters"][0]["schema"]["enum"];
        assert_eq!(documented, &serde_json::json!(served), "openapi.json lists other files");
    }
}
