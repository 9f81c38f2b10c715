//! The composition root of `sandcron serve`: builds the store, runtime, watcher and
//! scheduler, wires them together and owns them until shutdown.
//!
//! It is handed its world (STYLE 7): paths and settings in [`ServeConfig`], the guest
//! pool's runtime handle, and a shutdown future; it reads no flags, env or signals itself.
//! One exclusive lock file per store keeps two hosts from sharing an embedded store (each
//! would recover the other's running runs as crashed).

use std::fs::File;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::sync::{mpsc, watch};

use crate::api::{self, ApiContext, ApiHostName, ApiTls, ConnectionLimits};
use crate::config::{HostLimits, JobSpec, parse_manifest};
use crate::metrics::Metrics;
use crate::runtime::{Runtime, RuntimeConfig};
use crate::scheduler::{
    self, JobDef, JobEvent, SchedulerConfig, SchedulerError, Services, SystemClock,
};
use crate::store::{JobPolicies, Ledger, Pruner, RetentionPolicy, SqliteStore, StateStore};
use crate::watcher::{JobChange, JobLoader, Watcher};

/// Settings for `serve`.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// The watched jobs folder.
    pub jobs_dir: PathBuf,
    /// The embedded store (SQLite file).
    pub store: PathBuf,
    /// Compile cache folder; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Use the pooling allocator.
    pub pooling: bool,
    /// Host-wide worker limit.
    pub workers: usize,
    /// Shutdown grace period.
    pub grace: Duration,
    /// How long before its instant a slot is claimed.
    pub claim_ahead: Duration,
    /// The API's bearer token.
    pub token: Option<String>,
    /// Serve the API over TLS with this identity.
    pub api_tls: Option<ApiTls>,
    /// Allow a non-loopback API without TLS (`serve --insecure-http`).
    pub insecure_http: bool,
    /// The API's connection cap and idle timeout.
    pub api_limits: ConnectionLimits,
    /// Names the API answers to besides localhost and its addresses.
    pub api_hosts: Vec<ApiHostName>,
    /// How much run history to keep (a job's `[retention]` overrides it).
    pub retention: RetentionPolicy,
    /// Webhooks and their delivery (the host config file's `[notify]`).
    pub notify: crate::config::NotifySettings,
}

/// Loads a job the way the watched folder needs: manifest, capability checks, compilation.
struct DaemonLoader {
    runtime: Arc<Runtime>,
    ceiling: HostLimits,
}

impl JobLoader for DaemonLoader {
    type Job = JobDef;

    fn load(
        &self,
        name: &str,
        version: &str,
        wasm: &[u8],
        manifest: Option<(&Path, &str)>,
    ) -> Result<JobDef, String> {
        let spec = match manifest {
            Some((path, text)) => {
                parse_manifest(text, path, name, &self.ceiling).map_err(|e| e.to_string())?
            }
            None => JobSpec::unconfigured(name),
        };
        for grant in &spec.capabilities.dirs {
            grant.check_exists()?;
        }
        for warning in &spec.warnings {
            tracing::warn!(job = name, "{warning}");
        }
        let code =
            compile_apart(|| self.runtime.load(wasm)).map_err(|e| format!("{name}.wasm: {e}"))?;
        if let Some(warning) = code.network_warning(&spec) {
            tracing::warn!(job = name, "{warning}");
        }
        Ok(JobDef { spec, code: Arc::new(code), version: version.to_string() })
    }
}

/// Runs a load on a rayon pool of its own. wasmtime compiles a component's functions in
/// parallel on the current rayon pool, and the global one serves jobs first come, first
/// served: a small job's compile waited out a Python component's whole cold compile behind
/// its thousands of functions (issue 15: 23 s for the probe). With a pool each, concurrent
/// compiles share the cores instead; without one (no threads), the global pool it is.
fn compile_apart<T: Send>(load: impl FnOnce() -> T + Send) -> T {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("sandcron-compile-{i}"))
        .build();
    match pool {
        Ok(pool) => pool.install(load),
        Err(_) => load(),
    }
}

