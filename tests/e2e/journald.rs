//! O4/O9: under systemd (`JOURNAL_STREAM` naming the host's stderr) log lines carry a
//! syslog priority prefix for journald and no timestamp of their own; when the variable
//! names another stream (inherited by a child whose stderr is a file), lines are plain.

use std::ops::ControlFlow::{Break, Continue};
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::Duration;

use crate::host::Site;
use crate::util::{sandcron, shared_cache, wait_until};

/// Runs a host with stderr to a file and `JOURNAL_STREAM` set to `stream(file)` until it
/// logs that it started; returns the log.
fn host_log(site: &Site, name: &str, stream: impl Fn(&std::fs::Metadata) -> String) -> String {
    let path = site.dir.path().join(name);
    let log = std::fs::File::create(&path).unwrap();
    let journal_stream = stream(&log.metadata().unwrap());
    let mut child = site
        .serve_args(&mut Command::new(sandcron()), &shared_cache())
        .arg("--no-api")
        .env("JOURNAL_STREAM", journal_stream)
        .stderr(log)
        .spawn()
        .unwrap();
    let text = wait_until(Duration::from_secs(30), || {
        let text = std::fs::read_to_string(&path).unwrap();
        if text.contains("sandcron host starting") { Break(text) } else { Continue(text) }
    })
    .unwrap_or_else(|text| panic!("never started:\n{text}"));
    child.kill().unwrap();
    child.wait().unwrap();
    text
}

#[test]
fn journald_gets_priorities_and_no_timestamps() {
    let site = Site::new();
    let journal = host_log(&site, "journal.log", |m| format!("{}:{}", m.dev(), m.ino()));
    let line = journal.lines().find(|l| l.contains("sandcron host starting")).unwrap();
    assert!(line.starts_with("<6> INFO "), "{journal}");
    for line in journal.lines().filter(|l| !l.is_empty()) {
        assert!(line.starts_with('<') && !line.contains('\u{1b}'), "{line}");
    }

    let inherited = host_log(&site, "file.log", |m| format!("{}:{}", m.dev(), m.ino() + 1));
    let line = inherited.lines().find(|l| l.contains("sandcron host starting")).unwrap();
    // `2026-11-29T23:12:57.123456Z  INFO ...`: a timestamp, no colour, no prefix.
    assert!(line.starts_with("20") && line.contains("Z  INFO "), "{inherited}");
    assert!(!inherited.contains('\u{1b}'), "{inherited}");
}
