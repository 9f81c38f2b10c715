//! The arguments of the verbs that work on one job file: `run` and `validate`.

use std::path::PathBuf;

use clap::Args;

use super::RuntimeArgs;
use crate::config::{AllowedHost, ByteSize, Span};

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
