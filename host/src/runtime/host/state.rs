//! `sandcron:job/state`: per-job key-value state, scoped to the running job and bounded.
//!
//! Quotas live here rather than in the store because they are a sandbox rule (a hostile
//! guest must not fill the disk), not a storage one. Errors go back to the guest as
//! strings; they never trap the run.

use crate::runtime::bindings::sandcron::job::state::Host;

use super::HostCtx;

/// Longest key, in bytes.
const MAX_KEY_BYTES: usize = 256;
/// Largest single value.
const MAX_VALUE_BYTES: usize = 1 << 20;
/// Most keys per job.
const MAX_KEYS: u64 = 10_000;
/// Most bytes (keys and values) per job.
const MAX_TOTAL_BYTES: u64 = 16 << 20;

impl HostCtx {
    fn state_store(&self) -> Result<&dyn crate::store::StateStore, String> {
        self.state.as_deref().ok_or_else(|| "no state store is configured for this run".to_string())
    }
}

fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(format!("state key must be 1 to {MAX_KEY_BYTES} bytes, got {}", key.len()));
    }
    Ok(())
}

impl Host for HostCtx {
    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, String> {
        check_key(&key)?;
        self.state_store()?.state_get(&self.job, &key).map_err(|e| e.to_string())
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        check_key(&key)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(format!(
                "state value for {key:?} is {} bytes; the limit is {MAX_VALUE_BYTES}",
                value.len()
            ));
        }
        let store = self.state_store()?;
        let usage = store.state_usage(&self.job).map_err(|e| e.to_string())?;
        let previous = store.state_get(&self.job, &key).map_err(|e| e.to_string())?;
        let (keys, freed) = match &previous {
            Some(old) => (usage.keys, (key.len() + old.len()) as u64),
            None => (usage.keys + 1, 0),
        };
        if keys > MAX_KEYS {
            return Err(format!("state quota: at most {MAX_KEYS} keys per job"));
        }
        let total = usage.bytes - freed.min(usage.bytes) + (key.len() + value.len()) as u64;
        if total > MAX_TOTAL_BYTES {
            return Err(format!("state quota: at most {MAX_TOTAL_BYTES} bytes per job"));
        }
        store.state_set(&self.job, &key, &value).map_err(|e| e.to_string())
    }

    fn delete(&mut self, key: String) -> Result<bool, String> {
        check_key(&key)?;
        self.state_store()?.state_delete(&self.job, &key).map_err(|e| e.to_string())
    }

    fn list_keys(&mut self) -> Result<Vec<String>, String> {
        self.state_store()?.state_keys(&self.job).map_err(|e| e.to_string())
    }
}
