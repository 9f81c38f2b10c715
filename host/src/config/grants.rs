//! The sandbox's bounds and grants a job spec carries: resource limits ([`Limits`],
//! [`NetLimits`]) under the host-wide ceiling ([`HostLimits`]), and the capabilities
//! ([`Capabilities`]: preopened directories, environment, outbound hosts). `spec.rs`
//! validates manifests into them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::allowlist::AllowedHost;
use super::units::ByteSize;

/// Hard caps that no manifest can raise (M3).
#[derive(Clone, Debug)]
pub struct HostLimits {
    /// Most linear memory (all memories of an instance together) any job may use.
    pub memory: ByteSize,
    /// Longest wall-clock timeout any job may ask for.
    pub timeout: Duration,
    /// Largest output cap.
    pub output: ByteSize,
    /// Largest log cap.
    pub log: ByteSize,
}

impl Default for HostLimits {
    fn default() -> Self {
        HostLimits {
            memory: ByteSize(4 << 30),
            timeout: Duration::from_secs(24 * 3600),
            output: ByteSize(16 << 20),
            log: ByteSize(16 << 20),
        }
    }
}

/// Per-run resource limits, after defaults and the host ceiling are applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Sum of all linear memories of the run's instance.
    pub memory: ByteSize,
    /// Instruction budget; `None` means unmetered (only the timeout applies).
    pub fuel: Option<u64>,
    /// Wall-clock budget of one run.
    pub timeout: Duration,
    /// Cap on the run's output (summary and captured stdout each).
    pub output: ByteSize,
    /// Cap on the run's log (log lines and captured stderr together).
    pub log: ByteSize,
    /// Most runs of this job at the same time.
    pub max_concurrent: u32,
    /// Caps on the run's outbound requests and connections.
    pub net: NetLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: ByteSize(64 << 20),
            fuel: None,
            timeout: Duration::from_secs(10),
            output: ByteSize(64 << 10),
            log: ByteSize(256 << 10),
            max_concurrent: 1,
            net: NetLimits::default(),
        }
    }
}

/// Per-run network caps (M5). The run's `timeout` still cuts everything; these bound what a
/// run can do within it, so a guest looping on requests or a server sending gigabytes
/// costs the host a bounded amount.
#[derive(Clone, Debug, PartialEq)]
pub struct NetLimits {
    /// Longest wait for a name lookup plus TCP (and TLS) connect.
    pub connect_timeout: Duration,
    /// Longest wait from sending a request to its response's headers.
    pub first_byte_timeout: Duration,
    /// Response body bytes the run may receive, all requests together.
    pub bytes_in: ByteSize,
    /// Request body bytes the run may send, all requests together.
    pub bytes_out: ByteSize,
    /// HTTP requests plus TCP connects a run may make.
    pub requests: u32,
    /// HTTP requests in flight at once.
    pub concurrent_requests: u32,
}

impl Default for NetLimits {
    fn default() -> Self {
        NetLimits {
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(30),
            bytes_in: ByteSize(16 << 20),
            bytes_out: ByteSize(16 << 20),
            requests: 1_000,
            concurrent_requests: 8,
        }
    }
}

/// A directory granted to the guest (M5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirGrant {
    /// Absolute host path.
    pub host: PathBuf,
    /// Where the guest sees it (absolute guest path).
    pub guest: String,
    /// Read-only unless the grant says `rw`.
    pub writable: bool,
}

impl DirGrant {
    /// Parses `HOST:GUEST[:ro|:rw]`; a relative HOST is resolved against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self, String> {
        let (rest, writable) = if let Some(rest) = text.strip_suffix(":rw") {
            (rest, true)
        } else if let Some(rest) = text.strip_suffix(":ro") {
            (rest, false)
        } else {
            (text, false)
        };
        let (host, guest) = rest.rsplit_once(':').ok_or_else(|| {
            format!(
                "invalid dir grant {text:?}: expected HOST:GUEST[:ro|:rw], e.g. \"data:/data:ro\""
            )
        })?;
        if host.is_empty() {
            return Err(format!("invalid dir grant {text:?}: the host path is empty"));
        }
        if !guest.starts_with('/') {
            return Err(format!(
                "invalid dir grant {text:?}: the guest path {guest:?} must be absolute (start with /)"
            ));
        }
        Ok(DirGrant { host: base.join(host), guest: guest.to_string(), writable })
    }

    /// Checks that the host side can be opened as a directory (through cap-std, as the
    /// runtime will open it).
    pub fn check_exists(&self) -> Result<(), String> {
        cap_std::fs::Dir::open_ambient_dir(&self.host, cap_std::ambient_authority())
            .map(drop)
            .map_err(|err| format!("dir grant {}: {err}", self.host.display()))
    }
}

/// What the guest may touch (M5). Nothing by default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Preopened directories.
    pub dirs: Vec<DirGrant>,
    /// Environment variables, exactly these and no others.
    pub env: BTreeMap<String, String>,
    /// Outbound hosts (`allowed_hosts`); empty means no network and no name lookup.
    pub allowed_hosts: Vec<AllowedHost>,
}
