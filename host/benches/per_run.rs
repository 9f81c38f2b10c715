//! Per-run cost of `examples/hello-rust`: new Store + instantiate + call + drop.
//!
//! Side by side in one process, interleaved in rounds so machine noise hits every variant:
//! - `bare`: the minimal wasmtime loop (sync, pooling, no fuel, no epochs, in-memory host
//!   imports): the floor the product path is compared with;
//! - `product/pooling` and `product/on-demand`: `Runtime::execute`, i.e. everything a real
//!   run pays for (capabilities, limiter, fuel, epoch deadline, async call, capture,
//!   classification), with an in-memory state store so SQLite is not measured;
//! - `product/sqlite`: the same with the real SQLite state store.
//!
//! Then what issue 14's guards cost (its "no regression from the caps and the digest
//! check, per_run side by side"), each pair interleaved the same way:
//! - per run, `caps` vs `no caps`: the product path against the same runtime built with
//!   `RuntimeConfig::bench_without_caps` (a switch only benches set), which skips exactly
//!   the caps on what a run hands back: stdout/stderr capture caps, the log buffer's JSON
//!   accounting and line/field caps, the reason and summary cuts. Everything else is the
//!   same code. Three workloads: hello-rust (two log lines, a summary), the test probe
//!   logging 200 lines of ~100 bytes (`log-flood:200`), and the probe failing with a
//!   3,000-byte reason (`big-error:3000`); all stay under the caps, so both variants keep
//!   the same data and the difference is the guards' bookkeeping;
//! - per load from the compile cache, `digest` vs `no digest`: `Runtime::load` of a cached
//!   entry with its keyed digest checked, against the same load without the check (the
//!   same switch). A host loads each job version once, so this is paid per start and per
//!   edit, and once per `sandcron run`; measured for hello-rust and, when built, the 18 MB
//!   hello-python component (a 40 MB entry).
//!
//! Run: `bash scripts/build-guests.sh && cargo bench -p sandcron --bench per_run`
//! (it sets `RUST_LIB_BACKTRACE=0` as the binary does; see `main.rs`)
//! (`SANDCRON_BENCH_RUNS=N` sets runs per variant; default 20000; loads are a tenth).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sandcron::config::JobSpec;
use sandcron::job::{RunOutcome, RunRequest};
use sandcron::runtime::{LoadedJob, Runtime, RuntimeConfig};
use sandcron::store::{SqliteStore, StateStore};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

mod common;
use common::MemoryState;

mod bare {
    wasmtime::component::bindgen!({ world: "job", path: "../wit" });
}
use bare::sandcron::job as imports;

/// Store data of the bare loop: WASI plus no-op-ish host imports.
struct BareHost {
    wasi: WasiCtx,
    table: ResourceTable,
    state: HashMap<String, Vec<u8>>,
    config: BTreeMap<String, String>,
}

impl WasiView for BareHost {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}
impl imports::types::Host for BareHost {}
impl imports::log::Host for BareHost {
    fn log(&mut self, _: imports::log::Level, _: String, _: Vec<(String, String)>) {}
}
impl imports::state::Host for BareHost {
    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, String> {
        Ok(self.state.get(&key).cloned())
    }
    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        self.state.insert(key, value);
        Ok(())
    }
    fn delete(&mut self, key: String) -> Result<bool, String> {
        Ok(self.state.remove(&key).is_some())
    }
    fn list_keys(&mut self) -> Result<Vec<String>, String> {
        Ok(self.state.keys().cloned().collect())
    }
}
impl imports::config::Host for BareHost {
    fn get(&mut self, key: String) -> Option<String> {
        self.config.get(&key).cloned()
    }
    fn entries(&mut self) -> Vec<(String, String)> {
        self.config.clone().into_iter().collect()
    }
}
impl imports::deadline::Host for BareHost {
    fn remaining_ms(&mut self) -> u64 {
        10_000
    }
}

struct Bare {
    engine: Engine,
    pre: bare::JobPre<BareHost>,
    state: HashMap<String, Vec<u8>>,
}

impl Bare {
    fn new(bytes: &[u8]) -> Self {
        let mut config = Config::new();
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(
            PoolingAllocationConfig::default(),
        ));
        // Like the product runtime, fall back to on-demand where the pool cannot reserve
        // its address space (e.g. under valgrind).
        let engine = Engine::new(&config).or_else(|_| Engine::new(&Config::new())).unwrap();
        let mut linker = Linker::<BareHost>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
        bare::Job::add_to_linker::<_, HasSelf<_>>(&mut linker, |h| h).unwrap();
        let component = Component::new(&engine, bytes).unwrap();
        let pre = bare::JobPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
        Bare { engine, pre, state: HashMap::new() }
    }

    fn run_once(&mut self, context: &imports::types::RunContext) {
        let host = BareHost {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            state: std::mem::take(&mut self.state),
            config: BTreeMap::new(),
        };
        let mut store = Store::new(&self.engine, host);
        let job = self.pre.instantiate(&mut store).unwrap();
        let result = job.call_run(&mut store, context).unwrap();
        assert!(result.is_ok());
        self.state = store.into_data().state;
    }
}

