//! `sandcron serve`: the long-running host. Builds the two tokio runtimes (scheduler and
//! guest pool), turns SIGTERM/SIGINT into the shutdown future, and hands off to the daemon.

use std::net::SocketAddr;

use crate::api::{ApiTls, ConnectionLimits, connection_budget};
use crate::api_url::Scheme;
use crate::cli::ServeArgs;
use crate::config::host_notify;
use crate::daemon::{Handed, ServeConfig, lock_store, serve};

use super::listen::ListenFrom;

use super::{Exit, default_cache_dir, default_store_path};

/// Runs the host until SIGTERM or SIGINT.
pub fn main(args: ServeArgs) -> Exit {
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()) * 2);
    if args.api_max_connections == 0 || args.api_idle_timeout.0.is_zero() {
        eprintln!("error: --api-max-connections and --api-idle-timeout must be above zero");
        return Exit::InvalidInput;
    }
    let max_connections = connection_budget(args.api_max_connections, fd_limit(), workers);
    if max_connections < args.api_max_connections {
        tracing::warn!(
            "the descriptor limit (ulimit -n {}) leaves room for {max_connections} API \
             connections, not --api-max-connections {}",
            fd_limit(),
            args.api_max_connections
        );
    }
    let api_tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => match ApiTls::load(cert, key) {
            Ok(tls) => Some(tls),
            Err(err) => {
                eprintln!("error: --tls-cert/--tls-key: {err}");
                return Exit::InvalidInput;
            }
        },
        _ => None,
    };
    match (args.api.scheme(), &api_tls) {
        (Some(Scheme::Https), None) if !args.no_api => {
            eprintln!("error: --api {} needs --tls-cert FILE and --tls-key FILE", args.api);
            return Exit::InvalidInput;
        }
        (Some(Scheme::Http), Some(_)) => {
            eprintln!("error: --api {} is plain http, but --tls-cert is given", args.api);
            return Exit::InvalidInput;
        }
        _ => {}
    }
    let api = match args.api.socket_addr() {
        Ok(addr) => addr,
        Err(err) => {
            eprintln!("error: --api {}: cannot resolve the host: {err}", args.api);
            return Exit::InvalidInput;
        }
    };
    let notify = match &args.config {
        None => Default::default(),
        Some(path) => {
            match super::serve_config::read(path).and_then(|text| host_notify(&text, path)) {
                Ok(settings) => settings,
                Err(err) => {
                    eprintln!("error: {err}");
                    return Exit::InvalidInput;
                }
            }
        }
    };
    let token = match super::token::resolve(args.token.as_deref(), args.token_file.as_deref()) {
        Ok(token) => token,
        Err(err) => {
            eprintln!("error: {err}");
            return Exit::InvalidInput;
        }
    };
    let config = ServeConfig {
        jobs_dir: args.jobs.clone(),
        store: args.store.clone().unwrap_or_else(default_store_path),
        cache_dir: (!args.runtime.no_cache)
            .then(|| args.runtime.cache_dir.clone().unwrap_or_else(default_cache_dir)),
        pooling: !args.runtime.no_pool,
        workers,
        grace: args.grace.0,
        claim_ahead: args.claim_ahead.0,
        token,
        api_tls,
        insecure_http: args.insecure_http,
        api_limits: ConnectionLimits { max_connections, idle_timeout: args.api_idle_timeout.0 },
        api_hosts: args.api_host.clone(),
        retention: crate::store::RetentionPolicy {
            max_age: args.retention.retention_max_age.map(|span| span.0),
            max_runs: args.retention.retention_max_runs,
            keep_last_failure: args.retention.retention_keep_last_failure,
        },
        notify,
    };
    if !config.jobs_dir.is_dir() {
        eprintln!("error: jobs folder {} does not exist", config.jobs_dir.display());
        return Exit::InvalidInput;
    }
    // A requested address is judged before anything is bound; an inherited socket once it
    // is taken (it may be bound anywhere).
    let from = ListenFrom::choose(args.api_fd, api);
    if let ListenFrom::Bind(addr) = from
        && !args.no_api
        && let Err(exit) = refuse_exposed(&config, addr, &format!("--api {}", args.api))
    {
        return exit;
    }
    // The store first: a second host on one store is told so, whatever its port.
    let store_lock = match lock_store(&config.store) {
        Ok(lock) => lock,
        Err(err) => {
            eprintln!("error: {err:#}");
            return Exit::HostError;
        }
    };
    let listener = match (!args.no_api).then(|| from.listener()).transpose() {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("error: {err:#}");
            return Exit::HostError;
        }
    };
    if !matches!(from, ListenFrom::Bind(_))
        && let Some(addr) = listener.as_ref().and_then(|l| l.local_addr().ok())
        && let Err(exit) =
            refuse_exposed(&config, addr, &format!("the API socket handed over ({addr})"))
    {
        return exit;
    }
    let guests = match tokio::runtime::Builder::new_multi_thread()
        .thread_name("sandcron-guest")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the guest pool: {err}");
            return Exit::HostError;
        }
    };
    let host = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("sandcron-host")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the host runtime: {err}");
            return Exit::HostError;
        }
    };
    let handed = Handed { store_lock, api: listener };
    let result = host.block_on(serve(config, handed, guests.handle().clone(), shutdown_signal()));
    guests.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => Exit::Success,
        Err(err) => {
            eprintln!("error: {err:#}");
            Exit::HostError
        }
    }
}

/// Refuses an API that others could reach without a token, or that would carry the token
/// in clear text; `shown` names the address the way the operator gave it.
fn refuse_exposed(config: &ServeConfig, addr: SocketAddr, shown: &str) -> Result<(), Exit> {
    if !crate::api::needs_token(&addr) {
        return Ok(());
    }
    if config.token.is_none() {
        eprintln!(
            "error: {shown} is not a loopback address: anyone who can reach it could run and \
             pause jobs. Set --token-file (or --token), or bind 127.0.0.1."
        );
        return Err(Exit::InvalidInput);
    }
    if config.api_tls.is_none() && !config.insecure_http {
        eprintln!(
            "error: {shown} is not a loopback address, and plain HTTP would carry the token \
             and every request in clear text. Serve TLS with --tls-cert FILE --tls-key FILE, \
             or pass --insecure-http if something else encrypts the path (a VPN, a TLS proxy)."
        );
        return Err(Exit::InvalidInput);
    }
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        tracing::error!("cannot listen for SIGTERM/SIGINT; stop the host with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}

/// The soft limit on open descriptors (`ulimit -n`); unlimited if it cannot be read.
#[allow(unsafe_code)]
fn fd_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit only writes the struct it is given, which outlives the call.
    let read = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if read == 0 { limit.rlim_cur } else { u64::MAX }
}
