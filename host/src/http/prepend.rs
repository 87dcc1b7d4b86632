//! A body whose first frame was already taken, put back in front.
//!
//! The `wasi:http` path holds a response's head until the first frame of
//! its body is ready (so a guest that fails before writing anything still
//! gets a proper error response); once it is, that frame goes out first and
//! the rest streams as it comes.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Buf;
use hyper::body::{Body, Frame, SizeHint};

/// What polling a body once gives: a frame, an error, or the end (`None`).
pub type Polled<B> = Option<Result<Frame<<B as Body>::Data>, <B as Body>::Error>>;

/// `first` (what polling `rest` once gave), then `rest`.
pub struct Prepend<B: Body> {
    /// `None` once `first` has been handed out.
    first: Option<Polled<B>>,
    rest: B,
}

impl<B: Body> Prepend<B> {
    /// A body that yields `first` and then whatever `rest` yields.
    pub fn new(first: Polled<B>, rest: B) -> Prepend<B> {
        Prepend {
            first: Some(first),
            rest,
        }
    }
}

impl<B> Body for Prepend<B>
where
    B: Body + Unpin,
    B::Data: Unpin + Buf,
    B::Error: Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        match self.first.take() {
            // The end, or an error: nothing follows it.
            Some(None) => Poll::Ready(None),
            Some(Some(frame)) => Poll::Ready(Some(frame)),
            None => Pin::new(&mut self.rest).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.first, Some(None)) || (self.first.is_none() && self.rest.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let first = match &self.first {
            Some(None) => return SizeHint::with_exact(0),
            Some(Some(Ok(frame))) => frame.data_ref().map_or(0, |data| data.remaining() as u64),
            _ => 0,
        };
        // The head may take its content-length from this: count the frame
        // already taken.
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower().saturating_add(first));
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(first));
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::{BodyExt, StreamBody};

    fn frames(parts: &[&'static str]) -> impl Body<Data = Bytes, Error = std::io::Error> + Unpin {
        let frames: Vec<Result<Frame<Bytes>, std::io::Error>> = parts
            .iter()
            .map(|part| Ok(Frame::data(Bytes::from_static(part.as_bytes()))))
            .collect();
        StreamBody::new(futures::stream::iter(frames))
    }

    #[tokio::test]
    async fn the_taken_frame_comes_first_then_the_rest() {
        let mut body = frames(&["ab", "cd", "e"]);
        let first = body.frame().await;
        let joined = Prepend::new(first, body).collect().await.unwrap();
        assert_eq!(&joined.to_bytes()[..], b"abcde");
    }

    #[tokio::test]
    async fn an_empty_body_stays_empty() {
        let mut body = frames(&[]);
        let first = body.frame().await;
        let joined = Prepend::new(first, body);
        assert!(joined.is_end_stream());
        assert_eq!(joined.size_hint().exact(), Some(0));
    }
}
