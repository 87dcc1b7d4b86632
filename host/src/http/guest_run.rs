//! A `wasi:http` guest's call, run on the request's own task for as long
//! as the request waits on it.
//!
//! Most calls are over by the time their response's head and first frame
//! are ready (a handler that writes its whole answer at once), so the
//! handler moves the call forward itself while it waits for those, rather
//! than spawning a task per request and being woken from it. A call still
//! running after the first frame is detached onto a task of its own: from
//! then on hyper polls the body only as fast as the client reads, and the
//! call's deadline must hold whatever the client does.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::task::{Context, Poll};

use crate::runtime::failure::Failure;

/// The call, boxed so moving it moves a pointer.
type Call = Pin<Box<dyn Future<Output = Result<(), Failure>> + Send>>;

/// A guest's call that nothing runs but its owner's polls, until
/// detached. Dropping it before then cancels the call (its instance is
/// dropped, which the call path logs as a client that went away).
pub struct GuestRun(State);

/// Where a call is: still running, or over with its result.
enum State {
    Running(Call),
    Ended(Result<(), Failure>),
}

impl GuestRun {
    /// `call`, not started yet.
    pub fn new(call: impl Future<Output = Result<(), Failure>> + Send + 'static) -> GuestRun {
        GuestRun(State::Running(Box::pin(call)))
    }

    /// Moves the call forward as far as it goes without waiting.
    fn advance(&mut self, cx: &mut Context<'_>) {
        if let State::Running(call) = &mut self.0
            && let Poll::Ready(ended) = call.as_mut().poll(cx)
        {
            self.0 = State::Ended(ended);
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
    pub async fn finish(self) -> Result<(), Failure> {
        match self.0 {
            State::Running(call) => call.await,
            State::Ended(ended) => ended,
        }
    }

    /// Lets a call that has not ended finish on its own task: nothing
    /// waits on it any more.
    pub fn detach(self) {
        if let State::Running(call) = self.0 {
            tokio::spawn(call);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::GuestRun;

    /// A call that sets `flag` after `wait`.
    fn flagging_call(wait: Duration) -> (Arc<AtomicBool>, GuestRun) {
        let finished = Arc::new(AtomicBool::new(false));
        let flag = finished.clone();
        let run = GuestRun::new(async move {
            tokio::time::sleep(wait).await;
            flag.store(true, Ordering::SeqCst);
            Ok(())
        });
        (finished, run)
    }

    #[tokio::test]
    async fn a_detached_call_finishes_on_its_own() {
        let (finished, mut run) = flagging_call(Duration::from_millis(20));
        run.alongside(std::future::ready(())).await;
        run.detach();
        for _ in 0..100 {
            if finished.load(Ordering::SeqCst) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the detached call never finished");
    }

    #[tokio::test]
    async fn dropping_an_undetached_run_cancels_its_call() {
        let (finished, mut run) = flagging_call(Duration::from_millis(20));
        run.alongside(std::future::ready(())).await;
        drop(run);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(!finished.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_call_that_ended_while_waited_alongside_gives_its_result_to_finish() {
        let (finished, mut run) = flagging_call(Duration::from_millis(1));
        run.alongside(tokio::time::sleep(Duration::from_millis(30)))
            .await;
        assert!(finished.load(Ordering::SeqCst));
        assert!(run.finish().await.is_ok());
    }
}
