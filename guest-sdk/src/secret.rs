//! [`secret`]: credentials the manifest hands to a job.
//!
//! A manifest's `[secrets]` table names values the host reads when it loads the job
//! (`API_TOKEN = { env = "HOST_VAR" }` or `{ file = "/path" }`), so the token itself is
//! never written in the manifest. Each reaches the run as an environment variable of that
//! name, and nowhere else; the host masks the value in the run's kept output. A function of
//! its own, rather than `std::env::var` in every job, says what the job is reading and gives
//! the SDK one place to change should secrets ever travel another way.

/// The secret `name`; `None` when the manifest grants no such secret (or its value is not
/// UTF-8).
///
/// Keep the value out of logs, summaries and URLs: send it in a header.
pub fn secret(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_environment() {
        // PATH is set in any test environment; a name nobody sets is absent.
        assert_eq!(secret("PATH"), std::env::var("PATH").ok());
        assert_eq!(secret("SANDCRON_SURELY_UNSET_SECRET"), None);
    }
}
