//! Hardening issue 14 defect 9, the small ones: a FIFO or a link to a device named `.wasm`
//! is listed as invalid instead of passed over in silence (and never waited on); a manifest
//! key nested too deep is reported at its line; a manual trigger's Idempotency-Key lives
//! apart from the `job@slot` keys of scheduled runs.

use std::ops::ControlFlow::{Break, Continue};
use std::time::Duration;

use serde_json::{Value, json};

use crate::host::Site;
use crate::http::{Reply, get, request};
use crate::util::{guest, sandcron, wait_until};

#[test]
fn a_fifo_or_a_link_to_dev_zero_named_wasm_is_listed_invalid() {
    let site = Site::new();
    site.probe_job("probe", "every = \"1h\"\n");
    let fifo = site.jobs().join("fifo.wasm");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    std::os::unix::fs::symlink("/dev/zero", site.jobs().join("zero.wasm")).unwrap();
    let host = site.start(&[]);
    let api = host.api();

    let listing = wait_until(Duration::from_secs(20), || {
        let listing = get(&api, "/v1/jobs");
        if listing.body["invalid"].as_array().is_some_and(|i| i.len() >= 2) {
            Break(listing)
        } else {
            Continue(listing)
        }
    })
    .unwrap_or_else(|listing| listing);
    let invalid = listing.body["invalid"].as_array().expect("an invalid list");
    for name in ["fifo", "zero"] {
        let entry = invalid
            .iter()
            .find(|i| i["name"] == name)
            .unwrap_or_else(|| panic!("{name}.wasm is not listed as invalid: {}", listing.body));
        let error = entry["error"].as_str().unwrap();
        assert!(error.ends_with(&format!("{name}.wasm: not a regular file")), "{error}");
    }
    // The host went on: the real job is there, and the watcher was not stuck on the FIFO.
    assert_eq!(listing.body["jobs"][0]["name"], "probe", "{}", listing.body);
    std::fs::copy(guest("probe"), site.jobs().join("later.wasm")).unwrap();
    let later = wait_until(Duration::from_secs(20), || {
        if get(&api, "/v1/jobs").text.contains("\"later\"") { Break(()) } else { Continue(()) }
    });
    assert!(later.is_ok(), "a job added after the FIFO was never loaded");
}

#[test]
fn a_manifest_key_nested_too_deep_is_reported_at_its_line() {
    let dir = crate::util::tempdir();
    let manifest = dir.path().join("deep.toml");
    let key = vec!["a"; 100_000].join(".");
    std::fs::write(&manifest, format!("every = \"1m\"\n\n{key} = 1\n")).unwrap();
    let output = std::process::Command::new(sandcron()).arg("validate").arg(&manifest).output();
    let output = output.unwrap();
    assert_eq!(output.status.code(), Some(2));
    // Problems go to stdout; before the fix this said `deep.toml:1:1: recursion limit`.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let at_line = format!("{}:3:1: nested too deep", manifest.display());
    assert!(stdout.contains(&at_line), "not at line 3: {stdout}");
}

fn trigger(api: &str, key: &str) -> Reply {
    let headers = [("Idempotency-Key", key)];
    request(api, "POST", "/v1/jobs/ticker/trigger", Some(&json!({})), None, &headers)
}

#[test]
fn a_manual_key_equal_to_a_slot_key_starts_its_own_run() {
    let site = Site::new();
    site.probe_job("ticker", "every = \"1s\"\n");
    let host = site.start(&[]);
    let api = host.api();
    let runs = site.wait_runs("ticker", Duration::from_secs(20), |runs| !runs.is_empty());
    let scheduled: &Value = runs.first().expect("a scheduled run");
    let slot_key = scheduled["idempotency_key"].as_str().unwrap().to_string();
    assert!(slot_key.starts_with("ticker@"), "{slot_key}");

    // Before the fix this answered 200 "duplicate" with the scheduled run: nothing started.
    let first = trigger(&api, &slot_key);
    assert_eq!(first.status, 202, "{first:?}");
    assert_eq!(first.body["status"], "started", "{first:?}");
    let run_id = first.body["run_id"].as_str().unwrap().to_string();
    assert_ne!(run_id, scheduled["run_id"].as_str().unwrap());

    // The manual key still starts one run however often it is sent.
    let again = trigger(&api, &slot_key);
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(again.body["status"], "duplicate");
    assert_eq!(again.body["run_id"], run_id.as_str());
    assert_eq!(again.body["run"]["trigger"], "manual", "{again:?}");
}
