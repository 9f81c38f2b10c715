//! Writes wasmtime's WASI preview1 adapters (reactor, command, proxy) into the folder given as
//! the only argument. The bytes come from the `wasi-preview1-component-adapter-provider`
//! crate, so the adapter always matches the wasmtime version the host embeds.

use std::path::PathBuf;

use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
    WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(std::env::args_os().nth(1).expect("usage: wasi-adapter DIR"));
    std::fs::create_dir_all(&dir)?;
    let name = WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME;
    std::fs::write(dir.join(format!("{name}.reactor.wasm")), WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER)?;
    std::fs::write(dir.join(format!("{name}.command.wasm")), WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER)?;
    Ok(())
}
