//! Sealing cache entries: a keyed BLAKE3 digest beside each entry, checked over the very
//! bytes wasmtime will map before it maps them.
//!
//! # The key
//! `digest.key` in the cache folder: 32 bytes from the OS's random source, created with
//! the folder (mode 600, first writer wins), never leaving it. Each entry's digest is
//! BLAKE3 in keyed mode over a domain tag, the entry's kind (component or core module), the
//! SHA-256 of the wasm it was compiled from, the engine tag, the length, and the compiled
//! bytes. A key file that is not an owner-only 32-byte regular file of ours is replaced
//! (every entry then fails its check once and is recompiled).
//!
//! What this protects against: any entry this host did not write for exactly this wasm:
//! bit rot and torn writes, a `.text` edited in place, one job's entry copied over another
//! job's name, entries copied in from another cache or machine, and entries planted by
//! anyone who can write into the folder but cannot read the key. What it does not protect
//! against: anyone who can read the key, i.e. this user or root. They can forge entries,
//! but they can equally replace the `sandcron` binary or attach a debugger; the folder's
//! owner-only checks (see `folder`) keep everyone else out in the first place.
//!
//! # Why BLAKE3
//! The digest costs one pass over the compiled code on every cached load, and that code is
//! large (40 MB for the 18 MB Python component). Measured on the 2-core development machine
//! over that 40 MB file: keyed BLAKE3 7 ms (AVX-512, one thread), HMAC-SHA256 27-34 ms even
//! with SHA-NI; a plain read of the file alone 2 ms. So BLAKE3, single-threaded: the other
//! core is running jobs, and splitting the hash over both (`rayon`) measured no faster.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::folder::CacheError;

/// The key's file name inside the cache folder.
pub(super) const KEY_FILE: &str = "digest.key";

/// The first word of a digest file: the format and algorithm, so a later format can tell.
const DIGEST_PREFIX: &str = "sandcron-cache-digest-v1 blake3-keyed ";

/// Mixed in first, so these digests cannot be mistaken for any other use of the key.
const DOMAIN: &[u8] = b"sandcron compile cache entry v1\0";

/// The folder's secret: whoever holds it can make entries this host will load.
pub(super) struct SealKey([u8; 32]);

/// What an entry claims to be; all of it is bound into the entry's digest.
pub(super) struct EntryId<'a> {
    /// `cwasm` (component) or `cwasm-module` (core module).
    pub(super) kind: &'a str,
    /// SHA-256 of the wasm the entry was compiled from, hex.
    pub(super) content_hash: &'a str,
    /// The engine's compatibility tag.
    pub(super) engine_tag: &'a str,
}

impl SealKey {
    /// The folder's key, created on first use; a key file that is not ours alone is
    /// replaced with a fresh one.
    pub(super) fn load_or_create(dir: &Path) -> Result<Self, CacheError> {
        let path = dir.join(KEY_FILE);
        let key_err = |source| CacheError::Key { path: path.clone(), source };
        let replace = match read_key(&path) {
            Ok(Some(key)) => return Ok(key),
            Ok(None) => false,
            Err(KeyProblem::Io(source)) => return Err(key_err(source)),
            Err(KeyProblem::Unfit(why)) => {
                tracing::warn!(
                    path = %path.display(),
                    "replacing the compile cache key ({why}); every entry will be recompiled once"
                );
                true
            }
        };
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| key_err(std::io::Error::other(e)))?;
        let tmp = dir.join(format!("{KEY_FILE}.tmp{}", std::process::id()));
        write_private(&tmp, &key).map_err(key_err)?;
        let placed = if replace {
            std::fs::rename(&tmp, &path)
        } else {
            // A hard link never replaces: if another process made the key first, use theirs.
            let linked = std::fs::hard_link(&tmp, &path);
            let _ = std::fs::remove_file(&tmp);
            match linked {
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                    return match read_key(&path) {
                        Ok(Some(key)) => Ok(key),
                        Ok(None) => Err(key_err(std::io::ErrorKind::NotFound.into())),
                        Err(KeyProblem::Io(source)) => Err(key_err(source)),
                        Err(KeyProblem::Unfit(why)) => Err(key_err(std::io::Error::other(why))),
                    };
                }
                other => other,
            }
        };
        if let Err(err) = placed {
            let _ = std::fs::remove_file(&tmp);
            return Err(key_err(err));
        }
        Ok(SealKey(key))
    }

    /// The digest of an entry `id` holding `bytes`.
    pub(super) fn digest(&self, id: &EntryId<'_>, bytes: &[u8]) -> blake3::Hash {
        let mut hasher = blake3::Hasher::new_keyed(&self.0);
        hasher.update(DOMAIN);
        for field in [id.kind, id.content_hash, id.engine_tag] {
            hasher.update(field.as_bytes());
            hasher.update(b"\0");
        }
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
        hasher.finalize()
    }
}

enum KeyProblem {
    /// The file could not be read at all.
    Io(std::io::Error),
    /// It is there but must not be used: why.
    Unfit(String),
}

