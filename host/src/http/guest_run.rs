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
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use crate::runtime::failure::Failure;

/// The call, boxed so moving it moves a pointer.
type Call = Pin<Box<dyn Future<Output = Result<(), Failure>> + Send>>;

/// A guest's call that nothing runs but its owner's polls, until
/// detached. Dropping it before then cancels the call (its instance is
/// dropped, which the call path logs as a client that went away).
pub struct GuestRun {
    state: State,
    /// The waker [`GuestRun::alongside`] polls with, made once per call.
    nudge: Arc<Nudge>,
}

/// Where a call is: still running, or over with its result.
enum State {
    Running(Call),
    Ended(Result<(), Failure>),
}

impl GuestRun {
    /// `call`, not started yet.
    pub fn new(call: impl Future<Output = Result<(), Failure>> + Send + 'static) -> GuestRun {
        GuestRun {
            state: State::Running(Box::pin(call)),
            nudge: Arc::default(),
        }
    }

    /// Moves the call forward as far as it goes without waiting.
    fn advance(&mut self, cx: &mut Context<'_>) {
        if let State::Running(call) = &mut self.state
            && let Poll::Ready(ended) = call.as_mut().poll(cx)
        {
            self.state = State::Ended(ended);
        }
    }

    /// Waits for `other` while moving the call forward (the guest is what
    /// `other` usually waits for).
    ///
    /// The two wake each other as they go (reading the body lets the
    /// guest's write finish, which lets the guest go on), and a task woken
    /// while it runs is rescheduled by Tokio as a yield, which wakes a
    /// parked worker thread: a futex call and often a move to the other
    /// thread for every request. So such wakes are taken here as "poll
    /// again", a few rounds at most, and only the rest reach Tokio.
    pub async fn alongside<T>(&mut self, other: impl Future<Output = T>) -> T {
        let mut other = pin!(other);
        let nudge = self.nudge.clone();
        let waker = Waker::from(nudge.clone());
        poll_fn(|cx| {
            nudge.begin(cx.waker());
            let mut inner = Context::from_waker(&waker);
            let mut rounds = 0;
            loop {
                self.advance(&mut inner);
                if let Poll::Ready(out) = other.as_mut().poll(&mut inner) {
                    nudge.end();
                    return Poll::Ready(out);
                }
                rounds += 1;
                // The last round's wake, if any, is left for `end`.
                if rounds == ROUNDS || !nudge.take() {
                    break;
                }
            }
            if nudge.end() {
                // Woken in the last round, or since: poll again later.
                cx.waker().wake_by_ref();
            }
            Poll::Pending
        })
        .await
    }

    /// Waits for the call to end; what it ended with.
    pub async fn finish(self) -> Result<(), Failure> {
        match self.state {
            State::Running(call) => call.await,
            State::Ended(ended) => ended,
        }
    }

    /// Lets a call that has not ended finish on its own task: nothing
    /// waits on it any more.
    pub fn detach(self) {
        if let State::Running(call) = self.state {
            tokio::spawn(call);
        }
    }
}

/// Rounds of polling one wake-up may take before Tokio is woken instead,
/// so a call and a body that keep waking each other still yield.
const ROUNDS: usize = 8;

/// The waker [`GuestRun::alongside`] polls with: a wake while the task is
/// polling is noted for another round; any other wake goes on to the
/// task's own waker.
#[derive(Default)]
struct Nudge {
    state: AtomicU8,
    task: Mutex<Option<Waker>>,
}

/// Not polling: wakes go to the task.
const IDLE: u8 = 0;
/// Polling, not woken yet.
const POLLING: u8 = 1;
/// Polling, and woken since the round began.
const WOKEN: u8 = 2;

impl Nudge {
    /// A poll begins, for the task `waker` wakes.
    fn begin(&self, waker: &Waker) {
        let mut task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        match &*task {
            Some(known) if known.will_wake(waker) => {}
            _ => *task = Some(waker.clone()),
        }
        drop(task);
        self.state.store(POLLING, Ordering::SeqCst);
    }

    /// Whether a wake came during this round; the next begins unwoken.
    fn take(&self) -> bool {
        self.state
            .compare_exchange(WOKEN, POLLING, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// The poll ends; whether a wake came that was not acted on.
    fn end(&self) -> bool {
        self.state.swap(IDLE, Ordering::SeqCst) == WOKEN
    }
}

impl Wake for Nudge {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self
            .state
            .compare_exchange(POLLING, WOKEN, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
            || self.state.load(Ordering::SeqCst) == WOKEN
        {
            return;
        }
        let task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(task) = &*task {
            task.wake_by_ref();
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

    /// Counts the wakes of the task polling.
    #[derive(Default)]
    struct Wakes(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_call_and_the_reader_it_feeds_wake_each_other_within_one_poll() {
        use std::future::Future;
        use std::task::{Context, Poll, Waker};

        // Each value is sent only once the reader took the one before, so
        // the two wake each other at every step.
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<u32>(1);
        let mut run = GuestRun::new(async move {
            for n in 0..3 {
                let _ = sender.send(n).await;
            }
            Ok(())
        });
        let read = async move {
            let mut got = Vec::new();
            while let Some(n) = receiver.recv().await {
                got.push(n);
                if got.len() == 3 {
                    break;
                }
            }
            got
        };
        let wakes = Arc::new(Wakes::default());
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let mut waiting = std::pin::pin!(run.alongside(read));
        let Poll::Ready(got) = waiting.as_mut().poll(&mut cx) else {
            panic!("the exchange needed the task woken again");
        };
        assert_eq!(got, vec![0, 1, 2]);
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            0,
            "no wake reached the task"
        );
    }
}
