//! `sandcron:job/log`: levelled, structured lines into a capped per-run buffer.
//!
//! The cap counts what a line costs once serialized as JSON (the form it is stored, served
//! and printed in), not just its text: an empty line still costs its frame, a field its
//! brackets, a control character its escape. Counting only the text let a guest keep five
//! million empty lines (260 MB of report, 4 GB of host memory) under a 256 KiB cap. Lines
//! and fields per line are capped in number too, and once the buffer is full a line costs
//! the host one counter increment.

use std::time::SystemTime;

use serde::Serialize;

use crate::job::unix_ms;

use crate::runtime::bindings::sandcron::job::log::{Host, Level};

use super::HostCtx;

/// What a line costs besides its text: `{"at_ms":1764446400000,"level":"stderr",
/// "message":""}` and the comma that separates it from the next line.
const LINE_COST: usize = 54;
/// What a line with fields costs for the list itself: `,"fields":[]`.
const FIELDS_COST: usize = 12;
/// What each kept field costs besides its key and value: `["",""],`.
const FIELD_COST: usize = 8;
/// What `,"fields_dropped":N` costs, at most.
const FIELDS_DROPPED_COST: usize = 40;
/// Most lines kept per run. The byte cap already bounds lines (each costs at least
/// [`LINE_COST`]); this bounds the per-line work (sorting, rendering in the dashboard)
/// when `limits.log` is raised to its 16 MiB ceiling.
const MAX_LINES: usize = 100_000;
/// Most fields kept per line; more are dropped and counted in `fields_dropped`.
/// Structured logging uses a handful; 64 leaves room without letting one line be a table.
const MAX_FIELDS: usize = 64;

/// One log line of a run. `source` tells guest `log` calls from captured stderr.
#[derive(Clone, Debug, Serialize)]
pub struct LogLine {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// `trace`, `debug`, `info`, `warn`, `error`, or `stderr` for captured stderr.
    pub level: &'static str,
    /// The message.
    pub message: String,
    /// Structured key/value fields.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<(String, String)>,
    /// Fields past the per-line cap, dropped.
    #[serde(skip_serializing_if = "is_zero")]
    pub fields_dropped: u64,
}

impl LogLine {
    /// A line without fields, stamped now.
    pub(crate) fn now(level: &'static str, message: String) -> Self {
        let at_ms = unix_ms(SystemTime::now());
        LogLine { at_ms, level, message, fields: Vec::new(), fields_dropped: 0 }
    }

