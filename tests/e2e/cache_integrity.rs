//! The compile cache only loads code it sealed (hardening issue, high): a tampered entry,
//! or one job's entry under another job's name, is recompiled with a warning instead of
//! being run; `serve` survives it. And the low-severity pair from the same issue: a cache
//! folder others can write is refused (and left as it was), and an oversize `.wasm` is
//! turned away from its metadata, before it is read.

use std::ffi::OsStr;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::host::{Site, with_status};
use crate::util::{Run, guest, parse, sandcron, sandcron_cmd, tempdir};

/// `sandcron run WASM --json` with its own state and cache folders.
fn run_cached(wasm: &Path, dir: &Path, cache: &Path) -> Run {
    let output = Command::new(sandcron())
        .arg("run")
        .arg(wasm)
        .arg("--json")
        .arg("--state")
        .arg(dir.join("state.db"))
        .arg("--cache-dir")
        .arg(cache)
        .output()
        .expect("sandcron runs");
    parse(output)
}

fn cache_status(run: &Run) -> (&str, &str) {
    let load = &run.json["load"];
    (load["cache"].as_str().unwrap_or_default(), load["rejected"].as_str().unwrap_or_default())
}

/// The one component entry in `cache` for the job whose version is `version`.
fn entry(cache: &Path, version: &Value) -> PathBuf {
    let version = version.as_str().expect("a version");
    let found: Vec<PathBuf> = std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(version) && name.ends_with(".cwasm")
        })
        .collect();
    assert_eq!(found.len(), 1, "one entry for {version} in {}: {found:?}", cache.display());
    found.into_iter().next().unwrap()
}

/// Where `.text` is in an ELF64 little-endian file (wasmtime's precompiled format).
fn text_section(elf: &[u8]) -> Range<usize> {
    let u16_at = |at: usize| u16::from_le_bytes(elf[at..at + 2].try_into().unwrap()) as usize;
    let u32_at = |at: usize| u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) as usize;
    let u64_at = |at: usize| u64::from_le_bytes(elf[at..at + 8].try_into().unwrap()) as usize;
    assert_eq!(&elf[..4], b"\x7fELF", "a precompiled entry is an ELF file");
    let (shoff, shentsize, shnum, shstrndx) =
        (u64_at(0x28), u16_at(0x3a), u16_at(0x3c), u16_at(0x3e));
    let header = |i: usize| shoff + i * shentsize;
    let names = u64_at(header(shstrndx) + 0x18);
    (0..shnum)
        .find_map(|i| {
            let name = names + u32_at(header(i));
            (elf[name..].starts_with(b".text\0")).then(|| {
                let (offset, size) = (u64_at(header(i) + 0x18), u64_at(header(i) + 0x20));
                offset..offset + size
            })
        })
        .expect("a .text section")
}

/// XORs `range` of the file at `path` with 0xff.
fn flip(path: &Path, range: Range<usize>) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[range].iter_mut().for_each(|b| *b ^= 0xff);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn flipped_bytes_in_a_cached_entry_are_recompiled_with_a_warning_and_replaced() {
    let (dir, cache) = (tempdir(), tempdir());
    let probe = guest("probe");
    let first = run_cached(&probe, dir.path(), cache.path());
    assert_eq!(
        (first.outcome(), cache_status(&first).0),
        ("succeeded", "miss"),
        "{}",
        first.stderr
    );
    let path = entry(cache.path(), &first.json["version"]);
    let text = text_section(&std::fs::read(&path).unwrap());
    let middle = (text.start + text.end) / 2;
    flip(&path, middle..middle + 16);
    let tampered = std::fs::read(&path).unwrap();

    let second = run_cached(&probe, dir.path(), cache.path());
    assert_eq!((second.code, second.outcome(), second.summary()), (0, "succeeded", "ok"));
    assert_eq!(cache_status(&second), ("recompiled", "digest-mismatch"), "{}", second.json);
    assert!(
        second.stderr.contains("cache entry rejected") && second.stderr.contains("recompiling"),
        "a warning on stderr: {}",
        second.stderr
    );
    assert_ne!(std::fs::read(&path).unwrap(), tampered, "the entry was replaced");
    let third = run_cached(&probe, dir.path(), cache.path());
    assert_eq!((third.outcome(), cache_status(&third).0), ("succeeded", "hit"));
}

