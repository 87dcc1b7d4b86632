//! The running host: the runtime (engine, grants, metrics) and the registry
//! of live services, bundled as the one shared value every connection and
//! request holds.
//!
//! It is also where a guest's calls to other services land: the runtime
//! below cannot know the registry, so it reaches up through the
//! [`Calls`] trait, which the host implements here by looking up the callee
//! in the live deployment and running it through the runtime's call path.

use std::path::PathBuf;
use std::sync::{Arc, Weak};

use anyhow::Result;
use wasmtime::component::Val;

use crate::api::bindings::services::CallError;
use crate::api::bindings::{Request, Response};
use crate::api::services::{BoxFuture, CallScope, Calls};
use crate::config::auth::CLAIMS_HEADER;
use crate::config::{HostPolicy, Limits, TraceSettings};
use crate::kv::KvStore;
use crate::kv::durability::Durability;
use crate::kv::redb::RedbStore;
use crate::kv::redis::RedisStore;
use crate::logging::escape;
use crate::metrics::Metrics;
use crate::queue::EventStore;
use crate::queue::embedded::EmbeddedQueue;
use crate::queue::redis::RedisQueue;
use crate::registry::Registry;
use crate::runtime::Runtime;
use crate::runtime::call::{Caller, MAX_CALL_DEPTH, call};
use crate::runtime::engine::{EngineSettings, EpochTicker};
use crate::runtime::failure::{CalleeError, CalleeErrorKind, FailureKind};
use crate::runtime::service::Service;
use crate::runtime::target::Targets;
use crate::runtime::typed::call_export;
use crate::runtime::world::World;
use crate::trace::{CallSite, CallSpans, TRACEPARENT, TRACESTATE, Tracing, traceparent};

/// Everything needed to start a host.
#[derive(Debug, Clone)]
pub struct HostSettings {
    /// Folder of `.wasm` files (and manifests) to serve.
    pub dir: PathBuf,
    /// Refuse to start if any file in `dir` fails to load.
    pub strict: bool,
    /// Engine capacity.
    pub engine: EngineSettings,
    /// Per-request limits.
    pub limits: Limits,
    /// Folder for compiled code reused across restarts; `None` disables it.
    pub cache_dir: Option<PathBuf>,
    /// Where the services' key-value data lives.
    pub kv: KvBackend,
    /// Secrets, the default `[auth]` and strict grants.
    pub policy: HostPolicy,
    /// Which spans are recorded and where they are exported.
    pub traces: TraceSettings,
}

/// Where the services' key-value data lives.
#[derive(Debug, Clone)]
pub enum KvBackend {
    /// The embedded store, `kv.redb` and its write log `kv.log` in this
    /// folder (one host's own).
    Embedded(PathBuf),
    /// A Redis server, shared by every host that names it, with when a
    /// write counts as done.
    Redis(String, Durability),
}

/// This process's name as a reader of shared queues: the machine, the
/// process and a random part, so two hosts (or a host and its restart)
/// never share one.
fn consumer_name() -> String {
    let machine = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{machine}-{}-{}", std::process::id(), &random[..8])
}

/// How a generic call refused for want of a grant is counted (the service
/// graph shows it as a refused edge).
pub const NOT_GRANTED_CALL: &str = "services.call (not granted)";

/// Shared state of a running host.
pub struct Host {
    /// The engine, what instances are granted, and the metrics.
    pub runtime: Runtime,
    /// The live services and routes.
    pub registry: Arc<Registry>,
}

