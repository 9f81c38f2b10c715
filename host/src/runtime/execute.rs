//! One run of a loaded job: a fresh sandboxed `Store`, the call, and the classified outcome.
//!
//! Every run gets exactly the capabilities its [`JobSpec`] grants and nothing else: no
//! inherited env, args or stdio, only the preopened dirs it names, the secrets it names
//! (as env variables), and only the hosts its `allowed_hosts` names (through `net`). Three
//! stops bound a run (R2): the memory limiter, optional fuel, and the wall-clock deadline,
//! enforced twice — by the epoch callback for guests burning CPU, and by a tokio timeout
//! for guests parked inside a host call. The callback yields to tokio on every tick, so a
//! busy guest never holds a worker thread for more than one tick.
//!
//! A WASI command has no `run-context` and no `config` import, so it gets the same facts
//! the ordinary way (F2): the manifest's `[config]` as `SANDCRON_CONFIG_<KEY>` environment
//! variables and a manual trigger's payload on stdin. State stays a job-world feature.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use wasmtime::component::ResourceTable;
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx, WasiCtxBuilder};
use wasmtime_wasi_http::WasiHttpCtx;

use super::bindings::{JobError, RunContext, TriggerKind as WitTrigger};
use super::capture::CapturePipe;
use super::engine::{RunData, Runtime};
use super::exception;
use super::hint::ungranted_path;
use super::host::{HostCtx, LogBuffer, LogLine};
use super::limits::{MAX_CALL_TRANSFER, MemoryLimiter, is_transfer_refused};
use super::load::{LoadedJob, Prepared};
use super::mask::SecretMask;
use super::net::{NetHooks, NetStats, RunNet, configure_sockets};
use super::truncate::{REASON_CAP, cap_reason, cap_str, cap_text};
use crate::config::{ByteSize, JobSpec};
use crate::job::{LimitKind, RunOutcome, RunReport, RunRequest, TriggerKind, unix_ms};
use crate::store::StateStore;

/// How the guest's code finished, before classification.
enum Finished {
    Job(Result<String, JobError>),
    /// A command's exit status (0 = success).
    Exit(i32),
}

/// What the classifier needs to know besides the call's result.
struct Evidence<'a> {
    timeout: Duration,
    fuel_budget: Option<u64>,
    memory_limit: ByteSize,
    memory_refused: bool,
    stderr: &'a str,
}