#[test]
fn another_jobs_entry_copied_over_a_jobs_name_does_not_run_the_other_jobs_code() {
    let (dir, cache) = (tempdir(), tempdir());
    let (hello, probe) = (guest("hello-rust"), guest("probe"));
    let a = run_cached(&hello, dir.path(), cache.path());
    let b = run_cached(&probe, dir.path(), cache.path());
    assert_eq!((a.outcome(), b.outcome(), b.summary()), ("succeeded", "succeeded", "ok"));
    let (from, to) =
        (entry(cache.path(), &a.json["version"]), entry(cache.path(), &b.json["version"]));
    // The whole entry: the code and whatever sits beside it under the same name.
    for sibling in std::fs::read_dir(cache.path()).unwrap().map(|e| e.unwrap().path()) {
        let name = sibling.file_name().unwrap().to_string_lossy().into_owned();
        let from_name = from.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(suffix) = name.strip_prefix(&from_name) {
            let target = format!("{}{suffix}", to.display());
            std::fs::copy(&sibling, target).unwrap();
        }
    }
    assert_eq!(std::fs::read(&from).unwrap(), std::fs::read(&to).unwrap());

    let again = run_cached(&probe, dir.path(), cache.path());
    assert_eq!(
        (again.outcome(), again.summary()),
        ("succeeded", "ok"),
        "the probe ran the probe's code, not hello-rust's: {}",
        again.json
    );
    assert_eq!(cache_status(&again), ("recompiled", "digest-mismatch"), "{}", again.json);
}

#[cfg(unix)]
#[test]
fn a_cache_folder_others_can_write_is_refused_and_left_as_it_was() {
    use std::os::unix::fs::PermissionsExt;
    let shared = tempdir();
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let (code, stdout, stderr) = sandcron_cmd(&[
        OsStr::new("run"),
        guest("probe").as_os_str(),
        OsStr::new("--cache-dir"),
        shared.path().as_os_str(),
    ]);
    assert_eq!(code, 2, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains(&*shared.path().to_string_lossy()), "names the folder: {stderr}");
    assert!(stderr.contains("writable by other users (mode 1777)"), "{stderr}");
    let mode = std::fs::metadata(shared.path()).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o1777, "the folder was not chmod'ed");
    assert_eq!(std::fs::read_dir(shared.path()).unwrap().count(), 0, "nothing written there");
}

/// Runs `sandcron ARGS` and returns (exit code, stderr, peak RSS in bytes, wall time).
/// The child is reaped by `wait4` (for its rusage), which clippy cannot see.
#[allow(unsafe_code, clippy::zombie_processes)]
fn run_measured(args: &[&OsStr]) -> (i32, String, u64, Duration) {
    let bin = sandcron(); // built (once) before the clock starts
    let started = Instant::now();
    let mut child = Command::new(bin)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sandcron starts");
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let (mut status, mut usage) = (0, unsafe { std::mem::zeroed::<libc::rusage>() });
    // SAFETY: waits for our own child by pid, writing into the two locals above.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t, "wait4 failed");
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    (code, stderr, usage.ru_maxrss as u64 * 1024, started.elapsed())
}

#[test]
fn an_oversize_sparse_wasm_is_refused_quickly_without_being_read() {
    let (dir, cache) = (tempdir(), tempdir());
    let big = dir.path().join("big.wasm");
    // As `truncate -s 2G`: 2 GiB that take no disk, and would take 2 GiB of memory to read.
    std::fs::File::create(&big).unwrap().set_len(2 << 30).unwrap();
    let (code, stderr, rss, took) = run_measured(&[
        OsStr::new("run"),
        big.as_os_str(),
        OsStr::new("--cache-dir"),
        cache.path().as_os_str(),
    ]);
    assert_eq!(code, 2, "{stderr}");
    let expected = format!(
        "{}: 2147483648 bytes is more than a job may be (268435456 bytes, 256 MiB)",
        big.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    // A spawned child's ru_maxrss starts from the test process's own RSS (the child shares
    // it until exec), so compare with a command that reads nothing, spawned the same way.
    let (_, _, floor, _) = run_measured(&[OsStr::new("--help")]);
    assert!(rss < floor + (64 << 20), "peak RSS {rss} bytes (floor {floor}): the file was read");
    assert!(took < Duration::from_secs(5), "took {took:?}");

    let (code, stdout, _) = sandcron_cmd(&[OsStr::new("validate"), big.as_os_str()]);
    assert_eq!(code, 2, "{stdout}");
    assert!(stdout.contains("2147483648 bytes is more than a job may be"), "{stdout}");
}

#[test]
fn serve_survives_a_tampered_entry_recompiles_and_runs_the_job() {
    let site = Site::new();
    let cache = tempdir();
    site.probe_job("tampered", "every = \"1s\"\n");
    let wasm = site.jobs().join("tampered.wasm");
    let filled = run_cached(&wasm, site.dir.path(), cache.path());
    assert_eq!(filled.outcome(), "succeeded", "{}", filled.stderr);
    // All of .text: whichever function runs first would be garbage (SIGILL/SIGSEGV).
    let path = entry(cache.path(), &filled.json["version"]);
    flip(&path, text_section(&std::fs::read(&path).unwrap()));

    let mut host = site.start_with_cache(cache.path(), &[]);
    let runs = site
        .wait_runs("tampered", Duration::from_secs(20), |r| with_status(r, "succeeded").len() >= 2);
    let log = host.log_text();
    assert!(with_status(&runs, "succeeded").len() >= 2, "{runs:?}\n{log}");
    assert!(log.contains("cache entry rejected"), "a warning in the host's log:\n{log}");
    assert_eq!(host.stop(), 0, "the host was still alive and stopped cleanly:\n{log}");
}
