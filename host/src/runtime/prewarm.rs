//! Fresh instances made ahead (`prewarm = N` in `[limits]`): a service
//! keeps up to N never-used instances ready, so a request that needs a
//! fresh instance takes one instead of waiting while it is made (about a
//! millisecond for a Python service). Isolation is unchanged: each is
//! still used for one request (or its `instance-reuse` quota) and dropped;
//! only the making moves off the request path.
//!
//! A task of its own tops the stock up when a service starts serving and
//! after each call that took one, and ends once the stock is full: an idle
//! service runs no task, a saturated one makes its instances on its calls
//! as without `prewarm` (see [`after_call`]), and a replaced version's
//! stock is dropped with it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use wasmtime::Store;

use super::call::arm_deadline;
use super::service::Service;
use super::state::InstanceState;
use super::world::Live;
use super::{Runtime, StoreMaker};

/// How long a service whose instance could not be made ahead waits before
/// the next try (its requests make their own meanwhile), so a component
/// that cannot be instantiated does not fill the log or the CPU.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// How long a service whose calls found no instance ready waits before
/// making more ahead (see [`after_call`]).
const PAUSE: Duration = Duration::from_millis(10);

/// A never-used instance with its store.
pub(crate) struct Ready {
    pub store: Store<InstanceState>,
    pub live: Live,
}

/// A service's instances made ahead, and whether a task is making more.
#[derive(Default)]
pub(crate) struct Stock {
    ready: Mutex<Vec<Ready>>,
    filling: AtomicBool,
}

impl Stock {
    /// A ready instance, if there is one.
    pub fn take(&self) -> Option<Ready> {
        self.lock().pop()
    }

    /// How many are ready.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Ready>> {
        // A poisoned lock only means a panic elsewhere; the list is intact.
        self.ready.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Tops `service`'s stock up after a call that needed a fresh instance:
/// at once if the call found one ready (`took_one`); after [`PAUSE`] if it
/// had to make its own. Demand then outruns the stock, every instance made
/// ahead would be taken as soon as it is ready, and making it elsewhere
/// only adds a hand-off between threads (measured: 0.85x the throughput of
/// a Rust hello at 16 connections when the stock was topped up after every
/// call); so a saturated service makes its instances on its calls, as
/// without `prewarm`, and the stock fills again once it is quieter.
pub(crate) fn after_call(runtime: &Runtime, service: &Arc<Service>, took_one: bool) {
    top_up(runtime, service, if took_one { None } else { Some(PAUSE) });
}

/// Starts topping `service`'s stock up to its `prewarm` count, after
/// `pause` if given, unless it wants none, is full, or a task is at it
/// already. Needs a Tokio runtime; without one it does nothing (the next
/// request tops up).
pub(crate) fn top_up(runtime: &Runtime, service: &Arc<Service>, pause: Option<Duration>) {
    let want = service.info.limits.prewarm as usize;
    let stock = &service.execution.stock;
    if want == 0 || stock.len() >= want || stock.filling.swap(true, Ordering::AcqRel) {
        return;
    }
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        stock.filling.store(false, Ordering::Release);
        return;
    };
    let maker = runtime.maker();
    let service = service.clone();
    handle.spawn(async move {
        match pause {
            Some(pause) => tokio::time::sleep(pause).await,
            // Behind whatever this worker was doing (answering the request
            // that took the last one), not ahead of it.
            None => tokio::task::yield_now().await,
        }
        fill(&maker, &service, want).await;
    });
}

/// Makes instances until `want` are ready. Runs while `filling` is set.
async fn fill(maker: &StoreMaker, service: &Arc<Service>, want: usize) {
    let stock = &service.execution.stock;
    loop {
        while stock.len() < want {
            match make(maker, service).await {
                Ok(ready) => stock.lock().push(ready),
                Err(err) => {
                    tracing::warn!(
                        component = %service.name(),
                        "cannot make an instance of {} ahead (prewarm): {err:#}; its requests \
                         make their own, and the first one after {} s tries again",
                        service.file_name(),
                        RETRY_AFTER.as_secs()
                    );
                    tokio::time::sleep(RETRY_AFTER).await;
                    stock.filling.store(false, Ordering::Release);
                    return;
                }
            }
        }
        stock.filling.store(false, Ordering::Release);
        // A take between the last count and now saw `filling` set and left
        // the topping up to this task: look once more.
        if stock.len() >= want || stock.filling.swap(true, Ordering::AcqRel) {
            return;
        }
    }
}

/// One new instance of `service`, serving no request yet (the call that
/// takes it names its request). Instantiating runs the component's start
/// code, so it gets the service's deadline like any call.
async fn make(maker: &StoreMaker, service: &Service) -> anyhow::Result<Ready> {
    let mut store = maker.store(service, Arc::from("-"), 0);
    let timeout = service.info.limits.timeout;
    arm_deadline(&mut store, timeout);
    let live = tokio::time::timeout(timeout, service.entry.instantiate(&mut store))
        .await
        .map_err(|_| anyhow::anyhow!("instantiating took longer than its {timeout:?} timeout"))?
        .map_err(anyhow::Error::from)?;
    Ok(Ready { store, live })
}