impl Runtime {
    /// Runs `job` once under `spec`'s limits and capabilities, and reports how it went.
    /// Never panics on guest behaviour; host-side failures become [`RunOutcome::HostError`].
    pub async fn execute(
        &self,
        job: &LoadedJob,
        spec: &JobSpec,
        state: Option<Arc<dyn StateStore>>,
        request: &RunRequest,
    ) -> RunReport {
        let started_at = SystemTime::now();
        let limits = &spec.limits;
        let stdout = CapturePipe::new(limits.output.as_usize());
        let stderr = CapturePipe::new(limits.log.as_usize());

        let mut builder = WasiCtxBuilder::new();
        builder
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .envs(&spec.capabilities.env.iter().collect::<Vec<_>>())
            .arg(&spec.name);
        for secret in &spec.secrets {
            builder.env(&secret.name, secret.value.expose());
        }
        let net = Arc::new(RunNet::new(&spec.capabilities.allowed_hosts, &limits.net));
        configure_sockets(&mut builder, &net);
        if !matches!(job.prepared, Prepared::Job(_)) {
            builder.envs(&config_env(&spec.config));
            if let Some(payload) = &request.payload {
                builder.stdin(MemoryInputPipe::new(payload.clone()));
            }
        }
        for dir in &spec.capabilities.dirs {
            let perms = if dir.writable { FsPerms::ReadWrite } else { FsPerms::ReadOnly };
            if let Err(err) = builder.preopened_dir(&dir.host, &dir.guest, perms) {
                let message = format!("cannot grant dir {}: {err:#}", dir.host.display());
                return failed_before_start(started_at, message);
            }
        }

        // Wait for a pool slot before creating the store: a full pool is back-pressure.
        let Ok(_permit) = self.slots.clone().acquire_owned().await else {
            return failed_before_start(started_at, "runtime is shutting down".into());
        };
        let begun = Instant::now();
        let deadline = begun + limits.timeout;
        let host = HostCtx {
            job: Arc::from(spec.name.as_str()),
            config: Arc::new(spec.config.clone()),
            state,
            deadline,
            logs: LogBuffer::new(limits.log.as_usize()),
        };
        let memory_cap = limits.memory.min(self.max_memory).as_usize();
        let fuel_budget = limits.fuel;
        let context = run_context(job, spec, request, started_at);

        let (finished, fuel_left, limiter, mut logs) = match &job.prepared {
            Prepared::Job(_) | Prepared::Command(_) => {
                let data = RunData {
                    wasi: builder.build(),
                    table: ResourceTable::new(),
                    limiter: MemoryLimiter::new(memory_cap),
                    host,
                    http: WasiHttpCtx::new(),
                    net: NetHooks { net: net.clone() },
                };
                let mut store = self.new_store(data, fuel_budget, deadline);
                let call = call_component(&mut store, &job.prepared, &context);
                let finished = tokio::time::timeout_at(deadline.into(), call).await;
                let fuel_left = store.get_fuel().unwrap_or(0);
                let data = store.into_data();
                (finished, fuel_left, data.limiter, data.host.logs)
            }
            Prepared::Preview1(pre) => {
                let data = RunData {
                    wasi: builder.build_p1(),
                    table: ResourceTable::new(),
                    limiter: MemoryLimiter::new(memory_cap),
                    host,
                    http: WasiHttpCtx::new(),
                    net: NetHooks { net: net.clone() },
                };
                let mut store = self.new_store(data, fuel_budget, deadline);
                let call = async {
                    let instance = pre.instantiate_async(&mut store).await?;
                    let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
                    start.call_async(&mut store, ()).await?;
                    Ok(Finished::Exit(0))
                };
                let finished = tokio::time::timeout_at(deadline.into(), call).await;
                let fuel_left = store.get_fuel().unwrap_or(0);
                let data = store.into_data();
                (finished, fuel_left, data.limiter, data.host.logs)
            }
        };
        let duration = begun.elapsed();

        let stdout = stdout.take();
        let stderr = stderr.take();
        let mask = SecretMask::new(&spec.secrets);
        let mut stderr_text = String::from_utf8_lossy(&stderr.bytes).into_owned();
        // Before it is split into lines, so that a multi-line secret is masked whole.
        mask.text(&mut stderr_text);
        let (net_events, net_stats) = net.finish();
        for line in net_events {
            logs.push(line);
        }
        // Each line charged like a `log` call, so a flood of bare newlines is counted, not kept.
        let stderr_at = unix_ms(SystemTime::now());
        for line in stderr_text.lines() {
            logs.push_text(stderr_at, "stderr", line);
        }
        let (mut logs, dropped_lines) = logs.finish();
        logs.sort_by_key(|line| line.at_ms);

        let evidence = Evidence {
            timeout: limits.timeout,
            fuel_budget,
            memory_limit: ByteSize(memory_cap as u64),
            memory_refused: limiter.refused().is_some(),
            stderr: &stderr_text,
        };
        let (mut outcome, summary) = match finished {
            Err(_elapsed) => (RunOutcome::Limit(LimitKind::Timeout(limits.timeout)), None),
            Ok(result) => classify(result, &evidence),
        };
        if let (RunOutcome::Trap { .. }, Some(stack)) =
            (&outcome, exception::quickjs_stack(&stderr_text))
        {
            logs.push(LogLine::now("error", stack));
        }
        if let Some(hint) = failure_hint(&mut outcome, &stderr_text, spec) {
            logs.push(LogLine::now("warn", format!("hint: {hint}")));
        }
        // Not after a timeout: the count of the loop it stopped was never written back.
        let timed_out = matches!(outcome, RunOutcome::Limit(LimitKind::Timeout(_)));
        let mut report = RunReport {
            outcome,
            started_at_ms: unix_ms(started_at),
            duration,
            fuel_used: fuel_budget
                .filter(|_| !timed_out)
                .map(|budget| budget.saturating_sub(fuel_left)),
            peak_memory: limiter.peak() as u64,
            summary,
            stdout: String::from_utf8_lossy(&stdout.bytes).into_owned(),
            stdout_dropped: stdout.dropped,
            logs,
            logs_dropped: dropped_lines + stderr.dropped,
            net: net_stats,
        };
        // Mask, then cut: a cut first could leave the prefix of a secret unmasked.
        mask.report(&mut report);
        report.summary = report.summary.map(|s| cap_text(s, limits.output.as_usize()));
        cap_reason(&mut report.outcome);
        report
    }

