//! The wall-clock budget of this run.
//!
//! The host stops a run at its manifest's `[limits] timeout`, wherever it is. A job with
//! work to spare (a batch loop, a retrying upload) can check [`remaining`] and stop
//! cleanly, reporting what it got done, instead of being cut off.

use std::time::Duration;

use crate::wit::sandcron::job::deadline as host;

/// Time left before the host stops the run; zero when it is already over.
pub fn remaining() -> Duration {
    Duration::from_millis(host::remaining_ms())
}
