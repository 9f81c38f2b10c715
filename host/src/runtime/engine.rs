//! The host's one wasmtime [`Engine`] and its linkers, built once at start (R1, R2).
//!
//! [`Runtime`] owns the engine (pooling allocator with copy-on-write memory images when
//! the address-space reservation succeeds, on-demand otherwise), the component linker
//! (WASI p2, `wasi:http` and the `sandcron:job` imports), the core-module linker (WASI p1, for
//! preview1 commands), the compile cache, the epoch ticker, and a semaphore sized to the
//! pool so that a full pool queues runs instead of failing them.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Semaphore;
use wasmtime::component::{HasSelf, Linker as ComponentLinker, ResourceTable};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::Job;
use super::cache::CompileCache;
use super::host::HostCtx;
use super::limits::MemoryLimiter;
use super::net::NetHooks;
use super::ticker::EpochTicker;
use crate::config::ByteSize;

/// How to build the runtime.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Where precompiled code is kept; `None` compiles on every load.
    pub cache_dir: Option<PathBuf>,
    /// Use the pooling allocator (falls back to on-demand if it cannot reserve memory).
    pub pooling: bool,
    /// Runs that may be instantiated at once; the pool is sized for this many.
    pub max_instances: u32,
    /// The host-wide memory ceiling: no job's limit can exceed it.
    pub max_memory: ByteSize,
    /// Benches only (benches/per_run.rs's baseline, never the product): runs keep all
    /// their output, logs, summary and reason (no capture caps, no log accounting, no
    /// reason or summary cut) and cached code loads without its digest check, so that the
    /// bench can show what those guards cost side by side.
    #[doc(hidden)]
    pub bench_without_caps: bool,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            pooling: true,
            max_instances: 32,
            max_memory: crate::config::HostLimits::default().memory,
            bench_without_caps: false,
        }
    }
}

/// Which allocator the engine ended up with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Allocator {
    /// Pre-reserved slots with copy-on-write memory images.
    Pooling,
    /// Fresh allocations per instance.
    OnDemand,
}

/// Store data of one run: WASI context `W` (p2 for components, p1 for core modules),
/// the resource table, the memory limiter, the `sandcron:job` host state and the
/// `wasi:http` state (whose hooks send every request through the run's allowlist).
pub(crate) struct RunData<W> {
    pub(crate) wasi: W,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) host: HostCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) net: NetHooks,
}

impl WasiView for RunData<WasiCtx> {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for RunData<WasiCtx> {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.net }
    }
}

/// The engine, linkers and shared machinery every run goes through.
pub struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) components: ComponentLinker<RunData<WasiCtx>>,
    pub(crate) modules: wasmtime::Linker<RunData<WasiP1Ctx>>,
    pub(crate) cache: Option<CompileCache>,
    /// Back-pressure in front of the instance pool: one permit per live instance.
    pub(crate) slots: Arc<Semaphore>,
    pub(crate) max_memory: ByteSize,
    /// The issue-14 caps on what a run hands back; off only in a bench's baseline.
    pub(crate) caps: bool,
    allocator: Allocator,
    /// Kept for its `Drop`: stops the ticker thread with the runtime.
    _ticker: EpochTicker,
}

/// The runtime could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// wasmtime refused the configuration or a linker definition.
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),
    /// The epoch ticker thread could not be started.
    #[error("cannot set up the runtime: {0}")]
    Io(#[from] std::io::Error),
    /// The compile cache folder was refused or could not be set up.
    #[error(transparent)]
    Cache(#[from] super::cache::CacheError),
}

fn engine_config(pooling: Option<&PoolingAllocationConfig>) -> Config {
    let mut config = Config::new();
    config.epoch_interruption(true);
    // Fuel is an engine-wide switch, on so that a manifest's `fuel` budget can be enforced;
    // runs without a budget get an effectively unlimited one and report no fuel figure
    // (`RunReport::fuel_used` says why).
    config.consume_fuel(true);
    config.max_wasm_stack(512 << 10);
    config.async_stack_size(2 << 20);
    if let Some(pool) = pooling {
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool.clone()));
        config.memory_init_cow(true);
    }
    config
}

