//! Request and response bodies of `wasi:http` counted against the run's byte caps
//! (`limits.bytes_in` / `bytes_out`): a body that would pass its cap fails with the
//! matching `wasi:http` error, counting only what was handed over, and an inbound body
//! holds its request's in-flight permit until it ends.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use tokio::sync::OwnedSemaphorePermit;
use wasmtime_wasi_http::Error;

use super::RunNet;

/// Which direction a counted body goes.
#[derive(Clone, Copy)]
pub(super) enum Direction {
    In,
    Out,
}

/// A body whose data bytes are counted against the run's cap in one direction. An inbound
/// body also holds the request's in-flight permit until it is finished or dropped.
pub(super) struct Counted<B> {
    inner: B,
    net: Arc<RunNet>,
    direction: Direction,
    /// For inbound bodies: the in-flight permit, the URL and the metrics label.
    request: Option<(OwnedSemaphorePermit, String, String)>,
    failed: bool,
}

impl<B> Counted<B> {
    pub(super) fn new(
        inner: B,
        net: &Arc<RunNet>,
        direction: Direction,
        request: Option<(OwnedSemaphorePermit, String, String)>,
    ) -> Self {
        Counted { inner, net: net.clone(), direction, request, failed: false }
    }
}

impl<B: Body<Data = Bytes, Error = Error> + Unpin> Body for Counted<B> {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        if self.failed {
            return Poll::Ready(None);
        }
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        let len = match frame.data_ref() {
            Some(data) => data.len() as u64,
            None => return Poll::Ready(Some(Ok(frame))),
        };
        let (counter, cap) = match self.direction {
            Direction::In => (&self.net.bytes_in, self.net.limits.bytes_in.0),
            Direction::Out => (&self.net.bytes_out, self.net.limits.bytes_out.0),
        };
        let before = counter.fetch_add(len, Ordering::Relaxed);
        if before + len <= cap {
            return Poll::Ready(Some(Ok(frame)));
        }
        // Count only what fits: the rest was never handed over.
        counter.fetch_sub(before + len - cap.max(before), Ordering::Relaxed);
        self.failed = true;
        let (what, label) = match &self.request {
            Some((_, what, label)) => (what.clone(), Some(label.clone())),
            None => ("a request".to_string(), None),
        };
        Poll::Ready(Some(Err(match self.direction {
            Direction::In => {
                let reason = format!("the response passed limits.bytes_in ({cap} bytes per run)");
                self.net.limit(&what, label.as_deref(), &reason);
                Error::HttpResponseBodySize(Some(cap))
            }
            Direction::Out => {
                let reason =
                    format!("the request body passed limits.bytes_out ({cap} bytes per run)");
                self.net.limit(&what, label.as_deref(), &reason);
                Error::HttpRequestBodySize(Some(cap))
            }
        })))
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
