//! The probe's network and secret modes: outbound HTTP through the SDK (`wasi:http`), raw
//! TCP through std (`wasi:sockets`), and reading an injected secret.
//!
//! Summaries are one line of `key=value` pairs so the host's tests can assert on exact
//! fields; errors carry the SDK's or std's own message, which names the WASI error code
//! (`HTTP-request-denied`, `access-denied`, ...) the host's allowlist produced.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

use sandcron_guest::http::{self, HttpError};
use sandcron_guest::{JobError, log};

/// Bytes of the response body shown in the `http:` summary.
const BODY_SHOWN: usize = 100;

pub fn get(url: &str) -> Result<String, JobError> {
    let resp = http::get(url).map_err(fatal)?;
    let shown = String::from_utf8_lossy(&resp.body()[..resp.body().len().min(BODY_SHOWN)]);
    Ok(format!("status={} bytes={} body={shown}", resp.status, resp.body().len()))
}

/// `N:URL`: N sequential GETs, all attempted whatever the earlier ones did.
pub fn get_count(arg: &str) -> Result<String, JobError> {
    let (n, url) = arg
        .split_once(':')
        .ok_or_else(|| JobError::fatal(format!("http-count wants N:URL, got {arg:?}")))?;
    let n = crate::count(n)?;
    let (mut ok, mut failed, mut first_error) = (0u64, 0u64, None);
    for _ in 0..n {
        match http::get(url) {
            Ok(_) => ok += 1,
            Err(err) => {
                failed += 1;
                first_error.get_or_insert_with(|| err.to_string());
            }
        }
    }
    let first_error = first_error.as_deref().unwrap_or("none");
    Ok(format!("ok={ok} failed={failed} first_error={first_error}"))
}

/// `BYTES:URL`: POST BYTES bytes of `x` as text/plain.
pub fn post(arg: &str) -> Result<String, JobError> {
    let (bytes, url) = arg
        .split_once(':')
        .ok_or_else(|| JobError::fatal(format!("http-post wants BYTES:URL, got {arg:?}")))?;
    let len = usize::try_from(crate::count(bytes)?).map_err(JobError::fatal)?;
    let resp = http::post(url, "text/plain", vec![b'x'; len]).map_err(fatal)?;
    Ok(format!("status={} bytes={}", resp.status, resp.body().len()))
}

/// `HOST:PORT`: send `ping\n`, expect one line back.
pub fn tcp_echo(addr: &str) -> Result<String, JobError> {
    let tcp = |e: std::io::Error| JobError::fatal(format!("tcp: {e}"));
    let mut stream = TcpStream::connect(addr).map_err(tcp)?;
    stream.write_all(b"ping\n").map_err(tcp)?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).map_err(tcp)?;
    Ok(format!("echo={}", line.trim_end_matches(['\r', '\n'])))
}

/// The env variable NAME (a secret, in the host's tests) to stdout, the log and the summary,
/// so the test can check that each of them is masked.
pub fn print_env(name: &str) -> Result<String, JobError> {
    let value = std::env::var(name).map_err(|_| JobError::fatal(format!("missing env {name}")))?;
    println!("{name}={value}");
    log::info_with("secret seen", &[("value", &value)]);
    Ok(format!("{name}={value}"))
}

fn fatal(err: HttpError) -> JobError {
    JobError::fatal(format!("http: {err}"))
}
