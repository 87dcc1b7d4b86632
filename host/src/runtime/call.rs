//! The one way into a service: every HTTP request, generic
//! `services.call` and typed call runs through [`call`].
//!
//! A call takes one of the service's concurrency slots, gets an instance (a
//! fresh one, or for a service that opted into reuse one kept from an
//! earlier call), arms the deadline, runs the caller's code on it, and
//! turns what happened into a [`Failure`] kind. The deadline is enforced
//! both by epoch interruption (guest code) and by a timer (time the guest
//! spends waiting in host calls, where epochs cannot reach it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanContext, SpanKind};
use tokio::sync::OwnedSemaphorePermit;
use wasmtime::{Store, StoreContextMut, UpdateDeadline};

use super::Runtime;
use super::failure::{Failure, FailureKind};
use super::failure_mark::FailureMark;
use super::pool::Warm;
use super::prewarm::{self, Ready};
use super::service::Service;
use super::state::InstanceState;
use super::world::Live;
use crate::trace::HostSpan;

/// Nested calls allowed below one HTTP request; deeper is treated as a cycle.
pub const MAX_CALL_DEPTH: u32 = 8;

/// Who a call is for.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The HTTP request this call serves, for logs and error bodies.
    pub request_id: Arc<str>,
    /// How many calls deep below that request (0: the request itself).
    pub depth: u32,
    /// Raised if the call fails, before its instance is dropped (see
    /// [`FailureMark`]); `None` when nothing streams the call's output.
    pub mark: Option<FailureMark>,
    /// The span the call's work goes below (the request's, a delivery's,
    /// or a call's server span); `None` when traces are off.
    pub trace: Option<SpanContext>,
}

impl Caller {
    /// The HTTP request `request_id` itself.
    pub fn request(request_id: Arc<str>) -> Caller {
        Caller {
            request_id,
            depth: 0,
            mark: None,
            trace: None,
        }
    }

    /// This caller, its work below `trace`.
    pub fn traced(self, trace: Option<SpanContext>) -> Caller {
        Caller { trace, ..self }
    }
}

/// Runs `run` on an instance of `service` within the service's limits.
pub async fn call<R>(
    runtime: &Runtime,
    service: &Arc<Service>,
    caller: Caller,
    run: impl AsyncFnOnce(&mut Store<InstanceState>, &mut Live) -> wasmtime::Result<R>,
) -> Result<R, Failure> {
    if caller.depth > MAX_CALL_DEPTH {
        return Err(Failure::with_detail(
            FailureKind::CallDepthExceeded,
            format!("call depth {MAX_CALL_DEPTH} exceeded; is there a cycle?"),
        ));
    }
    if let Some(reason) = service.links.waiting.load_full() {
        return Err(Failure::with_detail(
            FailureKind::Waiting,
            reason.to_string(),
        ));
    }
    let limits = &service.info.limits;
    let permit = acquire_slot(service).await?;
    let reuse = limits.instance_reuse > 1;
    let kept = if reuse {
        service.execution.pool.take()
    } else {
        None
    };
    let (mut store, live, uses, origin) = match kept {
        Some(warm) => (warm.store, Some(warm.live), warm.uses, Origin::Reused),
        None => match made_ahead(runtime, service) {
            Some(ready) => (ready.store, Some(ready.live), 0, Origin::MadeAhead),
            None => (
                runtime.new_store(service, caller.request_id.clone(), caller.depth),
                None,
                0,
                Origin::Fresh,
            ),
        },
    };
    if origin != Origin::Fresh {
        store
            .data_mut()
            .begin_request(caller.request_id.clone(), caller.depth);
    }
    store.data_mut().failure_mark = caller.mark;
    store.data().trace.enter(caller.trace.clone());
    arm_deadline(&mut store, limits.timeout);

    let metrics = service.metrics(&runtime.metrics);
    let _running = metrics.in_flight();
    let mut cancelled = CancelGuard::new(service.name(), &caller.request_id);
    let result = tokio::time::timeout(limits.timeout, async {
        let mut span = instance_span(runtime, &caller.trace, service, origin);
        let mut live = match live {
            Some(live) => live,
            None => match service.entry.instantiate(&mut store).await {
                Ok(live) => live,
                Err(err) => {
                    if let Some(span) = &mut span {
                        span.fail("instantiate", format!("{err:#}"));
                    }
                    return Err(err);
                }
            },
        };
        drop(span);
        let value = run(&mut store, &mut live).await?;
        Ok((live, value))
    })
    .await;
    cancelled.disarm();
    let memory_limit_hit = store.data().limiter.hit;
    let outcome = outcome(result, memory_limit_hit);
    if origin != Origin::Reused && limits.prewarm > 0 {
        // Only now: a task spawned earlier could take this worker from the
        // call it was made for.
        prewarm::after_call(runtime, service, origin == Origin::MadeAhead);
    }
    if let (Err(failure), Some(mark)) = (&outcome, &store.data().failure_mark) {
        // Tell whoever streams the call's output that it failed, while the
        // instance, and so the output's writer, still exists.
        mark.set(failure.kind);
    }
    match outcome {
        Ok((live, value)) => {
            let uses = uses + 1;
            if reuse && uses < limits.instance_reuse && !memory_limit_hit {
                service.execution.pool.put(Warm { store, live, uses });
                drop(permit);
            } else if caller.depth == 0 {
                retire(store, permit);
            } else {
                // A nested call's caller often calls again at once, and its
                // next instance gets the slot this one frees, whose pages
                // are warm: freeing it later would hand it a cold one.
                drop(store);
                drop(permit);
            }
            Ok(value)
        }
        Err(failure) => {
            drop(store);
            drop(permit);
            Err(failure)
        }
    }
}

