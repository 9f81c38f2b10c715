//! Job manifests (`NAME.toml`): reading, validating, and the typed [`JobSpec`] they become.
//!
//! Two stages, as in ripgrep's flags: [`raw`] mirrors the file with serde and
//! `deny_unknown_fields`; [`spec`] validates once into types the rest of the host trusts.
//! Every error names the file, line and column ([`ManifestError`]).

mod allowlist;
mod error;
mod grants;
pub mod host_file;
mod notify;
mod raw;
mod secrets;
mod spec;
mod units;

use std::path::Path;

pub use crate::schedule::{DstFold, DstGap};
pub use allowlist::{AllowedHost, HostPattern, NetScheme, PortPattern, canonical, normalize_name};
pub use error::{HostFileError, ManifestError};
pub use grants::{Capabilities, DirGrant, HostLimits, Limits, NetLimits};
pub use notify::{EventKind, JobNotify, NotifySettings, Webhook, host_notify};
pub use raw::{Misfire, Overlap, RetentionOverride};
pub use secrets::{Secret, SecretSource, SecretValue};
pub use spec::{BreakerPolicy, JobSpec, RetryPolicy, Timing};
pub use units::{ByteSize, Span};

/// Reads and validates the manifest at `path` for the job called `name`.
pub fn load_manifest(
    path: &Path,
    name: &str,
    ceiling: &HostLimits,
) -> Result<JobSpec, ManifestError> {
    let source = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
        what: "manifest",
        path: path.to_path_buf(),
        source,
    })?;
    parse_manifest(&source, path, name, ceiling)
}