impl Host {
    /// Builds the engine and loads every service in the folder. Blocking.
    pub fn start(settings: &HostSettings) -> Result<Arc<Host>> {
        let targets = Targets::new(&settings.engine, settings.cache_dir.as_deref())?;
        let engine = targets.classic.engine.clone();
        let concurrent_engine = targets.concurrent.engine.clone();
        let ticker = EpochTicker::start(&[&engine, &concurrent_engine])?;
        let metrics = Arc::new(Metrics::new());
        let tracing = Tracing::start(&settings.traces, &metrics)?;
        // Events live with the kv data, so a commit of both is one step.
        let (kv, events): (Arc<dyn KvStore>, Arc<dyn EventStore>) = match &settings.kv {
            KvBackend::Embedded(dir) => {
                let store = Arc::new(RedbStore::open(dir)?);
                (store.clone(), Arc::new(EmbeddedQueue::new(store)))
            }
            KvBackend::Redis(url, durability) => {
                let store = RedisStore::new(url, *durability, metrics.kv_failures())?;
                let queue = RedisQueue::new(store.link(), consumer_name(), metrics.kv_failures());
                (Arc::new(store), Arc::new(queue))
            }
        };
        let registry = Arc::new(Registry::new(
            targets,
            &settings.dir,
            settings.limits.clone(),
            settings.policy.clone(),
            metrics.clone(),
        )?);
        let host = Arc::new_cyclic(|host: &Weak<Host>| Host {
            runtime: Runtime::new(
                engine,
                concurrent_engine,
                ticker,
                (kv, events),
                metrics,
                host.clone(),
                tracing,
            ),
            registry,
        });
        // Each version that starts serving gets its instances made ahead.
        let weak = Arc::downgrade(&host);
        host.registry.on_serving(Box::new(move |service| {
            if let Some(host) = weak.upgrade() {
                host.runtime.prewarm(service);
            }
        }));
        host.registry.load_all(settings.strict)?;
        Ok(host)
    }

    /// Exports the spans still queued, for at most a few seconds: called
    /// once the listener has stopped.
    pub async fn flush_traces(&self) {
        if let Some(tracing) = self.runtime.tracing() {
            tracing.shutdown().await;
        }
    }

    /// The host's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.runtime.metrics
    }

    /// The service named `name` in the live deployment, if it is served.
    pub fn service(&self, name: &str) -> Option<Arc<Service>> {
        self.registry.current().services.get(name).cloned()
    }
}

