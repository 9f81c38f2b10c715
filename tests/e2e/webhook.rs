//! A webhook served by the test on 127.0.0.1 for the notification tests: it records each
//! request's JSON body, answers with a planned status, and can hold its first request until
//! the test releases it (a slow webhook, with the moment it answers chosen by the test).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::ops::ControlFlow::{Break, Continue};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::wait_until;

/// Longest a recorder lives, whatever the test does.
const LIFETIME: Duration = Duration::from_secs(120);

/// A webhook on 127.0.0.1 that records each request's body and answers with the next
/// status of its plan (the last one repeats). Stops when dropped, or after two minutes.
pub struct Recorder {
    port: u16,
    bodies: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    release: Arc<AtomicBool>,
}

impl Recorder {
    /// Answers every request at once.
    pub fn start(plan: &'static [u16]) -> Recorder {
        Self::spawn(plan, None)
    }

    /// Holds its first request (read, unanswered) until [`Recorder::release`], then for
    /// `hold` more before answering; later requests are answered at once.
    pub fn holding_first(hold: Duration) -> Recorder {
        Self::spawn(&[200], Some(hold))
    }

    fn spawn(plan: &'static [u16], hold: Option<Duration>) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let release = Arc::new(AtomicBool::new(false));
        let (seen, halt, released) = (bodies.clone(), stop.clone(), release.clone());
        thread::spawn(move || {
            let born = Instant::now();
            let alive = || !halt.load(Ordering::Relaxed) && born.elapsed() < LIFETIME;
            while alive() {
                let Ok((stream, _)) = listener.accept() else {
                    thread::sleep(Duration::from_millis(5));
                    continue;
                };
                stream.set_nonblocking(false).unwrap();
                stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let Some(body) = read_request(&stream) else { continue };
                let count = {
                    let mut seen = seen.lock().unwrap();
                    seen.push(body);
                    seen.len()
                };
                if let (Some(hold), 1) = (hold, count) {
                    while alive() && !released.load(Ordering::Relaxed) {
                        thread::sleep(Duration::from_millis(5));
                    }
                    thread::sleep(hold);
                }
                let status = plan[(count - 1).min(plan.len() - 1)];
                let answer = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = (&stream).write_all(answer.as_bytes());
            }
        });
        Recorder { port, bodies, stop, release }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// Lets a held first request be answered (after its hold).
    pub fn release(&self) {
        self.release.store(true, Ordering::Relaxed);
    }

    pub fn bodies(&self) -> Vec<Value> {
        let bodies = self.bodies.lock().unwrap();
        bodies.iter().map(|b| serde_json::from_str(b).expect("a JSON body")).collect()
    }

    /// Polls until `pred` holds on the bodies or `timeout` passes.
    pub fn wait(&self, timeout: Duration, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let look = || {
            let bodies = self.bodies();
            if pred(&bodies) { Break(bodies) } else { Continue(bodies) }
        };
        wait_until(timeout, look).unwrap_or_else(|bodies| bodies)
    }

    /// Waits (up to `timeout`) for the first document of `event`; panics with every body and
    /// the host's log (`log`) if none comes.
    pub fn event(&self, event: &str, timeout: Duration, log: &Path) -> Value {
        let bodies = self.wait(timeout, |b| b.iter().any(|b| b["event"] == event));
        bodies.into_iter().find(|b| b["event"] == event).unwrap_or_else(|| {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("no {event} document within {timeout:?}: {:#?}\n{log}", self.bodies())
        })
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The host config file `DIR/sandcron.toml` sending every event to `url`, each attempt
/// given `timeout` (e.g. `"2s"`), retried after 100 ms; returns its path for `--config`.
pub fn config_for(dir: &Path, url: &str, timeout: &str) -> String {
    let path = dir.join("sandcron.toml");
    let text = format!(
        "[notify]\nhost = \"test-host\"\ntimeout = \"{timeout}\"\nbackoff = \"100ms\"\n\
         [[notify.webhook]]\nurl = \"{url}\"\n"
    );
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// One request's body (head and body bounded); `None` if the client hung up first.
fn read_request(stream: &TcpStream) -> Option<String> {
    let mut reader = BufReader::new(stream);
    let mut length: Option<usize> = None;
    for _ in 0..100 {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = Some(value.trim().parse().ok()?);
        }
    }
    let mut body = vec![0; length?.min(1 << 20)];
    reader.read_exact(&mut body).ok()?;
    String::from_utf8(body).ok()
}
