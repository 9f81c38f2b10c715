//! Readable reasons for a guest language's uncaught exception (issue 15 point 4).
//!
//! The language runtimes inside a component turn an uncaught exception into a Rust panic or
//! an `unreachable` trap, and what they print to stderr is made for their own developers:
//! componentize-py prints the Python traceback and then panics with "Python function threw
//! an unexpected exception"; jco's QuickJS runtime panics with a multi-line
//! `Value(Exception(Exception { message: Some(..), stack: Some(..) }))` dump;
//! StarlingMonkey reports the thrown value as an invalid `JobError` variant. The reason is
//! cut from that text: the exception's own first line and, where the text has one, where
//! it was thrown. The whole traceback stays in the run's logs (stderr is captured there),
//! and the QuickJS stack, escaped inside the dump, is added there readable.
//!
//! Text matching is all there is (the runtimes expose nothing else), so each pattern is
//! narrow and anything unrecognised falls back to the usual trap description.

/// componentize-py's panic message after an uncaught Python exception.
const PYTHON_PANIC: &str = "Python function threw an unexpected exception";
/// jco's QuickJS runtime: the thrown value's `message` in its panic dump.
const QUICKJS_MESSAGE: &str = "Exception { message: Some(\"";
/// StarlingMonkey: the thrown value, as it failed to lift as a `job-error`.
const STARLINGMONKEY_RECEIVED: &str = "(received `";

/// The reason for an uncaught exception reported in `stderr`, if one is.
pub(crate) fn uncaught(stderr: &str) -> Option<String> {
    python(stderr).or_else(|| quickjs(stderr)).or_else(|| starlingmonkey(stderr))
}

/// The QuickJS stack, unescaped, for the run's logs.
pub(crate) fn quickjs_stack(stderr: &str) -> Option<String> {
    let start = stderr.rfind(QUICKJS_MESSAGE)?;
    let rest = &stderr[start..];
    let stack_at = rest.find("stack: Some(\"")? + "stack: Some(\"".len();
    let stack = debug_string(&rest[stack_at..])?;
    let message = debug_string(&rest[QUICKJS_MESSAGE.len()..]).unwrap_or_default();
    Some(format!("uncaught exception: {message}\n{}", stack.trim_end()))
}

/// `ValueError: bad input (at /0/app.py:6, in helper)` from the last traceback.
fn python(stderr: &str) -> Option<String> {
    let panic = stderr.rfind(PYTHON_PANIC)?;
    let start = stderr[..panic].rfind("Traceback (most recent call last):")?;
    let block = &stderr[start..panic];
    // The exception line is the first unindented line after the frames.
    let exception =
        block.lines().skip(1).find(|line| !line.starts_with(' ') && !line.is_empty())?;
    let location = block
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("File \""))
        .next_back()
        .and_then(|frame| {
            let (file, rest) = frame.split_once("\", line ")?;
            let (line, function) = rest.split_once(", in ").unwrap_or((rest, ""));
            Some(if function.is_empty() {
                format!(" (at {file}:{line})")
            } else {
                format!(" (at {file}:{line}, in {function})")
            })
        })
        .unwrap_or_default();
    Some(format!("{}{location}", exception.trim()))
}

/// `uncaught exception: bad input (at helper (/job.js:2:54))` from the QuickJS dump.
fn quickjs(stderr: &str) -> Option<String> {
    let start = stderr.rfind(QUICKJS_MESSAGE)?;
    let rest = &stderr[start..];
    let message = debug_string(&rest[QUICKJS_MESSAGE.len()..])?;
    let first_line = message.lines().next().unwrap_or_default();
    let frame = rest
        .find("stack: Some(\"")
        .and_then(|at| debug_string(&rest[at + "stack: Some(\"".len()..]))
        .and_then(|stack| {
            let frame = stack.lines().map(str::trim).find(|line| !line.is_empty())?;
            Some(format!(" ({frame})"))
        })
        .unwrap_or_default();
    Some(format!("uncaught exception: {first_line}{frame}"))
}

/// `Error: bad input` from StarlingMonkey's failed `JobError` lift.
fn starlingmonkey(stderr: &str) -> Option<String> {
    let line = stderr.lines().find(|line| line.contains("specified for `JobError`"))?;
    let start = line.find(STARLINGMONKEY_RECEIVED)? + STARLINGMONKEY_RECEIVED.len();
    let thrown = &line[start..line[start..].find("`)")? + start];
    Some(format!("uncaught exception: {thrown}"))
}

/// Reads a Rust `{:?}` string body (after its opening quote) up to its closing quote,
/// undoing the escapes `\"`, `\\`, `\n`, `\t`, `\r`, `\'` and `\u{..}`.
fn debug_string(text: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '0' => out.push('\0'),
                'u' => {
                    let hex: String = chars.by_ref().skip(1).take_while(|c| *c != '}').collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What componentize-py 0.17 printed for `raise ValueError(f"bad input: {x}")`.
    const PYTHON: &str = "Traceback (most recent call last):\n  File \"/0/app.py\", line 11, in run\n  File \"/0/app.py\", line 6, in helper\nValueError: bad input: 42\n\nthread '<unnamed>' (1) panicked at runtime/src/lib.rs:1293:29:\nPython function threw an unexpected exception\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
    /// What jco's QuickJS runtime printed for `throw new Error(`bad input: ${x}`)`.
    const QUICKJS: &str = "\nthread '<unnamed>' (1) panicked at crates/runtime/src/interpreter.rs:51:31:\nFailed to call 'run': Value(Exception(\nException { message: Some(\"bad input: 42\"), stack: Some(\"    at helper (/t.js:2:54)\\n    at run (/t.js:3:3)\\n\") })\n)\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
    /// What StarlingMonkey printed for the same throw.
    const STARLINGMONKEY: &str = "invalid variant tag value `undefined` (received `Error: bad input: 42`) specified for `JobError`\nStack:\n  export_run@/tmp/x/sources/initializer.js:628:17\n\nRedirecting call to abort() to mozalloc_abort\n";

    #[test]
    fn each_runtime_gives_the_exceptions_own_message() {
        assert_eq!(
            uncaught(PYTHON).as_deref(),
            Some("ValueError: bad input: 42 (at /0/app.py:6, in helper)")
        );
        assert_eq!(
            uncaught(QUICKJS).as_deref(),
            Some("uncaught exception: bad input: 42 (at helper (/t.js:2:54))")
        );
        assert_eq!(
            uncaught(STARLINGMONKEY).as_deref(),
            Some("uncaught exception: Error: bad input: 42")
        );
        assert_eq!(uncaught("thread 'main' panicked at src/lib.rs:1:1:\nboom\n"), None);
    }

    #[test]
    fn the_quickjs_stack_is_unescaped_for_the_logs() {
        assert_eq!(
            quickjs_stack(QUICKJS).as_deref(),
            Some(
                "uncaught exception: bad input: 42\n    at helper (/t.js:2:54)\n    at run (/t.js:3:3)"
            )
        );
    }

    #[test]
    fn debug_strings_unescape() {
        assert_eq!(debug_string(r#"a \"b\" \\ \u{e9}\n" tail"#).as_deref(), Some("a \"b\" \\ é\n"));
        assert_eq!(debug_string("no end"), None);
    }
}
