//! Instances of a WASI 0.3 component that serve several requests at once
//! (`instance-concurrency` above 1).
//!
//! A 0.3 guest's `handle` is an async export: while one request waits on
//! I/O, the same instance can start the next. wasmtime-wasi-http's
//! [`ProxyHandler`] runs that (one worker per instance keeps the store's
//! event loop going and takes queued requests while it has room); this
//! module gives it Hive's rules. Instances are made like every other one
//! (limits, contexts, epoch deadline); each takes at most
//! `instance-concurrency` requests at once and, if `instance-reuse` is set,
//! that many in all; each request has the service's deadline to produce its
//! head, and a body still streaming that long after the last head is cut.
//! A trap or timeout ends the instance, and with it every request on it:
//! those waiting for their head get the failure, those streaming a body
//! have it cut off and counted. That is the trade-off the manifest opts
//! into.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio::time::Sleep;
use wasmtime::component::GuestTaskId;
use wasmtime::{Engine, Store, StoreContextMut};
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, Proxy, ShouldAccept, WorkerExpiration, WorkerState, WorkerStatus,
};
use wasmtime_wasi_http::{WasiHttpCtxView, WasiHttpView};

use super::failure::{Failure, FailureKind, guest_backtrace, trap_message};
use super::failure_mark::FailureMark;
use super::make_store;
use super::service::Service;
use super::state::{Grants, InstanceState};
use crate::logging::escape;
use crate::metrics::Metrics;

/// How long an instance with no request in flight waits for the next one.
const IDLE: Duration = Duration::from_secs(10);

/// Numbers shared instances, whose guest output is tagged with the
/// instance rather than with one of the requests it serves.
static INSTANCES: AtomicU64 = AtomicU64::new(0);

/// What a service's shared instances are made from.
pub(crate) struct SharedInstances {
    /// Weak: the service owns its handler. A replaced service makes no new
    /// instances; its running ones finish their requests and go idle.
    pub service: Weak<Service>,
    pub engine: Engine,
    pub grants: Grants,
    pub metrics: Arc<Metrics>,
}

impl HandlerState for SharedInstances {
    type StoreData = InstanceState;
    type WorkerExpiration = Expiry;
    type WorkerState = SharedWorker;

    async fn instantiate(&self) -> wasmtime::Result<Instance<InstanceState, Expiry, SharedWorker>> {
        let Some(service) = self.service.upgrade() else {
            wasmtime::bail!("the service was replaced");
        };
        let limits = &service.info.limits;
        let number = INSTANCES.fetch_add(1, Ordering::Relaxed);
        let label: Arc<str> = format!("shared-instance-{number}").into();
        let mut store = make_store(
            &self.engine,
            &self.grants,
            &self.metrics,
            &service,
            label,
            0,
        );
        store.data_mut().deadline = Instant::now() + limits.timeout;
        store.set_epoch_deadline(1);
        let proxy = tokio::time::timeout(limits.timeout, service.entry.instantiate_p3(&mut store))
            .await
            .map_err(|_| wasmtime::format_err!("instantiating took longer than its deadline"))??;
        Ok(Instance {
            store,
            proxy: Proxy::P3(proxy),
            view: http_view,
            expiration: Expiry::new(limits.timeout),
            state: SharedWorker {
                concurrency: limits.instance_concurrency as usize,
                total: (limits.instance_reuse > 1).then_some(limits.instance_reuse as usize),
                timeout: limits.timeout,
                component: service.info.name.clone(),
                metrics: self.metrics.clone(),
            },
        })
    }
}

fn http_view(state: &mut InstanceState) -> WasiHttpCtxView<'_> {
    state.http()
}

/// A request taken by a shared instance: what to tell it if the instance
/// fails under it.
pub(crate) struct Admitted {
    request_id: Arc<str>,
    mark: FailureMark,
    /// Open while the request waits for its head.
    failure: oneshot::Sender<Failure>,
}

