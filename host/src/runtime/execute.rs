//! One run of a loaded job: a fresh sandboxed `Store`, the call, and the report.
//!
//! The sandbox (what the run may reach) is built by `sandbox`, the outcome named by
//! `classify`; this file drives the run between them. Three stops bound a run (R2): the
//! memory limiter, optional fuel, and the wall-clock deadline, enforced twice — by the
//! epoch callback for guests burning CPU, and by a tokio timeout for guests parked inside
//! a host call. The callback yields to tokio on every tick, so a busy guest never holds a
//! worker thread for more than one tick. What the guest hands back is bounded too (R4,
//! issue 14): stdout and stderr by their capture caps, logs by the log buffer's, the
//! summary by the output limit and a failure's reason by `truncate`, after secrets are
//! masked.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use wasmtime::component::ResourceTable;
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi_http::WasiHttpCtx;

use super::bindings::RunContext;
use super::capture::CapturePipe;
use super::classify::{Evidence, Finished, classify, failure_hint};
use super::engine::{RunData, Runtime};
use super::exception;
use super::host::{HostCtx, LogBuffer, LogLine};
use super::limits::{MAX_CALL_TRANSFER, MemoryLimiter};
use super::load::{LoadedJob, Prepared};
use super::mask::SecretMask;
use super::net::{NetHooks, NetStats, RunNet};
use super::sandbox::{run_context, wasi_builder};
use super::truncate::{cap_reason, cap_text};
use crate::config::{ByteSize, JobSpec};
use crate::job::{LimitKind, RunOutcome, RunReport, RunRequest, unix_ms};
use crate::store::StateStore;

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
        // Uncapped only in benches/per_run.rs's baseline (`RuntimeConfig::bench_without_caps`).
        let cap = |limit: ByteSize| if self.caps { limit.as_usize() } else { usize::MAX };
        let stdout = CapturePipe::new(cap(limits.output));
        let stderr = CapturePipe::new(cap(limits.log));
        let net = Arc::new(RunNet::new(&spec.capabilities.allowed_hosts, &limits.net));
        let mut builder = match wasi_builder(job, spec, request, (&stdout, &stderr), &net) {
            Ok(builder) => builder,
            Err(message) => return failed_before_start(started_at, message),
        };

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
            logs: if self.caps {
                LogBuffer::new(limits.log.as_usize())
            } else {
                LogBuffer::uncapped()
            },
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
        if self.caps {
            report.summary = report.summary.map(|s| cap_text(s, limits.output.as_usize()));
            cap_reason(&mut report.outcome);
        }
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
