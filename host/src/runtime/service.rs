//! One loaded service: where it came from, what it may do, how it is
//! entered, and what it shares with other services. Built once per file
//! version by the [loader](super::loader); requests only instantiate it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use arc_swap::ArcSwapOption;
use tokio::sync::Semaphore;
use wasmtime_wasi_http::handler::ProxyHandler;

use super::access::Access;
use super::cache::CacheOutcome;
use super::pool::Pool;
use super::prewarm::Stock;
use super::shared::SharedInstances;
use super::typed::Interface;
use super::world::Entry;
use crate::config::{Limits, Origin, Schedule, Subscription, display_name};
use crate::metrics::{Metrics, ServiceMetrics};
use crate::router::{RoutePattern, Router};

/// What an instance's contexts need to know about its service. Its
/// `Debug` shows config keys, never values (a value may be a secret).
pub struct ServiceInfo {
    /// The service's name: its file name without `.wasm`. Shared, as every
    /// instance's log sinks and outbound policy carry it.
    pub name: Arc<str>,
    /// Values from the manifest's `[config]` table.
    pub config: Arc<BTreeMap<String, String>>,
    /// Limits for each of its requests.
    pub limits: Limits,
    /// Origins it may send HTTP requests to.
    pub allowed_outbound: Arc<[Origin]>,
    /// The named `wasi:keyvalue` buckets it may open besides its default.
    pub buckets: Arc<[String]>,
}

impl std::fmt::Debug for ServiceInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceInfo")
            .field("name", &self.name)
            .field("config_keys", &self.config.keys().collect::<Vec<_>>())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Where a loaded version came from.
#[derive(Debug)]
pub struct Source {
    /// The `.wasm` file.
    pub wasm_path: PathBuf,
    /// The manifest file, if there was one.
    pub manifest_path: Option<PathBuf>,
    /// The manifest's text, to tell a real manifest change from a touch.
    pub manifest_text: Option<String>,
    /// SHA-256 of the `.wasm` file, hex-encoded.
    pub digest: String,
    /// Whether the compiled code came from the cache.
    pub cache: CacheOutcome,
    /// When this version was loaded.
    pub loaded_at: SystemTime,
}

/// The interfaces a service shares with others, and whether its imports
/// are met right now.
#[derive(Debug)]
pub struct Links {
    /// Interfaces it imports from other services.
    pub imports: Vec<Interface>,
    /// Interfaces it exports to other services.
    pub exports: Vec<Interface>,
    /// Why it cannot be served right now (an import has no provider), or
    /// `None` when it can. Updated whenever the set of services changes.
    pub waiting: ArcSwapOption<String>,
}

/// What running it takes: slots, kept instances, metric handles.
pub(crate) struct Execution {
    /// One permit per instance allowed to run at once (`limits.concurrency`).
    pub slots: Arc<Semaphore>,
    /// Instances kept for reuse (only with `instance-reuse` above 1).
    pub pool: Pool,
    /// Never-used instances made ahead (only with `prewarm` above 0).
    pub stock: Stock,
    /// Its metric handles, made on first use (see [`Service::metrics`]).
    pub metrics: OnceLock<ServiceMetrics>,
    /// Its instances that serve several requests at once (WASI 0.3 with
    /// `instance-concurrency` above 1), made on first use.
    pub shared: OnceLock<ProxyHandler<SharedInstances>>,
}

/// A service ready to serve requests.
pub struct Service {
    /// Name, config and limits, shared with every instance.
    pub info: Arc<ServiceInfo>,
    /// The files this version was loaded from.
    pub source: Source,
    /// Routes it answers.
    pub routes: Vec<RoutePattern>,
    /// Pre-instantiated component; each request instantiates from this.
    pub entry: Entry,
    /// Interfaces shared with other services.
    pub links: Links,
    /// The topics it receives and its schedules.
    pub events: Events,
    /// Who may reach it, and what it may reach.
    pub access: Access,
    /// Its own routes as a router, for calls by name (a private service's
    /// routes are in no public router).
    pub own_routes: Router<()>,
    /// Built for Spin (see [`spin_sdk`](super::spin_sdk)): its `wasi:http`
    /// requests get the headers Spin sets.
    pub built_for_spin: bool,
    pub(crate) execution: Execution,
}

/// What a service receives besides requests: its manifest's
/// `[[subscribe]]` and `[[schedule]]` entries.
#[derive(Debug, Clone, Default)]
pub struct Events {
    /// Topics it subscribes to.
    pub subscriptions: Vec<Subscription>,
    /// Its schedules.
    pub schedules: Vec<Schedule>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("name", &self.info.name)
            .field("wasm_path", &self.source.wasm_path)
            .field("digest", &self.source.digest)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// Assembles a loaded service; its imports count as unmet until the
    /// registry links it.
    pub(crate) fn new(
        info: ServiceInfo,
        source: Source,
        routes: Vec<RoutePattern>,
        entry: Entry,
        (imports, exports): (Vec<Interface>, Vec<Interface>),
        events: Events,
        access: Access,
    ) -> Service {
        let waiting = (!imports.is_empty() || !access.missing_secrets.is_empty())
            .then(|| Arc::new("not linked yet".to_string()));
        let mut own_routes = Router::new();
        for route in &routes {
            // A route listed twice is refused when the service is placed.
            let _ = own_routes.insert(route.clone(), ());
        }
        Service {
            execution: Execution {
                slots: Arc::new(Semaphore::new(info.limits.concurrency)),
                pool: Pool::default(),
                stock: Stock::default(),
                metrics: OnceLock::new(),
                shared: OnceLock::new(),
            },
            info: Arc::new(info),
            source,
            routes,
            entry,
            links: Links {
                imports,
                exports,
                waiting: ArcSwapOption::new(waiting),
            },
            events,
            access,
            own_routes,
            built_for_spin: false,
        }
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// SHA-256 of its `.wasm`, hex-encoded.
    pub fn digest(&self) -> &str {
        &self.source.digest
    }

    /// Its metric series in `all`, looked up on the first request only.
    pub fn metrics(&self, all: &Metrics) -> &ServiceMetrics {
        self.execution
            .metrics
            .get_or_init(|| all.service(self.name()))
    }

    /// The file name (not the full path) of its `.wasm`, for messages.
    pub fn file_name(&self) -> String {
        display_name(&self.source.wasm_path)
    }
}
