//! `sandcron:job/log`: levelled, structured lines into a capped per-run buffer.

use std::time::SystemTime;

use serde::Serialize;

use crate::job::unix_ms;

use crate::runtime::bindings::sandcron::job::log::{Host, Level};

use super::HostCtx;

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
}

/// The run's log, capped in bytes: lines past the cap are counted and dropped.
#[derive(Debug)]
pub(crate) struct LogBuffer {
    cap: usize,
    used: usize,
    lines: Vec<LogLine>,
    dropped: u64,
}

impl LogBuffer {
    pub(crate) fn new(cap: usize) -> Self {
        LogBuffer { cap, used: 0, lines: Vec::new(), dropped: 0 }
    }

    /// Appends a line if it fits in what is left of the cap.
    pub(crate) fn push(&mut self, line: LogLine) {
        let size =
            line.message.len() + line.fields.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        if self.used + size > self.cap {
            self.dropped += 1;
            return;
        }
        self.used += size;
        self.lines.push(line);
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
        self.logs.push(LogLine { at_ms: unix_ms(SystemTime::now()), level, message, fields });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(message: &str) -> LogLine {
        LogLine { at_ms: 0, level: "info", message: message.into(), fields: vec![] }
    }

    #[test]
    fn lines_past_the_cap_are_counted_not_kept() {
        let mut logs = LogBuffer::new(10);
        logs.push(line("12345"));
        logs.push(line("123456"));
        logs.push(line("12345"));
        let (lines, dropped) = logs.finish();
        assert_eq!(lines.len(), 2);
        assert_eq!(dropped, 1);
    }
}
