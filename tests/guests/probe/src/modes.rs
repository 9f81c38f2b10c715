//! The probe's behaviours, one function per mode.
//!
//! The runaway modes (`spin`, `hog_memory`, `recurse`) route their work through
//! `std::hint::black_box` so the optimizer can neither delete the loop nor turn the
//! recursion into a loop: each must really burn CPU, memory or stack until the host's
//! limit stops it.

use std::fs;
use std::hint::black_box;
use std::io::{Read, Write};
use std::time::Duration;

use sandcron_guest::{Context, JobError, config, deadline, log, state};
use serde::Serialize;

pub fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

pub fn hog_memory() -> ! {
    const CHUNK: usize = 1 << 20;
    let mut kept: Vec<Vec<u8>> = Vec::new();
    loop {
        // A non-zero fill writes every page: a zeroed Vec could come from fresh (already
        // zero) wasm memory without touching it, and not count against a lazy limit.
        let chunk = vec![1u8; CHUNK];
        kept.push(black_box(chunk));
    }
}

pub fn recurse() -> ! {
    // Frames stay small on purpose: Rust keeps big locals on a shadow stack in linear
    // memory (1 MiB), and overflowing that is an out-of-bounds access, not a stack
    // overflow. Small frames exhaust wasmtime's own call stack first, the trap the host
    // must report as a stack overflow. `black_box` on the result keeps LLVM from turning
    // the recursion into a loop (its accumulator transform needs a plain `+` after the call).
    fn deeper(depth: u64) -> u64 {
        if black_box(depth) == u64::MAX {
            return 0;
        }
        black_box(deeper(depth + 1)).wrapping_add(depth)
    }
    black_box(deeper(0));
    unreachable!("recursion without end returned")
}

pub fn flood(bytes: u64) -> Result<String, JobError> {
    const CHUNK: usize = 64 * 1024;
    let mut buf = [b'x'; CHUNK];
    for line_end in (63..CHUNK).step_by(64) {
        buf[line_end] = b'\n';
    }
    write_repeated(&mut std::io::stdout().lock(), &buf, bytes, "stdout")?;
    Ok(format!("flooded {bytes}"))
}

/// Writes `total` bytes of `chunk` over and over (the last time cut short), then flushes.
pub fn write_repeated(
    out: &mut impl Write,
    chunk: &[u8],
    total: u64,
    name: &str,
) -> Result<(), JobError> {
    let fail = |e: std::io::Error| JobError::fatal(format!("{name}: {e}"));
    let mut left = total;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        out.write_all(&chunk[..n]).map_err(fail)?;
        left -= n as u64;
    }
    out.flush().map_err(fail)
}

pub fn log_flood(lines: u64) -> String {
    for i in 0..lines {
        // ~100 bytes: a fixed prefix, the line number, padding.
        log::info(format!("probe log flood line {i:>12} {:.<64}", ""));
    }
    format!("logged {lines}")
}

pub fn read(path: &str) -> Result<String, JobError> {
    let mut head = Vec::new();
    fs::File::open(path)
        .and_then(|file| file.take(200).read_to_end(&mut head))
        .map_err(|e| JobError::fatal(format!("read {path}: {e}")))?;
    Ok(String::from_utf8_lossy(&head).into_owned())
}

pub fn write(path: &str) -> Result<String, JobError> {
    fs::write(path, "written by probe")
        .map_err(|e| JobError::fatal(format!("write {path}: {e}")))?;
    Ok(format!("wrote {path}"))
}

pub fn list(path: &str) -> Result<String, JobError> {
    let fail = |e: std::io::Error| JobError::fatal(format!("list {path}: {e}"));
    let mut names = Vec::new();
    for entry in fs::read_dir(path).map_err(fail)? {
        names.push(entry.map_err(fail)?.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names.join("\n"))
}

pub fn env() -> String {
    let mut vars: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
    vars.sort();
    vars.join("\n")
}

pub fn socket(addr: &str) -> Result<String, JobError> {
    std::net::TcpStream::connect(addr).map_err(|e| JobError::fatal(format!("connect: {e}")))?;
    Ok("connected".to_owned())
}

pub fn counter() -> Result<String, JobError> {
    let n = state::get::<u64>("counter")?.unwrap_or(0) + 1;
    state::set("counter", &n)?;
    Ok(format!("counter={n}"))
}

pub fn config() -> String {
    let lines: Vec<String> =
        config::entries().into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    lines.join("\n")
}

pub fn deadline() -> String {
    format!("remaining_ms={}", deadline::remaining().as_millis())
}

pub fn context(ctx: &Context) -> String {
    #[derive(Serialize)]
    struct Json<'a> {
        job_name: &'a str,
        job_version: &'a str,
        run_id: &'a str,
        idempotency_key: &'a str,
        attempt: u32,
        trigger: &'a str,
        scheduled_at_ms: u64,
        started_at_ms: u64,
    }
    let json = Json {
        job_name: &ctx.job_name,
        job_version: &ctx.job_version,
        run_id: &ctx.run_id,
        idempotency_key: &ctx.idempotency_key,
        attempt: ctx.attempt,
        trigger: ctx.trigger.as_str(),
        scheduled_at_ms: ctx.scheduled_at_ms,
        started_at_ms: ctx.started_at_ms,
    };
    serde_json::to_string(&json).expect("a struct of strings and numbers serializes")
}

pub fn sleep(ms: u64) -> String {
    std::thread::sleep(Duration::from_millis(ms));
    "slept".to_owned()
}

/// What a previous run left behind: every run gets a fresh instance, so a correct host
/// always sees `calls=1 nonzero=0`. The static lives in the memory image (reset by copy),
/// the grown pages beyond it (reset by zeroing, or given back to the kernel past the
/// pool's keep-resident size); both are dirtied for the next run to check.
pub fn residue() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static CALLS: AtomicU32 = AtomicU32::new(0);
    let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
    const PAGES: usize = 48; // 3 MiB: more than the host keeps resident per memory
    let old = core::arch::wasm32::memory_grow(0, PAGES);
    if old == usize::MAX {
        return "memory.grow refused".to_owned();
    }
    #[allow(unsafe_code)]
    // SAFETY: these pages were just added by memory.grow; nothing else (the allocator
    // included) knows of them, so this is the only reference.
    let fresh = unsafe { std::slice::from_raw_parts_mut((old * 65536) as *mut u8, PAGES * 65536) };
    let nonzero = fresh.iter().filter(|&&byte| byte != 0).count();
    fresh.fill(0xAB);
    format!("calls={calls} nonzero={nonzero}")
}
