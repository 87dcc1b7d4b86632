//! Running guest code: the engine and its epoch ticker, compiled and linked
//! services, the state each instance carries, and the one call path every
//! request and every call between services takes.
//!
//! This layer knows nothing of HTTP serving, the registry or the host: a
//! guest that calls another service reaches up through
//! [`Calls`](crate::api::services::Calls), which the host implements.

pub mod access;
pub mod cache;
pub mod call;
pub mod deliver;
pub mod engine;
pub mod failure;
pub mod failure_mark;
pub mod floor;
pub mod limiter;
pub mod linker;
pub mod loader;
pub mod pool;
pub mod prewarm;
pub mod rate;
pub mod service;
pub mod shared;
pub mod spin_sdk;
pub mod state;
pub mod target;
pub mod typed;
pub mod world;

use std::sync::{Arc, Weak};

use wasmtime::{Engine, Store};
use wasmtime_wasi_http::handler::ProxyHandler;

use self::engine::EpochTicker;
use self::service::Service;
use self::shared::SharedInstances;
use self::state::{Grants, InstanceState};
use self::world::World;
use crate::api::services::Calls;
use crate::kv::KvStore;
use crate::metrics::Metrics;
use crate::queue::EventStore;
use crate::trace::Tracing;

/// What every instance is made with: the engines, the grants its contexts
/// draw on, and the metrics its calls are counted in.
pub struct Runtime {
    /// The engine of WASI 0.2 and Hive-world services.
    pub engine: Engine,
    /// The engine of WASI 0.3 services.
    pub concurrent_engine: Engine,
    /// Counters and histograms served at the admin listener's `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Makes every instance's store: the engines again, and the grants.
    maker: StoreMaker,
    _ticker: EpochTicker,
}

impl Runtime {
    /// A runtime on `engine` and `concurrent_engine` (whose epochs `ticker`
    /// advances). `calls` is how guests reach other services (weak: the
    /// host owns the runtime).
    pub fn new(
        engine: Engine,
        concurrent_engine: Engine,
        ticker: EpochTicker,
        stores: (Arc<dyn KvStore>, Arc<dyn EventStore>),
        metrics: Arc<Metrics>,
        calls: Weak<dyn Calls>,
        tracing: Option<Arc<Tracing>>,
    ) -> Runtime {
        let (kv, events) = stores;
        let maker = StoreMaker {
            engine: engine.clone(),
            concurrent_engine: concurrent_engine.clone(),
            grants: Grants {
                kv,
                calls,
                events,
                metrics: metrics.clone(),
                tracing,
            },
            metrics: metrics.clone(),
        };
        Runtime {
            engine,
            concurrent_engine,
            metrics,
            maker,
            _ticker: ticker,
        }
    }

    /// Where spans are made; `None` when traces are off.
    pub fn tracing(&self) -> Option<&Arc<Tracing>> {
        self.maker.grants.tracing.as_ref()
    }

    /// The event store instances publish to.
    pub fn events(&self) -> &Arc<dyn EventStore> {
        &self.maker.grants.events
    }

    /// A store for a new instance of `service`, serving `request_id`
    /// `depth` calls below the HTTP request.
    pub(crate) fn new_store(
        &self,
        service: &Service,
        request_id: Arc<str>,
        depth: u32,
    ) -> Store<InstanceState> {
        self.maker.store(service, request_id, depth)
    }

    /// Starts making `service`'s instances ahead, if its `prewarm` asks
    /// for any (see [`prewarm`]).
    pub fn prewarm(&self, service: &Arc<Service>) {
        prewarm::top_up(self, service, None);
    }

    /// What makes stores, for a task of its own (see [`prewarm`]).
    pub(crate) fn maker(&self) -> StoreMaker {
        self.maker.clone()
    }

    /// The instances of `service` (a WASI 0.3 component with
    /// `instance-concurrency` above 1) that serve several requests at once,
    /// made on its first request.
    pub(crate) fn shared<'a>(
        &self,
        service: &'a Arc<Service>,
    ) -> &'a ProxyHandler<SharedInstances> {
        service.execution.shared.get_or_init(|| {
            ProxyHandler::new(SharedInstances {
                service: Arc::downgrade(service),
                engine: self.concurrent_engine.clone(),
                grants: self.maker.grants.clone(),
                metrics: self.metrics.clone(),
            })
        })
    }
}

/// What makes every instance's store: the engines and the grants. The
/// runtime holds one; a task that outlives a borrow of the runtime
/// (making instances ahead) holds a clone.
#[derive(Clone)]
pub(crate) struct StoreMaker {
    engine: Engine,
    concurrent_engine: Engine,
    grants: Grants,
    metrics: Arc<Metrics>,
}

impl StoreMaker {
    /// A store for a new instance of `service`, serving `request_id`
    /// `depth` calls below the HTTP request.
    pub(crate) fn store(
        &self,
        service: &Service,
        request_id: Arc<str>,
        depth: u32,
    ) -> Store<InstanceState> {
        let engine = match service.entry.world() {
            World::P3 => &self.concurrent_engine,
            World::Service | World::Proxy | World::Worker => &self.engine,
        };
        make_store(
            engine,
            &self.grants,
            &self.metrics,
            service,
            request_id,
            depth,
        )
    }
}

/// A store on `engine` for a new instance of `service`, its limiter and
/// epoch callback installed.
fn make_store(
    engine: &Engine,
    grants: &Grants,
    metrics: &Metrics,
    service: &Service,
    request_id: Arc<str>,
    depth: u32,
) -> Store<InstanceState> {
    service.metrics(metrics).instance_created();
    let state = InstanceState::new(&service.info, grants, request_id, depth);
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limiter);
    store.epoch_deadline_callback(call::on_epoch_tick);
    store
}
