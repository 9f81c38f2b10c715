//! Write a sandcron job in Rust: one function and one macro call.
//!
//! A sandcron job is a WebAssembly component of the `sandcron:job` world (the `wit/`
//! folder at the root of the repository). This crate generates the bindings for that world
//! and hides them behind a small, friendly surface:
//!
//! - [`job!`] exports your `fn(Context) -> Result<Output, JobError>` as the world's `run`;
//! - [`Context`] says which run this is (job, version, run id, idempotency key, times,
//!   attempt, [`Trigger`], payload);
//! - [`Output`] and [`JobError`] are what a run reports back. A [`JobError::Retryable`]
//!   failure is retried under the manifest's `[retry]` policy, a [`JobError::Fatal`] one
//!   is not; `?` on any `std::error::Error` gives a retryable error;
//! - [`log`], [`state`], [`config`] and [`deadline`] wrap the host's imports: levelled
//!   structured logs, per-job persistent state with serde (JSON) values, the manifest's
//!   `[config]` table, and the time left in this run;
//! - [`http`] is a blocking HTTP client over `wasi:http` ([`http::get`], [`http::post`],
//!   [`http::Request`]), reaching only the hosts the manifest's `allowed_hosts` lists;
//! - [`secret`] reads one of the manifest's `[secrets]`, which reach the run as
//!   environment variables.
//!
//! Standard library I/O works too (WASI p2): stdout and stderr are captured into the run's
//! log, files are reachable only under the directories the manifest grants, and
//! `std::net::TcpStream` connects to the `tcp://` entries of `allowed_hosts`.
//!
//! # Example
//!
//! ```no_run
//! use sandcron_guest::{Context, JobError, Output, config, log, state};
//!
//! fn run(ctx: Context) -> Result<Output, JobError> {
//!     if ctx.payload_str() == Some("fail") {
//!         return Err(JobError::retryable("asked to fail"));
//!     }
//!     let greeting = config::get_or("greeting", "hello");
//!     let runs: u64 = state::get("runs")?.unwrap_or(0) + 1;
//!     state::set("runs", &runs)?;
//!     log::info_with("counted", &[("runs", &runs.to_string()), ("run_id", &ctx.run_id)]);
//!     Ok(Output::new(format!("{greeting}, run #{runs}")))
//! }
//!
//! sandcron_guest::job!(run);
//! ```
//!
//! The crate is a `cdylib`; `cargo build --target wasm32-wasip2 --release` then yields a
//! component the host loads as is, no other tool needed:
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! sandcron-guest = "0.1"
//! ```
//!
//! # Design
//!
//! `job!` is a `macro_rules!` macro, not a proc macro: all it does is name a hidden type,
//! implement the generated `Guest` trait by converting the WIT record into [`Context`], and
//! call wit-bindgen's own export macro. That needs no proc-macro crate of our own, and the
//! job's crate needs no dependency but this one (the bindings reach wit-bindgen's runtime
//! through this crate).
//!
//! The imports only work inside a sandcron host. Compiled for a native target (for unit
//! tests of your own logic), the crate builds, but calling [`log`], [`state`], [`config`] or
//! [`deadline`] panics; an [`http`] request returns an error saying it is a native build.

#![deny(missing_docs)]

// The generated bindings name this crate by its absolute path (`runtime_path` below), and
// that path must resolve inside the crate too.
extern crate self as sandcron_guest;

mod context;
mod export;
mod outcome;
mod secret;

pub mod config;
pub mod deadline;
pub mod http;
pub mod log;
pub mod state;

pub use context::{Context, Trigger};
pub use outcome::{JobError, Output};
pub use secret::secret;

#[doc(hidden)]
pub use export::run_adapter as __run_adapter;

/// Generated bindings for the `sandcron:job` world. Not part of the public API: use the
/// friendly types at the crate root instead.
#[doc(hidden)]
#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod wit {
    // The export macro expands in the job's crate, which does not depend on wit-bindgen;
    // the runtime is reached through this re-export instead.
    pub use ::wit_bindgen::rt as __rt;

    wit_bindgen::generate!({
        path: "../wit",
        world: "job",
        pub_export_macro: true,
        export_macro_name: "__export_job",
        default_bindings_module: "::sandcron_guest::wit",
        runtime_path: "::sandcron_guest::wit::__rt",
    });
}

/// Export a function as this component's `run`.
///
/// The argument is any expression callable as
/// `FnOnce(Context) -> Result<Output, JobError>`, usually the name of a function. Use the
/// macro exactly once per crate, at module level, in a `cdylib` crate built for
/// `wasm32-wasip2`.
///
/// ```no_run
/// use sandcron_guest::{Context, JobError, Output};
///
/// fn run(ctx: Context) -> Result<Output, JobError> {
///     Ok(Output::new(format!("hello from {}", ctx.job_name)))
/// }
///
/// sandcron_guest::job!(run);
/// ```
#[macro_export]
macro_rules! job {
    ($run:expr $(,)?) => {
        // The export glue is `extern "C"` functions with `export_name`: `unsafe_code` by
        // definition, and no business of the job author's lints.
        #[allow(unsafe_code)]
        const _: () = {
            struct __SandcronJob;

            impl $crate::wit::Guest for __SandcronJob {
                fn run(
                    ctx: $crate::wit::RunContext,
                ) -> ::core::result::Result<$crate::wit::RunOutput, $crate::wit::JobError> {
                    $crate::__run_adapter(ctx, $run)
                }
            }

    $crate::wit::__export_job!(__SandcronJob with_types_in $crate::wit);
        };
    };
}
