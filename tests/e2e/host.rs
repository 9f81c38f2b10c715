//! A live `sandcron serve` for end-to-end tests: start it on a jobs folder and a store,
//! stop it gracefully or kill it, and read its runs through the CLI.

use std::net::TcpListener;
use std::ops::ControlFlow::{Break, Continue};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sandcron::store::{Ledger, SqliteStore};
use serde_json::Value;

use crate::util::{guest, sandcron, shared_cache, wait_until};

/// A test folder with `jobs/`, a store and the host's log.
pub struct Site {
    pub dir: tempfile::TempDir,
}

impl Site {
    pub fn new() -> Self {
        let site = Site { dir: crate::util::tempdir() };
        std::fs::create_dir(site.jobs()).unwrap();
        site
    }

    pub fn jobs(&self) -> PathBuf {
        self.dir.path().join("jobs")
    }

    pub fn store(&self) -> PathBuf {
        self.dir.path().join("sandcron.db")
    }

    /// Installs the probe as job `name` with this manifest.
    pub fn probe_job(&self, name: &str, manifest: &str) {
        std::fs::write(self.jobs().join(format!("{name}.toml")), manifest).unwrap();
        std::fs::copy(guest("probe"), self.jobs().join(format!("{name}.wasm"))).unwrap();
    }

    /// Starts `sandcron serve` on this site; its log goes to `host-N.log`.
    pub fn start(&self, extra: &[&str]) -> Host {
        self.start_with_env(extra, &[])
    }

    /// [`Site::start`] with extra environment variables for the host process.
    pub fn start_with_env(&self, extra: &[&str], env: &[(&str, &str)]) -> Host {
        self.spawn(&[], &shared_cache(), extra, env)
    }

    /// [`Site::start`] with its own compile cache folder instead of the shared one.
    pub fn start_with_cache(&self, cache: &Path, extra: &[&str]) -> Host {
        self.spawn(&[], cache, extra, &[])
    }

    /// [`Site::start_with_env`] through a wrapper command that execs the host, e.g.
    /// `["prlimit", "--nofile=256:256", "--"]` (so the host keeps the wrapper's pid).
    pub fn start_under(&self, wrapper: &[&str], extra: &[&str], env: &[(&str, &str)]) -> Host {
        self.spawn(wrapper, &shared_cache(), extra, env)
    }

    fn spawn(&self, wrapper: &[&str], cache: &Path, extra: &[&str], env: &[(&str, &str)]) -> Host {
        let n = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().starts_with("host-"))
            })
            .count();
        let log_path = self.dir.path().join(format!("host-{n}.log"));
        let log = std::fs::File::create(&log_path).unwrap();
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(sandcron());
                command
            }
            None => Command::new(sandcron()),
        };
        // Tests run hosts side by side: unless the test names its own address, each host is
        // handed a socket the test bound on a free port, so the test knows its address.
        let own_api = extra.iter().any(|a| *a == "--api" || *a == "--no-api");
        let socket = (!own_api).then(|| TcpListener::bind("127.0.0.1:0").expect("a free port"));
        if let Some(socket) = &socket {
            hand_over_as_fd3(&mut command, socket);
        }
        let child = self
            .serve_args(&mut command, cache)
            .args(extra)
            .args(if own_api { &[][..] } else { &["--api-fd", "3"][..] })
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("serve starts");
        let scheme = if extra.contains(&"--tls-cert") { "https" } else { "http" };
        let base = socket.map(|s| format!("{scheme}://{}", s.local_addr().unwrap()));
        Host { child: Some(child), log: log_path, base }
    }

    /// Appends `serve` on this site's folder and store, with the compile cache `cache`,
    /// logging at info: what every host these tests start is given.
    pub fn serve_args<'a>(&self, command: &'a mut Command, cache: &Path) -> &'a mut Command {
        command
            .args(["serve", "--jobs"])
            .arg(self.jobs())
            .arg("--store")
            .arg(self.store())
            .arg("--cache-dir")
            .arg(cache)
            .env("SANDCRON_LOG", "info")
    }

    /// Starts a host until it has loaded the folder, and stops it: the store now records when
    /// each job's schedule began. Then moves that instant back by `by` (the host is down), as
    /// if the jobs had been added that long ago.
    pub fn backdate_jobs(&self, by: Duration) {
        self.start(&[]).loaded_then_stopped();
        let store = SqliteStore::open(&self.store()).unwrap();
        for mut job in store.jobs().unwrap() {
            job.schedule_epoch_ms -= by.as_millis() as i64;
            store.upsert_job(&job).unwrap();
        }
    }

    /// `sandcron runs JOB --json`, oldest first; none while the store does not know the job
    /// yet (`runs` exits 2 for an unknown job).
    pub fn runs(&self, job: &str) -> Vec<Value> {
        let output = Command::new(sandcron())
            .args(["runs", job, "--json", "--limit", "100000", "--store"])
            .arg(self.store())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.code() == Some(2) && stderr.contains("no job named") {
            return vec![];
        }
        assert!(output.status.success(), "{stderr}");
        let mut runs: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
        runs.reverse();
        runs
    }

    /// `sandcron jobs --json`.
    pub fn jobs_json(&self) -> Vec<Value> {
        let output = Command::new(sandcron())
            .args(["jobs", "--json", "--store"])
            .arg(self.store())
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// Polls `runs(job)` until `pred` holds or `timeout` passes; returns the last runs.
    pub fn wait_runs(
        &self,
        job: &str,
        timeout: Duration,
        pred: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let look = || {
            let runs = if self.store().exists() { self.runs(job) } else { vec![] };
            if pred(&runs) { Break(runs) } else { Continue(runs) }
        };
        wait_until(timeout, look).unwrap_or_else(|runs| runs)
    }
}

