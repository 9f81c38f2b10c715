//! What ended a run, in the report's words: the call's result and the evidence around it
//! (the limiter's record, the deadline, the fuel budget, the guest's stderr) become one
//! [`RunOutcome`].
//!
//! Limits win over the symptoms they cause, the guest's own failures are told from the
//! host's (a guest's bad `proc_exit` status or wild pointer in a WASI call is a trap, not a
//! host error: both found by tests/fuzz_wasm.rs), and a trap is described in the guest
//! language's own words where its stderr has them (a panic's message and location, an
//! uncaught exception).

use std::time::Duration;

use wasmtime::Trap;
use wasmtime_wasi::I32Exit;

use super::bindings::JobError;
use super::exception;
use super::hint::ungranted_path;
use super::limits::{MAX_CALL_TRANSFER, is_transfer_refused};
use super::truncate::{REASON_CAP, cap_str};
use crate::config::{ByteSize, JobSpec};
use crate::job::{LimitKind, RunOutcome};

/// How the guest's code finished, before classification.
pub(super) enum Finished {
    Job(Result<String, JobError>),
    /// A command's exit status (0 = success).
    Exit(i32),
}

/// What the classifier needs to know besides the call's result.
pub(super) struct Evidence<'a> {
    pub(super) timeout: Duration,
    pub(super) fuel_budget: Option<u64>,
    pub(super) memory_limit: ByteSize,
    pub(super) memory_refused: bool,
    pub(super) stderr: &'a str,
}

/// Names what ended the run. Limits win over the symptom they cause: a refused
/// `memory.grow` shows up as an `unreachable` trap (Rust) or an ordinary error (JS), and
/// only the limiter's record says it was the memory limit.
pub(super) fn classify(
    result: wasmtime::Result<Finished>,
    evidence: &Evidence<'_>,
) -> (RunOutcome, Option<String>) {
    let memory = || RunOutcome::Limit(LimitKind::Memory(evidence.memory_limit));
    let exit = |code: i32| match code {
        0 => RunOutcome::Succeeded,
        _ if evidence.memory_refused => memory(),
        code => RunOutcome::GuestError { retryable: true, message: format!("exit code {code}") },
    };
    match result {
        Ok(Finished::Job(Ok(summary))) => (RunOutcome::Succeeded, Some(summary)),
        Ok(Finished::Job(Err(_))) if evidence.memory_refused => (memory(), None),
        Ok(Finished::Job(Err(JobError::Retryable(message)))) => {
            (RunOutcome::GuestError { retryable: true, message }, None)
        }
        Ok(Finished::Job(Err(JobError::Fatal(message)))) => {
            (RunOutcome::GuestError { retryable: false, message }, None)
        }
        Ok(Finished::Exit(code)) => (exit(code), None),
        Err(err) => {
            if let Some(I32Exit(code)) = err.downcast_ref::<I32Exit>() {
                return (exit(*code), None);
            }
            let outcome = match err.downcast_ref::<Trap>() {
                Some(Trap::Interrupt) => RunOutcome::Limit(LimitKind::Timeout(evidence.timeout)),
                Some(Trap::OutOfFuel) => {
                    RunOutcome::Limit(LimitKind::Fuel(evidence.fuel_budget.unwrap_or(u64::MAX)))
                }
                // Not a host failure: the guest's result or an import's arguments were
                // larger than wasmtime lifts in one call (a 300 MB error message, say).
                None if is_transfer_refused(&err) => {
                    RunOutcome::Limit(LimitKind::Transfer(ByteSize(MAX_CALL_TRANSFER as u64)))
                }
                _ if evidence.memory_refused => memory(),
                Some(trap) => RunOutcome::Trap { message: describe_trap(*trap, evidence.stderr) },
                // wasmtime-wasi answers `proc_exit(126..)` with a plain error, not an
                // `I32Exit`: the guest's doing, so a trap and not a host failure (found by
                // tests/fuzz_wasm.rs).
                None if format!("{err:#}").contains(INVALID_EXIT) => {
                    RunOutcome::Trap { message: format!("proc_exit: {INVALID_EXIT} [0..126)") }
                }
                // A preview1 call given a pointer outside the guest's memory (or misaligned):
                // WASI says such a call traps, and it is the guest's doing (found by
                // tests/fuzz_wasm.rs).
                None => match err.downcast_ref::<wiggle::GuestError>() {
                    Some(bad) => RunOutcome::Trap { message: format!("WASI call: {bad}") },
                    None => RunOutcome::HostError { message: format!("{err:#}") },
                },
            };
            (outcome, None)
        }
    }
}