fn pool_config(max_instances: u32, max_memory: ByteSize) -> PoolingAllocationConfig {
    // Large toolchains (componentize-py, StarlingMonkey) produce components with dozens
    // of core instances and tables; size per-component limits for them, totals for the
    // number of concurrent runs.
    let per_component_instances = 64;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(max_instances)
        .total_core_instances(max_instances * per_component_instances)
        .total_memories(max_instances * 4)
        .total_tables(max_instances * per_component_instances)
        .total_stacks(max_instances)
        .max_core_instances_per_component(per_component_instances)
        .max_memories_per_component(4)
        .max_tables_per_component(per_component_instances)
        .max_memories_per_module(2)
        .table_elements(100_000)
        .max_core_instance_size(4 << 20)
        .max_component_instance_size(4 << 20)
        .max_memory_size(max_memory.as_usize())
        // Reset up to this much of each slot in place instead of giving it back with
        // madvise. With `pagemap_scan` (off by default in wasmtime 48), on Linux ≥ 6.7
        // wasmtime scans the slot's page map and restores only the pages ever written
        // (without it, it memsets the first 2 MiB on every run: 40% of guest-thread CPU in
        // the scheduler bench); only when a run dirtied more than this does the rest go to madvise,
        // and every madvise is a TLB shootdown that stalls the other cores. A small Rust
        // job's whole memory (about 1.1 MiB) fits in 2 MiB, so its runs never madvise.
        // Measured (benches/scheduler.rs, execute loop on 2 tasks): 128 KiB 21-24k runs/s
        // at 40% kernel time; 2 MiB 23-36k runs/s at 1% kernel time; 1 MiB was the worst
        // of both (75 µs per run: it copies 1 MiB and still madvises the rest).
        .linear_memory_keep_resident(2 << 20)
        .table_keep_resident(16 << 10)
        .pagemap_scan(Enabled::Auto);
    pool
}

impl Runtime {
    /// Builds the engine (with fallback), linkers, cache and ticker.
    pub fn new(config: &RuntimeConfig) -> Result<Self, RuntimeError> {
        let engine_err = |e: wasmtime::Error| RuntimeError::Engine(format!("{e:#}"));
        let (engine, allocator) = if config.pooling {
            let pool = pool_config(config.max_instances, config.max_memory);
            match Engine::new(&engine_config(Some(&pool))) {
                Ok(engine) => (engine, Allocator::Pooling),
                Err(err) => {
                    tracing::warn!(
                        "pooling allocator unavailable ({err}); using on-demand allocation"
                    );
                    (Engine::new(&engine_config(None)).map_err(engine_err)?, Allocator::OnDemand)
                }
            }
        } else {
            (Engine::new(&engine_config(None)).map_err(engine_err)?, Allocator::OnDemand)
        };

        let mut components: ComponentLinker<RunData<WasiCtx>> = ComponentLinker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut components).map_err(engine_err)?;
        // Every component can import wasi:http; each request still needs the allowlist.
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut components)
            .map_err(engine_err)?;
        Job::add_to_linker::<_, HasSelf<HostCtx>>(&mut components, |data| &mut data.host)
            .map_err(engine_err)?;

        let mut modules: wasmtime::Linker<RunData<WasiP1Ctx>> = wasmtime::Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut modules, |data: &mut RunData<WasiP1Ctx>| {
            &mut data.wasi
        })
        .map_err(engine_err)?;

        let cache = match &config.cache_dir {
            Some(dir) => Some(CompileCache::open(dir, &engine, !config.bench_without_caps)?),
            None => None,
        };
        let ticker = EpochTicker::start(engine.clone())?;
        Ok(Runtime {
            engine,
            components,
            modules,
            cache,
            slots: Arc::new(Semaphore::new(config.max_instances as usize)),
            max_memory: config.max_memory,
            caps: !config.bench_without_caps,
            allocator,
            _ticker: ticker,
        })
    }

    /// The allocator in use (pooling unless its reservation failed or it was disabled).
    pub fn allocator(&self) -> Allocator {
        self.allocator
    }
}
