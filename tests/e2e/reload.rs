//! The watched folder (R5, M7) under a live host: hot swaps, partial writes, deletions and
//! broken manifests.

use std::io::Write;
use std::ops::ControlFlow::{Break, Continue};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::host::{Site, with_status};
use crate::util::{guest, wait_until};

/// The probe with a custom section appended: same behaviour, different bytes and version.
fn probe_variant(tag: &str) -> Vec<u8> {
    let mut bytes = std::fs::read(guest("probe")).unwrap();
    let name = b"sandcron-test";
    let body_len = 1 + name.len() + tag.len();
    assert!(body_len < 128, "one-byte LEB128 length");
    bytes.extend([0x00, body_len as u8, name.len() as u8]);
    bytes.extend(name);
    bytes.extend(tag.as_bytes());
    bytes
}

fn version_of(wasm: &[u8], manifest: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(wasm);
    hasher.update(manifest.as_bytes());
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn replacing_the_wasm_swaps_the_version_and_the_running_run_finishes_on_the_old_one() {
    let site = Site::new();
    let manifest = "every = \"2s\"\n[config]\nmode = \"sleep:1500\"\n";
    let (v1_bytes, v2_bytes) = (probe_variant("v1"), probe_variant("v2"));
    let (v1, v2) = (version_of(&v1_bytes, manifest), version_of(&v2_bytes, manifest));
    std::fs::write(site.jobs().join("swap.toml"), manifest).unwrap();
    std::fs::write(site.jobs().join("swap.wasm"), &v1_bytes).unwrap();
    let mut host = site.start(&[]);
    site.wait_runs("swap", Duration::from_secs(20), |r| {
        r.iter().any(|run| run["status"] == "running")
    });
    std::fs::write(site.jobs().join("swap.wasm"), &v2_bytes).unwrap();
    let runs = site.wait_runs("swap", Duration::from_secs(20), |r| {
        r.iter().any(|run| run["version"] == v2.as_str() && run["status"] == "succeeded")
    });
    host.stop();
    let first = &runs[0];
    assert_eq!(first["version"], v1.as_str(), "the run in flight keeps its version");
    assert_eq!(first["status"], "succeeded", "and finishes: {first}");
    let versions: Vec<&str> = runs.iter().map(|r| r["version"].as_str().unwrap()).collect();
    let swap_at = versions.iter().position(|v| *v == v2).expect("new version ran");
    assert!(
        versions[..swap_at].iter().all(|v| *v == v1)
            && versions[swap_at..].iter().all(|v| *v == v2),
        "{versions:?}"
    );
}

#[test]
fn a_wasm_written_slowly_in_pieces_is_never_loaded_half_written() {
    let site = Site::new();
    let manifest = "every = \"1s\"\n";
    std::fs::write(site.jobs().join("slow.toml"), manifest).unwrap();
    std::fs::write(site.jobs().join("slow.wasm"), probe_variant("first")).unwrap();
    let mut host = site.start(&[]);
    site.wait_runs("slow", Duration::from_secs(20), |r| !with_status(r, "succeeded").is_empty());

    let full = probe_variant("second");
    let expected = version_of(&full, manifest);
    let mut file = std::fs::File::create(site.jobs().join("slow.wasm")).unwrap();
    for chunk in full.chunks(full.len() / 8 + 1) {
        file.write_all(chunk).unwrap();
        file.flush().unwrap();
        // Kept: writing slowly is the thing under test (the watcher sees each piece land).
        std::thread::sleep(Duration::from_millis(120));
    }
    drop(file);
    let started = Instant::now();
    let runs = site.wait_runs("slow", Duration::from_secs(20), |r| {
        r.iter().any(|run| run["version"] == expected.as_str())
    });
    let pickup = started.elapsed();
    host.stop();
    assert!(runs.iter().any(|r| r["version"] == expected.as_str()), "the complete file was loaded");
    assert!(pickup < Duration::from_secs(4), "picked up in {pickup:?}");
    let log = host.log_text();
    assert!(!log.contains("invalid job not loaded"), "a partial file was loaded:\n{log}");
    let versions: std::collections::HashSet<&str> =
        runs.iter().map(|r| r["version"].as_str().unwrap()).collect();
    assert_eq!(versions.len(), 2, "only the two complete versions ever ran: {versions:?}");
}

#[test]
fn deleting_a_job_stops_it_and_a_broken_manifest_harms_no_other_job() {
    let site = Site::new();
    site.probe_job("keeper", "every = \"1s\"\n");
    site.probe_job("doomed", "every = \"1s\"\n");
    site.probe_job("broken", "every = \"1s\"\n");
    let mut host = site.start(&[]);
    site.wait_runs("broken", Duration::from_secs(20), |r| with_status(r, "succeeded").len() >= 2);

    std::fs::remove_file(site.jobs().join("doomed.wasm")).unwrap();
    let manifest = site.jobs().join("broken.toml");
    std::fs::write(&manifest, "every = \"1s\"\n[limits]\nmemroy = \"64MiB\"\n").unwrap();
    let expected = format!("{}:3:1: unknown field `memroy`", manifest.display());
    // Until both reloads have landed: the broken manifest is reported, the orphan manifest
    // is listed, and the deleted job has no run in flight or claim taken ahead.
    let landed = wait_until(Duration::from_secs(20), || {
        let orphan =
            site.jobs_json().iter().any(|j| j["name"] == "doomed" && j["load_error"].is_string());
        let settled = with_status(&site.runs("doomed"), "running").is_empty();
        if orphan && settled && host.log_text().contains(&expected) {
            Break(())
        } else {
            Continue(())
        }
    });
    assert!(landed.is_ok(), "the reloads never landed:\n{}", host.log_text());
    let doomed_then = site.runs("doomed").len();
    // Finished runs only: a claim taken ahead is given up by the stop below.
    let finished = |runs: &[Value]| runs.iter().filter(|r| r["status"] != "running").count();
    let keeper_then = finished(&site.runs("keeper"));
    let broken_then = finished(&site.runs("broken"));
    // Two more slots of the jobs that stay: time enough for the deleted one to show up.
    site.wait_runs("keeper", Duration::from_secs(20), |r| finished(r) >= keeper_then + 2);
    site.wait_runs("broken", Duration::from_secs(20), |r| finished(r) >= broken_then + 2);
    host.stop();

    assert_eq!(site.runs("doomed").len(), doomed_then, "a deleted job is not scheduled again");
    let jobs = site.jobs_json();
    let listed: Vec<&str> = jobs
        .iter()
        .filter(|j| j["state"] != "invalid")
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["broken", "keeper"], "`sandcron jobs` no longer lists it as a job");
    // Its manifest, left behind, is listed as a file that does not load.
    let doomed = jobs.iter().find(|j| j["name"] == "doomed").expect("the orphan manifest");
    let error = doomed["load_error"].as_str().unwrap();
    assert!(error.contains("has no doomed.wasm beside it"), "{error}");
    assert!(finished(&site.runs("keeper")) >= keeper_then + 2, "other jobs keep running");
    assert!(
        finished(&site.runs("broken")) >= broken_then + 2,
        "the last good version of the broken job keeps running"
    );
    let log = host.log_text();
    assert!(log.contains(&expected), "the error names file and line:\n{log}");
}