/// Validates manifest text; `path` is used for error messages and relative dir grants.
pub fn parse_manifest(
    source: &str,
    path: &Path,
    name: &str,
    ceiling: &HostLimits,
) -> Result<JobSpec, ManifestError> {
    let raw: raw::RawManifest =
        toml::from_str(source).map_err(|err| ManifestError::from_toml(path, source, &err))?;
    JobSpec::from_raw(name, raw, path, source, ceiling)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parse(text: &str) -> Result<JobSpec, ManifestError> {
        parse_manifest(text, Path::new("jobs/demo.toml"), "demo", &HostLimits::default())
    }

    #[test]
    fn empty_manifest_gets_safe_defaults() {
        let spec = parse("").unwrap();
        assert_eq!(spec.limits, Limits::default());
        assert_eq!(spec.limits.memory, ByteSize(64 << 20));
        assert_eq!(spec.limits.timeout, Duration::from_secs(10));
        assert!(spec.capabilities.dirs.is_empty() && spec.capabilities.env.is_empty());
        assert_eq!(spec.timing.schedule, None);
    }

    #[test]
    fn full_manifest_is_typed() {
        let spec = parse(
            r#"
every = "30s"
phase = "5s"
overlap = "buffer-one"
[limits]
memory = "32MiB"
fuel = 1000
timeout = "2s"
[capabilities]
dirs = ["data:/data:rw", "/etc/ssl:/ssl"]
env = { MODE = "prod" }
[config]
greeting = "hi"
retries = 3
nested = { a = true }
"#,
        )
        .unwrap();
        let expected = crate::schedule::ScheduleSpec::new(
            crate::schedule::Trigger::Every {
                period: Duration::from_secs(30),
                phase: Duration::from_secs(5),
            },
            None,
            DstGap::default(),
            DstFold::default(),
        )
        .unwrap();
        assert_eq!(spec.timing.schedule, Some(expected));
        assert_eq!(spec.timing.overlap, Overlap::BufferOne);
        assert_eq!(spec.limits.memory, ByteSize(32 << 20));
        assert_eq!(spec.limits.fuel, Some(1000));
        assert_eq!(spec.capabilities.dirs[0].host, Path::new("jobs/data"));
        assert!(spec.capabilities.dirs[0].writable);
        assert_eq!(spec.capabilities.dirs[1].guest, "/ssl");
        assert!(!spec.capabilities.dirs[1].writable);
        assert_eq!(spec.config["greeting"], "hi");
        assert_eq!(spec.config["retries"], "3");
        assert_eq!(spec.config["nested"], r#"{"a":true}"#);
    }

    #[test]
    fn a_key_nested_too_deep_is_reported_at_its_line() {
        let text =
            format!("every = \"1m\"\n\n# x.y.z\nk = \"a.b\"\nkey{} = 1\n", ".a".repeat(100_000));
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.starts_with("jobs/demo.toml:5:1: nested too deep: 100000 levels"), "{err}");
        // Arrays nested too deep: the parser itself says where.
        let text = format!("every = \"1m\"\nkey = {}{}\n", "[".repeat(5_000), "]".repeat(5_000));
        assert!(parse(&text).unwrap_err().to_string().starts_with("jobs/demo.toml:2:"));
    }

    #[test]
    fn unknown_key_names_file_and_line() {
        let err = parse("every = \"1m\"\n[limits]\nmemroy = \"64MiB\"\n").unwrap_err().to_string();
        assert!(err.starts_with("jobs/demo.toml:3:1: unknown field `memroy`"), "{err}");
    }

    #[test]
    fn bad_size_and_duration_name_their_line() {
        let err = parse("[limits]\n\nmemory = \"64XB\"\n").unwrap_err().to_string();
        assert!(err.starts_with("jobs/demo.toml:3:"), "{err}");
        assert!(err.contains("unknown unit \"XB\""), "{err}");
        let err = parse("[limits]\ntimeout = \"soon\"\n").unwrap_err().to_string();
        assert!(err.starts_with("jobs/demo.toml:2:") && err.contains("invalid duration"), "{err}");
    }

    #[test]
    fn bad_cron_and_zone_name_file_and_line() {
        let err = parse("\nschedule = \"0 25 * * *\"\n").unwrap_err().to_string();
        assert!(err.starts_with("jobs/demo.toml:2:12: cron field 'hour': 25"), "{err}");
        let err =
            parse("schedule = \"@daily\"\ntimezone = \"Mars/Olympus\"\n").unwrap_err().to_string();
        assert!(err.starts_with("jobs/demo.toml:2:12:") && err.contains("Mars/Olympus"), "{err}");
        let err = parse("schedule = \"0 0 30 2 *\"\n").unwrap_err().to_string();
        assert!(err.contains("never fires"), "{err}");
    }

    #[test]
    fn a_mistyped_timezone_is_reported_at_its_line_with_a_suggestion() {
        let err = parse("schedule = \"0 3 * * *\"\n\ntimezone = \"Europe/Pariss\"\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "jobs/demo.toml:3:12: unknown timezone 'Europe/Pariss'; did you mean 'Europe/Paris'?"
        );
    }

    #[test]
    fn a_timezone_beside_every_is_a_warning_at_its_line() {
        let spec = parse("every = \"1d\"\ntimezone = \"Europe/Paris\"\n").unwrap();
        assert_eq!(spec.warnings.len(), 1, "{:?}", spec.warnings);
        assert!(
            spec.warnings[0]
                .starts_with("jobs/demo.toml:2:12: `timezone` has no effect on `every`"),
            "{:?}",
            spec.warnings
        );
        let spec = parse("schedule = \"0 3 * * *\"\ntimezone = \"Europe/Paris\"\n").unwrap();
        assert_eq!(spec.warnings, Vec::<String>::new());
    }

    #[test]
    fn two_triggers_are_rejected_at_the_second() {
        let err = parse("schedule = \"* * * * *\"\nevery = \"1m\"\n").unwrap_err().to_string();
        assert!(
            err.starts_with("jobs/demo.toml:2:") && err.contains("exactly one trigger"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_allowed_host_names_file_line_and_column() {
        let err = parse("[capabilities]\nallowed_hosts = [\n  \"https://ok.example.com\",\n  \"example.com\",\n]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("jobs/demo.toml:4:3: capabilities.allowed_hosts: invalid"),
            "{err}"
        );
        assert!(err.contains("no scheme"), "{err}");
    }

    #[test]
    fn network_grant_and_limits_are_typed() {
        let spec = parse(
            "[capabilities]\nallowed_hosts = [\"https://*.example.com\", \"tcp://10.0.0.0/8:5432\"]\n\
             [limits]\nbytes_in = \"1MiB\"\nrequests = 5\nconnect_timeout = \"2s\"\n",
        )
        .unwrap();
        let hosts = &spec.capabilities.allowed_hosts;
        assert_eq!(hosts.len(), 2);
        assert_eq!(hosts[0].host, HostPattern::Subdomains("example.com".into()));
        assert_eq!(hosts[1].scheme, NetScheme::Tcp);
        assert_eq!(spec.limits.net.bytes_in, ByteSize(1 << 20));
        assert_eq!(spec.limits.net.requests, 5);
        assert_eq!(spec.limits.net.connect_timeout, Duration::from_secs(2));
        assert_eq!(spec.limits.net.bytes_out, NetLimits::default().bytes_out);
    }

    #[test]
    fn secrets_are_read_at_load_and_errors_name_the_source() {
        let err = parse("[secrets]\nTOKEN = { env = \"SANDCRON_TEST_UNSET_SECRET_VAR\" }\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("jobs/demo.toml:2:"), "{err}");
        assert!(err.contains("SANDCRON_TEST_UNSET_SECRET_VAR is not set"), "{err}");
        let err =
            parse("[secrets]\nTOKEN = { env = \"A\", file = \"b\" }\n").unwrap_err().to_string();
        assert!(err.contains("exactly one source"), "{err}");
        let err = parse("[secrets]\nTOKEN = { path = \"b\" }\n").unwrap_err().to_string();
        assert!(err.contains("unknown field `path`"), "{err}");
        // PATH is set in every test environment.
        let spec = parse("[secrets]\nMY_PATH = { env = \"PATH\" }\n").unwrap();
        assert_eq!(spec.secrets[0].name, "MY_PATH");
        assert_eq!(spec.secrets[0].value.expose(), std::env::var("PATH").unwrap());
    }

    #[test]
    fn bad_dir_grant_is_explained() {
        let err = parse("[capabilities]\ndirs = [\"data\"]\n").unwrap_err().to_string();
        assert!(err.contains("expected HOST:GUEST"), "{err}");
        let err = parse("[capabilities]\ndirs = [\"data:rel\"]\n").unwrap_err().to_string();
        assert!(err.contains("must be absolute"), "{err}");
    }

    #[test]
    fn limits_above_the_ceiling_are_clamped_with_a_warning() {
        let spec = parse("[limits]\nmemory = \"64GiB\"\n").unwrap();
        assert_eq!(spec.limits.memory, HostLimits::default().memory);
        assert!(spec.warnings[0].contains("exceeds the host ceiling"), "{:?}", spec.warnings);
    }
}
