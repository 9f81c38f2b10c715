//! The SQLite schema: migrations applied in order, the schema version kept in
//! `PRAGMA user_version`, so an older store upgrades on open and a current one is untouched.

use rusqlite::{Connection, TransactionBehavior};

/// Schema migrations, applied in order; the index + 1 is the schema version.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: per-job key-value state.
    "CREATE TABLE job_state (
         job   TEXT NOT NULL,
         key   TEXT NOT NULL,
         value BLOB NOT NULL,
         updated_at_ms INTEGER NOT NULL,
         PRIMARY KEY (job, key)
     ) WITHOUT ROWID;",
    // 2: the slot ledger (runs) and jobs' scheduling state.
    "CREATE TABLE runs (
         id              INTEGER PRIMARY KEY,
         run_id          TEXT NOT NULL UNIQUE,
         job             TEXT NOT NULL,
         slot_ms         INTEGER,
         attempt         INTEGER NOT NULL,
         status          TEXT NOT NULL,
         reason          TEXT NOT NULL DEFAULT '',
         outcome         TEXT NOT NULL DEFAULT '',
         trigger_kind    TEXT NOT NULL,
         version         TEXT NOT NULL,
         idempotency_key TEXT NOT NULL,
         owner           TEXT NOT NULL,
         scheduled_at_ms INTEGER NOT NULL,
         started_at_ms   INTEGER,
         finished_at_ms  INTEGER,
         duration_ms     REAL,
         fuel_used       INTEGER,
         peak_memory     INTEGER,
         output          TEXT NOT NULL DEFAULT '',
         logs_json       TEXT NOT NULL DEFAULT '[]',
         retry_at_ms     INTEGER
     );
     -- S3: one claim per scheduled slot and attempt ...
     CREATE UNIQUE INDEX runs_slot ON runs (job, slot_ms, attempt) WHERE slot_ms IS NOT NULL;
     -- ... and per manual idempotency key and attempt.
     CREATE UNIQUE INDEX runs_manual ON runs (job, idempotency_key, attempt)
         WHERE slot_ms IS NULL;
     CREATE INDEX runs_job ON runs (job, id DESC);
     -- Small by construction: only what is running now (or was, when a host died).
     CREATE INDEX runs_running ON runs (owner) WHERE status = 'running';
     CREATE INDEX runs_retry ON runs (retry_at_ms) WHERE retry_at_ms IS NOT NULL;
     CREATE TABLE jobs (
         name                 TEXT PRIMARY KEY,
         version              TEXT NOT NULL,
         schedule             TEXT NOT NULL,
         paused               INTEGER NOT NULL DEFAULT 0,
         pause_note           TEXT NOT NULL DEFAULT '',
         breaker              TEXT NOT NULL DEFAULT 'closed',
         breaker_until_ms     INTEGER,
         consecutive_failures INTEGER NOT NULL DEFAULT 0,
         schedule_epoch_ms    INTEGER NOT NULL,
         updated_at_ms        INTEGER NOT NULL
     ) WITHOUT ROWID;",
    // 3: look-ups by idempotency key (a manual trigger's key is answered from the ledger).
    "CREATE INDEX runs_key ON runs (job, idempotency_key);",
    // 4: a run's network counts (JSON `NetCounts`, M5), NULL when it made no request.
    "ALTER TABLE runs ADD COLUMN net_json TEXT;",
    // 5: the latest failed load of each job (M7), shown by `jobs`, the API and dashboard.
    "CREATE TABLE load_errors (
         name            TEXT PRIMARY KEY,
         error           TEXT NOT NULL,
         running_version TEXT,
         at_ms           INTEGER NOT NULL
     ) WITHOUT ROWID;",
    // 6: jobs whose latest version compiles in the background (a cold compile), shown by
    // `jobs` and the dashboard until it loads.
    "CREATE TABLE compiling (
         name            TEXT PRIMARY KEY,
         since_ms        INTEGER NOT NULL,
         running_version TEXT
     ) WITHOUT ROWID;",
];

/// Applies the migrations `conn` has not seen yet, in one transaction.
pub(super) fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current = |conn: &Connection| -> rusqlite::Result<usize> {
        conn.pragma_query_value(None, "user_version", |row| row.get(0))
    };
    if current(conn)? >= MIGRATIONS.len() {
        return Ok(());
    }
    // IMMEDIATE takes the write lock first, so two processes opening an old database at
    // once migrate one after the other (the busy timeout waits), and the version is re-read
    // under the lock so the second one does not replay what the first applied.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version = current(&tx)?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index + 1)?;
    }
    tx.commit()
}
