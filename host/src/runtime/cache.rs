//! The on-disk cache of precompiled code (R1): compile a job once, mmap it on every start.
//!
//! Entries are keyed by the SHA-256 of the wasm bytes and by the engine's compatibility
//! hash, so a wasmtime upgrade or a changed engine setting never loads stale code. Only
//! files this host wrote are deserialized: entries are written to a temporary name in a
//! folder created with owner-only permissions and renamed into place, and nothing else
//! writes there. `deserialize_file` maps the file instead of reading it (a 40 MB Python
//! component loads in milliseconds instead of tens).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wasmtime::Engine;
use wasmtime::component::Component;

/// Whether code came from the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheStatus {
    /// Loaded precompiled code from disk.
    Hit,
    /// Compiled now and stored for next time.
    Miss,
    /// No cache configured: compiled now.
    Off,
}

/// How a job's code was obtained and how long it took.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct LoadInfo {
    /// Cache hit, miss or off.
    pub cache: CacheStatus,
    /// Time to compile or deserialize.
    #[serde(serialize_with = "crate::job::serialize_ms", rename = "elapsed_ms")]
    pub elapsed: Duration,
}

/// The cache folder plus the engine fingerprint that every key includes.
pub(crate) struct CompileCache {
    dir: PathBuf,
    engine_tag: String,
}

impl CompileCache {
    /// Opens (creating) the cache folder for `engine`.
    pub(crate) fn open(dir: &Path, engine: &Engine) -> std::io::Result<Self> {
        create_private_dir(dir)?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(CompileCache { dir: dir.to_path_buf(), engine_tag: format!("{:016x}", hasher.finish()) })
    }

    fn entry(&self, content_hash: &str, kind: &str) -> PathBuf {
        self.dir.join(format!("{content_hash}-{}.{kind}", self.engine_tag))
    }

    /// The component for `bytes`, from the cache when present.
    pub(crate) fn component(
        &self,
        engine: &Engine,
        bytes: &[u8],
        content_hash: &str,
    ) -> wasmtime::Result<(Component, LoadInfo)> {
        let started = Instant::now();
        let path = self.entry(content_hash, "cwasm");
        if path.is_file() {
            // SAFETY: `path` lives in our private cache folder and was written by
            // `store` below from `Engine::precompile_component` output; the engine
            // compatibility hash in its name guarantees it matches this engine.
            #[allow(unsafe_code)]
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => {
                    let info = LoadInfo { cache: CacheStatus::Hit, elapsed: started.elapsed() };
                    return Ok((component, info));
                }
                Err(err) => {
                    tracing::warn!(path = %path.display(), "discarding unusable cache entry: {err}");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let compiled = engine.precompile_component(bytes)?;
        store(&path, &compiled);
        // SAFETY: the bytes were produced by this engine a moment ago.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(engine, &compiled)? };
        Ok((component, LoadInfo { cache: CacheStatus::Miss, elapsed: started.elapsed() }))
    }

    /// The core module for `bytes`, from the cache when present.
    pub(crate) fn module(
        &self,
        engine: &Engine,
        bytes: &[u8],
        content_hash: &str,
    ) -> wasmtime::Result<(wasmtime::Module, LoadInfo)> {
        let started = Instant::now();
        let path = self.entry(content_hash, "cwasm-module");
        if path.is_file() {
            // SAFETY: as for components above: our own file, for this engine.
            #[allow(unsafe_code)]
            if let Ok(module) = unsafe { wasmtime::Module::deserialize_file(engine, &path) } {
                return Ok((
                    module,
                    LoadInfo { cache: CacheStatus::Hit, elapsed: started.elapsed() },
                ));
            }
            let _ = std::fs::remove_file(&path);
        }
        let compiled = engine.precompile_module(bytes)?;
        store(&path, &compiled);
        // SAFETY: produced by this engine a moment ago.
        #[allow(unsafe_code)]
        let module = unsafe { wasmtime::Module::deserialize(engine, &compiled)? };
        Ok((module, LoadInfo { cache: CacheStatus::Miss, elapsed: started.elapsed() }))
    }
}

/// Writes an entry atomically; a failure only costs a recompile next time.
fn store(path: &Path, compiled: &[u8]) {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let result = std::fs::write(&tmp, compiled).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(err) = result {
        let _ = std::fs::remove_file(&tmp);
        tracing::warn!(path = %path.display(), "could not write compile cache entry: {err}");
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}
