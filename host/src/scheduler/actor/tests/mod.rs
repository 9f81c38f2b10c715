//! Unit tests of the scheduler's decisions. A manual clock, a recording launcher (the fake
//! executor: it keeps each run order instead of starting a guest) and a real SQLite ledger
//! drive the actor directly, event by event — job added, slot due, run finished, control
//! call, clock jump — with no loop, no guests and no sleeps. Each test covers one policy and
//! fails when that policy breaks; `policies.rs` holds the slot policies, `lifecycle.rs`
//! claim-ahead, pause, shutdown and clock jumps.

mod cold_start;
mod lifecycle;
mod policies;

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use super::Scheduler;
use crate::config::{HostLimits, parse_manifest};
use crate::metrics::Metrics;
use crate::runtime::{Runtime, RuntimeConfig};
use crate::scheduler::clock::{Clock, ManualClock};
use crate::scheduler::handle::Control;
use crate::scheduler::launch::{Interrupt, Launcher, RunDone, RunOrder};
use crate::scheduler::queue::RetryPlan;
use crate::scheduler::recorder::Recorder;
use crate::scheduler::wake::PreciseTimer;
use crate::scheduler::{JobDef, JobEvent, SchedulerConfig, Services};
use crate::store::{Ledger, RunFilter, RunRecord, SqliteStore, StateStore, TempDb};

/// 2001-09-09T01:46:40Z, a whole multiple of 10 s: `every = "10s"` slots are T0 + k * 10 s.
const T0: i64 = 1_000_000_000_000;
const S: i64 = 1_000;

/// A preview1 module whose `_start` does nothing: code the fake launcher never runs.
const NOOP_WASM: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
    0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type section: () -> ()
    0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
    0x07, 0x0a, 0x01, 0x06, b'_', b's', b't', b'a', b'r', b't', 0x00, 0x00, // export _start
    0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // code section: an empty body
];

/// A run the fake launcher was handed, with the channel an interrupt would arrive on.
struct Launched {
    order: RunOrder,
    cancel: watch::Receiver<Option<Interrupt>>,
}

impl Launched {
    fn slot(&self) -> Option<i64> {
        self.order.at.slot_ms
    }
}

/// The fake executor: keeps every order it is handed.
#[derive(Clone, Default)]
struct Recording(Arc<Mutex<Vec<Launched>>>);

impl Launcher for Recording {
    fn launch(&self, order: RunOrder, cancel: watch::Receiver<Option<Interrupt>>) {
        self.0.lock().unwrap().push(Launched { order, cancel });
    }
}

fn runtime() -> Arc<Runtime> {
    static RUNTIME: OnceLock<Arc<Runtime>> = OnceLock::new();
    let config = RuntimeConfig { pooling: false, cache_dir: None, ..RuntimeConfig::default() };
    RUNTIME.get_or_init(|| Arc::new(Runtime::new(&config).expect("runtime"))).clone()
}

/// A job version from its manifest text (validated as the watcher would).
fn job(name: &str, manifest: &str, version: &str) -> Arc<JobDef> {
    let path = format!("{name}.toml");
    let spec = parse_manifest(manifest, Path::new(&path), name, &HostLimits::default())
        .unwrap_or_else(|err| panic!("{path}: {err}"));
    let code = Arc::new(runtime().load(NOOP_WASM).expect("the no-op module loads"));
    Arc::new(JobDef { spec, code, version: version.to_string() })
}

/// The scheduler under test, its clock, its launcher's record and its store.
struct Harness {
    sched: Scheduler,
    clock: Arc<ManualClock>,
    launched: Recording,
    store: Arc<SqliteStore>,
    done_tx: mpsc::UnboundedSender<RunDone>,
    done_rx: mpsc::UnboundedReceiver<RunDone>,
    _db: Option<TempDb>,
}

impl Harness {
    /// At T0, slots claimed at their instant (no claim ahead), grace 50 ms.
    fn new(test: &str) -> Self {
        Self::with_claim_ahead(test, Duration::ZERO)
    }

    fn with_claim_ahead(test: &str, claim_ahead: Duration) -> Self {
        let db = TempDb::new(&format!("actor-{test}"));
        let store = Arc::new(SqliteStore::open(&db.path).expect("store"));
        let clock = Arc::new(ManualClock::new(T0));
        Self::build(store, clock, claim_ahead, Some(db))
    }

