//! Outbound network through `allowed_hosts` (M5) and secrets (M8), end to end: the probe
//! guest makes real requests and connections through `sandcron run` to servers on
//! 127.0.0.1 that count what reaches them. Cases whose refusal would otherwise touch a
//! non-loopback address run inside a private network namespace (`unshare -rnm`, only `lo`
//! up, with its own /etc/hosts), so no packet can leave the machine even if a rule broke.

use std::ops::ControlFlow::{Break, Continue};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::net_servers::{Reply, TestServer};
use crate::util::{Run, guest, parse, run, sandcron, shared_cache, tempdir, wait_until};

fn probe(dir: &Path, payload: &str, allow: &[&str], extra: &[&str]) -> Run {
    let mut args = vec!["--payload", payload];
    for entry in allow {
        args.extend(["--allow-host", entry]);
    }
    args.extend(extra);
    run(&guest("probe"), dir, &args)
}

fn net(run: &Run) -> &Value {
    &run.json["net"]
}

fn log_messages(run: &Run) -> Vec<String> {
    run.json["logs"]
        .as_array()
        .map(|logs| logs.iter().filter_map(|l| l["message"].as_str().map(String::from)).collect())
        .unwrap_or_default()
}

fn assert_logged(run: &Run, needle: &str) {
    let logs = log_messages(run);
    assert!(logs.iter().any(|m| m.contains(needle)), "no log line with {needle:?}: {logs:#?}");
}

#[test]
fn an_allowed_host_gets_the_response_and_the_run_counts_it() {
    let dir = tempdir();
    let server = TestServer::http(Reply::Text("hello from the test server"));
    let allow = format!("http://127.0.0.1:{}", server.port);
    let run = probe(dir.path(), &format!("http:{}", server.url("/hi")), &[&allow], &[]);
    assert_eq!(run.outcome(), "succeeded", "{} {}", run.reason(), run.stderr);
    assert_eq!(run.summary(), "status=200 bytes=26 body=hello from the test server");
    assert_eq!(net(&run)["requests"], 1);
    assert_eq!(net(&run)["refused"], 0);
    assert_eq!(net(&run)["bytes_in"], 26);
    assert_eq!(server.connections(), 1);
}

#[test]
fn another_port_an_unlisted_name_and_a_redirect_hop_are_refused() {
    let dir = tempdir();
    let other = TestServer::http(Reply::Text("must not be reached"));
    let server = TestServer::http(Reply::Redirect(other.url("/next")));
    let allow = format!("http://127.0.0.1:{}", server.port);

    let run = probe(dir.path(), &format!("http:{}", other.url("/")), &[&allow], &[]);
    assert_eq!(run.outcome(), "guest-error");
    assert!(run.reason().contains("HTTP-request-denied"), "{}", run.reason());
    assert_logged(&run, &format!("refused: port {} is not allowed for 127.0.0.1", other.port));
    assert_eq!((net(&run)["refused"].as_u64(), net(&run)["requests"].as_u64()), (Some(1), Some(0)));

    let by_name = format!("http:http://localhost:{}/", server.port);
    let run = probe(dir.path(), &by_name, &[&allow], &[]);
    assert!(run.reason().contains("HTTP-request-denied"), "{}", run.reason());
    assert_logged(&run, "refused: localhost is not in allowed_hosts");

    // The host does not follow the redirect: the guest sees the 302 ...
    let run = probe(dir.path(), &format!("http:{}", server.url("/start")), &[&allow], &[]);
    assert!(run.summary().starts_with("status=302"), "{} {}", run.summary(), run.reason());
    // ... and the hop it makes itself is a new request, checked again.
    let run = probe(dir.path(), &format!("http:{}", other.url("/next")), &[&allow], &[]);
    assert!(run.reason().contains("HTTP-request-denied"), "{}", run.reason());

    assert_eq!(server.connections(), 1, "only the allowed request reached the allowed server");
    assert_eq!(other.connections(), 0, "the refused server saw no connection");
}

