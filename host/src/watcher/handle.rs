//! [`Watcher`], the handle on a running folder watcher: starting it ([`Watcher::spawn`])
//! and stopping it (drop).
//!
//! The handle holds no state of the watch itself, only a way to tell the loop thread
//! (`scan_loop.rs`) to stop; so it is small, `Send + Sync`, and not generic over the job
//! type. Stopping does not join the thread: the dropping thread may be a tokio worker, and
//! the loop may be in the middle of handing a change to a full channel.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{mpsc, watch};

use super::scan_loop;
use super::{JobChange, JobLoader};

/// Room in the event channel; a full channel pauses the watcher (back-pressure), it never
/// drops a change.
const EVENT_BUFFER: usize = 256;

/// A running folder watcher. Dropping it stops the scan loop, which closes the event
/// channel; a load already running finishes on its worker thread and is discarded.
pub struct Watcher {
    /// Set on drop; the loop checks it after every wake-up and while waiting on a full
    /// event channel.
    stop: Arc<AtomicBool>,
    /// Becomes true once every job present at start has been reported.
    initial_scan: watch::Receiver<bool>,
    /// Wakes the loop so it sees `stop` at once. A closure, so `Watcher` is not generic
    /// over the job type carried by the loop's channel.
    wake: Box<dyn Fn() + Send + Sync>,
}

impl Watcher {
    /// Starts watching `dir`. The first events report every job present (`Added` or
    /// `Invalid`) once its files have held still for the settle time. Fails if `dir`
    /// cannot be read now (missing, not a directory, no permission) or the thread cannot
    /// be started.
    pub fn spawn<L: JobLoader>(
        dir: PathBuf,
        loader: Arc<L>,
    ) -> io::Result<(Watcher, mpsc::Receiver<JobChange<L::Job>>)> {
        Self::spawn_with(dir, loader, true)
    }

    /// [`spawn`](Self::spawn), with `notify` off when `use_notify` is false (tests of the
    /// polling fallback).
    pub(super) fn spawn_with<L: JobLoader>(
        dir: PathBuf,
        loader: Arc<L>,
        use_notify: bool,
    ) -> io::Result<(Watcher, mpsc::Receiver<JobChange<L::Job>>)> {
        std::fs::read_dir(&dir).map_err(|error| {
            io::Error::new(error.kind(), format!("jobs folder {}: {error}", dir.display()))
        })?;
        let (events, receiver) = mpsc::channel(EVENT_BUFFER);
        let stop = Arc::new(AtomicBool::new(false));
        let (initial_tx, initial_scan) = watch::channel(false);
        let wake = scan_loop::start(&dir, loader, use_notify, events, stop.clone(), initial_tx)?;
        Ok((Watcher { stop, initial_scan, wake }, receiver))
    }

    /// Becomes true once every job in the folder at start has been reported (added or
    /// invalid): each of those changes is in the event channel before the flag flips.
    pub fn initial_scan(&self) -> watch::Receiver<bool> {
        self.initial_scan.clone()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        (self.wake)();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watcher::test_util::{FakeLoader, TempDir, next, spawn};
    use std::io::Write;
    use std::thread;
    use std::time::{Duration, Instant};
    use tokio::sync::mpsc::error::TryRecvError;

    #[test]
    fn initial_scan_adds_valid_jobs_and_reports_invalid_ones() {
        let dir = TempDir::new("worker-initial");
        dir.write("good.wasm", b"WASM good");
        dir.write("bad.wasm", b"garbage");
        dir.write("notes.txt", b"not a job");
        let (_watcher, mut rx, _) = spawn(&dir);
        let mut changes: Vec<_> =
            (0..2).filter_map(|_| next(&mut rx, Duration::from_secs(3))).collect();
        changes.sort_by(|a, b| a.name().cmp(b.name()));
        assert!(
            matches!(&changes[..], [JobChange::Invalid { name: bad, error }, JobChange::Added { name: good, .. }]
            if bad == "bad" && error == "bad.wasm: bad magic" && good == "good"),
            "{changes:?}"
        );
        assert!(next(&mut rx, Duration::from_millis(600)).is_none(), "nothing more to say");
    }

    #[test]
    fn a_slowly_written_file_is_loaded_once_with_its_final_content() {
        let dir = TempDir::new("worker-slow-write");
        let (_watcher, mut rx, loader) = spawn(&dir);
        let mut file = std::fs::File::create(dir.path().join("big.wasm")).unwrap();
        let mut expected = b"WASM ".to_vec();
        file.write_all(b"WASM ").unwrap();
        // ~1 s of writing, pausing 150 ms (half the settle time) between chunks.
        for chunk in 0..7u8 {
            thread::sleep(Duration::from_millis(150));
            let bytes = vec![b'a' + chunk; 4096];
            file.write_all(&bytes).unwrap();
            expected.extend_from_slice(&bytes);
        }
        drop(file);
        let added = next(&mut rx, Duration::from_secs(3));
        assert!(
            matches!(&added, Some(JobChange::Added { job, .. }) if job.wasm == expected),
            "{added:?}"
        );
        assert!(next(&mut rx, Duration::from_millis(500)).is_none());
        assert_eq!(loader.call_log(), [("big".to_string(), expected)], "never a prefix");
    }

    #[test]
    fn a_change_is_picked_up_within_a_second() {
        let dir = TempDir::new("worker-latency");
        dir.write("a.wasm", b"WASM one");
        let (_watcher, mut rx, _) = spawn(&dir);
        assert!(matches!(next(&mut rx, Duration::from_secs(3)), Some(JobChange::Added { .. })));
        // Deployed the safe way: written aside, renamed in.
        dir.write(".a.wasm.tmp", b"WASM two");
        let start = Instant::now();
        std::fs::rename(dir.path().join(".a.wasm.tmp"), dir.path().join("a.wasm")).unwrap();
        let updated = next(&mut rx, Duration::from_secs(3));
        let took = start.elapsed();
        assert!(
            matches!(&updated, Some(JobChange::Updated { job, .. }) if job.wasm == b"WASM two")
        );
        assert!(took < Duration::from_millis(1200), "took {took:?}");

        std::fs::remove_file(dir.path().join("a.wasm")).unwrap();
        assert!(matches!(next(&mut rx, Duration::from_secs(3)), Some(JobChange::Removed { .. })));
    }

    #[test]
    fn dropping_the_watcher_closes_the_channel() {
        let dir = TempDir::new("worker-drop");
        let (watcher, mut rx, _) = spawn(&dir);
        drop(watcher);
        let deadline = Instant::now() + Duration::from_secs(2);
        while !matches!(rx.try_recv(), Err(TryRecvError::Disconnected)) {
            assert!(Instant::now() < deadline, "loop still running");
            thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn spawn_fails_clearly_on_a_missing_folder() {
        let dir = TempDir::new("worker-missing");
        let missing = dir.path().join("jobs");
        let error = Watcher::spawn(missing.clone(), Arc::new(FakeLoader::default())).err().unwrap();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        assert!(
            error.to_string().starts_with(&format!("jobs folder {}: ", missing.display())),
            "{error}"
        );
    }
}
