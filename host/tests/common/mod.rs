//! What the `fuzz_*` targets share: the case count and the tally they print.
//!
//! Each target is a proptest [`TestRunner`] over its own strategies, so a campaign runs on
//! stable Rust (cargo-fuzz needs nightly). The count comes from `SANDCRON_FUZZ_CASES` so CI
//! runs a short campaign with `cargo test --release` and a person runs a long one, e.g.
//! `SANDCRON_FUZZ_CASES=100000 cargo test --release -p sandcron --test fuzz_schedule -- --nocapture`.
//! Seeds are fresh per run unless `PROPTEST_RNG_SEED` is set (proptest's own variable).

#![allow(dead_code)] // Each target uses part of this.

use std::collections::BTreeMap;
use std::sync::Mutex;

use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Cases per target when `SANDCRON_FUZZ_CASES` is unset: a CI campaign of seconds.
pub const DEFAULT_CASES: u32 = 2_000;

/// The campaign's case count: `SANDCRON_FUZZ_CASES`, else `default`.
pub fn cases(default: u32) -> u32 {
    match std::env::var("SANDCRON_FUZZ_CASES") {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| panic!("SANDCRON_FUZZ_CASES={text}")),
        Err(_) => default,
    }
}

/// A runner for `cases` cases: no failure files (the regression goes into a unit test
/// instead), no rejection cap worth hitting, and a seed from `PROPTEST_RNG_SEED` when set.
pub fn runner(cases: u32) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        max_global_rejects: u32::MAX,
        max_shrink_iters: 2_000,
        ..Config::default()
    };
    match std::env::var("PROPTEST_RNG_SEED").ok().and_then(|s| s.parse::<u64>().ok()) {
        Some(seed) => {
            let mut bytes = [0u8; 32];
            bytes[..8].copy_from_slice(&seed.to_le_bytes());
            TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
        }
        None => TestRunner::new(config),
    }
}

/// Counts what a campaign saw: cases run, inputs accepted, inputs rejected by kind.
#[derive(Default)]
pub struct Tally {
    inner: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    cases: u64,
    accepted: u64,
    rejected: BTreeMap<String, u64>,
    other: BTreeMap<String, u64>,
}

impl Tally {
    /// One case whose input was accepted (parsed, loaded, ran).
    pub fn accepted(&self) {
        let mut c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        c.cases += 1;
        c.accepted += 1;
    }

    /// One case whose input was rejected cleanly, counted under `kind`.
    pub fn rejected(&self, kind: impl Into<String>) {
        let mut c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        c.cases += 1;
        *c.rejected.entry(kind.into()).or_default() += 1;
    }

    /// A side count that is not a case (e.g. the outcome kind of a run).
    pub fn note(&self, what: impl Into<String>) {
        let mut c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *c.other.entry(what.into()).or_default() += 1;
    }

    /// Prints the tally (seen with `--nocapture`), then fails the test with the minimal
    /// failing input if the campaign found one.
    pub fn finish<T: std::fmt::Debug>(
        &self,
        target: &str,
        result: Result<(), proptest::test_runner::TestError<T>>,
    ) {
        let c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let crashes = u64::from(result.is_err());
        println!(
            "fuzz {target}: {} cases (shrinking included), {} accepted, {} rejected, {crashes} \
             failures",
            c.cases,
            c.accepted,
            c.rejected.values().sum::<u64>()
        );
        for (kind, n) in &c.rejected {
            println!("  rejected {n:>8}  {kind}");
        }
        for (what, n) in &c.other {
            println!("  noted    {n:>8}  {what}");
        }
        drop(c);
        if let Err(err) = result {
            panic!("fuzz {target} found a failure: {err}");
        }
    }
}

/// A message reduced to a kind for the tally: the text before its first quote, digit or
/// colon, trimmed, at most 48 characters.
pub fn kind_of(message: &str) -> String {
    let cut = message.find(|c: char| "`'\"0123456789:".contains(c)).unwrap_or(message.len());
    message[..cut].trim().chars().take(48).collect()
}

/// The repository root (the host crate's parent).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host has a parent").into()
}

/// One edit of a text, chosen by the strategy from three numbers: what to do, where, and
/// which dictionary token (or character) to use. Positions wrap, so any numbers are valid.
pub type Edit = (u8, usize, usize);

/// Applies `edits` to `seed` at character boundaries: delete, insert a dictionary token,
/// replace a character, duplicate or drop a line, truncate, insert a random character.
/// The result is always valid UTF-8, as the parsers take `&str`.
pub fn mutate(seed: &str, edits: &[Edit], dictionary: &[&str]) -> String {
    let mut text: Vec<char> = seed.chars().collect();
    for &(op, at, pick) in edits {
        let len = text.len();
        let pos = if len == 0 { 0 } else { at % (len + 1) };
        let token: Vec<char> = dictionary[pick % dictionary.len()].chars().collect();
        match op % 8 {
            0 if pos < len => {
                let end = (pos + 1 + pick % 8).min(len);
                text.drain(pos..end);
            }
            1 | 2 => {
                text.splice(pos..pos, token);
            }
            3 if pos < len => text[pos] = token.first().copied().unwrap_or(' '),
            4 => {
                // Duplicate the line holding `pos`.
                let start = text[..pos].iter().rposition(|&c| c == '\n').map_or(0, |i| i + 1);
                let end = text[pos..].iter().position(|&c| c == '\n').map_or(len, |i| pos + i + 1);
                let line: Vec<char> = text[start..end].to_vec();
                text.splice(end..end, line);
            }
            5 => text.truncate(pos),
            6 => text.insert(pos, char::from_u32(pick as u32 % 0x11_0000).unwrap_or('\u{fffd}')),
            _ if pos < len => {
                // Swap two characters.
                let other = pick % len;
                text.swap(pos, other);
            }
            _ => {}
        }
    }
    text.into_iter().collect()
}

/// The strategy for up to `max` edits.
pub fn edits(max: usize) -> impl proptest::strategy::Strategy<Value = Vec<Edit>> {
    use proptest::prelude::*;
    proptest::collection::vec((any::<u8>(), any::<usize>(), any::<usize>()), 1..=max)
}