#[test]
fn a_tcp_grant_opens_one_port_for_std_net() {
    let dir = tempdir();
    let echo = TestServer::echo();
    let other = TestServer::echo();
    let allow = format!("tcp://127.0.0.1:{}", echo.port);
    let run = probe(dir.path(), &format!("tcp-echo:127.0.0.1:{}", echo.port), &[&allow], &[]);
    assert_eq!((run.outcome(), run.summary()), ("succeeded", "echo=ping"), "{}", run.reason());
    assert_eq!(net(&run)["requests"], 1);

    let run = probe(dir.path(), &format!("tcp-echo:127.0.0.1:{}", other.port), &[&allow], &[]);
    assert_eq!(run.outcome(), "guest-error", "{}", run.summary());
    assert!(run.reason().starts_with("fatal: tcp: "), "{}", run.reason());
    assert_logged(
        &run,
        &format!("tcp 127.0.0.1:{} refused: port {} is not allowed", other.port, other.port),
    );
    assert_eq!((echo.connections(), other.connections()), (1, 0));
}

#[test]
fn without_a_grant_nothing_connects_and_no_name_is_looked_up() {
    let dir = tempdir();
    let server = TestServer::http(Reply::Text("no"));
    let echo = TestServer::echo();
    let run = probe(dir.path(), &format!("http:{}", server.url("/")), &[], &[]);
    assert!(run.reason().contains("HTTP-request-denied"), "{}", run.reason());
    assert_logged(&run, "refused: 127.0.0.1 is loopback and no entry names it");
    let run = probe(dir.path(), &format!("tcp-echo:127.0.0.1:{}", echo.port), &[], &[]);
    assert!(run.reason().starts_with("fatal: tcp: "), "{}", run.reason());
    let run = probe(dir.path(), &format!("tcp-echo:localhost:{}", echo.port), &[], &[]);
    assert!(run.reason().starts_with("fatal: tcp: "), "name lookup must fail: {}", run.reason());
    assert_eq!((server.connections(), echo.connections()), (0, 0));
}

#[test]
fn wildcards_are_refused_for_loopback_names_and_addresses() {
    let dir = tempdir();
    let server = TestServer::http(Reply::Text("no"));
    let wild = ["http://*:*", "http://*.localhost:*", "tcp://*:*"];
    for target in [
        server.url("/"),
        format!("http://localhost:{}/", server.port),
        format!("http://[::ffff:127.0.0.1]:{}/", server.port),
    ] {
        let run = probe(dir.path(), &format!("http:{target}"), &wild, &[]);
        assert!(run.reason().contains("HTTP-request-denied"), "{target}: {}", run.reason());
        assert_logged(&run, "is loopback and no entry names it");
    }
    let run = probe(dir.path(), &format!("tcp-echo:127.0.0.1:{}", server.port), &wild, &[]);
    assert!(run.reason().starts_with("fatal: tcp: "), "{}", run.reason());
    assert_eq!(server.connections(), 0);
}

/// Runs the probe inside a private network namespace (only `lo`, and an /etc/hosts that
/// maps test names to private, link-local and loopback addresses).
fn probe_isolated(dir: &Path, payload: &str, allow: &[&str]) -> Run {
    let hosts = dir.join("hosts");
    std::fs::write(
        &hosts,
        "127.0.0.1 localhost\n10.0.0.5 db.corp.test\n169.254.169.254 metadata.corp.test\n\
         127.0.0.1 rebind.corp.test\n192.168.7.7 exact.corp.test\n",
    )
    .unwrap();
    let mut command = format!(
        "ip link set lo up && mount --bind {} /etc/hosts && exec {} run {} --json --state {} --cache-dir {} --payload '{payload}'",
        hosts.display(),
        sandcron().display(),
        guest("probe").display(),
        dir.join("state.db").display(),
        shared_cache().display(),
    );
    for entry in allow {
        command.push_str(&format!(" --allow-host '{entry}'"));
    }
    let output = Command::new("unshare")
        .args(["-rnm", "sh", "-c", &command])
        .output()
        .expect("unshare runs");
    parse(output)
}

