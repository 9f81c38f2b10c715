//! `[secrets]`: values the host reads at load time and hands to the guest (M8).
//!
//! `NAME = { env = "HOST_VAR" }` or `NAME = { file = "/path" }`. The value reaches the guest
//! as the environment variable NAME and nowhere else: [`SecretValue`] has no `Serialize`
//! and its `Debug` prints `***`, so no view, log line or store row can carry it by
//! accident; the runtime masks it in whatever output of the run is kept.
//!
//! This is the one place a manifest's validation reads the outside world (the host's
//! environment and files): a secret is, by definition, what the manifest must not contain.

use std::fmt;
use std::path::{Path, PathBuf};

/// Largest secret file read (a token or a key, not a data set).
const MAX_SECRET_FILE: u64 = 64 << 10;

/// Where a secret's value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    /// The host's environment variable of this name.
    Env(String),
    /// This file's contents (one trailing newline dropped).
    File(PathBuf),
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Env(var) => write!(f, "env {var}"),
            SecretSource::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// A secret's value: never printed, never serialized.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    /// The value itself, for the guest's environment and for masking.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// One resolved `[secrets]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Secret {
    /// The guest's environment variable.
    pub name: String,
    /// Where the host read it.
    pub source: SecretSource,
    /// What it read.
    pub value: SecretValue,
}

impl Secret {
    /// A secret with a given value, for tests elsewhere in the crate.
    #[cfg(test)]
    pub(crate) fn for_tests(name: &str, value: &str) -> Self {
        let source = SecretSource::Env(name.to_string());
        Secret { name: name.to_string(), source, value: SecretValue(value.to_string()) }
    }
}

/// Checks a secret's guest-side name: an environment variable name.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(format!(
            "secrets.{name}: a secret's name is the guest's environment variable, so it must be \
             letters, digits and _ (not starting with a digit)"
        ))
    }
}

/// Reads a secret's value; the error names the secret and the source, never a value.
pub(crate) fn resolve(name: &str, source: &SecretSource, base: &Path) -> Result<Secret, String> {
    let value = match source {
        SecretSource::Env(var) => std::env::var(var).map_err(|err| match err {
            std::env::VarError::NotPresent => {
                format!("secrets.{name}: the host environment variable {var} is not set")
            }
            std::env::VarError::NotUnicode(_) => {
                format!("secrets.{name}: the host environment variable {var} is not valid UTF-8")
            }
        })?,
        SecretSource::File(path) => {
            let path = base.join(path);
            let cannot =
                |why: String| format!("secrets.{name}: cannot read {}: {why}", path.display());
            let meta = std::fs::metadata(&path).map_err(|e| cannot(e.to_string()))?;
            if meta.len() > MAX_SECRET_FILE {
                return Err(cannot(format!(
                    "{} bytes; a secret file is at most 64 KiB",
                    meta.len()
                )));
            }
            let text = std::fs::read_to_string(&path).map_err(|e| cannot(e.to_string()))?;
            let text = text
                .strip_suffix('\n')
                .map_or(text.as_str(), |t| t.strip_suffix('\r').unwrap_or(t));
            text.to_string()
        }
    };
    if value.is_empty() {
        return Err(format!("secrets.{name}: {source} is empty"));
    }
    Ok(Secret { name: name.to_string(), source: source.clone(), value: SecretValue(value) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_never_show_in_debug() {
        let secret = Secret {
            name: "TOKEN".into(),
            source: SecretSource::Env("HOST_TOKEN".into()),
            value: SecretValue("hunter2".into()),
        };
        let shown = format!("{secret:?}");
        assert!(!shown.contains("hunter2") && shown.contains("***"), "{shown}");
    }

    #[test]
    fn files_are_read_without_their_trailing_newline() {
        let dir = std::env::temp_dir().join(format!("sandcron-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("token"), "s3cret\n").unwrap();
        let secret = resolve("T", &SecretSource::File("token".into()), &dir).unwrap();
        assert_eq!(secret.value.expose(), "s3cret");
        let err = resolve("T", &SecretSource::File("missing".into()), &dir).unwrap_err();
        assert!(err.starts_with("secrets.T: cannot read ") && err.contains("missing"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_variable_is_named() {
        let err = resolve(
            "T",
            &SecretSource::Env("SANDCRON_TEST_SURELY_UNSET_VAR".into()),
            Path::new("."),
        )
        .unwrap_err();
        assert_eq!(
            err,
            "secrets.T: the host environment variable SANDCRON_TEST_SURELY_UNSET_VAR is not set"
        );
        assert!(check_name("API_TOKEN").is_ok());
        assert!(check_name("1X").is_err() && check_name("a-b").is_err());
    }
}
