//! `sandcron validate FILE.wasm|FILE.toml`: what a job is and everything wrong with it.
//!
//! Checks both halves of the job when both exist (the given file and its sibling with the
//! other extension), reports every problem rather than stopping at the first, and never
//! runs guest code.

use std::path::{Path, PathBuf};

use crate::cli::ValidateArgs;
use crate::config::{HostLimits, JobSpec, load_manifest};
use crate::runtime::Runtime;

use super::{Exit, build_runtime, job_name, runtime_exit, sibling};

/// Validates every file given; returns `InvalidInput` if any problem was found.
pub fn main(args: ValidateArgs) -> Exit {
    let runtime = match build_runtime(&args.runtime) {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: {err}");
            return runtime_exit(&err);
        }
    };
    let mut problems = 0;
    for file in &args.files {
        let (wasm, manifest) = pair(file);
        if let Some(wasm) = wasm {
            problems += check_wasm(&runtime, &wasm);
        }
        if let Some(manifest) = manifest {
            problems += check_manifest(&manifest);
        }
    }
    if problems == 0 {
        Exit::Success
    } else {
        eprintln!("{problems} problem(s) found");
        Exit::InvalidInput
    }
}

/// The wasm and manifest to check for `file`: the file itself plus its sibling if present.
fn pair(file: &Path) -> (Option<PathBuf>, Option<PathBuf>) {
    let is_toml = file.extension().is_some_and(|e| e == "toml");
    if is_toml {
        let wasm = sibling(file, "wasm");
        (wasm.is_file().then_some(wasm), Some(file.to_path_buf()))
    } else {
        let manifest = sibling(file, "toml");
        (Some(file.to_path_buf()), manifest.is_file().then_some(manifest))
    }
}

fn check_wasm(runtime: &Runtime, path: &Path) -> usize {
    let bytes = match crate::wasm_file::read(path) {
        Ok(bytes) => bytes,
        Err(err) => {
            println!("{}: error: {}", path.display(), err.problem);
            return 1;
        }
    };
    match runtime.load(&bytes) {
        Ok(job) => {
            println!("{}: ok", path.display());
            println!("  shape:   {}", job.shape.describe());
            println!("  version: {}", job.content_hash);
            println!("  size:    {} bytes", bytes.len());
            println!("  imports: {}", list(&job.imports));
            println!("  exports: {}", list(&job.exports));
            0
        }
        Err(err) => {
            println!("{}: error: {err}", path.display());
            1
        }
    }
}

fn check_manifest(path: &Path) -> usize {
    let spec = match load_manifest(path, &job_name(path), &HostLimits::default()) {
        Ok(spec) => spec,
        Err(err) => {
            println!("{err}");
            return 1;
        }
    };
    let mut problems = 0;
    for grant in &spec.capabilities.dirs {
        if let Err(message) = grant.check_exists() {
            println!("{}: error: capabilities.dirs: {message}", path.display());
            problems += 1;
        }
    }
    if problems == 0 {
        println!("{}: ok", path.display());
    }
    describe(&spec);
    problems
}

fn describe(spec: &JobSpec) {
    let trigger = spec
        .timing
        .schedule
        .as_ref()
        .map_or_else(|| "none (runs only when triggered)".to_string(), |s| s.describe());
    println!("  trigger: {trigger}");
    let limits = &spec.limits;
    println!(
        "  limits:  memory {}, timeout {}, fuel {}, output {}, log {}",
        limits.memory,
        humantime::format_duration(limits.timeout),
        limits.fuel.map_or_else(|| "unmetered".to_string(), |f| f.to_string()),
        limits.output,
        limits.log,
    );
    let dirs: Vec<String> = spec
        .capabilities
        .dirs
        .iter()
        .map(|d| {
            format!(
                "{} -> {} ({})",
                d.host.display(),
                d.guest,
                if d.writable { "rw" } else { "ro" }
            )
        })
        .collect();
    println!("  dirs:    {}", list(&dirs));
    let env: Vec<&String> = spec.capabilities.env.keys().collect();
    println!("  env:     {}", if env.is_empty() { "none".into() } else { format!("{env:?}") });
    let hosts: Vec<String> =
        spec.capabilities.allowed_hosts.iter().map(|h| h.text.clone()).collect();
    println!(
        "  network: {}",
        if hosts.is_empty() {
            "none (no requests, connections or name lookups)".into()
        } else {
            hosts.join(", ")
        }
    );
    let net = &spec.limits.net;
    if !hosts.is_empty() {
        println!(
            "           per run: {} requests, {} at once, {} in, {} out, connect {}, first byte {}",
            net.requests,
            net.concurrent_requests,
            net.bytes_in,
            net.bytes_out,
            humantime::format_duration(net.connect_timeout),
            humantime::format_duration(net.first_byte_timeout),
        );
    }
    // Names and sources only: a secret's value is never printed.
    let secrets: Vec<String> =
        spec.secrets.iter().map(|s| format!("{} (from {})", s.name, s.source)).collect();
    println!("  secrets: {}", list(&secrets));
    println!("  notify:  {}", spec.notify.describe());
    println!("  retention: {}", spec.retention.describe());
    for warning in &spec.warnings {
        println!("  warning: {warning}");
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() { "none".to_string() } else { items.join(", ") }
}
