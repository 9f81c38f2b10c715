//! The scan loop: one thread owning the [`WatchState`], woken by a tick, by `notify`, or by
//! a finished load, and the short-lived worker threads that run the loads.
//!
//! Everything mutable (the state, the load queue) is owned by the loop thread; workers and
//! `notify` only send it messages, so there is no lock anywhere, and none can be held
//! across a slow load. The loop scans every [`POLL`], and sooner after a `notify` event
//! (bursts are folded into one scan per [`MIN_GAP`]) or when a pending file is due to have
//! settled. If `notify` cannot start (inotify watches exhausted, an exotic filesystem) the
//! tick alone still finds every change within [`POLL`] + the settle time.
//!
//! A load still running after [`COMPILING_AFTER`] (a cold compile: ~12 s for a Python
//! component) is announced as [`JobChange::Compiling`] and goes on in the background: it
//! gives its worker place up to the next queued load (up to `max_running` such loads at
//! once), and the initial scan counts as reported without it, so the other jobs are
//! scheduled and the host is ready while it compiles (issue 15).

use std::collections::{HashMap, VecDeque};
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self as std_mpsc, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::watch;

use super::load::{Task, TaskResult};
use super::scan::list_dir;
use super::state::WatchState;
use super::{JobChange, JobLoader};

/// The scan tick: with the 300 ms settle time, a change is loaded within ~0.3-0.55 s plus
/// the load itself.
const POLL: Duration = Duration::from_millis(250);
/// The least time between two scans triggered by `notify`: a 20 MB copy fires thousands of
/// events, and one scan per burst sees the same thing.
const MIN_GAP: Duration = Duration::from_millis(50);
/// A load running longer than this is a slow compile: announced, and waited for by nobody.
/// A small job compiles cold in well under a second, or ~1.3 s beside a Python compile on
/// a busy 2-core machine; a Python component takes ~12 s.
pub(crate) const COMPILING_AFTER: Duration = Duration::from_secs(2);

/// The loop's inbox.
enum Msg<J> {
    /// Something happened in the folder (or the watcher is being dropped).
    Wake,
    /// A worker finished a load (boxed: the message is mostly a bare `Wake`).
    Done(Box<TaskResult<J>>),
}

/// Starts the loop thread on `dir`, sending changes to `events` until `stop` is set (and
/// the loop woken) or the receiver is dropped. Returns the wake-up call.
pub(super) fn start<L: JobLoader>(
    dir: &Path,
    loader: Arc<L>,
    use_notify: bool,
    events: mpsc::Sender<JobChange<L::Job>>,
    stop: Arc<AtomicBool>,
    initial_scan: watch::Sender<bool>,
) -> io::Result<Box<dyn Fn() + Send + Sync>> {
    let (tx, rx) = std_mpsc::channel();
    let scan_loop = ScanLoop {
        dir: dir.into(),
        notify: use_notify.then(|| start_notify(dir, tx.clone())).flatten(),
        loader,
        tx: tx.clone(),
        rx,
        events,
        stop,
        initial_scan,
        state: WatchState::new(),
        queue: VecDeque::new(),
        running: 0,
        loads: HashMap::new(),
        background: 0,
        max_running: thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 4),
    };
    thread::Builder::new().name("sandcron-watcher".into()).spawn(move || scan_loop.run())?;
    Ok(Box::new(move || {
        let _ = tx.send(Msg::Wake);
    }))
}

/// Starts `notify` on `dir`; `None` (polling only) if it cannot.
fn start_notify<J: Send + 'static>(
    dir: &Path,
    tx: std_mpsc::Sender<Msg<J>>,
) -> Option<RecommendedWatcher> {
    let handler = move |event: notify::Result<notify::Event>| {
        // Our own reads open the files: only events that can mean new content wake us.
        let relevant = match event {
            Ok(event) => match event.kind {
                EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
                EventKind::Access(_) => false,
                _ => true,
            },
            Err(_) => true,
        };
        if relevant {
            let _ = tx.send(Msg::Wake);
        }
    };
    let started = notify::recommended_watcher(handler).and_then(|mut watcher| {
        watcher.watch(dir, RecursiveMode::NonRecursive)?;
        Ok(watcher)
    });
    match started {
        Ok(watcher) => Some(watcher),
        Err(error) => {
            tracing::warn!(dir = %dir.display(), %error, "file notifications unavailable; polling only");
            None
        }
    }
}

