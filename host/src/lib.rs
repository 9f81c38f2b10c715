//! sandcron: a job scheduler whose jobs are sandboxed WebAssembly components.
//!
//! # Layout
//! - [`config`]: job manifests, validated once into [`config::JobSpec`].
//! - [`job`]: domain types — run requests, outcomes and reports.
//! - [`words`]: the words the API, CLI and store promise (slot and interrupt reasons,
//!   breaker state) as enums, spelled and parsed in one place.
//! - [`schedule`]: pure next-fire computation (cron, intervals, one-shots, zones, DST).
//! - [`runtime`]: wasmtime set up once; jobs loaded per version; runs in fresh, limited stores.
//! - [`scheduler`]: the timer queue, slot policies and dispatch onto the guest pool.
//! - [`store`]: durable storage behind traits (SQLite now; PostgreSQL later).
//! - [`watcher`]: the jobs folder -> validated job-set changes (debounced, hashed).
//! - [`notifications`]: failures that speak up (WARN lines, webhooks).
//! - [`daemon`]: the composition root of `serve`.
//! - [`cli`] and [`commands`]: the `sandcron` command line; [`api_url`]: the one form of an
//!   API address both sides of the API read.
//! - [`logging`]: log lines on stderr for a terminal, a file or journald, as text or JSON.
//! - `wasm_file`: reading a job's `.wasm` under a size ceiling, magic first (commands and
//!   watcher alike).
//!
//! Dependencies point down: `commands → daemon → {watcher, scheduler} → {runtime, store} →
//! {config, schedule, job}`. The runtime
//! knows nothing of the command line; the commands never touch wasmtime directly.

#![deny(missing_docs)]

pub mod api;
pub mod api_url;
pub mod cli;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod job;
pub mod logging;
pub mod metrics;
pub mod notifications;
pub mod runtime;
pub mod schedule;
pub mod scheduler;
pub mod store;
pub mod views;
mod wasm_file;
pub mod watcher;
pub mod words;
