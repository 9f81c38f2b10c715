//! hello-rust: the sandcron SDK example.
//!
//! Logs, reads the `greeting` config key, counts its runs in state and reports
//! `"{greeting}, run #{n}"`. A manual trigger with the payload `fail` takes the error path,
//! so retries can be watched too.
//!
//! Build: `cargo build --target wasm32-wasip2 --release -p hello-rust`.

use sandcron_guest::{Context, JobError, Output, config, log, state};

fn run(ctx: Context) -> Result<Output, JobError> {
    log::info(format!("hello-rust starting: attempt {} ({})", ctx.attempt, ctx.trigger));
    if ctx.payload_str() == Some("fail") {
        log::warn("payload asked for a failure");
        return Err(JobError::retryable("asked to fail"));
    }

    let greeting = config::get_or("greeting", "hello");
    let runs = state::get::<u64>("runs")?.unwrap_or(0) + 1;
    state::set("runs", &runs)?;
    log::info_with("counted this run", &[("runs", &runs.to_string())]);

    Ok(Output::new(format!("{greeting}, run #{runs}")))
}

sandcron_guest::job!(run);
