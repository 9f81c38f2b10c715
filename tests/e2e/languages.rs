//! Jobs in every language (F4, F5): the JavaScript, Python, C and Go examples and a
//! `sandcron new` scaffold per language, built with the registry toolchains by
//! scripts/build-lang-guests.sh (once per test run, skipped when their sources are
//! unchanged) and run through `sandcron run --json`: output, state across runs, config,
//! the error path, the compile cache and `validate`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::net_servers::{Reply, TestServer};
use crate::util::{
    root, run, run_checked, sandcron, sandcron_cmd, shared_cache, target_dir, tempdir,
};

/// Every language `sandcron new` knows, and the scaffold made for each.
const LANGS: [&str; 5] = ["rust", "js", "python", "c", "go"];

fn scaffold_dir(lang: &str) -> PathBuf {
    target_dir().join("lang-scaffolds").join(format!("new-{lang}"))
}

/// Scaffolds one job per language with `sandcron new`, then builds those and the examples
/// into target/guests/, once per test process.
fn build_all() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        for lang in LANGS {
            let dir = scaffold_dir(lang);
            if dir.exists() {
                std::fs::remove_dir_all(&dir).expect("old scaffold removed");
            }
            let name = format!("new-{lang}");
            run_checked(
                Command::new(sandcron())
                    .args(["new", &name, "--lang", lang, "--dir"])
                    .arg(&dir)
                    .stdout(Stdio::null()),
                "sandcron new",
            );
        }
        run_checked(
            Command::new("bash")
                .arg(root().join("scripts/build-lang-guests.sh"))
                .args(LANGS.map(scaffold_dir)),
            "build-lang-guests.sh",
        );
    });
}

/// A built job and the manifest it ships with.
struct Job {
    wasm: PathBuf,
    manifest: PathBuf,
}

fn example(name: &str, example_dir: &str) -> Job {
    build_all();
    let manifest = root().join("examples").join(example_dir).join(format!("{example_dir}.toml"));
    Job { wasm: target_dir().join("guests").join(format!("{name}.wasm")), manifest }
}

fn scaffold(lang: &str) -> Job {
    build_all();
    let name = format!("new-{lang}");
    let manifest = scaffold_dir(lang).join(format!("{name}.toml"));
    Job { wasm: target_dir().join("guests").join(format!("{name}.wasm")), manifest }
}

