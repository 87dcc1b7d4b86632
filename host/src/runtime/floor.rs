//! The floor under a call to a fresh instance: a store, an instance of the
//! service's linked component, one call on it, and the store dropped, with
//! nothing of Hive's call path around it (no concurrency slot, deadline
//! timer, metrics, failure kinds, or the caller's side of a typed call).
//!
//! Only the benchmarks use it. Set beside the same call through Hive, it
//! shows how much of a fresh call is wasmtime's work, which no change to
//! Hive can win back, and how much is Hive's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::Store;
use wasmtime::component::Val;

use super::Runtime;
use super::service::Service;
use super::state::InstanceState;
use super::typed::call_export;
use super::world::Live;
use crate::api::bindings::{Request, Response};

/// Long enough for any benchmark call; the store needs some deadline for
/// its epoch callback to read.
const FLOOR_DEADLINE: Duration = Duration::from_secs(60);

/// A store for one floor call, its deadline set as [`super::call`] would.
fn store(runtime: &Runtime, service: &Service) -> Store<InstanceState> {
    let mut store = runtime.new_store(service, Arc::from("floor"), 0);
    store.data_mut().deadline = Instant::now() + FLOOR_DEADLINE;
    store.set_epoch_deadline(1);
    store
}

/// `handler.handle(request)` on a fresh instance of the Hive-world
/// `service`, and nothing else.
pub async fn handle(
    runtime: &Runtime,
    service: &Service,
    request: &Request,
) -> wasmtime::Result<Response> {
    let mut store = store(runtime, service);
    let mut live = service.entry.instantiate(&mut store).await?;
    let world = live.hive(&mut store, &service.entry)?;
    world
        .hive_service_handler()
        .call_handle(&mut store, request)
        .await
}

/// One instance of a Hive-world service kept for call after call, as
/// `instance-reuse` keeps one, with nothing of Hive's call path around the
/// calls either.
pub struct Kept {
    store: Store<InstanceState>,
    live: Live,
}

impl Kept {
    /// Instantiates `service` once.
    pub async fn new(runtime: &Runtime, service: &Service) -> wasmtime::Result<Kept> {
        let mut store = store(runtime, service);
        let live = service.entry.instantiate(&mut store).await?;
        Ok(Kept { store, live })
    }

    /// `handler.handle(request)` on the kept instance.
    pub async fn handle(
        &mut self,
        service: &Service,
        request: &Request,
    ) -> wasmtime::Result<Response> {
        let world = self.live.hive(&mut self.store, &service.entry)?;
        world
            .hive_service_handler()
            .call_handle(&mut self.store, request)
            .await
    }
}

/// `interface.func(params)` on a fresh instance of `service`, the way a
/// typed call reaches its callee, and nothing else.
pub async fn call(
    runtime: &Runtime,
    service: &Service,
    interface: &str,
    func: &str,
    params: &[Val],
    results: &mut [Val],
) -> wasmtime::Result<()> {
    let mut store = store(runtime, service);
    let live = service.entry.instantiate(&mut store).await?;
    call_export(&mut store, &live, interface, func, params, results).await
}
