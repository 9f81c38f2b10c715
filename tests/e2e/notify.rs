//! Failures that speak up (O7): at the default log level a failing job writes one WARN line
//! per failed run (rate-limited per job) and the host says where its API listens; with
//! webhooks in the host config file, failures and broken edits are POSTed as JSON.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::ops::ControlFlow::{Break, Continue};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::host::{Site, with_status};
use crate::net_servers::{Reply, TestServer};
use crate::util::wait_until;

/// The host's log at the default level (no SANDCRON_LOG / RUST_LOG).
const DEFAULT_LEVEL: [(&str, &str); 2] = [("SANDCRON_LOG", ""), ("RUST_LOG", "")];

/// The lines of `log` that report a failed run.
fn failure_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains("WARN") && l.contains("run failed:")).collect()
}

#[test]
fn failed_runs_warn_at_the_default_level_rate_limited_and_the_api_address_is_logged() {
    let site = Site::new();
    site.probe_job(
        "flaky",
        "every = \"1s\"\n[retry]\nmax_attempts = 1\n[config]\nmode = \"fatal\"\n",
    );
    let mut host = site.start_with_env(&[], &DEFAULT_LEVEL);
    let api = host.api_address();
    assert!(api.starts_with("http://127.0.0.1:"), "{api}");
    // Seven failures in well under a minute: five reported one by one, the rest counted.
    let runs = site
        .wait_runs("flaky", Duration::from_secs(30), |runs| with_status(runs, "failed").len() >= 7);
    let failed = with_status(&runs, "failed");
    assert!(failed.len() >= 7, "{runs:?}");
    host.stop();
    let log = host.log_text();
    let lines = failure_lines(&log);
    assert_eq!(lines.len(), 5, "five per job and minute:\n{log}");
    let first = lines[0];
    let run_id = failed[0]["run_id"].as_str().unwrap();
    assert!(first.contains("job=flaky") || first.contains("\"flaky\""), "{first}");
    assert!(first.contains(run_id), "the first failed run's id {run_id}: {first}");
    assert!(first.contains("run failed: fatal: probe says give up"), "{first}");
    // The default level shows warnings and the host's own lines, not every run.
    assert!(!log.contains("run started"), "{log}");
    assert!(log.contains("INFO") && log.contains("API listening on http://127.0.0.1:"), "{log}");
}

