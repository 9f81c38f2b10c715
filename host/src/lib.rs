//! sandcron: a job scheduler whose jobs are sandboxed WebAssembly components.
//!
//! # Layout
//! What each module owns, from the bottom up:
//! - [`job`]: domain types — run requests, outcomes and reports, the trigger kind.
//! - [`words`]: the words the API, CLI and store promise (slot and interrupt reasons,
//!   breaker state) as enums, spelled and parsed in one place.
//! - [`config`]: job manifests, validated once into [`config::JobSpec`]; the host config file.
//! - [`schedule`]: pure next-fire computation (cron, intervals, one-shots, zones, DST).
//! - [`runtime`]: wasmtime set up once; jobs loaded per version (compile cache); runs in
//!   fresh, limited stores with only the granted capabilities.
//! - [`store`]: durable storage behind traits (the slot ledger and guest state; SQLite now,
//!   PostgreSQL later), its health, retention and pruning.
//! - [`scheduler`]: the actor that decides (slots, overlap, misfire, retries, breaker,
//!   rollback, claims ahead) and the run tasks that claim, run and record; `scheduler/mod.rs`
//!   has its own map.
//! - `watcher`: the jobs folder -> validated job-set changes (debounced, hashed).
//! - `notifications`: failures that speak up (WARN lines, webhooks).
//! - [`metrics`]: the Prometheus registry every part reports to.
//! - [`api`]: the HTTP API, `/metrics`, health probes and the dashboard (axum); `views`:
//!   the JSON shapes the API and the CLI's `--json` share.
//! - [`daemon`]: the composition root of `serve`: wires store, runtime, watcher, scheduler,
//!   notifications and API on the store lock and listener it is handed.
//! - [`cli`] and [`commands`]: the `sandcron` command line (one file per verb); `api_url`:
//!   the one form of an API address both sides of the API read; [`logging`]: log lines for
//!   a terminal, a file or journald.
//! - `wasm_file`: reading a job's `.wasm` under a size ceiling, magic first.
//!
//! Dependencies point down: `commands → daemon → {api, watcher, scheduler, notifications}
//! → {runtime, store, metrics} → {config, schedule, words, job}`. The runtime knows nothing
//! of the command line; the commands never touch wasmtime directly.
//!
//! `pub` modules are what the binary (`main.rs`), the benches and the tests use; the rest
//! is private to the crate.

#![deny(missing_docs)]

pub mod api;
mod api_url;
pub mod cli;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod job;
pub mod logging;
pub mod metrics;
mod notifications;
pub mod runtime;
pub mod schedule;
pub mod scheduler;
pub mod store;
mod views;
mod wasm_file;
mod watcher;
pub mod words;
