//! The sandbox of one run: exactly the capabilities its [`JobSpec`] grants and nothing
//! else. No inherited env, args or stdio; only the preopened dirs it names, the secrets it
//! names (as env variables), and only the hosts its `allowed_hosts` names (through `net`).
//!
//! A WASI command has no `run-context` and no `config` import, so it gets the same facts
//! the ordinary way (F2): the manifest's `[config]` as `SANDCRON_CONFIG_<KEY>` environment
//! variables and a manual trigger's payload on stdin. State stays a job-world feature.
//! A job-world component gets them as its [`RunContext`] instead.

use std::sync::Arc;
use std::time::SystemTime;

use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::bindings::{RunContext, TriggerKind as WitTrigger};
use super::capture::CapturePipe;
use super::load::{LoadedJob, Prepared};
use super::net::{RunNet, configure_sockets};
use crate::config::JobSpec;
use crate::job::{RunRequest, TriggerKind, unix_ms};

/// The WASI context of one run of `job` under `spec`, writing to `stdout` and `stderr` and
/// reaching the network through `net`; `Err` with the reason if a granted dir cannot be
/// opened.
pub(super) fn wasi_builder(
    job: &LoadedJob,
    spec: &JobSpec,
    request: &RunRequest,
    (stdout, stderr): (&CapturePipe, &CapturePipe),
    net: &Arc<RunNet>,
) -> Result<WasiCtxBuilder, String> {
    let mut builder = WasiCtxBuilder::new();
    builder
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .envs(&spec.capabilities.env.iter().collect::<Vec<_>>())
        .arg(&spec.name);
    for secret in &spec.secrets {
        builder.env(&secret.name, secret.value.expose());
    }
    configure_sockets(&mut builder, net);
    if !matches!(job.prepared, Prepared::Job(_)) {
        builder.envs(&config_env(&spec.config));
        if let Some(payload) = &request.payload {
            builder.stdin(MemoryInputPipe::new(payload.clone()));
        }
    }
    for dir in &spec.capabilities.dirs {
        let perms = if dir.writable { FsPerms::ReadWrite } else { FsPerms::ReadOnly };
        if let Err(err) = builder.preopened_dir(&dir.host, &dir.guest, perms) {
            return Err(format!("cannot grant dir {}: {err:#}", dir.host.display()));
        }
    }
    Ok(builder)
}

/// A command's view of `[config]`: `greeting` becomes `SANDCRON_CONFIG_GREETING`, every
/// character that is not an ASCII letter or digit an underscore.
fn config_env(config: &std::collections::BTreeMap<String, String>) -> Vec<(String, String)> {
    let env_key = |key: &str| -> String {
        key.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' })
            .collect()
    };
    config
        .iter()
        .map(|(key, value)| (format!("SANDCRON_CONFIG_{}", env_key(key)), value.clone()))
        .collect()
}

pub(super) fn run_context(
    job: &LoadedJob,
    spec: &JobSpec,
    request: &RunRequest,
    started_at: SystemTime,
) -> RunContext {
    RunContext {
        job_name: spec.name.clone(),
        job_version: job.content_hash.clone(),
        run_id: request.run_id.clone(),
        idempotency_key: request.idempotency_key.clone(),
        scheduled_at_ms: unix_ms(request.scheduled_at),
        started_at_ms: unix_ms(started_at),
        attempt: request.attempt,
        trigger: match request.trigger {
            TriggerKind::Schedule => WitTrigger::Schedule,
            TriggerKind::Manual => WitTrigger::Manual,
            TriggerKind::Retry => WitTrigger::Retry,
            TriggerKind::CatchUp | TriggerKind::Backfill => WitTrigger::CatchUp,
        },
        payload: request.payload.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_keys_become_env_names() {
        let config = [("greeting".to_string(), "hi".to_string()), ("max-age.s".into(), "3".into())];
        assert_eq!(
            config_env(&config.into_iter().collect()),
            [
                ("SANDCRON_CONFIG_GREETING".to_string(), "hi".to_string()),
                ("SANDCRON_CONFIG_MAX_AGE_S".into(), "3".into())
            ]
        );
    }
}
