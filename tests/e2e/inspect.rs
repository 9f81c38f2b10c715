//! Run inspection and the truth about jobs (issue 15 points 2, 3, 4, 8 and 10): `sandcron
//! logs` (newest run, one run, `--follow`), run ids and logs in `runs`, what `jobs` says
//! with and without a host, after a deletion while stopped and after a broken edit, and
//! the hints the host adds where it knows more than the guest.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::ops::ControlFlow::{Break, Continue};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::host::Site;
use crate::util::{guest, run, sandcron, sandcron_cmd, tempdir, wait_until};

fn cli(args: &[&str], store: &std::path::Path) -> (i32, String, String) {
    let mut all: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    all.push(OsStr::new("--store"));
    all.push(store.as_os_str());
    sandcron_cmd(&all)
}

/// Polls `sandcron jobs --json` until `pred` holds for the job named `name` (bounded).
fn wait_job(site: &Site, name: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let matched = || {
        let jobs = site.jobs_json();
        let job = jobs.iter().find(|job| job["name"] == name).filter(|job| pred(job)).cloned();
        job.map_or(Continue(jobs), Break)
    };
    wait_until(Duration::from_secs(30), matched)
        .unwrap_or_else(|jobs| panic!("{name} never matched: {jobs:#?}"))
}

#[test]
fn logs_show_the_newest_run_one_run_and_follow_later_runs() {
    let site = Site::new();
    site.probe_job(
        "greet",
        "every = \"1s\"\n[config]\nmode = \"print-env:GREETING\"\n\
         [capabilities]\nenv = { GREETING = \"hello-logs\" }\n",
    );
    let host = site.start(&[]);
    let runs = site.wait_runs("greet", Duration::from_secs(30), |runs| {
        runs.iter().filter(|r| r["status"] == "succeeded").count() >= 2
    });
    let first = runs.iter().find(|r| r["status"] == "succeeded").expect("a run succeeded");
    let first_id = first["run_id"].as_str().unwrap();
    let store = site.store();

    let (code, out, err) = cli(&["logs", "greet"], &store);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("== greet run "), "{out}");
    assert!(out.contains(": succeeded"), "{out}");
    assert!(out.contains(" info   secret seen value=hello-logs\n"), "{out}");
    assert!(out.contains("-- output --\nGREETING=hello-logs"), "{out}");

    let (code, out, _) = cli(&["logs", "greet", first_id], &store);
    assert_eq!(code, 0);
    assert!(out.starts_with(&format!("== greet run {first_id} ")), "{out}");
    let (code, _, err) = cli(&["logs", "greet", "no-such-run"], &store);
    assert_eq!(code, 2);
    assert!(err.contains("greet has no run \"no-such-run\""), "{err}");
    let (code, _, err) = cli(&["logs", "ghost"], &store);
    assert_eq!(code, 2);
    assert!(err.contains("no job named \"ghost\""), "{err}");

    // `runs`: a RUN ID column; logs in --json only on request; an unknown job is an error.
    let (code, out, _) = cli(&["runs", "greet"], &store);
    assert_eq!(code, 0);
    assert!(out.starts_with("RUN ID "), "{out}");
    assert!(out.contains(first_id), "{out}");
    let (_, plain, _) = cli(&["runs", "greet", "--json"], &store);
    let plain: Vec<Value> = serde_json::from_str(&plain).unwrap();
    assert!(plain.iter().all(|run| run.get("logs").is_none()));
    let (_, with_logs, _) = cli(&["runs", "greet", "--json", "--logs"], &store);
    let with_logs: Vec<Value> = serde_json::from_str(&with_logs).unwrap();
    let logged = with_logs.iter().find(|run| run["run_id"] == first_id).expect("first run");
    assert_eq!(logged["logs"][0]["message"], "secret seen", "{logged:#}");
    let (code, out, err) = cli(&["runs", "ghost"], &store);
    assert_eq!((code, out.as_str()), (2, ""));
    assert!(err.contains("no job named \"ghost\""), "{err}");

    // --follow: the newest run at once, then each later run as it ends.
    let mut follow = Command::new(sandcron())
        .args(["logs", "greet", "--follow", "--json", "--store"])
        .arg(&store)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut ids = Vec::new();
    while ids.len() < 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).expect("--follow printed three runs in time");
        let run: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(run["job"], "greet");
        assert_eq!(run["logs"][0]["message"], "secret seen", "{run:#}");
        ids.push(run["id"].as_i64().unwrap());
    }
    follow.kill().unwrap();
    follow.wait().unwrap();
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "in order, each once: {ids:?}");

    // Log fields read as values, durations rounded (issue 15 point 10).
    let log = host.log_text();
    assert!(!log.contains("slot=Some("), "{log}");
    let started = log.lines().find(|l| l.contains("run started")).expect("a run started");
    assert!(started.contains(" slot=1"), "{started}");
    let finished = log.lines().find(|l| l.contains("run finished")).expect("a run finished");
    let duration = finished.split("duration_ms=").nth(1).unwrap().split(' ').next().unwrap();
    let decimals = duration.split('.').nth(1).map_or(0, str::len);
    assert!(decimals <= 1, "duration_ms={duration} in {finished}");
}

