//! `sandcron next` (S1 through the CLI): UTC then local, DST rules, clear refusals.

use std::ffi::OsStr;

use crate::util::sandcron_cmd;

fn next(args: &[&str]) -> (i32, Vec<String>, String) {
    let mut argv: Vec<&OsStr> = vec![OsStr::new("next")];
    argv.extend(args.iter().map(OsStr::new));
    let (code, stdout, stderr) = sandcron_cmd(&argv);
    (code, stdout.lines().map(str::to_string).collect(), stderr)
}

#[test]
fn prints_utc_then_local_and_shifts_out_of_the_spring_gap() {
    let (code, lines, stderr) = next(&[
        "30 2 * * *",
        "--tz",
        "Europe/Berlin",
        "--after",
        "2026-03-28T00:00:00Z",
        "-n",
        "3",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        lines,
        [
            "2026-03-28T01:30:00Z  2026-03-28 02:30:00 CET (+01:00)",
            "2026-03-29T01:00:00Z  2026-03-29 03:00:00 CEST (+02:00)",
            "2026-03-30T00:30:00Z  2026-03-30 02:30:00 CEST (+02:00)",
        ]
    );
    let (_, skipped, _) = next(&[
        "30 2 * * *",
        "--tz",
        "Europe/Berlin",
        "--after",
        "2026-03-28T12:00:00Z",
        "-n",
        "1",
        "--dst-gap",
        "skip",
    ]);
    assert_eq!(skipped, ["2026-03-30T00:30:00Z  2026-03-30 02:30:00 CEST (+02:00)"]);
}

#[test]
fn fold_fires_once_by_default_and_twice_with_both() {
    let args =
        ["30 1 * * *", "--tz", "America/New_York", "--after", "2026-11-01T00:00:00Z", "-n", "2"];
    let (_, first, _) = next(&args);
    assert_eq!(first[0], "2026-11-01T05:30:00Z  2026-11-01 01:30:00 EDT (-04:00)");
    assert_eq!(first[1], "2026-11-02T06:30:00Z  2026-11-02 01:30:00 EST (-05:00)");
    let (_, both, _) = next(&[&args[..], &["--dst-fold", "both"]].concat());
    assert_eq!(both[1], "2026-11-01T06:30:00Z  2026-11-01 01:30:00 EST (-05:00)");
}

#[test]
fn impossible_and_invalid_schedules_are_refused() {
    let (code, lines, stderr) = next(&["0 0 30 2 *"]);
    assert_eq!((code, lines.len()), (2, 0));
    assert!(stderr.contains("never fires"), "{stderr}");
    let (code, _, stderr) = next(&["0 25 * * *"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("cron field 'hour': 25 is out of range 0-23"), "{stderr}");
    let (code, _, stderr) = next(&["@daily", "--tz", "Mars/Olympus"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("Mars/Olympus"), "{stderr}");
}

#[test]
fn a_reader_that_stops_early_ends_the_listing_quietly() {
    // `sandcron next ... | head -1`: the closed pipe stops the listing like any Unix tool,
    // without a panic message.
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' next '* * * * * *' -n 1000000 | head -n 1",
            crate::util::sandcron().display()
        ))
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{stderr}");
}
