//! The `sandcron` binary: parse the command line, set up logging, hand off to a command.

use std::process::ExitCode;

use sandcron::cli::{Command, LogFormat};
use sandcron::commands;
use sandcron::logging::Sink;

fn main() -> ExitCode {
    quiet_library_backtraces();
    let mut cli = commands::serve_config::parse(std::env::args_os().collect());
    if let Command::Run(args) = &mut cli.command {
        // `run --state` became `--store` (issue 15 point 7); its old variable still works.
        args.store =
            args.store.take().or_else(|| std::env::var_os("SANDCRON_STATE").map(Into::into));
    }
    if !matches!(cli.command, Command::Serve(_)) {
        die_quietly_on_closed_pipe();
    }
    survive_file_size_limits();
    init_tracing(cli.log_format);
    let code = match cli.command {
        Command::Run(args) => commands::run::main(args),
        Command::Validate(args) => commands::validate::main(args),
        Command::Next(args) => commands::next::main(args),
        Command::Serve(args) => commands::serve::main(args),
        Command::Jobs(args) => commands::jobs::main(args),
        Command::Runs(args) => commands::runs::main(args),
        Command::Logs(args) => commands::logs::main(args),
        Command::Prune(args) => commands::prune::main(args),
        Command::Trigger(args) => commands::control::trigger(args),
        Command::Pause(args) => commands::control::pause(args),
        Command::Resume(args) => commands::control::resume(args),
        Command::Backfill(args) => commands::control::backfill(args),
        Command::New(args) => commands::new::main(args),
        Command::Completions(args) => commands::docs::completions(args),
        Command::Man(args) => commands::docs::man(args),
    };
    ExitCode::from(code as u8)
}

/// wasmtime creates internal errors on every run (e.g. when it retires a fiber), and each
/// captures a Rust backtrace whenever `RUST_BACKTRACE` is set: ~20 µs per run for nothing.
/// `RUST_LIB_BACKTRACE=0` turns that off while panics keep their backtraces; an operator
/// who sets `RUST_LIB_BACKTRACE` explicitly keeps their choice.
fn quiet_library_backtraces() {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: called first thing in `main`, before any other thread exists.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("RUST_LIB_BACKTRACE", "0")
        };
    }
}

/// `sandcron runs JOB | head` closes the pipe early: a command-line tool should then stop
/// quietly, as `ls` does, instead of panicking in `println!` (Rust ignores SIGPIPE by
/// default). The host (`serve`) keeps ignoring it: its sockets must not kill it.
fn die_quietly_on_closed_pipe() {
    // SAFETY: restores the default disposition of one signal before any thread exists.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// A file size limit (`ulimit -f`, systemd's `LimitFSIZE=`) sends SIGXFSZ on a write past
/// it, whose default action kills the process: ignored, the write fails with EFBIG instead,
/// and the store reports it as a failing store (`/readyz` 503) like a full disk.
fn survive_file_size_limits() {
    // SAFETY: sets the disposition of one signal before any thread exists.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// Logs go to stderr; `SANDCRON_LOG` (or `RUST_LOG`; empty is unset) sets the filter: by
/// default warnings (every failed run is one, rate-limited per job) plus the host's start-up
/// and stop lines (which say where the API listens). Lines inside a run carry its span (job
/// and run id); `--log-format json` writes one JSON object per line with those fields.
/// `JOURNAL_STREAM` (set by systemd) says whether stderr is the journal: see `logging`.
fn init_tracing(format: LogFormat) {
    let set = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    let filter = set("SANDCRON_LOG")
        .or_else(|| set("RUST_LOG"))
        .unwrap_or_else(|| "warn,sandcron::daemon=info".to_string());
    let journal_stream = std::env::var("JOURNAL_STREAM").ok();
    sandcron::logging::init(format, &filter, Sink::of_stderr(journal_stream.as_deref()));
}
