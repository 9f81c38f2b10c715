//! The manifest's `[config]` table, read-only.
//!
//! The host hands every value over as text: strings as they are, other TOML values (numbers,
//! booleans, arrays, tables) as JSON. [`parse`] therefore covers numbers and booleans with
//! plain `FromStr`, and a job that wants structure can `serde_json::from_str` a value.

use std::error::Error;
use std::fmt;
use std::str::FromStr;

use crate::wit::sandcron::job::config as host;

/// A value by key; `None` when the manifest does not set it.
pub fn get(key: &str) -> Option<String> {
    host::get(key)
}

/// A value by key, or `default` when the manifest does not set it.
pub fn get_or(key: &str, default: &str) -> String {
    get(key).unwrap_or_else(|| default.to_owned())
}

/// A value parsed with `FromStr`; `Ok(None)` when the key is not set.
///
/// With `?` a bad value becomes a retryable error; a misconfigured manifest will not fix
/// itself, so consider `.map_err(JobError::fatal)` instead.
///
/// ```no_run
/// # use sandcron_guest::{JobError, config};
/// # fn run() -> Result<(), JobError> {
/// let batch: u32 = config::parse("batch_size").map_err(JobError::fatal)?.unwrap_or(100);
/// # Ok(()) }
/// ```
pub fn parse<T>(key: &str) -> Result<Option<T>, ConfigError>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    get(key).map(|value| parse_value(key, value)).transpose()
}

/// Every key and value, in key order.
pub fn entries() -> Vec<(String, String)> {
    host::entries()
}

fn parse_value<T>(key: &str, value: String) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    value.parse().map_err(|err: T::Err| ConfigError {
        key: key.to_owned(),
        value,
        reason: err.to_string(),
    })
}

/// A config value did not parse as the requested type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    key: String,
    value: String,
    reason: String,
}

impl ConfigError {
    /// The key whose value did not parse.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value as the manifest gave it.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config `{}` = {:?}: {}", self.key, self.value, self.reason)
    }
}

impl Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_value_reports_key_and_value() {
        assert_eq!(parse_value::<u32>("n", "42".into()), Ok(42));
        let err = parse_value::<u32>("n", "forty".into()).unwrap_err();
        assert_eq!(err.key(), "n");
        assert_eq!(err.to_string(), "config `n` = \"forty\": invalid digit found in string");
    }
}
