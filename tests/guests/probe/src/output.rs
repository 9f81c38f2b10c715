//! The probe's hostile-output modes: cheap for the guest, expensive for a host that keeps
//! everything it is handed (empty log lines, empty fields, bare newlines on stderr, huge
//! error and panic texts). The host must bound what it keeps of each.

use sandcron_guest::wit::sandcron::job::log as host_log;
use sandcron_guest::{JobError, log};

/// `N` empty info lines: no message or field bytes, only the lines themselves.
pub fn empty_lines(lines: u64) -> String {
    for _ in 0..lines {
        log::info("");
    }
    format!("logged {lines} empty lines")
}

/// One info line with `N` empty fields. Straight through the generated import (the SDK's
/// `log` copies its `&[(&str, &str)]` into owned pairs first, which would double the
/// guest memory this needs); empty strings allocate nothing, so the list costs the guest
/// its 16 bytes a field in the call and 48 in the `Vec`.
pub fn many_fields(fields: u64) -> String {
    let list = vec![(String::new(), String::new()); fields as usize];
    host_log::log(host_log::Level::Info, "many fields", &list);
    format!("logged {fields} empty fields")
}

/// `N` bare newlines on stderr, each one an empty stderr line in the run's log.
pub fn stderr_lines(lines: u64) -> Result<String, JobError> {
    let newlines = [b'\n'; 64 * 1024];
    crate::modes::write_repeated(&mut std::io::stderr().lock(), &newlines, lines, "stderr")?;
    Ok(format!("wrote {lines} newlines to stderr"))
}

/// A fatal error whose message is `N` bytes of `x`, built in place (`JobError::fatal`
/// would format a second copy).
pub fn big_error(bytes: u64) -> JobError {
    JobError::Fatal("x".repeat(bytes as usize))
}

/// A panic whose message is `N` bytes of `x` (the host reads it back from stderr).
pub fn big_panic(bytes: u64) -> ! {
    panic!("{}", "x".repeat(bytes as usize))
}
