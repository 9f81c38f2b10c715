//! The arguments of the verbs that read or prune the store directly, with or without a
//! host serving it: `jobs`, `runs`, `logs` and `prune`.

use std::path::PathBuf;

use clap::Args;

use crate::config::Span;

/// `sandcron jobs`.
#[derive(Debug, Args)]
pub struct JobsArgs {
    /// Store (SQLite file) [default: sandcron.db in the per-user data dir].
    #[arg(long, value_name = "PATH", env = "SANDCRON_STORE")]
    pub store: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `sandcron runs`.
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// The job.
    pub job: String,
    /// Store (SQLite file) [default: sandcron.db in the per-user data dir].
    #[arg(long, value_name = "PATH", env = "SANDCRON_STORE")]
    pub store: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// How many runs to show.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,
    /// With --json: include each run's log lines.
    #[arg(long, requires = "json")]
    pub logs: bool,
}

/// `sandcron logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The job.
    pub job: String,
    /// The run (an id from `sandcron runs`) [default: the job's newest run].
    #[arg(value_name = "RUN_ID")]
    pub run: Option<String>,
    /// Wait for the run to end; without RUN_ID, keep printing later runs as they end.
    #[arg(short, long)]
    pub follow: bool,
    /// Store (SQLite file) [default: sandcron.db in the per-user data dir].
    #[arg(long, value_name = "PATH", env = "SANDCRON_STORE")]
    pub store: Option<PathBuf>,
    /// Print each run as one JSON object (one line each).
    #[arg(long)]
    pub json: bool,
}

/// `sandcron prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove runs due longer ago than this (e.g. 30d, 12h).
    #[arg(long, value_name = "DURATION")]
    pub older_than: Option<Span>,
    /// Keep at most this many runs per job (the newest).
    #[arg(long, value_name = "N")]
    pub keep_runs: Option<u64>,
    /// Only this job's runs.
    #[arg(long, value_name = "JOB")]
    pub job: Option<String>,
    /// Print what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Remove each job's newest failure too when it is past the limits.
    #[arg(long)]
    pub forget_last_failure: bool,
    /// Store (SQLite file) [default: sandcron.db in the per-user data dir].
    #[arg(long, value_name = "PATH", env = "SANDCRON_STORE")]
    pub store: Option<PathBuf>,
}
