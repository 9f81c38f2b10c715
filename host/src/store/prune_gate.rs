//! Prune work never holds up a claim: a batch of pruning gives the store's connection up
//! the moment anyone else asks for it.
//!
//! Everything in a [`SqliteStore`](super::SqliteStore) goes through one connection behind
//! one lock, so a claim that arrives while a prune batch runs used to wait for the whole
//! batch (benches/prune.rs: claim p99 0.10 ms without a prune, 3.7 ms during one in
//! batches of 100 rows, 58 ms as one transaction). Smaller batches only shrink that wait.
//! Instead, whoever finds the connection locked says so ([`PruneGate::waiting`]) before it
//! blocks, and a prune batch runs with a SQLite progress handler that checks for such a
//! waiter every few hundred VM steps: when there is one, SQLite stops the `DELETE`
//! (`SQLITE_INTERRUPT`) and rolls it back (one statement in autocommit, so nothing of it
//! is kept; SQLite also asks once more after the commit, and then the batch is kept but
//! still reports the interrupt, so `retention.rs` counts rows by SQLite's change counter),
//! the lock is free, and the waiter goes on. The pruner then shrinks its next
//! batch and pauses before trying again (`retention.rs`), so it still finishes beside a
//! steady stream of claims. Only the commit of a batch cannot be cut short.
//!
//! Design decision: a progress handler rather than `sqlite3_interrupt` from the waiter. An
//! interrupt sent in the instant before the batch's statement starts is cleared by SQLite
//! when it starts, and the waiter then sat out the whole batch (seen in the bench: one
//! claim waited 285 ms). The handler polls a counter, so a waiter announced at any moment
//! is seen; and it is installed only around a prune batch, so no other statement can be
//! stopped by it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rusqlite::Connection;

/// VM steps between checks for a waiter: a few microseconds of work.
const CHECK_EVERY: i32 = 200;

/// Who waits for the connection, so that a prune batch can give way.
#[derive(Debug, Default)]
pub(crate) struct PruneGate {
    waiting: Arc<AtomicUsize>,
}

/// Counts one waiter until dropped.
pub(crate) struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl PruneGate {
    /// Announces a caller about to block on the connection lock, until dropped.
    pub(crate) fn waiting(&self) -> Waiting<'_> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        Waiting(&self.waiting)
    }

    /// Runs `batch` on `conn` (whose lock the caller holds) as prune work that stops with
    /// `SQLITE_INTERRUPT` (see [`is_interrupted`]) as soon as anyone waits for the lock.
    pub(crate) fn run<T>(&self, conn: &Connection, batch: impl FnOnce() -> T) -> T {
        /// Removes the handler however the batch ends, so no later statement is stopped.
        struct Remove<'a>(&'a Connection);
        impl Drop for Remove<'_> {
            fn drop(&mut self) {
                self.0.progress_handler(0, None::<fn() -> bool>);
            }
        }
        let waiting = self.waiting.clone();
        conn.progress_handler(CHECK_EVERY, Some(move || waiting.load(Ordering::SeqCst) > 0));
        let _remove = Remove(conn);
        batch()
    }
}

/// Whether `err` is SQLite stopping a prune batch for a waiter.
pub(crate) fn is_interrupted(err: &rusqlite::Error) -> bool {
    err.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted)
}
