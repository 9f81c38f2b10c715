//! Reading a job's `.wasm` from disk without trusting its size: every command and the
//! watcher go through here before any bytes reach the runtime.
//!
//! A job file is read whole (it is hashed into the job's version and compiled), so a file
//! that is not a job must be turned away before that: a 2 GiB sparse `.wasm` costs nothing
//! on disk but 2 GiB of memory to read, and the watcher reads a job again on every touch.
//! So the size comes from the open file's metadata and is held to [`MAX_WASM_SIZE`] before
//! a byte is read, and [`read`] checks the `\0asm` magic in the first bytes before reading
//! the rest. The read itself stops at the ceiling too, in case the file grows meanwhile.
//!
//! The ceiling is 256 MiB: the largest real jobs we build (componentize-py, 18 MB;
//! StarlingMonkey, 12 MB) are a fourteenth of it, and compiling anything near it would
//! take minutes. A job over it is an error naming the file, its size and the ceiling.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest `.wasm` a job may be: 256 MiB (see the module doc for why).
pub(crate) const MAX_WASM_SIZE: u64 = 256 << 20;

/// The first four bytes of every WebAssembly binary, component or core module.
const MAGIC: &[u8; 4] = b"\0asm";

/// Why a job's `.wasm` was not read: the file and the [`WasmFileProblem`].
#[derive(Debug, thiserror::Error)]
#[error("{}: {problem}", path.display())]
pub(crate) struct WasmFileError {
    /// The file.
    pub(crate) path: PathBuf,
    /// What is wrong with it.
    pub(crate) problem: WasmFileProblem,
}

/// What is wrong with a job's `.wasm`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WasmFileProblem {
    /// It could not be opened or read.
    #[error("cannot read: {0}")]
    Read(#[source] std::io::Error),
    /// A folder, device or other non-file.
    #[error("not a regular file")]
    NotAFile,
    /// Over [`MAX_WASM_SIZE`]: its size from metadata (or what the read found, if it grew).
    #[error("{0} bytes is more than a job may be ({MAX_WASM_SIZE} bytes, 256 MiB); not read")]
    TooLarge(u64),
    /// The first bytes are not `\0asm`.
    #[error("not a WebAssembly file (no \\0asm header)")]
    NotWasm,
}

fn fail(path: &Path, problem: WasmFileProblem) -> WasmFileError {
    WasmFileError { path: path.to_path_buf(), problem }
}

/// Reads a job's `.wasm`: size ceiling from metadata, then the magic, then the rest.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, WasmFileError> {
    let (mut file, size) = open_capped(path)?;
    let mut bytes = Vec::with_capacity(size as usize);
    let read_err = |e| fail(path, WasmFileProblem::Read(e));
    (&mut file).take(MAGIC.len() as u64).read_to_end(&mut bytes).map_err(read_err)?;
    if bytes.as_slice() != MAGIC {
        return Err(fail(path, WasmFileProblem::NotWasm));
    }
    read_rest(file, path, bytes)
}

/// Reads a file held to the ceiling, whatever its first bytes (the watcher leaves judging
/// them to its loader).
pub(crate) fn read_capped(path: &Path) -> Result<Vec<u8>, WasmFileError> {
    let (file, size) = open_capped(path)?;
    read_rest(file, path, Vec::with_capacity(size as usize))
}

/// Opens `path` for reading if it is a regular file (following symlinks), and returns it
/// with its metadata; anything else is [`WasmFileProblem::NotAFile`].
///
/// Opened non-blocking: opening a FIFO for reading would otherwise wait for a writer
/// forever, and the watcher's reader with it. The flag changes nothing for a regular file.
pub(crate) fn open_regular(path: &Path) -> Result<(File, std::fs::Metadata), WasmFileProblem> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path).map_err(WasmFileProblem::Read)?;
    let meta = file.metadata().map_err(WasmFileProblem::Read)?;
    if !meta.is_file() {
        return Err(WasmFileProblem::NotAFile);
    }
    Ok((file, meta))
}

/// Opens `path` and checks, from the open file's metadata, that it is a file under the
/// ceiling; returns it and its size.
fn open_capped(path: &Path) -> Result<(File, u64), WasmFileError> {
    let (file, meta) = open_regular(path).map_err(|problem| fail(path, problem))?;
    if meta.len() > MAX_WASM_SIZE {
        return Err(fail(path, WasmFileProblem::TooLarge(meta.len())));
    }
    Ok((file, meta.len()))
}

/// Appends the rest of `file` to `bytes`, stopping one byte past the ceiling.
fn read_rest(file: File, path: &Path, mut bytes: Vec<u8>) -> Result<Vec<u8>, WasmFileError> {
    let budget = MAX_WASM_SIZE + 1 - bytes.len() as u64;
    file.take(budget).read_to_end(&mut bytes).map_err(|e| fail(path, WasmFileProblem::Read(e)))?;
    if bytes.len() as u64 > MAX_WASM_SIZE {
        return Err(fail(path, WasmFileProblem::TooLarge(bytes.len() as u64)));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watcher::test_util::TempDir;

    #[test]
    fn a_sparse_file_over_the_ceiling_is_refused_before_reading() {
        let dir = TempDir::new("wasm-file-big");
        let path = dir.path().join("big.wasm");
        let file = File::create(&path).unwrap();
        file.set_len(MAX_WASM_SIZE + 1).unwrap();
        for read in [read, read_capped] {
            let err = read(&path).unwrap_err();
            assert!(
                matches!(err.problem, WasmFileProblem::TooLarge(size) if size == MAX_WASM_SIZE + 1)
            );
            assert!(err.to_string().starts_with(&format!("{}: 268435457 bytes", path.display())));
        }
    }

    #[test]
    fn the_magic_is_checked_from_the_first_bytes() {
        let dir = TempDir::new("wasm-file-magic");
        dir.write("text.wasm", b"hello, world");
        dir.write("short.wasm", b"\0as");
        dir.write("ok.wasm", b"\0asm\x0d\0\x01\0rest");
        for name in ["text.wasm", "short.wasm"] {
            let err = read(&dir.path().join(name)).unwrap_err();
            assert!(matches!(err.problem, WasmFileProblem::NotWasm), "{name}: {err}");
        }
        assert_eq!(read(&dir.path().join("ok.wasm")).unwrap(), b"\0asm\x0d\0\x01\0rest");
        assert_eq!(read_capped(&dir.path().join("text.wasm")).unwrap(), b"hello, world");
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_or_a_link_to_a_device_is_not_a_file_and_is_not_waited_on() {
        let dir = TempDir::new("wasm-file-fifo");
        let fifo = dir.path().join("fifo.wasm");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        let zero = dir.path().join("zero.wasm");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        for path in [&fifo, &zero] {
            for read in [read, read_capped] {
                let err = read(path).unwrap_err();
                assert!(matches!(err.problem, WasmFileProblem::NotAFile), "{err}");
                assert_eq!(err.to_string(), format!("{}: not a regular file", path.display()));
            }
        }
    }

    #[test]
    fn a_folder_or_a_missing_file_names_the_path() {
        let dir = TempDir::new("wasm-file-odd");
        assert!(matches!(read(dir.path()).unwrap_err().problem, WasmFileProblem::NotAFile));
        let missing = dir.path().join("gone.wasm");
        let err = read(&missing).unwrap_err();
        assert!(err.to_string().starts_with(&format!("{}: cannot read:", missing.display())));
    }
}
