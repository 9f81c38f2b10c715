//! The scheduler's three goals, measured through the real library: `scheduler::run` on its
//! own tokio runtime, guests on a second one (as `sandcron serve` wires them), the real
//! wasmtime [`Runtime`] and a fresh [`SqliteStore`] file on the normal disk.
//!
//! 1. **Trigger accuracy** (goal p99 ≤ 1 ms): 1,000 jobs `every = "1s"` for N seconds; lag =
//!    `started_at_ms - slot_ms` of every run, read back from the ledger (whole ms), and the
//!    same lag at µs precision as the host logs it ("run started", `lag_ms`), and a check
//!    that every slot ran exactly once. Beside it, the machine's floor in the same window:
//!    how late a bare thread wakes from a precise sleep.
//!    Two variants: `aligned` (all 1,000 share each second's instant) and `jittered`
//!    (`jitter = "1s"`: the same load spread over the second by each slot's deterministic
//!    jitter, about one fire per millisecond; lag measured from the jittered due time).
//!    Slots are whole seconds (`every`, `phase` and cron all are), so jitter is how a
//!    manifest spreads jobs within a second. Aligned is a burst of 1,000 starts at one
//!    instant, which 2 cores drain at CPU speed; jittered separates timer and store
//!    accuracy from that queueing.
//! 2. **Durable throughput** (goal ≥ 10,000 runs/s on 2 cores): 20,000 jobs `every = "1s"`
//!    with `overlap = "buffer-all"`, i.e. more than the host can run (so the figure is the
//!    host's ceiling, not the offered rate) and every due slot a
//!    real run (a busy job's slot waits in memory instead of being skipped); the figure is
//!    succeeded rows finished per second of wall time: runs claimed, executed in wasmtime
//!    and recorded. Beside it, in the same process: CPU per run by thread group, wall time
//!    inside each ledger call (through a timing wrapper around the same `SqliteStore`), and
//!    isolated loops of `Runtime::execute` only and of ledger claim + finish only (one by
//!    one, and batched), to say what limits the rate.
//! 3. **Memory** (goal ≤ 300 MB): VmRSS with no jobs, after building 100,000 job
//!    definitions, and after the scheduler has queued them all (none fires meanwhile).
//!
//! Every job is the probe guest (`target/guests/probe.wasm`, loaded once and shared, as the
//! watcher shares code between jobs) with no payload: it returns "ok" at once, a no-op job.
//!
//! Run: `bash scripts/build-guests.sh && cargo bench -p sandcron --bench scheduler`
//! (sets `RUST_LIB_BACKTRACE=0` as the binary does). Without `SANDCRON_BENCH_PART` each
//! part runs in its own child process, so RSS and CPU figures are that part's alone.
//!
//! Knobs (environment):
//! - `SANDCRON_BENCH_PART=accuracy|throughput|memory` (comma-separated): only these parts,
//!   in this process.
//! - `SANDCRON_BENCH_SECONDS=N`: measured seconds of parts 1 and 2 (default 10).
//! - `SANDCRON_BENCH_ACCURACY_JOBS` (1000), `SANDCRON_BENCH_ACCURACY_VARIANTS`
//!   (`aligned,jittered`).
//! - `SANDCRON_BENCH_THROUGHPUT_JOBS` (20000: twice the goal's rate),
//!   `SANDCRON_BENCH_THROUGHPUT_OVERLAP` (comma-separated, default `buffer-all`; add `skip`,
//!   the manifest default, to see overload behaviour; an empty value runs only the
//!   isolated loops), `SANDCRON_BENCH_THROUGHPUT_JITTER` (e.g. `1s` to spread each second's
//!   burst; default none).
//! - `SANDCRON_BENCH_MEMORY_JOBS` (100000), `SANDCRON_BENCH_MEMORY_SCHEDULE` (`every`:
//!   `every = "1h"` with phases 10-40 min ahead, or `cron`: yearly 6-field expressions).
//! - `SANDCRON_BENCH_WORKERS`: the host-wide worker limit (default 2 x cores, as `serve`).
//! - `SANDCRON_BENCH_CLAIM_AHEAD_MS`: as `serve --claim-ahead` (default 250; 0 claims at
//!   the instant, as before claim-ahead existed).
//! - `SANDCRON_BENCH_DIR`: where the SQLite files go (default the temp dir, normally /tmp;
//!   the output names the filesystem so a tmpfs shows).
//! - `SANDCRON_LOG`: log filter, as the binary (default `warn`); log lines are counted and
//!   the first ones quoted, not printed.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Datelike, Utc};
use sandcron::config::{HostLimits, parse_manifest};
use sandcron::job::{RunOutcome, RunRequest};
use sandcron::runtime::{LoadedJob, Runtime, RuntimeConfig};
use sandcron::schedule::jitter_delay;
use sandcron::scheduler::{self, Clock, JobDef, JobEvent, SchedulerConfig, Services, SystemClock};
use sandcron::store::{
    Claim, CompilingRow, JobRow, Ledger, LoadErrorRow, NewRun, RunDetail, RunFilter, RunFinish,
    RunRecord, RunStatus, SqliteStore, StateStore, StoreError,
};
use tokio::sync::{mpsc, oneshot};

const PARTS: [&str; 3] = ["accuracy", "throughput", "memory"];

fn knob<T: FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(text) => text.parse().unwrap_or_else(|_| panic!("{name}={text:?} is not valid")),
        Err(_) => default,
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Settings shared by the parts.
struct Knobs {
    seconds: u64,
    workers: usize,
    dir: PathBuf,
    probe: Vec<u8>,
}

impl Knobs {
    fn from_env() -> Knobs {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), Into::into);
        let wasm = target.join("guests/probe.wasm");
        let probe = std::fs::read(&wasm).unwrap_or_else(|e| {
            panic!("{}: {e} (run scripts/build-guests.sh first)", wasm.display())
        });
        Knobs {
            seconds: knob("SANDCRON_BENCH_SECONDS", 10),
            workers: knob("SANDCRON_BENCH_WORKERS", cores() * 2),
            dir: std::env::var_os("SANDCRON_BENCH_DIR")
                .map_or_else(std::env::temp_dir, PathBuf::from),
            probe,
        }
    }
}

// ---------------------------------------------------------------------------------------
// The host under test.

/// Runtime, store and a running scheduler, wired as `daemon::serve` does (minus the watcher).
/// One difference: `serve` `block_on`s the scheduler on the main thread; here it is spawned
/// on the host runtime, so its CPU time shows under its own thread name.
struct Host {
    dir: PathBuf,
    store: Arc<SqliteStore>,
    /// The ledger the scheduler sees: `store` behind a stopwatch.
    timed: Arc<TimedLedger>,
    /// The host's metrics (the start-lag histogram has µs precision).
    runtime: Arc<Runtime>,
    code: Arc<LoadedJob>,
    /// The guest pool: tokio's default size (one thread per core), as `serve`.
    guests: tokio::runtime::Runtime,
    /// The scheduler's runtime: two workers, as `serve`'s host runtime.
    sched: tokio::runtime::Runtime,
    events: mpsc::Sender<JobEvent>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), scheduler::SchedulerError>>>,
}