#[test]
fn a_new_version_that_fails_where_the_old_one_succeeded_is_rolled_back() {
    let site = Site::new();
    let manifest = |mode: &str| {
        format!(
            "every = \"1s\"\nrollback_on_failure = 2\n[retry]\nmax_attempts = 1\n[config]\nmode = \"{mode}\"\n"
        )
    };
    let wasm = std::fs::read(guest("probe")).unwrap();
    let good = version_of(&wasm, &manifest("ok"));
    let bad = version_of(&wasm, &manifest("retryable"));
    site.probe_job("careful", &manifest("ok"));
    let mut host = site.start(&[]);
    site.wait_runs("careful", Duration::from_secs(20), |r| with_status(r, "succeeded").len() >= 2);
    std::fs::write(site.jobs().join("careful.toml"), manifest("retryable")).unwrap();
    let runs = site.wait_runs("careful", Duration::from_secs(20), |r| {
        let first_bad = r.iter().position(|run| run["version"] == bad.as_str());
        first_bad.is_some_and(|i| {
            r[i..].iter().any(|run| run["version"] == good.as_str() && run["status"] == "succeeded")
        })
    });
    host.stop();
    let bad_runs: Vec<_> = runs.iter().filter(|r| r["version"] == bad.as_str()).collect();
    assert_eq!(
        bad_runs.len(),
        2,
        "exactly rollback_on_failure failed slots on the new version: {runs:#?}"
    );
    assert!(bad_runs.iter().all(|r| r["status"] == "failed"));
    assert_eq!(runs.last().unwrap()["version"], good.as_str(), "back on the previous version");
    assert!(host.log_text().contains("rolled back"), "the rollback is recorded in the log");
    assert_eq!(site.jobs_json()[0]["version"], good.as_str(), "and in the job's record");
}
