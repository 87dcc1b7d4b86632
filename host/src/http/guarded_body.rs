//! Keeps a cut-off `wasi:http` response from passing as a whole one.
//!
//! When a guest traps or times out after sending its response head, its
//! instance is dropped, and `wasmtime-wasi-http` ends the body it was writing
//! as if the guest had finished it. With chunked encoding the client could
//! not tell a truncated body from a complete one. The runtime raises the
//! call's [`FailureMark`] before it drops the instance; this body then ends
//! with an error instead, so hyper breaks the connection and the client
//! sees an incomplete response.

use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::body::{Body, Frame, SizeHint};

use crate::runtime::failure_mark::FailureMark;

/// A response body that ends in an error if its call failed.
pub struct GuardedBody<B> {
    inner: B,
    failed: FailureMark,
}

impl<B> GuardedBody<B> {
    /// Guards `inner`, the body written by the call that `failed` watches.
    pub fn new(inner: B, failed: FailureMark) -> GuardedBody<B> {
        GuardedBody { inner, failed }
    }
}

impl<B> Body for GuardedBody<B>
where
    B: Body<Error = wasmtime_wasi_http::Error> + Unpin,
{
    type Data = B::Data;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, Self::Error>>> {
        // Once the call has failed nothing more goes out, whatever the
        // guest still writes: the mark is raised before the instance (and
        // with it the body's writer) is dropped, so it is seen no later
        // than the end.
        if self.failed.is_set() {
            return Poll::Ready(Some(Err(wasmtime_wasi_http::Error::HttpResponseIncomplete)));
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(None) if self.failed.is_set() => {
                Poll::Ready(Some(Err(wasmtime_wasi_http::Error::HttpResponseIncomplete)))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream() && !self.failed.is_set()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