/// wasmtime-wasi's message for `proc_exit` with a status of 126 or more.
const INVALID_EXIT: &str = "exit with invalid exit status outside of";

/// The trap in words: a guest language's uncaught exception in its own words, else the
/// panic text when the guest printed one.
fn describe_trap(trap: Trap, stderr: &str) -> String {
    if let Some(exception) = exception::uncaught(stderr) {
        return exception;
    }
    if let Some(panic) = panic_text(stderr) {
        return format!("panic: {panic}");
    }
    match trap {
        Trap::StackOverflow => "stack overflow (call stack exhausted)".to_string(),
        other => other.to_string(),
    }
}

/// Extracts `MESSAGE (at FILE:LINE:COL)` from Rust's `panicked at FILE:LINE:COL:\nMESSAGE`.
/// The message is cut short of the reason's cap, so that a capped reason still says where.
fn panic_text(stderr: &str) -> Option<String> {
    const MESSAGE_CAP: usize = REASON_CAP - 512;
    let start = stderr.rfind("panicked at ")? + "panicked at ".len();
    let rest = &stderr[start..];
    let (location, message) = rest.split_once(":\n").unwrap_or((rest.lines().next()?, ""));
    let message = cap_str(message.split("\nnote: ").next().unwrap_or("").trim(), MESSAGE_CAP);
    Some(if message.is_empty() {
        format!("at {location}")
    } else {
        format!("{message} (at {location})")
    })
}

/// Appends a hint to a failed run's reason where the host knows more than the guest said
/// (`hint.rs`), and returns it for the run's log.
pub(super) fn failure_hint(
    outcome: &mut RunOutcome,
    stderr: &str,
    spec: &JobSpec,
) -> Option<String> {
    let (RunOutcome::GuestError { message, .. } | RunOutcome::Trap { message }) = outcome else {
        return None;
    };
    let granted: Vec<&str> = spec.capabilities.dirs.iter().map(|d| d.guest.as_str()).collect();
    let hint = ungranted_path(message, &granted).or_else(|| ungranted_path(stderr, &granted))?;
    message.push_str(&format!(" (hint: {hint})"));
    Some(hint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::truncate::cap_reason;

    #[test]
    fn panic_text_is_extracted_from_rust_stderr() {
        let stderr = "\nthread '<unnamed>' panicked at src/lib.rs:42:9:\nprobe panicked: boom\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(panic_text(stderr).unwrap(), "probe panicked: boom (at src/lib.rs:42:9)");
        assert_eq!(panic_text("nothing here"), None);
    }

    #[test]
    fn a_long_panic_message_is_cut_before_its_location() {
        let stderr =
            format!("thread 'main' panicked at src/lib.rs:7:5:\n{}\n", "x".repeat(1 << 20));
        let mut outcome = RunOutcome::Trap { message: panic_text(&stderr).unwrap() };
        cap_reason(&mut outcome);
        let reason = outcome.reason();
        assert!(reason.len() <= REASON_CAP, "{} bytes", reason.len());
        assert!(reason.ends_with(" bytes truncated] (at src/lib.rs:7:5)"), "{reason}");
    }

    #[test]
    fn refused_memory_outranks_the_trap_it_causes() {
        let evidence = Evidence {
            timeout: Duration::from_secs(1),
            fuel_budget: None,
            memory_limit: ByteSize(1 << 20),
            memory_refused: true,
            stderr: "",
        };
        let err = wasmtime::Error::new(Trap::UnreachableCodeReached);
        let (outcome, _) = classify(Err(err), &evidence);
        assert_eq!(outcome, RunOutcome::Limit(LimitKind::Memory(ByteSize(1 << 20))));
    }
}