    fn new_store<W: Send>(
        &self,
        data: RunData<W>,
        fuel: Option<u64>,
        deadline: Instant,
    ) -> Store<RunData<W>> {
        let mut store = Store::new(&self.engine, data);
        store.limiter(|data| &mut data.limiter);
        store.set_fuel(fuel.unwrap_or(u64::MAX)).expect("fuel is enabled on the engine");
        store.set_hostcall_fuel(MAX_CALL_TRANSFER);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
    }
}

async fn call_component(
    store: &mut Store<RunData<WasiCtx>>,
    prepared: &Prepared,
    context: &RunContext,
) -> wasmtime::Result<Finished> {
    match prepared {
        Prepared::Job(pre) => {
            let job = pre.instantiate_async(&mut *store).await?;
            let result = job.call_run(&mut *store, context).await?;
            Ok(Finished::Job(result.map(|output| output.summary)))
        }
        Prepared::Command(pre) => {
            let command = pre.instantiate_async(&mut *store).await?;
            let status = command.wasi_cli_run().call_run(&mut *store).await?;
            Ok(Finished::Exit(if status.is_ok() { 0 } else { 1 }))
        }
        Prepared::Preview1(_) => unreachable!("core modules run through the p1 store"),
    }
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

fn run_context(
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

/// Names what ended the run. Limits win over the symptom they cause: a refused
/// `memory.grow` shows up as an `unreachable` trap (Rust) or an ordinary error (JS), and
/// only the limiter's record says it was the memory limit.
fn classify(
    result: wasmtime::Result<Finished>,
    evidence: &Evidence<'_>,
) -> (RunOutcome, Option<String>) {
    let memory = || RunOutcome::Limit(LimitKind::Memory(evidence.memory_limit));
    let exit = |code: i32| match code {
        0 => RunOutcome::Succeeded,
        _ if evidence.memory_refused => memory(),
        code => RunOutcome::GuestError { retryable: true, message: format!("exit code {code}") },
    };
    match result {
        Ok(Finished::Job(Ok(summary))) => (RunOutcome::Succeeded, Some(summary)),
        Ok(Finished::Job(Err(_))) if evidence.memory_refused => (memory(), None),
        Ok(Finished::Job(Err(JobError::Retryable(message)))) => {
            (RunOutcome::GuestError { retryable: true, message }, None)
        }
        Ok(Finished::Job(Err(JobError::Fatal(message)))) => {
            (RunOutcome::GuestError { retryable: false, message }, None)
        }
        Ok(Finished::Exit(code)) => (exit(code), None),
        Err(err) => {
            if let Some(I32Exit(code)) = err.downcast_ref::<I32Exit>() {
                return (exit(*code), None);
            }
            let outcome = match err.downcast_ref::<Trap>() {
                Some(Trap::Interrupt) => RunOutcome::Limit(LimitKind::Timeout(evidence.timeout)),
                Some(Trap::OutOfFuel) => {
                    RunOutcome::Limit(LimitKind::Fuel(evidence.fuel_budget.unwrap_or(u64::MAX)))
                }
                // Not a host failure: the guest's result or an import's arguments were
                // larger than wasmtime lifts in one call (a 300 MB error message, say).
                None if is_transfer_refused(&err) => {
                    RunOutcome::Limit(LimitKind::Transfer(ByteSize(MAX_CALL_TRANSFER as u64)))
                }
                _ if evidence.memory_refused => memory(),
                Some(trap) => RunOutcome::Trap { message: describe_trap(*trap, evidence.stderr) },
                // wasmtime-wasi answers `proc_exit(126..)` with a plain error, not an
                // `I32Exit`: the guest's doing, so a trap and not a host failure (found by
                // tests/fuzz_wasm.rs).
                None if format!("{err:#}").contains(INVALID_EXIT) => {
                    RunOutcome::Trap { message: format!("proc_exit: {INVALID_EXIT} [0..126)") }
                }
                None => RunOutcome::HostError { message: format!("{err:#}") },
            };
            (outcome, None)
        }
    }
}

/// wasmtime-wasi's message for `proc_exit` with a status of 126 or more.
const INVALID_EXIT: &str = "exit with invalid exit status outside of";

/// The trap in words: a guest language's uncaught exception in its own words, else the
/// panic text when the guest printed one.
fn describe_trap(trap: Trap, stderr: &str) -> String {
    if let Some(exception) = exception::uncaught(stderr) {
        return exception;
    }
    if let Some(panic) = panic_text(stderr) {
        return format!("panic: {panic}");
    }
    match trap {
        Trap::StackOverflow => "stack overflow (call stack exhausted)".to_string(),
        other => other.to_string(),
    }
}

/// Extracts `MESSAGE (at FILE:LINE:COL)` from Rust's `panicked at FILE:LINE:COL:\nMESSAGE`.
/// The message is cut short of the reason's cap, so that a capped reason still says where.
fn panic_text(stderr: &str) -> Option<String> {
    const MESSAGE_CAP: usize = REASON_CAP - 512;
    let start = stderr.rfind("panicked at ")? + "panicked at ".len();
    let rest = &stderr[start..];
    let (location, message) = rest.split_once(":\n").unwrap_or((rest.lines().next()?, ""));
    let message = cap_str(message.split("\nnote: ").next().unwrap_or("").trim(), MESSAGE_CAP);
    Some(if message.is_empty() {
        format!("at {location}")
    } else {
        format!("{message} (at {location})")
    })
}

/// Appends a hint to a failed run's reason where the host knows more than the guest said
/// (`hint.rs`), and returns it for the run's log.
fn failure_hint(outcome: &mut RunOutcome, stderr: &str, spec: &JobSpec) -> Option<String> {
    let (RunOutcome::GuestError { message, .. } | RunOutcome::Trap { message }) = outcome else {
        return None;
    };
    let granted: Vec<&str> = spec.capabilities.dirs.iter().map(|d| d.guest.as_str()).collect();
    let hint = ungranted_path(message, &granted).or_else(|| ungranted_path(stderr, &granted))?;
    message.push_str(&format!(" (hint: {hint})"));
    Some(hint)
}

fn failed_before_start(started_at: SystemTime, message: String) -> RunReport {
    RunReport {
        outcome: RunOutcome::HostError { message },
        started_at_ms: unix_ms(started_at),
        duration: Duration::ZERO,
        fuel_used: None,
        peak_memory: 0,
        summary: None,
        stdout: String::new(),
        stdout_dropped: 0,
        logs: Vec::new(),
        logs_dropped: 0,
        net: NetStats::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_text_is_extracted_from_rust_stderr() {
        let stderr = "\nthread '<unnamed>' panicked at src/lib.rs:42:9:\nprobe panicked: boom\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(panic_text(stderr).unwrap(), "probe panicked: boom (at src/lib.rs:42:9)");
        assert_eq!(panic_text("nothing here"), None);
    }

    #[test]
    fn a_long_panic_message_is_cut_before_its_location() {
        let stderr =
            format!("thread 'main' panicked at src/lib.rs:7:5:\n{}\n", "x".repeat(1 << 20));
        let mut outcome = RunOutcome::Trap { message: panic_text(&stderr).unwrap() };
        cap_reason(&mut outcome);
        let reason = outcome.reason();
        assert!(reason.len() <= REASON_CAP, "{} bytes", reason.len());
        assert!(reason.ends_with(" bytes truncated] (at src/lib.rs:7:5)"), "{reason}");
    }

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

    #[test]
    fn refused_memory_outranks_the_trap_it_causes() {
        let evidence = Evidence {
            timeout: Duration::from_secs(1),
            fuel_budget: None,
            memory_limit: ByteSize(1 << 20),
            memory_refused: true,
            stderr: "",
        };
        let err = wasmtime::Error::new(Trap::UnreachableCodeReached);
        let (outcome, _) = classify(Err(err), &evidence);
        assert_eq!(outcome, RunOutcome::Limit(LimitKind::Memory(ByteSize(1 << 20))));
    }
}
