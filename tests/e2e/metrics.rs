//! O3: `/metrics`, parsed with the official Prometheus client's strict OpenMetrics parser
//! (`tests/metrics/parse.py`), moves with what the host does.

use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};

use crate::host::{Site, with_status};
use crate::http::{get, post};
use crate::util::root;

/// The venv python with `prometheus_client` (installed once per test run).
fn parser_python() -> &'static str {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let output = Command::new("bash")
            .arg(root().join("scripts/metrics-tools.sh"))
            .stderr(Stdio::inherit())
            .output()
            .expect("metrics-tools.sh runs");
        assert!(output.status.success(), "metrics-tools.sh failed");
        String::from_utf8(output.stdout).unwrap().trim().to_string()
    })
}

/// Every sample of one scrape.
struct Scrape(Vec<Value>);

impl Scrape {
    fn take(api: &str) -> Scrape {
        let reply = get(api, "/metrics");
        assert_eq!(reply.status, 200);
        assert!(reply.content_type.starts_with("application/openmetrics-text"), "{reply:?}");
        let mut child = Command::new(parser_python())
            .arg(root().join("tests/metrics/parse.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(reply.text.as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "the Prometheus parser rejected /metrics: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            reply.text
        );
        Scrape(serde_json::from_slice(&output.stdout).unwrap())
    }

    /// The value of the sample `name` whose labels include all of `labels` (0 if absent).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|s| s["name"] == name)
            .filter(|s| labels.iter().all(|(k, v)| s["labels"][k] == *v))
            .map(|s| s["value"].as_f64().unwrap())
            .sum()
    }
}

#[test]
fn metrics_parse_and_move_when_runs_happen() {
    let site = Site::new();
    site.probe_job("tick", "every = \"1s\"\n[limits]\nfuel = 1000000000\n");
    site.probe_job("slow", "every = \"1s\"\noverlap = \"skip\"\n[config]\nmode = \"sleep:2500\"\n");
    site.probe_job("manual", "every = \"1h\"\nphase = \"1800s\"\n[retry]\nmax_attempts = 1\n");
    std::fs::copy(crate::util::guest("probe"), site.jobs().join("broken.wasm")).unwrap();
    std::fs::write(site.jobs().join("broken.toml"), "every = \"soon\"\n").unwrap();
    let host = site.start(&[]);
    let api = host.api();

    let before = Scrape::take(&api);
    assert_eq!(before.value("sandcron_reload_errors_total", &[("job", "broken")]), 1.0);
    site.wait_runs("tick", Duration::from_secs(20), |r| r.len() >= 3);
    let reply = post(&api, "/v1/jobs/manual/trigger", &json!({ "payload": "fatal" }));
    assert_eq!(reply.status, 202, "{reply:?}");
    site.wait_runs("manual", Duration::from_secs(20), |r| {
        r.iter().any(|r| r["status"] == "failed")
    });
    site.wait_runs("slow", Duration::from_secs(20), |r| {
        r.iter().any(|r| r["reason"] == "skipped:overlap")
    });
    let paused = post(&api, "/v1/jobs/tick/pause", &json!({}));
    assert_eq!(paused.status, 200);
    // A run in flight at the pause ends (its metrics are counted before its row is written)
    // and a claim taken ahead is given up.
    site.wait_runs("tick", Duration::from_secs(20), |r| with_status(r, "running").is_empty());
    let after = Scrape::take(&api);

    let ok = [("job", "tick"), ("outcome", "succeeded")];
    let stored_ok = site.runs("tick").iter().filter(|r| r["status"] == "succeeded").count() as f64;
    assert!(after.value("sandcron_runs_total", &ok) > before.value("sandcron_runs_total", &ok));
    assert_eq!(after.value("sandcron_runs_total", &ok), stored_ok, "counts what the store holds");
    let failed = [("job", "manual"), ("outcome", "guest-error")];
    assert_eq!(after.value("sandcron_runs_total", &failed), 1.0);
    assert!(
        after.value(
            "sandcron_slots_not_run_total",
            &[("job", "slow"), ("reason", "skipped:overlap")]
        ) >= 1.0
    );
    // Histograms: a count per run, and start lag only for scheduled slots.
    let tick = [("job", "tick")];
    assert_eq!(after.value("sandcron_run_duration_seconds_count", &tick), stored_ok);
    assert!(after.value("sandcron_start_lag_seconds_count", &tick) >= stored_ok);
    assert!(after.value("sandcron_start_lag_seconds_sum", &tick) / stored_ok < 0.5, "lag is small");
    assert_eq!(after.value("sandcron_start_lag_seconds_count", &[("job", "manual")]), 0.0);
    assert!(after.value("sandcron_fuel_used_total", &tick) > 0.0);
    assert!(after.value("sandcron_peak_memory_bytes_count", &tick) >= stored_ok);
    // Gauges.
    assert_eq!(after.value("sandcron_paused", &tick), 1.0);
    assert_eq!(after.value("sandcron_paused", &[("job", "slow")]), 0.0);
    assert_eq!(after.value("sandcron_breaker_open", &tick), 0.0);
    assert!(after.value("sandcron_running_runs", &[]) <= 1.0, "only `slow` can be running");
    assert!(after.value("sandcron_queue_depth", &[]) >= 0.0);
}