/// The loop thread's state.
struct ScanLoop<L: JobLoader> {
    dir: Arc<Path>,
    loader: Arc<L>,
    /// Kept only to re-watch the folder after it was deleted and recreated; dropped with
    /// the loop, which stops notifications.
    notify: Option<RecommendedWatcher>,
    /// Cloned into each worker to send its result back.
    tx: std_mpsc::Sender<Msg<L::Job>>,
    rx: std_mpsc::Receiver<Msg<L::Job>>,
    events: mpsc::Sender<JobChange<L::Job>>,
    stop: Arc<AtomicBool>,
    /// Set once every job present at start has been reported (its change is in `events`).
    initial_scan: watch::Sender<bool>,
    state: WatchState<L::Job>,
    /// Loads waiting for a worker: a burst of big jobs (startup) must not start dozens of
    /// compilations at once, each holding its module in memory.
    queue: VecDeque<Task>,
    /// Loads holding a worker place (background ones do not).
    running: usize,
    /// Every load in progress: when it started, and whether it went to the background.
    loads: HashMap<String, Load>,
    /// Loads announced as compiling in the background (at most `max_running`).
    background: usize,
    max_running: usize,
}

/// A load in progress.
struct Load {
    started: Instant,
    /// Announced as [`JobChange::Compiling`]; no longer holds a worker place.
    background: bool,
}

