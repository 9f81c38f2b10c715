//! The arguments of `serve`: the host, its API and the history it keeps.

use std::path::PathBuf;

use clap::Args;

use super::RuntimeArgs;
use crate::api_url::ApiUrl;
use crate::config::Span;

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
    /// Serve the API on a TCP socket already bound and listening on file descriptor N,
    /// inherited from the process that started the host (a supervisor; a test harness that
    /// bound port 0): the host binds nothing itself. Under systemd socket activation
    /// (LISTEN_FDS) the passed socket is taken without this flag.
    #[arg(long, value_name = "N", conflicts_with = "no_api")]
    pub api_fd: Option<i32>,
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
