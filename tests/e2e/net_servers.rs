//! Servers for the network tests: tiny HTTP and TCP-echo servers on 127.0.0.1 that count
//! every connection they accept, so a test can assert that a refused request never
//! reached them. Each server stops when dropped (and after two minutes at the latest);
//! every loop is bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Longest a test server lives, whatever the test does.
const LIFETIME: Duration = Duration::from_secs(120);

/// What an HTTP test server answers.
#[derive(Clone)]
pub enum Reply {
    /// 200 with this body.
    Text(&'static str),
    /// 302 to this URL.
    Redirect(String),
    /// Reads the request and never answers.
    Silent,
    /// 200 with this many bytes of `x`, with a Content-Length or chunked.
    Huge { bytes: u64, chunked: bool },
}

/// A server on 127.0.0.1 that counts the connections it accepted.
pub struct TestServer {
    pub port: u16,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl TestServer {
    /// An HTTP/1.1 server answering every request with `reply`.
    pub fn http(reply: Reply) -> Self {
        Self::start(move |stream, stop| serve_http(stream, &reply, stop))
    }

    /// A TCP server that echoes each line back.
    pub fn echo() -> Self {
        Self::start(|stream, _stop| {
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                if (&stream).write_all(line.as_bytes()).is_err() {
                    break;
                }
                line.clear();
            }
        })
    }

    fn start(handle: impl Fn(TcpStream, &AtomicBool) + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let handle = Arc::new(handle);
        let (count, halt) = (connections.clone(), stop.clone());
        thread::spawn(move || {
            let born = Instant::now();
            while !halt.load(Ordering::Relaxed) && born.elapsed() < LIFETIME {
                match listener.accept() {
                    Ok((stream, _)) => {
                        count.fetch_add(1, Ordering::SeqCst);
                        stream.set_nonblocking(false).unwrap();
                        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                        let (handle, halt) = (handle.clone(), halt.clone());
                        thread::spawn(move || handle(stream, &halt));
                    }
                    // Kept: the accept loop's polling interval (a non-blocking listener, so
                    // the thread can see `halt`).
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        TestServer { port, connections, stop }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Reads one request head (bounded), then answers; keeps the connection for more.
fn serve_http(stream: TcpStream, reply: &Reply, stop: &AtomicBool) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    for _ in 0..100 {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if line == "\r\n" => break,
                Ok(_) if head.len() > 64 << 10 => return,
                Ok(_) => head.push_str(&line),
            }
        }
        let length = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string())
            })
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let mut body = (&mut reader).take(length);
        if std::io::copy(&mut body, &mut std::io::sink()).is_err() {
            return;
        }
        let ok = match reply {
            Reply::Text(text) => write!(
                writer,
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{text}",
                text.len()
            )
            .is_ok(),
            Reply::Redirect(to) => {
                write!(writer, "HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\n\r\n")
                    .is_ok()
            }
            Reply::Silent => {
                let since = Instant::now();
                while !stop.load(Ordering::Relaxed) && since.elapsed() < LIFETIME {
                    // Kept: saying nothing is this reply; the loop only watches for `stop`.
                    thread::sleep(Duration::from_millis(20));
                }
                return;
            }
            Reply::Huge { bytes, chunked } => send_huge(&mut writer, *bytes, *chunked),
        };
        if !ok {
            return;
        }
    }
}

fn send_huge(writer: &mut TcpStream, bytes: u64, chunked: bool) -> bool {
    let head = if chunked {
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_string()
    } else {
        format!("HTTP/1.1 200 OK\r\ncontent-length: {bytes}\r\n\r\n")
    };
    if writer.write_all(head.as_bytes()).is_err() {
        return false;
    }
    let chunk = vec![b'x'; 64 << 10];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        let written = if chunked {
            write!(writer, "{n:x}\r\n")
                .and_then(|_| writer.write_all(&chunk[..n]))
                .and_then(|_| writer.write_all(b"\r\n"))
        } else {
            writer.write_all(&chunk[..n])
        };
        if written.is_err() {
            return false; // the client hung up: what a capped request should do
        }
        left -= n as u64;
    }
    !chunked || writer.write_all(b"0\r\n\r\n").is_ok()
}
