//! Issue 14, defect 8: store failures are visible. A store the host cannot write is refused
//! at start; one that stops writing while serving (a file size limit: every write past it
//! fails, as on a full disk; the host ignores the SIGXFSZ that would kill it) turns
//! `/readyz` to 503 and `sandcron_store_healthy` to 0, and recovery flips both back and
//! records the slots lost meanwhile as `missed:store`; a store file deleted under the host
//! is reported.

use std::ops::ControlFlow::{Break, Continue};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::host::{Host, Site, with_status};
use crate::http::get;
use crate::util::{sandcron, wait_until};

/// Waits until `ready` holds, at most `within`; returns whether it did (a yes/no
/// [`wait_until`]).
pub fn holds_within(within: Duration, mut ready: impl FnMut() -> bool) -> bool {
    wait_until(within, || if ready() { Break(()) } else { Continue(()) }).is_ok()
}

/// The value of an unlabelled sample, or the sum of a family's samples whose labels contain
/// `labels`, from the `/metrics` text.
pub fn metric(api: &str, name: &str, labels: &str) -> f64 {
    get(api, "/metrics")
        .text
        .lines()
        .filter(|line| line.starts_with(name) && line.contains(labels))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Makes `path` unwritable for this process, the way the machine allows: the immutable
/// attribute as root (root ignores file modes), modes otherwise. Undone on drop.
struct ReadOnly(PathBuf, bool);

impl ReadOnly {
    fn set(path: &Path) -> Option<ReadOnly> {
        // SAFETY: geteuid has no preconditions.
        #[allow(unsafe_code)]
        let root = unsafe { libc::geteuid() } == 0;
        if root {
            let status = Command::new("chattr").arg("+i").arg(path).status().ok()?;
            return status.success().then(|| ReadOnly(path.to_path_buf(), true));
        }
        let mode = if path.is_dir() { 0o555 } else { 0o444 };
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).ok()?;
        Some(ReadOnly(path.to_path_buf(), false))
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        if self.1 {
            let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
        } else {
            let mode = if self.0.is_dir() { 0o755 } else { 0o644 };
            let _ = std::fs::set_permissions(
                &self.0,
                std::os::unix::fs::PermissionsExt::from_mode(mode),
            );
        }
    }
}

