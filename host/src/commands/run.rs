//! `sandcron run FILE.wasm`: one run, now, with the manifest's limits overridden by flags.

use std::path::Path;
use std::sync::Arc;

use crate::cli::RunArgs;
use crate::config::{DirGrant, HostLimits, JobSpec, load_manifest};
use crate::job::{RunOutcome, RunReport, RunRequest};
use crate::runtime::{LoadedJob, Runtime};
use crate::store::{SqliteStore, StateStore};

use super::{Exit, build_runtime, default_store_path, job_name, runtime_exit, sibling};

/// Runs the command; returns the process exit code.
pub fn main(args: RunArgs) -> Exit {
    let spec = match job_spec(&args) {
        Ok(spec) => spec,
        Err(message) => {
            eprintln!("error: {message}");
            return Exit::InvalidInput;
        }
    };
    for warning in &spec.warnings {
        eprintln!("warning: {warning}");
    }
    let bytes = match crate::wasm_file::read(&args.wasm) {
        Ok(bytes) => bytes,
        Err(err) => {
            eprintln!("error: {err}");
            return Exit::InvalidInput;
        }
    };
    let runtime = match build_runtime(&args.runtime) {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: {err}");
            return runtime_exit(&err);
        }
    };
    let job = match runtime.load(&bytes) {
        Ok(job) => job,
        Err(err) => {
            eprintln!("error: {}: {err}", args.wasm.display());
            return Exit::InvalidInput;
        }
    };
    if let Some(warning) = job.network_warning(&spec) {
        eprintln!("warning: {warning}");
    }
    tracing::info!(job = %spec.name, cache = ?job.load.cache, elapsed = ?job.load.elapsed, "job loaded");
    let state_path = args.store.clone().unwrap_or_else(default_store_path);
    let state: Arc<dyn StateStore> = match SqliteStore::open(&state_path) {
        Ok(store) => Arc::new(store),
        Err(err) => {
            eprintln!("error: {err}");
            return Exit::HostError;
        }
    };
    let request = RunRequest::manual(&spec.name, args.payload.clone().map(String::into_bytes));
    let report = match execute(&runtime, &job, &spec, state, &request) {
        Ok(report) => report,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return Exit::HostError;
        }
    };
    let exit = exit_code(&report.outcome);
    if args.json {
        print_json(&args.wasm, &spec, &job, &report, exit);
    } else {
        print_human(&spec, &job, &report);
    }
    exit
}

fn execute(
    runtime: &Runtime,
    job: &LoadedJob,
    spec: &JobSpec,
    state: Arc<dyn StateStore>,
    request: &RunRequest,
) -> std::io::Result<RunReport> {
    let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    Ok(tokio.block_on(runtime.execute(job, spec, Some(state), request)))
}

/// The manifest (explicit, sibling, or none) with the command-line overrides applied.
fn job_spec(args: &RunArgs) -> Result<JobSpec, String> {
    let name = job_name(&args.wasm);
    let ceiling = HostLimits::default();
    let manifest =
        args.manifest.clone().or_else(|| Some(sibling(&args.wasm, "toml")).filter(|p| p.is_file()));
    let mut spec = match manifest {
        Some(path) => load_manifest(&path, &name, &ceiling).map_err(|e| e.to_string())?,
        None => JobSpec::unconfigured(&name),
    };
    if let Some(memory) = args.memory {
        spec.limits.memory = memory.min(ceiling.memory);
    }
    if let Some(fuel) = args.fuel {
        spec.limits.fuel = Some(fuel);
    }
    if let Some(timeout) = args.timeout {
        if timeout.0.is_zero() {
            return Err("--timeout must be longer than zero".into());
        }
        spec.limits.timeout = timeout.0.min(ceiling.timeout);
    }
    for text in &args.dirs {
        let grant = DirGrant::parse(text, Path::new(".")).map_err(|e| format!("--dir: {e}"))?;
        spec.capabilities.dirs.retain(|d| d.guest != grant.guest);
        spec.capabilities.dirs.push(grant);
    }
    for grant in &spec.capabilities.dirs {
        grant.check_exists()?;
    }
    spec.capabilities.env.extend(args.env.iter().cloned());
    spec.capabilities.allowed_hosts.extend(args.allow_hosts.iter().cloned());
    spec.config.extend(args.config.iter().cloned());
    Ok(spec)
}