    /// What this line adds to the run's log serialized as JSON (at most).
    fn cost(&self) -> usize {
        let mut cost = LINE_COST + json_len(&self.message);
        if !self.fields.is_empty() {
            cost += FIELDS_COST;
            for (key, value) in &self.fields {
                cost += FIELD_COST + json_len(key) + json_len(value);
            }
        }
        if self.fields_dropped > 0 {
            cost += FIELDS_DROPPED_COST;
        }
        cost
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// `text`'s length inside a JSON string, at most: a control character escapes to up to
/// six bytes (`\u0001`), `"` and `\` to two. One pass a byte, which the compiler vectorizes.
fn json_len(text: &str) -> usize {
    let escapes: usize = text
        .bytes()
        .map(|byte| match byte {
            0..=0x1f => 5,
            b'"' | b'\\' => 1,
            _ => 0,
        })
        .sum();
    text.len() + escapes
}

/// The run's log, capped by its JSON size and its number of lines: lines past the cap
/// are counted and dropped.
#[derive(Debug)]
pub(crate) struct LogBuffer {
    cap: usize,
    used: usize,
    lines: Vec<LogLine>,
    dropped: u64,
    /// Lines are costed and capped (always, but in a bench's baseline).
    counted: bool,
}

impl LogBuffer {
    pub(crate) fn new(cap: usize) -> Self {
        LogBuffer { cap, used: 0, lines: Vec::new(), dropped: 0, counted: true }
    }

    /// A buffer that keeps every line uncounted: benches/per_run.rs's baseline only
    /// (`RuntimeConfig::bench_without_caps`), never a run of the product.
    pub(crate) fn uncapped() -> Self {
        LogBuffer { cap: usize::MAX, used: 0, lines: Vec::new(), dropped: 0, counted: false }
    }

    /// Whether no line at all fits any more: from then on a line is only counted.
    fn is_full(&self) -> bool {
        self.lines.len() >= MAX_LINES || self.cap - self.used < LINE_COST
    }

    /// Appends a line if it fits in what is left of the cap, keeping its first
    /// [`MAX_FIELDS`] fields.
    pub(crate) fn push(&mut self, mut line: LogLine) {
        if !self.counted {
            return self.lines.push(line);
        }
        if self.is_full() {
            self.dropped += 1;
            return;
        }
        if line.fields.len() > MAX_FIELDS {
            line.fields_dropped += (line.fields.len() - MAX_FIELDS) as u64;
            line.fields.truncate(MAX_FIELDS);
            // The lifted list may have held millions of pairs: keep only what is kept.
            line.fields.shrink_to_fit();
        }
        if self.reserve(line.cost()) {
            self.lines.push(line);
        }
    }

    /// Appends a line of captured text (stderr), allocating only if it is kept.
    pub(crate) fn push_text(&mut self, at_ms: u64, level: &'static str, text: &str) {
        if self.counted {
            if self.is_full() {
                self.dropped += 1;
                return;
            }
            if !self.reserve(LINE_COST + json_len(text)) {
                return;
            }
        }
        let message = text.to_owned();
        self.lines.push(LogLine { at_ms, level, message, fields: Vec::new(), fields_dropped: 0 });
    }

    /// Takes `cost` bytes of the cap if they are left; counts a dropped line if not.
    fn reserve(&mut self, cost: usize) -> bool {
        if cost > self.cap - self.used {
            self.dropped += 1;
            return false;
        }
        self.used += cost;
        true
    }

    /// The kept lines and how many were dropped.
    pub(crate) fn finish(self) -> (Vec<LogLine>, u64) {
        (self.lines, self.dropped)
    }
}

impl Host for HostCtx {
    fn log(&mut self, level: Level, message: String, fields: Vec<(String, String)>) {
        let level = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        let at_ms = unix_ms(SystemTime::now());
        self.logs.push(LogLine { at_ms, level, message, fields, fields_dropped: 0 });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(message: &str) -> LogLine {
        LogLine {
            at_ms: 0,
            level: "info",
            message: message.into(),
            fields: vec![],
            fields_dropped: 0,
        }
    }

    fn json(lines: &[LogLine]) -> usize {
        serde_json::to_string(lines).unwrap().len()
    }

    #[test]
    fn lines_past_the_cap_are_counted_not_kept() {
        let mut logs = LogBuffer::new(3 * LINE_COST);
        logs.push(line("12345"));
        logs.push(line(&"x".repeat(2 * LINE_COST)));
        logs.push(line("12345"));
        let (lines, dropped) = logs.finish();
        assert_eq!(lines.len(), 2);
        assert_eq!(dropped, 1);
    }

    #[test]
    fn empty_lines_cost_their_json_frame() {
        let cap = 64 << 10;
        let mut logs = LogBuffer::new(cap);
        for _ in 0..100_000 {
            logs.push(line(""));
        }
        logs.push_text(1_764_446_400_000, "stderr", "");
        let (lines, dropped) = logs.finish();
        assert_eq!(lines.len(), cap / LINE_COST);
        assert_eq!(lines.len() as u64 + dropped, 100_001);
        assert!(json(&lines) <= cap, "{} bytes of JSON for a {cap}-byte cap", json(&lines));
    }

    #[test]
    fn the_cost_bounds_the_json_of_escapes_and_fields() {
        let mut noisy = line("\u{1}\"\\\n");
        noisy.at_ms = 1_764_446_400_000;
        noisy.level = "stderr";
        noisy.fields = vec![("k\u{2}".into(), "\"v\"".into()), (String::new(), String::new())];
        noisy.fields_dropped = u64::MAX;
        let serialized = serde_json::to_string(&noisy).unwrap().len();
        assert!(serialized < noisy.cost(), "{serialized} bytes of JSON, costed {}", noisy.cost());
    }

    #[test]
    fn fields_past_the_cap_are_counted_and_let_go() {
        let mut logs = LogBuffer::new(1 << 20);
        let mut wide = line("wide");
        wide.fields = vec![(String::new(), String::new()); 1_000_000];
        logs.push(wide);
        let (lines, dropped) = logs.finish();
        assert_eq!(dropped, 0);
        assert_eq!(lines[0].fields.len(), MAX_FIELDS);
        assert_eq!(lines[0].fields.capacity(), MAX_FIELDS);
        assert_eq!(lines[0].fields_dropped, 1_000_000 - MAX_FIELDS as u64);
    }

    #[test]
    fn lines_are_capped_in_number_too() {
        let mut logs = LogBuffer::new(usize::MAX / 2);
        for _ in 0..MAX_LINES + 10 {
            logs.push_text(0, "stderr", "");
        }
        let (lines, dropped) = logs.finish();
        assert_eq!((lines.len(), dropped), (MAX_LINES, 10));
    }
}
