//! Command-line definitions (clap). Parsing only: the commands live in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{ByteSize, Span};

/// sandcron: a job scheduler whose jobs are sandboxed WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "sandcron", version, about, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
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
    /// Print the next fire instants of a schedule (UTC, then local time).
    ///
    /// Exits 2 when the schedule is invalid or can never fire.
    Next(NextArgs),
    /// Scaffold a buildable job: source, manifest, build script, README (and WIT).
    ///
    /// Exits 2 on a bad name or an existing folder (nothing is overwritten).
    New(NewArgs),
}

/// `sandcron serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The watched jobs folder.
    #[arg(long, value_name = "DIR")]
    pub jobs: PathBuf,
    /// Store (SQLite file) [default: sandcron.db in the per-user data dir].
    #[arg(long, value_name = "PATH", env = "SANDCRON_STORE")]
    pub store: Option<PathBuf>,
    /// Runs executing at once, host-wide [default: 2 per CPU].
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// On shutdown, how long running jobs may take before they are interrupted.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub grace: Span,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub runtime: RuntimeArgs,
}

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
}

/// `sandcron next`.
#[derive(Debug, Args)]
pub struct NextArgs {
    /// Cron expression (5 fields, 6 with leading seconds, 7 with trailing year), an
    /// `@descriptor` (`@daily`, `@hourly`, ...) or `@every 30s`.
    #[arg(value_name = "SPEC")]
    pub spec: String,
    /// IANA time zone the expression is read in [default: UTC].
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
    /// Start after this instant (RFC 3339) [default: now].
    #[arg(long, value_name = "TIME")]
    pub after: Option<String>,
    /// How many fire times to print.
    #[arg(short = 'n', value_name = "N", default_value_t = 5)]
    pub count: usize,
    /// A local time skipped by a spring-forward change: `shift` (fire after the gap) or `skip`.
    #[arg(long, value_name = "RULE", default_value = "shift")]
    pub dst_gap: crate::schedule::DstGap,
    /// A local time repeated by a fall-back change: `first`, `last` or `both`.
    #[arg(long, value_name = "RULE", default_value = "first")]
    pub dst_fold: crate::schedule::DstFold,
}

/// Flags shared by commands that load wasm.
#[derive(Debug, Args)]
pub struct RuntimeArgs {
    /// Folder for precompiled code [default: the per-user cache dir].
    #[arg(long, value_name = "DIR", env = "SANDCRON_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Compile on every load instead of using the cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Use on-demand instance allocation instead of the pooling allocator.
    #[arg(long)]
    pub no_pool: bool,
}

/// `sandcron run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The job: a component (sandcron:job world or WASI command) or a preview1 module.
    #[arg(value_name = "FILE.wasm")]
    pub wasm: PathBuf,
    /// Manifest [default: FILE.toml beside the wasm, if present].
    #[arg(long, value_name = "FILE.toml")]
    pub manifest: Option<PathBuf>,
    /// Memory limit for all of the job's memories together, e.g. 64MiB.
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<ByteSize>,
    /// Fuel (instruction) budget.
    #[arg(long, value_name = "N")]
    pub fuel: Option<u64>,
    /// Wall-clock timeout, e.g. 10s.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<Span>,
    /// Grant a directory: HOST:GUEST[:ro|:rw] (read-only unless :rw). Repeatable.
    #[arg(long = "dir", value_name = "HOST:GUEST[:MODE]")]
    pub dirs: Vec<String>,
    /// Set an environment variable for the guest: KEY=VALUE. Repeatable.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub env: Vec<(String, String)>,
    /// Set a config value for the guest: KEY=VALUE. Repeatable.
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub config: Vec<(String, String)>,
    /// Payload handed to the guest (as from a manual trigger).
    #[arg(long, value_name = "TEXT")]
    pub payload: Option<String>,
    /// Store holding per-job state [default: sandcron.db in the per-user data dir].
    #[arg(long, value_name = "PATH", env = "SANDCRON_STATE")]
    pub state: Option<PathBuf>,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub runtime: RuntimeArgs,
}

/// `sandcron validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// A job's .wasm or .toml; its sibling (same stem) is checked too when present.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub runtime: RuntimeArgs,
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

/// `sandcron new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The job's name: lowercase letters, digits, `-` and `_`, starting with a letter.
    pub name: String,
    /// The job's language.
    #[arg(long, value_enum)]
    pub lang: Lang,
    /// The folder to create (it must not exist) [default: ./NAME].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Rust: the sandcron-guest SDK folder [default: guest-sdk/ of the source tree this
    /// binary was built from].
    #[arg(long, value_name = "DIR")]
    pub sdk_path: Option<PathBuf>,
}

/// The languages `sandcron new` scaffolds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// Rust with the sandcron-guest SDK (a component).
    Rust,
    /// JavaScript via jco componentize, QuickJS (a component).
    Js,
    /// Python via componentize-py (a component).
    Python,
    /// C via clang, wit-bindgen c and the preview1 adapter (a component).
    C,
    /// Go as a WASI preview1 command.
    Go,
}

impl Lang {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Js => "js",
            Lang::Python => "python",
            Lang::C => "c",
            Lang::Go => "go",
        }
    }
}
