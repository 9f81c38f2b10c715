//! Reading a settled job's files and handing them to the [`JobLoader`]: one [`Task`] in,
//! one [`TaskResult`] out, with no access to the watcher's state.
//!
//! A task owns everything it needs (paths, the fingerprint it was started for, the versions
//! already decided), so it can run on a worker thread while the scan loop carries on, and
//! the loop needs no lock: it gets the result back as a message. After reading, the files
//! are stat'ed again; if anything moved while they were read, the bytes are thrown away
//! ([`Outcome::Raced`]) and the next scan starts the debounce over.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::JobLoader;
use super::scan::{Fingerprint, TOML, WASM};
use crate::wasm_file::{self, WasmFileError};

/// Why the watcher itself rejected a job, before or around the loader.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Problem {
    /// A manifest alone is not a job.
    #[error("{name}.toml has no {name}.wasm beside it")]
    OrphanManifest {
        /// The job name.
        name: String,
    },
    /// The file name would not be a safe job name.
    #[error("{file}: a job name may contain only ASCII letters, digits, '-', '_' and '.'")]
    BadName {
        /// The offending file's name.
        file: String,
    },
    /// The manifest exists but could not be read (permissions, I/O error).
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file's path.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// The wasm could not be read, or is over the size ceiling.
    #[error(transparent)]
    Wasm(#[from] WasmFileError),
    /// A manifest must be text.
    #[error("{}:{line}: the manifest is not valid UTF-8", path.display())]
    NotUtf8 {
        /// The manifest's path.
        path: PathBuf,
        /// 1-based line of the first invalid byte.
        line: usize,
    },
    /// A loader bug must not wedge the job: it becomes this job's error.
    #[error("loading {name} panicked: {message}")]
    LoaderPanicked {
        /// The job name.
        name: String,
        /// The panic payload, when it was a string.
        message: String,
    },
}

/// Read (and maybe load) one job whose fingerprint held still.
#[derive(Clone, Debug)]
pub(crate) struct Task {
    pub(crate) dir: Arc<Path>,
    pub(crate) name: String,
    /// What the scan saw; the files must still look like this after they are read.
    pub(crate) fingerprint: Fingerprint,
    /// Versions already decided for this name (the one in service, the last one reported
    /// invalid): reading one of these again is not worth a load.
    pub(crate) known: Vec<String>,
}

/// What became of a [`Task`].
pub(crate) struct TaskResult<J> {
    pub(crate) name: String,
    /// The task's fingerprint: the state this result describes.
    pub(crate) fingerprint: Fingerprint,
    pub(crate) outcome: Outcome<J>,
}

/// The decision, from the files' contents.
pub(crate) enum Outcome<J> {
    /// The files changed while being read; they now look like this.
    Raced(Fingerprint),
    /// A file could not be read; keyed by its message so it is reported once.
    Unreadable(String),
    /// Only a manifest: its version (hash of the manifest alone).
    Orphan(String),
    /// A version in [`Task::known`]: nothing was loaded.
    Known(String),
    /// The loader ran (or the manifest was not text) for this new version.
    Loaded(String, Result<J, String>),
}

impl Task {
    fn path(&self, extension: &str) -> PathBuf {
        self.dir.join(format!("{}{extension}", self.name))
    }

    /// Reads, verifies, hashes and, for a new version, calls `loader`. Blocking.
    pub(crate) fn run<L: JobLoader>(self, loader: &L) -> TaskResult<L::Job> {
        let outcome = self.decide(loader);
        TaskResult { name: self.name, fingerprint: self.fingerprint, outcome }
    }

    fn decide<L: JobLoader>(&self, loader: &L) -> Outcome<L::Job> {
        // The wasm under the size ceiling, checked before reading (a sparse 2 GiB file
        // would cost 2 GiB on every touch); its header is the loader's to judge.
        let wasm = if self.fingerprint.wasm.is_some() {
            wasm_file::read_capped(&self.path(WASM)).map(Some).map_err(Problem::from)
        } else {
            Ok(None)
        };
        let toml = if self.fingerprint.toml.is_some() {
            let path = self.path(TOML);
            read_manifest(&path).map(Some).map_err(|source| Problem::Read { path, source })
        } else {
            Ok(None)
        };
        let now = Fingerprint::read(&self.dir, &self.name);
        if now != self.fingerprint {
            return Outcome::Raced(now);
        }
        let (wasm, toml) = match (wasm, toml) {
            (Ok(wasm), Ok(toml)) => (wasm, toml),
            (Err(problem), _) | (_, Err(problem)) => {
                return Outcome::Unreadable(problem.to_string());
            }
        };
        let version = version(wasm.as_deref().unwrap_or_default(), toml.as_deref());
        let Some(wasm) = wasm else { return Outcome::Orphan(version) };
        if self.known.contains(&version) {
            return Outcome::Known(version);
        }
        let toml_path = self.path(TOML);
        let manifest = match toml.as_deref().map(std::str::from_utf8).transpose() {
            Ok(text) => text,
            Err(err) => {
                let bytes = toml.as_deref().unwrap_or_default();
                let line = bytes[..err.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
                let problem = Problem::NotUtf8 { path: toml_path, line };
                return Outcome::Loaded(version, Err(problem.to_string()));
            }
        };
        let loaded = catch_unwind(AssertUnwindSafe(|| {
            loader.load(
                &self.name,
                &version,
                &wasm,
                manifest.map(|text| (toml_path.as_path(), text)),
            )
        }))
        .unwrap_or_else(|payload| {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_string());
            Err(Problem::LoaderPanicked { name: self.name.clone(), message }.to_string())
        });
        Outcome::Loaded(version, loaded)
    }
}

