//! The watcher's memory and its decisions: [`WatchState`] turns successive [`Listing`]s
//! into [`Task`]s to run (debounce), and finished [`TaskResult`]s into [`JobChange`]s.
//!
//! It does no I/O and reads no clock: `now` is passed in, so the debounce rules are tested
//! here with made-up instants. The rules, per job name:
//! - a fingerprint must be seen unchanged for [`SETTLE`] (two scans at least that far
//!   apart) before anything is read; any change restarts the wait;
//! - a settled fingerprint is acted on once (one [`Task`]); the same fingerprint is never
//!   read again, and a new one whose bytes hash to a version already decided is not loaded;
//! - one task per name at a time; a result for a fingerprint that has since changed is
//!   dropped, since a newer state is already on its way;
//! - disappearance is debounced too, so `rm x.wasm && cp new.wasm x.wasm` is an update,
//!   not a removal and an add.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::JobChange;
use super::load::{Outcome, Problem, Task, TaskResult};
use super::scan::{Fingerprint, Listing};

/// How long a job's files must stay unchanged before they are read.
pub(crate) const SETTLE: Duration = Duration::from_millis(300);

/// Everything the watcher remembers between scans. Create one with [`WatchState::new`] and
/// hand it to every [`scan_once`](super::scan_once) call for the same folder.
pub struct WatchState<J> {
    jobs: BTreeMap<String, Entry<J>>,
    /// Unsafe names already reported, so each is reported once and removed once.
    bad_names: BTreeSet<String>,
}

/// One job name's history.
struct Entry<J> {
    /// The last fingerprint observed, and since when: the debounce clock.
    seen: Fingerprint,
    seen_since: Instant,
    /// The fingerprint already acted on; the files are not read again until it changes.
    settled: Option<Fingerprint>,
    /// A task is queued or running: no second one, and no removal under its feet.
    busy: bool,
    /// The version in service. The job is kept so that reverting to it after an invalid
    /// edit can be announced with the same `Arc`, without loading it again.
    loaded: Option<(String, Arc<J>)>,
    /// The key (version, or error text) of the last `Invalid` sent, so it is sent once.
    reported: Option<String>,
    /// The host has heard of this name since the last `Removed` (an `Invalid` counts), so
    /// it must hear when the name goes away.
    announced: bool,
}

/// What one scan decided.
pub(crate) struct Observation<J> {
    /// Changes that need no reading (removals, bad names), to send now.
    pub(crate) changes: Vec<JobChange<J>>,
    /// Jobs whose files settled, to read and maybe load.
    pub(crate) tasks: Vec<Task>,
    /// The earliest instant a pending fingerprint will have settled, if any.
    pub(crate) next_due: Option<Instant>,
}

impl<J> Default for WatchState<J> {
    fn default() -> Self {
        WatchState { jobs: BTreeMap::new(), bad_names: BTreeSet::new() }
    }
}

impl<J> WatchState<J> {
    /// A watcher that has seen nothing yet: its first scans report everything present.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes in the folder as listed at `now`.
    pub(crate) fn observe(
        &mut self,
        dir: &Arc<Path>,
        listing: Listing,
        now: Instant,
    ) -> Observation<J> {
        let mut out = Observation { changes: Vec::new(), tasks: Vec::new(), next_due: None };
        self.observe_bad_names(listing.bad, &mut out.changes);

        let mut names: Vec<String> = listing.jobs.keys().cloned().collect();
        names.extend(self.jobs.keys().filter(|name| !listing.jobs.contains_key(*name)).cloned());
        for name in names {
            let fingerprint = listing.jobs.get(&name).copied().unwrap_or(Fingerprint::ABSENT);
            let entry =
                self.jobs.entry(name.clone()).or_insert_with(|| Entry::new(fingerprint, now));
            if entry.seen != fingerprint {
                entry.seen = fingerprint;
                entry.seen_since = now;
            }
            if entry.busy || entry.settled == Some(fingerprint) {
                continue;
            }
            let due = entry.seen_since + SETTLE;
            if now < due {
                out.next_due = Some(out.next_due.map_or(due, |next| next.min(due)));
                continue;
            }
            if fingerprint.wasm.is_none() {
                // Gone for good (the wait is over): stop scheduling it.
                if entry.loaded.take().is_some() || (fingerprint.toml.is_none() && entry.announced)
                {
                    out.changes.push(JobChange::Removed { name: name.clone() });
                    entry.announced = false;
                    entry.reported = None;
                }
                if fingerprint.toml.is_none() {
                    self.jobs.remove(&name);
                    continue;
                }
            }
            entry.busy = true;
            let known = entry.loaded.iter().map(|(v, _)| v.clone()).chain(entry.reported.clone());
            out.tasks.push(Task { dir: dir.clone(), name, fingerprint, known: known.collect() });
        }
        out
    }

