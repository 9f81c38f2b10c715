//! The web dashboard (O5, O6) in headless Chromium: a real host with real jobs, driven by
//! `tests/browser/dashboard.js` (playwright-core and Debian's `/usr/bin/chromium`, both
//! installed by `scripts/browser-setup.sh`). The script clicks through the page and prints
//! one JSON line of what it saw; these tests assert on it and cross-check the host's API
//! and store. Screenshots land in `target/test-output/`.

use std::ops::ControlFlow::{Break, Continue};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::host::{Site, with_status};
use crate::http::{get, post, request};
use crate::util::{guest, root, shared_cache, wait_until};

/// The longest one browser script may take before the test kills it.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// Markup a guest writes into its output: the dashboard must show it as text.
const HTML: &str = "<img src=x onerror=\"window.__sandcronXss=true\"><b>bold</b>";

/// A secret's value, which the guest prints and the dashboard must show masked.
const DASH_SECRET: &str = "dash-secret-9f1c27";

/// `node_modules` holding playwright-core, after installing the browser bits once.
fn browser_modules() -> &'static Path {
    static MODULES: OnceLock<PathBuf> = OnceLock::new();
    MODULES.get_or_init(|| {
        let output = Command::new("bash")
            .arg(root().join("scripts/browser-setup.sh"))
            .stderr(Stdio::inherit())
            .output()
            .expect("cannot start bash scripts/browser-setup.sh");
        assert!(
            output.status.success(),
            "scripts/browser-setup.sh failed ({}): the dashboard test needs Debian's chromium \
             at /usr/bin/chromium, Node.js and playwright-core; see its messages above",
            output.status
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let modules = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
        assert!(
            modules.join("playwright-core/package.json").is_file(),
            "browser-setup.sh did not install playwright-core (printed {stdout:?})"
        );
        assert!(Path::new("/usr/bin/chromium").exists(), "/usr/bin/chromium is missing");
        modules
    })
}

/// Where the screenshots go: `target/test-output/`.
fn output_dir() -> PathBuf {
    let target = shared_cache().parent().expect("the test cache is in target/").to_path_buf();
    let dir = target.join("test-output");
    std::fs::create_dir_all(&dir).expect("create target/test-output");
    dir
}

/// Runs the browser script with `args`; returns its JSON report, panicking with the
/// script's stderr and the host's log when it fails or prints no report.
fn browse(site: &Site, host_log: &Path, args: &[&str]) -> Value {
    let modules = browser_modules();
    let stdout_path = site.dir.path().join("browser.out");
    let stderr_path = site.dir.path().join("browser.err");
    let started = Instant::now();
    let mut child = Command::new("node")
        .arg(root().join("tests/browser/dashboard.js"))
        .args(args)
        .env("NODE_PATH", modules)
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("cannot start node (scripts/browser-setup.sh installs it)");
    let status =
        wait_until(SCRIPT_TIMEOUT, || child.try_wait().unwrap().map_or(Continue(()), Break)).ok();
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let log = std::fs::read_to_string(host_log).unwrap_or_default();
    let tail: String = log.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().fold(
        String::new(),
        |mut acc, line| {
            acc.push_str(line);
            acc.push('\n');
            acc
        },
    );
    let report: Value = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or(Value::Null);
    eprintln!("browser script {:?} took {:.1}s", args.first(), started.elapsed().as_secs_f64());
    assert!(
        status.is_some_and(|s| s.success()) && report["ok"] == true,
        "the dashboard browser test failed (exit {status:?}):\n{}\nstdout: {stdout}\nstderr: \
         {stderr}\nhost log tail:\n{tail}",
        report["error"].as_str().unwrap_or("no JSON report"),
    );
    report
}

fn text<'a>(report: &'a Value, key: &str) -> &'a str {
    report[key].as_str().unwrap_or_else(|| panic!("report has no text {key:?}: {report}"))
}

fn assert_screenshot(path: &Path) {
    let size = std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("no screenshot {}: {e}", path.display()))
        .len();
    assert!(size > 10_000, "screenshot {} is only {size} bytes", path.display());
}

/// The example job, as `scripts/run-example.sh` serves it.
fn install_hello(site: &Site) {
    let jobs = site.jobs();
    std::fs::copy(guest("hello-rust"), jobs.join("hello-rust.wasm")).unwrap();
    std::fs::copy(root().join("examples/hello-rust/hello-rust.toml"), jobs.join("hello-rust.toml"))
        .unwrap();
}

