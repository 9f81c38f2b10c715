//! What the bench binaries share: an in-memory state store, so per-run figures measure the
//! runtime and not the disk.

use std::collections::HashMap;
use std::sync::Mutex;

use sandcron::store::{StateStore, StateUsage, StoreError};

/// In-memory state, so the comparison measures the runtime and not the disk.
#[derive(Default)]
pub struct MemoryState(Mutex<HashMap<(String, String), Vec<u8>>>);

impl StateStore for MemoryState {
    fn state_get(&self, job: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.0.lock().unwrap().get(&(job.into(), key.into())).cloned())
    }
    fn state_set(&self, job: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.0.lock().unwrap().insert((job.into(), key.into()), value.to_vec());
        Ok(())
    }
    fn state_delete(&self, job: &str, key: &str) -> Result<bool, StoreError> {
        Ok(self.0.lock().unwrap().remove(&(job.into(), key.into())).is_some())
    }
    fn state_keys(&self, job: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .keys()
            .filter(|(j, _)| j == job)
            .map(|(_, k)| k.clone())
            .collect())
    }
    fn state_usage(&self, job: &str) -> Result<StateUsage, StoreError> {
        let map = self.0.lock().unwrap();
        let mine = map.iter().filter(|((j, _), _)| j == job);
        Ok(mine.fold(StateUsage::default(), |u, ((_, k), v)| StateUsage {
            keys: u.keys + 1,
            bytes: u.bytes + (k.len() + v.len()) as u64,
        }))
    }
}

/// As in the sandcron binary: no Rust backtraces in wasmtime's internal errors (~20 µs a
/// run otherwise, see `main.rs`). Call first thing in `main`.
pub fn quiet_library_backtraces() {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: first thing in main, single-threaded.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("RUST_LIB_BACKTRACE", "0")
        };
    }
}
