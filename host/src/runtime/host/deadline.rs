//! `sandcron:job/deadline`: how much of the run's wall-clock budget is left.

use std::time::Instant;

use crate::runtime::bindings::sandcron::job::deadline::Host;

use super::HostCtx;

impl Host for HostCtx {
    fn remaining_ms(&mut self) -> u64 {
        self.deadline.saturating_duration_since(Instant::now()).as_millis() as u64
    }
}
