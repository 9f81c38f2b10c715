//! The per-run resource limiter: one budget for all of an instance's memories together.
//!
//! wasmtime's own `StoreLimits` caps each linear memory separately, so a component with a
//! main module and an adapter could use twice its budget. This limiter sums every memory
//! of the store and remembers whether it ever refused growth: a Rust guest reports a
//! refused `memory.grow` as an `unreachable` trap and a JS guest as an ordinary error, so
//! the limiter's own record is what lets the runtime name the real cause.
//!
//! One more limit lives in wasmtime rather than here: how much a guest may hand the host in
//! one call ([`MAX_CALL_TRANSFER`]); this file names it and recognizes its refusal.

use wasmtime::ResourceLimiter;

/// Most tables, memories and instances a single run may create (components built by
/// large toolchains use dozens of core instances; none needs thousands).
const MAX_INSTANCES: usize = 1_000;
const MAX_TABLES: usize = 1_000;
const MAX_MEMORIES: usize = 100;
/// Most elements in any one table.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

/// Most bytes a guest may hand the host in one call: the strings and lists of an import's
/// arguments, or `run`'s result. wasmtime counts them while it lifts the call (its
/// "hostcall fuel") and fails the call past this, before copying anything. We keep
/// wasmtime's default: no import takes anywhere near it (a state value is at most 1 MiB, a
/// log line at most the 16 MiB log ceiling), and whatever its memory limit a guest cannot
/// make the host lift more than this at once (a list's host copy is a few times its bytes
/// in the guest, still bounded). Set on every store so that the limit the reason names is
/// the one in force.
pub(crate) const MAX_CALL_TRANSFER: usize = 128 << 20;

/// How wasmtime 48 words the refusal (its error type is private).
const TRANSFER_REFUSED: &str = "too much data is being copied between the host and the guest";

/// Whether `err` is wasmtime refusing a call that handed the host more than
/// [`MAX_CALL_TRANSFER`] (a 300 MB error message, say).
pub(crate) fn is_transfer_refused(err: &wasmtime::Error) -> bool {
    err.chain().any(|cause| cause.to_string().starts_with(TRANSFER_REFUSED))
}

/// Tracks and caps the linear memory of one run.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    limit: usize,
    in_use: usize,
    peak: usize,
    /// Set when a growth was refused, with the total the guest asked for.
    refused: Option<usize>,
}

impl MemoryLimiter {
    pub(crate) fn new(limit: usize) -> Self {
        MemoryLimiter { limit, in_use: 0, peak: 0, refused: None }
    }

    /// Highest total linear memory seen during the run, in bytes.
    pub(crate) fn peak(&self) -> usize {
        self.peak
    }

    /// The total the guest asked for when it was refused, if it ever was.
    pub(crate) fn refused(&self) -> Option<usize> {
        self.refused
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let wanted = self.in_use.saturating_sub(current).saturating_add(desired);
        if wanted > self.limit {
            self.refused = Some(wanted);
            return Ok(false);
        }
        self.in_use = wanted;
        self.peak = self.peak.max(wanted);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_memories_and_records_refusal() {
        let mut limiter = MemoryLimiter::new(100);
        assert!(limiter.memory_growing(0, 60, None).unwrap());
        assert!(limiter.memory_growing(0, 30, None).unwrap(), "second memory fits in the sum");
        assert!(!limiter.memory_growing(30, 50, None).unwrap(), "60 + 50 exceeds 100");
        assert_eq!(limiter.refused(), Some(110));
        assert_eq!(limiter.peak(), 90);
        assert!(limiter.memory_growing(60, 70, None).unwrap(), "70 + 30 fits exactly");
        assert_eq!(limiter.peak(), 100);
    }
}
