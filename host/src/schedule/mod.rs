//! Pure next-fire computation: (schedule, timezone, after) -> next instant (S1).
//!
//! This module owns turning a manifest trigger (M1) into fire times. Nothing here reads a
//! clock or does I/O: the caller passes `after`, so the scheduler can be tested with
//! paused time and two nodes compute the same slots.
//!
//! # Layout
//! - `spec.rs`: [`Trigger`] (the manifest's forms) validated into [`ScheduleSpec`]
//!   (trigger + zone + DST policy) with `next_after`, `iter_after`, `describe`,
//!   `never_fires`; `dst_policy.rs`: [`DstGap`], [`DstFold`].
//! - `cron.rs` / `field.rs`: 5/6/7-field expressions and `@descriptors`, searched field by
//!   field over *local* times.
//! - `dst.rs`: local times to instants under [`DstGap`] / [`DstFold`]; absolute-time
//!   schedules.
//! - `interval.rs` (`every`, `@every`), `once.rs` (`at`), `jitter.rs` ([`jitter_delay`]),
//!   `describe.rs` (words), `error.rs` ([`ScheduleError`]).
//!
//! # Design decision
//! Cron fields are parsed here rather than by a cron crate: S1's Vixie rule needs to know
//! whether a day field *starts with* `*`, and the DST policies need the raw wall-clock
//! candidates; the crates we read hide one or the other (see `field.rs`). Time zones are
//! chrono-tz's compiled IANA data, so a zone name means the same on every node regardless
//! of the host's `/usr/share/zoneinfo`. Its tables end in 2099; later dates use the last
//! offset in force.

mod cron;
mod describe;
mod dst;
mod dst_policy;
mod error;
mod field;
mod interval;
mod jitter;
mod once;
mod spec;

pub use self::dst_policy::{DstFold, DstGap};
pub use self::error::ScheduleError;
pub use self::jitter::jitter_delay;
pub(crate) use self::spec::parse_timezone;
pub use self::spec::{ScheduleSpec, Trigger};
