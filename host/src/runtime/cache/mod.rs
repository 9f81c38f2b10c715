//! The on-disk cache of precompiled code (R1): compile a job once, map it on every start,
//! and never hand wasmtime a byte of it that this host did not seal.
//!
//! Entries are named by the SHA-256 of the wasm bytes and the engine's compatibility hash,
//! so a wasmtime upgrade or a changed engine setting never finds stale code. Loading native
//! code is trusting it: wasmtime's `deserialize` runs whatever is in the file, so a flipped
//! byte in `.text` was a SIGILL and one job's entry copied over another's name ran the
//! wrong job. So each entry carries a keyed digest over its bytes and the wasm's hash
//! (`seal`: what the key does and does not protect against), checked before wasmtime maps
//! the file; an entry that is missing its digest, fails it, or that wasmtime refuses is
//! reported ([`CacheStatus::Recompiled`], with a [`CacheRejection`]), recompiled and
//! replaced. The folder is created private, and an existing one that others can write is
//! refused (`folder`).
//!
//! Design decision: verify the mapping, then load the same file. The entry is opened once;
//! the digest is computed over an mmap of that open file (one pass over the page cache,
//! about 7 ms for a 40 MB entry) and wasmtime then maps the same inode (through
//! `/proc/self/fd` for components, the open `File` for modules), so the file checked is the
//! file loaded even if the name is swapped in between. `deserialize_file` stays the fast
//! path: plain `deserialize` of a 40 MB entry copies it and costs 30-40 ms.

mod folder;
mod seal;

use std::fs::File;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wasmtime::Engine;
use wasmtime::component::Component;

pub use folder::CacheError;
use seal::{EntryId, SealKey};

/// Whether code came from the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheStatus {
    /// Loaded precompiled code from disk, its digest checked.
    Hit,
    /// Compiled now and stored for next time.
    Miss,
    /// An entry was there but rejected ([`LoadInfo::rejected`] says why): compiled now and
    /// the entry replaced.
    Recompiled,
    /// No cache configured: compiled now.
    Off,
}

/// Why a cache entry was not loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheRejection {
    /// No digest beside it, or not in our format (an older sandcron, or a torn write).
    NoDigest,
    /// Its digest does not match its bytes, the wasm and this cache's key: corrupted,
    /// tampered with, or copied from another job or another cache.
    DigestMismatch,
    /// It could not be opened or read.
    Unreadable,
    /// Its digest matched but wasmtime refused it.
    Unloadable,
}

impl std::fmt::Display for CacheRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CacheRejection::NoDigest => "it has no digest",
            CacheRejection::DigestMismatch => {
                "its digest does not match (corrupted, tampered with, or another job's code)"
            }
            CacheRejection::Unreadable => "it could not be read",
            CacheRejection::Unloadable => "wasmtime could not load it",
        })
    }
}

/// How a job's code was obtained and how long it took.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct LoadInfo {
    /// Cache hit, miss, recompiled or off.
    pub cache: CacheStatus,
    /// Time to compile, or to verify and map.
    #[serde(serialize_with = "crate::job::serialize_ms", rename = "elapsed_ms")]
    pub elapsed: Duration,
    /// Why the cached entry was thrown away, when [`CacheStatus::Recompiled`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected: Option<CacheRejection>,
}

impl LoadInfo {
    /// Compiled with the cache off.
    pub(crate) fn uncached(elapsed: Duration) -> Self {
        LoadInfo { cache: CacheStatus::Off, elapsed, rejected: None }
    }
}

/// The cache folder, its key, and the engine fingerprint that every entry name includes.
pub(crate) struct CompileCache {
    dir: PathBuf,
    engine_tag: String,
    /// Seals what we store and checks what we load.
    key: SealKey,
    /// Off only in a bench's baseline (`RuntimeConfig::bench_without_caps`): an entry is
    /// loaded without reading or checking its digest.
    check_digest: bool,
}

/// An entry whose digest matched, still open: load from this file, not the name.
struct Verified {
    file: File,
}

impl CompileCache {
    /// Opens the cache folder for `engine`: creates it private, or refuses an existing one
    /// that others can write; reads or creates its key.
    pub(crate) fn open(
        dir: &Path,
        engine: &Engine,
        check_digest: bool,
    ) -> Result<Self, CacheError> {
        folder::open_private(dir)?;
        let key = SealKey::load_or_create(dir)?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_tag = format!("{:016x}", hasher.finish());
        Ok(CompileCache { dir: dir.to_path_buf(), engine_tag, key, check_digest })
    }

    /// The component for `bytes`, from the cache when a sealed entry is there.
    pub(crate) fn component(
        &self,
        engine: &Engine,
        bytes: &[u8],
        content_hash: &str,
    ) -> wasmtime::Result<(Component, LoadInfo)> {
        // SAFETY: the bytes were produced by this engine a moment ago.
        #[allow(unsafe_code)]
        let from_compiled = |compiled: &[u8]| unsafe { Component::deserialize(engine, compiled) };
        self.load_or_compile(
            "cwasm",
            content_hash,
            |entry| entry.component(engine),
            || engine.precompile_component(bytes),
            from_compiled,
        )
    }

    /// The core module for `bytes`, from the cache when a sealed entry is there.
    pub(crate) fn module(
        &self,
        engine: &Engine,
        bytes: &[u8],
        content_hash: &str,
    ) -> wasmtime::Result<(wasmtime::Module, LoadInfo)> {
        // SAFETY: the bytes were produced by this engine a moment ago.
        #[allow(unsafe_code)]
        let from_compiled =
            |compiled: &[u8]| unsafe { wasmtime::Module::deserialize(engine, compiled) };
        self.load_or_compile(
            "cwasm-module",
            content_hash,
            |entry| entry.module(engine),
            || engine.precompile_module(bytes),
            from_compiled,
        )
    }

