//! The arguments of the verbs that act on a running host through its API: `trigger`,
//! `pause`, `resume` and `backfill` (each flattens in `ApiClientArgs`).

use clap::Args;

use super::ApiClientArgs;

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