    /// A second scheduler on the same store and clock: the host after a restart (the
    /// first harness keeps the database file).
    fn with_store(store: Arc<SqliteStore>, clock: Arc<ManualClock>) -> Self {
        Self::build(store, clock, Duration::ZERO, None)
    }

    fn build(
        store: Arc<SqliteStore>,
        clock: Arc<ManualClock>,
        claim_ahead: Duration,
        db: Option<TempDb>,
    ) -> Self {
        let services = Arc::new(Services {
            runtime: runtime(),
            ledger: store.clone() as Arc<dyn Ledger>,
            state: store.clone() as Arc<dyn StateStore>,
            clock: clock.clone(),
            owner: Arc::from("test-host"),
            metrics: Arc::new(Metrics::new()),
            notify: Default::default(),
        });
        let config = SchedulerConfig {
            workers: 4,
            grace: Duration::from_millis(50),
            claim_ahead,
            guests: tokio::runtime::Handle::current(),
        };
        let recorder = Recorder::start(store.clone()).expect("store writer");
        let timer = Arc::new(PreciseTimer::start().expect("alarm thread"));
        let launched = Recording::default();
        let launcher = Box::new(launched.clone());
        let sched = Scheduler::new(config, services, recorder, timer, launcher);
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Harness { sched, clock, launched, store, done_tx, done_rx, _db: db }
    }

    fn add(&mut self, name: &str, manifest: &str) {
        self.sched.on_event(JobEvent::Upsert(job(name, manifest, "v1")));
    }

    /// Moves the clock to `ms` (forward or back) without telling the loop of a jump, and
    /// fires what is due: what happens on a merely busy host.
    fn at(&mut self, ms: i64) {
        self.clock.advance(ms - self.clock.now_ms());
        self.sched.fire_due(ms);
    }

    /// Runs handed to the launcher since the last call.
    fn started(&self) -> Vec<Launched> {
        std::mem::take(&mut *self.launched.0.lock().unwrap())
    }

    fn one_started(&self) -> Launched {
        let mut started = self.started();
        assert_eq!(started.len(), 1, "one run started: {:?}", slots(&started));
        started.pop().unwrap()
    }

    /// The run ends (recorded, as the run task does before it reports); `retry_at_ms` is
    /// the next attempt the retry policy planned, if any.
    fn finish(&mut self, run: &Launched, succeeded: bool, retry_at_ms: Option<i64>) {
        let order = &run.order;
        let retry = retry_at_ms.map(|_| RetryPlan {
            job: order.def.spec.name.clone(),
            slot_ms: order.at.slot_ms,
            scheduled_at_ms: order.at.scheduled_at_ms,
            attempt: order.at.attempt + 1,
            idempotency_key: order.at.idempotency_key.clone(),
        });
        self.sched.on_done(RunDone {
            job: order.def.spec.name.clone(),
            version: order.def.version.clone(),
            run_key: order.run_key,
            taken: false,
            succeeded,
            retry,
            retry_at_ms,
        });
    }

    /// Sends an operator request and returns its answer.
    fn control<T>(&mut self, make: impl FnOnce(oneshot::Sender<T>) -> Control) -> T {
        let (reply, mut answer) = oneshot::channel();
        self.sched.on_control(make(reply));
        answer.try_recv().expect("control requests are answered at once")
    }

    /// The job's recorded rows, oldest first.
    fn rows(&self, job: &str) -> Vec<RunRecord> {
        let filter = RunFilter { job: Some(job.into()), limit: 1000, ..RunFilter::default() };
        let mut rows = self.store.runs(&filter).unwrap();
        rows.reverse();
        rows
    }

    /// The job's rows recorded with this reason, as (slot, reason) pairs.
    fn reasons(&self, job: &str) -> Vec<(i64, String)> {
        self.rows(job).into_iter().map(|r| (r.slot_ms.unwrap_or(0), r.reason)).collect()
    }

    /// Waits (at most 5 s) until `ready` holds of the job's rows: for writes that go
    /// through the store writer thread.
    fn wait_rows(&self, job: &str, ready: impl Fn(&[RunRecord]) -> bool) -> Vec<RunRecord> {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let rows = self.rows(job);
            if ready(&rows) || std::time::Instant::now() > deadline {
                return rows;
            }
            std::thread::yield_now();
        }
    }
}

fn slots(runs: &[Launched]) -> Vec<Option<i64>> {
    runs.iter().map(Launched::slot).collect()
}
