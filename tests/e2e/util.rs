//! Shared helpers: build the binary and the guests once, run `sandcron`, read its JSON,
//! and wait for a condition with a bounded deadline.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

pub fn run_checked(command: &mut Command, what: &str) {
    let status = command.status().unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    assert!(status.success(), "{what} failed: {status}");
}

/// The release `sandcron` binary, built once per test process.
pub fn sandcron() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        // The whole workspace with dev-dependencies (benches need them), like `cargo test`
        // and scripts/test.sh: the same features, so the same artifacts. `-p sandcron` alone
        // resolves other features and compiled wasmtime a second time.
        build.args(["build", "--release", "--bins", "--benches"]).current_dir(root());
        // `cargo test` sets CARGO_MANIFEST_DIR, CARGO_PKG_* ... for the test process; a
        // build script that reruns when one of them changes (ring's does) would rebuild the
        // TLS stack and the host here and again in the next `cargo test`.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy().into_owned();
            let keep = ["CARGO_HOME", "CARGO_TARGET_DIR"].contains(&name.as_str())
                || name.starts_with("CARGO_BUILD_")
                || name.starts_with("CARGO_PROFILE_");
            if name.starts_with("CARGO_") && !keep {
                build.env_remove(&name);
            }
        }
        run_checked(&mut build, "cargo build --bins --benches");
        target_dir().join("release/sandcron")
    })
}

/// A built guest from `target/guests/` (all built once by scripts/build-guests.sh).
pub fn guest(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        run_checked(
            Command::new("bash").arg(root().join("scripts/build-guests.sh")),
            "build-guests.sh",
        )
    });
    let path = target_dir().join("guests").join(format!("{name}.wasm"));
    assert!(path.is_file(), "guest {} was not built", path.display());
    path
}

/// A compile cache shared by the tests (content-addressed, so sharing is safe).
pub fn shared_cache() -> PathBuf {
    target_dir().join("test-cache")
}

/// What one `sandcron run --json` printed.
pub struct Run {
    pub code: i32,
    pub json: Value,
    pub stderr: String,
}

impl Run {
    pub fn outcome(&self) -> &str {
        self.json["outcome"].as_str().unwrap_or_default()
    }
    pub fn reason(&self) -> &str {
        self.json["reason"].as_str().unwrap_or_default()
    }
    pub fn summary(&self) -> &str {
        self.json["summary"].as_str().unwrap_or_default()
    }
}

/// Runs `sandcron run WASM --json` with a private state file and the shared cache.
pub fn run(wasm: &Path, state_dir: &Path, args: &[&str]) -> Run {
    let state = state_dir.join("state.db");
    let output = Command::new(sandcron())
        .arg("run")
        .arg(wasm)
        .arg("--json")
        .arg("--store")
        .arg(&state)
        .arg("--cache-dir")
        .arg(shared_cache())
        .args(args)
        .output()
        .expect("sandcron runs");
    parse(output)
}

/// Parses a `--json` run; panics with both streams when stdout is not JSON.
pub fn parse(output: Output) -> Run {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let json = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("no JSON report ({e}); stdout: {stdout}\nstderr: {stderr}"));
    Run { code: output.status.code().unwrap_or(-1), json, stderr }
}

/// Runs `sandcron ARGS` and returns (exit code, stdout, stderr).
pub fn sandcron_cmd(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let output = Command::new(sandcron()).args(args).output().expect("sandcron runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A fresh temporary directory, removed when dropped.
pub fn tempdir() -> tempfile::TempDir {
    std::fs::create_dir_all(target_dir().join("test-tmp")).expect("test-tmp");
    tempfile::Builder::new()
        .prefix("e2e-")
        .tempdir_in(target_dir().join("test-tmp"))
        .expect("tempdir")
}

/// How often [`wait_until`] looks again.
const POLL: Duration = Duration::from_millis(50);

/// Waits for a condition, never longer than `within`: calls `probe` until it answers
/// `Break(value)` and returns `Ok(value)`; when time runs out, returns `Err` with what the
/// last `Continue` carried (what the probe saw, for the caller's failure message). Every
/// e2e wait goes through here instead of a sleep.
pub fn wait_until<T, E>(
    within: Duration,
    mut probe: impl FnMut() -> ControlFlow<T, E>,
) -> Result<T, E> {
    let deadline = Instant::now() + within;
    loop {
        match probe() {
            ControlFlow::Break(value) => return Ok(value),
            ControlFlow::Continue(seen) if Instant::now() >= deadline => return Err(seen),
            // Kept: the polling interval between two looks, not a guess at how long
            // things take.
            ControlFlow::Continue(_) => std::thread::sleep(POLL),
        }
    }
}
