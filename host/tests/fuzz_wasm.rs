//! Fuzz target: wasm bytes through [`Runtime::load`] and [`Runtime::execute`].
//!
//! Inputs: `wasm-smith` core modules and components, byte edits of small hand-built WASI
//! commands (loop, grow, trap, exit, return) and of the built guests
//! (`scripts/build-guests.sh`; skipped with a note when they are not built), and raw bytes
//! behind a wasm header. Property: the host
//! never crashes; every load either returns a [`LoadError`] or the run ends — within a
//! wall-clock bound — in one [`RunOutcome`] that is not a host error (nothing here is the
//! host's fault, so a host error is a guest's doing misfiled). Limits are small: 16 MiB,
//! 200 ms, 5M fuel.
//!
//! Long campaign: `SANDCRON_FUZZ_CASES=10000 cargo test --release -p sandcron --test
//! fuzz_wasm -- --nocapture` (compiling is the cost: about ten cases a second).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use arbitrary::Unstructured;
use proptest::prelude::*;
use sandcron::config::{ByteSize, JobSpec};
use sandcron::job::{RunOutcome, RunRequest};
use sandcron::runtime::{Runtime, RuntimeConfig};

use common::{Tally, cases, kind_of, runner};

const TIMEOUT: Duration = Duration::from_millis(200);
/// How long a run may take in all before the property calls it hung: the timeout plus
/// instantiation and teardown.
const HUNG: Duration = Duration::from_secs(10);

/// A wasm section: id, size, contents.
fn section(id: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![id];
    leb(&mut out, contents.len() as u32);
    out.extend_from_slice(contents);
    out
}

fn leb(out: &mut Vec<u8>, mut n: u32) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn name(out: &mut Vec<u8>, text: &str) {
    leb(out, text.len() as u32);
    out.extend_from_slice(text.as_bytes());
}

fn module(sections: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"\0asm\x01\0\0\0".to_vec();
    sections.iter().for_each(|s| out.extend_from_slice(s));
    out
}

/// Small WASI commands that reach execution: each is `_start` with one body (loop
/// forever, grow memory past the limit, trap, `proc_exit(3)`, return), importing
/// `proc_exit` and exporting its memory. wasm-smith's own modules rarely export a `_start`
/// (steering its exports needs a feature that would rebuild wasmtime), so these, edited,
/// are what runs.
fn commands() -> Vec<(String, Vec<u8>)> {
    let bodies: [(&str, &[u8]); 5] = [
        ("loop", &[0x03, 0x40, 0x0c, 0x00, 0x0b]),
        ("grow", &[0x41, 0x80, 0x02, 0x40, 0x00, 0x1a, 0x41, 0x80, 0x02, 0x40, 0x00, 0x1a]),
        ("trap", &[0x00]),
        ("exit", &[0x41, 0x03, 0x10, 0x00]),
        ("return", &[]),
    ];
    bodies.iter().map(|(what, code)| (format!("command-{what}"), command(code))).collect()
}

/// A WASI command whose `_start` (function 1; function 0 is the imported `proc_exit`) runs
/// `code`.
fn command(code: &[u8]) -> Vec<u8> {
    // Types: 0 = [] -> [] (`_start`), 1 = [i32] -> [] (`proc_exit`).
    wasi_command("proc_exit", &[2, 0x60, 0, 0, 0x60, 1, 0x7f, 0], code)
}

/// A WASI command whose `_start` calls `fd_write(1, iovs, 1, 0)` and drops the errno.
fn fd_write_command(iovs: u32) -> Vec<u8> {
    let mut code = vec![0x41, 1, 0x41]; // i32.const 1; i32.const iovs
    sleb(&mut code, iovs as i32);
    code.extend_from_slice(&[0x41, 1, 0x41, 0, 0x10, 0, 0x1a]);
    // Types: 0 = [] -> [] (`_start`), 1 = [i32 x4] -> [i32] (`fd_write`).
    wasi_command("fd_write", &[2, 0x60, 0, 0, 0x60, 4, 0x7f, 0x7f, 0x7f, 0x7f, 1, 0x7f], &code)
}

