//! Bad input (M7) gets a clear error naming the file and the reason, exit code 2, no panic.

use std::ffi::OsStr;
use std::path::Path;

use crate::util::{guest, sandcron_cmd, shared_cache, tempdir};

/// `sandcron run FILE` on bad input: exit 2 and an error that names the file.
fn run_rejects(wasm: &Path, expected: &str) {
    run_rejects_naming(wasm, wasm, expected);
}

/// As `run_rejects`, where the file at fault (`named`) is the manifest, not the wasm.
fn run_rejects_naming(wasm: &Path, named: &Path, expected: &str) {
    let (code, stdout, stderr) = sandcron_cmd(&[
        OsStr::new("run"),
        wasm.as_os_str(),
        OsStr::new("--cache-dir"),
        shared_cache().as_os_str(),
    ]);
    assert_eq!(code, 2, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stderr.contains(&*named.to_string_lossy()), "error must name the file: {stderr}");
    assert!(stderr.contains(expected), "expected {expected:?} in: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `sandcron validate FILE`: exit 2 and the expected problem on stdout.
fn validate_rejects(file: &Path, expected: &str) {
    let (code, stdout, stderr) = sandcron_cmd(&[OsStr::new("validate"), file.as_os_str()]);
    assert_eq!(code, 2, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains(expected), "expected {expected:?} in: {stdout}");
}

#[test]
fn random_bytes_are_not_wasm() {
    let dir = tempdir();
    let path = dir.path().join("noise.wasm");
    std::fs::write(
        &path,
        (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect::<Vec<_>>(),
    )
    .unwrap();
    run_rejects(&path, "not a WebAssembly file");
    validate_rejects(&path, "not a WebAssembly file");
}

#[test]
fn truncated_component_is_invalid() {
    let dir = tempdir();
    let path = dir.path().join("truncated.wasm");
    let bytes = std::fs::read(guest("probe")).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    run_rejects(&path, "invalid component");
}

#[test]
fn core_module_without_start_is_not_a_command() {
    let dir = tempdir();
    let path = dir.path().join("library.wasm");
    // (module (func (export "foo")))
    let module: &[u8] = &[
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // header
        0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type section: () -> ()
        0x03, 0x02, 0x01, 0x00, // function section
        0x07, 0x07, 0x01, 0x03, b'f', b'o', b'o', 0x00, 0x00, // export "foo"
        0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // code: empty body
    ];
    std::fs::write(&path, module).unwrap();
    run_rejects(
        &path,
        "core module is not a WASI command: it has no `_start` export (exports: foo)",
    );
}

#[test]
fn component_of_another_world_is_rejected_with_its_exports() {
    run_rejects(&guest("other-world"), "does not implement sandcron:job/job");
    validate_rejects(&guest("other-world"), "exports: greet");
}

#[test]
fn manifest_with_unknown_key_names_file_and_line() {
    let dir = tempdir();
    let wasm = dir.path().join("typo.wasm");
    std::fs::copy(guest("probe"), &wasm).unwrap();
    let manifest = dir.path().join("typo.toml");
    std::fs::write(&manifest, "every = \"1m\"\n[limits]\nmemroy = \"64MiB\"\n").unwrap();
    let expected = format!("{}:3:1: unknown field `memroy`", manifest.display());
    run_rejects_naming(&wasm, &manifest, &expected);
    validate_rejects(&manifest, &expected);
}

#[test]
fn manifest_with_bad_size_or_duration_names_file_and_line() {
    let dir = tempdir();
    let wasm = dir.path().join("sizes.wasm");
    std::fs::copy(guest("probe"), &wasm).unwrap();
    let manifest = dir.path().join("sizes.toml");
    std::fs::write(&manifest, "[limits]\nmemory = \"64XB\"\n").unwrap();
    run_rejects_naming(
        &wasm,
        &manifest,
        &format!("{}:2:10: invalid size \"64XB\"", manifest.display()),
    );
    std::fs::write(&manifest, "[limits]\nmemory = \"64MiB\"\ntimeout = \"soon\"\n").unwrap();
    run_rejects_naming(
        &wasm,
        &manifest,
        &format!("{}:3:11: invalid duration \"soon\"", manifest.display()),
    );
}

#[test]
fn an_allowed_host_without_a_scheme_is_rejected_with_the_expected_shape() {
    let dir = tempdir();
    let manifest = dir.path().join("net.toml");
    std::fs::write(&manifest, "[capabilities]\nallowed_hosts = [\"example.com\"]\n").unwrap();
    validate_rejects(
        &manifest,
        "net.toml:2:18: capabilities.allowed_hosts: invalid allowed_hosts entry \"example.com\": no scheme",
    );
}

#[test]
fn bad_flags_are_invalid_input() {
    let dir = tempdir();
    let missing = dir.path().join("missing");
    let (code, _, stderr) = sandcron_cmd(&[
        OsStr::new("run"),
        guest("probe").as_os_str(),
        OsStr::new("--dir"),
        OsStr::new(&format!("{}:/data", missing.display())),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(&*missing.to_string_lossy()), "{stderr}");
    let (code, _, stderr) = sandcron_cmd(&[
        OsStr::new("run"),
        guest("probe").as_os_str(),
        OsStr::new("--memory"),
        OsStr::new("lots"),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("invalid size \"lots\""), "{stderr}");
}