#[test]
fn dashboard_lists_jobs_triggers_pauses_charts_and_shows_logs() {
    let site = Site::new();
    install_hello(&site);
    // A job that fails every 2 s (red points, a failure streak), one whose output is markup,
    // and a job file that does not load.
    site.probe_job("probe-fail", "every = \"2s\"\n[config]\nmode = \"fatal\"\n");
    // Its config also carries the value of one of its secrets, which it prints (M8): the
    // dashboard must show it masked.
    site.probe_job(
        "probe-html",
        &format!(
            "every = \"1h\"\n[secrets]\nDASH_TOKEN = {{ env = \"SANDCRON_E2E_DASH_SECRET\" }}\n\
             [config]\nmode = \"config\"\nhtml = {}\nleak = \"{DASH_SECRET}\"\n",
            json!(HTML)
        ),
    );
    std::fs::write(site.jobs().join("broken.toml"), "every = \"soon\"\n").unwrap();
    std::fs::copy(guest("probe"), site.jobs().join("broken.wasm")).unwrap();

    let host = site.start_with_env(&[], &[("SANDCRON_E2E_DASH_SECRET", DASH_SECRET)]);
    let api = host.api();
    let triggered = post(&api, "/v1/jobs/probe-html/trigger", &json!({}));
    assert_eq!(triggered.status, 202, "{}", triggered.text);
    site.wait_runs("probe-html", Duration::from_secs(20), |runs| {
        !with_status(runs, "succeeded").is_empty()
    });
    let failed = site.wait_runs("probe-fail", Duration::from_secs(20), |runs| {
        !with_status(runs, "failed").is_empty()
    });
    assert!(!with_status(&failed, "failed").is_empty(), "probe-fail never failed: {failed:?}");

    let out = output_dir();
    for name in ["dashboard.png", "dashboard-job.png"] {
        let _ = std::fs::remove_file(out.join(name));
    }
    let report = browse(
        &site,
        &host.log,
        &["open", &api, out.to_str().unwrap(), "hello-rust", "probe-html"],
    );

    // The jobs table lists every loaded job, and the broken file with its error.
    let jobs: Vec<&str> =
        report["jobs"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(jobs, ["hello-rust", "probe-fail", "probe-html"], "{report}");
    assert!(text(&report, "schedule").contains("every 10s"), "{report}");
    assert!(text(&report, "countdown").starts_with("in ") || report["countdown"] == "due now");
    let invalid = report["invalid"].as_array().unwrap();
    assert_eq!(invalid.len(), 1, "{report}");
    assert_eq!(invalid[0]["name"], "broken");
    assert!(invalid[0]["error"].as_str().unwrap().contains("broken.toml:1"), "{report}");
    assert_eq!(report["filtered"], 1, "the filter keeps the one matching job: {report}");
    assert_eq!(report["filtered_none"], 0, "{report}");

    // Trigger made a manual run, shown in the run table and recorded by the host.
    let run_id = text(&report, "triggered_run");
    assert_eq!(report["run_trigger"], "manual", "{report}");
    assert_eq!(report["run_status"], "succeeded", "{report}");
    let detail = get(&api, &format!("/v1/runs/{run_id}"));
    assert_eq!(detail.status, 200, "{}", detail.text);
    assert_eq!(detail.body["trigger"], "manual");
    assert_eq!(detail.body["job"], "hello-rust");
    let stored = site.runs("hello-rust");
    assert!(
        stored.iter().any(|r| r["run_id"] == run_id && r["trigger"] == "manual"),
        "sandcron runs --json has no manual run {run_id}: {stored:?}"
    );

    // The chart drew a point per run; the expanded run shows its output and logs.
    let points = report["chart_points"].as_u64().unwrap();
    assert!(points >= 1 && points >= report["run_rows"].as_u64().unwrap(), "{report}");
    assert_eq!(report["expanded"], "true");
    assert!(text(&report, "run_output").contains("hello from sandcron, run #"), "{report}");
    assert!(text(&report, "run_logs").contains("hello-rust starting"), "{report}");
    assert!(text(&report, "run_logs").contains("counted this run"), "{report}");

    // Pause showed the paused state (and the API agreed), a refused trigger showed the
    // API's message, and Resume cleared it.
    assert_eq!(text(&report, "paused_state"), "paused: browser test pause", "{report}");
    assert_eq!(report["resume_visible"], true);
    assert_eq!(report["api_paused"], true, "{report}");
    assert_eq!(report["api_pause_note"], "browser test pause");
    let message = text(&report, "error_flash");
    assert!(message.contains("is paused") && message.contains("browser test pause"), "{message}");
    assert_eq!(report["resumed_state"], "active", "{report}");
    assert_eq!(report["list_state"], "active", "{report}");
    let job = get(&api, "/v1/jobs/hello-rust");
    assert_eq!(job.body["paused"], false, "{}", job.text);

    // Guest output that looks like HTML is shown as text and never runs.
    assert!(text(&report, "html_output").contains(HTML), "{report}");
    // The secret the guest printed shows as ***.
    assert!(text(&report, "html_output").contains("leak=***"), "{report}");
    assert!(!report.to_string().contains(DASH_SECRET), "the dashboard showed a secret: {report}");
    assert_eq!(report["html_elements"], 0, "{report}");
    assert_eq!(report["html_executed"], false, "{report}");

    assert_screenshot(&out.join("dashboard.png"));
    assert_screenshot(&out.join("dashboard-job.png"));
}

#[test]
fn dashboard_behind_a_token_asks_for_it_then_shows_the_jobs() {
    const TOKEN: &str = "dashboard-test-token";
    let site = Site::new();
    install_hello(&site);
    let host = site.start(&["--token", TOKEN]);
    let api = host.api();

    // Without the token: the page is the login form (401), the API the JSON error.
    let page = get(&api, "/");
    assert_eq!(page.status, 401);
    assert!(page.content_type.starts_with("text/html"), "{}", page.content_type);
    assert!(page.text.contains("action=\"/login\"") && page.text.contains("name=\"token\""));
    let jobs = get(&api, "/v1/jobs");
    assert_eq!(jobs.status, 401);
    assert_eq!(jobs.body["code"], "unauthorized");
    let jobs = request(&api, "GET", "/v1/jobs", None, Some(TOKEN), &[]);
    assert_eq!(jobs.status, 200, "{}", jobs.text);

    let out = output_dir();
    let _ = std::fs::remove_file(out.join("dashboard-login.png"));
    let report = browse(&site, &host.log, &["token", &api, out.to_str().unwrap(), TOKEN]);
    assert_eq!(report["status"], 401, "{report}");
    assert_eq!(report["login_form"], true, "{report}");
    assert_eq!(report["login_message"], "This host requires its API token.");
    assert_eq!(report["wrong_token_message"], "That token is not valid.", "{report}");
    assert_eq!(report["jobs"], json!(["hello-rust"]), "{report}");
    assert_eq!(report["cookie_http_only"], true, "{report}");
    assert_screenshot(&out.join("dashboard-login.png"));
}

#[test]
fn dashboard_lists_a_job_still_compiling_then_moves_it_to_the_jobs_table() {
    let site = Site::new();
    install_hello(&site);
    // A Python component compiles for ~15 s with an empty cache: in the background.
    std::fs::copy(guest("hello-python"), site.jobs().join("py.wasm")).unwrap();
    let manifest = root().join("examples/hello-python/hello-python.toml");
    std::fs::copy(manifest, site.jobs().join("py.toml")).unwrap();
    let cache = crate::util::tempdir();
    let host = site.start_with_cache(cache.path(), &[]);
    let api = host.api();

    let out = output_dir();
    let _ = std::fs::remove_file(out.join("dashboard-compiling.png"));
    let report = browse(&site, &host.log, &["compiling", &api, out.to_str().unwrap(), "py"]);
    let row: Vec<&str> =
        report["compiling_row"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(row.len(), 3, "{report}");
    assert_eq!(row[0], "py", "{report}");
    assert!(row[2].starts_with("not running yet"), "{report}");
    assert_eq!(report["in_jobs_table"], false, "not in the jobs table while compiling: {report}");
    assert!(report["steps"].as_array().unwrap().contains(&json!("compiled")), "{report}");
    let jobs = get(&api, "/v1/jobs").body;
    assert_eq!(jobs["compiling"], json!([]), "{jobs}");
    assert_screenshot(&out.join("dashboard-compiling.png"));
}