#[test]
fn jobs_tell_the_truth_about_hosts_deletions_and_broken_edits() {
    let site = Site::new();
    site.probe_job("keep", "every = \"1h\"\n");
    site.probe_job("gone", "every = \"1h\"\n");
    site.probe_job("never", "every = \"1h\"\nbogus = 1\n");
    let mut host = site.start(&[]);
    let api = host.api();

    let keep = wait_job(&site, "keep", |job| job["state"] == "active");
    assert_eq!(
        (keep["host_running"].as_bool(), keep["running"].as_bool()),
        (Some(true), Some(true))
    );
    assert!(keep["next_fire"].is_string(), "{keep:#}");
    let never = wait_job(&site, "never", |_| true);
    assert_eq!(never["state"], "invalid", "{never:#}");
    assert!(never["load_error"].as_str().unwrap().contains("never.toml:2:1"), "{never:#}");
    let (_, text, _) = cli(&["jobs"], &site.store());
    assert!(text.contains("  ! not loaded: ") && text.contains("never.toml:2:1"), "{text}");

    // A broken edit: the old version keeps running, and everyone is told why.
    std::fs::write(
        site.jobs().join("keep.toml"),
        "schedule = \"0 3 * * *\"\ntimezone = \"Europe/Pariss\"\n",
    )
    .unwrap();
    let keep = wait_job(&site, "keep", |job| job["load_error"].is_string());
    let error = keep["load_error"].as_str().unwrap();
    assert!(error.contains("keep.toml:2:12: unknown timezone 'Europe/Pariss'"), "{error}");
    assert!(error.contains("did you mean 'Europe/Paris'?"), "{error}");
    assert_eq!((keep["state"].as_str(), keep["running"].as_bool()), (Some("active"), Some(true)));
    let listed = crate::http::get(&api, "/v1/jobs");
    let listed = listed.body["jobs"].as_array().unwrap().iter().find(|j| j["name"] == "keep");
    assert_eq!(listed.unwrap()["load_error"].as_str(), Some(error));

    // Pausing again without a note keeps the note (issue 15 point 10).
    for args in [&["pause", "keep", "--note", "disk swap"][..], &["pause", "keep"][..]] {
        let output = Command::new(sandcron()).args(args).args(["--api", &api]).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    let detail = crate::http::get(&api, "/v1/jobs/keep");
    assert_eq!(detail.body["pause_note"], "disk swap", "{:#}", detail.body);

    // No host: nothing fires, and `jobs` says so.
    assert_eq!(host.stop(), 0);
    let keep = wait_job(&site, "keep", |_| true);
    assert_eq!(keep["host_running"], false);
    assert_eq!(
        (keep["state"].as_str(), keep["next_fire"].as_str()),
        (Some("paused, stopped"), None)
    );
    let gone = wait_job(&site, "gone", |_| true);
    assert_eq!((gone["state"].as_str(), gone["next_fire"].as_str()), (Some("stopped"), None));
    let (_, text, _) = cli(&["jobs"], &site.store());
    assert!(text.starts_with("no host is serving "), "{text}");

    // Deleted while stopped: forgotten once the next host has read the folder. `keep`,
    // still broken, has no version running in this host.
    std::fs::remove_file(site.jobs().join("gone.wasm")).unwrap();
    std::fs::remove_file(site.jobs().join("gone.toml")).unwrap();
    let host = site.start(&[]);
    host.api(); // ready: the folder is read and the store reconciled
    let keep = wait_job(&site, "keep", |job| job["host_running"] == true);
    let jobs = site.jobs_json();
    assert!(!jobs.iter().any(|job| job["name"] == "gone"), "{jobs:#?}");
    assert_eq!(
        (keep["state"].as_str(), keep["running"].as_bool()),
        (Some("invalid, not running"), Some(false))
    );
    assert!(keep["next_fire"].is_null(), "{keep:#}");

    // Fixed: running again, the error gone.
    std::fs::write(site.jobs().join("keep.toml"), "every = \"1h\"\n").unwrap();
    let keep = wait_job(&site, "keep", |job| job["load_error"].is_null());
    assert_eq!((keep["state"].as_str(), keep["running"].as_bool()), (Some("paused"), Some(true)));
}

#[test]
fn an_ungranted_path_gets_a_hint_naming_the_missing_grant() {
    let dir = tempdir();
    let report = run(&guest("probe"), dir.path(), &["--payload", "write:/out/report.txt"]);
    assert_eq!(report.code, 3);
    assert_eq!(
        report.reason(),
        "fatal: write /out/report.txt: No such file or directory (os error 44) (hint: /out is \
         not granted (this job is granted no dirs): add it to [capabilities] dirs, e.g. \
         dirs = [\"HOST_DIR:/out\"] (read-only; \":rw\" to write))"
    );
    let logs = report.json["logs"].as_array().unwrap();
    assert!(logs.iter().any(|l| l["message"].as_str().unwrap().starts_with("hint: /out")));
    // A granted dir that merely lacks the file gets no hint.
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let grant = format!("{}:/data", data.display());
    let report = run(&guest("probe"), dir.path(), &["--dir", &grant, "--payload", "read:/data/x"]);
    assert!(!report.reason().contains("hint"), "{}", report.reason());
}

#[test]
fn a_wasip1_build_of_an_sdk_job_is_told_to_build_for_wasip2() {
    let (code, out, err) =
        sandcron_cmd(&[OsStr::new("validate"), guest("hello-rust-p1").as_os_str()]);
    let all = format!("{out}{err}");
    assert_eq!(code, 2, "{all}");
    assert!(all.contains("built for wasm32-wasip1"), "{all}");
    assert!(all.contains("cargo build --target wasm32-wasip2"), "{all}");
    assert!(!all.contains("not a WASI command"), "{all}");
}

#[test]
fn a_bad_timezone_and_a_timezone_beside_every_are_reported_at_their_line() {
    let dir = tempdir();
    let toml = dir.path().join("job.toml");
    std::fs::write(&toml, "schedule = \"0 3 * * *\"\n\ntimezone = \"America/New_Yrok\"\n").unwrap();
    let (code, out, err) = sandcron_cmd(&[OsStr::new("validate"), toml.as_os_str()]);
    let all = format!("{out}{err}");
    assert_eq!(code, 2, "{all}");
    assert!(
        all.contains(
            "job.toml:3:12: unknown timezone 'America/New_Yrok'; did you mean 'America/New_York'?"
        ),
        "{all}"
    );
    std::fs::write(&toml, "every = \"1d\"\ntimezone = \"Europe/Paris\"\n").unwrap();
    let (code, out, err) = sandcron_cmd(&[OsStr::new("validate"), toml.as_os_str()]);
    let all = format!("{out}{err}");
    assert_eq!(code, 0, "{all}");
    assert!(all.contains("job.toml:2:12: `timezone` has no effect on `every`"), "{all}");
}

#[test]
fn the_readmes_exit_code_table_matches_a_bad_grant() {
    let dir = tempdir();
    let grant = format!("{}:/data", dir.path().join("missing").display());
    let (code, _, err) = sandcron_cmd(&[
        OsStr::new("run"),
        guest("probe").as_os_str(),
        OsStr::new("--dir"),
        OsStr::new(&grant),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("dir grant "), "{err}");
    let readme = std::fs::read_to_string(crate::util::root().join("README.md")).unwrap();
    let row = |code: &str| readme.lines().find(|l| l.starts_with(&format!("| {code} |"))).unwrap();
    assert!(row("2").contains("(a bad grant)"), "{}", row("2"));
    assert!(!row("1").contains("grant"), "{}", row("1"));
}

#[test]
fn fuel_is_reported_only_where_it_measures_something() {
    let dir = tempdir();
    let unmetered = run(&guest("probe"), dir.path(), &["--payload", "ok"]);
    assert_eq!(unmetered.json["fuel_used"], Value::Null, "{:#}", unmetered.json);
    let timed_out = run(
        &guest("probe"),
        dir.path(),
        &["--payload", "loop", "--timeout", "300ms", "--fuel", "100000000000"],
    );
    assert_eq!(timed_out.reason(), "timeout after 300ms");
    assert_eq!(timed_out.json["fuel_used"], Value::Null, "{:#}", timed_out.json);
    let metered = run(&guest("probe"), dir.path(), &["--payload", "ok", "--fuel", "100000000"]);
    assert!(metered.json["fuel_used"].as_u64().is_some_and(|n| n > 0), "{:#}", metered.json);
}
