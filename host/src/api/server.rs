//! The API's listener: our own accept loop over hyper's HTTP/1 connections, because
//! `axum::serve` keeps every connection as long as the client likes and accepts as many as
//! arrive (hardening issue 6: 1,100 idle connections used up the host's descriptors, so
//! `/healthz` timed out and the watcher could not read the jobs folder).
//!
//! - At most [`ConnectionLimits::max_connections`] connections are open ([`Slots`]), a
//!   number kept below the descriptor limit by [`connection_budget`]; a newcomer at the
//!   cap takes the slot of the connection idle the longest.
//! - A connection must send a complete request within the idle timeout: hyper's header
//!   read timeout covers the head and the wait for the next request on keep-alive,
//!   [`BodyDeadline`] the body, and [`WriteStall`] a response the client stops reading.
//! - HTTP/1.1 only: every client of this API (the CLI, browsers, curl, Prometheus) speaks
//!   it, and cleartext HTTP/2 would need idle handling of its own.
//! - With TLS (`tls`), the handshake runs in the connection's task, after it has its slot:
//!   it counts as idle time, so the idle timeout bounds it and an eviction or shutdown
//!   ends it, and a slow handshake never holds up the accept loop.
//! - Shutdown stops accepting, closes idle connections, lets busy ones finish their
//!   response, and waits one idle timeout at most.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body::Body as _;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;

use super::ApiError;
use super::guard::ConnectedTo;
use super::slots::{Busy, Held, Slot, Slots, Tracked};
use super::throttle::ClientAddr;
use super::timeouts::{BodyDeadline, WriteStall};
use super::tls::{self, Accepted, ApiTls};

/// How many connections the API serves and how long it waits for them.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Connections open at once; see [`connection_budget`].
    pub max_connections: usize,
    /// A connection that sends no complete request (head, then body) within this is
    /// closed, and so is one whose response makes no progress for this long.
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits { max_connections: 256, idle_timeout: Duration::from_secs(10) }
    }
}

/// Descriptors kept for everything but API connections: the store (database, WAL and
/// shared-memory files for the writer, the API's reader and the checkpointer), the
/// watcher, the runtimes' epoll and event descriptors, the compile cache, stdio.
const RESERVED_FDS: u64 = 64;
/// And per worker: a running job's outbound sockets (8 at once by default) and its
/// preopened directories.
const FDS_PER_WORKER: u64 = 10;
/// However low the limit, an API that takes no connection could not even be checked.
const MIN_CONNECTIONS: usize = 8;

/// The connection cap for a host with `workers` workers whose soft descriptor limit
/// (`RLIMIT_NOFILE`) is `fd_limit`: `configured`, lowered so that API connections can never
/// take the descriptors the rest of the host needs.
pub fn connection_budget(configured: usize, fd_limit: u64, workers: usize) -> usize {
    let reserved = RESERVED_FDS.saturating_add(FDS_PER_WORKER.saturating_mul(workers as u64));
    let room = usize::try_from(fd_limit.saturating_sub(reserved)).unwrap_or(usize::MAX);
    configured.min(room).max(MIN_CONNECTIONS)
}

/// Serves `router` on `listener` (over TLS when `tls` is given) until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<ApiTls>,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let slots = Slots::new(limits.max_connections);
    let (closing, closing_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(err) => {
                accept_failed(err).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        // The accepted stream waits here for a slot: one descriptor over the cap at most.
        let held = tokio::select! {
            held = slots.take() => held,
            () = &mut shutdown => break,
        };
        let connection =
            serve_stream(stream, tls.clone(), router.clone(), limits, held, closing_rx.clone());
        connections.spawn(connection);
    }
    drop(listener);
    let _ = closing.send(true);
    slots.close_idle();
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(limits.idle_timeout, drained).await.is_err() {
        tracing::warn!(open = slots.open(), "API connections still open at shutdown are closed");
    }
    Ok(())
}

/// After a failed `accept`: go on at once if only that connection failed, else (out of
/// descriptors or memory) pause so the loop does not spin while nothing can be accepted.
async fn accept_failed(err: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset, Interrupted};
    if matches!(err.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted) {
        return;
    }
    tracing::warn!("cannot accept an API connection: {err}");
    tokio::time::sleep(Duration::from_millis(250)).await;
}

