//! Background WAL checkpoints for the serving store.
//!
//! SQLite's automatic checkpoint runs inside whichever commit crosses the threshold, and
//! it fsyncs: measured here, 15-60 ms stalls while that commit holds the store's only
//! connection lock, so every claim behind it waits (benches/scheduler.rs). This thread
//! checkpoints PASSIVE-ly from its own connection instead: it never blocks writers, and a
//! WAL fully copied back lets the next write restart it from the beginning. The automatic
//! checkpoint stays on with a high threshold, as a bound if this thread falls behind.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use super::ticker::Ticker;

/// How often the background connection checkpoints.
const INTERVAL: Duration = Duration::from_millis(250);

/// Stops and joins the checkpoint thread when dropped.
pub(crate) struct Checkpointer {
    _ticker: Ticker,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path`; `None` if a connection cannot be opened
    /// (the automatic checkpoint then does the work, as before).
    pub(crate) fn start(path: &Path) -> Option<Self> {
        let conn = Connection::open(path).ok()?;
        conn.busy_timeout(Duration::from_secs(1)).ok()?;
        let ticker = Ticker::spawn("sandcron-checkpoint", INTERVAL, move || {
            let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            if let Err(err) = result {
                tracing::debug!("background checkpoint: {err}");
            }
        })?;
        Some(Checkpointer { _ticker: ticker })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropping_the_checkpointer_does_not_wait_out_the_interval() {
        let dir = std::env::temp_dir().join(format!("sandcron-checkpoint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let checkpointer = Checkpointer::start(&dir.join("db.sqlite")).expect("starts");
        std::thread::sleep(Duration::from_millis(20));
        let started = std::time::Instant::now();
        drop(checkpointer);
        assert!(started.elapsed() < INTERVAL / 2, "drop took {:?}", started.elapsed());
        std::fs::remove_dir_all(&dir).ok();
    }
}
