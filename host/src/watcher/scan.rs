//! One look at the jobs folder: which job names are present, and a [`Fingerprint`] of each
//! job's two files, cheap enough to take four times a second.
//!
//! Nothing here reads file contents; `load.rs` does that once a fingerprint has held still.
//! A fingerprint is more than the brief's (len, mtime): on Unix it also carries the inode
//! and the ctime, so an atomic rename of a same-sized file and a `chmod` (which fixes an
//! unreadable file without touching mtime) are both seen as changes.

use std::collections::BTreeMap;
use std::fs::Metadata;
use std::io;
use std::path::Path;
use std::time::SystemTime;

/// The extension of a job's module.
pub(crate) const WASM: &str = ".wasm";
/// The extension of a job's manifest.
pub(crate) const TOML: &str = ".toml";

/// What one file looked like at a scan. Equal stamps mean "nothing seen to change".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileStamp {
    len: u64,
    /// False for a FIFO, device or socket: present, so that it is reported as not a job
    /// file instead of being passed over in silence, but never opened as one.
    regular: bool,
    modified: Option<SystemTime>,
    /// (dev, inode): a file replaced by rename has a new inode even with the same size and
    /// a preserved mtime (`cp -p`, `rsync -t`).
    #[cfg(unix)]
    identity: (u64, u64),
    /// (ctime, ctime_nsec): moves on every write, rename and `chmod`, and cannot be set
    /// back by `touch -d`.
    #[cfg(unix)]
    changed: (i64, i64),
}

impl FileStamp {
    fn of(meta: &Metadata) -> Self {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            len: meta.len(),
            regular: meta.is_file(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            identity: (meta.dev(), meta.ino()),
            #[cfg(unix)]
            changed: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// The state of a job's pair of files; `None` is "no such file".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct Fingerprint {
    pub(crate) wasm: Option<FileStamp>,
    pub(crate) toml: Option<FileStamp>,
}

impl Fingerprint {
    /// Neither file exists.
    pub(crate) const ABSENT: Fingerprint = Fingerprint { wasm: None, toml: None };

    /// Stats `dir/NAME.wasm` and `dir/NAME.toml` now.
    pub(crate) fn read(dir: &Path, name: &str) -> Self {
        Fingerprint {
            wasm: stamp(&dir.join(format!("{name}{WASM}"))),
            toml: stamp(&dir.join(format!("{name}{TOML}"))),
        }
    }
}

/// A file's stamp, following symlinks (deploys often point `x.wasm` at a release
/// directory). Directories, dangling links and files that vanished count as absent; a
/// FIFO, device or socket (or a link to one, such as `/dev/zero`) is present, and reading
/// it as a job fails with "not a regular file" (see `wasm_file`).
fn stamp(path: &Path) -> Option<FileStamp> {
    std::fs::metadata(path).ok().filter(|meta| !meta.is_dir()).map(|meta| FileStamp::of(&meta))
}

/// The folder at one instant.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// Valid job names with at least one of their two files present.
    pub(crate) jobs: BTreeMap<String, Fingerprint>,
    /// Names that are not safe job names, each with one offending file name.
    pub(crate) bad: BTreeMap<String, String>,
}

/// Lists the top level of `dir`. Fails only when the folder itself cannot be read.
pub(crate) fn list_dir(dir: &Path) -> io::Result<Listing> {
    let mut listing = Listing::default();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let file_name = entry.file_name();
        // Lossy: a non-UTF-8 name keeps a U+FFFD, which makes it an (invalid) unsafe name.
        let file_name = file_name.to_string_lossy();
        // Hidden files are editors' and rsync's temporaries (`.x.wasm.swp`, `.x.wasm.Ab12`).
        if file_name.starts_with('.') {
            continue;
        }
        let Some(stem) = file_name.strip_suffix(WASM).or_else(|| file_name.strip_suffix(TOML))
        else {
            continue;
        };
        if listing.jobs.contains_key(stem) || listing.bad.contains_key(stem) {
            continue;
        }
        if !is_valid_name(stem) {
            if stamp(&entry.path()).is_some() {
                listing.bad.insert(stem.to_string(), file_name.to_string());
            }
            continue;
        }
        let fingerprint = Fingerprint::read(dir, stem);
        if fingerprint != Fingerprint::ABSENT {
            listing.jobs.insert(stem.to_string(), fingerprint);
        }
    }
    Ok(listing)
}

/// A job name is used in paths, URLs, metric labels and log lines: ASCII letters, digits,
/// `-`, `_` and `.` only, not empty, and not starting with `.`.
pub(crate) fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watcher::test_util::TempDir;

    #[test]
    fn names_are_ascii_words() {
        for good in ["backup", "db-vacuum", "a_b.c", "X9"] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in ["", ".hidden", "with space", "ünï", "a/b", "a\\b", "tab\t"] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn listing_pairs_files_and_skips_the_rest() {
        let dir = TempDir::new("scan-list");
        dir.write("a.wasm", b"x");
        dir.write("a.toml", b"y");
        dir.write("b.wasm", b"x");
        dir.write("c.toml", b"y");
        dir.write("notes.txt", b"z");
        dir.write(".a.wasm.swp", b"z");
        dir.write("bad name.wasm", b"x");
        std::fs::create_dir(dir.path().join("d.wasm")).unwrap();

        let listing = list_dir(dir.path()).unwrap();
        let names: Vec<_> = listing.jobs.keys().map(String::as_str).collect();
        assert_eq!(names, ["a", "b", "c"]);
        let a = listing.jobs["a"];
        assert!(a.wasm.is_some() && a.toml.is_some());
        assert!(listing.jobs["b"].toml.is_none());
        assert!(listing.jobs["c"].wasm.is_none());
        assert_eq!(listing.bad.get("bad name").map(String::as_str), Some("bad name.wasm"));
    }

    #[cfg(unix)]
    #[test]
    fn a_non_utf8_file_name_is_an_unsafe_name() {
        use std::os::unix::ffi::OsStrExt;
        let dir = TempDir::new("scan-utf8");
        let name = std::ffi::OsStr::from_bytes(b"caf\xe9.wasm");
        std::fs::write(dir.path().join(name), b"x").unwrap();
        let listing = list_dir(dir.path()).unwrap();
        assert!(listing.jobs.is_empty());
        assert_eq!(listing.bad.get("caf\u{fffd}").map(String::as_str), Some("caf\u{fffd}.wasm"));
    }

    #[test]
    fn a_rewrite_of_the_same_size_changes_the_fingerprint() {
        let dir = TempDir::new("scan-stamp");
        dir.write("a.wasm", b"one");
        let before = Fingerprint::read(dir.path(), "a");
        std::thread::sleep(std::time::Duration::from_millis(20));
        dir.write("a.wasm", b"two");
        assert_ne!(before, Fingerprint::read(dir.path(), "a"));
    }

    #[test]
    fn a_missing_folder_is_an_error() {
        let dir = TempDir::new("scan-missing");
        assert!(list_dir(&dir.path().join("nope")).is_err());
    }
}
