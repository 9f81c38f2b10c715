//! The sandboxed runtime: wasmtime set up once, jobs loaded once per version, runs
//! executed in fresh stores under hard limits (R1-R4).
//!
//! Layout: [`engine`](self) builds the `Engine` and linkers; `load` detects a binary's
//! shape and prepares it (through the on-disk `cache`); `execute` runs it in the sandbox
//! `sandbox` builds, and `classify` names the outcome; `host/` implements the
//! `sandcron:job` imports; `limits`, `capture` and `ticker` are the three guards (memory,
//! output, time); `net` lets requests and connections through the job's `allowed_hosts`;
//! `mask` keeps secrets out of the report and `truncate` cuts what is left of the guest's
//! text (reasons, summary) to its cap.
//! This module knows nothing of
//! cron, SQL or HTTP: it takes a [`JobSpec`](crate::config::JobSpec) and a
//! [`RunRequest`](crate::job::RunRequest) and returns a
//! [`RunReport`](crate::job::RunReport).

mod bindings;
mod cache;
mod capture;
mod classify;
mod engine;
mod exception;
mod execute;
mod hint;
mod host;
mod limits;
mod load;
mod mask;
mod net;
mod sandbox;
mod ticker;
mod truncate;

pub use cache::{CacheError, CacheRejection, CacheStatus, LoadInfo};
pub use engine::{Allocator, Runtime, RuntimeConfig, RuntimeError};
pub use host::LogLine;
pub use load::{JobShape, LoadError, LoadedJob, content_hash};
#[doc(hidden)]
pub use net::bench_checked_get;
pub use net::{HostTally, NetStats};