#[test]
fn wildcards_never_reach_private_link_local_or_rebound_addresses_in_a_private_namespace() {
    let dir = tempdir();
    let wild = ["http://*:*", "http://*.corp.test:*", "tcp://*:*"];
    for (payload, reason) in [
        ("http:http://10.0.0.5/", "10.0.0.5 is private and no entry names it"),
        ("http:http://169.254.169.254/latest/meta-data/", "169.254.169.254 is link-local"),
        ("http:http://db.corp.test/", "db.corp.test resolves to 10.0.0.5; 10.0.0.5 is private"),
        (
            "http:http://metadata.corp.test/",
            "metadata.corp.test resolves to 169.254.169.254; 169.254.169.254 is link-local",
        ),
        (
            "http:http://rebind.corp.test:8080/",
            "rebind.corp.test resolves to 127.0.0.1; 127.0.0.1 is loopback",
        ),
        ("http:http://[fd00::1]/", "fd00::1 is unique-local (private)"),
        ("tcp-echo:10.0.0.5:5432", "tcp 10.0.0.5:5432 refused: 10.0.0.5 is private"),
        ("tcp-echo:169.254.169.254:80", "169.254.169.254 is link-local"),
    ] {
        let run = probe_isolated(dir.path(), payload, &wild);
        assert_eq!(run.outcome(), "guest-error", "{payload}: {}", run.summary());
        assert_logged(&run, reason);
        assert_eq!(run.json["net"]["requests"], 0, "{payload}");
    }
    // Only an entry that names the address (or the exact name) opens it; here the
    // connection then fails for want of a route, which proves the check let it through.
    let run = probe_isolated(dir.path(), "http:http://10.0.0.5/", &["http://10.0.0.0/8"]);
    assert_eq!(run.json["net"]["requests"], 1, "{}", run.reason());
    let run =
        probe_isolated(dir.path(), "http:http://exact.corp.test/", &["http://exact.corp.test"]);
    assert_eq!(run.json["net"]["requests"], 1, "{}", run.reason());
    assert_eq!(run.json["net"]["refused"], 0, "{}", run.reason());
}

#[test]
fn a_server_that_never_answers_is_cut_by_the_run_timeout() {
    let dir = tempdir();
    let server = TestServer::http(Reply::Silent);
    let allow = format!("http://127.0.0.1:{}", server.port);
    let started = Instant::now();
    let run =
        probe(dir.path(), &format!("http:{}", server.url("/")), &[&allow], &["--timeout", "2s"]);
    assert_eq!((run.outcome(), run.reason()), ("limit", "timeout after 2s"));
    assert!(started.elapsed() < Duration::from_secs(8), "took {:?}", started.elapsed());
    assert_eq!(server.connections(), 1);
}

fn manifest(dir: &Path, text: &str) -> String {
    let path = dir.join("job.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn a_response_past_the_byte_cap_fails_that_request_and_host_memory_stays_bounded() {
    let dir = tempdir();
    for chunked in [false, true] {
        let server = TestServer::http(Reply::Huge { bytes: 64 << 20, chunked });
        let path = manifest(
            dir.path(),
            &format!(
                "[capabilities]\nallowed_hosts = [\"http://127.0.0.1:{}\"]\n[limits]\nbytes_in = \"1MiB\"\n",
                server.port
            ),
        );
        let run =
            probe(dir.path(), &format!("http:{}", server.url("/big")), &[], &["--manifest", &path]);
        assert_eq!(run.outcome(), "guest-error", "chunked={chunked}: {}", run.summary());
        // With a Content-Length the request itself fails with the error-code; a streamed
        // body fails mid-read, where wasi:http hands the guest the error's text.
        let expected = if chunked {
            "HTTP response body size exceeds limit"
        } else {
            "HTTP-response-body-size"
        };
        assert!(run.reason().contains(expected), "chunked={chunked}: {}", run.reason());
        assert!(net(&run)["bytes_in"].as_u64().unwrap() <= 1 << 20);
        assert_eq!(net(&run)["limited"], 1, "chunked={chunked}");
        assert_logged(&run, "limits.bytes_in");
        let rss = run.json["host_peak_rss"].as_u64().unwrap();
        assert!(rss < 200 << 20, "host peak RSS {rss} bytes for a 64 MiB response");
    }
}

#[test]
fn a_guest_looping_on_requests_is_stopped_by_the_request_cap() {
    let dir = tempdir();
    let server = TestServer::http(Reply::Text("ok"));
    let path = manifest(
        dir.path(),
        &format!(
            "[capabilities]\nallowed_hosts = [\"http://127.0.0.1:{}\"]\n[limits]\nrequests = 20\n",
            server.port
        ),
    );
    let run = probe(
        dir.path(),
        &format!("http-count:500:{}", server.url("/")),
        &[],
        &["--manifest", &path],
    );
    assert!(
        run.summary().starts_with("ok=20 failed=480 first_error="),
        "{} {}",
        run.summary(),
        run.reason()
    );
    assert!(run.summary().contains("connection-limit-reached"), "{}", run.summary());
    assert_eq!(
        (net(&run)["requests"].as_u64(), net(&run)["limited"].as_u64()),
        (Some(20), Some(480))
    );
    assert_logged(&run, "the run's limit of 20 requests is reached");
    let logs = log_messages(&run);
    assert!(logs.len() <= 60, "a request loop must not flood the log: {} lines", logs.len());
}

#[test]
fn bad_allowed_hosts_entries_are_manifest_errors_with_line_and_column() {
    let dir = tempdir();
    let path = manifest(
        dir.path(),
        "[capabilities]\nallowed_hosts = [\n  \"https://ok.example.com\",\n  \"tcp://*.example.com:5432\",\n]\n",
    );
    let output = Command::new(sandcron()).args(["validate", &path]).output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.contains("job.toml:4:3: capabilities.allowed_hosts: invalid allowed_hosts entry"),
        "{text}"
    );
    assert!(text.contains("cannot use *.domain"), "{text}");
}

