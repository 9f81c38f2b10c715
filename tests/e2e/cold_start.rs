//! A cold start (issue 15): with an empty compile cache, a Python job's compile (~12 s)
//! runs in the background. The other jobs load and run on time from the start, `/readyz`
//! answers ready within seconds with the Python job listed as compiling, and the Python
//! job's slots that came due meanwhile are recorded `missed:compiling` or caught up (its
//! misfire policy, `latest` by default), never `skipped:overlap`; then it runs. Meanwhile
//! `sandcron jobs` lists it as compiling.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::host::{Site, parse_ms, slot_ms, with_status};
use crate::http;
use crate::util::{guest, root, tempdir};

#[test]
fn a_cold_python_compile_runs_in_the_background_while_a_probe_runs_on_time() {
    let site = Site::new();
    site.probe_job("probe", "every = \"1s\"\n");
    let example = root().join("examples/hello-python/hello-python.toml");
    let manifest = std::fs::read_to_string(example).unwrap();
    assert!(manifest.contains("every = \"10s\""), "{manifest}");
    let manifest = manifest.replace("every = \"10s\"", "every = \"2s\"");
    std::fs::write(site.jobs().join("py.toml"), manifest).unwrap();
    std::fs::copy(guest("hello-python"), site.jobs().join("py.wasm")).unwrap();
    let cache = tempdir();
    crate::util::sandcron(); // built (if need be) before the clock starts

    let started = Instant::now();
    let mut host = site.start_with_cache(cache.path(), &[]);
    let base = host.api();
    let ready_after = started.elapsed();
    let jobs = http::get(&base, "/v1/jobs").body;
    let compiling: Vec<&Value> = jobs["compiling"].as_array().unwrap().iter().collect();
    assert!(
        compiling.iter().any(|job| job["name"] == "py"),
        "py compiles in the background: {jobs}"
    );
    assert!(jobs["jobs"].as_array().unwrap().iter().any(|job| job["name"] == "probe"), "{jobs}");
    let ready = http::get(&base, "/readyz").body;
    assert_eq!(
        (ready["status"].as_str(), ready["compiling"].as_u64()),
        (Some("ready"), Some(1)),
        "{ready}"
    );
    assert!(
        ready_after < Duration::from_secs(10),
        "ready after {ready_after:?}, not after the compile"
    );
    // `sandcron jobs` reads the store, and says so too.
    let state = |jobs: &[Value]| {
        let py = jobs.iter().find(|job| job["name"] == "py").cloned().unwrap_or_default();
        (py["state"].as_str().map(str::to_owned), py["compiling_since"].is_string())
    };
    let listed = site.jobs_json();
    assert_eq!(state(&listed), (Some("compiling".into()), true), "{listed:#?}");
    let store = site.store();
    let table =
        crate::util::sandcron_cmd(&["jobs".as_ref(), "--store".as_ref(), store.as_os_str()]);
    assert!(
        table.1.contains("  ~ compiling in the background; it runs once compiled"),
        "{table:?}"
    );

    let py = site.wait_runs("py", Duration::from_secs(120), |runs| {
        !with_status(runs, "succeeded").is_empty()
    });
    let py_ran = started.elapsed();
    let probe = site.runs("probe");
    let listed = site.jobs_json();
    assert_eq!(state(&listed), (Some("active".into()), false), "compiled: {listed:#?}");
    host.stop();
    assert!(
        !with_status(&py, "succeeded").is_empty(),
        "py ran once compiled: {py:#?}\n{}",
        host.log_text()
    );
    let reasons: Vec<&str> = py.iter().map(|r| r["reason"].as_str().unwrap_or("")).collect();
    let missed = reasons.iter().filter(|r| **r == "missed:compiling").count();
    let caught_up = py.iter().filter(|r| r["trigger"] == "catch-up").count();
    assert!(missed >= 1, "slots during the compile are missed:compiling: {reasons:?}");
    assert!(caught_up <= 1, "misfire = latest catches up one: {py:#?}");
    assert!(!reasons.contains(&"skipped:overlap"), "{reasons:?}");

    // The probe ran every second from the start, through the compile, none skipped or missed.
    let not_run: Vec<&Value> =
        probe.iter().filter(|r| r["status"] == "skipped" || r["status"] == "missed").collect();
    assert!(not_run.is_empty(), "{not_run:#?}");
    let first_py = py.iter().find(|r| r["status"] == "succeeded").unwrap();
    let py_started = parse_ms(first_py["started_at"].as_str().unwrap());
    let during: Vec<&Value> = probe.iter().filter(|r| slot_ms(r) < py_started).collect();
    let lags: Vec<i64> = during
        .iter()
        .filter_map(|r| r["started_at"].as_str().map(|at| parse_ms(at) - slot_ms(r)))
        .collect();
    let worst = lags.iter().copied().max().unwrap_or(0);
    eprintln!(
        "cold start: ready after {ready_after:?}, py ran after {py_ran:?}; {} probe runs before it, \
         worst start lag {worst} ms; py rows {reasons:?}",
        during.len()
    );
    assert!(during.len() >= 3, "the probe ran while py compiled: {probe:#?}");
    assert!(worst < 1_000, "the probe's runs started on time during the compile: {lags:?}");
}