/// A running host process; killed if still alive when dropped.
pub struct Host {
    child: Option<Child>,
    pub log: PathBuf,
    /// The API's base URL when the test bound its socket (see `Site::spawn`).
    base: Option<String>,
}

impl Host {
    /// A host the test started itself, its stderr going to `log`.
    pub fn adopt(child: Child, log: PathBuf) -> Host {
        Host { child: Some(child), log, base: None }
    }

    /// Waits until the host has loaded its folder, then stops it (exit 0).
    pub fn loaded_then_stopped(mut self) {
        self.api();
        assert_eq!(self.stop(), 0, "{}", self.log_text());
    }

    /// SIGTERM, then wait for exit; returns the exit code.
    pub fn stop(&mut self) -> i32 {
        let mut child = self.child.take().expect("running");
        signal(&child, "TERM");
        let status = child.wait().unwrap();
        status.code().unwrap_or(-1)
    }

    /// SIGKILL: the host dies mid-flight, as in a crash.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        signal(&child, "KILL");
        child.wait().unwrap();
    }

    /// The host's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The API's base URL (`http://127.0.0.1:PORT`) once `/readyz` says every job in the
    /// folder is loaded; waits up to 30 s.
    pub fn api(&self) -> String {
        let base = self.api_address();
        let local = base.replace("0.0.0.0", "127.0.0.1");
        let ready = || {
            let ready = crate::http::get(&local, "/readyz");
            if ready.status == 200 { Break(()) } else { Continue(ready) }
        };
        wait_until(Duration::from_secs(30), ready)
            .unwrap_or_else(|ready| panic!("never ready: {ready:?}"));
        base
    }

    /// The API's base URL: the socket the test bound and handed over, or, for a host given
    /// its own `--api` (or started by the test itself), the address it logs.
    pub fn api_address(&self) -> String {
        if let Some(base) = &self.base {
            return base.clone();
        }
        let logged = || {
            let log = self.log_text();
            let Some(at) = log.find("API listening on ") else { return Continue(log) };
            let rest = &log[at + "API listening on ".len()..];
            let end = rest.find(|c: char| c.is_whitespace() || c == '"').unwrap_or(rest.len());
            Break(rest[..end].to_string())
        };
        wait_until(Duration::from_secs(30), logged)
            .unwrap_or_else(|log| panic!("no API address in log:\n{log}"))
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Makes `socket` the child's descriptor 3 (what `serve --api-fd 3` takes over): `dup2`
/// in the forked child, before exec; the copy it makes is not close-on-exec.
fn hand_over_as_fd3(command: &mut Command, socket: &TcpListener) {
    let fd = socket.as_raw_fd();
    #[allow(unsafe_code)]
    // SAFETY: between fork and exec only async-signal-safe calls are made (dup2, fcntl),
    // on descriptors the child inherited.
    unsafe {
        command.pre_exec(move || {
            let ok = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0) != -1
            } else {
                libc::dup2(fd, 3) != -1
            };
            if ok { Ok(()) } else { Err(std::io::Error::last_os_error()) }
        });
    }
}

fn signal(child: &Child, name: &str) {
    let status =
        Command::new("kill").arg(format!("-{name}")).arg(child.id().to_string()).status().unwrap();
    assert!(status.success());
}

/// Runs of `runs` with this status.
pub fn with_status<'a>(runs: &'a [Value], status: &str) -> Vec<&'a Value> {
    runs.iter().filter(|r| r["status"] == status).collect()
}

/// Slot instants (ms) parsed from the RFC 3339 `slot` field.
pub fn slot_ms(run: &Value) -> i64 {
    let text = run["slot"].as_str().expect("scheduled run has a slot");
    parse_ms(text)
}

/// Now, in ms since the Unix epoch.
pub fn now_ms() -> i64 {
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_millis() as i64
}

pub fn parse_ms(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text).expect("RFC 3339").timestamp_millis()
}
