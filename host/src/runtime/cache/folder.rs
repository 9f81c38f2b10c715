//! The cache folder itself: created private, or, when it already exists, used only if
//! nobody but us can write to it.
//!
//! An existing folder is never chmod'ed: `--cache-dir /tmp` once made `/tmp` mode 700 and
//! broke every other user of it. Instead a folder that another user owns, or that group or
//! others may write to, is refused with the reason: anyone who can write there could plant
//! entries, rename ours, or replace the key file (see [`super::seal`]).

use std::path::{Path, PathBuf};

/// The compile cache cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The folder (or a parent) could not be created, or not inspected.
    #[error("cache folder {}: cannot create or inspect: {source}", dir.display())]
    Create {
        /// The folder.
        dir: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// The path exists and is not a folder.
    #[error("cache folder {}: exists and is not a folder", dir.display())]
    NotAFolder {
        /// The path.
        dir: PathBuf,
    },
    /// Another user owns the folder.
    #[error(
        "cache folder {}: owned by uid {owner}, not by this user (uid {me}); refusing to load \
         compiled code from it: give --cache-dir a folder of your own (a missing one is \
         created private), or --no-cache",
        dir.display()
    )]
    NotOurs {
        /// The folder.
        dir: PathBuf,
        /// Its owner.
        owner: u32,
        /// Our effective uid.
        me: u32,
    },
    /// Group or others may write to the folder.
    #[error(
        "cache folder {}: writable by other users (mode {mode:o}); refusing to load compiled \
         code from it: give --cache-dir a folder only you can write (a missing one is \
         created with mode 700), or --no-cache",
        dir.display()
    )]
    OpenToOthers {
        /// The folder.
        dir: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The digest key could not be read or created.
    #[error("cache key {}: {source}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
}

impl CacheError {
    /// Whether the folder was refused as unsafe (a setting to change), rather than an I/O
    /// failure.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            CacheError::NotAFolder { .. }
                | CacheError::NotOurs { .. }
                | CacheError::OpenToOthers { .. }
        )
    }
}

/// Creates `dir` (and missing parents) with mode 700, or checks an existing one.
pub(super) fn open_private(dir: &Path) -> Result<(), CacheError> {
    let create_err = |source| CacheError::Create { dir: dir.to_path_buf(), source };
    if !dir.exists() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        // Racing another process that creates it is fine: it is checked below either way.
        builder.create(dir).map_err(create_err)?;
    }
    let meta = std::fs::metadata(dir).map_err(create_err)?;
    if !meta.is_dir() {
        return Err(CacheError::NotAFolder { dir: dir.to_path_buf() });
    }
    check_owner_only_writes(dir, &meta)
}

#[cfg(unix)]
fn check_owner_only_writes(dir: &Path, meta: &std::fs::Metadata) -> Result<(), CacheError> {
    use std::os::unix::fs::MetadataExt;
    let me = effective_uid();
    if meta.uid() != me {
        return Err(CacheError::NotOurs { dir: dir.to_path_buf(), owner: meta.uid(), me });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(CacheError::OpenToOthers { dir: dir.to_path_buf(), mode });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_owner_only_writes(_dir: &Path, _meta: &std::fs::Metadata) -> Result<(), CacheError> {
    Ok(())
}

/// This process's effective uid: who owns what it creates.
#[cfg(unix)]
#[allow(unsafe_code)]
pub(super) fn effective_uid() -> u32 {
    // SAFETY: geteuid takes no arguments, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::watcher::test_util::TempDir;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_missing_folder_is_created_private_with_its_parents() {
        let scratch = TempDir::new("cache-folder-new");
        let dir = scratch.path().join("a/b/compiled");
        open_private(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&scratch.path().join("a")), 0o700);
    }

    #[test]
    fn an_existing_folder_is_used_as_it_is_when_only_we_can_write_it() {
        let scratch = TempDir::new("cache-folder-755");
        std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        open_private(scratch.path()).unwrap();
        assert_eq!(mode(scratch.path()), 0o755, "not chmod'ed");
    }

    #[test]
    fn a_folder_others_can_write_is_refused_and_left_alone() {
        let scratch = TempDir::new("cache-folder-1777");
        std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        let err = open_private(scratch.path()).unwrap_err();
        assert!(matches!(err, CacheError::OpenToOthers { mode: 0o1777, .. }), "{err}");
        assert!(err.is_refusal());
        assert_eq!(mode(scratch.path()), 0o1777, "not chmod'ed");
        std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o770)).unwrap();
        assert!(matches!(open_private(scratch.path()), Err(CacheError::OpenToOthers { .. })));
    }

    #[test]
    fn a_folder_of_another_user_is_refused() {
        if effective_uid() != 0 {
            return; // only root can hand a folder to someone else
        }
        let scratch = TempDir::new("cache-folder-theirs");
        std::os::unix::fs::chown(scratch.path(), Some(65534), None).unwrap();
        let err = open_private(scratch.path()).unwrap_err();
        assert!(matches!(err, CacheError::NotOurs { owner: 65534, me: 0, .. }), "{err}");
    }

    #[test]
    fn a_file_is_not_a_folder() {
        let scratch = TempDir::new("cache-folder-file");
        scratch.write("f", b"x");
        let err = open_private(&scratch.path().join("f")).unwrap_err();
        assert!(matches!(err, CacheError::NotAFolder { .. }), "{err}");
    }
}