    fn observe_bad_names(
        &mut self,
        bad: BTreeMap<String, String>,
        changes: &mut Vec<JobChange<J>>,
    ) {
        self.bad_names.retain(|name| {
            let keep = bad.contains_key(name);
            if !keep {
                changes.push(JobChange::Removed { name: name.clone() });
            }
            keep
        });
        for (name, file) in bad {
            if self.bad_names.insert(name.clone()) {
                let error = Problem::BadName { file }.to_string();
                changes.push(JobChange::Invalid { name, error });
            }
        }
    }

    /// Takes in a finished task; `now` is when its result arrived.
    pub(crate) fn complete(&mut self, result: TaskResult<J>, now: Instant) -> Option<JobChange<J>> {
        let TaskResult { name, fingerprint, outcome } = result;
        let entry = self.jobs.get_mut(&name)?;
        entry.busy = false;
        if entry.seen != fingerprint {
            return None;
        }
        let (key, error) = match outcome {
            Outcome::Raced(current) => {
                entry.seen = current;
                entry.seen_since = now;
                return None;
            }
            Outcome::Loaded(version, Ok(job)) => {
                entry.settled = Some(fingerprint);
                entry.reported = None;
                entry.announced = true;
                let job = Arc::new(job);
                let previous = entry.loaded.replace((version.clone(), job.clone()));
                return Some(match previous {
                    None => JobChange::Added { name, version, job },
                    Some(_) => JobChange::Updated { name, version, job },
                });
            }
            Outcome::Known(version) => {
                entry.settled = Some(fingerprint);
                let (loaded_version, job) = entry.loaded.as_ref()?;
                // Back to the version in service after an invalid edit: say it is fine again.
                if *loaded_version == version && entry.reported.take().is_some() {
                    return Some(JobChange::Updated { name, version, job: job.clone() });
                }
                return None;
            }
            Outcome::Loaded(version, Err(error)) => (version, error),
            Outcome::Orphan(version) => (
                format!("orphan:{version}"),
                Problem::OrphanManifest { name: name.clone() }.to_string(),
            ),
            Outcome::Unreadable(error) => (error.clone(), error),
        };
        entry.settled = Some(fingerprint);
        entry.announced = true;
        if entry.reported.as_deref() == Some(&key) {
            return None;
        }
        entry.reported = Some(key);
        Some(JobChange::Invalid { name, error })
    }

    /// True when no name is waiting to settle or being read: the folder as it stands has
    /// been fully reported.
    #[cfg(test)]
    pub(crate) fn is_idle(&self) -> bool {
        self.is_idle_but(|_| false)
    }

    /// [`is_idle`](Self::is_idle), except for names whose load `compiling` says went to
    /// the background: the folder is reported but for those.
    pub(crate) fn is_idle_but(&self, compiling: impl Fn(&str) -> bool) -> bool {
        self.jobs.iter().all(|(name, entry)| {
            (!entry.busy && entry.settled == Some(entry.seen)) || (entry.busy && compiling(name))
        })
    }
}

