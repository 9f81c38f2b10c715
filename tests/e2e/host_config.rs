//! The host config file (`serve --config FILE`, `SANDCRON_CONFIG`): its keys are serve's
//! flags; the command line beats the environment, which beats the file (O9).

use std::ops::ControlFlow::{Break, Continue};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::host::{Host, Site, with_status};
use crate::util::{root, sandcron, sandcron_cmd, shared_cache, wait_until};

/// Starts `sandcron serve ARGS` with `env`, its log in the site's folder.
fn serve(site: &Site, name: &str, args: &[&str], env: &[(&str, &str)]) -> Host {
    let log = site.dir.path().join(format!("{name}.log"));
    let child = Command::new(sandcron())
        .arg("serve")
        .args(args)
        .env("SANDCRON_LOG", "info")
        .env_remove("SANDCRON_STORE")
        .env_remove("SANDCRON_CONFIG")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("serve starts");
    Host::adopt(child, log)
}

/// The config file of `site`, with these extra lines.
fn write_config(site: &Site, store: &Path, extra: &str) -> String {
    let path = site.dir.path().join("sandcron.toml");
    let text = format!(
        "jobs = {:?}\nstore = {:?}\ncache-dir = {:?}\napi = \"127.0.0.1:0\"\n{extra}",
        site.jobs(),
        store,
        shared_cache()
    );
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn serve_takes_flags_from_the_file_and_the_environment_and_command_line_override_it() {
    let site = Site::new();
    site.probe_job("tick", "every = \"1s\"\n");
    let dir = site.dir.path();
    let (file_db, env_db, cli_db) = (dir.join("file.db"), dir.join("env.db"), dir.join("cli.db"));
    let config = write_config(&site, &file_db, "workers = 2\n");

    // The file alone: its jobs folder and store are used.
    let mut host = serve(&site, "file", &["--config", &config], &[]);
    host.api_address();
    let runs = site_runs(&file_db, Duration::from_secs(30));
    assert!(!with_status(&runs, "succeeded").is_empty(), "{runs:?}\n{}", host.log_text());
    assert_eq!(host.stop(), 0);

    // SANDCRON_STORE beats the file's `store`; SANDCRON_CONFIG names the file.
    let env = [("SANDCRON_STORE", env_db.to_str().unwrap()), ("SANDCRON_CONFIG", &config)];
    let mut host = serve(&site, "env", &[], &env);
    host.api_address();
    assert!(env_db.exists(), "{}", host.log_text());
    assert_eq!(host.stop(), 0);

    // --store beats both.
    let mut host = serve(&site, "cli", &["--store", cli_db.to_str().unwrap()], &env);
    host.api_address();
    assert!(cli_db.exists(), "{}", host.log_text());
    assert_eq!(host.stop(), 0);
}

/// `sandcron runs tick --json` on `store`, polled until a run succeeded or `timeout`.
fn site_runs(store: &Path, timeout: Duration) -> Vec<serde_json::Value> {
    let succeeded = || {
        let (code, stdout, _) = sandcron_cmd(&[
            "runs".as_ref(),
            "tick".as_ref(),
            "--json".as_ref(),
            "--store".as_ref(),
            store.as_os_str(),
        ]);
        let runs: Vec<serde_json::Value> =
            if code == 0 { serde_json::from_str(&stdout).unwrap_or_default() } else { vec![] };
        if runs.iter().any(|r| r["status"] == "succeeded") { Break(runs) } else { Continue(runs) }
    };
    wait_until(timeout, succeeded).unwrap_or_else(|runs| runs)
}

#[test]
fn a_bad_config_file_stops_serve_naming_file_line_column_and_key() {
    let site = Site::new();
    let config = write_config(&site, &site.store(), "workers = 2\nworkres = 4\n");
    let (code, _, stderr) = sandcron_cmd(&["serve".as_ref(), "--config".as_ref(), config.as_ref()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(&format!("{config}:6:1: unknown key `workres`")), "{stderr}");

    let config = write_config(&site, &site.store(), "grace = 10\n");
    let (code, _, stderr) = sandcron_cmd(&["serve".as_ref(), "--config".as_ref(), config.as_ref()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(&format!("{config}:5:9: `grace`: invalid value '10'")), "{stderr}");

    let missing = site.dir.path().join("missing.toml");
    let (code, _, stderr) =
        sandcron_cmd(&["serve".as_ref(), "--config".as_ref(), missing.as_os_str()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("missing.toml: cannot read host config"), "{stderr}");
}

#[test]
fn the_documented_example_config_serves() {
    let site = Site::new();
    site.probe_job("tick", "every = \"1s\"\n");
    let example = std::fs::read_to_string(root().join("docs/sandcron.example.toml")).unwrap();
    let store = site.dir.path().join("example.db");
    let text = example
        .replace("\"/var/lib/sandcron/jobs\"", &format!("{:?}", site.jobs()))
        .replace("\"/var/lib/sandcron/sandcron.db\"", &format!("{store:?}"))
        .replace("\"/var/cache/sandcron\"", &format!("{:?}", shared_cache()))
        .replace("127.0.0.1:7070", "127.0.0.1:0");
    let config = site.dir.path().join("sandcron.toml");
    std::fs::write(&config, text).unwrap();
    let mut host = serve(&site, "example", &["--config", config.to_str().unwrap()], &[]);
    host.api_address();
    let runs = site_runs(&store, Duration::from_secs(30));
    assert!(!with_status(&runs, "succeeded").is_empty(), "{runs:?}\n{}", host.log_text());
    assert_eq!(host.stop(), 0);
}
