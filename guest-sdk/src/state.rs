//! Per-job persistent key-value state, kept by the host across runs and restarts.
//!
//! The host stores bytes; the typed helpers ([`get`], [`set`]) encode values as JSON,
//! which keeps stored state readable by an operator and by jobs written in other languages.
//! Use [`get_bytes`] / [`set_bytes`] for anything else. [`StateError`] converts into a
//! retryable [`JobError`](crate::JobError) with `?`.

use std::error::Error;
use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::wit::sandcron::job::state as host;

/// Read and decode a JSON value; `Ok(None)` when the key is not set.
pub fn get<T: DeserializeOwned>(key: &str) -> Result<Option<T>, StateError> {
    match get_bytes(key)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| StateError::Decode { key: key.to_owned(), source }),
    }
}

/// Encode a value as JSON and store it, replacing any previous one.
pub fn set<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<(), StateError> {
    let bytes = serde_json::to_vec(value)
        .map_err(|source| StateError::Encode { key: key.to_owned(), source })?;
    set_bytes(key, &bytes)
}

/// Read raw bytes; `Ok(None)` when the key is not set.
pub fn get_bytes(key: &str) -> Result<Option<Vec<u8>>, StateError> {
    host::get(key).map_err(|message| StateError::host(Some(key), message))
}

/// Store raw bytes, replacing any previous value.
pub fn set_bytes(key: &str, value: &[u8]) -> Result<(), StateError> {
    host::set(key, value).map_err(|message| StateError::host(Some(key), message))
}

/// Remove a key; returns whether it existed.
pub fn delete(key: &str) -> Result<bool, StateError> {
    host::delete(key).map_err(|message| StateError::host(Some(key), message))
}

/// All keys currently set for this job, in lexical order.
pub fn keys() -> Result<Vec<String>, StateError> {
    host::list_keys().map_err(|message| StateError::host(None, message))
}

/// A state operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum StateError {
    /// The host's store failed or refused the operation.
    Host {
        /// The key involved; `None` for [`keys`].
        key: Option<String>,
        /// The host's explanation.
        message: String,
    },
    /// The stored bytes are not JSON of the requested type.
    Decode {
        /// The key that was read.
        key: String,
        /// What serde_json found wrong.
        source: serde_json::Error,
    },
    /// The value could not be encoded as JSON (e.g. a map with non-string keys).
    Encode {
        /// The key that was to be written.
        key: String,
        /// What serde_json found wrong.
        source: serde_json::Error,
    },
}

impl StateError {
    fn host(key: Option<&str>, message: String) -> Self {
        StateError::Host { key: key.map(str::to_owned), message }
    }
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::Host { key: Some(key), message } => write!(f, "state `{key}`: {message}"),
            StateError::Host { key: None, message } => write!(f, "state keys: {message}"),
            StateError::Decode { key, .. } => {
                write!(f, "state `{key}`: stored value does not decode as the requested type")
            }
            StateError::Encode { key, .. } => write!(f, "state `{key}`: value does not encode"),
        }
    }
}

impl Error for StateError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            StateError::Host { .. } => None,
            StateError::Decode { source, .. } | StateError::Encode { source, .. } => Some(source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::JobError;

    #[test]
    fn decode_error_names_key_and_cause() {
        let source = serde_json::from_slice::<u64>(b"\"x\"").unwrap_err();
        let err = StateError::Decode { key: "runs".into(), source };
        let job: JobError = err.into();
        assert!(job.is_retryable());
        assert!(job.message().starts_with("state `runs`: stored value does not decode"));
        assert!(job.message().contains("invalid type"), "{job}");
    }
}