impl Admitted {
    /// A request to admit, and where its failure arrives if the instance
    /// fails before it has a head.
    pub fn new(request_id: Arc<str>, mark: FailureMark) -> (Admitted, oneshot::Receiver<Failure>) {
        let (failure, receiver) = oneshot::channel();
        let admitted = Admitted {
            request_id,
            mark,
            failure,
        };
        (admitted, receiver)
    }

    /// Whether anyone still listens: the request waits for its head, or
    /// its body is still being sent.
    fn is_live(&self) -> bool {
        !self.failure.is_closed() || self.mark.is_watched()
    }
}

/// The rules of one shared instance.
pub(crate) struct SharedWorker {
    concurrency: usize,
    /// Requests it may take in all, if bounded.
    total: Option<usize>,
    timeout: Duration,
    component: Arc<str>,
    metrics: Arc<Metrics>,
}

impl WorkerState for SharedWorker {
    type StoreData = InstanceState;
    type RequestData = Admitted;

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if self.total.is_some_and(|most| total >= most) {
            ShouldAccept::Never
        } else if concurrent >= self.concurrency {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        mut store: StoreContextMut<'_, InstanceState>,
        admitted: Admitted,
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        let state = store.data_mut();
        // Guest code is interrupted once the newest request has had its
        // time: only then have all of them.
        state.deadline = Instant::now() + self.timeout;
        state.admitted.retain(Admitted::is_live);
        state.admitted.push(admitted);
        Box::pin(tokio::time::sleep(self.timeout))
    }

    fn drop(&self, mut store: Store<InstanceState>, result: wasmtime::Result<()>) {
        let Err(err) = result else {
            return;
        };
        // Ended from outside (the expiry) or interrupted by the epoch: both
        // are the deadline passing.
        let kind = if Instant::now() >= store.data().deadline {
            FailureKind::Timeout
        } else {
            FailureKind::classify(&err, store.data().limiter.hit)
        };
        let admitted = std::mem::take(&mut store.data_mut().admitted);
        // Marks are raised while the store, and so the writers of the bodies
        // still streaming, exists: those bodies then end cut off, not whole.
        let live: Vec<Admitted> = admitted.into_iter().filter(Admitted::is_live).collect();
        if live.is_empty() {
            // Nobody was waiting on it (the host shutting down drops its
            // workers this way too).
            tracing::debug!(component = %self.component, "a shared instance ended: {err}");
            return;
        }
        let trap = trap_message(&err);
        let detail = format!(
            "{trap}; the instance was serving {} request(s), all failed with it",
            live.len()
        );
        tracing::warn!(
            component = %self.component,
            kind = %kind.name(),
            requests = live.len(),
            trap = %escape(&trap),
            backtrace = %escape(&guest_backtrace(&err).unwrap_or_default()),
            "a shared instance failed; every request on it failed with it"
        );
        for request in live {
            request.mark.set(kind);
            let failure = Failure::with_detail(kind, detail.clone());
            if let Err(failure) = request.failure.send(failure) {
                // Its head is out: the body is cut, and nobody else will
                // count the failure.
                failure.record(&self.metrics, &self.component, &request.request_id);
            }
        }
        drop(store);
    }
}

/// When a shared instance is done: a request (or the guest's work after
/// the last response) past the deadline, or idle for [`IDLE`]. Polled
/// outside the store's event loop, so it holds even while the guest spins.
pub(crate) struct Expiry {
    timeout: Duration,
    until: Instant,
    sleep: Pin<Box<Sleep>>,
}

impl Expiry {
    fn new(timeout: Duration) -> Expiry {
        let until = Instant::now() + timeout;
        Expiry {
            timeout,
            until,
            sleep: Box::pin(tokio::time::sleep_until(until.into())),
        }
    }
}

impl WorkerExpiration for Expiry {
    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        status: WorkerStatus,
        since: Instant,
    ) -> Poll<()> {
        let this = &mut *self;
        let until = since
            + match status {
                WorkerStatus::Idle => IDLE,
                WorkerStatus::Requests | WorkerStatus::PostReturn => this.timeout,
            };
        if until != this.until {
            this.until = until;
            this.sleep.as_mut().reset(until.into());
        }
        this.sleep.as_mut().poll(cx)
    }
}