/// A caps workload: its name, its wasm, the manual payload, whether it succeeds.
type Workload<'a> = (&'a str, &'a [u8], Option<&'a [u8]>, bool);

struct Samples {
    name: &'static str,
    times: Vec<Duration>,
}

impl Samples {
    fn new(name: &'static str) -> Self {
        Samples { name, times: Vec::new() }
    }

    fn pick(&mut self, q: f64) -> Duration {
        self.times.sort();
        self.times[((self.times.len() as f64 - 1.0) * q) as usize]
    }

    fn report(&mut self, baseline_p50: Option<Duration>) -> Duration {
        let (p50, p99) = (self.pick(0.50), self.pick(0.99));
        let total: Duration = self.times.iter().sum();
        let rate = self.times.len() as f64 / total.as_secs_f64();
        let ratio = baseline_p50.map_or(String::from("1.00x (baseline)"), |b| {
            format!("{:.2}x", p50.as_secs_f64() / b.as_secs_f64())
        });
        println!(
            "{:<20} p50 {:>7.1} µs   p99 {:>7.1} µs   {:>7.0} runs/s   p50 vs bare: {ratio}",
            self.name,
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
            rate
        );
        p50
    }
}

/// One guard's pair, `with` and `without`, printed as medians, p99s and their ratio.
fn report_pair(what: &str, with: &mut Samples, without: &mut Samples) {
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let (w50, w99, o50, o99) =
        (with.pick(0.5), with.pick(0.99), without.pick(0.5), without.pick(0.99));
    println!(
        "{what:<28} {:<9} p50 {:>8.1} µs  p99 {:>8.1} µs | {:<10} p50 {:>8.1} µs  p99 {:>8.1} µs | p50 ratio {:.3}",
        with.name,
        us(w50),
        us(w99),
        without.name,
        us(o50),
        us(o99),
        w50.as_secs_f64() / o50.as_secs_f64()
    );
}

