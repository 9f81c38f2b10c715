//! The `sandcron` subcommands, each in its own file, plus what they share: exit codes,
//! default paths, and building the runtime from flags.

mod api_client;
pub mod control;
pub mod docs;
pub mod jobs;
mod listen;
pub mod logs;
pub mod new;
pub mod next;
pub mod prune;
pub mod run;
pub mod runs;
pub mod serve;
pub mod serve_config;
pub mod token;
pub mod validate;

use std::path::{Path, PathBuf};

use crate::cli::RuntimeArgs;
use crate::runtime::{Runtime, RuntimeConfig};

/// Process exit codes, documented in `sandcron run --help` and the README.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// The job succeeded (or the files are valid).
    Success = 0,
    /// The host failed (I/O, store, engine).
    HostError = 1,
    /// Bad input: unreadable or invalid wasm, manifest or flags.
    InvalidInput = 2,
    /// The guest reported an error (job-error or non-zero exit code).
    GuestError = 3,
    /// The guest trapped.
    Trap = 4,
    /// A limit stopped the guest (timeout, fuel, memory).
    Limit = 5,
}

/// Where sandcron keeps per-user data (state, cache) when no path is given.
pub(crate) fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("", "", "sandcron")
}

/// The default store (runs, jobs and per-job state): one file shared by every command.
pub(crate) fn default_store_path() -> PathBuf {
    project_dirs().map_or_else(
        || PathBuf::from(".sandcron/sandcron.db"),
        |d| d.data_dir().join("sandcron.db"),
    )
}

/// The default compile cache folder.
pub(crate) fn default_cache_dir() -> PathBuf {
    project_dirs()
        .map_or_else(|| PathBuf::from(".sandcron/cache"), |d| d.cache_dir().join("compiled"))
}

/// Builds the runtime described by the shared flags.
pub(crate) fn build_runtime(args: &RuntimeArgs) -> Result<Runtime, crate::runtime::RuntimeError> {
    let cache_dir = if args.no_cache {
        None
    } else {
        Some(args.cache_dir.clone().unwrap_or_else(default_cache_dir))
    };
    Runtime::new(&RuntimeConfig { cache_dir, pooling: !args.no_pool, ..RuntimeConfig::default() })
}

/// The exit code for a runtime that could not be built: a refused cache folder is a bad
/// flag (or `SANDCRON_CACHE_DIR`), anything else the host's own failure.
pub(crate) fn runtime_exit(err: &crate::runtime::RuntimeError) -> Exit {
    match err {
        crate::runtime::RuntimeError::Cache(cache) if cache.is_refusal() => Exit::InvalidInput,
        _ => Exit::HostError,
    }
}

/// The sibling of `path` with the other extension (`job.wasm` <-> `job.toml`).
pub(crate) fn sibling(path: &Path, extension: &str) -> PathBuf {
    path.with_extension(extension)
}

/// The job name: the file stem.
pub(crate) fn job_name(path: &Path) -> String {
    path.file_stem().map_or_else(|| "job".to_string(), |s| s.to_string_lossy().into_owned())
}
