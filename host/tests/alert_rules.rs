//! The shipped alert rules (docs/alerts/sandcron.rules.yml) use only metrics the host
//! exports: renaming a metric without updating the rules fails here. (promtool checks the
//! rules' syntax and behaviour: scripts/alert-rules-check.sh.)

use std::collections::BTreeSet;

use sandcron::metrics::Metrics;

const RULES: &str = include_str!("../../docs/alerts/sandcron.rules.yml");

/// Every sample name `/metrics` can carry: a family's name plus its type's suffixes (a
/// family shows once it has a sample, so every public recorder is called once).
fn exported() -> BTreeSet<String> {
    let metrics = Metrics::new();
    metrics.run_started("a", Some(1.0));
    metrics.run_finished("a", "trap", 0.1, Some(10), Some(1 << 20));
    metrics.slots_not_run("a", "missed:misfire", 1);
    metrics.queue_change(1);
    metrics.job_state("a", true, false);
    metrics.reload_error("a");
    metrics.outbound("a", 1, [("example.com", "ok", 1)]);
    metrics.notification("sent");
    let text = metrics.render();
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else { continue };
        let (name, kind) = rest.split_once(' ').expect("# TYPE NAME KIND");
        let suffixes: &[&str] = match kind {
            "counter" => &["_total", "_created"],
            "histogram" => &["_bucket", "_sum", "_count", "_created"],
            _ => &[""],
        };
        names.extend(suffixes.iter().map(|suffix| format!("{name}{suffix}")));
    }
    names
}

/// The `sandcron_*` names in the rules' expressions (not in their prose).
fn used() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut in_expr = false;
    for line in RULES.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("expr:") {
            in_expr = true;
        } else if trimmed.starts_with("labels:") || trimmed.starts_with("- alert:") {
            in_expr = false;
        }
        if !in_expr || trimmed.starts_with('#') {
            continue;
        }
        let mut rest = trimmed;
        while let Some(at) = rest.find("sandcron_") {
            let tail = &rest[at..];
            let end =
                tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
            names.insert(tail[..end].to_string());
            rest = &tail[end..];
        }
    }
    names
}

#[test]
fn every_metric_the_alert_rules_use_is_exported() {
    let (exported, used) = (exported(), used());
    assert!(used.len() >= 6, "the rules' metrics were not found: {used:?}");
    let missing: Vec<&String> = used.iter().filter(|name| !exported.contains(*name)).collect();
    assert!(
        missing.is_empty(),
        "rules use metrics the host does not export: {missing:?}; exported: {exported:?}"
    );
}

#[test]
fn a_renamed_metric_would_be_caught() {
    assert!(exported().contains("sandcron_runs_total"));
    assert!(!exported().contains("sandcron_run_total"));
}