/// A command importing `wasi_snapshot_preview1.IMPORT` (function 0, type 1 of `types`),
/// exporting `_start` (function 1, type 0, no locals, running `code`) and a one-page
/// `memory`.
fn wasi_command(import: &str, types: &[u8], code: &[u8]) -> Vec<u8> {
    let mut imports = vec![1];
    name(&mut imports, "wasi_snapshot_preview1");
    name(&mut imports, import);
    imports.extend_from_slice(&[0, 1]);
    let mut exports = vec![2];
    name(&mut exports, "_start");
    exports.extend_from_slice(&[0, 1]);
    name(&mut exports, "memory");
    exports.extend_from_slice(&[2, 0]);
    let mut body = vec![0]; // no locals
    body.extend_from_slice(code);
    body.push(0x0b);
    let mut code_section = vec![1];
    leb(&mut code_section, body.len() as u32);
    code_section.extend_from_slice(&body);
    module(&[
        section(1, types),
        section(2, &imports),
        section(3, &[1, 0]),
        section(5, &[1, 0, 1]),
        section(7, &exports),
        section(10, &code_section),
    ])
}

/// Signed LEB128, as `i32.const` takes it.
fn sleb(out: &mut Vec<u8>, mut n: i32) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if (n == 0 && byte & 0x40 == 0) || (n == -1 && byte & 0x40 != 0) {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn smith_config(u: &mut Unstructured) -> wasm_smith::Config {
    wasm_smith::Config {
        max_funcs: 12,
        max_instructions: 120,
        max_memory32_bytes: 32 << 20,
        max_data_segments: 4,
        max_imports: 8,
        max_exports: 8,
        // Features the product engine may refuse are still allowed sometimes: a refusal
        // is a clean load error, which is part of the property.
        threads_enabled: u.ratio(1, 8).unwrap_or(false),
        gc_enabled: u.ratio(1, 8).unwrap_or(false),
        exceptions_enabled: u.ratio(1, 8).unwrap_or(false),
        memory64_enabled: u.ratio(1, 8).unwrap_or(false),
        simd_enabled: u.arbitrary().unwrap_or(false),
        ..wasm_smith::Config::default()
    }
}

/// What one case feeds the runtime.
#[derive(Debug, Clone)]
enum Input {
    /// Seed bytes for wasm-smith (its `Unstructured`).
    SmithModule(Vec<u8>),
    SmithComponent(Vec<u8>),
    /// A built guest or one of [`commands`] (by index) with byte edits (maybe none).
    Guest(usize, Vec<(u8, usize, u8)>),
    /// A wasm header (module or component) and random bytes.
    Raw(bool, Vec<u8>),
}

fn guests() -> Vec<(String, Vec<u8>)> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::repo_root().join("target"));
    let built = ["hello-rust", "other-world", "command-rust", "command-rust-p1", "http-rust"]
        .iter()
        .filter_map(|n| {
            let bytes = std::fs::read(target.join("guests").join(format!("{n}.wasm"))).ok()?;
            Some((n.to_string(), bytes))
        });
    commands().into_iter().chain(built).collect()
}

/// Byte edits: set, flip a bit, insert, delete a run, write an interesting LEB value.
fn edit_bytes(seed: &[u8], edits: &[(u8, usize, u8)]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for &(op, at, value) in edits {
        // Past the 8-byte header, so most cases get as far as the parser's sections.
        let pos = 8 + at % (bytes.len().saturating_sub(8) + 1);
        match op % 5 {
            0 if pos < bytes.len() => bytes[pos] = value,
            1 if pos < bytes.len() => bytes[pos] ^= 1 << (value % 8),
            2 => bytes.insert(pos.min(bytes.len()), value),
            3 if pos < bytes.len() => {
                let end = (pos + 1 + value as usize % 16).min(bytes.len());
                bytes.drain(pos..end);
            }
            4 => {
                let lebs: [&[u8]; 4] = [
                    &[0xff, 0xff, 0xff, 0xff, 0x0f],
                    &[0x80, 0x80, 0x80, 0x80, 0x10],
                    &[0],
                    &[0x7f],
                ];
                let leb = lebs[value as usize % lebs.len()];
                let pos = pos.min(bytes.len());
                let end = (pos + leb.len()).min(bytes.len());
                bytes.splice(pos..end, leb.iter().copied());
            }
            _ => {}
        }
    }
    bytes
}

