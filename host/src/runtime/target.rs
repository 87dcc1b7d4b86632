//! What a component is compiled and linked for: an engine, the linker
//! holding everything a service may import on it, and its compile cache.
//! There are two: WASI 0.3 components need an engine with the
//! component-model async machinery, which would slow every other call (see
//! [`EngineKind`]), so they get one of their own.

use std::path::Path;

use anyhow::Result;
use wasmtime::Engine;
use wasmtime::component::Linker;

use super::cache::CompileCache;
use super::engine::{EngineKind, EngineSettings, build_engine};
use super::linker::host_linker;
use super::state::InstanceState;
use super::world::World;

/// An engine with its linker and compile cache.
pub struct Target {
    /// The engine components are compiled for.
    pub engine: Engine,
    /// Everything a service may import, on this engine.
    pub linker: Linker<InstanceState>,
    /// Compiled code reused across restarts, if enabled.
    pub cache: Option<CompileCache>,
}

/// Both targets.
pub struct Targets {
    /// WASI 0.2 and Hive-world components.
    pub classic: Target,
    /// WASI 0.3 components.
    pub concurrent: Target,
}

impl Target {
    fn new(
        settings: &EngineSettings,
        kind: EngineKind,
        cache_dir: Option<&Path>,
    ) -> Result<Target> {
        let engine = build_engine(settings, kind)?;
        let linker = host_linker(&engine, kind)?;
        let cache = match cache_dir {
            Some(dir) => Some(CompileCache::open(dir, &engine)?),
            None => None,
        };
        Ok(Target {
            engine,
            linker,
            cache,
        })
    }
}

impl Targets {
    /// Both engines with `settings`, their linkers, and caches in
    /// `cache_dir` (entries are keyed by engine, so they share it).
    pub fn new(settings: &EngineSettings, cache_dir: Option<&Path>) -> Result<Targets> {
        Ok(Targets {
            classic: Target::new(settings, EngineKind::Classic, cache_dir)?,
            concurrent: Target::new(settings, EngineKind::Concurrent, cache_dir)?,
        })
    }

    /// The target a component of `world` is built for.
    pub fn for_world(&self, world: World) -> &Target {
        match world {
            World::Service | World::Proxy | World::Worker => &self.classic,
            World::P3 => &self.concurrent,
        }
    }
}
