//! A `wasi:http` guest's call, run on the request's own task.
//!
//! A guest keeps writing its response body after the head has gone back to
//! hyper, so the call has to outlive the request handler's future. A task
//! per request did that, at the price of a spawn and of wake-ups across
//! threads for the head, the first frame and the end. Instead, whoever
//! waits on the call moves it forward: the handler until the head and the
//! first frame are ready, then the response body each time hyper asks it
//! for a frame ([`DrivenBody`]). Only a call that outlives its body (the
//! client went away mid-body, or the guest works on after the body ended)
//! gets a task of its own, so it still finishes.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::task::{Context, Poll};

use hyper::body::{Body, Frame, SizeHint};

use crate::runtime::failure::Failure;

/// The call, boxed so moving it moves a pointer.
type Call = Pin<Box<dyn Future<Output = Result<(), Failure>> + Send>>;

/// A guest's call that nothing runs but its owner's polls. Dropping it
/// before it ends cancels the call (its instance is dropped, which the
/// call path logs as a client that went away).
pub struct GuestRun {
    /// `None` once the call has ended.
    call: Option<Call>,
    /// What the call ended with, until [`GuestRun::finish`] takes it.
    ended: Option<Result<(), Failure>>,
}

impl GuestRun {
    /// `call`, not started yet.
    pub fn new(call: impl Future<Output = Result<(), Failure>> + Send + 'static) -> GuestRun {
        GuestRun {
            call: Some(Box::pin(call)),
            ended: None,
        }
    }

    /// Moves the call forward as far as it goes without waiting.
    fn advance(&mut self, cx: &mut Context<'_>) {
        if let Some(call) = &mut self.call
            && let Poll::Ready(ended) = call.as_mut().poll(cx)
        {
            self.call = None;
            self.ended = Some(ended);
        }
    }

    /// Waits for `other` while moving the call forward (the guest is what
    /// `other` usually waits for).
    pub async fn alongside<T>(&mut self, other: impl Future<Output = T>) -> T {
        let mut other = pin!(other);
        poll_fn(|cx| {
            self.advance(cx);
            other.as_mut().poll(cx)
        })
        .await
    }

    /// Waits for the call to end; what it ended with.
    pub async fn finish(mut self) -> Result<(), Failure> {
        if let Some(call) = self.call.take() {
            return call.await;
        }
        // A call yields its result once, and only `finish` takes it.
        self.ended.take().unwrap_or(Ok(()))
    }

    /// Lets the call finish on its own task: nothing waits on it any more.
    pub fn detach(mut self) {
        if let Some(call) = self.call.take() {
            tokio::spawn(call);
        }
    }
}

/// A response body whose polls also move its guest's call forward; the
/// call outliving the body is detached, not cancelled.
pub struct DrivenBody<B> {
    inner: B,
    /// `None` once the call has ended.
    run: Option<GuestRun>,
}

impl<B> DrivenBody<B> {
    /// `inner`, the body `run`'s guest writes.
    pub fn new(inner: B, run: GuestRun) -> DrivenBody<B> {
        DrivenBody {
            inner,
            run: Some(run),
        }
    }
}

impl<B: Body + Unpin> Body for DrivenBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        // The guest first, so whatever it writes (or how it fails) is seen
        // by the body in the same poll.
        if let Some(run) = &mut self.run {
            run.advance(cx);
            if run.call.is_none() {
                self.run = None;
            }
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for DrivenBody<B> {
    fn drop(&mut self) {
        if let Some(run) = self.run.take() {
            run.detach();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use bytes::Bytes;
    use http_body_util::{BodyExt, StreamBody};
    use hyper::body::Frame;
    use tokio::sync::mpsc;

    use super::{DrivenBody, GuestRun};

    /// A body fed through a channel, as wasmtime-wasi-http's is.
    fn channel_body() -> (
        mpsc::Sender<Result<Frame<Bytes>, std::convert::Infallible>>,
        impl hyper::body::Body<Data = Bytes, Error = std::convert::Infallible> + Unpin,
    ) {
        let (sender, mut receiver) = mpsc::channel(1);
        let stream = futures::stream::poll_fn(move |cx| receiver.poll_recv(cx));
        (sender, StreamBody::new(stream))
    }

    #[tokio::test]
    async fn the_body_runs_its_guest_even_when_the_guest_writes_more_than_the_channel_holds() {
        let (sender, body) = channel_body();
        let run = GuestRun::new(async move {
            for chunk in ["a", "b", "c"] {
                let _ = sender.send(Ok(Frame::data(Bytes::from(chunk)))).await;
            }
            Ok(())
        });
        let collected = DrivenBody::new(body, run).collect().await;
        let bytes = collected.map(|c| c.to_bytes()).unwrap_or_default();
        assert_eq!(bytes, Bytes::from("abc"));
    }

    #[tokio::test]
    async fn a_call_outliving_its_body_finishes_on_its_own() {
        let (sender, body) = channel_body();
        let finished = Arc::new(AtomicBool::new(false));
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let flag = finished.clone();
        let run = GuestRun::new(async move {
            drop(sender);
            let _ = wait.await;
            flag.store(true, Ordering::SeqCst);
            Ok(())
        });
        let collected = DrivenBody::new(body, run).collect().await;
        assert!(collected.is_ok());
        // The body has ended and been dropped; the call waits on `go`.
        let _ = go.send(());
        for _ in 0..100 {
            if finished.load(Ordering::SeqCst) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the detached call never finished");
    }

    #[tokio::test]
    async fn dropping_an_undetached_run_cancels_its_call() {
        let finished = Arc::new(AtomicBool::new(false));
        let flag = finished.clone();
        let mut run = GuestRun::new(async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            flag.store(true, Ordering::SeqCst);
            Ok(())
        });
        run.alongside(std::future::ready(())).await;
        drop(run);
        tokio::time::sleep(std::time::Duration::from_millis(60)).await;
        assert!(!finished.load(Ordering::SeqCst));
    }
}
