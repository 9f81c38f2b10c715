//! Hints where the host knows better than the guest (issue 15 point 8). A guest that opens
//! a path under no preopened dir sees only `No such file or directory` (WASI has nothing
//! else to say: the path does not exist in its world), while the host knows which dirs the
//! job was granted. When a failed run's reason or stderr names an absolute path outside
//! every grant next to a "not found" error, the host says which grant is missing.
//!
//! Text matching, on purpose: the guest's error is a string in any language (Rust's
//! `os error 44`, Python's `FileNotFoundError`, Go's `no such file or directory`), and a
//! wrong guess costs only a hint that does not apply.

use std::path::{Component, Path};

/// Phrases that mean "not found" in the languages the examples use.
const NOT_FOUND: [&str; 4] = ["no such file", "os error 44", "enoent", "filenotfounderror"];

/// The hint for the first absolute path in `text` that no grant covers, if `text` reports
/// a missing file. `granted` are the guest paths of the job's `[capabilities] dirs`.
pub(crate) fn ungranted_path(text: &str, granted: &[&str]) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    if !NOT_FOUND.iter().any(|phrase| lower.contains(phrase)) {
        return None;
    }
    let separators = |c: char| c.is_whitespace() || "'\"`()[]{},;".contains(c);
    text.split(separators)
        .map(|token| token.trim_end_matches([':', '.']))
        .filter(|token| token.starts_with('/') && token.len() > 1)
        .find(|path| !granted.iter().any(|dir| Path::new(path).starts_with(dir)))
        .map(|path| {
            let top = match Path::new(path).components().nth(1) {
                Some(Component::Normal(first)) => format!("/{}", first.to_string_lossy()),
                _ => path.to_string(),
            };
            let why = if granted.is_empty() { " (this job is granted no dirs)" } else { "" };
            format!(
                "{top} is not granted{why}: add it to [capabilities] dirs, e.g. \
                 dirs = [\"HOST_DIR:{top}\"] (read-only; \":rw\" to write)"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_path_outside_every_grant_gets_a_hint() {
        let rust = "fatal: write /out/report.txt: No such file or directory (os error 44)";
        assert_eq!(
            ungranted_path(rust, &["/data"]).as_deref(),
            Some(
                "/out is not granted: add it to [capabilities] dirs, e.g. dirs = [\"HOST_DIR:/out\"] (read-only; \":rw\" to write)"
            )
        );
        let python = "FileNotFoundError: [Errno 44] No such file or directory: '/out/x.csv'";
        assert_eq!(
            ungranted_path(python, &[]).as_deref(),
            Some(
                "/out is not granted (this job is granted no dirs): add it to [capabilities] \
                 dirs, e.g. dirs = [\"HOST_DIR:/out\"] (read-only; \":rw\" to write)"
            )
        );
    }

    #[test]
    fn granted_paths_and_other_errors_get_none() {
        let missing = "write /data/x: No such file or directory (os error 44)";
        assert_eq!(ungranted_path(missing, &["/data"]), None);
        assert_eq!(ungranted_path(missing, &["/"]), None);
        // A grant is a whole path component: /database is not under /data.
        assert!(ungranted_path("open /database/x: no such file", &["/data"]).is_some());
        assert_eq!(ungranted_path("write /out/x: permission denied", &[]), None);
        assert_eq!(ungranted_path("no such file: report.txt", &[]), None);
    }
}
