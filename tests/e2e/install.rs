//! O9: `scripts/install.sh` into a staging root (`--destdir`) lays out the service's tree
//! with a stripped binary that runs, completions and man pages; the systemd unit passes
//! `systemd-analyze verify`; completions and man pages name the subcommands.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use crate::util::{root, sandcron, tempdir};

fn install(dest: &Path, extra: &[&str]) -> Output {
    Command::new("bash")
        .arg(root().join("scripts/install.sh"))
        .arg("--binary")
        .arg(sandcron())
        .arg("--destdir")
        .arg(dest)
        .args(extra)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The section names of an ELF file (`readelf -S`).
fn sections(binary: &Path) -> String {
    text(&Command::new("readelf").arg("-S").arg("-W").arg(binary).output().unwrap().stdout)
}

#[test]
fn install_sh_stages_the_service_tree_and_its_unit_verifies() {
    let dest = tempdir();
    let stage = dest.path();
    let output = install(stage, &["--keep-debug"]);
    assert!(output.status.success(), "{}{}", text(&output.stdout), text(&output.stderr));
    for path in [
        "usr/local/bin/sandcron",
        "usr/lib/debug/usr/local/bin/sandcron.debug",
        "usr/local/share/bash-completion/completions/sandcron",
        "usr/local/share/zsh/site-functions/_sandcron",
        "usr/local/share/fish/vendor_completions.d/sandcron.fish",
        "usr/local/share/man/man1/sandcron.1",
        "usr/local/share/man/man1/sandcron-serve.1",
        "etc/sandcron/sandcron.toml",
        "etc/systemd/system/sandcron.service",
        "var/lib/sandcron/jobs",
        "var/lib/sandcron/cache",
    ] {
        assert!(stage.join(path).exists(), "{path} not staged");
    }
    let mode = |path: &str| stage.join(path).metadata().unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("etc/sandcron/sandcron.toml"), 0o640, "the config may hold the token");
    assert_eq!(mode("var/lib/sandcron"), 0o750);

    // The staged binary runs, without the line tables the release profile keeps (those
    // went to the .debug file it links to).
    let binary = stage.join("usr/local/bin/sandcron");
    let version = Command::new(&binary).arg("--version").output().unwrap();
    assert_eq!(text(&version.stdout).trim(), format!("sandcron {}", env!("CARGO_PKG_VERSION")));
    assert!(sections(sandcron()).contains(".debug_line"), "the release build has line tables");
    let stripped = sections(&binary);
    assert!(!stripped.contains(".debug_line") && stripped.contains(".gnu_debuglink"));
    let size = |path: &Path| path.metadata().unwrap().len();
    assert!(size(&binary) * 2 < size(sandcron()), "{} vs {}", size(&binary), size(sandcron()));

    // The unit: ExecStart is the installed binary; with it pointed at the staged copy,
    // systemd-analyze finds nothing to say, the man pages it names included.
    let unit = std::fs::read_to_string(stage.join("etc/systemd/system/sandcron.service")).unwrap();
    let exec = "ExecStart=/usr/local/bin/sandcron serve --config /etc/sandcron/sandcron.toml";
    assert!(unit.contains(exec), "{unit}");
    assert!(!unit.contains("\nMemoryDenyWriteExecute="), "wasmtime needs W+X pages");
    let check = tempdir();
    let copy = check.path().join("sandcron.service");
    let staged = format!("ExecStart={} ", binary.display());
    std::fs::write(&copy, unit.replace("ExecStart=/usr/local/bin/sandcron ", &staged)).unwrap();
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .env("MANPATH", stage.join("usr/local/share/man"))
        .output()
        .unwrap();
    let said = format!("{}{}", text(&verify.stdout), text(&verify.stderr));
    assert!(verify.status.success(), "{said}");
    assert!(!said.contains("sandcron.service"), "systemd-analyze has remarks:\n{said}");
    // And its hardening keeps systemd's exposure score at 2.0 ("OK") or below (1.5 now):
    // dropping a protection fails here.
    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=20"])
        .arg(&copy)
        .output()
        .unwrap();
    let report = text(&security.stdout);
    assert!(security.status.success(), "{report}{}", text(&security.stderr));

    // Again, with another prefix: the operator's config is kept, ExecStart follows.
    std::fs::write(stage.join("etc/sandcron/sandcron.toml"), "# mine\n").unwrap();
    let again = install(stage, &["--prefix", "/opt/sandcron"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(text(&again.stdout).contains("kept"), "{}", text(&again.stdout));
    let config = std::fs::read_to_string(stage.join("etc/sandcron/sandcron.toml")).unwrap();
    assert_eq!(config, "# mine\n");
    let unit = std::fs::read_to_string(stage.join("etc/systemd/system/sandcron.service")).unwrap();
    assert!(unit.contains("ExecStart=/opt/sandcron/bin/sandcron serve "), "{unit}");
    assert!(stage.join("opt/sandcron/bin/sandcron").is_file());

    let refused = install(stage, &["--prefix", "relative"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(text(&refused.stderr).contains("--prefix must be an absolute path"));
}

#[test]
fn completions_and_man_pages_name_the_subcommands() {
    let run = |args: &[&str]| Command::new(sandcron()).args(args).output().unwrap();
    for (shell, marker) in
        [("bash", "complete -F"), ("zsh", "#compdef sandcron"), ("fish", "complete -c sandcron")]
    {
        let output = run(&["completions", shell]);
        assert!(output.status.success(), "{}", text(&output.stderr));
        let script = text(&output.stdout);
        assert!(script.contains(marker), "{shell}: no {marker:?}");
        for verb in ["serve", "trigger", "backfill", "completions"] {
            assert!(script.contains(verb), "{shell}: {verb} missing");
        }
        assert!(script.contains("tls-cert") && script.contains("ca-cert"), "{shell}: flags");
    }
    assert_eq!(run(&["completions", "tcsh"]).status.code(), Some(2));

    let page = text(&run(&["man"]).stdout);
    assert!(page.starts_with(".ie") || page.contains(".TH sandcron 1"), "{page}");
    for verb in ["serve", "trigger", "pause", "resume", "backfill", "completions"] {
        assert!(page.contains(verb), "man page: {verb} missing");
    }
    let dir = tempdir();
    let pages = dir.path().join("man1");
    let wrote = run(&["man", "--dir", pages.to_str().unwrap()]);
    assert!(wrote.status.success(), "{}", text(&wrote.stderr));
    let serve = std::fs::read_to_string(pages.join("sandcron-serve.1")).unwrap();
    assert!(serve.contains("tls\\-cert") && serve.contains("insecure\\-http"), "{serve}");
}