impl<J> Entry<J> {
    fn new(seen: Fingerprint, now: Instant) -> Self {
        Entry {
            seen,
            seen_since: now,
            settled: None,
            busy: false,
            loaded: None,
            reported: None,
            announced: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watcher::test_util::TempDir;

    /// Fingerprints without files: real stamps of scratch files, distinct per `content`.
    struct Stamps(TempDir);

    impl Stamps {
        fn new(tag: &str) -> Self {
            Stamps(TempDir::new(tag))
        }
        /// A fingerprint for a job with a wasm of `len` bytes and maybe a manifest.
        fn job(&self, len: usize, toml: bool) -> Fingerprint {
            self.0.write("s.wasm", &vec![b'x'; len]);
            if toml {
                self.0.write("s.toml", b"t");
            } else {
                let _ = std::fs::remove_file(self.0.path().join("s.toml"));
            }
            Fingerprint::read(self.0.path(), "s")
        }
    }

    fn listing(jobs: &[(&str, Fingerprint)]) -> Listing {
        Listing {
            jobs: jobs.iter().map(|(n, f)| (n.to_string(), *f)).collect(),
            bad: BTreeMap::new(),
        }
    }

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    fn done(task: &Task, outcome: Outcome<&'static str>) -> TaskResult<&'static str> {
        TaskResult { name: task.name.clone(), fingerprint: task.fingerprint, outcome }
    }

    #[test]
    fn files_are_read_only_after_holding_still_for_the_settle_time() {
        let stamps = Stamps::new("state-settle");
        let dir: Arc<Path> = stamps.0.path().into();
        let mut state = WatchState::<&str>::new();
        let (a, b) = (stamps.job(1, false), stamps.job(2, false));
        let t0 = Instant::now();

        let first = state.observe(&dir, listing(&[("j", a)]), t0);
        assert!(first.tasks.is_empty());
        assert_eq!(first.next_due, Some(ms(t0, 300)));
        // Changed at 250 ms: the wait starts over.
        assert!(state.observe(&dir, listing(&[("j", b)]), ms(t0, 250)).tasks.is_empty());
        assert!(state.observe(&dir, listing(&[("j", b)]), ms(t0, 500)).tasks.is_empty());
        let ready = state.observe(&dir, listing(&[("j", b)]), ms(t0, 550));
        assert_eq!(ready.tasks.len(), 1);
        assert_eq!(ready.tasks[0].fingerprint, b);
        // Busy: no second task while the first runs.
        assert!(state.observe(&dir, listing(&[("j", b)]), ms(t0, 900)).tasks.is_empty());
        assert!(!state.is_idle());
    }

    #[test]
    fn a_result_for_a_fingerprint_that_moved_on_is_dropped() {
        let stamps = Stamps::new("state-stale");
        let dir: Arc<Path> = stamps.0.path().into();
        let mut state = WatchState::<&str>::new();
        let (a, b) = (stamps.job(1, false), stamps.job(2, false));
        let t0 = Instant::now();
        state.observe(&dir, listing(&[("j", a)]), t0);
        let task = state.observe(&dir, listing(&[("j", a)]), ms(t0, 300)).tasks.remove(0);
        state.observe(&dir, listing(&[("j", b)]), ms(t0, 400));
        assert!(
            state
                .complete(done(&task, Outcome::Loaded("v1".into(), Ok("job"))), ms(t0, 450))
                .is_none()
        );
        // The newer fingerprint gets its own task once settled.
        let next = state.observe(&dir, listing(&[("j", b)]), ms(t0, 700));
        assert_eq!(next.tasks.len(), 1);
        assert!(next.tasks[0].known.is_empty(), "nothing was loaded");
    }

    #[test]
    fn a_delete_and_recreate_within_the_settle_time_is_an_update() {
        let stamps = Stamps::new("state-recreate");
        let dir: Arc<Path> = stamps.0.path().into();
        let mut state = WatchState::<&str>::new();
        let (a, b) = (stamps.job(1, true), stamps.job(2, true));
        let t0 = Instant::now();
        state.observe(&dir, listing(&[("j", a)]), t0);
        let task = state.observe(&dir, listing(&[("j", a)]), ms(t0, 300)).tasks.remove(0);
        let added =
            state.complete(done(&task, Outcome::Loaded("v1".into(), Ok("one"))), ms(t0, 310));
        assert!(matches!(added, Some(JobChange::Added { .. })));
        assert!(state.is_idle());

        let gone = state.observe(&dir, listing(&[]), ms(t0, 400));
        assert!(gone.changes.is_empty() && gone.tasks.is_empty());
        state.observe(&dir, listing(&[("j", b)]), ms(t0, 600));
        let task = state.observe(&dir, listing(&[("j", b)]), ms(t0, 900)).tasks.remove(0);
        assert_eq!(task.known, ["v1"]);
        let updated =
            state.complete(done(&task, Outcome::Loaded("v2".into(), Ok("two"))), ms(t0, 910));
        assert!(matches!(updated, Some(JobChange::Updated { version, .. }) if version == "v2"));
    }

    #[test]
    fn removal_waits_for_the_settle_time_and_forgets_the_name() {
        let stamps = Stamps::new("state-remove");
        let dir: Arc<Path> = stamps.0.path().into();
        let mut state = WatchState::<&str>::new();
        let a = stamps.job(1, false);
        let t0 = Instant::now();
        state.observe(&dir, listing(&[("j", a)]), t0);
        let task = state.observe(&dir, listing(&[("j", a)]), ms(t0, 300)).tasks.remove(0);
        state.complete(done(&task, Outcome::Loaded("v1".into(), Ok("one"))), ms(t0, 310));

        assert!(state.observe(&dir, listing(&[]), ms(t0, 400)).changes.is_empty());
        let removed = state.observe(&dir, listing(&[]), ms(t0, 700)).changes;
        assert!(matches!(removed.as_slice(), [JobChange::Removed { name }] if name == "j"));
        assert!(state.jobs.is_empty());
        assert!(state.observe(&dir, listing(&[]), ms(t0, 1000)).changes.is_empty());
    }

    #[test]
    fn an_invalid_version_is_reported_once_and_reverting_clears_it() {
        let stamps = Stamps::new("state-invalid");
        let dir: Arc<Path> = stamps.0.path().into();
        let mut state = WatchState::<&str>::new();
        let (a, b, c) = (stamps.job(1, false), stamps.job(2, false), stamps.job(3, false));
        let t0 = Instant::now();
        let settle = |state: &mut WatchState<&'static str>, f, at: u64| {
            state.observe(&dir, listing(&[("j", f)]), ms(t0, at));
            state.observe(&dir, listing(&[("j", f)]), ms(t0, at + 300)).tasks.remove(0)
        };
        let task = settle(&mut state, a, 0);
        state.complete(done(&task, Outcome::Loaded("v1".into(), Ok("one"))), ms(t0, 300));

        let task = settle(&mut state, b, 1000);
        let invalid = state
            .complete(done(&task, Outcome::Loaded("v2".into(), Err("bad".into()))), ms(t0, 1300));
        assert!(matches!(invalid, Some(JobChange::Invalid { error, .. }) if error == "bad"));
        // Same bad bytes under a new fingerprint (a touch): known, not re-reported.
        let task = settle(&mut state, c, 2000);
        assert_eq!(task.known, ["v1", "v2"]);
        assert!(state.complete(done(&task, Outcome::Known("v2".into())), ms(t0, 2300)).is_none());
        // Reverted to v1's bytes: v1 is announced again with the job already in service.
        let task = settle(&mut state, a, 3000);
        let back = state.complete(done(&task, Outcome::Known("v1".into())), ms(t0, 3300));
        assert!(
            matches!(back, Some(JobChange::Updated { version, job, .. }) if version == "v1" && *job == "one")
        );
    }

    #[test]
    fn bad_names_are_reported_once_and_removed_once() {
        let dir: Arc<Path> = Path::new("/nonexistent").into();
        let mut state = WatchState::<&str>::new();
        let bad = || Listing {
            jobs: BTreeMap::new(),
            bad: [("a b".to_string(), "a b.wasm".to_string())].into(),
        };
        let t0 = Instant::now();
        let first = state.observe(&dir, bad(), t0).changes;
        assert!(matches!(first.as_slice(), [JobChange::Invalid { name, error }]
            if name == "a b" && error.starts_with("a b.wasm: a job name may contain only")));
        assert!(state.observe(&dir, bad(), ms(t0, 300)).changes.is_empty());
        let gone = state.observe(&dir, Listing::default(), ms(t0, 600)).changes;
        assert!(matches!(gone.as_slice(), [JobChange::Removed { name }] if name == "a b"));
    }
}
