//! The scheduler's three goals, measured through the real library: `scheduler::run` on its
//! own tokio runtime, guests on a second one (as `sandcron serve` wires them), the real
//! wasmtime [`Runtime`] and a fresh [`SqliteStore`] file on the normal disk.
//!
//! 1. **Trigger accuracy** (goal p99 ≤ 1 ms): 1,000 jobs `every = "1s"` for N seconds; lag =
//!    `started_at_ms - slot_ms` of every run, read back from the ledger, and a check that
//!    every slot ran exactly once. Two variants: `aligned` (all 1,000 share each second: the
//!    issue's case) and `jittered` (`jitter = "1s"`, the same load spread over the second;
//!    lag measured from the jittered due time), which separates timer accuracy from
//!    queueing behind a burst.
//! 2. **Durable throughput** (goal ≥ 10,000 runs/s on 2 cores): many jobs `every = "1s"`;
//!    the figure is succeeded rows finished per second of wall time, i.e. runs that were
//!    claimed, executed in wasmtime and recorded. Beside it, in the same process: CPU per
//!    run by thread (scheduler / guests), and isolated loops of `Runtime::execute` only and
//!    of ledger claim+finish only, to say what limits the rate.
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
//! - `SANDCRON_BENCH_PART=accuracy|throughput|memory` (comma-separated): only these parts.
//! - `SANDCRON_BENCH_SECONDS=N`: measured seconds of parts 1 and 2 (default 10).
//! - `SANDCRON_BENCH_ACCURACY_JOBS` (1000), `SANDCRON_BENCH_ACCURACY_VARIANTS`
//!   (`aligned,jittered`), `SANDCRON_BENCH_THROUGHPUT_JOBS` (10000: the goal's rate),
//!   `SANDCRON_BENCH_THROUGHPUT_JITTER` (e.g. `1s` to spread each second's burst; default
//!   none), `SANDCRON_BENCH_MEMORY_JOBS` (100000), `SANDCRON_BENCH_MEMORY_SCHEDULE`
//!   (`every` or `cron`, default `every`).
//! - `SANDCRON_BENCH_WORKERS`: the host-wide worker limit (default 2 x cores, as `serve`).
//! - `SANDCRON_BENCH_DIR`: where the SQLite files go (default the temp dir, normally /tmp).
//! - `SANDCRON_LOG`: log filter, as the binary (default `warn`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Datelike, Utc};
use sandcron::config::{HostLimits, parse_manifest};
use sandcron::job::{RunOutcome, RunRequest};
use sandcron::runtime::{LoadedJob, Runtime, RuntimeConfig};
use sandcron::schedule::jitter_delay;
use sandcron::scheduler::{self, JobDef, JobEvent, SchedulerConfig, Services, SystemClock};
use sandcron::store::{
    Claim, JobRow, Ledger, NewRun, RunFilter, RunFinish, RunRecord, RunStatus, SqliteStore,
    StateStore,
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
struct Host {
    dir: PathBuf,
    store: Arc<SqliteStore>,
    runtime: Arc<Runtime>,
    code: Arc<LoadedJob>,
    /// The guest pool: tokio's default size (one thread per core), as `serve`.
    guests: tokio::runtime::Runtime,
    /// The scheduler's runtime: two workers, as `serve`'s host runtime.
    sched: tokio::runtime::Runtime,
    events: mpsc::Sender<JobEvent>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
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
        let services = Arc::new(Services {
            runtime: runtime.clone(),
            ledger: store.clone() as Arc<dyn Ledger>,
            state: store.clone() as Arc<dyn StateStore>,
            clock: Arc::new(SystemClock),
            owner: Arc::from(format!("bench-{}", std::process::id())),
        });
        let (events, events_rx) = mpsc::channel(256);
        let (stop, stop_rx) = oneshot::channel::<()>();
        let config = SchedulerConfig {
            workers: knobs.workers,
            grace: Duration::from_secs(60),
            guests: guests.handle().clone(),
        };
        let shutdown = async move {
            let _ = stop_rx.await;
        };
        let task = sched.spawn(scheduler::run(config, services, events_rx, shutdown));
        Host {
            dir,
            store,
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
    /// (events are handled in order, and each upsert writes the job's row).
    fn register(&self, defs: &[Arc<JobDef>]) -> Duration {
        let started = Instant::now();
        for def in defs {
            self.events.blocking_send(JobEvent::Upsert(def.clone())).expect("scheduler alive");
        }
        if let Some(last) = defs.last() {
            while self.store.job(&last.spec.name).expect("job row").is_none() {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        started.elapsed()
    }

    /// Resolves the shutdown future and waits for the scheduler to stop (runs in flight
    /// finish within the grace period).
    fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            self.sched.block_on(task).expect("scheduler task");
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

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
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
        std::thread::sleep(Duration::from_secs(seconds));
        let stop_ms = now_ms();
        host.shut_down();
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
        for run in &runs {
            let Some(slot) = run.slot_ms else { continue };
            per_job.entry(run.job.as_str()).or_default().push(slot);
            if run.status != RunStatus::Succeeded {
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
        let verdict = if exact {
            "yes".to_string()
        } else {
            format!(
                "NO: {missing} missing, {duplicates} duplicate, {outside} outside the window, \
                 not succeeded: {not_succeeded:?}"
            )
        };
        let (p50, p99, max) = dist(&mut lags);
        println!(
            "   {variant:<9} {:>7} {:>8} {:>8} {p50:>7} {p99:>7} {max:>7}   {verdict}",
            lags.len(),
            jobs as u64 * seconds,
            format!("{fewest}..{most}"),
        );
        if jitter.is_none() && !per_slot.is_empty() {
            let mut first: Vec<i64> = per_slot.values().map(|v| v.0).collect();
            let mut last: Vec<i64> = per_slot.values().map(|v| v.1).collect();
            let (f50, f99, fmax) = dist(&mut first);
            let (l50, l99, lmax) = dist(&mut last);
            notes.push(format!(
                "   {variant}: per slot instant ({} slots), first start lag p50 {f50} / p99 {f99} \
                 / max {fmax} ms (timer wake-up); last start lag p50 {l50} / p99 {l99} / max \
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
            "   {variant}: {jobs} jobs registered in {:.0} ms",
            registered.as_secs_f64() * 1e3
        ));
    }
    println!();
    for note in notes {
        println!("{note}");
    }
    println!("   goal: p99 <= 1 ms, every slot exactly once");
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
        trigger: "schedule".into(),
        version: "0".repeat(64),
        owner: format!("bench-{}", std::process::id()),
        scheduled_at_ms: slot_ms,
        status: RunStatus::Running,
        reason: String::new(),
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
        breaker: "closed".into(),
        breaker_until_ms: None,
        consecutive_failures: 0,
        schedule_epoch_ms: now,
        updated_at_ms: now,
    }
}

/// Ledger operations per second on one thread for `for_how_long`: claim + finish, and
/// optionally the job-row upsert the scheduler does after every run.
fn ledger_loop(store: &SqliteStore, for_how_long: Duration, upsert_job: bool) -> (u64, Duration) {
    let started = Instant::now();
    let mut n = 0u64;
    let offset = if upsert_job { 1 << 40 } else { 0 };
    while started.elapsed() < for_how_long {
        for _ in 0..100 {
            let now = now_ms();
            let claim = bench_claim(offset + n, now);
            assert_eq!(store.claim(&claim).expect("claim"), Claim::Claimed);
            assert!(store.finish(&claim.run_id, &bench_finish(now)).expect("finish"));
            if upsert_job {
                store.upsert_job(&bench_job_row(&claim, now)).expect("upsert job");
            }
            n += 1;
        }
    }
    (n, started.elapsed())
}

/// `Runtime::execute` of the no-op probe, `tasks` loops at once on the guest pool.
fn execute_loop(host: &Host, tasks: usize, for_how_long: Duration) -> (u64, Duration) {
    let spec = host.def("exec", "").spec.clone();
    let spec = Arc::new(spec);
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
    let total = handles.into_iter().map(|h| host.guests.block_on(h).expect("execute loop")).sum();
    (total, started.elapsed())
}

fn throughput(knobs: &Knobs) {
    let jobs: usize = knob("SANDCRON_BENCH_THROUGHPUT_JOBS", 10_000);
    let jitter: String = knob("SANDCRON_BENCH_THROUGHPUT_JITTER", String::new());
    let seconds = knobs.seconds;
    let warmup = Duration::from_secs(2);
    println!(
        "\n== 2. durable throughput: {jobs} jobs every = \"1s\"{} (offered {jobs} runs/s), \
         {} workers, {} cores",
        if jitter.is_empty() { String::new() } else { format!(", jitter = \"{jitter}\"") },
        knobs.workers,
        cores()
    );
    println!("   store: {}", describe_store(&knobs.dir));
    let mut host = Host::start(knobs, "throughput");
    let manifest = if jitter.is_empty() {
        "every = \"1s\"\n".to_string()
    } else {
        format!("every = \"1s\"\njitter = \"{jitter}\"\n")
    };
    let defs: Vec<Arc<JobDef>> =
        (0..jobs).map(|i| host.def(&format!("tp-{i:05}"), &manifest)).collect();
    let registered = host.register(&defs);
    std::thread::sleep(warmup);
    let (cpu0, t0, wall0) = (CpuSnapshot::take(), now_ms(), Instant::now());
    std::thread::sleep(Duration::from_secs(seconds));
    let (cpu1, t1, wall) = (CpuSnapshot::take(), now_ms(), wall0.elapsed());
    host.shut_down();
    let cpu = cpu1.since(&cpu0);
    let runs = host.all_runs();
    let in_window = |at: Option<i64>| at.is_some_and(|at| (t0..t1).contains(&at));
    let succeeded = runs
        .iter()
        .filter(|r| r.status == RunStatus::Succeeded && in_window(r.finished_at_ms))
        .count();
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    for run in runs.iter().filter(|r| (t0..t1).contains(&r.scheduled_at_ms)) {
        let key = if run.reason.is_empty() {
            run.status.to_string()
        } else {
            format!("{} ({})", run.status, run.reason)
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
    println!("\n   in the scheduler (ledger on):");
    println!(
        "   {:<46} {:>9.0} runs/s   (goal >= 10000/s; {succeeded} runs)",
        "succeeded runs finished in the window", rate
    );
    for (status, count) in &by_status {
        println!("   {:<46} {:>9.0} /s", format!("slots due in the window: {status}"), {
            *count as f64 / window
        });
    }
    println!("   {:<46} p50 {lag50} / p99 {lag99} / max {lagmax} ms", "start lag (started - due)");

    // CPU per run, by thread, during the window.
    let per_run = |t: Duration| t.as_secs_f64() * 1e6 / succeeded.max(1) as f64;
    let busy = cpu.total.as_secs_f64() / (wall.as_secs_f64() * cores() as f64);
    println!(
        "\n   CPU in the window ({:.0}% of {} cores busy):   {:>10} {:>12}",
        busy * 100.0,
        cores(),
        "cpu s",
        "µs per run"
    );
    let named: Duration = cpu.groups.values().sum();
    for (group, t) in &cpu.groups {
        println!("   {group:<46} {:>10.2} {:>12.1}", t.as_secs_f64(), per_run(*t));
    }
    let exited = cpu.total.saturating_sub(named);
    println!(
        "   {:<46} {:>10.2} {:>12.1}",
        "exited threads / rounding (process total - above)",
        exited.as_secs_f64(),
        per_run(exited)
    );
    println!(
        "   {:<46} {:>10.2} {:>12.1}",
        "process total",
        cpu.total.as_secs_f64(),
        per_run(cpu.total)
    );

    // The parts alone, same process, same machine, scheduler stopped.
    let alone = Duration::from_secs((seconds / 5).clamp(1, 3));
    let threads = cores();
    let (n1, d1) = execute_loop(&host, 1, alone);
    let (nn, dn) = execute_loop(&host, threads, alone);
    let ledger_store = SqliteStore::open(&host.dir.join("ledger-only.db")).expect("open");
    let (p, dp) = ledger_loop(&ledger_store, alone, false);
    let (q, dq) = ledger_loop(&ledger_store, alone, true);
    let us = |n: u64, d: Duration, par: usize| d.as_secs_f64() * 1e6 * par as f64 / n as f64;
    let per_s = |n: u64, d: Duration| n as f64 / d.as_secs_f64();
    println!("\n   the parts alone ({:.0} s each, scheduler stopped):", alone.as_secs_f64());
    println!("   {:<46} {:>12} {:>12}", "", "µs each", "per second");
    let rows = [
        ("Runtime::execute, 1 task", us(n1, d1, 1), per_s(n1, d1)),
        (
            &*format!("Runtime::execute, {threads} tasks (all guest threads)"),
            us(nn, dn, threads),
            per_s(nn, dn),
        ),
        ("ledger claim + finish, 1 thread", us(p, dp, 1), per_s(p, dp)),
        ("ledger claim + finish + job upsert, 1 thread", us(q, dq, 1), per_s(q, dq)),
    ];
    for (what, each, rate) in rows {
        println!("   {what:<46} {each:>12.1} {rate:>12.0}");
    }
    let execute_us = us(nn, dn, threads);
    let store_us = us(q, dq, 1);
    let total_us = per_run(cpu.total);
    println!(
        "\n   per run: {total_us:.0} µs of CPU in the scheduler, of which execute alone ~{execute_us:.0} \
         µs and the store alone ~{store_us:.0} µs; the remaining ~{:.0} µs is scheduling \
         (actor loop, task spawn, channels, semaphores, timers) and contention",
        (total_us - execute_us - store_us).max(0.0)
    );
    println!(
        "   ceilings on {} cores: CPU {:.0} runs/s (2 x 1e6 / {total_us:.0} µs); execute alone \
         {:.0}/s; store alone (one connection, serial) {:.0}/s",
        cores(),
        cores() as f64 * 1e6 / total_us,
        per_s(nn, dn),
        per_s(q, dq)
    );
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
    let rss0 = rss_mib();
    let started = Instant::now();
    let defs: Vec<Arc<JobDef>> =
        (0..jobs).map(|i| host.def(&format!("mem-{i:06}"), &manifest(i))).collect();
    let built = started.elapsed();
    let rss1 = rss_mib();
    let registered = host.register(&defs);
    std::thread::sleep(Duration::from_millis(300));
    let rss2 = rss_mib();
    drop(defs);
    let rss3 = rss_mib();
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
        "\n   per schedule: {:.2} KiB (JobDef {:.2} KiB + scheduler {:.2} KiB); peak {:.1} MB",
        (rss2 - rss0) * 1024.0 / jobs as f64,
        (rss1 - rss0) * 1024.0 / jobs as f64,
        (rss2 - rss1) * 1024.0 / jobs as f64,
        rss2.max(rss3) * 1.048_576
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
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();
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
