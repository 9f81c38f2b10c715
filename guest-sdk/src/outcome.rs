//! What a run reports back: [`Output`] on success, [`JobError`] on failure.
//!
//! `JobError` deliberately does not implement `std::error::Error`: that is what lets it
//! take a blanket `From<E: Error>`, so `?` works on any error (as with `anyhow`), mapping
//! it to a retryable failure. Decide `Fatal` explicitly, with [`JobError::fatal`].

use std::error::Error;
use std::fmt;

/// A successful run's report: a short human-readable summary, recorded (capped) with the
/// run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    summary: String,
}

impl Output {
    /// An output with this summary.
    pub fn new(summary: impl Into<String>) -> Self {
        Output { summary: summary.into() }
    }

    /// The summary text.
    pub fn summary(&self) -> &str {
        &self.summary
    }

    pub(crate) fn into_summary(self) -> String {
        self.summary
    }
}

impl From<&str> for Output {
    fn from(summary: &str) -> Self {
        Output::new(summary)
    }
}

impl From<String> for Output {
    fn from(summary: String) -> Self {
        Output::new(summary)
    }
}

/// How a run failed, from the job's own point of view.
///
/// `?` converts any `std::error::Error` into [`JobError::Retryable`], with the error's
/// source chain in the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    /// A transient failure: the host retries the slot under the job's retry policy.
    Retryable(String),
    /// A permanent failure: the host does not retry this slot.
    Fatal(String),
}

impl JobError {
    /// A transient failure, worth retrying. Accepts a message or any displayable error,
    /// so `.map_err(JobError::retryable)` works.
    pub fn retryable(msg: impl fmt::Display) -> Self {
        JobError::Retryable(msg.to_string())
    }

    /// A permanent failure: retrying the slot would not help. Accepts a message or any
    /// displayable error, so `.map_err(JobError::fatal)` works.
    pub fn fatal(msg: impl fmt::Display) -> Self {
        JobError::Fatal(msg.to_string())
    }

    /// Whether the host will retry the slot.
    pub fn is_retryable(&self) -> bool {
        matches!(self, JobError::Retryable(_))
    }

    /// The message, without its kind.
    pub fn message(&self) -> &str {
        match self {
            JobError::Retryable(msg) | JobError::Fatal(msg) => msg,
        }
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.is_retryable() { "retryable" } else { "fatal" };
        write!(f, "{kind}: {}", self.message())
    }
}

impl<E: Error> From<E> for JobError {
    fn from(err: E) -> Self {
        let mut msg = err.to_string();
        let mut source = err.source();
        while let Some(cause) = source {
            msg.push_str(": ");
            msg.push_str(&cause.to_string());
            source = cause.source();
        }
        JobError::Retryable(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("upload failed")
        }
    }

    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    fn fails() -> Result<(), JobError> {
        Err(Outer(std::io::Error::other("connection reset")))?;
        Ok(())
    }

    #[test]
    fn question_mark_gives_retryable_with_chain() {
        assert_eq!(fails(), Err(JobError::Retryable("upload failed: connection reset".into())));
    }

    #[test]
    fn constructors_and_display() {
        let err = "x".parse::<u32>().map_err(JobError::fatal).unwrap_err();
        assert!(!err.is_retryable());
        assert_eq!(err.to_string(), "fatal: invalid digit found in string");
        assert_eq!(JobError::retryable("later").message(), "later");
    }

    #[test]
    fn output_from_strings() {
        assert_eq!(Output::from("a").summary(), "a");
        assert_eq!(Output::from(String::from("b")), Output::new("b"));
    }
}
