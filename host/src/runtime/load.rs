//! Turning `.wasm` bytes into a ready-to-instantiate job (R1, F2): shape detection,
//! compilation through the cache, linking, and the one `InstancePre` per version.
//!
//! The shape is read from the binary itself: a component exporting `run` is a `job`
//! world; a component exporting `wasi:cli/run` is a command; a core module exporting
//! `_start` is a WASI preview1 command. Anything else is rejected with what it does
//! export, so the operator can see which world it was built for.

use std::time::Instant;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::CommandPre;

use super::bindings::JobPre;
use super::cache::LoadInfo;
use super::engine::{RunData, Runtime};

/// The two job shapes (F1, F2), the command one in two encodings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobShape {
    /// A component implementing the `sandcron:job/job` world.
    Job,
    /// A component exporting `wasi:cli/run`.
    Command,
    /// A WASI preview1 core module with `_start`.
    Preview1Command,
}

impl JobShape {
    /// Human description for `validate`.
    pub fn describe(self) -> &'static str {
        match self {
            JobShape::Job => "component, world sandcron:job/job@0.1.0",
            JobShape::Command => "component, WASI command (wasi:cli/run)",
            JobShape::Preview1Command => "core module, WASI preview1 command (_start)",
        }
    }
}

/// Why bytes could not become a job.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Not WebAssembly at all.
    #[error("not a WebAssembly file (no \\0asm header)")]
    NotWasm,
    /// WebAssembly, but a version or layer this host does not know.
    #[error("unsupported WebAssembly binary version {0:02x?}")]
    UnknownVersion([u8; 4]),
    /// The binary is malformed or could not be compiled.
    #[error("invalid {what}: {reason}")]
    Compile {
        /// "component" or "core module".
        what: &'static str,
        /// wasmtime's explanation (truncated input, bad section, ...).
        reason: String,
    },
    /// A component of another world.
    #[error(
        "component does not implement sandcron:job/job (no `run` export) nor wasi:cli/run; \
         it exports: {exports}"
    )]
    WrongWorld {
        /// What it does export.
        exports: String,
    },
    /// The `run` export exists but has the wrong type, or another mismatch.
    #[error("component does not match the sandcron:job/job world: {0}")]
    BadExport(String),
    /// A core module that is not a command.
    #[error(
        "core module is not a WASI command: it has no `_start` export (exports: {exports}); \
         build it as a command, or as a component of the sandcron:job world"
    )]
    NotCommand {
        /// What it does export.
        exports: String,
    },
    /// A core module with a component's exports: a job built for `wasm32-wasip1`.
    #[error(
        "core module exports the sandcron:job world's functions ({exports}) but is not a \
         component: it was built for wasm32-wasip1; build it with \
         `cargo build --target wasm32-wasip2` (or make a component of it with \
         `wasm-tools component new` and the preview1 adapter)"
    )]
    Preview1Job {
        /// The job-world exports it has.
        exports: String,
    },
    /// A core module with `_start` that breaks the WASI command ABI in a way wasmtime only
    /// notices once it runs: a `_start` taking or returning values, or WASI imports with no
    /// `memory` export for them to read and write. The guest's doing, so refused here with
    /// the reason rather than ending each run as a host error (found by tests/fuzz_wasm.rs).
    #[error("core module is not a valid WASI command: {0}")]
    BadCommand(String),
    /// An import the host does not provide.
    #[error("cannot link: {0}")]
    Link(String),
}

pub(crate) enum Prepared {
    Job(JobPre<RunData<WasiCtx>>),
    Command(CommandPre<RunData<WasiCtx>>),
    Preview1(wasmtime::InstancePre<RunData<WasiP1Ctx>>),
}

/// A compiled, linked job version, ready to instantiate any number of times.
pub struct LoadedJob {
    /// Which shape it is.
    pub shape: JobShape,
    /// SHA-256 of the wasm bytes, hex.
    pub content_hash: String,
    /// Cache status and compile/load time.
    pub load: LoadInfo,
    /// Import names, sorted.
    pub imports: Vec<String>,
    /// Export names, sorted.
    pub exports: Vec<String>,
    pub(crate) prepared: Prepared,
}

impl LoadedJob {
    /// Why `spec`'s `allowed_hosts` gives this code nothing, when that is so: a preview1
    /// module has no `wasi:sockets` and no `wasi:http` to call.
    pub fn network_warning(&self, spec: &crate::config::JobSpec) -> Option<String> {
        (self.shape == JobShape::Preview1Command && !spec.capabilities.allowed_hosts.is_empty())
            .then(|| {
                "allowed_hosts has no effect: a WASI preview1 module has no sockets or HTTP \
                 (build a component, e.g. --target wasm32-wasip2, to reach the network)"
                    .to_string()
            })
    }
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn content_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn join(names: &[String]) -> String {
    if names.is_empty() { "nothing".to_string() } else { names.join(", ") }
}

impl Runtime {
    /// Compiles (or loads from cache) and links `bytes` as a job.
    pub fn load(&self, bytes: &[u8]) -> Result<LoadedJob, LoadError> {
        if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
            return Err(LoadError::NotWasm);
        }
        let version: [u8; 4] = bytes[4..8].try_into().expect("slice of length 4");
        let hash = content_hash(bytes);
        match version {
            [0x0d, 0x00, 0x01, 0x00] => self.load_component(bytes, hash),
            [0x01, 0x00, 0x00, 0x00] => self.load_module(bytes, hash),
            other => Err(LoadError::UnknownVersion(other)),
        }
    }