fn exit_code(outcome: &RunOutcome) -> Exit {
    match outcome {
        RunOutcome::Succeeded => Exit::Success,
        RunOutcome::GuestError { .. } => Exit::GuestError,
        RunOutcome::Trap { .. } => Exit::Trap,
        RunOutcome::Limit(_) => Exit::Limit,
        RunOutcome::HostError { .. } => Exit::HostError,
    }
}

fn print_json(wasm: &Path, spec: &JobSpec, job: &LoadedJob, report: &RunReport, exit: Exit) {
    let mut value = serde_json::to_value(report).expect("reports serialize");
    let extra = serde_json::json!({
        "job": spec.name,
        "file": wasm.display().to_string(),
        "shape": job.shape,
        "version": job.content_hash,
        "load": job.load,
        "reason": report.outcome.reason(),
        "retryable": report.outcome.retryable(),
        "exit_code": exit as u8,
        "host_peak_rss": host_peak_rss(),
        "limits": {
            "memory": spec.limits.memory.0,
            "fuel": spec.limits.fuel,
            "timeout_ms": spec.limits.timeout.as_millis() as u64,
        },
    });
    if let (Some(object), serde_json::Value::Object(extra)) = (value.as_object_mut(), extra) {
        object.extend(extra);
    }
    println!("{value}");
}

fn describe_load(job: &LoadedJob) -> String {
    use crate::runtime::CacheStatus;
    match job.load.cache {
        CacheStatus::Hit => format!("loaded precompiled from cache in {:.1?}", job.load.elapsed),
        CacheStatus::Miss => format!("compiled in {:.1?} (cached for next time)", job.load.elapsed),
        CacheStatus::Recompiled => format!(
            "compiled in {:.1?}: the cached code was rejected ({}) and replaced",
            job.load.elapsed,
            job.load.rejected.map_or_else(String::new, |r| r.to_string()),
        ),
        CacheStatus::Off => format!("compiled in {:.1?} (cache off)", job.load.elapsed),
    }
}

/// This process's peak resident memory in bytes (Linux `VmHWM`), to show floods stay bounded.
fn host_peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn print_human(spec: &JobSpec, job: &LoadedJob, report: &RunReport) {
    let outcome = &report.outcome;
    let reason = outcome.reason();
    println!("job:       {} ({})", spec.name, job.shape.describe());
    println!("version:   {}", &job.content_hash[..16]);
    println!("code:      {}", describe_load(job));
    println!("outcome:   {}", outcome.kind());
    println!("reason:    {}", if reason.is_empty() { "-" } else { &reason });
    println!("duration:  {:.2?}", report.duration);
    if let Some(fuel) = report.fuel_used {
        println!("fuel used: {fuel}");
    }
    println!(
        "memory:    {} peak (limit {})",
        crate::config::ByteSize(report.peak_memory),
        spec.limits.memory
    );
    let net = &report.net.counts;
    if !net.is_empty() {
        println!(
            "network:   {} requests, {} refused, {} stopped by limits, {} in, {} out",
            net.requests,
            net.refused,
            net.limited,
            crate::config::ByteSize(net.bytes_in),
            crate::config::ByteSize(net.bytes_out),
        );
    }
    if let Some(summary) = &report.summary {
        println!("output:    {summary}");
    }
    if !report.stdout.is_empty() || report.stdout_dropped > 0 {
        println!("stdout:");
        for line in report.stdout.lines() {
            println!("  {line}");
        }
        if report.stdout_dropped > 0 {
            println!(
                "  … {} more bytes dropped (limits.output = {})",
                report.stdout_dropped, spec.limits.output
            );
        }
    }
    if !report.logs.is_empty() || report.logs_dropped > 0 {
        println!("logs:");
        for line in &report.logs {
            let mut fields: String = line.fields.iter().map(|(k, v)| format!(" {k}={v}")).collect();
            if line.fields_dropped > 0 {
                fields.push_str(&format!(" … {} more fields", line.fields_dropped));
            }
            println!("  {:<6} {}{fields}", line.level, line.message);
        }
        if report.logs_dropped > 0 {
            println!(
                "  … {} more lines/bytes dropped (limits.log = {})",
                report.logs_dropped, spec.limits.log
            );
        }
    }
}
