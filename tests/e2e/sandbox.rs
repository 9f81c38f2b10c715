//! Hostile guests (R2-R4, M5): each ends as the precise outcome it deserves, and the host
//! stays healthy — the next run in the same process succeeds.

use std::time::{Duration, Instant};

use crate::host::{Site, with_status};
use crate::util::{guest, run, tempdir};

#[test]
fn infinite_loop_ends_as_timeout_within_the_timeout() {
    let dir = tempdir();
    let started = Instant::now();
    let run = run(&guest("probe"), dir.path(), &["--payload", "loop", "--timeout", "1s"]);
    let elapsed = started.elapsed();
    assert_eq!(run.outcome(), "limit", "{}", run.stderr);
    assert_eq!(run.reason(), "timeout after 1s");
    assert_eq!(run.code, 5);
    let duration = run.json["duration_ms"].as_f64().unwrap();
    assert!((1000.0..1300.0).contains(&duration), "run took {duration} ms");
    assert!(elapsed < Duration::from_secs(5), "process took {elapsed:?}");
}

#[test]
fn infinite_loop_with_fuel_ends_as_fuel_exhausted() {
    let dir = tempdir();
    let run = run(
        &guest("probe"),
        dir.path(),
        &["--payload", "loop", "--fuel", "50000000", "--timeout", "30s"],
    );
    assert_eq!(run.outcome(), "limit");
    assert_eq!(run.reason(), "fuel exhausted (budget 50000000)");
    assert!(run.json["fuel_used"].as_u64().unwrap() >= 49_000_000);
    assert!(run.json["duration_ms"].as_f64().unwrap() < 10_000.0);
}

#[test]
fn memory_bomb_ends_as_memory_limit() {
    let dir = tempdir();
    let run = run(&guest("probe"), dir.path(), &["--payload", "memory", "--memory", "32MiB"]);
    assert_eq!(run.outcome(), "limit", "{}", run.reason());
    assert_eq!(run.reason(), "memory limit 32MiB exceeded");
    let peak = run.json["peak_memory"].as_u64().unwrap();
    assert!(peak <= 32 << 20 && peak > 16 << 20, "peak {peak}");
}

#[test]
fn unbounded_recursion_ends_as_stack_overflow_trap() {
    let dir = tempdir();
    let run = run(&guest("probe"), dir.path(), &["--payload", "recurse"]);
    assert_eq!(run.outcome(), "trap");
    assert_eq!(run.code, 4);
    assert!(run.reason().contains("stack overflow"), "{}", run.reason());
}

#[test]
fn panic_ends_as_trap_with_the_panic_text() {
    let dir = tempdir();
    let run = run(&guest("probe"), dir.path(), &["--payload", "panic"]);
    assert_eq!(run.outcome(), "trap");
    assert!(run.reason().starts_with("trap: panic: probe panicked: boom (at "), "{}", run.reason());
}

#[test]
fn stdout_flood_of_1gib_is_capped_and_host_memory_bounded() {
    let dir = tempdir();
    let gib = 1u64 << 30;
    let run = run(
        &guest("probe"),
        dir.path(),
        &["--payload", &format!("flood:{gib}"), "--timeout", "60s"],
    );
    assert_eq!(run.outcome(), "succeeded", "{}", run.reason());
    assert_eq!(run.summary(), format!("flooded {gib}"));
    let kept = run.json["stdout"].as_str().unwrap().len() as u64;
    let dropped = run.json["stdout_dropped"].as_u64().unwrap();
    assert_eq!(kept, 64 << 10, "default output cap is 64KiB");
    assert_eq!(kept + dropped, gib);
    let rss = run.json["host_peak_rss"].as_u64().expect("host_peak_rss reported on Linux");
    assert!(rss < 256 << 20, "host peak RSS {rss} bytes for a 1 GiB flood");
}

#[test]
fn log_flood_is_capped() {
    let dir = tempdir();
    let run = run(&guest("probe"), dir.path(), &["--payload", "log-flood:100000"]);
    assert_eq!(run.outcome(), "succeeded");
    let kept = run.json["logs"].as_array().unwrap().len() as u64;
    let dropped = run.json["logs_dropped"].as_u64().unwrap();
    assert!(kept > 100 && kept < 100_000, "kept {kept}");
    assert_eq!(kept + dropped, 100_000);
}

#[test]
fn no_grant_means_no_etc_passwd() {
    let dir = tempdir();
    let run = run(&guest("probe"), dir.path(), &["--payload", "read:/etc/passwd"]);
    assert_eq!(run.outcome(), "guest-error");
    assert!(run.reason().starts_with("fatal: read /etc/passwd:"), "{}", run.reason());
    assert!(!run.json.to_string().contains("root:x:0:0"));
}

#[test]
fn dotdot_and_symlink_escapes_fail_while_inside_reads_work() {
    let dir = tempdir();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("inside.txt"), "inside").unwrap();
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "TOP SECRET").unwrap();
    std::os::unix::fs::symlink("../secret.txt", data.join("relative-link")).unwrap();
    std::os::unix::fs::symlink(&secret, data.join("absolute-link")).unwrap();
    let grant = format!("{}:/data", data.display());
    let probe = guest("probe");

    let ok = run(&probe, dir.path(), &["--dir", &grant, "--payload", "read:/data/inside.txt"]);
    assert_eq!((ok.outcome(), ok.summary()), ("succeeded", "inside"));
    for path in ["/data/../secret.txt", "/data/relative-link", "/data/absolute-link", "/secret.txt"]
    {
        let escape =
            run(&probe, dir.path(), &["--dir", &grant, "--payload", &format!("read:{path}")]);
        assert_eq!(escape.outcome(), "guest-error", "{path} must not be readable");
        assert!(!escape.json.to_string().contains("TOP SECRET"), "{path} leaked the secret");
    }
}

