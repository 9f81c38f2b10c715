//! Levelled, structured logging into the run's record.
//!
//! Each call is one line in the run's log, with optional `key=value` fields kept apart
//! from the message so the host can show and filter them. Nothing is buffered in the guest:
//! a line is handed over at once, and lines past the manifest's `[limits] log` cap are
//! dropped (and counted) by the host. The cap counts a line as it is stored, in JSON: its
//! text plus about 54 bytes, so even an empty line costs something; a line keeps at most 64
//! fields (the rest are counted in its `fields_dropped`). Plain `println!`/`eprintln!` also
//! reach the run's log, as unstructured stdout/stderr.

use crate::wit::sandcron::job::log as host;

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Diagnostics for the job's author.
    Debug,
    /// Normal progress.
    Info,
    /// Something unexpected that the run survived.
    Warn,
    /// Something failed.
    Error,
}

impl Level {
    fn to_wit(self) -> host::Level {
        match self {
            Level::Trace => host::Level::Trace,
            Level::Debug => host::Level::Debug,
            Level::Info => host::Level::Info,
            Level::Warn => host::Level::Warn,
            Level::Error => host::Level::Error,
        }
    }
}

/// Append one line at `level` with key/value `fields`.
pub fn log(level: Level, message: impl AsRef<str>, fields: &[(&str, &str)]) {
    let fields: Vec<(String, String)> =
        fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    host::log(level.to_wit(), message.as_ref(), &fields);
}

macro_rules! level_fns {
    ($($level:ident: $plain:ident, $with:ident;)*) => {$(
        #[doc = concat!("Log `message` at [`Level::", stringify!($level), "`].")]
        pub fn $plain(message: impl AsRef<str>) {
            log(Level::$level, message, &[]);
        }

        #[doc = concat!("Log `message` at [`Level::", stringify!($level), "`] with key/value `fields`.")]
        pub fn $with(message: impl AsRef<str>, fields: &[(&str, &str)]) {
            log(Level::$level, message, fields);
        }
    )*};
}

level_fns! {
    Trace: trace, trace_with;
    Debug: debug, debug_with;
    Info: info, info_with;
    Warn: warn, warn_with;
    Error: error, error_with;
}