#[test]
fn validate_lists_the_grant_and_secret_names_but_never_values() {
    let dir = tempdir();
    let path = manifest(
        dir.path(),
        "[capabilities]\nallowed_hosts = [\"https://api.example.com\", \"tcp://10.0.0.5:5432\"]\n\
         [secrets]\nAPI_TOKEN = { env = \"SANDCRON_E2E_TOKEN\" }\n",
    );
    let output = Command::new(sandcron())
        .args(["validate", &path])
        .env("SANDCRON_E2E_TOKEN", "tok-7f3a9c-secret")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("network: https://api.example.com, tcp://10.0.0.5:5432"), "{text}");
    assert!(text.contains("secrets: API_TOKEN (from env SANDCRON_E2E_TOKEN)"), "{text}");
    assert!(!text.contains("tok-7f3a9c-secret"), "{text}");

    let output = Command::new(sandcron())
        .args(["validate", &path])
        .env_remove("SANDCRON_E2E_TOKEN")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.contains("job.toml:4:") && text.contains("SANDCRON_E2E_TOKEN is not set"),
        "{text}"
    );
}

#[test]
fn a_secret_reaches_the_guest_and_is_masked_in_runs_the_api_and_the_host_log() {
    let secret = "s3cr3t-Value-4711";
    let site = crate::host::Site::new();
    site.probe_job(
        "leaky",
        "[secrets]\nAPI_TOKEN = { env = \"SANDCRON_E2E_SECRET\" }\n[config]\nmode = \"print-env:API_TOKEN\"\n",
    );
    // The host reads the secret from its own environment at load time.
    let mut host = site.start_with_env(&[], &[("SANDCRON_E2E_SECRET", secret)]);
    let base = host.api();
    let reply = crate::http::post(&base, "/v1/jobs/leaky/trigger", &serde_json::json!({}));
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    let runs = site.wait_runs("leaky", Duration::from_secs(20), |runs| {
        runs.iter().any(|r| r["status"] != "running")
    });
    let finished = runs.iter().find(|r| r["status"] != "running").expect("a finished run");
    assert_eq!(finished["status"], "succeeded", "{finished}");
    let output = finished["output"].as_str().unwrap();
    assert!(output.contains("API_TOKEN=***"), "the guest saw the secret and printed it: {output}");
    let id = finished["run_id"].as_str().unwrap();
    let detail = crate::http::get(&base, &format!("/v1/runs/{id}"));
    assert!(detail.text.contains("API_TOKEN=***"), "{}", detail.text);
    assert!(!detail.text.contains(secret), "the API leaked the secret: {}", detail.text);
    let jobs = crate::http::get(&base, "/v1/jobs/leaky");
    assert!(jobs.text.contains("API_TOKEN") && !jobs.text.contains(secret), "{}", jobs.text);
    host.stop();
    let store = std::fs::read(site.store()).unwrap();
    let wal = std::fs::read(site.store().with_extension("db-wal")).unwrap_or_default();
    for bytes in [&store, &wal] {
        assert!(!String::from_utf8_lossy(bytes).contains(secret), "the store holds the secret");
    }
    assert!(!host.log_text().contains(secret), "the host log holds the secret");
}