impl<L: JobLoader> ScanLoop<L> {
    fn run(mut self) {
        let mut next_scan = Instant::now();
        let mut last_scan = next_scan;
        let mut folder_failing = false;
        let mut reported_initial = false;
        loop {
            if self.stop.load(Ordering::SeqCst) || self.events.is_closed() {
                return;
            }
            let now = Instant::now();
            if now >= next_scan {
                last_scan = now;
                next_scan = now + POLL;
                match list_dir(&self.dir) {
                    Ok(listing) => {
                        if std::mem::take(&mut folder_failing) {
                            tracing::info!(dir = %self.dir.display(), "jobs folder readable again");
                            self.rewatch();
                        }
                        let observed = self.state.observe(&self.dir, listing, now);
                        next_scan = observed.next_due.map_or(next_scan, |due| due.min(next_scan));
                        if !self.deliver(observed.changes) {
                            return;
                        }
                        observed.tasks.into_iter().for_each(|task| self.queue.push_back(task));
                        self.start_queued();
                    }
                    Err(error) if !folder_failing => {
                        folder_failing = true;
                        tracing::warn!(dir = %self.dir.display(), %error,
                            "cannot read the jobs folder; keeping the current jobs");
                    }
                    Err(_) => {}
                }
            }
            if !self.background_slow_loads() {
                return;
            }
            let compiling = |name: &str| self.loads.get(name).is_some_and(|load| load.background);
            if !reported_initial && self.state.is_idle_but(compiling) {
                reported_initial = true;
                self.initial_scan.send_replace(true);
                tracing::debug!(dir = %self.dir.display(), "jobs folder: initial scan reported");
            }
            let wake = self.next_slow_check().map_or(next_scan, |slow| slow.min(next_scan));
            match self.rx.recv_timeout(wake.saturating_duration_since(Instant::now())) {
                Ok(Msg::Wake) => next_scan = next_scan.min(last_scan + MIN_GAP),
                Ok(Msg::Done(result)) => {
                    let name = result.name.clone();
                    let change = self.state.complete(*result, Instant::now());
                    match self.loads.remove(&name) {
                        Some(Load { background: true, .. }) => {
                            self.background -= 1;
                            // Announced, but nothing to say now: the host stops showing it.
                            if change.is_none()
                                && !self.deliver([JobChange::CompileAbandoned { name }])
                            {
                                return;
                            }
                        }
                        _ => self.running -= 1,
                    }
                    if !self.deliver(change) {
                        return;
                    }
                    self.start_queued();
                }
                Err(RecvTimeoutError::Timeout) => {}
                // Unreachable while `self.tx` lives; stop rather than spin.
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Sends changes in order; false when the watcher is stopping or nobody listens.
    fn deliver(&self, changes: impl IntoIterator<Item = JobChange<L::Job>>) -> bool {
        for mut change in changes {
            loop {
                match self.events.try_send(change) {
                    Ok(()) => break,
                    Err(TrySendError::Closed(_)) => return false,
                    Err(TrySendError::Full(back)) => {
                        if self.stop.load(Ordering::SeqCst) {
                            return false;
                        }
                        change = back;
                        thread::sleep(Duration::from_millis(10));
                    }
                }
            }
        }
        true
    }

    /// Starts queued loads on worker threads, up to `max_running` at once.
    fn start_queued(&mut self) {
        while self.running < self.max_running {
            let Some(task) = self.queue.pop_front() else { return };
            self.running += 1;
            let load = Load { started: Instant::now(), background: false };
            self.loads.insert(task.name.clone(), load);
            let (loader, tx, spare) = (self.loader.clone(), self.tx.clone(), task.clone());
            let spawned = thread::Builder::new()
                .name(format!("sandcron-load-{}", task.name))
                .spawn(move || {
                    let _ = tx.send(Msg::Done(Box::new(task.run(&*loader))));
                });
            if let Err(error) = spawned {
                // Out of threads: load here rather than lose the task (the entry would stay
                // busy forever).
                tracing::warn!(%error, "cannot start a load thread; loading on the watcher thread");
                let _ = self.tx.send(Msg::Done(Box::new(spare.run(&*self.loader))));
            }
        }
    }

    /// When the next load in a worker place turns slow, if any does and the background has
    /// room for it (when it has none, a background load ending wakes the loop anyway).
    fn next_slow_check(&self) -> Option<Instant> {
        if self.background >= self.max_running {
            return None;
        }
        let waiting = self.loads.values().filter(|load| !load.background);
        waiting.map(|load| load.started + COMPILING_AFTER).min()
    }

    /// Loads running longer than [`COMPILING_AFTER`] go to the background while there is
    /// room: announced as compiling, their worker place handed to the next queued load.
    /// False when nobody listens any more.
    fn background_slow_loads(&mut self) -> bool {
        let now = Instant::now();
        let mut slow: Vec<(String, Instant)> = self
            .loads
            .iter()
            .filter(|(_, load)| !load.background && now >= load.started + COMPILING_AFTER)
            .map(|(name, load)| (name.clone(), load.started))
            .collect();
        slow.sort_by_key(|(_, started)| *started);
        for (name, since) in slow {
            if self.background >= self.max_running {
                break;
            }
            self.loads.get_mut(&name).expect("listed above").background = true;
            self.background += 1;
            self.running -= 1;
            tracing::info!(job = %name, "compiling in the background; the other jobs do not wait for it");
            if !self.deliver([JobChange::Compiling { name, since }]) {
                return false;
            }
        }
        self.start_queued();
        true
    }

    /// After the folder was deleted and recreated, the old inotify watch is gone.
    fn rewatch(&mut self) {
        if let Some(watcher) = &mut self.notify {
            let _ = watcher.unwatch(&self.dir);
            if let Err(error) = watcher.watch(&self.dir, RecursiveMode::NonRecursive) {
                tracing::warn!(dir = %self.dir.display(), %error, "cannot re-watch; polling only");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::watcher::JobChange;
    use crate::watcher::Watcher;
    use crate::watcher::test_util::{FakeLoader, TempDir, next, spawn};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    #[test]
    fn a_slow_load_does_not_hold_back_other_jobs() {
        let dir = TempDir::new("worker-slow-load");
        dir.write("slow.wasm", b"WASM slow");
        dir.write("quick.wasm", b"WASM quick");
        let (_watcher, mut rx, _) = spawn(&dir);
        let first = next(&mut rx, Duration::from_secs(3));
        assert!(
            matches!(&first, Some(JobChange::Added { name, .. }) if name == "quick"),
            "{first:?}"
        );
        let second = next(&mut rx, Duration::from_secs(3));
        assert!(
            matches!(&second, Some(JobChange::Added { name, .. }) if name == "slow"),
            "{second:?}"
        );
    }

    /// Issue 15: a cold compile is announced and goes on in the background; the initial
    /// scan is reported without it, and its `Added` comes when it is done.
    #[test]
    fn a_slow_compile_is_announced_and_does_not_hold_the_initial_scan() {
        let dir = TempDir::new("worker-compiling");
        dir.write("big.wasm", b"WASM compiling");
        dir.write("quick.wasm", b"WASM quick");
        let (watcher, mut rx, _) = spawn(&dir);
        let started = Instant::now();
        let mut initial = watcher.initial_scan();
        let first = next(&mut rx, Duration::from_secs(3));
        assert!(matches!(&first, Some(JobChange::Added { name, .. }) if name == "quick"));
        let second = next(&mut rx, Duration::from_secs(3));
        assert!(
            matches!(&second, Some(JobChange::Compiling { name, .. }) if name == "big"),
            "{second:?}"
        );
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let reported = runtime.block_on(async {
            let flipped = initial.wait_for(|done| *done);
            tokio::time::timeout(Duration::from_secs(2), flipped).await.is_ok()
        });
        assert!(reported, "the initial scan is reported while `big` compiles");
        assert!(started.elapsed() < Duration::from_millis(3500), "before `big` is loaded");
        let third = next(&mut rx, Duration::from_secs(5));
        assert!(
            matches!(&third, Some(JobChange::Added { name, .. }) if name == "big"),
            "{third:?}"
        );
    }

    #[test]
    fn polling_alone_still_sees_every_change() {
        let dir = TempDir::new("worker-polling");
        dir.write("a.wasm", b"WASM one");
        let loader = Arc::new(FakeLoader::default());
        let (_watcher, mut rx) = Watcher::spawn_with(dir.path().into(), loader, false).unwrap();
        assert!(matches!(next(&mut rx, Duration::from_secs(3)), Some(JobChange::Added { .. })));
        dir.write("a.wasm", b"WASM two");
        let start = Instant::now();
        assert!(matches!(next(&mut rx, Duration::from_secs(3)), Some(JobChange::Updated { .. })));
        assert!(start.elapsed() < Duration::from_millis(1200), "took {:?}", start.elapsed());
    }

    #[test]
    fn a_vanished_folder_keeps_the_jobs_and_is_watched_again_when_back() {
        let dir = TempDir::new("worker-vanish");
        let jobs = dir.path().join("jobs");
        std::fs::create_dir(&jobs).unwrap();
        std::fs::write(jobs.join("a.wasm"), b"WASM one").unwrap();
        let loader = Arc::new(FakeLoader::default());
        let (_watcher, mut rx) = Watcher::spawn(jobs.clone(), loader).unwrap();
        assert!(matches!(next(&mut rx, Duration::from_secs(3)), Some(JobChange::Added { .. })));

        std::fs::remove_dir_all(&jobs).unwrap();
        assert!(
            next(&mut rx, Duration::from_millis(700)).is_none(),
            "no Removed for an unreadable folder"
        );
        std::fs::create_dir(&jobs).unwrap();
        std::fs::write(jobs.join("a.wasm"), b"WASM two").unwrap();
        let updated = next(&mut rx, Duration::from_secs(3));
        assert!(
            matches!(&updated, Some(JobChange::Updated { job, .. }) if job.wasm == b"WASM two"),
            "{updated:?}"
        );
    }
}
