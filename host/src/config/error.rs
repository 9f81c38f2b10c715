//! Manifest errors: every one names the file, and the line and column when it has one.

use std::path::PathBuf;

/// Why a manifest could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read at all.
    #[error("{}: cannot read manifest: {source}", path.display())]
    Read {
        /// The manifest's path.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but a key or value is wrong.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Invalid {
        /// The manifest's path.
        path: PathBuf,
        /// 1-based line of the offending key or value.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong and how to fix it.
        message: String,
    },
}

impl ManifestError {
    /// An [`Invalid`](Self::Invalid) error located at a byte offset of `source`.
    pub(crate) fn at(path: &std::path::Path, source: &str, offset: usize, message: String) -> Self {
        let before = &source[..offset.min(source.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        ManifestError::Invalid { path: path.to_path_buf(), line, column, message }
    }
}
