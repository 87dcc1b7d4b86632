//! A request body that records whether it was read to its end.
//!
//! A `wasi:http` guest may answer without reading the request's body.
//! hyper then closes the connection after the response unless the rest of
//! the body is already in its buffer; a response that does not say so
//! sends a keep-alive client's next request into a closing socket. The host
//! checks this flag when the guest's response head goes out and marks the
//! response `connection: close` if the body was not read to its end.
//!
//! Closing while the client is still sending would reset the connection
//! under it, and it would see a broken pipe instead of the answer. So a
//! body dropped unread is handed to a `linger` function, which reads (and
//! discards) a bounded amount more in the background: the client finishes
//! sending, reads the answer, and then the connection closes.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use hyper::body::{Body, Frame, SizeHint};

/// Whether a [`Drained`] body has reached its end; shared with the body.
#[derive(Debug, Clone, Default)]
pub struct DrainedFlag(Arc<AtomicBool>);

impl DrainedFlag {
    /// True once the body's last frame (or its end) has been read.
    pub fn is_drained(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// `inner`, raising its flag once it has been read to the end.
pub struct Drained<B> {
    /// Always there until the body is dropped.
    inner: Option<B>,
    flag: DrainedFlag,
    /// What takes the body if it is dropped unread.
    linger: Option<fn(B)>,
}

impl<B: Body + Unpin> Drained<B> {
    /// Wraps `inner`; a body that is empty from the start counts as read.
    pub fn new(inner: B, flag: DrainedFlag) -> Drained<B> {
        if inner.is_end_stream() {
            flag.set();
        }
        Drained {
            inner: Some(inner),
            flag,
            linger: None,
        }
    }

    /// This body, handed to `linger` if it is dropped before its end.
    pub fn lingering(mut self, linger: fn(B)) -> Drained<B> {
        self.linger = Some(linger);
        self
    }
}

impl<B> Drop for Drained<B> {
    fn drop(&mut self) {
        if self.flag.is_drained() {
            return;
        }
        if let (Some(linger), Some(inner)) = (self.linger, self.inner.take()) {
            linger(inner);
        }
    }
}

impl<B: Body + Unpin> Body for Drained<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(&mut *inner).poll_frame(cx);
        // A body of known length is at its end with its last byte, before
        // anyone polls for the end itself.
        let at_end = match &polled {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(_))) => inner.is_end_stream(),
            _ => false,
        };
        if at_end {
            self.flag.set();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty, Full, StreamBody};

    #[tokio::test]
    async fn an_empty_body_counts_as_read() {
        let flag = DrainedFlag::default();
        let _body = Drained::new(Empty::<Bytes>::new(), flag.clone());
        assert!(flag.is_drained());
    }

    #[tokio::test]
    async fn a_body_of_known_length_is_read_with_its_last_byte() {
        let flag = DrainedFlag::default();
        let mut body = Drained::new(Full::new(Bytes::from_static(b"abc")), flag.clone());
        assert!(!flag.is_drained());
        let frame = body.frame().await.expect("a frame").expect("no error");
        assert_eq!(frame.into_data().ok(), Some(Bytes::from_static(b"abc")));
        assert!(flag.is_drained());
    }

    #[tokio::test]
    async fn a_body_dropped_unread_goes_to_its_linger_and_a_read_one_does_not() {
        static LINGERED: AtomicBool = AtomicBool::new(false);
        fn linger(_body: Full<Bytes>) {
            LINGERED.store(true, Ordering::SeqCst);
        }
        let read = Drained::new(
            Full::new(Bytes::from_static(b"abc")),
            DrainedFlag::default(),
        )
        .lingering(linger);
        let mut read = read;
        read.frame().await.expect("a frame").expect("no error");
        drop(read);
        assert!(!LINGERED.load(Ordering::SeqCst));
        let unread = Drained::new(
            Full::new(Bytes::from_static(b"abc")),
            DrainedFlag::default(),
        )
        .lingering(linger);
        drop(unread);
        assert!(LINGERED.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_streamed_body_is_read_only_at_its_end() {
        let chunks = vec![
            Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from_static(b"a"))),
            Ok(Frame::data(Bytes::from_static(b"b"))),
        ];
        let flag = DrainedFlag::default();
        let mut body = Drained::new(StreamBody::new(futures::stream::iter(chunks)), flag.clone());
        body.frame().await.expect("first frame").expect("no error");
        assert!(!flag.is_drained(), "one frame left");
        body.frame().await.expect("second frame").expect("no error");
        assert!(body.frame().await.is_none());
        assert!(flag.is_drained());
    }
}