impl Host {
    fn start(knobs: &Knobs, label: &str) -> Host {
        let dir =
            knobs.dir.join(format!("sandcron-bench-scheduler-{}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Arc::new(SqliteStore::open(&dir.join("store.db")).expect("open the store"));
        let runtime = Arc::new(
            Runtime::new(&RuntimeConfig {
                max_instances: (knobs.workers as u32).max(32),
                ..RuntimeConfig::default()
            })
            .expect("build the runtime"),
        );
        let code = Arc::new(runtime.load(&knobs.probe).expect("load probe.wasm"));
        let guests = tokio::runtime::Builder::new_multi_thread()
            .thread_name("sandcron-guest")
            .enable_all()
            .build()
            .expect("guest pool");
        let sched = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sandcron-host")
            .enable_all()
            .build()
            .expect("host runtime");
        let timed = Arc::new(TimedLedger { inner: store.clone(), calls: Default::default() });
        let metrics = Arc::new(sandcron::metrics::Metrics::new());
        let services = Arc::new(Services {
            runtime: runtime.clone(),
            ledger: timed.clone() as Arc<dyn Ledger>,
            state: store.clone() as Arc<dyn StateStore>,
            clock: Arc::new(SystemClock) as Arc<dyn Clock>,
            owner: Arc::from(format!("bench-{}", std::process::id())),
            metrics,
            notify: Default::default(),
        });
        let (events, events_rx) = mpsc::channel(256);
        let (_control, control_rx) = scheduler::control_channel();
        let (stop, stop_rx) = oneshot::channel::<()>();
        let config = SchedulerConfig {
            workers: knobs.workers,
            grace: Duration::from_secs(60),
            claim_ahead: Duration::from_millis(knob("SANDCRON_BENCH_CLAIM_AHEAD_MS", 250)),
            guests: guests.handle().clone(),
        };
        let shutdown = async move {
            let _ = stop_rx.await;
        };
        let task = sched.spawn(scheduler::run(config, services, events_rx, control_rx, shutdown));
        Host {
            dir,
            store,
            timed,
            runtime,
            code,
            guests,
            sched,
            events,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// A job definition as the watcher would build it (manifest parsed, code shared).
    fn def(&self, name: &str, manifest: &str) -> Arc<JobDef> {
        let path = PathBuf::from(format!("bench/{name}.toml"));
        let spec = parse_manifest(manifest, &path, name, &HostLimits::default())
            .unwrap_or_else(|e| panic!("{e}"));
        Arc::new(JobDef { spec, code: self.code.clone(), version: self.code.content_hash.clone() })
    }

    /// Sends every definition, then waits until the scheduler has taken the last one in
    /// (events are handled in order, and each upsert writes the job's row). Gives up after
    /// a minute, saying so: the bench must end even if the scheduler starves its events.
    fn register(&self, defs: &[Arc<JobDef>]) -> Duration {
        let started = Instant::now();
        let limit = Duration::from_secs(60);
        for def in defs {
            let event = JobEvent::Upsert(def.clone());
            let sent = self.sched.block_on(async {
                tokio::time::timeout_at((started + limit).into(), self.events.send(event)).await
            });
            if !matches!(sent, Ok(Ok(()))) {
                break;
            }
        }
        if let Some(last) = defs.last() {
            while self.store.job(&last.spec.name).expect("job row").is_none() {
                if started.elapsed() > limit {
                    println!(
                        "   !! the scheduler had not taken in all {} jobs after {limit:?}; \
                         measuring anyway",
                        defs.len()
                    );
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        started.elapsed()
    }

    /// How long one more job's upsert takes to be taken in by the busy scheduler (what a
    /// hot reload waits), or `None` after `limit`.
    fn upsert_latency(&self, manifest: &str, limit: Duration) -> Option<Duration> {
        let def = self.def("late-upsert", manifest);
        let started = Instant::now();
        self.events.blocking_send(JobEvent::Upsert(def)).ok()?;
        while self.store.job("late-upsert").ok()?.is_none() {
            if started.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Some(started.elapsed())
    }

    /// Resolves the shutdown future and waits for the scheduler to stop (runs in flight
    /// finish within the grace period).
    fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            self.sched.block_on(task).expect("scheduler task").expect("the scheduler started");
        }
    }

    fn all_runs(&self) -> Vec<RunRecord> {
        let filter = RunFilter { limit: usize::MAX, ..RunFilter::default() };
        self.store.runs(&filter).expect("read the ledger")
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.shut_down();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------------------
// Measuring helpers.

fn percentile(sorted: &[i64], q: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

/// "p50 / p99 / max" of integer milliseconds.
fn dist(values: &mut [i64]) -> (i64, i64, i64) {
    values.sort_unstable();
    (percentile(values, 0.5), percentile(values, 0.99), values.last().copied().unwrap_or(0))
}

/// A `/proc/self/status` size field (VmRSS, VmHWM) in MiB.
fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// CPU time per thread group, from /proc/self/task/*/schedstat (ns on CPU), plus the
/// process total from /proc/self/stat (which also counts threads that have exited).
#[derive(Clone, Default)]
struct CpuSnapshot {
    groups: BTreeMap<&'static str, Duration>,
    total: Duration,
}

impl CpuSnapshot {
    fn take() -> CpuSnapshot {
        let mut groups = BTreeMap::new();
        for entry in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
            let path = entry.path();
            let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            let ns = std::fs::read_to_string(path.join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()))
                .unwrap_or(0);
            let group = match comm.trim() {
                "sandcron-host" => "scheduler (sandcron-host threads)",
                "sandcron-guest" => "guest pool (sandcron-guest threads)",
                "sandcron-epoch" => "epoch ticker",
                // Thread names are cut to 15 bytes in /proc.
                "sandcron-record" => "store writer (sandcron-recorder)",
                "sandcron-checkp" => "WAL checkpointer",
                _ => "bench main thread",
            };
            *groups.entry(group).or_default() += Duration::from_nanos(ns);
        }
        // utime + stime, in clock ticks (USER_HZ, 100 on Linux).
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let after_comm = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after_comm.split_whitespace().collect();
        let ticks: u64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<u64>().ok()).sum();
        CpuSnapshot { groups, total: Duration::from_millis(ticks * 10) }
    }

    fn since(&self, earlier: &CpuSnapshot) -> CpuSnapshot {
        let groups = self
            .groups
            .iter()
            .map(|(name, t)| {
                (*name, t.saturating_sub(earlier.groups.get(name).copied().unwrap_or_default()))
            })
            .collect();
        CpuSnapshot { groups, total: self.total.saturating_sub(earlier.total) }
    }
}

/// The filesystem holding `dir`, from /proc/mounts: (device, type, mount point).
fn filesystem_of(dir: &Path) -> (String, String, String) {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (dev, mount, kind) = (fields.next()?, fields.next()?, fields.next()?);
            dir.starts_with(mount).then(|| (dev.to_string(), kind.to_string(), mount.to_string()))
        })
        .max_by_key(|(_, _, mount)| mount.len())
        .unwrap_or_default()
}

fn describe_store(dir: &Path) -> String {
    let (dev, kind, mount) = filesystem_of(dir);
    let verdict = if kind == "tmpfs" { "TMPFS: not a real disk!" } else { "not tmpfs" };
    format!("{} ({kind} on {dev}, mounted at {mount}: {verdict})", dir.display())
}

/// The scheduler's ledger with a stopwatch: forwards every call to the [`SqliteStore`] and
/// adds up the wall time spent inside it (waiting for its connection lock included), so
/// the store's share of a run is measured where the scheduler pays it.
struct TimedLedger {
    inner: Arc<SqliteStore>,
    calls: [CallStats; CALLS.len()],
}

/// The ledger methods the scheduler calls while running.
const CALLS: [&str; 7] =
    ["claim", "finish", "upsert_job", "claim_many", "job", "last_slot", "other"];

#[derive(Default)]
struct CallStats {
    count: AtomicU64,
    nanos: AtomicU64,
    max_nanos: AtomicU64,
    over_1ms: AtomicU64,
}

/// A copy of the counters: per method (count, total, max, calls over 1 ms).
type CallSnapshot = Vec<(&'static str, u64, Duration, Duration, u64)>;

impl TimedLedger {
    fn timed<T>(&self, method: &str, call: impl FnOnce(&SqliteStore) -> T) -> T {
        let started = Instant::now();
        let result = call(&self.inner);
        let nanos = started.elapsed().as_nanos() as u64;
        let index = CALLS.iter().position(|m| *m == method).unwrap_or(CALLS.len() - 1);
        let stats = &self.calls[index];
        stats.count.fetch_add(1, Ordering::Relaxed);
        stats.nanos.fetch_add(nanos, Ordering::Relaxed);
        stats.max_nanos.fetch_max(nanos, Ordering::Relaxed);
        if nanos > 1_000_000 {
            stats.over_1ms.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    fn snapshot(&self) -> CallSnapshot {
        CALLS
            .iter()
            .zip(&self.calls)
            .map(|(name, s)| {
                let (count, nanos) =
                    (s.count.load(Ordering::Relaxed), s.nanos.load(Ordering::Relaxed));
                // The max is reset so the next snapshot's max is its own window's.
                let max = s.max_nanos.swap(0, Ordering::Relaxed);
                let over = s.over_1ms.load(Ordering::Relaxed);
                (*name, count, Duration::from_nanos(nanos), Duration::from_nanos(max), over)
            })
            .collect()
    }
}

impl Ledger for TimedLedger {
    fn claim(&self, run: &NewRun) -> Result<Claim, StoreError> {
        self.timed("claim", |s| s.claim(run))
    }
    fn claim_many(&self, runs: &[NewRun]) -> Result<Vec<Claim>, StoreError> {
        self.timed("claim_many", |s| s.claim_many(runs))
    }
    fn finish(&self, run_id: &str, finish: &RunFinish) -> Result<bool, StoreError> {
        self.timed("finish", |s| s.finish(run_id, finish))
    }
    fn finish_many(&self, finishes: &[(String, RunFinish)]) -> Result<Vec<bool>, StoreError> {
        self.timed("other", |s| s.finish_many(finishes))
    }
    fn release(&self, run_id: &str) -> Result<bool, StoreError> {
        self.timed("other", |s| s.release(run_id))
    }
    fn recover_interrupted(&self, owner: &str, now_ms: i64) -> Result<Vec<RunRecord>, StoreError> {
        self.timed("other", |s| s.recover_interrupted(owner, now_ms))
    }
    fn pending_retries(&self) -> Result<Vec<RunRecord>, StoreError> {
        self.timed("other", |s| s.pending_retries())
    }
    fn last_slot(&self, job: &str) -> Result<Option<i64>, StoreError> {
        self.timed("last_slot", |s| s.last_slot(job))
    }
    fn slot_history(
        &self,
        job: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(i64, u32, RunStatus)>, StoreError> {
        self.timed("slot_history", |s| s.slot_history(job, from_ms, to_ms))
    }
    fn run(&self, run_id: &str) -> Result<Option<RunDetail>, StoreError> {
        self.timed("other", |s| s.run(run_id))
    }
    fn runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        self.timed("other", |s| s.runs(filter))
    }
    fn runs_with_output(&self, filter: &RunFilter) -> Result<Vec<(RunRecord, String)>, StoreError> {
        self.timed("other", |s| s.runs_with_output(filter))
    }
    fn upsert_job(&self, job: &JobRow) -> Result<(), StoreError> {
        self.timed("upsert_job", |s| s.upsert_job(job))
    }
    fn remove_job(&self, name: &str) -> Result<(), StoreError> {
        self.timed("other", |s| s.remove_job(name))
    }
    fn job(&self, name: &str) -> Result<Option<JobRow>, StoreError> {
        self.timed("job", |s| s.job(name))
    }
    fn jobs(&self) -> Result<Vec<JobRow>, StoreError> {
        self.timed("other", |s| s.jobs())
    }
    fn last_runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        self.timed("other", |s| s.last_runs())
    }
    fn set_load_error(&self, row: &LoadErrorRow) -> Result<(), StoreError> {
        self.timed("other", |s| s.set_load_error(row))
    }
    fn clear_load_error(&self, name: &str) -> Result<(), StoreError> {
        self.timed("other", |s| s.clear_load_error(name))
    }
    fn load_errors(&self) -> Result<Vec<LoadErrorRow>, StoreError> {
        self.timed("other", |s| s.load_errors())
    }
    fn set_compiling(&self, row: &CompilingRow) -> Result<(), StoreError> {
        self.timed("other", |s| s.set_compiling(row))
    }
    fn clear_compiling(&self, name: &str) -> Result<(), StoreError> {
        self.timed("other", |s| s.clear_compiling(name))
    }
    fn compiling(&self) -> Result<Vec<CompilingRow>, StoreError> {
        self.timed("other", |s| s.compiling())
    }
}

/// Log output as `serve` formats it (same subscriber and filter), counted instead of
/// printed: a burst can log one line per job.
static LOG_LINES: AtomicU64 = AtomicU64::new(0);
static LOG_FIRST: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct LogTally;

impl Write for LogTally {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for line in String::from_utf8_lossy(buf).lines() {
            LOG_LINES.fetch_add(1, Ordering::Relaxed);
            let mut first = LOG_FIRST.lock().unwrap_or_else(|p| p.into_inner());
            if first.len() < 2 {
                first.push(line.chars().take(220).collect());
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// "N log lines (SANDCRON_LOG filter), first: ..." since the last call.
fn log_report() -> String {
    let lines = LOG_LINES.swap(0, Ordering::Relaxed);
    let first = std::mem::take(&mut *LOG_FIRST.lock().unwrap_or_else(|p| p.into_inner()));
    let filter = std::env::var("SANDCRON_LOG").unwrap_or_else(|_| "warn".into());
    let mut text = format!("{lines} log lines at filter {filter:?}");
    for line in first {
        text.push_str(&format!("\n      e.g. {line}"));
    }
    text
}

fn process_user_sys() -> (Duration, Duration) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_comm = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    (Duration::from_millis(ticks(11) * 10), Duration::from_millis(ticks(12) * 10))
}

fn thread_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    Duration::from_nanos(text.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0))
}

fn loadavg() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

// ---------------------------------------------------------------------------------------
// 1. Trigger accuracy.

fn accuracy(knobs: &Knobs) {
    let jobs: usize = knob("SANDCRON_BENCH_ACCURACY_JOBS", 1000);
    let variants: String = knob("SANDCRON_BENCH_ACCURACY_VARIANTS", "aligned,jittered".into());
    let seconds = knobs.seconds;
    println!(
        "\n== 1. trigger accuracy: {jobs} jobs every = \"1s\", {seconds} s each variant, \
         {} workers, {} cores",
        knobs.workers,
        cores()
    );
    println!("   store: {}", describe_store(&knobs.dir));
    println!("   lag = started_at_ms - due (due = slot_ms; jittered: slot_ms + the job's jitter)");
    println!(
        "\n   {:<9} {:>7} {:>8} {:>8} {:>7} {:>7} {:>7}   exactly once per slot",
        "variant", "runs", "jobs x s", "per job", "p50 ms", "p99 ms", "max ms"
    );
    let mut notes = Vec::new();
    for variant in variants.split(',').map(str::trim).filter(|v| !v.is_empty()) {
        let jitter = match variant {
            "aligned" => None,
            "jittered" => Some(Duration::from_secs(1)),
            other => panic!("unknown accuracy variant {other:?} (aligned, jittered)"),
        };
        let mut host = Host::start(knobs, &format!("accuracy-{variant}"));
        let manifest = match jitter {
            None => "every = \"1s\"\n".to_string(),
            Some(_) => "every = \"1s\"\njitter = \"1s\"\n".to_string(),
        };
        let defs: Vec<Arc<JobDef>> =
            (0..jobs).map(|i| host.def(&format!("acc-{i:05}"), &manifest)).collect();
        let registered = host.register(&defs);
        let calls0 = host.timed.snapshot();
        take_start_lags();
        let floor_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let floor = bare_wake_floor(floor_stop.clone());
        std::thread::sleep(Duration::from_secs(seconds));
        let stop_ms = now_ms();
        let calls1 = host.timed.snapshot();
        let mut exact_lags = take_start_lags();
        floor_stop.store(true, Ordering::Relaxed);
        let mut floor = floor.join().expect("the floor thread");
        host.shut_down();
        let slow: u64 = calls1.iter().zip(&calls0).map(|(a, b)| a.4 - b.4).sum();
        let slowest = calls1.iter().map(|c| c.3).max().unwrap_or_default();
        let runs = host.all_runs();
        let epochs: HashMap<String, i64> = host
            .store
            .jobs()
            .expect("job rows")
            .into_iter()
            .map(|row| (row.name, row.schedule_epoch_ms))
            .collect();
        let schedules: HashMap<&str, &JobDef> =
            defs.iter().map(|d| (d.spec.name.as_str(), d.as_ref())).collect();

        let due = |run: &RunRecord| -> i64 {
            let slot = run.slot_ms.expect("scheduled runs have a slot");
            let Some(bound) = jitter else { return slot };
            let schedule = schedules[run.job.as_str()].spec.timing.schedule.as_ref().unwrap();
            let at = DateTime::<Utc>::from_timestamp_millis(slot).unwrap();
            slot + jitter_delay(&run.job, at, bound, schedule.next_after(at)).as_millis() as i64
        };
        let mut lags = Vec::with_capacity(runs.len());
        let mut per_slot: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
        let mut per_job: HashMap<&str, Vec<i64>> = HashMap::new();
        let mut not_succeeded: BTreeMap<String, usize> = BTreeMap::new();
        let mut scheduled_at_off = 0usize;
        let mut skipped = 0usize;
        for run in &runs {
            let Some(slot) = run.slot_ms else { continue };
            per_job.entry(run.job.as_str()).or_default().push(slot);
            if run.status == RunStatus::Skipped {
                skipped += 1;
            } else if run.status != RunStatus::Succeeded {
                let key = format!("{} {}", run.status, run.reason);
                *not_succeeded.entry(key).or_default() += 1;
            }
            if run.scheduled_at_ms != due(run) {
                scheduled_at_off += 1;
            }
            if let Some(started) = run.started_at_ms {
                let lag = started - due(run);
                lags.push(lag);
                let entry = per_slot.entry(slot).or_insert((i64::MAX, i64::MIN));
                entry.0 = entry.0.min(lag);
                entry.1 = entry.1.max(lag);
            }
        }
        // Exactly once: every slot in (schedule epoch, stop - 1 s] present once, none twice,
        // none outside (epoch, stop + 1 s].
        let (mut missing, mut duplicates, mut outside) = (0usize, 0usize, 0usize);
        let (mut fewest, mut most) = (usize::MAX, 0usize);
        for def in &defs {
            let name = def.spec.name.as_str();
            let mut slots = per_job.remove(name).unwrap_or_default();
            fewest = fewest.min(slots.len());
            most = most.max(slots.len());
            slots.sort_unstable();
            let before = slots.len();
            slots.dedup();
            duplicates += before - slots.len();
            let epoch = epochs.get(name).copied().unwrap_or(i64::MAX);
            outside += slots.iter().filter(|&&s| s <= epoch || s > stop_ms + 1000).count();
            let first = (epoch.div_euclid(1000) + 1) * 1000;
            let expected = (first..=stop_ms - 1000).step_by(1000);
            missing += expected.filter(|s| slots.binary_search(s).is_err()).count();
        }
        let exact = missing == 0 && duplicates == 0 && outside == 0 && not_succeeded.is_empty();
        let verdict = if exact && skipped > 0 {
            format!("yes ({skipped} of them recorded as skipped:overlap, not run)")
        } else if exact {
            "yes".to_string()
        } else {
            format!(
                "NO: {missing} missing, {duplicates} duplicate, {outside} outside the window, \
                 not succeeded: {not_succeeded:?}"
            )
        };
        let early = lags.iter().filter(|&&lag| lag < 0).count();
        if early > 0 {
            notes.push(format!(
                "   {variant}: {early} runs started BEFORE their due time (lag < 0, min {} ms)",
                lags.iter().min().unwrap_or(&0)
            ));
        }
        let (p50, p99, max) = dist(&mut lags);
        println!(
            "   {variant:<9} {:>7} {:>8} {:>8} {p50:>7} {p99:>7} {max:>7}   {verdict}",
            lags.len(),
            jobs as u64 * seconds,
            format!("{fewest}..{most}"),
        );
        notes.push(format!(
            "   {variant}: µs start lag ({} starts, as logged): {}",
            exact_lags.len(),
            describe_us(&mut exact_lags)
        ));
        notes.push(format!(
            "   {variant}: the machine's floor meanwhile, a bare thread's wake-up ({} sleeps of \
             2-10 ms): {}",
            floor.len(),
            describe_us(&mut floor).replace(" within", " on time within")
        ));
        if jitter.is_none() && !per_slot.is_empty() {
            let mut first: Vec<i64> = per_slot.values().map(|v| v.0).collect();
            let mut last: Vec<i64> = per_slot.values().map(|v| v.1).collect();
            let (f50, f99, fmax) = dist(&mut first);
            let (l50, l99, lmax) = dist(&mut last);
            notes.push(format!(
                "   {variant}: per slot instant ({} slots), first start lag p50 {f50} / p99 {f99} \
                 / max {fmax} ms (wake-up + dispatch + claim); last start lag p50 {l50} / p99 {l99} / max \
                 {lmax} ms (the burst of {jobs} drained)",
                per_slot.len()
            ));
        }
        if scheduled_at_off > 0 {
            notes.push(format!(
                "   {variant}: {scheduled_at_off} runs have scheduled_at_ms != slot + jitter \
                 (the ledger doc says scheduled_at includes jitter)"
            ));
        }
        notes.push(format!(
            "   {variant}: {jobs} jobs registered in {:.0} ms; while measured, {slow} ledger calls \
             took over 1 ms (slowest {:.1} ms, lock wait included); {}",
            registered.as_secs_f64() * 1e3,
            slowest.as_secs_f64() * 1e3,
            log_report().replace('\n', "\n   ")
        ));
    }
    println!();
    for note in notes {
        println!("{note}");
    }
    println!("   goal: p99 <= 1 ms, every slot exactly once");
}

/// Every scheduled start's lag in µs, as the host logs it (`lag_ms` of its "run started"
/// event, measured from the clock's µs at the worker start): the exact distribution, where
/// the `start_lag_seconds` histogram only has buckets from 0.5 ms up.
static START_LAGS_US: Mutex<Vec<i64>> = Mutex::new(Vec::new());

struct StartLags;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for StartLags {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        #[derive(Default)]
        struct Fields {
            lag_ms: Option<f64>,
            scheduled: bool,
        }
        impl tracing::field::Visit for Fields {
            fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
                if field.name() == "lag_ms" {
                    self.lag_ms = Some(value);
                }
            }
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "trigger" {
                    self.scheduled = value == "schedule";
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        if let (Some(lag_ms), true) = (fields.lag_ms, fields.scheduled) {
            let mut lags = START_LAGS_US.lock().unwrap_or_else(|p| p.into_inner());
            lags.push((lag_ms * 1e3).round() as i64);
        }
    }
}

/// The lags captured since the last call.
fn take_start_lags() -> Vec<i64> {
    std::mem::take(&mut *START_LAGS_US.lock().unwrap_or_else(|p| p.into_inner()))
}

/// p50 / p90 / p99 / p99.9 / max in ms, and the share within 0.5 and 1 ms, of µs values.
fn describe_us(values: &mut [i64]) -> String {
    if values.is_empty() {
        return "none".into();
    }
    values.sort_unstable();
    let ms = |q: f64| percentile(values, q) as f64 / 1e3;
    let share =
        |bound: i64| 100.0 * values.partition_point(|&v| v <= bound) as f64 / values.len() as f64;
    format!(
        "p50 {:.3} / p90 {:.3} / p99 {:.3} / p99.9 {:.3} / max {:.3} ms; {:.2}% within 0.5 ms, \
         {:.2}% within 1 ms",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        values[values.len() - 1] as f64 / 1e3,
        share(500),
        share(1000)
    )
}

/// The machine's own floor, measured beside the host in the same window: a bare thread
/// (1 ns timer slack, as the scheduler's alarm thread) sleeping to a deadline 2-10 ms
/// ahead, again and again; returns how late each wake-up was, in µs. On a VM, a halted
/// vCPU's wake-up is up to the hypervisor, and no scheduler can start a run before its
/// thread is running again.
fn bare_wake_floor(stop: Arc<std::sync::atomic::AtomicBool>) -> std::thread::JoinHandle<Vec<i64>> {
    std::thread::spawn(move || {
        #[cfg(target_os = "linux")]
        #[allow(unsafe_code)]
        // SAFETY: PR_SET_TIMERSLACK takes a plain integer and affects only this thread.
        unsafe {
            libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
        }
        let (mut late, mut seed) = (Vec::new(), 0x9e37_79b9_u64);
        while !stop.load(Ordering::Relaxed) {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let deadline = Instant::now() + Duration::from_micros(2000 + (seed >> 33) % 8000);
            std::thread::sleep(deadline - Instant::now());
            late.push(Instant::now().duration_since(deadline).as_micros() as i64);
        }
        late
    })
}

// ---------------------------------------------------------------------------------------
// 2. Durable throughput.

/// A claim shaped like the scheduler's (`run.rs`), for the isolated ledger loop.
fn bench_claim(i: u64, now: i64) -> NewRun {
    let job = format!("tp-{:05}", i % 10_000);
    let slot_ms = (now / 1000 + (i / 10_000) as i64) * 1000;
    NewRun {
        run_id: format!("{now:011x}-{:08x}-{i:x}", 0x1234_5678),
        idempotency_key: format!("{job}@{slot_ms}"),
        job,
        slot_ms: Some(slot_ms),
        attempt: 1,
        trigger: sandcron::job::TriggerKind::Schedule,
        version: "0".repeat(64),
        owner: format!("bench-{}", std::process::id()),
        scheduled_at_ms: slot_ms,
        status: RunStatus::Running,
        reason: None,
        started_at_ms: Some(now),
    }
}

fn bench_finish(now: i64) -> RunFinish {
    RunFinish {
        status: RunStatus::Succeeded,
        reason: String::new(),
        outcome: "succeeded".into(),
        finished_at_ms: now,
        duration_ms: 0.05,
        fuel_used: Some(12_345),
        peak_memory: Some(1 << 20),
        output: "ok".into(),
        logs_json: "[]".into(),
        retry_at_ms: None,
        started_at_ms: Some(now),
        net: None,
    }
}

/// What `persist_job` writes after every completed run.
fn bench_job_row(run: &NewRun, now: i64) -> JobRow {
    JobRow {
        name: run.job.clone(),
        version: run.version.clone(),
        schedule: "every 1s".into(),
        paused: false,
        pause_note: String::new(),
        breaker: sandcron::words::BreakerState::Closed,
        consecutive_failures: 0,
        schedule_epoch_ms: now,
        updated_at_ms: now,
    }
}

/// One isolated loop's result.
struct Alone {
    what: String,
    ops: u64,
    wall: Duration,
    /// Threads the loop ran on (per-op cost = wall x threads / ops).
    threads: usize,
    /// CPU the loop used (its thread, or the whole process for the guest pool).
    cpu: Duration,
    /// Of which in the kernel, where known.
    sys: Option<Duration>,
    /// Per-op wall latency p50 / p99 / max, where measured.
    latency: Option<(Duration, Duration, Duration)>,
    /// Calls (or batches) that took over 5 ms.
    stalls: usize,
}

impl Alone {
    fn each_us(&self) -> f64 {
        self.wall.as_secs_f64() * 1e6 * self.threads as f64 / self.ops as f64
    }
    fn per_second(&self) -> f64 {
        self.ops as f64 / self.wall.as_secs_f64()
    }
    fn cpu_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.ops as f64
    }
}

/// Ledger claim + finish on one thread for `for_how_long`, shaped like the scheduler's
/// calls; with `upsert_job`, also the job-row write the scheduler does after every run.
fn ledger_loop(store: &SqliteStore, for_how_long: Duration, upsert_job: bool) -> Alone {
    let offset = if upsert_job { 1 << 40 } else { 0 };
    let mut latencies = Vec::new();
    let (cpu0, started) = (thread_cpu(), Instant::now());
    while started.elapsed() < for_how_long {
        let op = Instant::now();
        let now = now_ms();
        let claim = bench_claim(offset + latencies.len() as u64, now);
        assert_eq!(store.claim(&claim).expect("claim"), Claim::Claimed);
        assert!(store.finish(&claim.run_id, &bench_finish(now)).expect("finish"));
        if upsert_job {
            store.upsert_job(&bench_job_row(&claim, now)).expect("upsert job");
        }
        latencies.push(op.elapsed());
    }
    let (wall, cpu) = (started.elapsed(), thread_cpu().saturating_sub(cpu0));
    latencies.sort_unstable();
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    Alone {
        what: if upsert_job {
            "ledger claim + finish + job upsert, 1 thread".into()
        } else {
            "ledger claim + finish, 1 thread".into()
        },
        ops: latencies.len() as u64,
        wall,
        threads: 1,
        cpu,
        sys: None,
        latency: Some((pick(0.5), pick(0.99), *latencies.last().unwrap())),
        stalls: latencies.iter().filter(|l| **l > Duration::from_millis(5)).count(),
    }
}

/// The same claims and finishes in batches (`claim_many`, then `finish_many`): what a
/// scheduler that claims a burst together and records completions together would pay.
fn ledger_batch_loop(store: &SqliteStore, for_how_long: Duration, batch: u64) -> Alone {
    let offset = 2 << 40;
    let mut ops = 0u64;
    let mut latencies = Vec::new();
    let (cpu0, started) = (thread_cpu(), Instant::now());
    while started.elapsed() < for_how_long {
        let op = Instant::now();
        let now = now_ms();
        let claims: Vec<NewRun> = (0..batch).map(|i| bench_claim(offset + ops + i, now)).collect();
        let answers = store.claim_many(&claims).expect("claim batch");
        assert!(answers.iter().all(|c| *c == Claim::Claimed));
        let finishes: Vec<(String, RunFinish)> =
            claims.into_iter().map(|c| (c.run_id, bench_finish(now))).collect();
        assert!(store.finish_many(&finishes).expect("finish batch").iter().all(|done| *done));
        ops += batch;
        latencies.push(op.elapsed());
    }
    let (wall, cpu) = (started.elapsed(), thread_cpu().saturating_sub(cpu0));
    latencies.sort_unstable();
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    Alone {
        what: format!("ledger claim_many + finish_many, batches of {batch}"),
        ops,
        wall,
        threads: 1,
        cpu,
        sys: None,
        latency: Some((pick(0.5), pick(0.99), *latencies.last().unwrap())),
        stalls: latencies.iter().filter(|l| **l > Duration::from_millis(5)).count(),
    }
}

/// `Runtime::execute` of the no-op probe, `tasks` loops at once on the guest pool.
fn execute_loop(host: &Host, tasks: usize, for_how_long: Duration) -> Alone {
    let spec = Arc::new(host.def("exec", "").spec.clone());
    let (user0, sys0) = process_user_sys();
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let (runtime, code, spec) = (host.runtime.clone(), host.code.clone(), spec.clone());
            let state = host.store.clone() as Arc<dyn StateStore>;
            host.guests.spawn(async move {
                let mut n = 0u64;
                while started.elapsed() < for_how_long {
                    let request = RunRequest::manual("exec", None);
                    let report = runtime.execute(&code, &spec, Some(state.clone()), &request).await;
                    assert_eq!(report.outcome, RunOutcome::Succeeded, "{report:?}");
                    n += 1;
                }
                n
            })
        })
        .collect();
    let ops = handles.into_iter().map(|h| host.guests.block_on(h).expect("execute loop")).sum();
    let wall = started.elapsed();
    let (user1, sys1) = process_user_sys();
    let sys = sys1.saturating_sub(sys0);
    Alone {
        what: format!("Runtime::execute, {tasks} task(s) on the guest pool"),
        ops,
        wall,
        threads: tasks,
        cpu: user1.saturating_sub(user0) + sys,
        sys: Some(sys),
        latency: None,
        stalls: 0,
    }
}

fn throughput(knobs: &Knobs) {
    let jobs: usize = knob("SANDCRON_BENCH_THROUGHPUT_JOBS", 20_000);
    let jitter: String = knob("SANDCRON_BENCH_THROUGHPUT_JITTER", String::new());
    let overlaps: String = knob("SANDCRON_BENCH_THROUGHPUT_OVERLAP", "buffer-all".into());
    let seconds = knobs.seconds;
    println!(
        "\n== 2. durable throughput: {jobs} jobs every = \"1s\"{} (offered {jobs} runs/s), \
         {} workers, {} cores, load average {}",
        if jitter.is_empty() { String::new() } else { format!(", jitter = \"{jitter}\"") },
        knobs.workers,
        cores(),
        loadavg()
    );
    println!("   store: {}", describe_store(&knobs.dir));

    // The parts alone first, on an idle host (no jobs), same process and machine.
    let alone_for = Duration::from_secs((seconds / 5).clamp(1, 3));
    let alone = {
        let host = Host::start(knobs, "throughput-alone");
        let ledger_store = SqliteStore::open(&host.dir.join("ledger-only.db")).expect("open");
        [
            execute_loop(&host, 1, alone_for),
            execute_loop(&host, cores(), alone_for),
            ledger_loop(&ledger_store, alone_for, false),
            ledger_loop(&ledger_store, alone_for, true),
            ledger_batch_loop(&ledger_store, alone_for, 64),
        ]
    };

    let mut summary = Vec::new();
    for overlap in overlaps.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        summary.push((overlap.to_string(), throughput_run(knobs, jobs, &jitter, overlap)));
    }

    println!(
        "\n   the parts alone ({:.0} s each, on an idle host, same process):",
        alone_for.as_secs_f64()
    );
    println!(
        "   {:<50} {:>9} {:>10} {:>10} {:>9}   latency (per call or batch) p50 / p99 / max",
        "loop", "per s", "µs each", "cpu µs", "sys %"
    );
    for a in &alone {
        let sys = a.sys.map_or("-".into(), |s| {
            format!("{:.0}%", s.as_secs_f64() * 100.0 / a.cpu.as_secs_f64().max(1e-9))
        });
        let latency = a.latency.map_or(String::new(), |(p50, p99, max)| {
            format!(
                "{:.0} µs / {:.0} µs / {:.1} ms; {} over 5 ms",
                p50.as_secs_f64() * 1e6,
                p99.as_secs_f64() * 1e6,
                max.as_secs_f64() * 1e3,
                a.stalls
            )
        });
        println!(
            "   {:<50} {:>9.0} {:>10.1} {:>10.1} {:>9}   {latency}",
            a.what,
            a.per_second(),
            a.each_us(),
            a.cpu_us(),
            sys
        );
    }

    println!("\n   summary (goal >= 10000 succeeded runs/s on 2 cores):");
    println!(
        "   {:<12} {:>10} {:>10} {:>8} {:>12} {:>14} {:>12}",
        "overlap", "runs/s", "skipped/s", "CPU %", "CPU µs/run", "ledger µs/run", "lag p99 ms"
    );
    for (overlap, r) in &summary {
        println!(
            "   {overlap:<12} {:>10.0} {:>10.0} {:>7.0}% {:>12.0} {:>14.0} {:>12}",
            r.rate,
            r.skipped,
            r.busy * 100.0,
            r.cpu_us,
            r.ledger_us,
            r.lag_p99
        );
    }
    println!(
        "   ceilings alone: execute on {} threads {:.0}/s; store serial, one commit per call \
         (claim + finish + job upsert) {:.0}/s; store batched by 64 {:.0}/s",
        cores(),
        alone[1].per_second(),
        alone[3].per_second(),
        alone[4].per_second()
    );
}

/// One throughput measurement's headline figures.
struct Throughput {
    rate: f64,
    skipped: f64,
    busy: f64,
    cpu_us: f64,
    ledger_us: f64,
    lag_p99: i64,
}

fn throughput_run(knobs: &Knobs, jobs: usize, jitter: &str, overlap: &str) -> Throughput {
    let seconds = knobs.seconds;
    let warmup = Duration::from_secs(2);
    let why = match overlap {
        "buffer-all" => "a slot that finds its job busy waits in memory: every due slot runs",
        "skip" => "the default: a slot that finds its job busy is recorded as skipped",
        _ => "",
    };
    println!("\n   --- overlap = \"{overlap}\" ({why})");
    let mut host = Host::start(knobs, &format!("throughput-{overlap}"));
    let mut manifest = format!("every = \"1s\"\noverlap = \"{overlap}\"\n");
    if !jitter.is_empty() {
        manifest.push_str(&format!("jitter = \"{jitter}\"\n"));
    }
    let defs: Vec<Arc<JobDef>> =
        (0..jobs).map(|i| host.def(&format!("tp-{i:05}"), &manifest)).collect();
    let registered = host.register(&defs);
    std::thread::sleep(warmup);
    let _ = log_report();
    let (cpu0, calls0, us0) = (CpuSnapshot::take(), host.timed.snapshot(), process_user_sys());
    let (t0, wall0) = (now_ms(), Instant::now());
    std::thread::sleep(Duration::from_secs(seconds));
    let (cpu1, calls1, us1) = (CpuSnapshot::take(), host.timed.snapshot(), process_user_sys());
    let (t1, wall) = (now_ms(), wall0.elapsed());
    let logs = log_report();
    let upsert = host.upsert_latency("every = \"1h\"\n", Duration::from_secs(20));
    host.shut_down();
    let cpu = cpu1.since(&cpu0);
    let sys = us1.1.saturating_sub(us0.1);
    let runs = host.all_runs();
    let in_window = |at: Option<i64>| at.is_some_and(|at| (t0..t1).contains(&at));
    let succeeded = runs
        .iter()
        .filter(|r| r.status == RunStatus::Succeeded && in_window(r.finished_at_ms))
        .count();
    let skipped = runs
        .iter()
        .filter(|r| r.status == RunStatus::Skipped && (t0..t1).contains(&r.scheduled_at_ms))
        .count();
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    for run in runs.iter().filter(|r| (t0..t1).contains(&r.scheduled_at_ms)) {
        let key = format!("{} {}", run.status, run.reason).trim().to_string();
        let key = if run.trigger == sandcron::job::TriggerKind::Schedule {
            key
        } else {
            format!("{key} [{}]", run.trigger)
        };
        *by_status.entry(key).or_default() += 1;
    }
    let mut lags: Vec<i64> = runs
        .iter()
        .filter(|r| in_window(r.started_at_ms))
        .filter_map(|r| Some(r.started_at_ms? - r.scheduled_at_ms))
        .collect();
    let (lag50, lag99, lagmax) = dist(&mut lags);
    let window = (t1 - t0) as f64 / 1e3;
    let rate = succeeded as f64 / window;
    println!(
        "   {jobs} jobs registered in {:.1} s; {:.0} s warm-up, then {window:.1} s measured",
        registered.as_secs_f64(),
        warmup.as_secs_f64()
    );
    println!(
        "   {:<50} {:>9.0} /s   ({succeeded} runs)",
        "SUCCEEDED RUNS finished in the window", rate
    );
    for (status, count) in &by_status {
        let label = format!("slots due in the window: {status}");
        println!("   {label:<50} {:>9.0} /s", *count as f64 / window);
    }
    println!("   {:<50} p50 {lag50} / p99 {lag99} / max {lagmax} ms", "start lag (started - due)");
    println!("   log: {}", logs.replace('\n', "\n   "));
    println!(
        "   {:<50} {}",
        "one more job upserted under this load, taken in",
        upsert
            .map_or("NOT within 20 s".into(), |d| format!("after {:.0} ms", d.as_secs_f64() * 1e3))
    );

    let per_run = |t: Duration| t.as_secs_f64() * 1e6 / succeeded.max(1) as f64;
    let busy = cpu.total.as_secs_f64() / (wall.as_secs_f64() * cores() as f64);
    println!(
        "\n   CPU in the window: {:.0}% of {} cores busy, {:.0}% of it in the kernel",
        busy * 100.0,
        cores(),
        sys.as_secs_f64() * 100.0 / cpu.total.as_secs_f64().max(1e-9)
    );
    println!("   {:<50} {:>9} {:>12}", "thread group", "cpu s", "µs per run");
    let named: Duration = cpu.groups.values().sum();
    let exited = cpu.total.saturating_sub(named);
    let groups = cpu.groups.iter().map(|(g, t)| (g.to_string(), *t));
    let extra = [
        ("exited threads / tick rounding".to_string(), exited),
        ("process total".to_string(), cpu.total),
    ];
    for (group, t) in groups.chain(extra) {
        println!("   {group:<50} {:>9.2} {:>12.1}", t.as_secs_f64(), per_run(t));
    }

    println!("\n   time inside the ledger in the window (wall, lock wait included):");
    println!(
        "   {:<14} {:>9} {:>10} {:>12} {:>10} {:>9} {:>10}",
        "call", "calls/s", "µs each", "µs per run", "max ms", ">1 ms", "busy %"
    );
    let mut ledger_us = 0.0;
    for (before, after) in calls0.iter().zip(&calls1) {
        let count = after.1 - before.1;
        if count == 0 {
            continue;
        }
        let total = after.2.saturating_sub(before.2);
        ledger_us += per_run(total);
        println!(
            "   {:<14} {:>9.0} {:>10.1} {:>12.1} {:>10.1} {:>9} {:>9.0}%",
            after.0,
            count as f64 / window,
            total.as_secs_f64() * 1e6 / count as f64,
            per_run(total),
            after.3.as_secs_f64() * 1e3,
            after.4 - before.4,
            total.as_secs_f64() * 100.0 / wall.as_secs_f64()
        );
    }
    println!(
        "   {:<14} {:>9} {:>10} {:>12.1}   (one connection behind one lock: a busy % sum \
         over 100% means callers queue for it)",
        "all", "", "", ledger_us
    );
    Throughput {
        rate,
        skipped: skipped as f64 / window,
        busy,
        cpu_us: per_run(cpu.total),
        ledger_us,
        lag_p99: lag99,
    }
}

// ---------------------------------------------------------------------------------------
// 3. Memory.

fn memory(knobs: &Knobs) {
    let jobs: usize = knob("SANDCRON_BENCH_MEMORY_JOBS", 100_000);
    let kind: String = knob("SANDCRON_BENCH_MEMORY_SCHEDULE", "every".into());
    let now = DateTime::<Utc>::from_timestamp_millis(now_ms()).expect("a valid now");
    let now_s = now.timestamp();
    // Slots at least 10 minutes ahead, so nothing fires while we measure.
    let (manifest, what): (Box<dyn Fn(usize) -> String>, String) = match kind.as_str() {
        "every" => {
            let base = (now_s + 600).rem_euclid(3600);
            (
                Box::new(move |i| {
                    let phase = (base + (i % 1800) as i64) % 3600;
                    format!("every = \"1h\"\nphase = \"{phase}s\"\n")
                }),
                "every = \"1h\", 1800 distinct phases 10-40 min ahead".into(),
            )
        }
        "cron" => {
            let month = (now.month0() + 6) % 12 + 1;
            (
                Box::new(move |i| {
                    let (day, secs) = (1 + (i / 86_400) % 28, i % 86_400);
                    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
                    format!("schedule = \"{s} {m} {h} {day} {month} *\"\n")
                }),
                format!("yearly 6-field cron, distinct times in month {month}"),
            )
        }
        other => panic!("SANDCRON_BENCH_MEMORY_SCHEDULE={other:?}: expected every or cron"),
    };
    println!("\n== 3. memory: {jobs} schedules ({what})");
    println!("   store: {}", describe_store(&knobs.dir));
    let host = Host::start(knobs, "memory");
    std::thread::sleep(Duration::from_millis(300));
    let rss0 = status_mib("VmRSS");
    let started = Instant::now();
    let defs: Vec<Arc<JobDef>> =
        (0..jobs).map(|i| host.def(&format!("mem-{i:06}"), &manifest(i))).collect();
    let built = started.elapsed();
    let rss1 = status_mib("VmRSS");
    let registered = host.register(&defs);
    std::thread::sleep(Duration::from_millis(300));
    let rss2 = status_mib("VmRSS");
    drop(defs);
    let rss3 = status_mib("VmRSS");
    let runs = host.all_runs().len();
    println!("\n   {:<52} {:>10} {:>10}", "stage", "VmRSS MiB", "delta");
    let rows = [
        ("host up: runtime, store, scheduler, no jobs", rss0),
        (&*format!("{jobs} JobDefs built (parsed manifests, shared code)"), rss1),
        ("scheduler has queued them all", rss2),
        ("bench's own Vec of Arc<JobDef> dropped", rss3),
    ];
    let mut previous = rss0;
    for (stage, rss) in rows {
        println!("   {stage:<52} {rss:>10.1} {:>+10.1}", rss - previous);
        previous = rss;
    }
    println!(
        "\n   per schedule: {:.2} KiB (JobDef {:.2} KiB + scheduler {:.2} KiB); host RSS \
         {:.1} MB = {rss2:.1} MiB, peak (VmHWM) {:.1} MiB",
        (rss2 - rss0) * 1024.0 / jobs as f64,
        (rss1 - rss0) * 1024.0 / jobs as f64,
        (rss2 - rss1) * 1024.0 / jobs as f64,
        rss2 * 1.048_576,
        status_mib("VmHWM")
    );
    println!(
        "   built in {:.1} s, registered (scheduler upserts) in {:.1} s ({:.0} jobs/s); runs \
         recorded meanwhile: {runs}",
        built.as_secs_f64(),
        registered.as_secs_f64(),
        jobs as f64 / registered.as_secs_f64()
    );
    println!("   goal: <= 300 MB host RSS with {jobs} schedules");
}

// ---------------------------------------------------------------------------------------

fn main() {
    // As in the sandcron binary: no Rust backtraces in wasmtime's internal errors.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: first thing in main, single-threaded.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("RUST_LIB_BACKTRACE", "0")
        };
    }
    let Ok(parts) = std::env::var("SANDCRON_BENCH_PART") else {
        // Each part in a fresh process, so one part's allocations and threads do not
        // show up in the next one's RSS and CPU figures.
        let exe = std::env::current_exe().expect("own path");
        let mut failed = Vec::new();
        for part in PARTS {
            let status = std::process::Command::new(&exe)
                .env("SANDCRON_BENCH_PART", part)
                .status()
                .expect("run a part");
            if !status.success() {
                failed.push(part);
            }
        }
        if !failed.is_empty() {
            eprintln!("failed parts: {failed:?}");
            std::process::exit(1);
        }
        return;
    };
    let filter = std::env::var("SANDCRON_LOG").unwrap_or_else(|_| "warn".into());
    {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        use tracing_subscriber::{Layer, filter::Targets};
        let log = tracing_subscriber::fmt::layer()
            .with_writer(|| LogTally)
            .with_ansi(false)
            .with_filter(tracing_subscriber::EnvFilter::new(filter));
        let lags = StartLags.with_filter(
            Targets::new().with_target("sandcron::scheduler::attempt", tracing::Level::INFO),
        );
        tracing_subscriber::registry().with(log).with(lags).init();
    }
    let knobs = Knobs::from_env();
    for part in parts.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "accuracy" => accuracy(&knobs),
            "throughput" => throughput(&knobs),
            "memory" => memory(&knobs),
            other => panic!("SANDCRON_BENCH_PART={other:?}: expected one of {PARTS:?}"),
        }
    }
}