/// Where a call's instance came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Made for this call, on its path.
    Fresh,
    /// Made ahead, never used (`prewarm`).
    MadeAhead,
    /// Kept from an earlier call (`instance-reuse`).
    Reused,
}

/// A never-used instance made ahead, if the service keeps any and one is
/// ready.
fn made_ahead(runtime: &Runtime, service: &Service) -> Option<Ready> {
    if service.info.limits.prewarm == 0 {
        return None;
    }
    let ready = service.execution.stock.take();
    if ready.is_some() {
        service.metrics(&runtime.metrics).instance_made_ahead();
    }
    ready
}

/// The span of getting the call an instance: made fresh (how long that
/// took), or made ahead or reused (a mark, nearly no time).
fn instance_span(
    runtime: &Runtime,
    parent: &Option<SpanContext>,
    service: &Service,
    origin: Origin,
) -> Option<HostSpan> {
    let tracing = runtime.tracing()?;
    let parent = parent.as_ref().filter(|parent| parent.is_sampled())?;
    let mut span = tracing.child(
        format!("instantiate {}", service.name()),
        SpanKind::Internal,
        parent,
    )?;
    span.set_all([
        KeyValue::new("hive.component", service.info.name.clone()),
        KeyValue::new(
            "hive.instance",
            match origin {
                Origin::Fresh => "fresh",
                Origin::MadeAhead => "prewarmed",
                Origin::Reused => "reused",
            },
        ),
    ]);
    Some(span)
}

/// Tears down a finished request's instance after the request has its
/// answer: resetting the instance's memory and tables takes microseconds
/// the response need not wait for, and on a task of its own they follow
/// writing it. The slot is freed only after the instance's memory is back
/// in the pool, so a service never holds more instances than its slots.
fn retire(store: Store<InstanceState>, permit: OwnedSemaphorePermit) {
    tokio::spawn(async move {
        drop(store);
        drop(permit);
    });
}

/// Takes one of the service's concurrency slots, waiting briefly when all
/// are busy: a service at its limit sheds load rather than queueing without
/// bound.
pub(crate) async fn acquire_slot(service: &Service) -> Result<OwnedSemaphorePermit, Failure> {
    let slots = &service.execution.slots;
    // The common case needs no timer.
    if let Ok(permit) = slots.clone().try_acquire_owned() {
        return Ok(permit);
    }
    let wait = service.info.limits.queue_timeout;
    match tokio::time::timeout(wait, slots.clone().acquire_owned()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err(Failure::new(FailureKind::Overloaded)),
    }
}

/// Starts the store's deadline clock for one call. The epoch callback was
/// installed once when the store was made; this only moves the deadline
/// it reads.
pub(super) fn arm_deadline(store: &mut Store<InstanceState>, timeout: Duration) {
    store.data_mut().deadline = Instant::now() + timeout;
    store.set_epoch_deadline(1);
}

/// On every epoch tick the guest yields to Tokio, so it shares its worker
/// thread; once past the deadline it is interrupted with a trap, which
/// carries the guest's backtrace into the log.
pub(super) fn on_epoch_tick(
    store: StoreContextMut<'_, InstanceState>,
) -> wasmtime::Result<UpdateDeadline> {
    Ok(if Instant::now() >= store.data().deadline {
        UpdateDeadline::Interrupt
    } else {
        UpdateDeadline::Yield(1)
    })
}

fn outcome<R>(
    result: Result<wasmtime::Result<R>, tokio::time::error::Elapsed>,
    memory_limit_hit: bool,
) -> Result<R, Failure> {
    match result {
        Ok(Ok(value)) => Ok(value),
        Err(_elapsed) => Err(Failure::new(FailureKind::Timeout)),
        Ok(Err(err)) => Err(Failure::from_error(err, memory_limit_hit)),
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
