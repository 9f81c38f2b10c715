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
//! Run: `bash scripts/build-guests.sh && cargo bench -p sandcron --bench per_run`
//! (it sets `RUST_LIB_BACKTRACE=0` as the binary does; see `main.rs`)
//! (`SANDCRON_BENCH_RUNS=N` sets runs per variant; default 20000).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sandcron::config::JobSpec;
use sandcron::job::{RunOutcome, RunRequest};
use sandcron::runtime::{Runtime, RuntimeConfig};
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

struct Samples {
    name: &'static str,
    times: Vec<Duration>,
}

impl Samples {
    fn report(&mut self, baseline_p50: Option<Duration>) -> Duration {
        self.times.sort();
        let pick = |q: f64| self.times[((self.times.len() as f64 - 1.0) * q) as usize];
        let (p50, p99) = (pick(0.50), pick(0.99));
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

fn main() {
    common::quiet_library_backtraces();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), Into::into);
    let wasm = target.join("guests/hello-rust.wasm");
    let bytes = std::fs::read(&wasm)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/build-guests.sh first)", wasm.display()));
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
            .map(|name| Samples { name, times: Vec::with_capacity(runs) })
            .collect();
    let product = |runtime: &Runtime, job, state: &Arc<dyn StateStore>| {
        let started = Instant::now();
        let report = tokio.block_on(runtime.execute(job, &spec, Some(state.clone()), &request));
        let elapsed = started.elapsed();
        assert_eq!(report.outcome, RunOutcome::Succeeded, "{}", report.outcome.reason());
        elapsed
    };
    // Warm up every variant, then interleave.
    for _ in 0..200 {
        bare.run_once(&context);
        product(&pooled, &pooled_job, &memory);
        product(&on_demand, &on_demand_job, &memory);
    }
    for _ in 0..runs / 100 {
        for _ in 0..100 {
            let started = Instant::now();
            bare.run_once(&context);
            samples[0].times.push(started.elapsed());
        }
        for _ in 0..100 {
            samples[1].times.push(product(&pooled, &pooled_job, &memory));
        }
        for _ in 0..100 {
            samples[2].times.push(product(&on_demand, &on_demand_job, &memory));
        }
        for _ in 0..100 {
            samples[3].times.push(product(&pooled, &pooled_job, &sqlite));
        }
    }
    let baseline = samples[0].report(None);
    for sample in &mut samples[1..] {
        sample.report(Some(baseline));
    }
    let _ = std::fs::remove_dir_all(db_dir);
}
