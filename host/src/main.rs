//! The `sandcron` binary: parse the command line, set up logging, hand off to a command.

use std::process::ExitCode;

use clap::Parser;
use sandcron::cli::{Cli, Command};
use sandcron::commands;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let code = match cli.command {
        Command::Run(args) => commands::run::main(args),
        Command::Validate(args) => commands::validate::main(args),
    };
    ExitCode::from(code as u8)
}

/// Logs go to stderr; `SANDCRON_LOG` (or `RUST_LOG`) sets the filter, warnings by default.
fn init_tracing() {
    let filter = std::env::var("SANDCRON_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "warn".to_string());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();
}