/// The job-world contract every language's hello job keeps: greeting from `[config]`, a
/// run counter in state, logs, and `--payload fail` as a retryable error (exit code 3).
fn assert_counts_configures_and_fails(job: &Job) {
    let dir = tempdir();
    let manifest = job.manifest.to_str().unwrap();
    let first = run(&job.wasm, dir.path(), &["--manifest", manifest]);
    assert_eq!(
        (first.outcome(), first.summary()),
        ("succeeded", "hello from sandcron, run #1"),
        "{}: {} {}",
        job.wasm.display(),
        first.reason(),
        first.stderr
    );
    let messages: Vec<&str> = first.json["logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["message"].as_str())
        .collect();
    assert!(messages.contains(&"counted this run"), "logs: {messages:?}");

    let second = run(&job.wasm, dir.path(), &["--manifest", manifest, "--config", "greeting=hi"]);
    assert_eq!(second.summary(), "hi, run #2", "state and config: {}", second.reason());

    let failed = run(&job.wasm, dir.path(), &["--manifest", manifest, "--payload", "fail"]);
    assert_eq!((failed.outcome(), failed.reason()), ("guest-error", "retryable: asked to fail"));
    assert_eq!((failed.json["retryable"].as_bool(), failed.code), (Some(true), 3));
}

#[test]
fn javascript_quickjs_example_keeps_the_job_contract() {
    assert_counts_configures_and_fails(&example("hello-js", "hello-js"));
}

#[test]
fn javascript_starlingmonkey_build_of_the_example_keeps_the_job_contract() {
    assert_counts_configures_and_fails(&example("hello-js-starlingmonkey", "hello-js"));
}

#[test]
fn python_example_keeps_the_job_contract() {
    assert_counts_configures_and_fails(&example("hello-python", "hello-python"));
}

/// Runs `job` with a payload that makes it throw, and returns (reason, log messages).
fn uncaught(job: &Job, payload: &str) -> (String, Vec<String>) {
    let dir = tempdir();
    let manifest = job.manifest.to_str().unwrap();
    let failed = run(&job.wasm, dir.path(), &["--manifest", manifest, "--payload", payload]);
    assert_eq!((failed.outcome(), failed.code), ("trap", 4), "{}", failed.reason());
    let logs = failed.json["logs"].as_array().unwrap();
    let messages = logs.iter().filter_map(|l| l["message"].as_str().map(str::to_owned)).collect();
    (failed.reason().to_owned(), messages)
}

#[test]
fn python_and_javascript_exceptions_read_as_their_own_message() {
    let (reason, logs) = uncaught(&example("hello-python", "hello-python"), "raise");
    assert!(reason.starts_with("trap: ValueError: bad input (at "), "{reason}");
    assert!(reason.ends_with(", in run)") && !reason.contains('\n'), "{reason}");
    assert!(logs.iter().any(|l| l == "Traceback (most recent call last):"), "{logs:?}");

    let (reason, logs) = uncaught(&example("hello-js", "hello-js"), "throw");
    assert!(reason.starts_with("trap: uncaught exception: bad input (at run ("), "{reason}");
    assert!(!reason.contains('\n') && !reason.contains("Value(Exception"), "{reason}");
    assert!(
        logs.iter().any(|l| l.starts_with("uncaught exception: bad input\n    at run")),
        "{logs:?}"
    );

    let (reason, _) = uncaught(&example("hello-js-starlingmonkey", "hello-js"), "throw");
    assert_eq!(reason, "trap: uncaught exception: Error: bad input");
}

#[test]
fn c_example_keeps_the_job_contract() {
    assert_counts_configures_and_fails(&example("hello-c", "hello-c"));
}

#[test]
fn scaffolds_of_every_component_language_build_and_keep_the_job_contract() {
    assert_counts_configures_and_fails(&scaffold("c"));
    // The Rust, JavaScript and Python scaffolds are HTTP jobs (see below).
    for lang in ["rust", "js", "python"] {
        assert_fetches_a_granted_url(&scaffold(lang));
    }
}

/// The HTTP jobs' contract (M5): GET `[config] url` through `allowed_hosts` and report
/// `GET URL -> 200 (N bytes)`; the same URL without the grant is refused before any
/// connection, and the run records the refusal.
fn assert_fetches_a_granted_url(job: &Job) {
    let dir = tempdir();
    let server = TestServer::http(Reply::Text("pong from the test server"));
    let url = server.url("/status");
    let manifest = job.manifest.to_str().unwrap();
    let config = format!("url={url}");
    let allow = format!("http://127.0.0.1:{}", server.port);
    let args = ["--manifest", manifest, "--config", &config, "--allow-host", &allow];
    let fetched = run(&job.wasm, dir.path(), &args);
    assert_eq!(
        (fetched.outcome(), fetched.summary()),
        ("succeeded", format!("GET {url} -> 200 (25 bytes)").as_str()),
        "{}: {} {}",
        job.wasm.display(),
        fetched.reason(),
        fetched.stderr
    );
    assert_eq!(fetched.json["net"]["requests"], 1, "{}", fetched.json["net"]);
    assert_eq!(fetched.json["net"]["bytes_in"], 25);
    assert_eq!(server.connections(), 1);

    let refused = run(&job.wasm, dir.path(), &["--manifest", manifest, "--config", &config]);
    assert_eq!(refused.outcome(), "guest-error", "{}: {}", job.wasm.display(), refused.summary());
    assert_eq!(refused.json["net"]["refused"], 1, "{}", refused.json["net"]);
    assert_eq!(server.connections(), 1, "the refused request reached the server");
}

#[test]
fn http_examples_in_rust_javascript_and_python_call_a_local_endpoint() {
    let rust = Job {
        wasm: crate::util::guest("http-rust"),
        manifest: root().join("examples/http-rust/http-rust.toml"),
    };
    assert_fetches_a_granted_url(&rust);
    assert_fetches_a_granted_url(&example("http-js", "http-js"));
    assert_fetches_a_granted_url(&example("http-python", "http-python"));
}

/// The command shape: stdout, `[config]` as env, the payload on stdin, exit code 2 -> 3.
fn assert_go_command(job: &Job) {
    let dir = tempdir();
    let manifest = job.manifest.to_str().unwrap();
    let name = job.wasm.file_stem().unwrap().to_str().unwrap();
    let ok = run(&job.wasm, dir.path(), &["--manifest", manifest]);
    assert_eq!(ok.outcome(), "succeeded", "{} {}", ok.reason(), ok.stderr);
    assert_eq!(ok.json["stdout"], format!("hello from sandcron (Go, job {name})\n"));
    assert_eq!(ok.json["shape"], "preview1-command");

    let configured =
        run(&job.wasm, dir.path(), &["--manifest", manifest, "--config", "greeting=hi"]);
    assert_eq!(configured.json["stdout"], format!("hi (Go, job {name})\n"));

    let failed = run(&job.wasm, dir.path(), &["--manifest", manifest, "--payload", "fail"]);
    assert_eq!((failed.reason(), failed.code), ("retryable: exit code 2", 3));
    assert!(failed.json["logs"].to_string().contains("payload asked for a failure"));
}

#[test]
fn go_example_and_scaffold_run_as_commands_with_config_and_payload() {
    assert_go_command(&example("hello-go", "hello-go"));
    assert_go_command(&scaffold("go"));
}

#[test]
fn large_guests_compile_once_then_load_from_the_compile_cache() {
    for name in ["hello-js", "hello-python"] {
        let job = example(name, name);
        let cache = tempdir();
        let state = tempdir();
        let load = || {
            let (code, stdout, stderr) = sandcron_cmd(&[
                OsStr::new("run"),
                job.wasm.as_os_str(),
                OsStr::new("--json"),
                OsStr::new("--state"),
                state.path().join("state.db").as_os_str(),
                OsStr::new("--cache-dir"),
                cache.path().as_os_str(),
            ]);
            assert_eq!(code, 0, "{stderr}");
            serde_json::from_str::<serde_json::Value>(&stdout).unwrap()["load"].clone()
        };
        let (first, second) = (load(), load());
        assert_eq!(
            (first["cache"].as_str(), second["cache"].as_str()),
            (Some("miss"), Some("hit"))
        );
        let (compiled, mapped) =
            (first["elapsed_ms"].as_f64().unwrap(), second["elapsed_ms"].as_f64().unwrap());
        assert!(mapped * 10.0 < compiled, "{name}: cache hit {mapped} ms vs compile {compiled} ms");
    }
}

fn validate(wasm: &Path) -> String {
    let cache = shared_cache();
    let (code, stdout, stderr) = sandcron_cmd(&[
        OsStr::new("validate"),
        wasm.as_os_str(),
        OsStr::new("--cache-dir"),
        cache.as_os_str(),
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    stdout
}

#[test]
fn validate_names_shape_world_and_imports_of_every_language() {
    let components = ["hello-js", "hello-js-starlingmonkey", "hello-python", "hello-c"];
    let hello_jobs = components
        .iter()
        .map(|name| example(name, name.trim_end_matches("-starlingmonkey")))
        .chain([scaffold("c")]);
    for job in hello_jobs {
        let report = validate(&job.wasm);
        assert!(report.contains("shape:   component, world sandcron:job/job@0.1.0"), "{report}");
        for import in
            ["sandcron:job/log@0.1.0", "sandcron:job/state@0.1.0", "sandcron:job/config@0.1.0"]
        {
            assert!(report.contains(import), "{import} missing: {report}");
        }
    }
    // The HTTP scaffolds import wasi:http beside the job world (they keep no state).
    for job in ["rust", "js", "python"].map(scaffold) {
        let report = validate(&job.wasm);
        assert!(report.contains("shape:   component, world sandcron:job/job@0.1.0"), "{report}");
        for import in ["sandcron:job/config@0.1.0", "wasi:http/outgoing-handler@0.2."] {
            assert!(report.contains(import), "{import} missing: {report}");
        }
    }
    for job in [example("hello-go", "hello-go"), scaffold("go")] {
        let report = validate(&job.wasm);
        assert!(
            report.contains("shape:   core module, WASI preview1 command (_start)"),
            "{report}"
        );
        assert!(report.contains("wasi_snapshot_preview1::fd_write"), "{report}");
    }
}

#[test]
fn new_refuses_existing_folders_bad_names_and_a_missing_sdk() {
    let dir = tempdir();
    let target = dir.path().join("job");
    let new = |name: &str, lang: &str, extra: &[&str]| {
        let mut args: Vec<&OsStr> = ["new", name, "--lang", lang, "--dir"].map(OsStr::new).to_vec();
        args.push(target.as_os_str());
        args.extend(extra.iter().map(OsStr::new));
        sandcron_cmd(&args)
    };
    let (code, ..) = new("backup", "js", &[]);
    assert_eq!(code, 0);
    std::fs::write(target.join("backup.js"), "// mine").unwrap();
    let (code, _, stderr) = new("backup", "c", &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("already exists"), "{stderr}");
    assert_eq!(std::fs::read_to_string(target.join("backup.js")).unwrap(), "// mine");

    std::fs::remove_dir_all(&target).unwrap();
    let (code, _, stderr) = new("Backup", "js", &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("invalid job name \"Backup\""), "{stderr}");
    let (code, _, stderr) = new("backup", "rust", &["--sdk-path", "/nonexistent/guest-sdk"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--sdk-path"), "{stderr}");
    assert!(!target.exists(), "a refused scaffold writes nothing");
}
