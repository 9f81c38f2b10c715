//! What a job costs per language: component size, first compile, cached load, per run.
//!
//! For each hello job in `target/guests/` (Rust, JS on QuickJS and on StarlingMonkey,
//! Python, C, Go): its size; one compile with the cache off (`Runtime::load`, what the
//! first start of a new version pays); the median of loads from the compile cache (the
//! precompiled file mapped with `deserialize_file`, what every later start pays); and the
//! median and p99 of `Runtime::execute` (fresh Store + instantiate + call + drop, pooling
//! allocator, in-memory state so the disk is not measured). Guests missing from
//! target/guests/ are skipped with a note.
//!
//! Run: `bash scripts/build-guests.sh && bash scripts/build-lang-guests.sh &&
//! cargo bench -p sandcron --bench languages` (`SANDCRON_BENCH_RUNS=N` sets the runs per
//! guest, default 500; `SANDCRON_BENCH_LOADS=N` the cached loads, default 20).

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::MemoryState;
use sandcron::config::JobSpec;
use sandcron::job::{RunOutcome, RunRequest};
use sandcron::runtime::{CacheStatus, Runtime, RuntimeConfig};
use sandcron::store::StateStore;

const GUESTS: [&str; 6] =
    ["hello-rust", "hello-c", "hello-js", "hello-js-starlingmonkey", "hello-python", "hello-go"];

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1e3;
    if ms >= 1000.0 { format!("{:.1} s", ms / 1e3) } else { format!("{ms:.2} ms") }
}

fn main() {
    common::quiet_library_backtraces();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), Into::into);
    let runs = env_count("SANDCRON_BENCH_RUNS", 500);
    let loads = env_count("SANDCRON_BENCH_LOADS", 20);
    let cache_dir =
        std::env::temp_dir().join(format!("sandcron-bench-lang-{}", std::process::id()));
    let uncached = Runtime::new(&RuntimeConfig::default()).unwrap();
    let cached =
        Runtime::new(&RuntimeConfig { cache_dir: Some(cache_dir.clone()), ..Default::default() })
            .unwrap();
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();

    println!("per language: {runs} runs and {loads} cached loads each (medians; p99 per run)");
    println!(
        "{:<25} {:>10} {:>10} {:>12} {:>10} {:>10}",
        "guest", "size", "compile", "cached load", "run p50", "run p99"
    );
    for name in GUESTS {
        let path = target.join("guests").join(format!("{name}.wasm"));
        let Ok(bytes) = std::fs::read(&path) else {
            println!("{name:<25} skipped: {} not built", path.display());
            continue;
        };
        let compile = uncached.load(&bytes).unwrap().load.elapsed;
        cached.load(&bytes).unwrap(); // fills the cache
        let mut load_times: Vec<Duration> = (0..loads)
            .map(|_| {
                let job = cached.load(&bytes).unwrap();
                assert_eq!(job.load.cache, CacheStatus::Hit);
                job.load.elapsed
            })
            .collect();
        let job = cached.load(&bytes).unwrap();
        let spec = JobSpec::unconfigured(name);
        let state: Arc<dyn StateStore> = Arc::new(MemoryState::default());
        let request = RunRequest::manual(name, None);
        let mut run_times: Vec<Duration> = (0..runs + runs / 10)
            .map(|_| {
                let started = Instant::now();
                let report =
                    tokio.block_on(cached.execute(&job, &spec, Some(state.clone()), &request));
                assert_eq!(report.outcome, RunOutcome::Succeeded, "{}", report.outcome.reason());
                started.elapsed()
            })
            .skip(runs / 10) // warm-up
            .collect();
        let p50 = median(&mut run_times);
        let p99 = run_times[(run_times.len() - 1) * 99 / 100];
        println!(
            "{name:<25} {:>7} KB {:>10} {:>12} {:>10} {:>10}",
            bytes.len() / 1000,
            ms(compile),
            ms(median(&mut load_times)),
            ms(p50),
            ms(p99)
        );
    }
    let _ = std::fs::remove_dir_all(cache_dir);
}
