//! The CLI control verbs (O1) against a running host, and the host's JSON log format (O4).

use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::host::Site;
use crate::util::sandcron;

fn verb(api: &str, args: &[&str]) -> Output {
    Command::new(sandcron()).args(args).args(["--api", api]).output().unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn trigger_pause_resume_and_backfill_from_the_command_line() {
    let site = Site::new();
    // Hourly at half past; a slot missed while the host is down is recorded, not run.
    site.probe_job("probe", "every = \"1h\"\nphase = \"1800s\"\nmisfire = \"skip\"\n");
    // Added five hours ago, so the backfill below is in the job's life.
    site.backdate_jobs(Duration::from_secs(5 * 3600));
    let host = site.start(&["--log-format", "json"]);
    let api = host.api();

    let started = stdout(&verb(
        &api,
        &["trigger", "probe", "--payload", "context", "--idempotency-key", "cli-1"],
    ));
    assert!(started.starts_with("started probe run "), "{started}");
    let json: Value = serde_json::from_str(&stdout(&verb(
        &api,
        &["trigger", "probe", "--idempotency-key", "cli-1", "--json"],
    )))
    .unwrap();
    assert_eq!(json["status"], "duplicate");
    let runs = site.wait_runs("probe", Duration::from_secs(20), |r| {
        r.iter().any(|r| r["status"] == "succeeded")
    });
    let runs: Vec<&Value> = runs.iter().filter(|r| r["trigger"] == "manual").collect();
    assert_eq!(runs.len(), 1, "{runs:#?}");
    let output = runs[0]["output"].as_str().unwrap();
    assert!(output.contains(r#""idempotency_key":"cli-1""#), "{output}");

    let paused = stdout(&verb(&api, &["pause", "probe", "--note", "upgrading"]));
    assert_eq!(paused.trim(), "paused probe (upgrading)");
    let refused = verb(&api, &["trigger", "probe"]);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("paused") && stderr.contains("job_paused"), "{stderr}");
    let resumed = stdout(&verb(&api, &["resume", "probe"]));
    assert!(resumed.starts_with("resumed probe; next fire "), "{resumed}");

    let now = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now());
    let to = now - chrono::Duration::hours(1);
    let from = to - chrono::Duration::hours(3);
    let backfill = stdout(&verb(
        &api,
        &[
            "backfill",
            "probe",
            "--from",
            &from.to_rfc3339(),
            "--to",
            &to.to_rfc3339(),
            "--rate",
            "10",
        ],
    ));
    assert!(backfill.contains("3 slot(s) in range, 3 queued, 0 already ran;"), "{backfill}");
    let runs = site.wait_runs("probe", Duration::from_secs(20), |r| {
        r.iter().filter(|r| r["trigger"] == "backfill" && r["status"] == "succeeded").count() == 3
    });
    assert_eq!(runs.iter().filter(|r| r["trigger"] == "backfill").count(), 3, "{runs:#?}");
    // A range reaching back before the job was added: those slots are left out, and said so.
    let (from, to) = (now - chrono::Duration::hours(8), now - chrono::Duration::hours(5));
    let earlier = stdout(&verb(
        &api,
        &["backfill", "probe", "--from", &from.to_rfc3339(), "--to", &to.to_rfc3339()],
    ));
    let left_out = "3 slot(s) in range, 0 queued, 0 already ran, 3 before the job's schedule began";
    assert!(earlier.contains(left_out), "{earlier}");

    let missing = verb(&api, &["trigger", "ghost"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no job named \"ghost\""));
    let unreachable = verb("http://127.0.0.1:9", &["resume", "probe"]);
    assert_eq!(unreachable.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unreachable.stderr).contains("cannot reach the sandcron API"));

    // --log-format json: every line is one JSON object; the run's lines carry its job and
    // run id in their span.
    let log = host.log_text();
    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let run_lines: Vec<&Value> = lines
        .iter()
        .filter(|l| {
            l["fields"]["message"] == "run started" || l["fields"]["message"] == "run finished"
        })
        .collect();
    assert!(run_lines.len() >= 8, "{log}");
    for line in run_lines {
        assert_eq!(line["span"]["job"], "probe", "{line}");
        assert!(line["span"]["run"].as_str().is_some_and(|r| !r.is_empty()), "{line}");
    }
}

/// Issue 15 point 7: `serve --api`, `--api` and `SANDCRON_API` take the same forms
/// (`SANDCRON_API=127.0.0.1:7077` was `http: invalid format`), a bad one says which forms
/// are accepted, and `run` takes `--store` like every other command.
#[test]
fn api_addresses_take_one_form_everywhere_and_a_bad_one_says_which() {
    let site = Site::new();
    site.probe_job("probe", "every = \"1h\"\n");
    let host = site.start(&["--api", "http://127.0.0.1:0"]);
    let api = host.api();
    let bare = api.trim_start_matches("http://");
    let by_env = |value: &str, verb: &str| {
        Command::new(sandcron()).args([verb, "probe"]).env("SANDCRON_API", value).output().unwrap()
    };
    assert_eq!(stdout(&by_env(bare, "pause")).trim(), "paused probe");
    assert!(stdout(&by_env(&format!("{api}/"), "resume")).starts_with("resumed probe"));

    let forms = "expected HOST:PORT, http://HOST:PORT or https://HOST:PORT";
    for bad in ["127.0.0.1", "tcp://127.0.0.1:7070", "http://127.0.0.1:7070/v1"] {
        for output in [verb(bad, &["resume", "probe"]), by_env(bad, "resume")] {
            assert_eq!(output.status.code(), Some(2), "{bad}");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(stderr.contains(forms) && !stderr.contains("invalid format"), "{stderr}");
        }
    }

    let help = stdout(&Command::new(sandcron()).args(["run", "--help"]).output().unwrap());
    assert!(help.contains("--store <PATH>") && !help.contains("--state <"), "{help}");
}

/// `run --state` became `--store`; the old flag and the old `SANDCRON_STATE` still work.
#[test]
fn run_keeps_the_old_state_flag_and_variable() {
    let dir = crate::util::tempdir();
    let (flag, variable) = (dir.path().join("flag.db"), dir.path().join("variable.db"));
    let run = |args: &[&std::ffi::OsStr], env: Option<&std::path::Path>| {
        let mut command = Command::new(sandcron());
        command.arg("run").arg(crate::util::guest("hello-rust")).args(args);
        command.arg("--cache-dir").arg(crate::util::shared_cache()).env_remove("SANDCRON_STORE");
        match env {
            Some(path) => command.env("SANDCRON_STATE", path),
            None => command.env_remove("SANDCRON_STATE"),
        };
        stdout(&command.output().unwrap())
    };
    run(&["--state".as_ref(), flag.as_os_str()], None);
    assert!(flag.is_file(), "--state is still the store");
    run(&[], Some(&variable));
    assert!(variable.is_file(), "SANDCRON_STATE is still read");
}
