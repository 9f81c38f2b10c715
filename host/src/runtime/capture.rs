//! Capped capture of a guest's stdout and stderr (R4).
//!
//! A [`CapturePipe`] accepts every byte the guest writes, keeps the first `cap` of them and
//! only counts the rest, so a guest that floods stdout completes normally while host memory
//! stays bounded by the cap. It never reports "full" to the guest: a full pipe that errors
//! would turn a noisy job into a failed one.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// The kept prefix of a stream plus how much was dropped.
#[derive(Debug, Default)]
pub(crate) struct Captured {
    /// The first `cap` bytes written.
    pub(crate) bytes: Vec<u8>,
    /// Bytes written beyond the cap.
    pub(crate) dropped: u64,
}

#[derive(Debug)]
struct Inner {
    cap: usize,
    captured: Captured,
}

/// A WASI stdout/stderr that keeps at most `cap` bytes.
#[derive(Clone, Debug)]
pub(crate) struct CapturePipe(Arc<Mutex<Inner>>);

impl CapturePipe {
    pub(crate) fn new(cap: usize) -> Self {
        CapturePipe(Arc::new(Mutex::new(Inner { cap, captured: Captured::default() })))
    }

    /// Takes what was captured so far, leaving the pipe empty.
    pub(crate) fn take(&self) -> Captured {
        std::mem::take(&mut self.lock().captured)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means another writer panicked mid-append; the bytes are fine.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn append(&self, data: &[u8]) {
        let mut inner = self.lock();
        let room = inner.cap.saturating_sub(inner.captured.bytes.len());
        let kept = room.min(data.len());
        inner.captured.bytes.extend_from_slice(&data[..kept]);
        inner.captured.dropped += (data.len() - kept) as u64;
    }
}

impl IsTerminal for CapturePipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturePipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for CapturePipe {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        // Always ready: what exceeds the cap is counted and discarded, not refused.
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturePipe {
    async fn ready(&mut self) {}
}

impl AsyncWrite for CapturePipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_prefix_and_counts_the_rest() {
        let mut pipe = CapturePipe::new(10);
        for _ in 0..5 {
            OutputStream::write(&mut pipe, Bytes::from_static(b"abcdef")).unwrap();
        }
        let captured = pipe.take();
        assert_eq!(captured.bytes, b"abcdefabcd");
        assert_eq!(captured.dropped, 20);
    }
}
