//! Connection slots: at most a fixed number of API connections are open at once (each holds
//! a descriptor the store and the watcher may need), and which of them may be closed to
//! make room for a new one.
//!
//! A connection is busy from the moment a whole request has arrived until its response
//! body is written ([`Slot::busy`], [`Tracked`]), and idle otherwise: between keep-alive
//! requests, or while a client takes its time sending a request. When every slot is
//! taken, the connection idle the longest is closed to let the newcomer in. Closing an idle
//! connection loses no request (HTTP clients open a new one), whereas making the newcomer
//! (a health probe, a CLI verb) wait could take a whole idle timeout per queue of idle
//! connections ahead of it.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// How often a newcomer that found every slot busy looks again for one gone idle.
const RECHECK: Duration = Duration::from_millis(100);

/// The open connections and the permits that bound them.
pub struct Slots {
    permits: Arc<Semaphore>,
    open: Mutex<HashMap<u64, Arc<Slot>>>,
    next_id: AtomicU64,
    /// Where `Slot::idle_since_us` counts from.
    epoch: Instant,
}

/// One open connection's state, shared by its task and the accept loop.
pub struct Slot {
    id: u64,
    /// Requests received whole whose response body is not written yet.
    busy: AtomicUsize,
    /// Since when (µs after `Slots::epoch`) the connection has had nothing to do.
    idle_since_us: AtomicU64,
    /// Asks the connection's task to close it (if it is still idle when it looks).
    evict: Notify,
    epoch: Instant,
}

/// A slot held by a connection: leaves the table and frees its permit when dropped.
pub struct Held {
    slot: Arc<Slot>,
    slots: Arc<Slots>,
    _permit: OwnedSemaphorePermit,
}

/// Marks a slot busy until dropped.
pub struct Busy(Arc<Slot>);

impl Slots {
    /// Room for `max` connections.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Slots {
            permits: Arc::new(Semaphore::new(max)),
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    /// A slot for a newly accepted connection: a free one at once, else one freed by
    /// closing the connection idle the longest, else (all busy) the first to free up.
    pub async fn take(self: &Arc<Self>) -> Held {
        let permit = loop {
            if let Ok(permit) = self.permits.clone().try_acquire_owned() {
                break permit;
            }
            self.evict_longest_idle();
            let wait = self.permits.clone().acquire_owned();
            if let Ok(Ok(permit)) = tokio::time::timeout(RECHECK, wait).await {
                break permit;
            }
        };
        let slot = Arc::new(Slot {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            busy: AtomicUsize::new(0),
            idle_since_us: AtomicU64::new(0),
            evict: Notify::new(),
            epoch: self.epoch,
        });
        slot.mark_idle();
        self.table().insert(slot.id, slot.clone());
        Held { slot, slots: self.clone(), _permit: permit }
    }

    /// Asks every idle connection to close (shutdown).
    pub fn close_idle(&self) {
        for slot in self.table().values().filter(|slot| slot.is_idle()) {
            slot.evict.notify_one();
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.table().len()
    }

    fn evict_longest_idle(&self) {
        let table = self.table();
        let longest = table
            .values()
            .filter(|slot| slot.is_idle())
            .min_by_key(|slot| (slot.idle_since_us.load(Ordering::Relaxed), slot.id));
        if let Some(slot) = longest {
            slot.evict.notify_one();
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Slot>>> {
        self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Slot {
    /// Marks the connection busy until the guard is dropped.
    pub fn busy(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
    }

    /// Whether no request is in flight on this connection.
    pub fn is_idle(&self) -> bool {
        self.busy.load(Ordering::Acquire) == 0
    }

    /// Resolves when the accept loop (or shutdown) asks this connection to close.
    pub async fn evicted(&self) {
        self.evict.notified().await;
    }

    fn mark_idle(&self) {
        let now = self.epoch.elapsed().as_micros() as u64;
        self.idle_since_us.store(now, Ordering::Relaxed);
    }
}

impl Held {
    /// The slot, for the connection's requests to mark busy.
    pub fn slot(&self) -> &Arc<Slot> {
        &self.slot
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.slots.table().remove(&self.slot.id);
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.mark_idle();
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its connection busy until hyper has written it all (or
/// dropped it with the connection).
pub struct Tracked<B> {
    inner: B,
    _busy: Busy,
}

impl<B> Tracked<B> {
    /// `inner`, holding `busy` until done.
    pub fn new(inner: B, busy: Busy) -> Self {
        Tracked { inner, _busy: busy }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Tracked<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_table_closes_the_longest_idle_connection_not_a_busy_one() {
        let slots = Slots::new(3);
        let (a, b, c) = (slots.take().await, slots.take().await, slots.take().await);
        let _busy = a.slot().busy(); // the oldest, but busy
        // Idle times count in ms: let c's come strictly after b's, or the two tie.
        tokio::time::sleep(Duration::from_millis(5)).await;
        drop(c.slot().busy()); // idle again just now
        assert_eq!(slots.open(), 3);
        // The fourth waits until the longest idle one (b) has been asked to close and has.
        let fourth = tokio::spawn({
            let slots = slots.clone();
            async move { slots.take().await }
        });
        tokio::time::timeout(Duration::from_secs(1), b.slot().evicted()).await.unwrap();
        assert!(!fourth.is_finished());
        drop(b);
        let d = tokio::time::timeout(Duration::from_secs(1), fourth).await.unwrap().unwrap();
        assert_eq!(slots.open(), 3);
        let a_asked = tokio::time::timeout(Duration::from_millis(50), a.slot().evicted()).await;
        assert!(a_asked.is_err(), "a busy connection is never asked to close");
        drop((a, c, d));
        assert_eq!(slots.open(), 0);
    }
}
