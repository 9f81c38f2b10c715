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
        match err.span() {
            Some(span) => Self::at(path, source, span.start, err.message().trim().to_string()),
            // The parser stops at its recursion limit without saying where (it would say
            // 1:1): point at the line nested deepest.
            None if err.message().contains("recursion limit") => {
                let (offset, depth) = deepest_line(source);
                let message = format!(
                    "nested too deep: {depth} levels of keys, tables or arrays on this line (a \
                     file like this needs a few)"
                );
                Self::at(path, source, offset, message)
            }
            None => Self::at(path, source, 0, err.message().trim().to_string()),
        }
    }
}

/// Why the host config file (`serve --config`) could not be used: the same shape as a
/// manifest's errors.
pub type HostFileError = ManifestError;
/// The start of the line nested deepest in `source`, and how deep: the dots of a dotted key
/// (outside quotes, before `=` or in a `[table]` header) plus the brackets and braces open
/// at once. Used where the parser gives no position, as at its recursion limit.
pub(crate) fn deepest_line(source: &str) -> (usize, usize) {
    let (mut best, mut offset) = ((0, 0), 0);
    for line in source.split_inclusive('\n') {
        let depth = nesting(line);
        if depth > best.1 {
            best = (offset, depth);
        }
        offset += line.len();
    }
    best
}

fn nesting(line: &str) -> usize {
    let (mut dots, mut open, mut deepest) = (0, 0usize, 0);
    let (mut quote, mut in_key) = (None, true);
    for ch in line.chars() {
        match (quote, ch) {
            (Some(q), _) if ch == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(ch),
            (None, '#') => break,
            (None, '.') if in_key => dots += 1,
            (None, '=') => in_key = false,
            (None, '[' | '{') => {
                open += 1;
                deepest = deepest.max(open);
            }
            (None, ']' | '}') => open = open.saturating_sub(1),
            _ => {}
        }
    }
    dots + deepest
}
