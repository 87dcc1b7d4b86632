//! Runs one call into a service on an instance, within the service's
//! limits: a concurrency slot, a memory limit, and a deadline enforced both
//! by epoch interruption (guest code) and a timer (host calls). [`run`]
//! uses a fresh instance and serves generic `services.call`s and typed
//! calls; [`handle`] and [`proxy`] serve HTTP requests in each world, on a
//! fresh instance or, for services that opted into reuse, on a kept one.

use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;
use wasmtime::{Store, StoreContextMut, UpdateDeadline};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::Proxy;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::bindings;
use crate::component::{Entry, Service};
use crate::dispatch::HttpBody;
use crate::failure::{Failure, trap_message};
use crate::guarded_body::CallFailed;
use crate::host::Host;
use crate::state::InstanceState;

/// What a `wasi:http` component sets as its response: a head with a
/// streaming body, or an error code.
pub type ResponseHead = Result<hyper::Response<HyperOutgoingBody>, ErrorCode>;

/// Where a `wasi:http` component's response head is sent.
pub type ResponseSender = tokio::sync::oneshot::Sender<ResponseHead>;

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
    check_waiting(service)?;
    let limits = &service.info.limits;
    let permit = acquire_slot(service).await?;
    let mut store = new_store(host, service, request_id, depth);
    arm_deadline(&mut store, limits.timeout);

    let _running = service.metrics(&host.metrics).in_flight();
    let mut cancelled = CancelGuard::new(service.name(), request_id);
    // The timer covers time the guest spends waiting in host calls (sleeping,
    // polling, calling other services), where epochs cannot reach it.
    let result = tokio::time::timeout(limits.timeout, call(&mut store, &service.entry)).await;
    cancelled.disarm();
    mark_if_failed(&store, &result);
    let memory_limit_hit = store.data().limiter.hit;
    // Return the instance's memory to the pool before freeing its slot.
    drop(store);
    drop(permit);
    outcome(result, memory_limit_hit)
}

/// An instance kept between requests, for services that opt into reuse.
pub struct WarmInstance {
    store: Store<InstanceState>,
    instance: Warmed,
    uses: u32,
}

/// The instance's bindings, by world.
enum Warmed {
    Service(bindings::Service),
    Proxy(Proxy),
}

/// Serves one Hive-world request: on a fresh instance, or, for a service
/// with `instance-reuse` above 1, on one kept from an earlier request when
/// there is one.
pub async fn handle(
    host: &Arc<Host>,
    service: &Arc<Service>,
    request_id: &Arc<str>,
    request: &bindings::Request,
) -> Result<bindings::Response, CallFailure> {
    let Entry::Service(pre) = &service.entry else {
        return Err(wrong_world("not a Hive service"));
    };
    if service.info.limits.instance_reuse <= 1 {
        return run(host, service, request_id, 0, async |store, _| {
            let instance = pre.instantiate_async(&mut *store).await?;
            instance
                .hive_service_handler()
                .call_handle(&mut *store, request)
                .await
        })
        .await;
    }
    run_reusing(host, service, request_id, async |store, warm| {
        let instance = match warm {
            Some(Warmed::Service(instance)) => instance,
            _ => pre.instantiate_async(&mut *store).await?,
        };
        let response = instance
            .hive_service_handler()
            .call_handle(&mut *store, request)
            .await?;
        Ok((Warmed::Service(instance), response))
    })
    .await
}

/// Serves one `wasi:http` request the same way as [`handle`]. `request` and
/// `sender` are the incoming request and where the response head goes;
/// `failure_mark` is set if the call fails (see [`CallFailed`]).
pub async fn proxy(
    host: &Arc<Host>,
    service: &Arc<Service>,
    request_id: &Arc<str>,
    request: http::Request<HttpBody>,
    sender: ResponseSender,
    failure_mark: CallFailed,
) -> Result<(), CallFailure> {
    let Entry::Proxy(pre) = &service.entry else {
        return Err(wrong_world("not a wasi:http component"));
    };
    // Hands the request and the response's destination to the instance.
    let prepare = |store: &mut Store<InstanceState>| {
        store.data_mut().failure_mark = Some(failure_mark);
        let request = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, request)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        Ok::<_, wasmtime::Error>((request, out))
    };
    if service.info.limits.instance_reuse <= 1 {
        return run(host, service, request_id, 0, async |store, _| {
            let (request, out) = prepare(store)?;
            let instance = pre.instantiate_async(&mut *store).await?;
            instance
                .wasi_http_incoming_handler()
                .call_handle(&mut *store, request, out)
                .await
        })
        .await;
    }
    run_reusing(host, service, request_id, async |store, warm| {
        let (request, out) = prepare(store)?;
        let instance = match warm {
            Some(Warmed::Proxy(instance)) => instance,
            _ => pre.instantiate_async(&mut *store).await?,
        };
        instance
            .wasi_http_incoming_handler()
            .call_handle(&mut *store, request, out)
            .await?;
        Ok((Warmed::Proxy(instance), ()))
    })
    .await
}

