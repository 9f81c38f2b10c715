//! The second job shape (F2), the compile cache (R1), and the human-facing CLI output.

use std::ffi::OsStr;

use crate::util::{guest, root, run, sandcron_cmd, tempdir};

fn data_grant() -> String {
    format!("{}:/data", root().join("examples/command-rust/data").display())
}

#[test]
fn command_component_reads_its_granted_dir() {
    let dir = tempdir();
    let run = run(&guest("command-rust"), dir.path(), &["--dir", &data_grant()]);
    assert_eq!(run.json["shape"], "command");
    assert_eq!(run.outcome(), "succeeded", "{}", run.reason());
    assert!(run.json["stdout"].as_str().unwrap().contains("about.txt\t"), "{}", run.json["stdout"]);
}

#[test]
fn preview1_core_module_command_runs_too() {
    let dir = tempdir();
    let run = run(&guest("command-rust-p1"), dir.path(), &["--dir", &data_grant()]);
    assert_eq!(run.json["shape"], "preview1-command");
    assert_eq!(run.outcome(), "succeeded", "{}", run.reason());
    assert!(run.json["stdout"].as_str().unwrap().contains("about.txt\t"));
}

#[test]
fn command_exit_code_is_a_retryable_guest_error() {
    let dir = tempdir();
    // No grant: the command cannot list /data and exits 2. A preview1 module reports the
    // code itself; wasi:cli/exit@0.2 carries only ok/err, so a component's is 1. Its stderr
    // names /data, so the host adds which grant is missing.
    let hint = " (hint: /data is not granted (this job is granted no dirs): add it to \
                [capabilities] dirs, e.g. dirs = [\"HOST_DIR:/data\"] (read-only; \":rw\" to write))";
    for (wasm, code) in [("command-rust-p1", 2), ("command-rust", 1)] {
        let run = run(&guest(wasm), dir.path(), &[]);
        assert_eq!(run.reason(), format!("retryable: exit code {code}{hint}"), "{wasm}");
        assert_eq!(run.code, 3);
    }
}

#[test]
fn sibling_manifest_is_used_when_present() {
    let dir = tempdir();
    let wasm = dir.path().join("command-rust.wasm");
    std::fs::copy(guest("command-rust"), &wasm).unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/only-here.txt"), "x").unwrap();
    std::fs::write(
        dir.path().join("command-rust.toml"),
        "[capabilities]\ndirs = [\"data:/data:ro\"]\n",
    )
    .unwrap();
    let run = run(&wasm, dir.path(), &[]);
    assert_eq!(run.outcome(), "succeeded", "{}", run.reason());
    assert!(run.json["stdout"].as_str().unwrap().contains("only-here.txt\t1"));
}

#[test]
fn second_load_comes_from_the_compile_cache() {
    let dir = tempdir();
    let cache = dir.path().join("cache");
    let load = |label: &str| {
        let (code, stdout, stderr) = sandcron_cmd(&[
            OsStr::new("run"),
            guest("hello-rust").as_os_str(),
            OsStr::new("--json"),
            OsStr::new("--state"),
            dir.path().join("state.db").as_os_str(),
            OsStr::new("--cache-dir"),
            cache.as_os_str(),
        ]);
        assert_eq!(code, 0, "{label}: {stderr}");
        let json: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        (
            json["load"]["cache"].as_str().unwrap().to_string(),
            json["load"]["elapsed_ms"].as_f64().unwrap(),
        )
    };
    let (first, compile_ms) = load("first");
    let (second, cached_ms) = load("second");
    assert_eq!((first.as_str(), second.as_str()), ("miss", "hit"));
    assert!(cached_ms < compile_ms, "cached load {cached_ms} ms vs compile {compile_ms} ms");
}

#[test]
fn human_output_shows_outcome_reason_and_logs() {
    let dir = tempdir();
    let state = dir.path().join("state.db");
    let (code, stdout, _) = sandcron_cmd(&[
        OsStr::new("run"),
        guest("probe").as_os_str(),
        OsStr::new("--state"),
        state.as_os_str(),
        OsStr::new("--payload"),
        OsStr::new("log-flood:2"),
    ]);
    assert_eq!(code, 0);
    for expected in ["outcome:   succeeded", "reason:    -", "output:    logged 2", "logs:"] {
        assert!(stdout.contains(expected), "missing {expected:?} in:\n{stdout}");
    }
}

#[test]
fn validate_names_shape_imports_and_exports() {
    let (code, stdout, stderr) =
        sandcron_cmd(&[OsStr::new("validate"), guest("probe").as_os_str()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("shape:   component, world sandcron:job/job@0.1.0"), "{stdout}");
    assert!(stdout.contains("sandcron:job/state@0.1.0"), "{stdout}");
    assert!(stdout.contains("exports: run"), "{stdout}");

    let manifest = root().join("examples/command-rust/command-rust.toml");
    let (code, stdout, stderr) = sandcron_cmd(&[OsStr::new("validate"), manifest.as_os_str()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("trigger: every minute"), "{stdout}");
}