/// `sandcron serve` on `site` without an API; its exit code and stderr.
fn serve_once(site: &Site) -> (i32, String) {
    let output = Command::new(sandcron())
        .args(["serve", "--no-api", "--jobs"])
        .arg(site.jobs())
        .arg("--store")
        .arg(site.store())
        .output()
        .unwrap();
    (output.status.code().unwrap_or(-1), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn serve_refuses_a_read_only_store_file_or_folder() {
    let site = Site::new();
    // A store and lock file from an earlier host.
    drop(sandcron::store::SqliteStore::open(&site.store()).unwrap());
    std::fs::write(site.store().with_extension("lock"), "").unwrap();
    for target in [site.store(), site.dir.path().to_path_buf()] {
        let Some(guard) = ReadOnly::set(&target) else {
            eprintln!("cannot make {} read-only here (no CAP_LINUX_IMMUTABLE?)", target.display());
            return;
        };
        let (code, stderr) = serve_once(&site);
        drop(guard);
        assert_ne!(code, 0, "serve started on a read-only {}: {stderr}", target.display());
        assert!(stderr.contains("is read-only"), "{stderr}");
        assert!(stderr.contains(&target.display().to_string()), "names the path: {stderr}");
    }
}

/// Whether process `pid` (or `self`) ignores SIGXFSZ, from the `SigIgn` mask in /proc.
fn ignores_xfsz(pid: &str) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let mask = status.lines().find_map(|line| line.strip_prefix("SigIgn:")).unwrap();
    let mask = u64::from_str_radix(mask.trim(), 16).unwrap();
    mask & (1 << (libc::SIGXFSZ - 1)) != 0
}

/// A host started with SIGXFSZ at its default action (die), as a shell or systemd starts
/// it: the host ignores the signal itself, so a file size limit set on the running process
/// fails its writes (EFBIG), the same store errors as a full disk, instead of killing it.
fn start_limitable(site: &Site) -> Host {
    assert!(!ignores_xfsz("self"), "the test would hand the host an ignored SIGXFSZ");
    let host = site.start(&[]);
    host.api();
    assert!(ignores_xfsz(&host.pid().to_string()), "the host ignores SIGXFSZ itself");
    host
}

fn set_file_size_limit(host: &Host, limit: &str) {
    let status = Command::new("prlimit")
        .arg(format!("--pid={}", host.pid()))
        .arg(format!("--fsize={limit}"))
        .status()
        .expect("prlimit runs");
    assert!(status.success());
}

#[test]
fn a_store_that_stops_writing_turns_readyz_503_and_recovery_records_missed_store() {
    let site = Site::new();
    site.probe_job("ticker", "every = \"1s\"\n");
    let host = start_limitable(&site);
    let api = host.api();
    site.wait_runs("ticker", Duration::from_secs(20), |runs| {
        !with_status(runs, "succeeded").is_empty()
    });
    assert_eq!(metric(&api, "sandcron_store_healthy", ""), 1.0);

    // Every write past 4 KiB fails: no WAL frame fits. Only the soft limit, so that an
    // unprivileged test (or a container without CAP_SYS_RESOURCE) can lift it again.
    set_file_size_limit(&host, "4096:unlimited");
    let failing = holds_within(Duration::from_secs(10), || get(&api, "/readyz").status == 503);
    let ready = get(&api, "/readyz");
    assert!(failing, "/readyz stayed {} while claims fail:\n{}", ready.status, host.log_text());
    assert_eq!(ready.body["code"], "store_failing", "{ready:?}");
    assert!(ready.body["message"].as_str().unwrap().contains("the store is failing"), "{ready:?}");
    assert_eq!(metric(&api, "sandcron_store_healthy", ""), 0.0);
    // A few slots come and go while it fails.
    let errors = || metric(&api, "sandcron_store_errors_total", "op=\"run_claim");
    assert!(holds_within(Duration::from_secs(10), || errors() >= 3.0), "errors: {}", errors());
    assert!(host.log_text().contains("the store is failing"), "{}", host.log_text());

    set_file_size_limit(&host, "unlimited:unlimited");
    let back = holds_within(Duration::from_secs(10), || get(&api, "/readyz").status == 200);
    assert!(back, "/readyz never recovered:\n{}", host.log_text());
    assert_eq!(metric(&api, "sandcron_store_healthy", ""), 1.0);
    let runs = site.wait_runs("ticker", Duration::from_secs(10), |runs| {
        runs.iter().any(|run| run["reason"] == "missed:store")
    });
    let lost: Vec<_> = runs.iter().filter(|run| run["reason"] == "missed:store").collect();
    assert!(lost.len() >= 2, "slots lost while failing are recorded: {runs:#?}");
    assert!(lost.iter().all(|run| run["status"] == "missed"), "{lost:#?}");
    // And scheduling goes on.
    let after = with_status(&runs, "succeeded").len();
    site.wait_runs("ticker", Duration::from_secs(10), |runs| {
        with_status(runs, "succeeded").len() > after
    });
}

#[test]
fn a_store_file_deleted_under_the_host_is_reported() {
    let site = Site::new();
    site.probe_job("idle", "every = \"1h\"\n");
    let host = site.start(&[]);
    let api = host.api();
    let aside = site.store().with_extension("aside");
    std::fs::rename(site.store(), &aside).unwrap();
    let noticed = holds_within(Duration::from_secs(5), || get(&api, "/readyz").status == 503);
    let ready = get(&api, "/readyz");
    assert!(noticed, "a deleted store went unnoticed: {ready:?}");
    assert!(ready.body["message"].as_str().unwrap().contains("was deleted"), "{ready:?}");
    assert_eq!(metric(&api, "sandcron_store_healthy", ""), 0.0);
    assert!(host.log_text().contains("ERROR"), "{}", host.log_text());
    // Put back, it is the file the host opened: healthy again.
    std::fs::rename(&aside, site.store()).unwrap();
    assert!(holds_within(Duration::from_secs(5), || get(&api, "/readyz").status == 200));
}