impl Calls for Host {
    fn call_service(
        &self,
        scope: CallScope,
        service: String,
        mut request: Request,
    ) -> BoxFuture<'_, Result<Response, CallError>> {
        Box::pin(async move {
            // Claims come from the edge's verification only: a caller
            // cannot hand the callee claims of its own making.
            request
                .headers
                .retain(|(name, _)| !name.eq_ignore_ascii_case(CLAIMS_HEADER));
            let callee = match self.callee_by_name(&scope.caller, &service, &mut request) {
                Ok(callee) => callee,
                Err(refused) => {
                    if matches!(&refused, CallError::NotFound(reason) if reason.contains("not granted"))
                    {
                        self.metrics()
                            .call(&scope.caller, &service, NOT_GRANTED_CALL, true);
                    }
                    return Err(refused);
                }
            };
            let mut spans = self.runtime.tracing().and_then(|tracing| {
                tracing.call(scope.trace.as_ref(), || CallSite {
                    caller: scope.caller.clone(),
                    callee: callee.info.name.clone(),
                    via: Arc::from("services.call"),
                    method: Arc::from(format!("{} {}", request.method, request.route)),
                    request_id: scope.request_id.clone(),
                })
            });
            // The callee reads its trace context as a request would carry it.
            request.headers.retain(|(name, _)| {
                !name.eq_ignore_ascii_case(TRACEPARENT) && !name.eq_ignore_ascii_case(TRACESTATE)
            });
            if let Some(spans) = &spans {
                for (name, value) in traceparent(&spans.server_context()) {
                    request.headers.push((name.to_string(), value));
                }
            }
            let caller = Caller {
                request_id: scope.request_id.clone(),
                depth: scope.depth,
                mark: None,
                trace: spans.as_ref().map(CallSpans::server_context),
            };
            let outcome = call(&self.runtime, &callee, caller, async |store, live| {
                let world = live.hive(&mut *store, &callee.entry)?;
                world
                    .hive_service_handler()
                    .call_handle(&mut *store, &request)
                    .await
            })
            .await;
            let failed = outcome.is_err() || outcome.as_ref().is_ok_and(|r| r.status >= 500);
            self.metrics()
                .call(&scope.caller, callee.name(), "services.call", failed);
            if let Some(spans) = &mut spans {
                match &outcome {
                    Err(failure) => spans.fail(failure.kind.name(), &failure.describe()),
                    Ok(response) if response.status >= 500 => {
                        spans.fail("http.status", &format!("answered {}", response.status));
                    }
                    Ok(_) => {}
                }
            }
            drop(spans);
            outcome.map_err(|failure| {
                tracing::warn!(
                    request_id = %scope.request_id,
                    caller = %scope.caller,
                    callee = %service,
                    "call failed: {}",
                    escape(&failure.describe())
                );
                match failure.kind {
                    FailureKind::CallDepthExceeded => CallError::DepthExceeded(MAX_CALL_DEPTH),
                    kind if kind.is_unavailable() => CallError::Unavailable(failure.describe()),
                    _ => CallError::Failed(failure.describe()),
                }
            })
        })
    }

    fn call_interface<'a>(
        &'a self,
        scope: CallScope,
        interface: Arc<str>,
        func: Arc<str>,
        params: &'a [Val],
        results: &'a mut [Val],
    ) -> BoxFuture<'a, wasmtime::Result<()>> {
        Box::pin(async move {
            let provider = self.registry.current().providers.get(&*interface).cloned();
            let Some(provider) = provider else {
                let reason = "no service exports it".to_string();
                return Err(
                    CalleeError::new(&interface, CalleeErrorKind::Unavailable, reason).into(),
                );
            };
            let mut spans = self.runtime.tracing().and_then(|tracing| {
                tracing.call(scope.trace.as_ref(), || CallSite {
                    caller: scope.caller.clone(),
                    callee: provider.info.name.clone(),
                    via: interface.clone(),
                    method: func.clone(),
                    request_id: scope.request_id.clone(),
                })
            });
            let caller = Caller {
                request_id: scope.request_id.clone(),
                depth: scope.depth,
                mark: None,
                trace: spans.as_ref().map(CallSpans::server_context),
            };
            let outcome = call(&self.runtime, &provider, caller, async |store, live| {
                call_export(store, live, &interface, &func, params, results).await
            })
            .await;
            if let (Some(spans), Err(failure)) = (&mut spans, &outcome) {
                spans.fail(failure.kind.name(), &failure.describe());
            }
            drop(spans);
            self.metrics()
                .call(&scope.caller, provider.name(), &interface, outcome.is_err());
            outcome.map_err(|failure| CalleeError::from_failure(provider.name(), &failure).into())
        })
    }
}

impl Host {
    /// The service `name` for a generic call by `caller`, with the
    /// request's route and params filled in as an HTTP request to its path
    /// would have them. A callee the caller's `calls` does not grant is
    /// refused as not found, saying so.
    fn callee_by_name(
        &self,
        caller: &str,
        name: &str,
        request: &mut Request,
    ) -> Result<Arc<Service>, CallError> {
        let deployment = self.registry.current();
        if let Some(calling) = deployment.services.get(caller)
            && !calling.access.may_call(name)
        {
            return Err(CallError::NotFound(format!(
                "`{name}` is not granted to {caller}: add \"{name}\" to calls in {caller}.toml"
            )));
        }
        let Some(callee) = deployment.services.get(name).cloned() else {
            return Err(CallError::NotFound(format!("no service named `{name}`")));
        };
        if callee.entry.world() != World::Service {
            return Err(CallError::Failed(format!(
                "`{name}` is a wasi:http component; only Hive services take calls by name"
            )));
        }
        if let Some(found) = callee.own_routes.lookup(&request.path) {
            request.route = found.pattern.as_str().to_string();
            request.params = found.params.map_err(|invalid| {
                CallError::Failed(format!(
                    "path parameter `{}` is not UTF-8 once percent-decoded",
                    invalid.name
                ))
            })?;
        }
        Ok(callee)
    }
}