/// This machine's name (the `host` of notifications, the start of the owner id).
fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into())
}

/// A unique id for this host instance, recorded as the owner of every run it claims.
fn owner_id() -> String {
    let host = hostname();
    let started = crate::job::unix_ms(std::time::SystemTime::now());
    format!("{host}-{}-{started}", std::process::id())
}

/// The store's lock, held for as long as the host serves it (`sandcron jobs` reads it to
/// tell whether a host is running).
pub struct StoreLock {
    _file: File,
}

/// What `serve` is handed, already taken by its caller: the store's lock and the API's
/// listening socket (bound from `--api`, inherited, or none). The daemon binds nothing
/// itself, so whoever starts it (a test on port 0, systemd) knows the address first.
pub struct Handed {
    /// The store's lock ([`lock_store`]).
    pub store_lock: StoreLock,
    /// The API's socket, listening and non-blocking; `None` serves no API.
    pub api: Option<std::net::TcpListener>,
}

/// Takes the store's lock file, or says who holds it.
///
/// # Errors
/// Another host holds it, or the lock file cannot be created.
pub fn lock_store(store: &Path) -> anyhow::Result<StoreLock> {
    let path = store.with_extension("lock");
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let file = File::options()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open lock file {}", path.display()))?;
    if file.try_lock().is_err() {
        let holder = std::fs::read_to_string(&path).unwrap_or_default();
        bail!(
            "another sandcron host is serving {} ({}); stop it first",
            store.display(),
            holder.trim()
        );
    }
    std::fs::write(&path, format!("pid {}", std::process::id())).ok();
    Ok(StoreLock { _file: file })
}

/// Keeps the pruner's per-job policies current: a job's `[retention]` over the host's.
fn job_retention(policies: &JobPolicies, host: RetentionPolicy, spec: &JobSpec) {
    let own = spec.retention;
    let policy = own.is_set().then(|| RetentionPolicy {
        max_age: own.max_age.map(|span| span.0).or(host.max_age),
        max_runs: own.max_runs.or(host.max_runs),
        keep_last_failure: own.keep_last_failure.unwrap_or(host.keep_last_failure),
    });
    policies.set(&spec.name, policy);
}

