//! The watched jobs folder (R5, M7): a directory of `NAME.wasm` + optional `NAME.toml`
//! pairs becomes a stream of validated [`JobChange`]s.
//!
//! The watcher knows nothing of manifests or wasmtime: the daemon hands it a [`JobLoader`]
//! (the real manifest parser + compiler) and receives `Added` / `Updated` / `Removed` /
//! `Invalid`, and `Compiling` for a slow load that goes on in the background. A job's
//! version is the hex SHA-256 of its wasm bytes followed by its manifest bytes; an
//! unchanged version produces no event, however often the files are touched.
//!
//! # Layout
//! - `scan.rs`: listing the folder and fingerprinting each job's files (no reads).
//! - `state.rs`: [`WatchState`], the debounce and the decisions; pure, clock passed in.
//! - `load.rs`: reading a settled job, checking it did not move while read, hashing, and
//!   calling the loader (panics included) on a new version.
//! - `handle.rs`: [`Watcher`], starting and stopping a watch.
//! - `scan_loop.rs`: the scan thread, its `notify` wake-ups and the load workers.
//! - [`scan_once`] here: the same steps, synchronously, for tests and one-shot tools.
//!
//! # Rules
//! - Debounce + content hash: files are read only after their (len, mtime, and on Unix
//!   inode and ctime) held still across scans at least 300 ms apart, and the bytes are
//!   kept only if the files still look the same after reading. So a half-written file is
//!   never loaded unless its writer pauses for longer than that; writing to a temporary name
//!   and renaming it in is the safe way to deploy.
//! - An invalid new version is reported (`Invalid`, once per distinct version) and the
//!   version in service stays; fixing it gives `Updated`. Reverting to the version in
//!   service gives `Updated` with that same version, so the host can clear the error.
//! - `Removed` is sent for every name the host has heard of (including one only ever
//!   reported `Invalid`) once its files are gone; it means "forget this name".
//! - Hidden files (leading `.`) are ignored; an unsafe name is `Invalid`; a `NAME.toml`
//!   alone is `Invalid` ("NAME.toml has no NAME.wasm beside it").
//! - If the folder becomes unreadable after start, the current jobs stay as they are (an
//!   unmounted disk must not unschedule everything) and scanning resumes when it is back.
//!
//! # Design decision: a std thread, not a tokio task
//! The loop stats files, reads up to tens of megabytes and calls a loader that may compile
//! for seconds: all blocking work that would stall a tokio worker. A plain thread also lets
//! [`Watcher::spawn`] be called outside a runtime, and its `recv_timeout` on one std channel
//! waits for "next scan tick, `notify` event, or a finished load" at once. Loads run on
//! short-lived worker threads (a few at a time), so a slow compile delays only its own
//! job's event; past two seconds it is announced (`Compiling`) and no longer holds back the
//! initial scan or the loads queued behind it. The only async surface is the event [`Receiver`](tokio::sync::mpsc::Receiver).

mod handle;
mod load;
mod scan;
mod scan_loop;
mod state;

#[cfg(test)]
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

pub use self::handle::Watcher;
#[cfg(test)]
use self::state::WatchState;

/// What the host does with a candidate job; implemented by the daemon with the real
/// manifest parser + wasmtime.
pub trait JobLoader: Send + Sync + 'static {
    /// The loaded, ready-to-schedule job.
    type Job: Send + Sync + 'static;

    /// Validate + compile. `version` is the job's content hash (the one reported in the
    /// change), so the job can carry it. `manifest` is `None` when there is no `NAME.toml`,
    /// else its path and text. `Err` is a human message that already names the file and line where it can
    /// (e.g. "jobs/x.toml:3:1: unknown field `memroy`"). May block for seconds; it is called
    /// on a worker thread, with no lock held, never twice at once for the same name.
    fn load(
        &self,
        name: &str,
        version: &str,
        wasm: &[u8],
        manifest: Option<(&Path, &str)>,
    ) -> Result<Self::Job, String>;
}

