//! The one wasmtime [`Engine`] shared by every service, and its epoch ticker.
//!
//! The engine is configured once for what a request host needs: the pooling
//! allocator (instances are created per request, so allocation must be cheap),
//! copy-on-write memory images, and epoch interruption so long-running guests
//! yield to the async runtime and can be cut off at their deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances. Each tick makes every running guest yield to
/// Tokio once, which bounds how long one request can hog a worker thread.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Bytes of each freed linear memory kept mapped and reset in place for the
/// next instance. With Linux 6.7+ `PAGEMAP_SCAN` these are the pages the
/// guest actually wrote, wherever they are; without it, the first pages.
const KEEP_RESIDENT_MEMORY: usize = 1 << 20;

/// Bytes of each freed async (fiber) stack kept mapped for reuse.
const KEEP_RESIDENT_STACK: usize = 64 << 10;

/// Bytes of each freed table kept mapped for reuse.
const KEEP_RESIDENT_TABLE: usize = 64 << 10;

/// Engine-wide capacity settings.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Most component instances alive at once across all services.
    pub max_instances: u32,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            max_instances: 1000,
        }
    }
}

/// Which engine: the one for WASI 0.2 and Hive-world components, or the
/// one for WASI 0.3 (component-model async) components.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// Concurrency support off: every call is a plain async call, which
    /// keeps the per-store setup of the async machinery off the 0.2 and
    /// Hive-world request paths (it made them about 27% slower).
    Classic,
    /// Concurrency support on, which WASI 0.3 components need: their
    /// handlers are async functions run with `run_concurrent`.
    Concurrent,
}

/// Builds an engine of `kind`. Fails only if wasmtime rejects the
/// configuration, e.g. when the pooling allocator cannot reserve its
/// address space.
pub fn build_engine(settings: &EngineSettings, kind: EngineKind) -> Result<Engine> {
    let instances = settings.max_instances.max(1);
    // Ask the kernel which pages a guest dirtied so only those are reset;
    // older kernels reset the first KEEP_RESIDENT_MEMORY bytes blindly.
    let scan = PoolingAllocationConfig::is_pagemap_scan_available();
    tracing::debug!(pagemap_scan = scan, "instance memory reset");
    let mut pool = PoolingAllocationConfig::new();
    // A Rust component holds a handful of core instances, memories and tables
    // (its own plus the WASI adapter's), so give each component instance room.
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(8))
        .total_memories(instances.saturating_mul(2))
        .total_tables(instances.saturating_mul(4))
        .total_stacks(instances)
        // Reset the pages of a freed slot in place instead of handing them
        // back to the kernel: under load `madvise` costs a TLB shootdown
        // across every core and the next instance's page faults, per request.
        .linear_memory_keep_resident(KEEP_RESIDENT_MEMORY)
        .pagemap_scan(if scan { Enabled::Yes } else { Enabled::No })
        .table_keep_resident(KEEP_RESIDENT_TABLE)
        .async_stack_keep_resident(KEEP_RESIDENT_STACK)
        // The pool allows any 32-bit memory; each store's limiter enforces
        // the service's own, much smaller, limit.
        .max_memory_size(4 << 30);

    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .memory_init_cow(true)
        // See EngineKind: only WASI 0.3 components get the async machinery.
        .concurrency_support(kind == EngineKind::Concurrent)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config)
        .map_err(anyhow::Error::from)
        .context("configuring the WebAssembly engine")
}

/// Advances the engines' epochs every [`EPOCH_TICK`] on one background
/// thread for the whole host, never one per request. Stops when dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts ticking the epochs of `engines`.
    pub fn start(engines: &[&Engine]) -> Result<EpochTicker> {
        let stop = Arc::new(AtomicBool::new(false));
        let weak: Vec<_> = engines.iter().map(|engine| engine.weak()).collect();
        let thread_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name("hive-epoch".into())
            .spawn(move || {
                while !thread_stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    let mut alive = false;
                    for engine in weak.iter().filter_map(|weak| weak.upgrade()) {
                        engine.increment_epoch();
                        alive = true;
                    }
                    if !alive {
                        break;
                    }
                }
            })
            .context("starting the epoch ticker thread")?;
        Ok(EpochTicker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
