//! Outbound network for guests: `wasi:http` requests and `wasi:sockets` TCP connects,
//! each checked against the job's `allowed_hosts` and capped per run (M5).
//!
//! Every component gets both interfaces linked (a component that imports them loads), and
//! every attempt goes through [`RunNet`], one per run: [`rules`] decides, `http` sends a
//! request to exactly the addresses it checked (one lookup by the host, so DNS rebinding
//! cannot swap an address in after the check), `sockets` does the same for TCP. A refusal
//! reaches the guest as the WASI error (`HTTP-request-denied`, `access-denied`) and the
//! run's log as one line that names the URL or address and the reason; the counts end up
//! in the run report as [`NetStats`].
//!
//! No entries: no request, no connection, no name lookup, and nothing is allocated beyond
//! the empty counters.

mod counted;
mod http;
mod rules;
mod sockets;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use tokio::sync::Semaphore;

use crate::config::{AllowedHost, NetLimits};
use crate::job::NetCounts;

pub(crate) use http::NetHooks;
pub(crate) use sockets::configure_sockets;

use super::LogLine;

/// Network log lines kept per run (a guest looping on refused requests gets the first
/// ones and a count, not a log flood). A line names the URL the guest asked for, so its
/// length is the guest's too, bounded by the `http` crate (64 KiB of authority, 64 KiB of
/// path); the lines are not cut here but charged against the log cap with the rest of the
/// run's log, after secrets are masked (a cut here could keep a secret's prefix).
const MAX_EVENTS: usize = 50;

/// What a run did on the network, for its report and the metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NetStats {
    /// The counts, as recorded with the run.
    #[serde(flatten)]
    pub counts: NetCounts,
    /// Per host and outcome, for the metrics (not serialized: the counts say it).
    #[serde(skip)]
    pub by_host: Vec<HostTally>,
}

/// Requests to one host (as the allowlist names it) that ended one way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostTally {
    /// The exact host, or the wildcard entry that admitted it (bounded by the manifest).
    pub host: String,
    /// `ok` (a response came back), `error` (connect, TLS, timeout, protocol) or `limit`.
    pub outcome: &'static str,
    /// How many.
    pub count: u64,
}

/// One run's network state, shared by the HTTP hooks, the socket check and the run.
pub(crate) struct RunNet {
    allowed: Vec<AllowedHost>,
    limits: NetLimits,
    requests: AtomicU64,
    refused: AtomicU64,
    limited: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    /// HTTP requests in flight; a permit lives as long as its response body.
    in_flight: std::sync::Arc<Semaphore>,
    /// Log lines and per-host tallies: written on the rare paths only (refusals, ends).
    journal: Mutex<Journal>,
    /// Addresses of the exact names in `tcp://` entries (with the entry's ports),
    /// resolved once per run.
    tcp_names: Mutex<Option<Vec<(std::net::IpAddr, crate::config::PortPattern)>>>,
}

#[derive(Default)]
struct Journal {
    events: Vec<LogLine>,
    events_dropped: u64,
    tallies: Vec<HostTally>,
}

impl RunNet {
    pub(crate) fn new(allowed: &[AllowedHost], limits: &NetLimits) -> Self {
        RunNet {
            allowed: allowed.to_vec(),
            limits: limits.clone(),
            requests: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            limited: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            in_flight: std::sync::Arc::new(Semaphore::new(limits.concurrent_requests as usize)),
            journal: Mutex::new(Journal::default()),
            tcp_names: Mutex::new(None),
        }
    }

    /// Takes one of the run's request slots, or says which cap stopped it.
    fn take_request(&self) -> Result<(), String> {
        let made = self.requests.fetch_add(1, Ordering::Relaxed);
        if made >= u64::from(self.limits.requests) {
            self.requests.fetch_sub(1, Ordering::Relaxed);
            return Err(format!(
                "the run's limit of {} requests is reached (limits.requests)",
                self.limits.requests
            ));
        }
        Ok(())
    }

    /// Records a refusal by the allowlist: the count and a log line with the reason.
    fn refuse(&self, what: &str, reason: &str) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        self.event("warn", format!("{what} refused: {reason}"));
    }

    /// Records a request stopped by a cap.
    fn limit(&self, what: &str, host: Option<&str>, reason: &str) {
        self.limited.fetch_add(1, Ordering::Relaxed);
        if let Some(host) = host {
            self.tally(host, "limit");
        }
        self.event("warn", format!("{what} stopped: {reason}"));
    }

    fn event(&self, level: &'static str, message: String) {
        let mut journal = self.journal.lock().expect("net journal");
        if journal.events.len() < MAX_EVENTS {
            journal.events.push(LogLine::now(level, message));
        } else {
            journal.events_dropped += 1;
        }
    }

    fn tally(&self, host: &str, outcome: &'static str) {
        let mut journal = self.journal.lock().expect("net journal");
        match journal.tallies.iter_mut().find(|t| t.host == host && t.outcome == outcome) {
            Some(tally) => tally.count += 1,
            None => journal.tallies.push(HostTally { host: host.to_string(), outcome, count: 1 }),
        }
    }

    /// The run's network log lines and counts, taken at the end of the run.
    pub(crate) fn finish(&self) -> (Vec<LogLine>, NetStats) {
        let mut journal = self.journal.lock().expect("net journal");
        let mut events = std::mem::take(&mut journal.events);
        if journal.events_dropped > 0 {
            let message =
                format!("… {} more network refusals or stops not logged", journal.events_dropped);
            events.push(LogLine::now("warn", message));
        }
        let counts = NetCounts {
            requests: self.requests.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            limited: self.limited.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
        };
        let stats = NetStats { counts, by_host: std::mem::take(&mut journal.tallies) };
        (events, stats)
    }
}

/// For `benches/net.rs`: one GET through the allowlist sender exactly as a guest's request
/// goes (policy, lookup, pinned connect, counted body), read to the end; returns the status
/// and the body length.
#[doc(hidden)]
pub async fn bench_checked_get(
    allowed: &[AllowedHost],
    limits: &NetLimits,
    url: &str,
) -> Result<(u16, usize), String> {
    use http_body_util::BodyExt;
    let net = std::sync::Arc::new(RunNet::new(allowed, limits));
    let body = http_body_util::Empty::new().map_err(|never| match never {}).boxed_unsync();
    let request = ::http::Request::get(url).body(body).map_err(|e| e.to_string())?;
    let (response, io) = net.send_http(request, None).await.map_err(|e| e.to_string())?;
    let io = tokio::spawn(Box::into_pin(io));
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    io.abort();
    Ok((status, bytes.len()))
}
