//! The host side of the `sandcron:job` imports, one file per interface.
//!
//! [`HostCtx`] is the part of a run's store data that these imports see: the job's name,
//! its config, its state store, its deadline and its log buffer. It holds no WASI state,
//! so the same type serves components and (as far as they can reach it) commands.

mod config;
mod deadline;
mod log;
mod state;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

pub(crate) use log::LogBuffer;
pub use log::LogLine;

use crate::store::StateStore;

/// What the `sandcron:job` imports of one run can see.
pub(crate) struct HostCtx {
    /// The job whose state and config this run may touch, and nothing else.
    pub(crate) job: Arc<str>,
    pub(crate) config: Arc<BTreeMap<String, String>>,
    /// `None` when the run was started without a state store (state calls then fail).
    pub(crate) state: Option<Arc<dyn StateStore>>,
    /// Wall-clock end of the run, for the `deadline` import.
    pub(crate) deadline: Instant,
    pub(crate) logs: LogBuffer,
}

impl crate::runtime::bindings::sandcron::job::types::Host for HostCtx {}