/// A webhook on 127.0.0.1 that records each request's body and answers with the next
/// status of its plan (the last one repeats). Stops when dropped, or after two minutes.
struct Recorder {
    port: u16,
    bodies: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Recorder {
    fn start(plan: &'static [u16]) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, halt) = (bodies.clone(), stop.clone());
        thread::spawn(move || {
            let born = Instant::now();
            while !halt.load(Ordering::Relaxed) && born.elapsed() < Duration::from_secs(120) {
                let Ok((stream, _)) = listener.accept() else {
                    // Kept: the accept loop's polling interval (a non-blocking listener, so
                    // the thread can see `halt`).
                    thread::sleep(Duration::from_millis(5));
                    continue;
                };
                stream.set_nonblocking(false).unwrap();
                stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let Some(body) = read_request(&stream) else { continue };
                let mut seen = seen.lock().unwrap();
                seen.push(body);
                let status = plan[(seen.len() - 1).min(plan.len() - 1)];
                let answer = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = (&stream).write_all(answer.as_bytes());
            }
        });
        Recorder { port, bodies, stop }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    fn bodies(&self) -> Vec<Value> {
        let bodies = self.bodies.lock().unwrap();
        bodies.iter().map(|b| serde_json::from_str(b).expect("a JSON body")).collect()
    }

    /// Polls until `pred` holds on the bodies or `timeout` passes.
    fn wait(&self, timeout: Duration, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let look = || {
            let bodies = self.bodies();
            if pred(&bodies) { Break(bodies) } else { Continue(bodies) }
        };
        wait_until(timeout, look).unwrap_or_else(|bodies| bodies)
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One request's body (head and body bounded).
fn read_request(stream: &TcpStream) -> Option<String> {
    let mut reader = BufReader::new(stream);
    let mut length = 0;
    for _ in 0..100 {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length.min(1 << 20)];
    reader.read_exact(&mut body).ok()?;
    String::from_utf8(body).ok()
}

#[test]
fn a_failing_job_posts_to_the_webhook_which_is_retried_and_a_dead_one_delays_nothing() {
    let site = Site::new();
    site.probe_job(
        "flaky",
        "every = \"1s\"\n[retry]\nmax_attempts = 1\n[config]\nmode = \"fatal\"\n",
    );
    site.probe_job(
        "quiet",
        "every = \"1s\"\n[retry]\nmax_attempts = 1\n[notify]\non_failure = false\n\
         [config]\nmode = \"fatal\"\n",
    );
    crate::util::sandcron(); // built before the servers start their two-minute lives
    // The first POST gets a 500: the same document must come again.
    let hook = Recorder::start(&[500, 200]);
    // Accepts and never answers: each attempt costs the whole timeout.
    let dead = TestServer::http(Reply::Silent);
    let config = site.dir.path().join("sandcron.toml");
    std::fs::write(
        &config,
        format!(
            "[notify]\nhost = \"test-host\"\ntimeout = \"2s\"\nbackoff = \"100ms\"\n\
             [[notify.webhook]]\nurl = \"{}\"\n\
             [[notify.webhook]]\nurl = \"{}\"\nevents = [\"run_failed\"]\n",
            hook.url(),
            dead.url("/dead")
        ),
    )
    .unwrap();
    let mut host = site.start(&["--config", config.to_str().unwrap()]);
    let failures = |bodies: &[Value]| {
        bodies.iter().filter(|b| b["event"] == "run_failed").cloned().collect::<Vec<_>>()
    };
    let bodies = hook.wait(Duration::from_secs(30), |b| failures(b).len() >= 3);
    let failed = failures(&bodies);
    let log = host.log_text();
    let notes: Vec<&str> = log.lines().filter(|l| l.contains("notification")).collect();
    assert!(failed.len() >= 3, "{bodies:?}\n{notes:#?}");
    assert_eq!(failed[0], failed[1], "the answer 500 makes the same document come again");
    assert_ne!(failed[1]["run_id"], failed[2]["run_id"]);
    let first = &failed[0];
    assert_eq!(first["job"], "flaky");
    assert_eq!(first["reason"], "fatal: probe says give up");
    assert_eq!(first["host"], "test-host");
    assert_eq!(first["outcome"], "guest-error");
    assert_eq!(first["will_retry"], false);
    assert!(crate::host::parse_ms(first["at"].as_str().unwrap()) > 0);
    let runs = site.runs("flaky");
    let run_ids: Vec<&Value> = with_status(&runs, "failed").iter().map(|r| &r["run_id"]).collect();
    assert!(run_ids.contains(&&first["run_id"]), "{first} not in {run_ids:?}");
    assert!(bodies.iter().all(|b| b["job"] != "quiet"), "quiet silenced its failures: {bodies:?}");

    // The dead webhook holds its own thread for 2 s per attempt; slots still start on time.
    for run in with_status(&runs, "failed") {
        let lag = crate::host::parse_ms(run["started_at"].as_str().unwrap())
            - crate::host::parse_ms(run["scheduled_at"].as_str().unwrap());
        assert!(lag < 500, "a run started {lag} ms late: {run}");
    }
    assert!(dead.connections() >= 1, "the dead webhook was tried");

    // A broken edit of a running job is reported too.
    std::fs::write(site.jobs().join("flaky.toml"), "every = \"1s\"\ntimezone = \"Mars/Base\"\n")
        .unwrap();
    let bodies =
        hook.wait(Duration::from_secs(15), |b| b.iter().any(|b| b["event"] == "reload_error"));
    let reload = bodies
        .iter()
        .find(|b| b["event"] == "reload_error")
        .unwrap_or_else(|| panic!("no reload_error in {bodies:?}\n{}", host.log_text()));
    assert_eq!(reload["job"], "flaky");
    assert!(reload["reason"].as_str().unwrap().contains("Mars/Base"), "{reload}");
    assert_eq!(reload["keeps_running"], true);

    let metrics = crate::http::get(&host.api(), "/metrics").text;
    assert!(metrics.contains("sandcron_notifications_total{outcome=\"sent\"}"), "{metrics}");
    host.stop();
}

#[test]
fn validate_lists_a_jobs_notify_table_and_rejects_a_bad_webhook_at_its_line() {
    let site = Site::new();
    let manifest = site.jobs().join("hook.toml");
    std::fs::write(
        &manifest,
        "every = \"1m\"\n[notify]\non_failure = false\nwebhooks = [\"http://127.0.0.1:9/team\"]\n",
    )
    .unwrap();
    let (code, stdout, stderr) =
        crate::util::sandcron_cmd(&["validate".as_ref(), manifest.as_os_str()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains(
            "notify:  all events, run failures silenced; webhooks: the host's and http://127.0.0.1:9/team"
        ),
        "{stdout}"
    );
    std::fs::write(&manifest, "every = \"1m\"\n[notify]\nwebhooks = [\"mailto:ops\"]\n").unwrap();
    let (code, stdout, _) = crate::util::sandcron_cmd(&["validate".as_ref(), manifest.as_os_str()]);
    assert_eq!(code, 2, "{stdout}");
    let at = format!("{}:3:13: notify.webhooks: invalid URL \"mailto:ops\"", manifest.display());
    assert!(stdout.contains(&at), "{stdout}");
}
