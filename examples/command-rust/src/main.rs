//! command-rust: a plain WASI command job, no SDK.
//!
//! Lists its granted directory (`$DATA_DIR`, default `/data`): one `name<TAB>size` line per
//! entry, sorted by name, then a total line, on stdout. Exit code 0 is success; on any error
//! (directory missing or not granted) it prints the error to stderr and exits with 2, which
//! the host records as a retryable failure.
//!
//! It builds both as a component (`--target wasm32-wasip2`, exporting `wasi:cli/run`) and as
//! a preview1 core module (`--target wasm32-wasip1`, exporting `_start`): the two command
//! shapes the host accepts.

use std::fs;
use std::io;
use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = std::env::var("DATA_DIR").unwrap_or_else(|_| "/data".to_owned());
    match list(&dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("command-rust: cannot list {dir}: {err}");
            ExitCode::from(2)
        }
    }
}

fn list(dir: &str) -> io::Result<()> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let size = entry.metadata()?.len();
        entries.push((entry.file_name().to_string_lossy().into_owned(), size));
    }
    entries.sort();

    let total: u64 = entries.iter().map(|(_, size)| size).sum();
    for (name, size) in &entries {
        println!("{name}\t{size}");
    }
    println!("{} entries, {total} bytes", entries.len());
    Ok(())
}
