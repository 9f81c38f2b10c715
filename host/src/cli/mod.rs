//! Command-line definitions (clap). Parsing only: the commands live in `commands/`.
//!
//! This file holds the top level (`Cli`, the global flags, the verb list); each verb
//! group's arguments live beside it:
//! - `job.rs`: one job file (`run`, `validate`);
//! - `serve.rs`: the host (`serve`, its retention flags);
//! - `store.rs`: reading and pruning the store (`jobs`, `runs`, `logs`, `prune`);
//! - `control.rs`: a running host through its API (`trigger`, `pause`, `resume`, `backfill`);
//! - `tools.rs`: helpers that touch no store or host (`next`, `new`, `completions`, `man`);
//! - `shared.rs`: argument groups several verbs flatten in (`RuntimeArgs`, `ApiClientArgs`).
//!
//! Everything is re-exported here, so callers name `crate::cli::RunArgs` and so on.

use clap::{Parser, Subcommand};

mod control;
mod job;
mod serve;
mod shared;
mod store;
mod tools;

pub use control::{BackfillArgs, PauseArgs, ResumeArgs, TriggerArgs};
pub use job::{RunArgs, ValidateArgs};
pub use serve::{RetentionArgs, ServeArgs};
pub use shared::{ApiClientArgs, RuntimeArgs};
pub use store::{JobsArgs, LogsArgs, PruneArgs, RunsArgs};
pub use tools::{CompletionsArgs, Lang, ManArgs, NewArgs, NextArgs};

/// sandcron: a job scheduler whose jobs are sandboxed WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "sandcron", version, about, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Log line format on stderr: `text` or `json` (one object per line). Under systemd
    /// (JOURNAL_STREAM) lines carry a syslog priority prefix and no timestamp.
    #[arg(long, global = true, value_enum, default_value = "text", env = "SANDCRON_LOG_FORMAT")]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, with the span fields (job, run) included.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one job once, now, and print its outcome, output and logs.
    ///
    /// Exit codes: 0 succeeded, 1 host error, 2 invalid input (bad file, manifest or
    /// flag), 3 the guest reported an error (job-error or non-zero exit), 4 trap,
    /// 5 limit (timeout, fuel or memory).
    Run(RunArgs),
    /// Check a job's .wasm and/or .toml without running it.
    ///
    /// Prints the job's shape, world imports and exports, and every problem with file,
    /// line and reason. Exits 2 if anything is wrong.
    Validate(ValidateArgs),
    /// Serve the jobs in a folder: run each on its schedule, record every run.
    ///
    /// Every `NAME.wasm` (+ optional `NAME.toml`) in the folder is a job; changes are
    /// picked up within about a second. Stops on SIGTERM/SIGINT after letting running jobs
    /// finish within the grace period.
    Serve(ServeArgs),
    /// List the jobs the host knows (schedule, next fire, state, last outcome).
    Jobs(JobsArgs),
    /// List a job's runs, newest first.
    Runs(RunsArgs),
    /// Print a run's log lines and output (the newest run unless RUN_ID is given).
    ///
    /// With --follow, waits for the run to end, then prints every later run as it ends,
    /// until interrupted. Exits 2 when the job or run is unknown.
    Logs(LogsArgs),
    /// Remove old run history from the store, and print what went.
    ///
    /// Works with or without a host serving the store. Running runs, retries still due
    /// and (unless --forget-last-failure) each job's newest failure are kept.
    Prune(PruneArgs),
    /// Start a job now on a running host (through its API).
    ///
    /// The same --idempotency-key starts one run however often it is sent. The job's
    /// overlap policy applies unless --force.
    Trigger(TriggerArgs),
    /// Pause a job on a running host: no slot starts until it is resumed.
    Pause(PauseArgs),
    /// Resume a paused job on a running host, from its next slot after now.
    Resume(ResumeArgs),
    /// Run a job's past slots in a time range that never started, rate-limited.
    Backfill(BackfillArgs),
    /// Print the next fire instants of a schedule (UTC, then local time).
    ///
    /// Exits 2 when the schedule is invalid or can never fire.
    Next(NextArgs),
    /// Scaffold a buildable job: source, manifest, build script, README (and WIT).
    ///
    /// Exits 2 on a bad name or an existing folder (nothing is overwritten).
    New(NewArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions(CompletionsArgs),
    /// Print the man page (roff), or write one page per subcommand with --dir.
    Man(ManArgs),
}
