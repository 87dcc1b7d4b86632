//! What one instance's [`wasmtime::Store`] carries: the service it belongs
//! to, its WASI context (empty: no files, env, sockets or stdin), and its
//! resource limits.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::api::http::HttpState;
use crate::api::stdio::{GuestOutput, RequestId};
use crate::component::ServiceInfo;
use crate::guarded_body::CallFailed;
use crate::host::Host;
use crate::limits::MemoryLimiter;

/// Per-instance host state, created for every request.
pub struct InstanceState {
    /// The service this instance runs; host APIs read its name and config.
    pub service: Arc<ServiceInfo>,
    /// Request id, so guest log lines can be tied to the request log line.
    pub request_id: Arc<str>,
    /// The same id as seen by the instance's stdout and stderr.
    output_request_id: RequestId,
    /// The host, for calls into other services and the key-value store.
    pub host: Arc<Host>,
    /// Calls deep below the HTTP request: 0 for the request itself.
    pub depth: u32,
    wasi: WasiCtx,
    http: HttpState,
    table: ResourceTable,
    /// Checked by wasmtime whenever the guest grows memory or tables.
    pub limiter: MemoryLimiter,
    /// When the current call must stop; read on every epoch tick.
    pub deadline: Instant,
    /// Set if the current call fails, before the instance is dropped, so a
    /// `wasi:http` response body it was writing ends as cut off.
    pub failure_mark: Option<CallFailed>,
}

impl InstanceState {
    /// State for one request to `service`. The WASI context grants nothing:
    /// stdout and stderr go to the host log, everything else is denied.
    pub fn new(
        service: Arc<ServiceInfo>,
        request_id: Arc<str>,
        host: Arc<Host>,
        depth: u32,
    ) -> InstanceState {
        let output_request_id: RequestId =
            Arc::new(arc_swap::ArcSwap::from_pointee(request_id.to_string()));
        let wasi = WasiCtx::builder()
            .stdout(GuestOutput::new(
                service.name.clone(),
                output_request_id.clone(),
                "stdout",
            ))
            .stderr(GuestOutput::new(
                service.name.clone(),
                output_request_id.clone(),
                "stderr",
            ))
            .build();
        let limiter = MemoryLimiter::new(service.limits.memory_bytes);
        let http = HttpState::new(
            service.name.clone(),
            request_id.clone(),
            service.allowed_outbound.clone(),
        );
        InstanceState {
            service,
            request_id,
            output_request_id,
            host,
            depth,
            wasi,
            http,
            table: ResourceTable::new(),
            limiter,
            deadline: Instant::now(),
            failure_mark: None,
        }
    }
}

impl InstanceState {
    /// Prepares a reused instance for its next request.
    pub fn begin_request(&mut self, request_id: Arc<str>) {
        self.output_request_id
            .store(Arc::new(request_id.to_string()));
        self.request_id = request_id;
        self.failure_mark = None;
    }

    /// The `wasi:http` state and the resource table, borrowed together.
    pub(crate) fn http_parts(&mut self) -> (&mut HttpState, &mut ResourceTable) {
        (&mut self.http, &mut self.table)
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