/// Runs the host on what it was handed until `shutdown` resolves; guests run on `guests`.
///
/// # Errors
/// The store cannot be opened, the runtime or the watcher cannot start, or the scheduler
/// cannot run; the API's exposure is the caller's to judge (`commands/serve.rs`).
pub async fn serve(
    config: ServeConfig,
    handed: Handed,
    guests: tokio::runtime::Handle,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let Handed { store_lock: _lock, api } = handed;
    let listener = api
        .map(tokio::net::TcpListener::from_std)
        .transpose()
        .context("cannot serve the API on the socket handed over")?;
    let store = Arc::new(SqliteStore::open(&config.store)?);
    let writer = store.clone();
    let retention = Arc::new(JobPolicies::default());
    let _pruner = Pruner::start(store.clone(), config.retention, retention.clone());
    let runtime = Arc::new(Runtime::new(&RuntimeConfig {
        cache_dir: config.cache_dir.clone(),
        pooling: config.pooling,
        max_instances: (config.workers as u32).max(32),
        ..RuntimeConfig::default()
    })?);
    tracing::info!(allocator = ?runtime.allocator(), store = %config.store.display(), jobs = %config.jobs_dir.display(), "sandcron host starting");

    let loader =
        Arc::new(DaemonLoader { runtime: runtime.clone(), ceiling: HostLimits::default() });
    let (watcher, mut changes) = Watcher::spawn(config.jobs_dir.clone(), loader)
        .with_context(|| format!("cannot watch {}", config.jobs_dir.display()))?;
    let (events_tx, events_rx) = mpsc::channel(256);
    let mut initial_scan = watcher.initial_scan();
    let (policies, host_retention) = (retention.clone(), config.retention);
    let bridge = AbortOnDrop(tokio::spawn(async move {
        let mut scan_pending = true;
        loop {
            let change = tokio::select! {
                // Changes first: when the flag flips, every initial change is already in
                // the channel, so "ready" follows them in order.
                biased;
                change = changes.recv() => match change {
                    Some(change) => change,
                    None => break,
                },
                scanned = async { initial_scan.wait_for(|done| *done).await.is_ok() }, if scan_pending => {
                    scan_pending = false;
                    if scanned && events_tx.send(JobEvent::InitialScanDone).await.is_err() {
                        break;
                    }
                    continue;
                }
            };
            let event = match change {
                JobChange::Added { job, .. } | JobChange::Updated { job, .. } => {
                    job_retention(&policies, host_retention, &job.spec);
                    JobEvent::Upsert(job)
                }
                JobChange::Removed { name } => {
                    policies.set(&name, None);
                    JobEvent::Remove(name)
                }
                JobChange::Invalid { name, error } => JobEvent::Invalid { name, error },
                JobChange::Compiling { name, since } => {
                    let began = std::time::SystemTime::now() - since.elapsed();
                    JobEvent::Compiling { name, since_ms: crate::job::unix_ms(began) as i64 }
                }
                JobChange::CompileAbandoned { name } => JobEvent::CompileAbandoned(name),
            };
            if events_tx.send(event).await.is_err() {
                break;
            }
        }
    }));

    let metrics = Arc::new(Metrics::new());
    let notify = crate::notifications::Notifier::start(&config.notify, hostname(), metrics.clone())
        .context("cannot start the notification threads")?;
    let services = Arc::new(Services {
        runtime,
        ledger: store.clone() as Arc<dyn Ledger>,
        state: store as Arc<dyn StateStore>,
        clock: Arc::new(SystemClock),
        owner: Arc::from(owner_id()),
        metrics: metrics.clone(),
        notify: notify.clone(),
    });
    let (handle, control_rx) = scheduler::control_channel();
    // One shutdown signal, seen by the scheduler and the API server.
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut stop: watch::Receiver<bool>| async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    // The API reads history through its own connection: WAL lets it read beside the
    // writer, so a dashboard paging through runs never holds up a claim.
    let api_reader = match &listener {
        Some(_) => {
            let reader = SqliteStore::open_existing(&config.store)?.sharing_health(&writer);
            Some(Arc::new(reader) as Arc<dyn Ledger>)
        }
        None => None,
    };
    let api_server = listener.zip(api_reader).map(|(listener, ledger)| {
        let addr = listener.local_addr().map_or_else(|_| "?".into(), |a| a.to_string());
        let limits = config.api_limits;
        let scheme = if config.api_tls.is_some() { "https" } else { "http" };
        tracing::info!(
            auth = config.token.is_some(),
            max_connections = limits.max_connections,
            "API listening on {scheme}://{addr}"
        );
        let context = Arc::new(ApiContext {
            ledger,
            scheduler: handle,
            metrics,
            token: config.token.clone(),
            api_hosts: config.api_hosts.clone(),
        });
        let tls = config.api_tls.clone();
        tokio::spawn(api::serve(listener, context, tls, limits, stopped(stop_rx.clone())))
    });
    let scheduler_config = SchedulerConfig {
        workers: config.workers,
        grace: config.grace,
        claim_ahead: config.claim_ahead,
        guests,
    };
    let scheduling =
        scheduler::run(scheduler_config, services, events_rx, control_rx, stopped(stop_rx));
    let outcome = run_until_stopped(scheduling, shutdown, &stop_tx, api_server).await;
    drop(watcher);
    drop(bridge);
    notify.flush_at_stop().await;
    match &outcome {
        Ok(()) => tracing::info!("sandcron host stopped"),
        Err(err) => tracing::error!("sandcron host stopped: {err}"),
    }
    outcome.context("the scheduler could not run; the host stopped")
}

