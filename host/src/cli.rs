//! Command-line definitions (clap). Parsing only: the commands live in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::api_url::ApiUrl;
use crate::config::{AllowedHost, ByteSize, Span};

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

/// `sandcron completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `sandcron man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write `sandcron.1` and a `sandcron-VERB.1` per subcommand into this folder.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `sandcron serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Host config file (TOML): each flag of `serve` is a key (`workers = 4`, `[api]
    /// idle-timeout = "10s"` for --api-idle-timeout), plus `[notify]` (webhooks). Flags and
    /// environment variables override it. See docs/sandcron.example.toml.
    #[arg(long, value_name = "FILE", env = "SANDCRON_CONFIG")]
    pub config: Option<PathBuf>,
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
    /// How long before its instant a slot's claim is written to the store, so the commit
    /// is not part of the start delay. 0s claims at the instant.
    #[arg(long, value_name = "DURATION", default_value = "250ms")]
    pub claim_ahead: Span,
    /// Address of the HTTP API, metrics and dashboard: HOST:PORT, http://HOST:PORT or
    /// https://HOST:PORT (https needs --tls-cert). A non-loopback address needs --token and
    /// TLS (or --insecure-http). Port 0 picks a free port (the log says which).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7070", env = "SANDCRON_API_ADDR")]
    pub api: ApiUrl,
    /// Serve the API over TLS with this certificate chain (PEM, leaf first).
    #[arg(long, value_name = "FILE", requires = "tls_key", env = "SANDCRON_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert", env = "SANDCRON_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Serve a non-loopback API over plain HTTP, for when something else encrypts the path
    /// (a VPN, or a TLS proxy on the same private network). The token crosses it in clear.
    #[arg(long, conflicts_with = "tls_cert")]
    pub insecure_http: bool,
    /// Serve no HTTP API at all.
    #[arg(long, conflicts_with = "api")]
    pub no_api: bool,
    /// Most API connections open at once; further ones wait, and an idle one is closed to
    /// make room. Lowered to what the descriptor limit (ulimit -n) leaves after the store,
    /// the watcher and the workers.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub api_max_connections: usize,
    /// An API connection that sends no complete request (head, then body) within this is
    /// closed, as is one whose response makes no progress for this long.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub api_idle_timeout: Span,
    /// Bearer token every API call and the dashboard must present. Prefer --token-file:
    /// other users of the machine can read a command line (`ps`).
    #[arg(long, value_name = "TOKEN", env = "SANDCRON_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Read the bearer token from the first line of FILE, which must not be readable or
    /// writable by group or others (chmod 600).
    #[arg(long, value_name = "FILE", env = "SANDCRON_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// A name the API answers to besides localhost, the loopback addresses and the address
    /// a client connected to (repeatable). Requests naming any other host in `Host` get
    /// 421, so that a web page cannot reach the API under a name it rebinds to this host.
    #[arg(long, value_name = "NAME")]
    pub api_host: Vec<crate::api::ApiHostName>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub retention: RetentionArgs,
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

/// History kept by `serve` (`[retention]` in a job's manifest overrides these per job).
#[derive(Debug, Args)]
pub struct RetentionArgs {
    /// Runs due longer ago than this are pruned in the background (e.g. 30d).
    #[arg(long, value_name = "DURATION")]
    pub retention_max_age: Option<Span>,
    /// Most runs kept per job; older ones are pruned in the background.
    #[arg(long, value_name = "N")]
    pub retention_max_runs: Option<u64>,
    /// Keep each job's newest failure whatever the limits (`=false` to prune it too).
    #[arg(long, value_name = "BOOL", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub retention_keep_last_failure: bool,
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

/// How the control verbs reach a running host.
#[derive(Debug, Args)]
pub struct ApiClientArgs {
    /// The host's API: HOST:PORT (plain http), http://HOST:PORT or https://HOST:PORT.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:7070", env = "SANDCRON_API")]
    pub api: ApiUrl,
    /// Trust only this CA certificate (PEM) for an https API, e.g. a self-signed one
    /// [default: the public web PKI roots].
    #[arg(long, value_name = "FILE", env = "SANDCRON_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// The host's bearer token. Prefer --token-file: other users of the machine can read a
    /// command line (`ps`).
    #[arg(long, value_name = "TOKEN", env = "SANDCRON_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Read the host's bearer token from the first line of FILE (chmod 600).
    #[arg(long, value_name = "FILE", env = "SANDCRON_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Print the API's JSON answer.
    #[arg(long)]
    pub json: bool,
}

/// `sandcron trigger`.
#[derive(Debug, Args)]
pub struct TriggerArgs {
    /// The job.
    pub job: String,
    /// Payload handed to the guest.
    #[arg(long, value_name = "TEXT")]
    pub payload: Option<String>,
    /// The same key starts one run, however often it is sent.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// Start even if the job is paused or its overlap policy would refuse.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ApiClientArgs,
}

/// `sandcron pause`.
#[derive(Debug, Args)]
pub struct PauseArgs {
    /// The job.
    pub job: String,
    /// Why (shown beside the paused state).
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub note: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ApiClientArgs,
}

/// `sandcron resume`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The job.
    pub job: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ApiClientArgs,
}

/// `sandcron backfill`.
#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// The job.
    pub job: String,
    /// Start of the range (RFC 3339, inclusive).
    #[arg(long, value_name = "TIME")]
    pub from: String,
    /// End of the range (RFC 3339, inclusive; not in the future).
    #[arg(long, value_name = "TIME")]
    pub to: String,
    /// Starts per second.
    #[arg(long, value_name = "N", default_value_t = 1.0)]
    pub rate: f64,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub client: ApiClientArgs,
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
    /// Allow an outbound host, as an `allowed_hosts` entry: SCHEME://HOST[:PORT], e.g.
    /// http://127.0.0.1:8080, https://*.example.com, tcp://10.0.0.5:5432. Repeatable.
    #[arg(long = "allow-host", value_name = "ENTRY", value_parser = parse_allowed_host)]
    pub allow_hosts: Vec<AllowedHost>,
    /// Payload handed to the guest (as from a manual trigger).
    #[arg(long, value_name = "TEXT")]
    pub payload: Option<String>,
    /// Store holding per-job state [default: sandcron.db in the per-user data dir].
    /// (`--state` is the old name, still accepted.)
    #[arg(long, alias = "state", value_name = "PATH", env = "SANDCRON_STORE")]
    pub store: Option<PathBuf>,
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

fn parse_allowed_host(text: &str) -> Result<AllowedHost, String> {
    text.parse()
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
    /// JavaScript via componentize-js, StarlingMonkey (a component; `fetch` for HTTP).
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