/// A manifest's bytes; a FIFO or device is refused without waiting on it.
fn read_manifest(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let (mut file, meta) = wasm_file::open_regular(path).map_err(|problem| match problem {
        wasm_file::WasmFileProblem::Read(err) => err,
        other => std::io::Error::other(other.to_string()),
    })?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The job version: hex SHA-256 of the wasm bytes followed by the manifest bytes.
pub(crate) fn version(wasm: &[u8], manifest: Option<&[u8]>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(wasm);
    hasher.update(manifest.unwrap_or_default());
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watcher::test_util::{FakeLoader, TempDir};

    fn task(dir: &TempDir, name: &str, known: Vec<String>) -> Task {
        let fingerprint = Fingerprint::read(dir.path(), name);
        Task { dir: dir.path().into(), name: name.to_string(), fingerprint, known }
    }

    #[test]
    fn version_is_sha256_of_wasm_then_manifest() {
        // sha256("abc"), split across the two files.
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(version(b"ab", Some(b"c")), abc);
        assert_eq!(version(b"abc", None), abc);
    }

    #[test]
    fn a_new_version_is_loaded_with_its_manifest_path() {
        let dir = TempDir::new("load-new");
        dir.write("a.wasm", b"WASM-1");
        dir.write("a.toml", b"every = \"1m\"\n");
        let loader = FakeLoader::default();
        let result = task(&dir, "a", vec![]).run(&loader);
        let Outcome::Loaded(v, Ok(job)) = result.outcome else { panic!("not loaded") };
        assert_eq!(v, version(b"WASM-1", Some(b"every = \"1m\"\n")));
        assert_eq!(job.wasm, b"WASM-1");
        assert_eq!(job.manifest_path, Some(dir.path().join("a.toml")));
    }

    #[test]
    fn a_known_version_is_not_loaded_again() {
        let dir = TempDir::new("load-known");
        dir.write("a.wasm", b"WASM-1");
        let loader = FakeLoader::default();
        let known = vec![version(b"WASM-1", None)];
        assert!(matches!(task(&dir, "a", known).run(&loader).outcome, Outcome::Known(_)));
        assert_eq!(loader.calls(), 0);
    }

    #[test]
    fn files_that_moved_since_the_scan_are_not_loaded() {
        let dir = TempDir::new("load-raced");
        dir.write("a.wasm", b"WASM-1");
        let stale = task(&dir, "a", vec![]);
        dir.write("a.wasm", b"WASM-1 and more");
        let loader = FakeLoader::default();
        assert!(matches!(stale.run(&loader).outcome, Outcome::Raced(_)));
        assert_eq!(loader.calls(), 0);
    }

    #[test]
    fn a_wasm_over_the_size_ceiling_is_not_read() {
        let dir = TempDir::new("load-huge");
        let file = std::fs::File::create(dir.path().join("a.wasm")).unwrap();
        file.set_len(wasm_file::MAX_WASM_SIZE + 1).unwrap();
        let loader = FakeLoader::default();
        let Outcome::Unreadable(error) = task(&dir, "a", vec![]).run(&loader).outcome else {
            panic!("read");
        };
        let path = dir.path().join("a.wasm");
        assert!(error.starts_with(&format!("{}: 268435457 bytes is more", path.display())));
        assert_eq!(loader.calls(), 0);
    }

    #[test]
    fn a_manifest_alone_is_an_orphan() {
        let dir = TempDir::new("load-orphan");
        dir.write("a.toml", b"x = 1");
        let outcome = task(&dir, "a", vec![]).run(&FakeLoader::default()).outcome;
        assert!(matches!(outcome, Outcome::Orphan(v) if v == version(b"", Some(b"x = 1"))));
    }

    #[test]
    fn a_non_utf8_manifest_names_file_and_line() {
        let dir = TempDir::new("load-utf8");
        dir.write("a.wasm", b"WASM");
        dir.write("a.toml", b"a = 1\nb = \"\xff\"\n");
        let outcome = task(&dir, "a", vec![]).run(&FakeLoader::default()).outcome;
        let Outcome::Loaded(_, Err(error)) = outcome else { panic!("accepted") };
        assert_eq!(
            error,
            format!("{}:2: the manifest is not valid UTF-8", dir.path().join("a.toml").display())
        );
    }

    #[test]
    fn a_panicking_loader_becomes_the_jobs_error() {
        let dir = TempDir::new("load-panic");
        dir.write("a.wasm", b"WASM-panic");
        let outcome = task(&dir, "a", vec![]).run(&FakeLoader::default()).outcome;
        let Outcome::Loaded(_, Err(error)) = outcome else { panic!("accepted") };
        assert_eq!(error, "loading a panicked: fake loader told to panic");
    }
}
