//! Test helpers for the watcher: scratch folders and a fake loader that "compiles" by
//! checking a magic prefix and records every call, and helpers to drive a [`Watcher`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{self, error::TryRecvError};

use super::{JobChange, JobLoader, Watcher};

/// A scratch folder removed on drop (the host crate has no `tempfile` dependency).
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("sandcron-watch-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    pub(crate) fn write(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.0.join(name), bytes).unwrap();
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the fake loader produces: the inputs it was given.
#[derive(Debug)]
pub(crate) struct FakeJob {
    pub(crate) wasm: Vec<u8>,
    pub(crate) manifest: Option<String>,
    pub(crate) manifest_path: Option<PathBuf>,
}

/// Accepts wasm starting with `WASM`; `WASM-panic` panics, `WASM slow` takes 800 ms,
/// `WASM compiling` 3.5 s (past `COMPILING_AFTER`: a cold compile); a
/// manifest line containing `memroy` is an unknown field, reported with file and line.
#[derive(Default)]
pub(crate) struct FakeLoader {
    calls: Mutex<Vec<(String, Vec<u8>)>>,
}

impl FakeLoader {
    pub(crate) fn calls(&self) -> usize {
        self.calls.lock().unwrap().len()
    }

    /// Every (name, wasm bytes) the loader was called with, in order.
    pub(crate) fn call_log(&self) -> Vec<(String, Vec<u8>)> {
        self.calls.lock().unwrap().clone()
    }
}

impl JobLoader for FakeLoader {
    type Job = FakeJob;

    fn load(
        &self,
        name: &str,
        _version: &str,
        wasm: &[u8],
        manifest: Option<(&Path, &str)>,
    ) -> Result<FakeJob, String> {
        self.calls.lock().unwrap().push((name.to_string(), wasm.to_vec()));
        if wasm == b"WASM-panic" {
            panic!("fake loader told to panic");
        }
        if wasm.starts_with(b"WASM slow") {
            std::thread::sleep(Duration::from_millis(800));
        }
        if wasm.starts_with(b"WASM compiling") {
            std::thread::sleep(Duration::from_millis(3500));
        }
        if !wasm.starts_with(b"WASM") {
            return Err(format!("{name}.wasm: bad magic"));
        }
        if let Some((path, text)) = manifest
            && let Some(line) = text.lines().position(|line| line.contains("memroy"))
        {
            return Err(format!("{}:{}:1: unknown field `memroy`", path.display(), line + 1));
        }
        Ok(FakeJob {
            wasm: wasm.to_vec(),
            manifest: manifest.map(|(_, text)| text.to_string()),
            manifest_path: manifest.map(|(path, _)| path.to_path_buf()),
        })
    }
}

/// The next change on `rx` within `within`, or `None` (also when the channel closed).
pub(crate) fn next(
    rx: &mut mpsc::Receiver<JobChange<FakeJob>>,
    within: Duration,
) -> Option<JobChange<FakeJob>> {
    let deadline = Instant::now() + within;
    loop {
        match rx.try_recv() {
            Ok(change) => return Some(change),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) if Instant::now() >= deadline => return None,
            Err(TryRecvError::Empty) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// A [`Watcher`] on `dir` with a fresh [`FakeLoader`].
pub(crate) fn spawn(
    dir: &TempDir,
) -> (Watcher, mpsc::Receiver<JobChange<FakeJob>>, Arc<FakeLoader>) {
    let loader = Arc::new(FakeLoader::default());
    let (watcher, rx) = Watcher::spawn(dir.path().to_path_buf(), loader.clone()).unwrap();
    (watcher, rx, loader)
}