/// One change to the set of jobs in the folder.
pub enum JobChange<J> {
    /// A new job loaded.
    Added {
        /// The job name (file stem).
        name: String,
        /// Hex SHA-256 of the wasm bytes followed by the manifest bytes.
        version: String,
        /// The loaded job.
        job: Arc<J>,
    },
    /// A new version of a loaded job, to swap in (runs in flight finish on the old one).
    Updated {
        /// The job name.
        name: String,
        /// The new version (the same one again when an invalid edit was reverted).
        version: String,
        /// The loaded job.
        job: Arc<J>,
    },
    /// The job's files are gone: stop scheduling it and forget any error shown for it.
    Removed {
        /// The job name.
        name: String,
    },
    /// The files as they stand cannot be loaded; the previously loaded version (if any)
    /// stays in service.
    Invalid {
        /// The job name (for an unsafe name, the file stem as written).
        name: String,
        /// Why, naming the file and line where known.
        error: String,
    },
    /// A load has been running for a while (a cold compile) and goes on in the background;
    /// its `Added`, `Updated` or `Invalid` follows when it ends. Not waited for by the
    /// initial scan.
    Compiling {
        /// The job name.
        name: String,
        /// When the load started.
        since: Instant,
    },
    /// A load announced as `Compiling` ended with nothing to report (its files changed
    /// while it ran, or it came to a version already decided).
    CompileAbandoned {
        /// The job name.
        name: String,
    },
}

impl<J> JobChange<J> {
    /// The job this change is about.
    #[cfg(test)]
    pub fn name(&self) -> &str {
        match self {
            JobChange::Added { name, .. }
            | JobChange::Updated { name, .. }
            | JobChange::Removed { name }
            | JobChange::Invalid { name, .. }
            | JobChange::Compiling { name, .. }
            | JobChange::CompileAbandoned { name } => name,
        }
    }
}

impl<J> std::fmt::Debug for JobChange<J> {
    /// Names and versions only: the job itself need not be `Debug`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobChange::Added { name, version, .. } => write!(f, "Added({name} {version})"),
            JobChange::Updated { name, version, .. } => write!(f, "Updated({name} {version})"),
            JobChange::Removed { name } => write!(f, "Removed({name})"),
            JobChange::Invalid { name, error } => write!(f, "Invalid({name}: {error})"),
            JobChange::Compiling { name, .. } => write!(f, "Compiling({name})"),
            JobChange::CompileAbandoned { name } => write!(f, "CompileAbandoned({name})"),
        }
    }
}

/// One synchronous scan of `dir` at `now`: lists the folder, and loads (on this thread)
/// every job whose files have held still since an earlier call at least 300 ms before.
/// Keep `state` across calls; the first call only starts the debounce clock. Fails only if
/// the folder cannot be listed. The tests' way in; `Watcher` runs the same steps on its thread.
#[cfg(test)]
pub fn scan_once<L: JobLoader>(
    dir: &Path,
    loader: &L,
    state: &mut WatchState<L::Job>,
    now: Instant,
) -> io::Result<Vec<JobChange<L::Job>>> {
    let shared: Arc<Path> = dir.into();
    let observation = state.observe(&shared, scan::list_dir(dir)?, now);
    let mut changes = observation.changes;
    for task in observation.tasks {
        changes.extend(state.complete(task.run(loader), now));
    }
    Ok(changes)
}