/// The key at `path`: `None` if there is none, `Unfit` if it is not an owner-only 32-byte
/// regular file of ours (a symlink is not followed).
fn read_key(path: &Path) -> Result<Option<SealKey>, KeyProblem> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        #[cfg(unix)]
        Err(err) if err.raw_os_error() == Some(libc::ELOOP) => {
            return Err(KeyProblem::Unfit("it is a symbolic link".into()));
        }
        Err(err) => return Err(KeyProblem::Io(err)),
    };
    let meta = file.metadata().map_err(KeyProblem::Io)?;
    if !meta.is_file() {
        return Err(KeyProblem::Unfit("not a regular file".into()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if meta.uid() != super::folder::effective_uid() {
            return Err(KeyProblem::Unfit(format!("owned by uid {}", meta.uid())));
        }
        if meta.mode() & 0o077 != 0 {
            let mode = meta.mode() & 0o7777;
            return Err(KeyProblem::Unfit(format!("others may read or write it (mode {mode:o})")));
        }
    }
    if meta.len() != 32 {
        return Err(KeyProblem::Unfit(format!("{} bytes, not 32", meta.len())));
    }
    let mut key = [0u8; 32];
    file.read_exact(&mut key).map_err(KeyProblem::Io)?;
    Ok(Some(SealKey(key)))
}

/// Where the digest of the entry at `entry` lives.
pub(super) fn digest_path(entry: &Path) -> PathBuf {
    let mut name = entry.as_os_str().to_owned();
    name.push(".digest");
    PathBuf::from(name)
}

/// The text of a digest file.
pub(super) fn format_digest(digest: &blake3::Hash) -> String {
    format!("{DIGEST_PREFIX}{}\n", digest.to_hex())
}

/// The digest in the file at `path`: `Ok(None)` when there is no such file or it is not in
/// our format.
pub(super) fn read_digest(path: &Path) -> std::io::Result<Option<blake3::Hash>> {
    let mut text = String::new();
    match File::open(path) {
        // Bounded: a digest file is under 128 bytes.
        Ok(file) => match file.take(256).read_to_string(&mut text) {
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::InvalidData => return Ok(None),
            Err(err) => return Err(err),
        },
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    }
    let hex = text.strip_prefix(DIGEST_PREFIX).map(str::trim_end);
    Ok(hex.and_then(|hex| blake3::Hash::from_hex(hex).ok()))
}

/// Writes `bytes` to a new file only we can read or write (a stale one is replaced).
pub(super) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watcher::test_util::TempDir;

    const ID: EntryId<'static> =
        EntryId { kind: "cwasm", content_hash: "ab12", engine_tag: "0011223344556677" };

    #[test]
    fn the_key_is_made_once_owner_only_and_reused() {
        let dir = TempDir::new("seal-key");
        let first = SealKey::load_or_create(dir.path()).unwrap();
        let again = SealKey::load_or_create(dir.path()).unwrap();
        assert_eq!(first.0, again.0);
        assert_ne!(first.0, [0; 32]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_key_others_could_read_is_replaced() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("seal-key-loose");
        let first = SealKey::load_or_create(dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let second = SealKey::load_or_create(dir.path()).unwrap();
        assert_ne!(first.0, second.0);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_short_key_is_replaced() {
        let dir = TempDir::new("seal-key-short");
        dir.write(KEY_FILE, b"short");
        let key = SealKey::load_or_create(dir.path()).unwrap();
        assert_eq!(std::fs::read(dir.path().join(KEY_FILE)).unwrap(), key.0);
    }

    #[test]
    fn the_digest_binds_key_bytes_and_every_field_of_the_id() {
        let key = SealKey([7; 32]);
        let base = key.digest(&ID, b"code");
        assert_ne!(SealKey([8; 32]).digest(&ID, b"code"), base);
        assert_ne!(key.digest(&ID, b"codf"), base);
        assert_ne!(key.digest(&EntryId { kind: "cwasm-module", ..ID }, b"code"), base);
        assert_ne!(key.digest(&EntryId { content_hash: "ab13", ..ID }, b"code"), base);
        assert_ne!(key.digest(&EntryId { engine_tag: "0011223344556678", ..ID }, b"code"), base);
        // Field boundaries are fixed: moving a byte between fields changes the digest.
        assert_ne!(key.digest(&EntryId { kind: "cwasm-", content_hash: "module", ..ID }, b""), {
            key.digest(&EntryId { kind: "cwasm", content_hash: "-module", ..ID }, b"")
        });
    }

    #[test]
    fn digest_files_round_trip_and_anything_else_reads_as_none() {
        let dir = TempDir::new("seal-digest");
        let digest = SealKey([1; 32]).digest(&ID, b"x");
        let path = dir.path().join("e.cwasm.digest");
        write_private(&path, format_digest(&digest).as_bytes()).unwrap();
        assert_eq!(read_digest(&path).unwrap(), Some(digest));
        for junk in [&b"garbage"[..], b"", b"\xff\xfe", DIGEST_PREFIX.as_bytes()] {
            std::fs::write(&path, junk).unwrap();
            assert_eq!(read_digest(&path).unwrap(), None);
        }
        assert_eq!(read_digest(&dir.path().join("missing")).unwrap(), None);
    }
}
