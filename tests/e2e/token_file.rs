//! O6, hardening issue 14 defect 9: `--token` shows in `ps`, so the token can come from a
//! private file (`--token-file` / `SANDCRON_TOKEN_FILE`) for `serve` and the control verbs;
//! a file others may read is refused with a message naming it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::api::assert_error;
use crate::host::Site;
use crate::http::request;
use crate::util::sandcron;

const TOKEN: &str = "file-token-7d41a9";

fn token_file(dir: &Path, mode: u32) -> PathBuf {
    let path = dir.join("api.token");
    std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

#[test]
fn a_token_file_guards_the_api_and_stays_out_of_the_command_line() {
    let site = Site::new();
    site.probe_job("probe", "every = \"1h\"\n");
    let file = token_file(site.dir.path(), 0o600);
    let host = site.start(&["--token-file", file.to_str().unwrap()]);
    let api = host.api();

    let cmdline = std::fs::read(format!("/proc/{}/cmdline", host.pid())).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains(TOKEN), "the token is in `ps`");
    assert_error(&request(&api, "GET", "/v1/jobs", None, None, &[]), 401, "unauthorized");
    assert_eq!(request(&api, "GET", "/v1/jobs", None, Some(TOKEN), &[]).status, 200);

    // The control verbs read the same file, by flag or by environment.
    let pause = Command::new(sandcron())
        .args(["pause", "probe", "--api", &api, "--token-file"])
        .arg(&file)
        .env_remove("SANDCRON_TOKEN")
        .output()
        .unwrap();
    assert!(pause.status.success(), "{}", String::from_utf8_lossy(&pause.stderr));
    let resume = Command::new(sandcron())
        .args(["resume", "probe", "--api", &api])
        .env_remove("SANDCRON_TOKEN")
        .env("SANDCRON_TOKEN_FILE", &file)
        .output()
        .unwrap();
    assert!(resume.status.success(), "{}", String::from_utf8_lossy(&resume.stderr));
    let jobs = request(&api, "GET", "/v1/jobs", None, Some(TOKEN), &[]);
    assert_eq!(jobs.body["jobs"][0]["paused"], false, "{jobs:?}");
}

#[test]
fn a_token_file_others_may_read_is_refused_naming_it() {
    let site = Site::new();
    let file = token_file(site.dir.path(), 0o644);
    let output = Command::new(sandcron())
        .args(["serve", "--jobs"])
        .arg(site.jobs())
        .arg("--store")
        .arg(site.store())
        .args(["--api", "0.0.0.0:0", "--token-file"])
        .arg(&file)
        .env_remove("SANDCRON_TOKEN")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&file.display().to_string())
            && stderr.contains("mode 644")
            && stderr.contains("chmod 600"),
        "{stderr}"
    );
    assert!(!site.store().exists(), "nothing started");

    // A verb says the same before sending anything.
    let verb = Command::new(sandcron())
        .args(["pause", "probe", "--api", "http://127.0.0.1:9", "--token-file"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(verb.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&verb.stderr).contains("chmod 600"));
}
