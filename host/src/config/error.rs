//! Config file errors (job manifests and the host config file): every one names the file,
//! and the line and column when it has one.

use std::path::PathBuf;

/// Why a manifest (or the host config file: [`HostFileError`]) could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read at all.
    #[error("{}: cannot read {what}: {source}", path.display())]
    Read {
        /// What the file is: "manifest" or "host config".
        what: &'static str,
        /// The file's path.
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

    /// A TOML syntax or type error, at its span.
    pub(crate) fn from_toml(path: &std::path::Path, source: &str, err: &toml::de::Error) -> Self {
        let offset = err.span().map_or(0, |span| span.start);
        Self::at(path, source, offset, err.message().trim().to_string())
    }
}

/// Why the host config file (`serve --config`) could not be used: the same shape as a
/// manifest's errors.
pub type HostFileError = ManifestError;
