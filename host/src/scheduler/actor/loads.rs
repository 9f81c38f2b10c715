//! What the store says about loads, kept true (M7; issue 15 points 2 and 3): a job whose
//! latest edit failed shows the error beside the version still running, a job file that
//! never loaded is listed as invalid, and jobs that left the folder while no host ran are
//! forgotten when the next host has read the folder.
//!
//! The errors, and the jobs compiling in the background (a cold compile), live in the
//! store (`load_errors`, `compiling`), not only in this actor, because `sandcron jobs`
//! reads the store directly, with or without a host running.

use super::Scheduler;
use crate::store::{CompilingRow, LoadErrorRow};

impl Scheduler {
    /// A job's latest version is compiling in the background; a running version keeps
    /// running meanwhile.
    pub(super) fn on_compiling(&mut self, name: String, since_ms: i64) {
        let running_version = self.jobs.get(&name).map(|entry| entry.def.version.clone());
        let waiting = if running_version.is_some() {
            "its running version keeps running meanwhile"
        } else {
            "its slots until then are missed or caught up per its misfire policy"
        };
        tracing::info!(job = %name, "job compiling in the background; {waiting}");
        let row = CompilingRow { name: name.clone(), since_ms, running_version };
        if let Err(err) = self.services.ledger.set_compiling(&row) {
            tracing::error!(job = %name, "cannot record the compile in the background: {err}");
        }
        self.compiling.insert(name, since_ms);
    }

    /// The job's compile in the background ended (it loaded, failed or was abandoned, or
    /// the job left the folder); returns when it began, if one was going on.
    pub(super) fn compile_ended(&mut self, name: &str) -> Option<i64> {
        let since_ms = self.compiling.remove(name)?;
        if let Err(err) = self.services.ledger.clear_compiling(name) {
            tracing::error!(job = %name, "cannot clear the compile in the background: {err}");
        }
        Some(since_ms)
    }

    /// A job file failed to load: a running job keeps its version and carries the error;
    /// a job with no running version is listed as invalid.
    pub(super) fn on_invalid(&mut self, name: String, error: String) {
        let running = self.jobs.get(&name).map(|entry| entry.def.version.clone());
        let keeps = if running.is_some() { "; the previous version keeps running" } else { "" };
        tracing::error!(job = %name, "invalid job not loaded: {error}{keeps}");
        self.services.metrics.reload_error(&name);
        self.services.notify.reload_error(self.jobs.get(&name).map(|e| &e.def.spec), &name, &error);
        let row = LoadErrorRow {
            name: name.clone(),
            error: error.clone(),
            running_version: running.clone(),
            at_ms: self.now(),
        };
        if let Err(err) = self.services.ledger.set_load_error(&row) {
            tracing::error!(job = %name, "cannot record the load error: {err}");
        }
        if running.is_some() {
            self.load_errors.insert(name, error);
        } else {
            self.invalid.insert(name, error);
        }
    }

    /// The job loaded or left the folder: an earlier failed load no longer applies.
    pub(super) fn forget_load_error(&mut self, name: &str) {
        let had = self.invalid.remove(name).is_some() | self.load_errors.remove(name).is_some();
        if had && let Err(err) = self.services.ledger.clear_load_error(name) {
            tracing::error!(job = %name, "cannot clear the load error: {err}");
        }
    }

    /// Once the folder has been read: job rows of jobs that are neither loaded, invalid nor
    /// compiling in the background (deleted while no host ran) are forgotten, as a removal
    /// would have, and so are load errors and compiles of an earlier host that no longer
    /// hold.
    pub(super) fn reconcile_store(&mut self) {
        let ledger = &self.services.ledger;
        let known = |name: &str| {
            self.jobs.contains_key(name)
                || self.invalid.contains_key(name)
                || self.compiling.contains_key(name)
        };
        match ledger.jobs() {
            Ok(rows) => {
                for row in rows.iter().filter(|row| !known(&row.name)) {
                    tracing::info!(job = %row.name, "job left the folder while the host was stopped; forgotten");
                    if let Err(err) = ledger.remove_job(&row.name) {
                        tracing::error!(job = %row.name, "cannot forget the removed job: {err}");
                    }
                }
            }
            Err(err) => tracing::error!("cannot read the job rows to reconcile them: {err}"),
        }
        match ledger.load_errors() {
            Ok(rows) => {
                let stale = |name: &str| {
                    !self.invalid.contains_key(name) && !self.load_errors.contains_key(name)
                };
                for row in rows.iter().filter(|row| stale(&row.name)) {
                    if let Err(err) = ledger.clear_load_error(&row.name) {
                        tracing::error!(job = %row.name, "cannot clear the load error: {err}");
                    }
                }
            }
            Err(err) => tracing::error!("cannot read the load errors to reconcile them: {err}"),
        }
        // A compile an earlier host left unfinished (it stopped or crashed meanwhile).
        match ledger.compiling() {
            Ok(rows) => {
                for row in rows.iter().filter(|row| !self.compiling.contains_key(&row.name)) {
                    if let Err(err) = ledger.clear_compiling(&row.name) {
                        tracing::error!(job = %row.name, "cannot clear the compile: {err}");
                    }
                }
            }
            Err(err) => tracing::error!("cannot read the compiles to reconcile them: {err}"),
        }
    }
}
