//! What one instance's [`wasmtime::Store`] carries: one context per
//! interface the guest may import (each knowing only what it serves), the
//! WASI context (empty: no files, env, sockets or stdin), and the limits of
//! the call in progress. It never holds the host.

use std::sync::{Arc, Weak};
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtxView, WasiHttpView};

use super::failure_mark::FailureMark;
use super::limiter::MemoryLimiter;
use super::service::ServiceInfo;
use super::shared::Admitted;
use crate::api::config::ConfigCtx;
use crate::api::events::EventsCtx;
use crate::api::http::HttpCtx;
use crate::api::keyvalue::{KeyValueCtx, KeyValueView};
use crate::api::kv::KvCtx;
use crate::api::log::LogCtx;
use crate::api::messaging::{MessagingCtx, MessagingView};
use crate::api::request_id::RequestId;
use crate::api::services::{Calls, ServicesCtx};
use crate::api::stdio::GuestOutput;
use crate::api::trace::TraceView;
use crate::kv::KvStore;
use crate::metrics::Metrics;
use crate::queue::EventStore;
use crate::trace::{SpanScope, Tracing};

/// Per-instance host state.
pub struct InstanceState {
    /// `hive:service/log`.
    pub(crate) log: LogCtx,
    /// `hive:service/config`.
    pub(crate) config: ConfigCtx,
    /// `hive:service/kv`.
    pub(crate) kv: KvCtx,
    /// `hive:service/services` and typed calls.
    pub(crate) services: ServicesCtx,
    /// `hive:events/publisher` and `outbox`.
    pub(crate) events: EventsCtx,
    /// `wasi:messaging` (its resources live in the table).
    messaging: MessagingCtx,
    /// `wasi:keyvalue` and Spin's key-value (buckets live in the table).
    keyvalue: KeyValueCtx,
    /// The request being served, shared with the contexts that tag output.
    request_id: RequestId,
    /// The span the contexts' spans go below, shared with them.
    pub(crate) trace: SpanScope,
    /// The service's name, for the WASI context's stdout and stderr.
    component: Arc<str>,
    /// Made on the guest's first WASI call (see [`guest_wasi`]).
    wasi: Option<WasiCtx>,
    http: HttpCtx,
    table: ResourceTable,
    /// Checked by wasmtime whenever the guest grows memory or tables.
    pub(crate) limiter: MemoryLimiter,
    /// When the current call must stop; read on every epoch tick.
    pub(crate) deadline: Instant,
    /// Set if the current call fails, before the instance is dropped, so a
    /// `wasi:http` response body it was writing ends as cut off.
    pub(crate) failure_mark: Option<FailureMark>,
    /// The requests a shared instance (`instance-concurrency`) has taken
    /// and not finished: its failure is theirs.
    pub(crate) admitted: Vec<Admitted>,
}

/// What an instance's contexts are made from, besides its service.
#[derive(Clone)]
pub(crate) struct Grants {
    /// The key-value store (the service's namespace is its name).
    pub kv: Arc<dyn KvStore>,
    /// How calls to other services reach the host.
    pub calls: Weak<dyn Calls>,
    /// Topics and queues.
    pub events: Arc<dyn EventStore>,
    /// Where publishes are counted.
    pub metrics: Arc<Metrics>,
    /// Where spans are made; `None` when traces are off.
    pub tracing: Option<Arc<Tracing>>,
}

impl InstanceState {
    /// State for a call into `service`, `depth` calls below the request
    /// `request_id`.
    pub(crate) fn new(
        service: &ServiceInfo,
        grants: &Grants,
        request_id: Arc<str>,
        depth: u32,
    ) -> InstanceState {
        let name = &service.name;
        let request_id = RequestId::new(request_id);
        let trace = SpanScope::new(grants.tracing.as_ref());
        InstanceState {
            log: LogCtx::new(name.clone(), request_id.clone()),
            config: ConfigCtx::new(service.config.clone()),
            kv: KvCtx::new(grants.kv.clone(), name.clone(), trace.clone()),
            services: ServicesCtx::new(
                grants.calls.clone(),
                name.clone(),
                request_id.clone(),
                depth,
                trace.clone(),
            ),
            events: EventsCtx::new(
                grants.events.clone(),
                name.clone(),
                grants.metrics.clone(),
                trace.clone(),
            ),
            messaging: MessagingCtx::new(
                grants.events.clone(),
                name.clone(),
                grants.metrics.clone(),
                trace.clone(),
            ),
            keyvalue: KeyValueCtx::new(
                grants.kv.clone(),
                name.clone(),
                service.buckets.clone(),
                trace.clone(),
            ),
            http: HttpCtx::new(
                name.clone(),
                request_id.clone(),
                service.allowed_outbound.clone(),
                trace.clone(),
            ),
            request_id,
            trace,
            component: name.clone(),
            wasi: None,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(service.limits.memory_bytes),
            deadline: Instant::now(),
            failure_mark: None,
            admitted: Vec::new(),
        }
    }

    /// `wasi:messaging`'s view: its context and the resource table.
    pub(crate) fn messaging(&mut self) -> MessagingView<'_> {
        MessagingView {
            ctx: &mut self.messaging,
            table: &mut self.table,
        }
    }

    /// The key-value interfaces' view: the service's buckets and the
    /// resource table.
    pub(crate) fn keyvalue(&mut self) -> KeyValueView<'_> {
        KeyValueView {
            ctx: &mut self.keyvalue,
            table: &mut self.table,
        }
    }

    /// `hive:service/trace`'s view: the span scope and the resource table.
    pub(crate) fn trace_view(&mut self) -> TraceView<'_> {
        TraceView {
            scope: &self.trace,
            table: &mut self.table,
        }
    }

    /// The instance's resource table, where a delivered message is put.
    pub(crate) fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// Prepares an instance made earlier (reused, or made ahead) for its
    /// next call: every context now tags its output with `request_id`, and
    /// its own calls count from `depth`.
    pub(crate) fn begin_request(&mut self, request_id: Arc<str>, depth: u32) {
        self.request_id.set(request_id);
        self.services.set_depth(depth);
        self.failure_mark = None;
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let ctx = self
            .wasi
            .get_or_insert_with(|| guest_wasi(&self.component, &self.request_id));
        WasiCtxView {
            ctx,
            table: &mut self.table,
        }
    }
}

/// The WASI context of an instance of `component`: it grants nothing;
/// stdout and stderr go to the host log. Made only when the guest first
/// calls WASI: making one seeds two random generators, and most calls into
/// a Hive-world service (a typed call, say) never touch WASI.
fn guest_wasi(component: &Arc<str>, request_id: &RequestId) -> WasiCtx {
    WasiCtx::builder()
        .stdout(GuestOutput::new(
            component.clone(),
            request_id.clone(),
            "stdout",
        ))
        .stderr(GuestOutput::new(
            component.clone(),
            request_id.clone(),
            "stderr",
        ))
        .build()
}

impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        self.http.view(&mut self.table)
    }
}
