//! http-rust: the sandcron SDK's outbound HTTP example.
//!
//! GETs the URL in `[config] url`, logs the status and the body's size, and reports
//! `GET URL -> STATUS (N bytes)`. A non-2xx status is a retryable failure, as is a request
//! that got no response; a URL outside the manifest's `allowed_hosts` fails with
//! `HTTP-request-denied`, which no retry can fix, so that one is fatal.
//!
//! Build: `cargo build --target wasm32-wasip2 --release -p http-rust`.

use sandcron_guest::{Context, JobError, Output, config, http, log};

fn run(_ctx: Context) -> Result<Output, JobError> {
    let url = config::get("url").ok_or_else(|| JobError::fatal("[config] url is not set"))?;
    let resp = http::get(&url).map_err(|err| {
        if err.is_denied() { JobError::fatal(err) } else { JobError::retryable(err) }
    })?;
    let bytes = resp.body().len();
    log::info_with(
        "fetched",
        &[("url", &url), ("status", &resp.status.to_string()), ("bytes", &bytes.to_string())],
    );
    if !resp.is_success() {
        return Err(JobError::retryable(format!("GET {url} -> {}", resp.status)));
    }
    Ok(Output::new(format!("GET {url} -> {} ({bytes} bytes)", resp.status)))
}

sandcron_guest::job!(run);