    /// Loads the sealed entry of `kind` for `content_hash`, or compiles, stores and loads.
    fn load_or_compile<T>(
        &self,
        kind: &str,
        content_hash: &str,
        from_entry: impl FnOnce(Verified) -> wasmtime::Result<T>,
        compile: impl FnOnce() -> wasmtime::Result<Vec<u8>>,
        from_compiled: impl FnOnce(&[u8]) -> wasmtime::Result<T>,
    ) -> wasmtime::Result<(T, LoadInfo)> {
        let started = Instant::now();
        let id = EntryId { kind, content_hash, engine_tag: &self.engine_tag };
        let path = self.dir.join(format!("{content_hash}-{}.{kind}", self.engine_tag));
        let rejected = match self.verify(&path, &id) {
            Ok(None) => None,
            Ok(Some(entry)) => match from_entry(entry) {
                Ok(code) => {
                    let info = LoadInfo {
                        cache: CacheStatus::Hit,
                        elapsed: started.elapsed(),
                        rejected: None,
                    };
                    return Ok((code, info));
                }
                Err(err) => {
                    tracing::warn!(path = %path.display(), "wasmtime refused a sealed cache entry: {err:#}");
                    Some(CacheRejection::Unloadable)
                }
            },
            Err(rejection) => Some(rejection),
        };
        if let Some(rejection) = rejected {
            tracing::warn!(
                path = %path.display(),
                "cache entry rejected: {rejection}; recompiling and replacing it"
            );
        }
        let compiled = compile()?;
        self.store(&path, &id, &compiled);
        let code = from_compiled(&compiled)?;
        let cache = if rejected.is_some() { CacheStatus::Recompiled } else { CacheStatus::Miss };
        Ok((code, LoadInfo { cache, elapsed: started.elapsed(), rejected }))
    }

    /// The entry at `path`, open, if its digest matches: `Ok(None)` if there is none.
    fn verify(&self, path: &Path, id: &EntryId<'_>) -> Result<Option<Verified>, CacheRejection> {
        let unreadable = |err: std::io::Error| {
            tracing::warn!(path = %path.display(), "cannot read cache entry: {err}");
            CacheRejection::Unreadable
        };
        let mut options = std::fs::OpenOptions::new();
        options.read(true);
        // Entries are never symlinks; one planted there is not followed.
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
        let file = match options.open(path) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(unreadable(err)),
        };
        if !self.check_digest {
            return Ok(Some(Verified { file }));
        }
        let expected = seal::read_digest(&seal::digest_path(path))
            .map_err(unreadable)?
            .ok_or(CacheRejection::NoDigest)?;
        // SAFETY: the file is in our owner-only folder and opened read-only; sandcron never
        // writes an entry in place (new entries are renamed over old ones, which leaves this
        // open file as it is), so the mapping does not change while it is read.
        #[allow(unsafe_code)]
        let mapped =
            unsafe { memmap2::MmapOptions::new().populate().map(&file) }.map_err(unreadable)?;
        // `blake3::Hash` compares in constant time.
        if self.key.digest(id, &mapped) != expected {
            return Err(CacheRejection::DigestMismatch);
        }
        Ok(Some(Verified { file }))
    }

    /// Seals and writes an entry; a failure only costs a recompile next time.
    fn store(&self, path: &Path, id: &EntryId<'_>, compiled: &[u8]) {
        let digest = seal::format_digest(&self.key.digest(id, compiled));
        let digest_path = seal::digest_path(path);
        let tmp = |p: &Path| {
            let mut name = p.as_os_str().to_owned();
            name.push(format!(".tmp{}", std::process::id()));
            PathBuf::from(name)
        };
        let (code_tmp, digest_tmp) = (tmp(path), tmp(&digest_path));
        // Code first, then its digest: a reader between the two renames sees the new code
        // with the old digest, a mismatch, and recompiles (wasted work, never wrong code).
        let result = seal::write_private(&code_tmp, compiled)
            .and_then(|()| seal::write_private(&digest_tmp, digest.as_bytes()))
            .and_then(|()| std::fs::rename(&code_tmp, path))
            .and_then(|()| std::fs::rename(&digest_tmp, &digest_path));
        if let Err(err) = result {
            let _ = std::fs::remove_file(&code_tmp);
            let _ = std::fs::remove_file(&digest_tmp);
            tracing::warn!(path = %path.display(), "could not write compile cache entry: {err}");
        }
    }
}

impl Verified {
    #[allow(unsafe_code)]
    fn component(self, engine: &Engine) -> wasmtime::Result<Component> {
        // wasmtime 48 has no `Component::deserialize_open_file`; on Linux the open file's
        // /proc/self/fd link opens the very inode that was verified.
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let fd_path = PathBuf::from(format!("/proc/self/fd/{}", self.file.as_raw_fd()));
            if fd_path.exists() {
                // SAFETY: the file's bytes carry our digest (over the wasm's hash and this
                // engine's tag), so they are `Engine::precompile_component` output this
                // host wrote for this wasm and this engine.
                return unsafe { Component::deserialize_file(engine, &fd_path) };
            }
        }
        // Without /proc: copy the verified bytes (slower for large guests, equally sound).
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut &self.file, &mut bytes)?;
        // SAFETY: as above.
        unsafe { Component::deserialize(engine, &bytes) }
    }

    #[allow(unsafe_code)]
    fn module(self, engine: &Engine) -> wasmtime::Result<wasmtime::Module> {
        // SAFETY: as for components: sealed `Engine::precompile_module` output of ours.
        unsafe { wasmtime::Module::deserialize_open_file(engine, self.file) }
    }
}