#[test]
fn read_only_grant_refuses_writes_and_rw_grant_allows_them() {
    let dir = tempdir();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let probe = guest("probe");

    let ro = run(
        &probe,
        dir.path(),
        &["--dir", &format!("{}:/data:ro", data.display()), "--payload", "write:/data/out.txt"],
    );
    assert_eq!(ro.outcome(), "guest-error");
    assert!(ro.reason().starts_with("fatal: write /data/out.txt:"), "{}", ro.reason());
    assert!(!data.join("out.txt").exists());

    let rw = run(
        &probe,
        dir.path(),
        &["--dir", &format!("{}:/data:rw", data.display()), "--payload", "write:/data/out.txt"],
    );
    assert_eq!(rw.outcome(), "succeeded", "{}", rw.reason());
    assert_eq!(std::fs::read_to_string(data.join("out.txt")).unwrap(), "written by probe");
}

#[test]
fn guest_sees_only_the_env_it_was_given() {
    let dir = tempdir();
    let probe = guest("probe");
    let none = run(&probe, dir.path(), &["--payload", "env"]);
    assert_eq!((none.outcome(), none.summary()), ("succeeded", ""));
    let some = run(
        &probe,
        dir.path(),
        &["--payload", "env", "--env", "GREETING=hi", "--env", "MODE=test"],
    );
    assert_eq!(some.summary(), "GREETING=hi\nMODE=test");
}

#[test]
fn guest_cannot_open_a_socket() {
    let dir = tempdir();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let run = run(&guest("probe"), dir.path(), &["--payload", &format!("socket:{addr}")]);
    assert_eq!(run.outcome(), "guest-error", "{}", run.summary());
    assert!(run.reason().starts_with("fatal: connect:"), "{}", run.reason());
    assert!(listener.accept().is_err(), "the guest reached the listener");
}

/// One `Runtime`, as `serve` will hold it: every hostile run ends, and the next one works.
#[test]
fn one_runtime_survives_every_hostile_guest() {
    use sandcron::config::{ByteSize, JobSpec};
    use sandcron::job::{RunOutcome, RunRequest};
    use sandcron::runtime::{Runtime, RuntimeConfig};

    let runtime = Runtime::new(&RuntimeConfig::default()).unwrap();
    let job = runtime.load(&std::fs::read(guest("probe")).unwrap()).unwrap();
    let mut spec = JobSpec::unconfigured("probe");
    spec.limits.timeout = Duration::from_millis(500);
    spec.limits.memory = ByteSize(32 << 20);
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let exec = |payload: &str| {
        let request = RunRequest::manual("probe", Some(payload.as_bytes().to_vec()));
        tokio.block_on(runtime.execute(&job, &spec, None, &request))
    };
    let hostile = [
        ("loop", "limit"),
        ("memory", "limit"),
        ("recurse", "trap"),
        ("panic", "trap"),
        ("flood:10000000", "succeeded"),
        ("read:/etc/passwd", "guest-error"),
        ("exit:7", "guest-error"),
    ];
    for (hostile, expected) in hostile {
        let report = exec(hostile);
        assert_eq!(report.outcome.kind(), expected, "{hostile}: {}", report.outcome.reason());
        let next = exec("ok");
        assert_eq!(
            next.outcome,
            RunOutcome::Succeeded,
            "run after {hostile}: {}",
            next.outcome.reason()
        );
        assert_eq!(next.summary.as_deref(), Some("ok"));
    }
}

#[test]
fn every_run_starts_from_clean_memory_in_a_reused_pool_slot() {
    // The pool reuses memory slots between runs and resets them in place (up to its
    // keep-resident size) or hands pages back to the kernel (beyond it). The probe's
    // `residue` mode dirties a static and 3 MiB of grown memory, so each later run in a
    // reused slot would see them if the reset missed anything.
    let site = Site::new();
    let manifest = "every = \"1s\"\n[config]\nmode = \"residue\"\n";
    site.probe_job("residue-a", manifest);
    site.probe_job("residue-b", manifest);
    let mut host = site.start(&[]);
    let enough = |runs: &[serde_json::Value]| with_status(runs, "succeeded").len() >= 4;
    site.wait_runs("residue-a", Duration::from_secs(20), enough);
    site.wait_runs("residue-b", Duration::from_secs(20), enough);
    assert_eq!(host.stop(), 0, "{}", host.log_text());
    for job in ["residue-a", "residue-b"] {
        let runs = site.runs(job);
        let succeeded = with_status(&runs, "succeeded");
        assert!(succeeded.len() >= 4, "{job}: {runs:#?}");
        for run in succeeded {
            assert_eq!(run["output"], "calls=1 nonzero=0", "{job} saw an earlier run: {run:#?}");
        }
    }
}
