//! Fuzz target: manifest text through [`parse_manifest`].
//!
//! Inputs: random strings, TOML-shaped random text, and edits of valid manifests (every
//! example's `*.toml` plus one that uses every key). Property: no panic, and every error is
//! a [`ManifestError::Invalid`] whose Display starts with `path:line:column:`, the position
//! inside the text (line within its lines, column within that line plus one).
//!
//! Long campaign: `SANDCRON_FUZZ_CASES=100000 cargo test --release -p sandcron --test
//! fuzz_manifest -- --nocapture`.

mod common;

use std::path::Path;

use proptest::prelude::*;
use sandcron::config::{HostLimits, ManifestError, parse_manifest};

use common::{Tally, cases, edits, kind_of, mutate, runner};

/// Every key the manifest knows, so edits reach every validator.
const FULL: &str = r#"
schedule = "*/5 9-17 * JAN-MAR,6 MON-FRI"
timezone = "Europe/Berlin"
dst_gap = "shift"
dst_fold = "first"
jitter = "3s"
overlap = "buffer-one"
misfire = "run-once"
catchup_window = "1h"
max_catchup = 3
starting_deadline = "30s"
rollback_on_failure = 2

[limits]
memory = "32MiB"
fuel = 100000
timeout = "2s"
output = "1MiB"
log = "64KiB"
max_concurrent = 2
connect_timeout = "1s"
first_byte_timeout = "2s"
bytes_in = "1MiB"
bytes_out = "1MiB"
requests = 10
concurrent_requests = 2

[retry]
max_attempts = 3
backoff = "1s"
max_backoff = "1m"
jitter = 0.2

[breaker]
failures = 5
cooldown = "5m"

[capabilities]
dirs = ["data:/data:rw", "/etc/ssl:/ssl"]
env = { MODE = "prod" }
allowed_hosts = ["https://api.example.com", "http://10.0.0.0/8:8080", "tcp://*.example.org:5432", "*"]

[secrets]
TOKEN = { env = "SANDCRON_FUZZ_UNSET_SECRET" }

[config]
greeting = "hi"
nested = { a = [1, 2.5, true, 1979-05-27T07:32:00Z] }
"#;

const ONE_SHOTS: &[&str] = &[
    "at = \"2030-01-01T00:00:00Z\"\n",
    "at = \"2030-03-29T02:30:00\"\ntimezone = \"Europe/London\"\ndst_gap = \"skip\"\n",
    "every = \"90s\"\nphase = \"15s\"\n",
    "schedule = \"@every 1h30m\"\n",
    "schedule = \"0 0 12 * * ? 2030\"\n",
];

/// Tokens edits insert: keys, values, TOML punctuation, units and awkward characters.
const DICTIONARY: &[&str] = &[
    "=",
    "\"",
    "'",
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    ",",
    ".",
    "\n",
    "#",
    " ",
    "\t",
    "\\",
    "\"\"\"",
    "schedule",
    "every",
    "at",
    "phase",
    "timezone",
    "limits",
    "memory",
    "fuel",
    "timeout",
    "capabilities",
    "dirs",
    "env",
    "allowed_hosts",
    "secrets",
    "config",
    "retry",
    "breaker",
    "jitter",
    "overlap",
    "misfire",
    "dst_gap",
    "dst_fold",
    "file",
    "0",
    "-1",
    "1e400",
    "18446744073709551616",
    "nan",
    "inf",
    "true",
    "1979-05-27",
    "64XB",
    "0s",
    "1y",
    "MiB",
    "GiB",
    "ms",
    "*",
    "/",
    "-",
    "?",
    "L",
    "#",
    "@daily",
    "@every",
    "é",
    "\u{1F600}",
    "\u{0}",
    "\r",
    "\u{feff}",
    "::",
    ":rw",
    "..",
    "/..",
    "http://",
    "tcp://",
    "*.",
    ":99999",
];

fn seeds() -> Vec<String> {
    let mut seeds = vec![FULL.to_string(), String::new()];
    seeds.extend(ONE_SHOTS.iter().map(|s| s.to_string()));
    let examples = common::repo_root().join("examples");
    for entry in std::fs::read_dir(&examples).expect("examples/ is readable") {
        let dir = entry.expect("an examples/ entry").path();
        let Some(name) = dir.file_name().and_then(|n| n.to_str()) else { continue };
        if let Ok(text) = std::fs::read_to_string(dir.join(format!("{name}.toml"))) {
            seeds.push(text);
        }
    }
    assert!(seeds.len() > 8, "the example manifests were not found under {}", examples.display());
    seeds
}

/// The property: Ok, or an `Invalid` error located inside `text`.
fn check(text: &str, tally: &Tally) -> Result<(), TestCaseError> {
    let path = Path::new("jobs/demo.toml");
    match parse_manifest(text, path, "demo", &HostLimits::default()) {
        Ok(_) => tally.accepted(),
        Err(ManifestError::Invalid { line, column, message, .. }) => {
            let lines: Vec<&str> = text.split('\n').collect();
            prop_assert!(line >= 1 && line <= lines.len(), "line {line} of {}", lines.len());
            let width = lines[line - 1].len();
            prop_assert!(column >= 1 && column <= width + 1, "column {column} of {width}");
            let shown = ManifestError::Invalid {
                path: path.into(),
                line,
                column,
                message: message.clone(),
            }
            .to_string();
            prop_assert!(
                shown.starts_with(&format!("jobs/demo.toml:{line}:{column}: ")),
                "{shown}"
            );
            tally.rejected(kind_of(&message));
        }
        Err(other) => prop_assert!(false, "not an Invalid error: {other}"),
    }
    Ok(())
}

fn input() -> impl Strategy<Value = String> {
    let seeds = seeds();
    let mutated =
        (0..seeds.len(), edits(12)).prop_map(move |(i, e)| mutate(&seeds[i], &e, DICTIONARY));
    let tomlish = proptest::collection::vec(
        prop_oneof![
            proptest::sample::select(DICTIONARY).prop_map(str::to_string),
            "[a-z_]{1,12}",
            "[0-9a-zA-Z .:/*-]{0,10}",
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat());
    prop_oneof![6 => mutated, 2 => tomlish, 1 => any::<String>()]
}

#[test]
fn fuzz_manifest() {
    let tally = Tally::default();
    let result = runner(cases(common::DEFAULT_CASES)).run(&input(), |text| check(&text, &tally));
    tally.finish("manifest", result);
}
