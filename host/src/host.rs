//! The running host: the engine, its epoch ticker and the registry, bundled
//! as the one shared value every connection and request holds.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use wasmtime::Engine;

use crate::cache::CompileCache;
use crate::engine::{EngineSettings, EpochTicker, build_engine};
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::store::KvStore;
use crate::store::redb::RedbStore;

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
    /// Folder for the services' key-value data.
    pub data_dir: PathBuf,
}

/// Shared state of a running host.
pub struct Host {
    /// The one engine every service is compiled for.
    pub engine: Engine,
    /// The live services and routes.
    pub registry: Registry,
    /// Every service's key-value data, namespaced by service name.
    pub kv: Arc<dyn KvStore>,
    /// Counters and histograms served at the admin listener's `/metrics`.
    pub metrics: Arc<Metrics>,
    _ticker: EpochTicker,
}

impl Host {
    /// Builds the engine and loads every service in the folder. Blocking.
    pub fn start(settings: &HostSettings) -> Result<Arc<Host>> {
        let engine = build_engine(&settings.engine)?;
        let kv: Arc<dyn KvStore> = Arc::new(RedbStore::open(&settings.data_dir)?);
        let ticker = EpochTicker::start(&engine)?;
        let cache = match &settings.cache_dir {
            Some(dir) => Some(CompileCache::open(dir, &engine)?),
            None => None,
        };
        let metrics = Arc::new(Metrics::new());
        let registry = Registry::new(
            &engine,
            &settings.dir,
            settings.limits.clone(),
            cache,
            metrics.clone(),
        )?;
        let host = Arc::new(Host {
            engine,
            registry,
            kv,
            metrics,
            _ticker: ticker,
        });
        host.registry.load_all(settings.strict)?;
        Ok(host)
    }
}
