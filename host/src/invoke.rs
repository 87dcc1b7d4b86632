//! Runs one call into a service on a fresh instance, within the service's
//! limits: a concurrency slot, a memory limit, and a deadline enforced both
//! by epoch interruption (guest code) and a timer (host calls). Used for
//! HTTP requests, generic `services.call`s and typed calls alike.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::{Store, UpdateDeadline};

use crate::component::{Entry, Service};
use crate::failure::{Failure, trap_message};
use crate::host::Host;
use crate::state::InstanceState;

/// Why a call did not complete, with what is needed to report it.
#[derive(Debug)]
pub struct CallFailure {
    /// What kind of failure, which picks the status.
    pub failure: Failure,
    /// The wasmtime error behind it, if any (trap, backtrace, callee).
    pub error: Option<wasmtime::Error>,
    /// Extra explanation, such as the interface a service is waiting for.
    pub detail: Option<String>,
}

impl CallFailure {
    fn new(failure: Failure) -> CallFailure {
        CallFailure {
            failure,
            error: None,
            detail: None,
        }
    }

    /// One line saying what happened, for callers and logs.
    pub fn describe(&self) -> String {
        let mut text = self.failure.message().to_string();
        if let Some(detail) = &self.detail {
            text.push_str(": ");
            text.push_str(detail);
        }
        if let Some(err) = &self.error {
            text.push_str(": ");
            text.push_str(&trap_message(err));
        }
        text
    }
}

/// Instantiates `service` in a fresh store and runs `call` on it. `depth`
/// is how many calls deep this is below the HTTP request (0 for the request
/// itself).
pub async fn run<R>(
    host: &Arc<Host>,
    service: &Arc<Service>,
    request_id: &Arc<str>,
    depth: u32,
    call: impl AsyncFnOnce(&mut Store<InstanceState>, &Entry) -> wasmtime::Result<R>,
) -> Result<R, CallFailure> {
    if let Some(reason) = service.waiting.load_full() {
        return Err(CallFailure {
            detail: Some(reason.to_string()),
            ..CallFailure::new(Failure::Waiting)
        });
    }
    let limits = &service.info.limits;

    // Wait briefly for a slot; a service at its limit sheds load rather than
    // queueing without bound.
    let permit =
        match tokio::time::timeout(limits.queue_timeout, service.slots.clone().acquire_owned())
            .await
        {
            Ok(Ok(permit)) => permit,
            _ => return Err(CallFailure::new(Failure::Overloaded)),
        };

    let state = InstanceState::new(
        service.info.clone(),
        request_id.clone(),
        host.clone(),
        depth,
    );
    let mut store = Store::new(&host.engine, state);
    store.limiter(|state| &mut state.limiter);
    // On every epoch tick the guest yields to Tokio, so it shares its worker
    // thread; once past the deadline it is interrupted with a trap, which
    // carries the guest's backtrace into the log.
    let deadline = Instant::now() + limits.timeout;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        Ok(if Instant::now() >= deadline {
            UpdateDeadline::Interrupt
        } else {
            UpdateDeadline::Yield(1)
        })
    });

    let _running = host.metrics.in_flight(service.name());
    let mut cancelled = CancelGuard::new(service.name(), request_id);
    // The timer covers time the guest spends waiting in host calls (sleeping,
    // polling, calling other services), where epochs cannot reach it.
    let result = tokio::time::timeout(limits.timeout, call(&mut store, &service.entry)).await;
    cancelled.disarm();
    let memory_limit_hit = store.data().limiter.hit;
    // Return the instance's memory to the pool before freeing its slot.
    drop(store);
    drop(permit);

    match result {
        Ok(Ok(value)) => Ok(value),
        Err(_elapsed) => Err(CallFailure::new(Failure::Timeout)),
        Ok(Err(err)) => Err(CallFailure {
            failure: Failure::classify(&err, memory_limit_hit),
            error: Some(err),
            detail: None,
        }),
    }
}

/// Logs when a call is dropped mid-flight, which happens when the HTTP
/// client disconnects: hyper drops the request's future, and with it the
/// instance, so the guest's work stops at its next yield.
struct CancelGuard<'a> {
    component: &'a str,
    request_id: &'a str,
    armed: bool,
}

impl<'a> CancelGuard<'a> {
    fn new(component: &'a str, request_id: &'a str) -> Self {
        CancelGuard {
            component,
            request_id,
            armed: true,
        }
    }

    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for CancelGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            tracing::warn!(
                request_id = %self.request_id,
                component = %self.component,
                "client went away; request cancelled and its instance dropped"
            );
        }
    }
}