#[cfg(test)]
pub(crate) mod test_util;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use test_util::{FakeLoader, TempDir};

    /// Drives `scan_once` with a made-up clock: one scan now, one past the settle time.
    struct Harness {
        dir: TempDir,
        loader: FakeLoader,
        state: WatchState<test_util::FakeJob>,
        now: Instant,
    }

    impl Harness {
        fn new(tag: &str) -> Self {
            let now = Instant::now();
            Harness {
                dir: TempDir::new(tag),
                loader: FakeLoader::default(),
                state: WatchState::new(),
                now,
            }
        }
        fn settle(&mut self) -> Vec<JobChange<test_util::FakeJob>> {
            let mut changes = self.scan();
            self.now += Duration::from_millis(350);
            changes.extend(self.scan());
            changes
        }
        fn scan(&mut self) -> Vec<JobChange<test_util::FakeJob>> {
            scan_once(self.dir.path(), &self.loader, &mut self.state, self.now).unwrap()
        }
    }

    fn version_of(change: &JobChange<test_util::FakeJob>) -> &str {
        match change {
            JobChange::Added { version, .. } | JobChange::Updated { version, .. } => version,
            other => panic!("expected a loaded job, got {other:?}"),
        }
    }

    #[test]
    fn first_scan_waits_then_adds_valid_and_reports_invalid() {
        let mut h = Harness::new("once-initial");
        h.dir.write("good.wasm", b"WASM good");
        h.dir.write("good.toml", b"every = \"1m\"\n");
        h.dir.write("broken.wasm", b"\0asm but not ours");
        h.dir.write("README.md", b"hi");
        assert!(h.scan().is_empty(), "nothing is read before the files held still");
        h.now += Duration::from_millis(350);
        let changes = h.scan();
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert!(matches!(&changes[0], JobChange::Invalid { name, error }
            if name == "broken" && error.contains("broken.wasm: bad magic")));
        assert!(matches!(&changes[1], JobChange::Added { name, version, job }
            if name == "good" && *version == load::version(b"WASM good", Some(b"every = \"1m\"\n"))
                && job.wasm == b"WASM good"));
        assert!(h.settle().is_empty(), "nothing changed, nothing said");
        assert_eq!(h.loader.calls(), 2);
    }

    #[test]
    fn replacing_updates_touching_is_silent_deleting_removes() {
        let mut h = Harness::new("once-lifecycle");
        h.dir.write("a.wasm", b"WASM one");
        let added = h.settle();
        let v1 = version_of(&added[0]).to_string();

        std::thread::sleep(Duration::from_millis(10));
        h.dir.write("a.wasm", b"WASM two");
        let updated = h.settle();
        assert!(matches!(updated.as_slice(), [JobChange::Updated { .. }]), "{updated:?}");
        assert_ne!(version_of(&updated[0]), v1);

        let file = std::fs::File::options().write(true).open(h.dir.path().join("a.wasm")).unwrap();
        file.set_modified(std::time::SystemTime::now() + Duration::from_secs(5)).unwrap();
        assert!(h.settle().is_empty(), "same bytes, new mtime: no event");
        assert_eq!(h.loader.calls(), 2, "and no reload");

        std::fs::remove_file(h.dir.path().join("a.wasm")).unwrap();
        let removed = h.settle();
        assert!(matches!(removed.as_slice(), [JobChange::Removed { name }] if name == "a"));
        assert!(h.settle().is_empty());
    }

    #[test]
    fn broken_manifest_is_invalid_others_unaffected_then_fixed() {
        let mut h = Harness::new("once-manifest");
        h.dir.write("a.wasm", b"WASM a");
        h.dir.write("a.toml", b"every = \"1m\"\n");
        h.dir.write("b.wasm", b"WASM b");
        assert_eq!(h.settle().len(), 2);

        h.dir.write("a.toml", b"every = \"1m\"\n[limits]\nmemroy = 1\n");
        let invalid = h.settle();
        let path = h.dir.path().join("a.toml");
        let expected = format!("{}:3:1: unknown field `memroy`", path.display());
        assert!(
            matches!(invalid.as_slice(), [JobChange::Invalid { name, error }]
            if name == "a" && *error == expected),
            "{invalid:?}"
        );
        // Touched but still broken: not reported again.
        std::thread::sleep(Duration::from_millis(10));
        h.dir.write("a.toml", b"every = \"1m\"\n[limits]\nmemroy = 1\n");
        assert!(h.settle().is_empty());

        h.dir.write("a.toml", b"every = \"1m\"\n[limits]\nmemory = 1\n");
        let fixed = h.settle();
        assert!(matches!(fixed.as_slice(), [JobChange::Updated { name, job, .. }]
            if name == "a" && job.manifest.as_deref() == Some("every = \"1m\"\n[limits]\nmemory = 1\n")));
    }

    #[test]
    fn manifest_without_wasm_is_invalid_once() {
        let mut h = Harness::new("once-orphan");
        h.dir.write("lonely.toml", b"every = \"1m\"\n");
        let changes = h.settle();
        assert!(matches!(changes.as_slice(), [JobChange::Invalid { name, error }]
            if name == "lonely" && error == "lonely.toml has no lonely.wasm beside it"));
        std::thread::sleep(Duration::from_millis(10));
        h.dir.write("lonely.toml", b"every = \"1m\"\n");
        assert!(h.settle().is_empty());
        assert!(h.settle().is_empty());
        assert_eq!(h.loader.calls(), 0);

        h.dir.write("lonely.wasm", b"WASM at last");
        assert!(matches!(h.settle().as_slice(), [JobChange::Added { .. }]));
    }

    #[test]
    fn the_same_invalid_bytes_are_reported_once_per_version() {
        let mut h = Harness::new("once-invalid");
        h.dir.write("a.wasm", b"nope 1");
        assert!(matches!(h.settle().as_slice(), [JobChange::Invalid { .. }]));
        std::thread::sleep(Duration::from_millis(10));
        h.dir.write("a.wasm", b"nope 1");
        assert!(h.settle().is_empty());
        h.dir.write("a.wasm", b"nope 22");
        assert!(matches!(h.settle().as_slice(), [JobChange::Invalid { .. }]));
        h.dir.write("a.wasm", b"WASM fixed");
        assert!(matches!(h.settle().as_slice(), [JobChange::Added { .. }]), "never loaded before");
        assert_eq!(h.loader.calls(), 3);
    }

    #[test]
    fn a_missing_folder_is_an_error_naming_nothing_loaded() {
        let mut h = Harness::new("once-missing");
        let gone = h.dir.path().join("gone");
        assert!(scan_once(&gone, &h.loader, &mut h.state, h.now).is_err());
    }
}