/// The reuse counterpart of [`run`]: `call` gets a kept instance when there
/// is one (else instantiates) and hands the instance back with its result.
/// The instance goes back for the next request unless the call failed in
/// any way (its state is then suspect), hit the memory limit, or it has
/// served `instance-reuse` requests.
async fn run_reusing<R>(
    host: &Arc<Host>,
    service: &Arc<Service>,
    request_id: &Arc<str>,
    call: impl AsyncFnOnce(&mut Store<InstanceState>, Option<Warmed>) -> wasmtime::Result<(Warmed, R)>,
) -> Result<R, CallFailure> {
    check_waiting(service)?;
    let limits = &service.info.limits;
    let permit = acquire_slot(service).await?;
    let warm = service
        .idle
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pop();
    let (mut store, instance, uses) = match warm {
        Some(warm) => (warm.store, Some(warm.instance), warm.uses),
        None => (new_store(host, service, request_id, 0), None, 0),
    };
    store.data_mut().begin_request(request_id.clone());
    arm_deadline(&mut store, limits.timeout);

    let _running = service.metrics(&host.metrics).in_flight();
    let mut cancelled = CancelGuard::new(service.name(), request_id);
    let result = tokio::time::timeout(limits.timeout, call(&mut store, instance)).await;
    cancelled.disarm();
    mark_if_failed(&store, &result);
    let memory_limit_hit = store.data().limiter.hit;
    let (instance, value) = outcome(result, memory_limit_hit)?;
    keep_warm(service, store, instance, uses + 1);
    drop(permit);
    Ok(value)
}

/// Tells whoever watches the call (a `wasi:http` response body) that it
/// failed, while the instance, and so the body's writer, still exists.
fn mark_if_failed<R>(
    store: &Store<InstanceState>,
    result: &Result<wasmtime::Result<R>, tokio::time::error::Elapsed>,
) {
    if !matches!(result, Ok(Ok(_)))
        && let Some(mark) = &store.data().failure_mark
    {
        mark.set();
    }
}

/// A service waiting for an interface it imports cannot take calls.
fn check_waiting(service: &Service) -> Result<(), CallFailure> {
    match service.waiting.load_full() {
        Some(reason) => Err(CallFailure {
            detail: Some(reason.to_string()),
            ..CallFailure::new(Failure::Waiting)
        }),
        None => Ok(()),
    }
}

fn wrong_world(detail: &str) -> CallFailure {
    CallFailure {
        detail: Some(detail.to_string()),
        ..CallFailure::new(Failure::InvalidResponse)
    }
}

/// Puts an instance that served `uses` requests back for the next request,
/// unless it has reached the service's `instance-reuse`.
fn keep_warm(service: &Service, store: Store<InstanceState>, instance: Warmed, uses: u32) {
    if uses >= service.info.limits.instance_reuse {
        return;
    }
    let warm = WarmInstance {
        store,
        instance,
        uses,
    };
    service
        .idle
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(warm);
}

/// Takes one of the service's concurrency slots, waiting briefly when all
/// are busy: a service at its limit sheds load rather than queueing without
/// bound.
async fn acquire_slot(service: &Service) -> Result<OwnedSemaphorePermit, CallFailure> {
    // The common case needs no timer.
    if let Ok(permit) = service.slots.clone().try_acquire_owned() {
        return Ok(permit);
    }
    let wait = service.info.limits.queue_timeout;
    match tokio::time::timeout(wait, service.slots.clone().acquire_owned()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err(CallFailure::new(Failure::Overloaded)),
    }
}

fn new_store(
    host: &Arc<Host>,
    service: &Service,
    request_id: &Arc<str>,
    depth: u32,
) -> Store<InstanceState> {
    service.metrics(&host.metrics).instance_created();
    let state = InstanceState::new(
        service.info.clone(),
        request_id.clone(),
        host.clone(),
        depth,
    );
    let mut store = Store::new(&host.engine, state);
    store.limiter(|state| &mut state.limiter);
    store.epoch_deadline_callback(on_epoch_tick);
    store
}

/// Starts the store's deadline clock for one call. The epoch callback was
/// installed once by [`new_store`]; this only moves the deadline it reads.
fn arm_deadline(store: &mut Store<InstanceState>, timeout: Duration) {
    store.data_mut().deadline = Instant::now() + timeout;
    store.set_epoch_deadline(1);
}

/// On every epoch tick the guest yields to Tokio, so it shares its worker
/// thread; once past the deadline it is interrupted with a trap, which
/// carries the guest's backtrace into the log.
fn on_epoch_tick(store: StoreContextMut<'_, InstanceState>) -> wasmtime::Result<UpdateDeadline> {
    Ok(if Instant::now() >= store.data().deadline {
        UpdateDeadline::Interrupt
    } else {
        UpdateDeadline::Yield(1)
    })
}

fn outcome<R>(
    result: Result<wasmtime::Result<R>, tokio::time::error::Elapsed>,
    memory_limit_hit: bool,
) -> Result<R, CallFailure> {
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