fn main() {
    common::quiet_library_backtraces();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), Into::into);
    let guest = |name: &str| {
        let wasm = target.join("guests").join(format!("{name}.wasm"));
        std::fs::read(&wasm).unwrap_or_else(|e| {
            panic!("{}: {e} (run scripts/build-guests.sh first)", wasm.display())
        })
    };
    let bytes = guest("hello-rust");
    let runs: usize =
        std::env::var("SANDCRON_BENCH_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(20_000);

    let mut bare = Bare::new(&bytes);
    let pooled = Runtime::new(&RuntimeConfig::default()).unwrap();
    let on_demand =
        Runtime::new(&RuntimeConfig { pooling: false, ..RuntimeConfig::default() }).unwrap();
    let pooled_job = pooled.load(&bytes).unwrap();
    let on_demand_job = on_demand.load(&bytes).unwrap();
    let spec = JobSpec::unconfigured("hello-rust");
    let memory: Arc<dyn StateStore> = Arc::new(MemoryState::default());
    let db_dir = std::env::temp_dir().join(format!("sandcron-bench-{}", std::process::id()));
    let sqlite: Arc<dyn StateStore> =
        Arc::new(SqliteStore::open(&db_dir.join("state.db")).unwrap());
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let request = RunRequest::manual("hello-rust", None);
    let context = imports::types::RunContext {
        job_name: "hello-rust".into(),
        job_version: "bench".into(),
        run_id: "bench".into(),
        idempotency_key: "bench".into(),
        scheduled_at_ms: 0,
        started_at_ms: 0,
        attempt: 1,
        trigger: imports::types::TriggerKind::Manual,
        payload: None,
    };

    println!("per-run cost of hello-rust ({runs} runs per variant, interleaved in rounds of 100)");
    let mut samples: Vec<Samples> =
        ["bare", "product/pooling", "product/on-demand", "product/sqlite"]
            .into_iter()
            .map(Samples::new)
            .collect();
    let product =
        |runtime: &Runtime, job: &LoadedJob, state: &Arc<dyn StateStore>, request: &RunRequest| {
            let started = Instant::now();
            let report = tokio.block_on(runtime.execute(job, &spec, Some(state.clone()), request));
            let elapsed = started.elapsed();
            (elapsed, report.outcome)
        };
    let succeeded = |(elapsed, outcome): (Duration, RunOutcome)| {
        assert_eq!(outcome, RunOutcome::Succeeded, "{}", outcome.reason());
        elapsed
    };
    // Warm up every variant, then interleave.
    for _ in 0..200 {
        bare.run_once(&context);
        succeeded(product(&pooled, &pooled_job, &memory, &request));
        succeeded(product(&on_demand, &on_demand_job, &memory, &request));
    }
    for _ in 0..runs / 100 {
        for _ in 0..100 {
            let started = Instant::now();
            bare.run_once(&context);
            samples[0].times.push(started.elapsed());
        }
        for _ in 0..100 {
            samples[1].times.push(succeeded(product(&pooled, &pooled_job, &memory, &request)));
        }
        for _ in 0..100 {
            let run = product(&on_demand, &on_demand_job, &memory, &request);
            samples[2].times.push(succeeded(run));
        }
        for _ in 0..100 {
            samples[3].times.push(succeeded(product(&pooled, &pooled_job, &sqlite, &request)));
        }
    }
    let baseline = samples[0].report(None);
    for sample in &mut samples[1..] {
        sample.report(Some(baseline));
    }

    // Issue 14's guards: the same pooled runtime with and without them.
    let uncapped =
        Runtime::new(&RuntimeConfig { bench_without_caps: true, ..RuntimeConfig::default() })
            .unwrap();
    let probe = guest("probe");
    let workloads: [Workload; 3] = [
        ("hello-rust", &bytes, None, true),
        ("probe log-flood:200", &probe, Some(b"log-flood:200"), true),
        ("probe big-error:3000", &probe, Some(b"big-error:3000"), false),
    ];
    println!("\nissue 14's caps per run ({runs} runs each, interleaved in rounds of 100)");
    for (what, wasm, payload, ok) in workloads {
        let (with_job, without_job) = (pooled.load(wasm).unwrap(), uncapped.load(wasm).unwrap());
        let request = RunRequest::manual("hello-rust", payload.map(<[u8]>::to_vec));
        let run = |runtime: &Runtime, job: &LoadedJob| {
            let (elapsed, outcome) = product(runtime, job, &memory, &request);
            assert_eq!(outcome == RunOutcome::Succeeded, ok, "{what}: {}", outcome.reason());
            elapsed
        };
        let (mut with, mut without) = (Samples::new("caps"), Samples::new("no caps"));
        for _ in 0..200 {
            run(&pooled, &with_job);
            run(&uncapped, &without_job);
        }
        for _ in 0..runs / 100 {
            (0..100).for_each(|_| with.times.push(run(&pooled, &with_job)));
            (0..100).for_each(|_| without.times.push(run(&uncapped, &without_job)));
        }
        report_pair(what, &mut with, &mut without);
    }

    // The digest check of a cached entry, per load.
    let cache_dir = db_dir.join("cache");
    let cached = |bench_without_caps| {
        let config = RuntimeConfig {
            cache_dir: Some(cache_dir.clone()),
            bench_without_caps,
            ..RuntimeConfig::default()
        };
        Runtime::new(&config).unwrap()
    };
    let (checked, unchecked) = (cached(false), cached(true));
    let loads = (runs / 10).max(10);
    println!("\ncached load, digest checked or not ({loads} loads each, interleaved in tens)");
    let python = target.join("guests/hello-python.wasm");
    let mut guests = vec![("hello-rust", bytes.clone())];
    match std::fs::read(&python) {
        Ok(wasm) => guests.push(("hello-python (18 MB)", wasm)),
        Err(err) => println!("  {}: {err}; hello-python skipped", python.display()),
    }
    for (what, wasm) in guests {
        let load = |runtime: &Runtime| {
            let started = Instant::now();
            let job = runtime.load(&wasm).unwrap();
            let elapsed = started.elapsed();
            assert_eq!(job.load.cache, sandcron::runtime::CacheStatus::Hit);
            elapsed
        };
        checked.load(&wasm).unwrap(); // compiles and stores the entry
        let (mut with, mut without) = (Samples::new("digest"), Samples::new("no digest"));
        let loads = if wasm.len() > 4 << 20 { (loads / 10).max(10) } else { loads };
        for _ in 0..loads / 10 {
            (0..10).for_each(|_| with.times.push(load(&checked)));
            (0..10).for_each(|_| without.times.push(load(&unchecked)));
        }
        report_pair(what, &mut with, &mut without);
    }
    let _ = std::fs::remove_dir_all(db_dir);
}