fn input(guest_count: usize) -> impl Strategy<Value = Input> {
    let seed = proptest::collection::vec(any::<u8>(), 0..2048);
    let guest_weight = 4;
    prop_oneof![
        4 => seed.clone().prop_map(Input::SmithModule),
        2 => seed.prop_map(Input::SmithComponent),
        guest_weight => (0..guest_count, proptest::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 0..4))
            .prop_map(|(i, e)| Input::Guest(i, e)),
        1 => (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..256)).prop_map(|(c, b)| Input::Raw(c, b)),
    ]
}

fn bytes_of(input: &Input, guests: &[(String, Vec<u8>)]) -> Option<Vec<u8>> {
    match input {
        Input::SmithModule(seed) => {
            let mut u = Unstructured::new(seed);
            let config = smith_config(&mut u);
            wasm_smith::Module::new(config, &mut u).ok().map(|m| m.to_bytes())
        }
        Input::SmithComponent(seed) => {
            let mut u = Unstructured::new(seed);
            let config = smith_config(&mut u);
            wasm_smith::Component::new(config, &mut u).ok().map(|c| c.to_bytes())
        }
        Input::Guest(i, edits) => Some(edit_bytes(&guests[*i].1, edits)),
        Input::Raw(component, rest) => {
            let mut bytes = if *component {
                b"\0asm\x0d\0\x01\0".to_vec()
            } else {
                b"\0asm\x01\0\0\0".to_vec()
            };
            bytes.extend_from_slice(rest);
            Some(bytes)
        }
    }
}

fn source(input: &Input, guests: &[(String, Vec<u8>)]) -> String {
    match input {
        Input::SmithModule(_) => "smith-module".into(),
        Input::SmithComponent(_) => "smith-component".into(),
        Input::Guest(i, _) => format!("edited {}", guests[*i].0),
        Input::Raw(..) => "raw".into(),
    }
}

/// The runtime, spec and executor every case shares: small limits, on-demand memory.
fn small_runtime() -> (Runtime, JobSpec, tokio::runtime::Runtime) {
    let runtime = Runtime::new(&RuntimeConfig {
        pooling: false,
        max_instances: 4,
        max_memory: ByteSize(16 << 20),
        ..RuntimeConfig::default()
    })
    .expect("a runtime");
    let mut spec = JobSpec::unconfigured("fuzz");
    spec.limits.memory = ByteSize(16 << 20);
    spec.limits.timeout = TIMEOUT;
    spec.limits.fuel = Some(5_000_000);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    (runtime, spec, tokio)
}

/// Regression (found by this target): `proc_exit(200)` was reported as a host error
/// ("exit with invalid exit status outside of [0..126)"), though the guest did it.
#[test]
fn proc_exit_126_or_more_is_a_trap_not_a_host_error() {
    let (runtime, spec, tokio) = small_runtime();
    // i32.const 200; call $proc_exit
    let job = runtime.load(&command(&[0x41, 0xc8, 0x01, 0x10, 0x00])).expect("a command");
    let report =
        tokio.block_on(runtime.execute(&job, &spec, None, &RunRequest::manual("fuzz", None)));
    assert!(matches!(report.outcome, RunOutcome::Trap { .. }), "{:?}", report.outcome);
}