/// A task aborted when its handle goes, whichever way `serve` returns.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Drives the scheduler until `shutdown` resolves (then lets it wind down) or until it ends
/// on its own (a start-up failure); either way the one stop signal then goes out and the
/// API server is awaited, so no task outlives the host and a failure is never a hang.
async fn run_until_stopped(
    scheduling: impl Future<Output = Result<(), SchedulerError>>,
    shutdown: impl Future<Output = ()>,
    stop_tx: &watch::Sender<bool>,
    api_server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
) -> Result<(), SchedulerError> {
    tokio::pin!(scheduling);
    let outcome = tokio::select! {
        result = &mut scheduling => result,
        () = shutdown => {
            let _ = stop_tx.send(true);
            scheduling.await
        }
    };
    let _ = stop_tx.send(true);
    if let Some(server) = api_server {
        match server.await {
            Ok(Err(err)) => tracing::error!("API server failed: {err}"),
            Err(err) => tracing::error!("API server task failed: {err}"),
            Ok(Ok(())) => {}
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::store::TempDb;

    /// A real API server on 127.0.0.1:0 that stops on `stop_tx`, and its address.
    async fn api_on_loopback(
        db: &TempDb,
        stop_tx: &watch::Sender<bool>,
    ) -> (SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>) {
        let ledger = Arc::new(SqliteStore::open(&db.path).unwrap()) as Arc<dyn Ledger>;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (handle, _control) = scheduler::control_channel();
        let context = Arc::new(ApiContext {
            ledger,
            scheduler: handle,
            metrics: Arc::new(Metrics::new()),
            token: None,
            api_hosts: Vec::new(),
        });
        let mut stop = stop_tx.subscribe();
        let stopped = async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        };
        let server =
            tokio::spawn(api::serve(listener, context, None, ConnectionLimits::default(), stopped));
        tokio::net::TcpStream::connect(addr).await.expect("the API is up");
        (addr, server)
    }

    /// Regression (issue 13): a scheduler that could not start its store writer or alarm
    /// thread logged and returned, and `serve` then waited, API up, for a stop signal that
    /// never came. Now the stop goes out, the API closes and the error comes back at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_scheduler_that_cannot_start_stops_the_api_and_fails_the_host() {
        let db = TempDb::new("daemon-start-failure");
        let (stop_tx, _stop_rx) = watch::channel(false);
        let (addr, server) = api_on_loopback(&db, &stop_tx).await;
        let forced = std::io::Error::other("forced by the test");
        let failing = async { Err(SchedulerError::AlarmThread(forced)) };
        let never = std::future::pending::<()>();
        let ended = run_until_stopped(failing, never, &stop_tx, Some(server));
        let outcome = tokio::time::timeout(Duration::from_secs(10), ended)
            .await
            .expect("the host returns instead of hanging");
        let err = anyhow::Error::from(outcome.unwrap_err());
        assert_eq!(
            format!("{err:#}"),
            "cannot start the scheduler's alarm thread: forced by the test"
        );
        assert!(*stop_tx.borrow(), "the stop signal went out");
        let refused = tokio::net::TcpStream::connect(addr).await;
        assert!(refused.is_err(), "the API stopped with the host");
    }

    /// The ordinary path: the shutdown future resolves, the scheduler hears the stop, winds
    /// down and returns; the API is stopped and awaited.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_shutdown_stops_the_scheduler_and_the_api() {
        let db = TempDb::new("daemon-shutdown");
        let (stop_tx, stop_rx) = watch::channel(false);
        let (addr, server) = api_on_loopback(&db, &stop_tx).await;
        let scheduling = async move {
            let mut stop = stop_rx;
            stop.wait_for(|stopped| *stopped).await.expect("the stop signal went out");
            Ok(())
        };
        let ended = run_until_stopped(scheduling, async {}, &stop_tx, Some(server));
        tokio::time::timeout(Duration::from_secs(10), ended).await.unwrap().unwrap();
        assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the API stopped");
    }
}