    fn load_component(&self, bytes: &[u8], hash: String) -> Result<LoadedJob, LoadError> {
        let compile_err =
            |e: wasmtime::Error| LoadError::Compile { what: "component", reason: format!("{e:#}") };
        let (component, load) = match &self.cache {
            Some(cache) => cache.component(&self.engine, bytes, &hash).map_err(compile_err)?,
            None => {
                let started = Instant::now();
                let component = Component::new(&self.engine, bytes).map_err(compile_err)?;
                (component, LoadInfo::uncached(started.elapsed()))
            }
        };
        let ty = component.component_type();
        let mut imports: Vec<String> =
            ty.imports(&self.engine).map(|(n, _)| n.to_string()).collect();
        let mut exports: Vec<String> =
            ty.exports(&self.engine).map(|(n, _)| n.to_string()).collect();
        imports.sort();
        exports.sort();

        let link_err = |e: wasmtime::Error| LoadError::Link(format!("{e:#}"));
        let (shape, prepared) = if exports.iter().any(|e| e == "run") {
            let pre = self.components.instantiate_pre(&component).map_err(link_err)?;
            let pre = JobPre::new(pre).map_err(|e| LoadError::BadExport(format!("{e:#}")))?;
            (JobShape::Job, Prepared::Job(pre))
        } else if exports.iter().any(|e| e.starts_with("wasi:cli/run@0.2")) {
            let pre = self.components.instantiate_pre(&component).map_err(link_err)?;
            let pre = CommandPre::new(pre).map_err(|e| LoadError::BadExport(format!("{e:#}")))?;
            (JobShape::Command, Prepared::Command(pre))
        } else {
            return Err(LoadError::WrongWorld { exports: join(&exports) });
        };
        Ok(LoadedJob { shape, content_hash: hash, load, imports, exports, prepared })
    }

    fn load_module(&self, bytes: &[u8], hash: String) -> Result<LoadedJob, LoadError> {
        let compile_err = |e: wasmtime::Error| LoadError::Compile {
            what: "core module",
            reason: format!("{e:#}"),
        };
        let (module, load) = match &self.cache {
            Some(cache) => cache.module(&self.engine, bytes, &hash).map_err(compile_err)?,
            None => {
                let started = Instant::now();
                let module = wasmtime::Module::new(&self.engine, bytes).map_err(compile_err)?;
                (module, LoadInfo::uncached(started.elapsed()))
            }
        };
        let mut imports: Vec<String> =
            module.imports().map(|i| format!("{}::{}", i.module(), i.name())).collect();
        let mut exports: Vec<String> = module.exports().map(|e| e.name().to_string()).collect();
        imports.sort();
        exports.sort();
        let is_start =
            |e: &wasmtime::ExportType<'_>| e.name() == "_start" && e.ty().func().is_some();
        if !module.exports().any(|e| is_start(&e)) {
            // wit-bindgen's core exports of the job world: `run`, its post-return and the
            // canonical ABI allocator, which only a component's adapter would use.
            let job_world: Vec<String> = exports
                .iter()
                .filter(|e| ["run", "cabi_post_run", "cabi_realloc"].contains(&e.as_str()))
                .cloned()
                .collect();
            if job_world.iter().any(|e| e == "run") && job_world.len() > 1 {
                return Err(LoadError::Preview1Job { exports: join(&job_world) });
            }
            return Err(LoadError::NotCommand { exports: join(&exports) });
        }
        check_command_abi(&module)?;
        let pre =
            self.modules.instantiate_pre(&module).map_err(|e| LoadError::Link(format!("{e:#}")))?;
        Ok(LoadedJob {
            shape: JobShape::Preview1Command,
            content_hash: hash,
            load,
            imports,
            exports,
            prepared: Prepared::Preview1(pre),
        })
    }
}

/// The WASI preview1 command ABI beyond "exports `_start`": wasmtime checks neither part
/// before the run, and each used to end every run as a host error.
fn check_command_abi(module: &wasmtime::Module) -> Result<(), LoadError> {
    let start = module.get_export("_start").and_then(|ty| ty.func().cloned());
    if let Some(ty) = start.filter(|ty| ty.params().len() + ty.results().len() > 0) {
        return Err(LoadError::BadCommand(format!(
            "its `_start` has type {ty}; a command's `_start` takes and returns nothing"
        )));
    }
    // wasmtime-wasi passes every preview1 call's pointers through the `memory` export and
    // fails the call without one ("missing required memory export"), `proc_exit` included.
    let wasi = module.imports().find(|i| i.module() == "wasi_snapshot_preview1");
    let has_memory = module.get_export("memory").is_some_and(|ty| ty.memory().is_some());
    if let Some(import) = wasi.filter(|_| !has_memory) {
        return Err(LoadError::BadCommand(format!(
            "it imports WASI functions ({}::{}) but exports no memory named `memory`, which \
             WASI reads its arguments from",
            import.module(),
            import.name()
        )));
    }
    Ok(())
}
