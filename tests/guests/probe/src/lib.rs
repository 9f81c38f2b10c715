//! probe: the test guest of the host's end-to-end tests.
//!
//! One component, many behaviours, chosen by the manual trigger's payload text, or, for
//! scheduled runs (which carry no payload), by the manifest's `[config] mode` (the host
//! tests depend on these exact strings):
//!
//! | payload | behaviour |
//! |---|---|
//! | none, `ok` | Ok `ok` |
//! | `loop` | busy loop forever (timeout / fuel) |
//! | `memory` | allocate and touch 1 MiB chunks forever (memory limit) |
//! | `recurse` | unbounded non-tail recursion (stack overflow) |
//! | `panic` | `panic!("probe panicked: boom")` (trap) |
//! | `flood:N` | N bytes to stdout in 64 KiB chunks, Ok `flooded N` (output cap) |
//! | `log-flood:N` | N ~100-byte info lines, Ok `logged N` (log cap) |
//! | `empty-lines:N` | N empty info lines, Ok `logged N empty lines` (per-line log cost) |
//! | `many-fields:N` | one info line `many fields` with N empty fields, Ok `logged N empty fields` |
//! | `stderr-lines:N` | N bare newlines to stderr, Ok `wrote N newlines to stderr` |
//! | `big-error:N` | fatal, the message N bytes of `x` (reason cap) |
//! | `big-panic:N` | panics, the message N bytes of `x` (trap reason cap) |
//! | `read:PATH` | Ok = first 200 bytes of the file (lossy UTF-8) |
//! | `write:PATH` | writes `written by probe`, Ok `wrote PATH` |
//! | `list:PATH` | Ok = sorted entry names, one per line |
//! | `env` | Ok = `K=V` lines, sorted |
//! | `socket:HOST:PORT` | TCP connect, Ok `connected` or fatal `connect: ...` |
//! | `http:URL` | SDK GET, Ok `status=S bytes=N body=B` (B: first 100 body bytes, lossy UTF-8) or fatal `http: ERR` |
//! | `http-count:N:URL` | N sequential GETs, never stopping early, Ok `ok=A failed=B first_error=E` (E: the first error's text, or `none`) |
//! | `http-post:BYTES:URL` | SDK POST of BYTES bytes of `x` (text/plain), Ok `status=S bytes=N` or fatal `http: ERR` |
//! | `tcp-echo:HOST:PORT` | TCP connect, write `ping\n`, read a line, Ok `echo=LINE` or fatal `tcp: ERR` |
//! | `print-env:NAME` | prints `NAME=VALUE` to stdout and logs it (field `value`), Ok `NAME=VALUE`; fatal `missing env NAME` |
//! | `retryable`, `fatal` | the two `JobError` kinds |
//! | `state` | increments state key `counter`, Ok `counter=N` |
//! | `config` | Ok = `k=v` lines of the config table |
//! | `deadline` | Ok `remaining_ms=N` |
//! | `context` | Ok = the run context as one line of JSON |
//! | `sleep:MS` | sleeps inside a WASI call, Ok `slept` |
//! | `exit:N` | `std::process::exit(N)` |
//! | `residue` | Ok `calls=N nonzero=M`: N counts runs seen by this instance (a static), M the bytes not zero in 3 MiB of freshly grown memory; then both are dirtied |
//!
//! Anything else is fatal `unknown probe mode: ...`. I/O failures are fatal with the
//! operation and path in the message, so tests can assert on what the sandbox refused; HTTP
//! errors carry the `wasi:http` error-code name (`HTTP-request-denied`, ...), TCP errors
//! std's text for the `wasi:sockets` error.

mod modes;
mod net;
mod output;

use sandcron_guest::{Context, JobError, Output};

fn run(ctx: Context) -> Result<Output, JobError> {
    let mode = match &ctx.payload {
        None => sandcron_guest::config::get_or("mode", "ok"),
        Some(bytes) => String::from_utf8_lossy(bytes).into_owned(),
    };
    let (name, arg) = match mode.split_once(':') {
        Some((name, arg)) => (name, Some(arg)),
        None => (mode.as_str(), None),
    };

    let summary = match (name, arg) {
        ("ok", None) => "ok".to_owned(),
        ("loop", None) => modes::spin(),
        ("memory", None) => modes::hog_memory(),
        ("recurse", None) => modes::recurse(),
        ("panic", None) => panic!("probe panicked: boom"),
        ("flood", Some(n)) => modes::flood(count(n)?)?,
        ("log-flood", Some(n)) => modes::log_flood(count(n)?),
        ("empty-lines", Some(n)) => output::empty_lines(count(n)?),
        ("many-fields", Some(n)) => output::many_fields(count(n)?),
        ("stderr-lines", Some(n)) => output::stderr_lines(count(n)?)?,
        ("big-error", Some(n)) => return Err(output::big_error(count(n)?)),
        ("big-panic", Some(n)) => output::big_panic(count(n)?),
        ("read", Some(path)) => modes::read(path)?,
        ("write", Some(path)) => modes::write(path)?,
        ("list", Some(path)) => modes::list(path)?,
        ("env", None) => modes::env(),
        ("socket", Some(addr)) => modes::socket(addr)?,
        ("http", Some(url)) => net::get(url)?,
        ("http-count", Some(arg)) => net::get_count(arg)?,
        ("http-post", Some(arg)) => net::post(arg)?,
        ("tcp-echo", Some(addr)) => net::tcp_echo(addr)?,
        ("print-env", Some(name)) => net::print_env(name)?,
        ("retryable", None) => return Err(JobError::retryable("probe says try again")),
        ("fatal", None) => return Err(JobError::fatal("probe says give up")),
        ("state", None) => modes::counter()?,
        ("config", None) => modes::config(),
        ("deadline", None) => modes::deadline(),
        ("context", None) => modes::context(&ctx),
        ("sleep", Some(ms)) => modes::sleep(count(ms)?),
        ("residue", None) => modes::residue(),
        ("exit", Some(code)) => {
            let code = code.parse().map_err(|e| JobError::fatal(format!("exit code: {e}")))?;
            std::process::exit(code)
        }
        _ => return Err(JobError::fatal(format!("unknown probe mode: {mode}"))),
    };
    Ok(Output::new(summary))
}

/// A numeric mode argument; a typo is the test's bug, so it is fatal.
fn count(arg: &str) -> Result<u64, JobError> {
    arg.parse().map_err(|e| JobError::fatal(format!("bad number {arg:?}: {e}")))
}

sandcron_guest::job!(run);