/// Regression (found by this target, seed `Guest(2, [(14, 17413105477669728364, 162)])`): an
/// edited `command-trap` whose `_start` takes an `i32` ran and ended as a host error
/// ("failed to convert function `_start` to given type"); now a load error.
#[test]
fn a_start_taking_values_is_a_load_error_not_a_host_error() {
    let (runtime, ..) = small_runtime();
    let bytes = edit_bytes(&commands()[2].1, &[(14, 17413105477669728364, 162)]);
    let err = runtime.load(&bytes).err().expect("refused at load");
    let message = err.to_string();
    assert!(message.contains("`_start` has type (type (func (param i32)))"), "{message}");
}

/// Regression (found by this target; the input of README's "error while executing at wasm
/// backtrace"): an edited `command-exit` whose memory export is renamed calls `proc_exit`,
/// and wasmtime-wasi failed the call with "missing required memory export", a host error;
/// now a load error.
#[test]
fn wasi_imports_without_a_memory_export_are_a_load_error_not_a_host_error() {
    let (runtime, ..) = small_runtime();
    let bytes = edit_bytes(&commands()[3].1, &[(0, 76, 0)]);
    let err = runtime.load(&bytes).err().expect("refused at load");
    let message = err.to_string();
    assert!(message.contains("exports no memory named `memory`"), "{message}");
    assert!(message.contains("wasi_snapshot_preview1::proc_exit"), "{message}");
}

/// A preview1 call with a pointer outside the guest's memory: WASI says the call traps, and
/// wasmtime-wasi fails it with a `GuestError`, which is the guest's doing, not the host's.
#[test]
fn a_wasi_call_with_a_wild_pointer_is_a_trap_not_a_host_error() {
    let (runtime, spec, tokio) = small_runtime();
    // fd_write(1, iovs = 0xfffffff0, 1, nwritten = 0); drop the errno.
    let job = runtime.load(&fd_write_command(0xfffffff0)).expect("a command");
    let report =
        tokio.block_on(runtime.execute(&job, &spec, None, &RunRequest::manual("fuzz", None)));
    let RunOutcome::Trap { message } = &report.outcome else {
        panic!("{:?}", report.outcome);
    };
    assert!(message.contains("out of bounds"), "{message}");
}

#[test]
fn fuzz_wasm() {
    let guests = guests();
    if guests.len() == commands().len() {
        println!(
            "fuzz wasm: no built guests (run scripts/build-guests.sh); edits of guests skipped"
        );
    }
    let (runtime, spec, tokio) = small_runtime();
    let tally = Tally::default();
    let strategy = input(guests.len());
    let result = runner(cases(300)).run(&strategy, |input| {
        let from = source(&input, &guests);
        let Some(bytes) = bytes_of(&input, &guests) else {
            tally.rejected(format!("{from}: wasm-smith ran out of seed bytes"));
            return Ok(());
        };
        let job = match runtime.load(&bytes) {
            Ok(job) => job,
            Err(err) => {
                tally.rejected(format!("{from}: {}", kind_of(&err.to_string())));
                return Ok(());
            }
        };
        let request = RunRequest::manual("fuzz", None);
        let run = tokio.block_on(async {
            tokio::time::timeout(HUNG, runtime.execute(&job, &spec, None, &request)).await
        });
        let Ok(report) = run else {
            return Err(TestCaseError::fail(format!(
                "{from}: the run did not end within {HUNG:?}"
            )));
        };
        let outcome = match &report.outcome {
            RunOutcome::Limit(limit) => format!("limit {}", kind_of(&format!("{limit:?}"))),
            // Nothing here is the host's fault (no dirs, no store, no network): a host error
            // is a guest's doing misfiled, a finding that proptest then reduces.
            RunOutcome::HostError { message } => {
                return Err(TestCaseError::fail(format!("{from}: host error: {message}")));
            }
            other => other.kind().to_string(),
        };
        tally.note(format!("{from} ran: {outcome}"));
        tally.accepted();
        Ok(())
    });
    tally.finish("wasm", result);
}
