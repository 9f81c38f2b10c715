//! The API token as `serve` and the control verbs take it (O6): from `--token-file FILE`
//! (or `SANDCRON_TOKEN_FILE`), or from `--token` / `SANDCRON_TOKEN`.
//!
//! The file is the preferred way: a `--token` argument is visible to every user of the
//! machine in `ps` and `/proc/PID/cmdline` (hardening issue 14). A token file that group or
//! others may read or write is refused, as ssh refuses such a key: others could read the
//! token, or replace it with their own. The file holds the token on its first line;
//! surrounding whitespace and the final newline are not part of it.

use std::io::Read;
use std::path::Path;

/// A token file is a line of text; a larger file is not one.
const MAX_TOKEN_FILE: u64 = 4096;

/// Why no token could be taken: a message naming the file and the reason.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TokenError(String);

/// The token from `--token` or `--token-file` (not both); `None` when neither is given or
/// `--token` is empty.
pub fn resolve(token: Option<&str>, file: Option<&Path>) -> Result<Option<String>, TokenError> {
    match (token.filter(|t| !t.is_empty()), file) {
        (Some(_), Some(file)) => Err(TokenError(format!(
            "both --token and --token-file {} are given (or SANDCRON_TOKEN and \
             SANDCRON_TOKEN_FILE): keep one, preferably the file",
            file.display()
        ))),
        (Some(token), None) => Ok(Some(token.to_string())),
        (None, Some(file)) => read(file).map(Some),
        (None, None) => Ok(None),
    }
}

/// Reads the token from `path`, refusing a file others may read or write.
fn read(path: &Path) -> Result<String, TokenError> {
    let fail = |why: String| TokenError(format!("token file {}: {why}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let meta = file.metadata().map_err(|e| fail(format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".into()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(fail(format!(
                "group or others may read or change it (mode {mode:03o}); make it private \
                 with `chmod 600 {}`",
                path.display()
            )));
        }
    }
    let mut text = String::new();
    file.take(MAX_TOKEN_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| fail(format!("cannot read as text: {e}")))?;
    if text.len() as u64 > MAX_TOKEN_FILE {
        return Err(fail(format!("larger than {MAX_TOKEN_FILE} bytes: not a token")));
    }
    let token = text.lines().next().unwrap_or_default().trim();
    if token.is_empty() {
        return Err(fail("the first line is empty: write the token there".into()));
    }
    Ok(token.to_string())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::watcher::test_util::TempDir;

    fn token_file(dir: &TempDir, text: &str, mode: u32) -> std::path::PathBuf {
        let path = dir.path().join("token");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn a_private_file_gives_its_first_line() {
        let dir = TempDir::new("token-ok");
        let path = token_file(&dir, "  s3cret \nignored\n", 0o600);
        assert_eq!(resolve(None, Some(&path)).unwrap().as_deref(), Some("s3cret"));
        assert_eq!(resolve(Some("t"), None).unwrap().as_deref(), Some("t"));
        assert_eq!(resolve(Some(""), None).unwrap(), None);
    }

    #[test]
    fn a_file_others_may_read_or_write_is_refused() {
        let dir = TempDir::new("token-shared");
        for mode in [0o640, 0o604, 0o620, 0o644] {
            let path = token_file(&dir, "s3cret\n", mode);
            let err = resolve(None, Some(&path)).unwrap_err().to_string();
            assert!(err.contains(&path.display().to_string()), "{err}");
            assert!(
                err.contains(&format!("mode {mode:03o}")) && err.contains("chmod 600"),
                "{err}"
            );
        }
    }

    #[test]
    fn both_an_empty_file_and_two_sources_are_errors() {
        let dir = TempDir::new("token-bad");
        let path = token_file(&dir, "\n", 0o600);
        assert!(resolve(None, Some(&path)).unwrap_err().to_string().contains("empty"));
        let both = resolve(Some("t"), Some(&path)).unwrap_err().to_string();
        assert!(both.contains("both --token and --token-file"), "{both}");
        let missing = resolve(None, Some(&dir.path().join("nope"))).unwrap_err().to_string();
        assert!(missing.contains("cannot read"), "{missing}");
    }
}
