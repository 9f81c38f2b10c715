//! The set of jobs: added, replaced (a new version, an edited schedule), removed or
//! invalid (R5, S5), and each job's durable record (its breaker and pause survive a restart).

use super::*;
use crate::store::RunFilter;

impl Scheduler {
    pub(super) fn on_event(&mut self, event: JobEvent) {
        match event {
            JobEvent::Upsert(def) => {
                self.forget_load_error(&def.spec.name);
                self.upsert(def)
            }
            JobEvent::Remove(name) => {
                self.forget_load_error(&name);
                self.compile_ended(&name);
                self.release_claim_ahead(&name);
                if let Some(entry) = self.jobs.remove(&name) {
                    self.services.metrics.queue_change(-(entry.waiting.len() as i64));
                    self.services.metrics.job_removed(&name);
                    tracing::info!(job = %name, "job removed; it will not be scheduled again");
                    if let Err(err) = self.services.ledger.remove_job(&name) {
                        tracing::error!(job = %name, "cannot forget the removed job: {err}");
                    }
                }
            }
            JobEvent::InitialScanDone => {
                tracing::info!(
                    jobs = self.jobs.len(),
                    invalid = self.invalid.len(),
                    compiling = self.compiling.len(),
                    "jobs folder loaded; ready"
                );
                self.reconcile_store();
                self.ready = true;
            }
            JobEvent::Invalid { name, error } => {
                self.compile_ended(&name);
                self.on_invalid(name, error)
            }
            JobEvent::Compiling { name, since_ms } => self.on_compiling(name, since_ms),
            JobEvent::CompileAbandoned(name) => {
                self.compile_ended(&name);
            }
        }
    }

    pub(super) fn upsert(&mut self, def: Arc<JobDef>) {
        let now = self.now();
        let name = def.spec.name.clone();
        // A job that compiled in the background came into the folder when its load began.
        let arrived_ms = self.compile_ended(&name).unwrap_or(now);
        let record = def.spec.timing.schedule.as_ref().map_or_else(String::new, |s| s.to_record());
        // A claim sent ahead names the old version (and maybe a slot the edit drops).
        self.release_claim_ahead(&name);
        if let Some(entry) = self.jobs.get_mut(&name) {
            if entry.def.version != def.version {
                tracing::info!(job = %name, version = %def.version, "new version loaded; runs in flight finish on the old one");
                entry.new_version_failures = 0;
            }
            entry.def = def;
            if entry.schedule_record == record {
                self.persist_job(&name);
                return;
            }
            // S5: an edited schedule starts from the edit and never fires a slot because of it.
            entry.schedule_record = record;
            entry.schedule_epoch_ms = now;
            self.next_generation += 1;
            entry.generation = self.next_generation;
            self.persist_job(&name);
            self.queue_next(&name, now);
            return;
        }

        let stored = self.services.ledger.job(&name).unwrap_or_else(|err| {
            tracing::error!(job = %name, "cannot read job record: {err}");
            None
        });
        let paused = stored.as_ref().filter(|row| row.paused).map(|row| row.pause_note.clone());
        let (schedule_epoch_ms, breaker) = match &stored {
            Some(row) if row.schedule == record => (row.schedule_epoch_ms, restore_breaker(row)),
            Some(row) => (arrived_ms, restore_breaker(row)),
            None => (arrived_ms, Breaker::default()),
        };
        let breaker_skip_recorded = self.opening_recorded(&name, &breaker);
        tracing::info!(job = %name, version = %def.version, schedule = %def.spec.timing.schedule.as_ref().map_or("none".into(), |s| s.describe()), "job loaded");
        self.next_generation += 1;
        self.jobs.insert(
            name.clone(),
            JobEntry {
                def,
                generation: self.next_generation,
                schedule_record: record,
                running: HashMap::new(),
                waiting: VecDeque::new(),
                breaker,
                breaker_skip_recorded,
                schedule_epoch_ms,
                loaded_at_ms: now,
                last_good: None,
                new_version_failures: 0,
                paused,
                backfill: VecDeque::new(),
                backfill_interval_ms: 0,
                backfill_timer: false,
                claimed_ahead: None,
                deferred_claim: None,
            },
        );
        self.persist_job(&name);
        // Continue from the newest slot on record, so downtime shows up as missed slots.
        let last = self.services.ledger.last_slot(&name).ok().flatten().unwrap_or(i64::MIN);
        self.queue_next(&name, last.max(schedule_epoch_ms));
        for (due, plan) in self.parked.remove(&name).unwrap_or_default() {
            self.queue.push(due, Due::Retry(plan));
        }
    }

    /// Queues the job's first slot strictly after `after_ms` (not older than its catch-up
    /// window: older slots are not recorded one by one).
    pub(super) fn queue_next(&mut self, name: &str, after_ms: i64) {
        let now = self.now();
        let Some(entry) = self.jobs.get(name) else { return };
        let Some(schedule) = entry.def.spec.timing.schedule.as_ref() else { return };
        let window = entry.def.spec.timing.catchup_window.as_millis() as i64;
        let from = after_ms.max(now - window - 1).max(entry.schedule_epoch_ms);
        if let Some(slot) = schedule.next_after(to_utc(from)) {
            self.queue_slot(name, slot.timestamp_millis(), now);
        }
    }

    pub(super) fn jitter_ms(&self, entry: &JobEntry, slot_ms: i64) -> i64 {
        let (Some(bound), Some(schedule)) =
            (entry.def.spec.timing.jitter, entry.def.spec.timing.schedule.as_ref())
        else {
            return 0;
        };
        let slot = to_utc(slot_ms);
        jitter_delay(&entry.def.spec.name, slot, bound, schedule.next_after(slot)).as_millis()
            as i64
    }

    /// A breaker restored open from the store: its opening was recorded by an earlier host
    /// if the job's newest row is that `skipped:breaker-open` row (nothing ran since).
    fn opening_recorded(&self, name: &str, breaker: &Breaker) -> bool {
        if breaker.state == BreakerState::Closed {
            return false;
        }
        let newest = RunFilter { job: Some(name.to_string()), limit: 1, ..RunFilter::default() };
        match self.services.ledger.runs(&newest) {
            Ok(rows) => {
                rows.first().is_some_and(|row| row.reason == SlotReason::BreakerOpen.as_str())
            }
            Err(err) => {
                tracing::error!(job = %name, "cannot read the job's newest run: {err}");
                false
            }
        }
    }

    pub(super) fn persist_job(&self, name: &str) {
        let Some(entry) = self.jobs.get(name) else { return };
        let row = JobRow {
            name: name.to_string(),
            version: entry.def.version.clone(),
            schedule: entry.schedule_record.clone(),
            paused: entry.paused.is_some(),
            pause_note: entry.paused.clone().unwrap_or_default(),
            breaker: entry.breaker.state,
            consecutive_failures: entry.breaker.consecutive_failures,
            schedule_epoch_ms: entry.schedule_epoch_ms,
            updated_at_ms: self.now(),
        };
        let breaker_open = entry.breaker.state != BreakerState::Closed;
        self.services.metrics.job_state(name, breaker_open, entry.paused.is_some());
        if let Err(err) = self.services.ledger.upsert_job(&row) {
            tracing::error!(job = %name, "cannot record job state: {err}");
        }
    }
}

fn restore_breaker(row: &JobRow) -> Breaker {
    Breaker { state: row.breaker, consecutive_failures: row.consecutive_failures }
}
