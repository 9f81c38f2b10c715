//! Secrets masked out of everything a run leaves behind (M8).
//!
//! A guest that prints a secret it was given (on purpose or in a stack trace) must not put
//! it into the store, the API or the dashboard. The runtime applies [`SecretMask`] to the
//! report once, at the end of the run, before anyone else sees it: summary, stdout, log
//! messages and fields, and the failure reason. Longer values are masked first, so one
//! secret that contains another is masked whole.

use crate::config::Secret;
use crate::job::{RunOutcome, RunReport};

/// What replaces a secret's value.
pub(crate) const MASK: &str = "***";

/// The values to mask for one job.
pub(crate) struct SecretMask<'a> {
    values: Vec<&'a str>,
}

impl<'a> SecretMask<'a> {
    pub(crate) fn new(secrets: &'a [Secret]) -> Self {
        let mut values: Vec<&str> =
            secrets.iter().map(|s| s.value.expose()).filter(|v| !v.is_empty()).collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        SecretMask { values }
    }

    pub(crate) fn text(&self, text: &mut String) {
        for value in &self.values {
            if text.contains(value) {
                *text = text.replace(value, MASK);
            }
        }
    }

    /// Masks every text of the report that came from the guest.
    pub(crate) fn report(&self, report: &mut RunReport) {
        if self.values.is_empty() {
            return;
        }
        if let Some(summary) = &mut report.summary {
            self.text(summary);
        }
        self.text(&mut report.stdout);
        for line in &mut report.logs {
            self.text(&mut line.message);
            for (key, value) in &mut line.fields {
                self.text(key);
                self.text(value);
            }
        }
        match &mut report.outcome {
            RunOutcome::GuestError { message, .. }
            | RunOutcome::Trap { message }
            | RunOutcome::HostError { message } => self.text(message),
            RunOutcome::Succeeded | RunOutcome::Limit(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longer_secrets_are_masked_first_everywhere() {
        let secrets = [Secret::for_tests("A", "abc"), Secret::for_tests("B", "abcdef")];
        let mask = SecretMask::new(&secrets);
        let mut text = "token=abcdef short=abc".to_string();
        mask.text(&mut text);
        assert_eq!(text, "token=*** short=***");
    }
}
