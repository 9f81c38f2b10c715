//! Guest text cut to a cap: the run's summary and its failure reason.
//!
//! A guest decides how long its summary, its error message or its panic text is;
//! the host keeps a prefix of each, cut on a char boundary and marked with how much was
//! dropped, so that a reader knows the text is not whole. The runtime cuts after it masks
//! secrets, so a cut can never leave a secret's prefix behind.

use crate::job::RunOutcome;

/// Bytes of a failure's message kept in its reason (`fatal: …`, `trap: panic: …`,
/// `host error: …`). A fixed size, not the job's output limit: a reason is one line in
/// tables, in `GET /v1/jobs` (every job's last reason, polled by the dashboard every 3 s),
/// in `sandcron jobs` and in the host's own log line for each finished run, where a
/// 20 MB message once made each of those 20 MB. 4 KiB holds any real error chain or panic
/// message with its location.
pub(crate) const REASON_CAP: usize = 4 << 10;

/// `text` cut to at most `cap` bytes (on a char boundary) plus a marker saying how many
/// bytes were dropped; `text` itself when it fits. The kept prefix is copied out, so a
/// huge text's allocation is not kept alive by its prefix.
pub(crate) fn cap_text(text: String, cap: usize) -> String {
    if text.len() <= cap { text } else { cap_str(&text, cap) }
}

/// [`cap_text`] for borrowed text: copies only what is kept.
pub(crate) fn cap_str(text: &str, cap: usize) -> String {
    if text.len() <= cap {
        return text.to_owned();
    }
    let cut = text.floor_char_boundary(cap);
    let marker = format!("… [{} bytes truncated]", text.len() - cut);
    let mut capped = String::with_capacity(cut + marker.len());
    capped.push_str(&text[..cut]);
    capped.push_str(&marker);
    capped
}

/// Cuts a failed outcome's message (the guest's error, a trap's panic text, a host error
/// with the guest's backtrace) to [`REASON_CAP`].
pub(crate) fn cap_reason(outcome: &mut RunOutcome) {
    match outcome {
        RunOutcome::GuestError { message, .. }
        | RunOutcome::Trap { message }
        | RunOutcome::HostError { message } => {
            *message = cap_text(std::mem::take(message), REASON_CAP);
        }
        RunOutcome::Succeeded | RunOutcome::Limit(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_text_respects_char_boundaries() {
        assert_eq!(cap_text("héllo".into(), 2), "h… [5 bytes truncated]");
        assert_eq!(cap_text("ok".into(), 10), "ok");
        assert_eq!(cap_text("€€".into(), 4), "€… [3 bytes truncated]");
    }

    #[test]
    fn a_capped_text_lets_go_of_the_long_one() {
        let capped = cap_text("x".repeat(1 << 20), 10);
        assert_eq!(capped, "xxxxxxxxxx… [1048566 bytes truncated]");
        assert!(capped.capacity() < 64, "capacity {}", capped.capacity());
    }

    #[test]
    fn every_failure_message_is_capped() {
        let long = || "é".repeat(REASON_CAP);
        let mut outcomes = [
            RunOutcome::GuestError { retryable: false, message: long() },
            RunOutcome::Trap { message: long() },
            RunOutcome::HostError { message: long() },
        ];
        for outcome in &mut outcomes {
            cap_reason(outcome);
            let reason = outcome.reason();
            assert!(reason.len() < REASON_CAP + 64, "{} bytes: {reason:.40}", reason.len());
            assert!(reason.ends_with(&format!("… [{} bytes truncated]", REASON_CAP)), "{reason}");
        }
    }
}