#[test]
fn serve_records_net_counts_per_run_and_counts_outbound_requests_in_metrics() {
    let server = TestServer::http(Reply::Text("ok"));
    let site = crate::host::Site::new();
    let allowed = format!("http://127.0.0.1:{}", server.port);
    site.probe_job(
        "fetcher",
        &format!(
            "[capabilities]\nallowed_hosts = [\"{allowed}\"]\n[config]\nmode = \"http:{}\"\n",
            server.url("/x")
        ),
    );
    // Granted nothing: its request is refused.
    site.probe_job("stranger", &format!("[config]\nmode = \"http:{}\"\n", server.url("/y")));
    let host = site.start(&[]);
    let base = host.api();
    for job in ["fetcher", "stranger"] {
        let reply =
            crate::http::post(&base, &format!("/v1/jobs/{job}/trigger"), &serde_json::json!({}));
        assert_eq!(reply.status, 202, "{job}: {:?}", reply.body);
    }
    let done = |runs: &[Value]| runs.iter().any(|r| r["status"] != "running");
    let fetched = site.wait_runs("fetcher", Duration::from_secs(20), done);
    let refused = site.wait_runs("stranger", Duration::from_secs(20), done);
    let (fetched, refused) = (&fetched[0], &refused[0]);
    assert_eq!(fetched["status"], "succeeded", "{fetched}");
    assert_eq!(fetched["net"]["requests"], 1, "{fetched}");
    assert_eq!(fetched["net"]["bytes_in"], 2, "{fetched}");
    assert_eq!(refused["status"], "failed", "{refused}");
    assert_eq!(
        (refused["net"]["refused"].as_u64(), refused["net"]["requests"].as_u64()),
        (Some(1), Some(0))
    );
    let id = refused["run_id"].as_str().unwrap();
    let detail = crate::http::get(&base, &format!("/v1/runs/{id}"));
    assert_eq!(detail.body["net"]["refused"], 1, "{}", detail.text);
    assert!(
        detail.text.contains("refused: 127.0.0.1 is loopback and no entry names it"),
        "{}",
        detail.text
    );
    let metrics = crate::http::get(&base, "/metrics").text;
    assert!(
        metrics.contains(
            r#"sandcron_outbound_requests_total{job="fetcher",host="127.0.0.1",outcome="ok"} 1"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains(r#"sandcron_outbound_refused_total{job="stranger"} 1"#), "{metrics}");
    assert_eq!(server.connections(), 1);
}

#[test]
fn a_missing_secret_makes_the_new_version_invalid_and_the_old_one_keeps_running() {
    let site = crate::host::Site::new();
    site.probe_job("keeper", "[config]\nmode = \"ok\"\n");
    let host = site.start(&[]);
    let base = host.api();
    // The new version names a secret the host does not have.
    let manifest =
        "[secrets]\nTOKEN = { env = \"SANDCRON_E2E_NEVER_SET\" }\n[config]\nmode = \"ok\"\n";
    std::fs::write(site.jobs().join("keeper.toml"), manifest).unwrap();
    let invalid = wait_until(Duration::from_secs(20), || {
        let log = host.log_text();
        let line = log.lines().find(|l| l.contains("invalid job not loaded")).map(str::to_string);
        line.map_or(Continue(log), Break)
    })
    .unwrap_or_else(|log| panic!("never reported:\n{log}"));
    assert!(invalid.contains("keeper.toml:2:"), "{invalid}");
    assert!(invalid.contains("SANDCRON_E2E_NEVER_SET is not set"), "{invalid}");
    assert!(invalid.contains("the previous version keeps running"), "{invalid}");
    // The previous version is still loaded and runs.
    let reply = crate::http::post(&base, "/v1/jobs/keeper/trigger", &serde_json::json!({}));
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    let runs = site.wait_runs("keeper", Duration::from_secs(20), |runs| {
        runs.iter().any(|r| r["status"] == "succeeded")
    });
    assert!(runs.iter().any(|r| r["status"] == "succeeded"), "{runs:?}");
}

#[test]
fn a_preview1_module_is_told_that_allowed_hosts_gives_it_nothing() {
    let dir = tempdir();
    let run = run(&guest("command-rust-p1"), dir.path(), &["--allow-host", "http://127.0.0.1:9"]);
    assert!(
        run.stderr
            .contains("allowed_hosts has no effect: a WASI preview1 module has no sockets or HTTP"),
        "{}",
        run.stderr
    );
}