/// One accepted connection: straight to HTTP, or first through the TLS handshake, bounded
/// like a request by the idle timeout and ended early by an eviction or shutdown.
async fn serve_stream(
    stream: TcpStream,
    tls: Option<ApiTls>,
    router: Router,
    limits: ConnectionLimits,
    held: Held,
    mut closing: watch::Receiver<bool>,
) {
    // Who is at each end, for the handlers: the Host check accepts the address connected
    // to, and the sign-in throttle counts attempts per client address.
    let ends = Ends { local: stream.local_addr().ok(), peer: stream.peer_addr().ok() };
    let Some(tls) = tls else {
        return serve_connection(stream, ends, router, limits, held, closing).await;
    };
    let handshake = tokio::time::timeout(limits.idle_timeout, tls::accept(&tls, stream));
    let accepted = tokio::select! {
        accepted = handshake => accepted,
        () = held.slot().evicted() => return,
        _ = closing.wait_for(|closing| *closing) => return,
    };
    match accepted {
        Ok(Ok(Accepted::Tls(stream))) => {
            serve_connection(*stream, ends, router, limits, held, closing).await;
        }
        Ok(Ok(Accepted::Plain(stream))) => {
            serve_connection(stream, ends, tls::https_required(), limits, held, closing).await;
        }
        Ok(Err(err)) => tracing::debug!("API TLS handshake failed: {err}"),
        Err(_) => tracing::debug!("API TLS handshake unfinished after {:?}", limits.idle_timeout),
    }
}

/// The addresses at both ends of an accepted connection.
#[derive(Clone, Copy)]
struct Ends {
    local: Option<std::net::SocketAddr>,
    peer: Option<std::net::SocketAddr>,
}

/// Drives one connection until it ends, is closed to make room, or shutdown closes it.
async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    Ends { local, peer }: Ends,
    router: Router,
    limits: ConnectionLimits,
    held: Held,
    mut closing: watch::Receiver<bool>,
) {
    let slot = held.slot().clone();
    let timeout = limits.idle_timeout;
    let service = service_fn(move |mut request: Request<Incoming>| {
        let extensions = request.extensions_mut();
        if let Some(local) = local {
            extensions.insert(ConnectedTo(local));
        }
        if let Some(peer) = peer {
            extensions.insert(ClientAddr(peer));
        }
        handle(router.clone(), slot.clone(), timeout, request)
    });
    let io = TokioIo::new(WriteStall::new(stream, timeout));
    let mut connection = pin!(
        http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(timeout)
            .serve_connection(io, service)
    );
    let mut finishing = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!("API connection ended: {err}");
                }
                return;
            }
            () = held.slot().evicted() => {
                if held.slot().is_idle() {
                    return;
                }
            }
            _ = closing.wait_for(|closing| *closing), if !finishing => {
                if held.slot().is_idle() {
                    return;
                }
                finishing = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// One request: the router's answer, with the body held to its deadline. The connection
/// is busy from the moment the whole request has arrived until its response is written;
/// while the body is still coming it is as idle as one still sending its head.
async fn handle(
    router: Router,
    slot: Arc<Slot>,
    timeout: Duration,
    request: Request<Incoming>,
) -> Result<Response, Infallible> {
    let expired = Arc::new(AtomicBool::new(false));
    let received: Arc<Mutex<Option<Busy>>> = Arc::default();
    let request = request.map(|body| {
        if body.is_end_stream() {
            *lock(&received) = Some(slot.busy());
            return Body::new(body);
        }
        let on_end = {
            let (slot, received) = (slot.clone(), received.clone());
            move || *lock(&received) = Some(slot.busy())
        };
        Body::new(BodyDeadline::new(body, Instant::now() + timeout, expired.clone(), on_end))
    });
    let response = router.oneshot(request).await?;
    let response =
        if expired.load(Ordering::Relaxed) { request_timeout(timeout) } else { response };
    let busy = lock(&received).take().unwrap_or_else(|| slot.busy());
    Ok(response.map(|body| Body::new(Tracked::new(body, busy))))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// 408 for a body that did not arrive in time; the connection closes after it.
fn request_timeout(timeout: Duration) -> Response {
    let message = format!("the request body did not arrive within {timeout:?}");
    let mut response =
        ApiError::new(StatusCode::REQUEST_TIMEOUT, "request_timeout", message).into_response();
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_leaves_the_rest_of_the_host_its_descriptors() {
        // The default limit of most shells, 4 workers: the configured cap fits.
        assert_eq!(connection_budget(256, 1024, 4), 256);
        // The fault campaign's setting scaled down: 256 descriptors, 4 workers.
        assert_eq!(connection_budget(256, 256, 4), 256 - 64 - 40);
        // More workers, less room; never none at all.
        assert_eq!(connection_budget(256, 256, 16), 256 - 64 - 160);
        assert_eq!(connection_budget(256, 100, 16), MIN_CONNECTIONS);
        // No limit at all.
        assert_eq!(connection_budget(256, u64::MAX, 64), 256);
    }
}
