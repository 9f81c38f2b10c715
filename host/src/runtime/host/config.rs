//! `sandcron:job/config`: the manifest's `[config]` table, read-only.

use crate::runtime::bindings::sandcron::job::config::Host;

use super::HostCtx;

impl Host for HostCtx {
    fn get(&mut self, key: String) -> Option<String> {
        self.config.get(&key).cloned()
    }

    fn entries(&mut self) -> Vec<(String, String)> {
        self.config.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}
