//! The `sandcron:job` imports as a guest sees them (F1): errors, state, config, deadline,
//! run context.

use crate::util::{guest, run, tempdir};

#[test]
fn retryable_and_fatal_guest_errors_are_reported_as_such() {
    let dir = tempdir();
    let retryable = run(&guest("probe"), dir.path(), &["--payload", "retryable"]);
    assert_eq!(retryable.outcome(), "guest-error");
    assert_eq!(retryable.reason(), "retryable: probe says try again");
    assert_eq!(retryable.json["retryable"], true);
    assert_eq!(retryable.code, 3);

    let fatal = run(&guest("probe"), dir.path(), &["--payload", "fatal"]);
    assert_eq!(fatal.reason(), "fatal: probe says give up");
    assert_eq!(fatal.json["retryable"], false);
    assert_eq!(fatal.code, 3);
}

#[test]
fn state_written_in_one_run_is_read_back_in_the_next() {
    let dir = tempdir();
    let probe = guest("probe");
    for expected in ["counter=1", "counter=2", "counter=3"] {
        let run = run(&probe, dir.path(), &["--payload", "state"]);
        assert_eq!((run.outcome(), run.summary()), ("succeeded", expected), "{}", run.reason());
    }
    // Another state file is another world: the counter starts over.
    let other = tempdir();
    assert_eq!(run(&probe, other.path(), &["--payload", "state"]).summary(), "counter=1");
}

#[test]
fn config_from_manifest_and_flags_is_visible() {
    let dir = tempdir();
    let wasm = dir.path().join("configured.wasm");
    std::fs::copy(guest("probe"), &wasm).unwrap();
    std::fs::write(dir.path().join("configured.toml"), "[config]\ncolor = \"blue\"\nsize = 3\n")
        .unwrap();
    let run = run(&wasm, dir.path(), &["--payload", "config", "--config", "extra=yes"]);
    assert_eq!(run.summary(), "color=blue\nextra=yes\nsize=3");
}

#[test]
fn deadline_is_visible_to_the_guest() {
    let dir = tempdir();
    let run = run(&guest("probe"), dir.path(), &["--payload", "deadline", "--timeout", "5s"]);
    let remaining: u64 = run.summary().strip_prefix("remaining_ms=").unwrap().parse().unwrap();
    assert!((3_000..=5_000).contains(&remaining), "remaining {remaining}");
}

#[test]
fn run_context_carries_job_version_and_trigger() {
    let dir = tempdir();
    let run = run(&guest("probe"), dir.path(), &["--payload", "context"]);
    let context: serde_json::Value = serde_json::from_str(run.summary()).unwrap();
    assert_eq!(context["job_name"], "probe");
    assert_eq!(context["job_version"], run.json["version"]);
    assert_eq!(context["attempt"], 1);
    assert_eq!(context["trigger"], "manual");
    assert!(context["idempotency_key"].as_str().unwrap().starts_with("probe:"));
}

#[test]
fn sleeping_in_a_host_call_is_still_cut_by_the_timeout() {
    let dir = tempdir();
    let run = run(&guest("probe"), dir.path(), &["--payload", "sleep:60000", "--timeout", "1s"]);
    assert_eq!(run.reason(), "timeout after 1s");
    assert!(run.json["duration_ms"].as_f64().unwrap() < 1_500.0);
}

#[test]
fn hello_rust_example_counts_its_runs_and_reads_config() {
    let dir = tempdir();
    let hello = guest("hello-rust");
    let manifest = crate::util::root().join("examples/hello-rust/hello-rust.toml");
    let manifest = manifest.to_str().unwrap();
    let first = run(&hello, dir.path(), &["--manifest", manifest]);
    assert_eq!(first.summary(), "hello from sandcron, run #1", "{}", first.reason());
    let second = run(&hello, dir.path(), &["--manifest", manifest, "--config", "greeting=hi"]);
    assert_eq!(second.summary(), "hi, run #2");
    let failed = run(&hello, dir.path(), &["--manifest", manifest, "--payload", "fail"]);
    assert_eq!(failed.reason(), "retryable: asked to fail");
    assert!(!first.json["logs"].as_array().unwrap().is_empty(), "hello-rust logs something");
}
