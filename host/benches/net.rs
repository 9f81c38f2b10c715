//! The cost of the allowlist on an outbound HTTP request (M5), side by side in one process.
//!
//! - `unchecked`: wasmtime-wasi-http's own `default_send_request` (resolve, connect, HTTP/1.1,
//!   read the body), i.e. the same request with no checks at all;
//! - `checked`: sandcron's sender as a guest's request goes through it: scheme/host/port
//!   against `allowed_hosts`, one lookup, every address checked, a connect to exactly the
//!   checked addresses, the body counted against the run's byte cap.
//!
//! Both fetch 1 KiB from a server on 127.0.0.1, a new connection per request (neither keeps
//! connections), by IP literal and by the name `localhost` (resolved through /etc/hosts),
//! interleaved in rounds so machine noise hits both. The difference of the medians is the
//! per-request cost of the checks (goal: under 5% or 50 µs).
//!
//! Run: `cargo bench -p sandcron --bench net` (`SANDCRON_BENCH_REQUESTS=N` per variant and
//! round, default 300; `SANDCRON_BENCH_ROUNDS=N`, default 5).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use sandcron::config::{AllowedHost, NetLimits};

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A server that answers every request with 1 KiB and closes (bounded by the bench's count).
fn serve(listener: TcpListener, requests: usize) {
    let body = vec![b'x'; 1024];
    for stream in listener.incoming().take(requests) {
        let Ok(mut stream) = stream else { continue };
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
            line.clear();
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(&body));
    }
}

async fn unchecked(url: &str) -> (u16, usize) {
    let body = http_body_util::Empty::<bytes::Bytes>::new().map_err(|never| match never {});
    let request = http::Request::get(url).body(body).unwrap();
    let (response, io) = wasmtime_wasi_http::default_send_request(request, None).await.unwrap();
    let io = tokio::spawn(io);
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    io.abort();
    (status, bytes.len())
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let per_round = env_number("SANDCRON_BENCH_REQUESTS", 300);
    let rounds = env_number("SANDCRON_BENCH_ROUNDS", 5);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let total = per_round * rounds * 4;
    std::thread::spawn(move || serve(listener, total));

    let allowed: Vec<AllowedHost> =
        [format!("http://127.0.0.1:{port}"), format!("http://localhost:{port}")]
            .iter()
            .map(|e| e.parse().unwrap())
            .collect();
    let limits = NetLimits { requests: u32::MAX, ..NetLimits::default() };
    let tokio =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();

    let mut results: Vec<(&str, &str, Vec<Duration>)> = Vec::new();
    for (target, url) in
        [("ip", format!("http://127.0.0.1:{port}/")), ("name", format!("http://localhost:{port}/"))]
    {
        results.push((target, "unchecked", Vec::new()));
        results.push((target, "checked", Vec::new()));
        let _ = url;
    }
    tokio.block_on(async {
        for _ in 0..rounds {
            for (target, variant, samples) in results.iter_mut() {
                let host = if *target == "ip" { "127.0.0.1" } else { "localhost" };
                let url = format!("http://{host}:{port}/");
                for _ in 0..per_round {
                    let started = Instant::now();
                    let (status, bytes) = match *variant {
                        "unchecked" => unchecked(&url).await,
                        _ => sandcron::runtime::bench_checked_get(&allowed, &limits, &url)
                            .await
                            .unwrap(),
                    };
                    samples.push(started.elapsed());
                    assert_eq!((status, bytes), (200, 1024));
                }
            }
        }
    });

    println!(
        "outbound GET of 1 KiB on 127.0.0.1, new connection each, {rounds} rounds x {per_round}:"
    );
    for pair in results.chunks(2) {
        let (target, _, unchecked) = &pair[0];
        let (_, _, checked) = &pair[1];
        let (u, c) = (median(unchecked.clone()), median(checked.clone()));
        let diff = c.as_secs_f64() * 1e6 - u.as_secs_f64() * 1e6;
        println!(
            "  by {target:<4}  unchecked p50 {:>7.1} µs   checked p50 {:>7.1} µs   added {:>+6.1} µs ({:+.1}%)",
            u.as_secs_f64() * 1e6,
            c.as_secs_f64() * 1e6,
            diff,
            diff / (u.as_secs_f64() * 1e6) * 100.0,
        );
    }
}
