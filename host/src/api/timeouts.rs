//! Deadlines hyper does not keep itself. Its header read timeout closes a connection whose
//! request head (or next request, on keep-alive) does not arrive in time; these cover the
//! rest of a request's life:
//! - [`BodyDeadline`]: the body must arrive by a deadline, or reading it fails (the server
//!   then answers 408 and closes the connection);
//! - [`WriteStall`]: a response write that makes no progress for a while fails, so a
//!   client that stops reading cannot hold its connection, and its slot, forever.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep, sleep, sleep_until};

/// A request body that fails once its deadline passes before it is complete, and says so
/// through `expired` (the handler only sees a body error).
pub struct BodyDeadline<B> {
    inner: B,
    deadline: Pin<Box<Sleep>>,
    expired: Arc<AtomicBool>,
    /// Called once the whole body has arrived.
    on_end: Option<Box<dyn FnOnce() + Send>>,
}

impl<B: Body> BodyDeadline<B> {
    /// `inner`, due by `deadline`; `expired` is set if it is not, `on_end` called if it is.
    pub fn new(
        inner: B,
        deadline: Instant,
        expired: Arc<AtomicBool>,
        on_end: impl FnOnce() + Send + 'static,
    ) -> Self {
        let deadline = Box::pin(sleep_until(deadline));
        BodyDeadline { inner, deadline, expired, on_end: Some(Box::new(on_end)) }
    }

    fn ended(&mut self) {
        if let Some(on_end) = self.on_end.take() {
            on_end();
        }
    }
}

impl<B> Body for BodyDeadline<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            if frame.is_none() || self.inner.is_end_stream() {
                self.ended();
            }
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        ready!(self.deadline.as_mut().poll(cx));
        self.expired.store(true, Ordering::Relaxed);
        Poll::Ready(Some(Err("the request body did not arrive in time".into())))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A socket whose writes fail with `TimedOut` once they have been blocked for `limit`
/// (the client's receive window stayed full); reads pass through.
pub struct WriteStall<S> {
    inner: S,
    limit: Duration,
    /// Armed while a write is pending; disarmed by any progress.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteStall<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, limit: Duration) -> Self {
        WriteStall { inner, limit, stalled: None }
    }

    /// What a write that returned `poll` means: progress disarms the timer, a blocked
    /// write arms it, and a timer that fires turns the write into an error.
    fn watch<T>(&mut self, poll: Poll<io::Result<T>>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let limit = self.limit;
        let timer = self.stalled.get_or_insert_with(|| Box::pin(sleep(limit)));
        ready!(timer.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the client read nothing for {limit:?}"),
        )))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteStall<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteStall<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(poll, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(poll, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(poll, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;
    use http_body_util::BodyExt;
    use tokio::io::AsyncWriteExt;

    const LIMIT: Duration = Duration::from_millis(200);

    /// A client that sends part of its body and then nothing.
    struct HalfSent(Option<Bytes>);

    impl Body for HalfSent {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            match self.0.take() {
                Some(part) => Poll::Ready(Some(Ok(Frame::data(part)))),
                None => Poll::Pending,
            }
        }
    }

    #[tokio::test]
    async fn a_body_that_stops_short_fails_at_its_deadline() {
        let expired = Arc::new(AtomicBool::new(false));
        let half = HalfSent(Some(Bytes::from_static(b"{\"note\":")));
        let ended = Arc::new(AtomicBool::new(false));
        let on_end = {
            let ended = ended.clone();
            move || ended.store(true, Ordering::Relaxed)
        };
        let mut body = BodyDeadline::new(half, Instant::now() + LIMIT, expired.clone(), on_end);
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "{\"note\":");
        assert!(!expired.load(Ordering::Relaxed));
        let started = Instant::now();
        let err = body.frame().await.unwrap().unwrap_err();
        assert!(err.to_string().contains("in time") && expired.load(Ordering::Relaxed));
        assert!(started.elapsed() >= LIMIT / 2);
        assert!(!ended.load(Ordering::Relaxed));
    }

    #[tokio::test]
    async fn a_whole_body_in_time_is_read_and_reported_complete() {
        let expired = Arc::new(AtomicBool::new(false));
        let ended = Arc::new(AtomicBool::new(false));
        let on_end = {
            let ended = ended.clone();
            move || ended.store(true, Ordering::Relaxed)
        };
        let whole = http_body_util::Full::new(Bytes::from_static(b"{}"));
        let body = BodyDeadline::new(whole, Instant::now() + LIMIT, expired.clone(), on_end);
        assert_eq!(body.collect().await.unwrap().to_bytes(), "{}");
        assert!(ended.load(Ordering::Relaxed) && !expired.load(Ordering::Relaxed));
    }

    #[tokio::test]
    async fn a_write_blocked_past_the_limit_fails() {
        // A 64-byte pipe whose reader reads nothing: the second write blocks.
        let (client, _server) = tokio::io::duplex(64);
        let mut socket = WriteStall::new(client, LIMIT);
        socket.write_all(&[0; 64]).await.unwrap();
        let started = Instant::now();
        let err = socket.write_all(&[0; 1]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= LIMIT);
    }

    #[tokio::test]
    async fn a_slow_reader_that_keeps_reading_is_not_cut_off() {
        let (client, mut server) = tokio::io::duplex(64);
        let reader = tokio::spawn(async move {
            let mut buf = [0; 64];
            let mut total = 0;
            while total < 640 {
                tokio::time::sleep(LIMIT / 4).await;
                total += tokio::io::AsyncReadExt::read(&mut server, &mut buf).await.unwrap();
            }
        });
        // Ten pipe-fulls take 2.5 limits in all, but no single write waits a whole one.
        let mut socket = WriteStall::new(client, LIMIT);
        socket.write_all(&[0; 640]).await.unwrap();
        reader.await.unwrap();
    }
}
