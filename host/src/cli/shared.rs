//! Argument groups that several verbs flatten in: how to load wasm (`RuntimeArgs`:
//! `run`, `validate`, `serve`) and how to reach a running host (`ApiClientArgs`: the
//! control verbs).

use std::path::PathBuf;

use clap::Args;

use crate::api_url::ApiUrl;

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
