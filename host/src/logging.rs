//! Where log lines go and how they look (O4): stderr, as text for a person, text for
//! journald, or one JSON object per line (`--log-format json`).
//!
//! - On a terminal: colour and a timestamp.
//! - Into a file or pipe: no ANSI colour codes, timestamp kept.
//! - Into journald (systemd sets `JOURNAL_STREAM` to the device and inode of the stream it
//!   connected; we check it is really our stderr, since a child inherits the variable but
//!   not always the stream): no timestamp, because the journal stamps every line itself,
//!   and each line starts with its syslog priority (`<3>` error, `<4>` warn, `<6>` info,
//!   `<7>` debug and trace), which journald strips and records as the entry's `PRIORITY`,
//!   so `journalctl -p warning` works.
//!
//! `main.rs` reads the environment and hands the values in (STYLE 7).

use std::fmt;
use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

use crate::cli::LogFormat;

/// What stderr is connected to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sink {
    /// An interactive terminal.
    Terminal,
    /// The systemd journal's stream socket.
    Journal,
    /// A file or a pipe.
    Plain,
}

impl Sink {
    /// What stderr is, given the value of `JOURNAL_STREAM` (`DEVICE:INODE`), if set.
    pub fn of_stderr(journal_stream: Option<&str>) -> Sink {
        let stderr = std::io::stderr();
        if journal_stream.is_some_and(|expected| same_stream(&stderr, expected)) {
            Sink::Journal
        } else if stderr.is_terminal() {
            Sink::Terminal
        } else {
            Sink::Plain
        }
    }
}

/// Whether `fd` is the stream `DEVICE:INODE` names (both decimal, as systemd writes them).
fn same_stream(fd: &impl AsFd, expected: &str) -> bool {
    let Some((dev, ino)) = expected.split_once(':') else { return false };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else { return false };
    let Ok(owned) = fd.as_fd().try_clone_to_owned() else { return false };
    std::fs::File::from(owned).metadata().is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// Installs the global subscriber: `filter` (an `EnvFilter` directive) on stderr.
pub fn init(format: LogFormat, filter: &str, sink: Sink) {
    let subscriber = subscriber(format, filter, sink, std::io::stderr);
    // Only fails if a subscriber is already set, and nothing else sets one.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// The subscriber [`init`] installs, writing to `writer` (a test hands in a buffer).
pub fn subscriber<W>(
    format: LogFormat,
    filter: &str,
    sink: Sink,
    writer: W,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(writer)
        .with_ansi(sink == Sink::Terminal);
    let journal = sink == Sink::Journal;
    match format {
        LogFormat::Text if journal => Box::new(
            builder
                .event_format(Priority(format::format().with_ansi(false).without_time()))
                .finish(),
        ),
        LogFormat::Text => Box::new(builder.finish()),
        LogFormat::Json => {
            let builder = builder.json().with_current_span(true).with_span_list(false);
            if journal {
                let json = format::format().json().with_current_span(true).with_span_list(false);
                Box::new(builder.event_format(Priority(json)).finish())
            } else {
                Box::new(builder.finish())
            }
        }
    }
}

/// Prefixes each line with its syslog priority for journald.
struct Priority<F>(F);

/// The syslog priority journald records for a level.
fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

impl<S, N, F> FormatEvent<S, N> for Priority<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "<{}>", priority(*event.metadata().level()))?;
        self.0.format_event(context, writer, event)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines(format: LogFormat, sink: Sink) -> Vec<String> {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = subscriber(format, "info", sink, move || writer.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!("disk full");
            tracing::warn!(job = "backup", "run failed");
            tracing::info!("API listening");
            tracing::debug!("not shown at info");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn journal_lines_carry_their_priority_and_no_timestamp() {
        let lines = lines(LogFormat::Text, Sink::Journal);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].starts_with("<3>ERROR ") && lines[0].ends_with("disk full"), "{lines:?}");
        assert!(lines[1].starts_with("<4> WARN ") && lines[1].contains("job=\"backup\""));
        assert!(lines[2].starts_with("<6> INFO "), "{lines:?}");
        assert!(lines.iter().all(|l| !l.contains('\u{1b}')), "no ANSI: {lines:?}");
        let json = self::lines(LogFormat::Json, Sink::Journal);
        assert!(json[1].starts_with("<4>{"), "{json:?}");
        let object: serde_json::Value = serde_json::from_str(&json[1][3..]).unwrap();
        assert_eq!(object["fields"]["job"], "backup");
    }

    #[test]
    fn a_file_gets_timestamps_but_no_colour() {
        let lines = lines(LogFormat::Text, Sink::Plain);
        assert_eq!(lines.len(), 3, "{lines:?}");
        // `2026-11-29T23:12:57.123456Z  WARN ...`: a timestamp first, no escape codes.
        assert!(lines[1].starts_with("20") && lines[1].contains("Z  WARN "), "{lines:?}");
        assert!(lines.iter().all(|l| !l.contains('\u{1b}') && !l.starts_with('<')));
    }

    #[test]
    fn the_journal_is_recognised_by_device_and_inode() {
        let file = tempfile_in_target();
        let meta = file.metadata().unwrap();
        assert!(same_stream(&file, &format!("{}:{}", meta.dev(), meta.ino())));
        assert!(!same_stream(&file, &format!("{}:{}", meta.dev(), meta.ino() + 1)));
        assert!(!same_stream(&file, "garbage"));
    }

    fn tempfile_in_target() -> std::fs::File {
        let path = std::env::temp_dir().join(format!("sandcron-log-{}", std::process::id()));
        let file = std::fs::File::create(&path).unwrap();
        std::fs::remove_file(&path).ok();
        file
    }
}
