//! The worlds a component can target, told apart by its exports, and how
//! the host enters each: its pre-instantiated form, and the typed bindings
//! of a live instance.

use anyhow::{Result, bail};
use wasmtime::Engine;
use wasmtime::component::{Component, Instance, InstancePre};
use wasmtime::{AsContextMut, Store};
use wasmtime_wasi_http::p2::bindings::{Proxy, ProxyIndices};
use wasmtime_wasi_http::p3::bindings::{Service as P3Service, ServiceIndices as P3ServiceIndices};

use super::state::InstanceState;
use crate::api::bindings::{HiveWorld, HiveWorldIndices};

/// The export that makes a component a Hive service.
pub const HANDLER_EXPORT: &str = "hive:service/handler@0.1.0";

/// The export (any 0.2.x version) of a standard `wasi:http/proxy` component.
pub const WASI_HTTP_EXPORT_PREFIX: &str = "wasi:http/incoming-handler@0.2.";

/// The export (any 0.3.x version) of a `wasi:http/service` 0.3 component.
pub const WASI_HTTP_P3_EXPORT_PREFIX: &str = "wasi:http/handler@0.3.";

/// The worlds Hive serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    /// Hive's own `hive:service/service`: `handler.handle(request)`.
    Service,
    /// The standard `wasi:http/proxy`: `incoming-handler.handle`, streaming.
    Proxy,
    /// WASI 0.3's `wasi:http/service`: an async `handler.handle`, run on the
    /// concurrent engine.
    P3,
}

impl World {
    /// Tells which world `component` targets from its exports; rejects one
    /// that fits neither, listing what it imports and exports.
    pub fn of(engine: &Engine, component: &Component) -> Result<World> {
        let ty = component.component_type();
        let exports: Vec<&str> = ty.exports(engine).map(|(name, _)| name).collect();
        if let Some(world) = World::of_exports(exports.iter().copied()) {
            return Ok(world);
        }
        let imports: Vec<&str> = ty.imports(engine).map(|(name, _)| name).collect();
        let list = |names: &[&str]| {
            if names.is_empty() {
                "nothing".to_string()
            } else {
                names.join(", ")
            }
        };
        bail!(
            "not a Hive service: it exports {} and imports {}; Hive expects an export of \
             `{HANDLER_EXPORT}` (the hive:service/service world, see wit/), of \
             `wasi:http/incoming-handler@0.2.x` (the wasi:http/proxy world) or of \
             `wasi:http/handler@0.3.x` (the wasi:http/service 0.3 world; release \
             candidates such as 0.3.0-rc-... do not link)",
            list(&exports),
            list(&imports)
        )
    }

    /// The world a set of top-level export names says, if any.
    fn of_exports<'a>(exports: impl Iterator<Item = &'a str> + Clone) -> Option<World> {
        let mut names = exports.clone();
        if names.any(|name| name == HANDLER_EXPORT) {
            return Some(World::Service);
        }
        let mut names = exports.clone();
        if names.any(|name| name.starts_with(WASI_HTTP_EXPORT_PREFIX)) {
            return Some(World::Proxy);
        }
        let mut names = exports;
        // A release candidate (0.3.0-rc-...) would not link: not 0.3.
        if names.any(|name| name.starts_with(WASI_HTTP_P3_EXPORT_PREFIX) && !name.contains('-')) {
            return Some(World::P3);
        }
        None
    }

    /// The world a component's bytes say, read before compiling (which
    /// engine to compile it for depends on it); `None` when the top-level
    /// exports name none (compiling then says what is wrong).
    pub fn sniff(bytes: &[u8]) -> Option<World> {
        use wasmparser::{Parser, Payload};
        let mut depth = 0usize;
        let mut exports = Vec::new();
        for payload in Parser::new(0).parse_all(bytes) {
            match payload.ok()? {
                Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
                Payload::End(_) if depth == 0 => break,
                Payload::End(_) => depth -= 1,
                Payload::ComponentExportSection(section) if depth == 0 => {
                    for export in section.into_iter().flatten() {
                        exports.push(export.name.name);
                    }
                }
                _ => {}
            }
        }
        World::of_exports(exports.iter().copied())
    }

    /// The world's name, for logs and status pages.
    pub fn name(self) -> &'static str {
        match self {
            World::Service => "hive:service/service@0.1.0",
            World::Proxy => "wasi:http/proxy@0.2",
            World::P3 => "wasi:http/service@0.3",
        }
    }
}

/// A component linked and ready to instantiate, with the export indices of
/// its world so a live instance is bound without looking names up.
pub struct Entry {
    pre: InstancePre<InstanceState>,
    exports: WorldIndices,
}

enum WorldIndices {
    Service(HiveWorldIndices),
    Proxy(ProxyIndices),
    P3(P3ServiceIndices),
}

impl Entry {
    /// Checks that `pre`'s exports match `world`'s contract.
    pub fn new(pre: InstancePre<InstanceState>, world: World) -> Result<Entry> {
        let exports = match world {
            World::Service => WorldIndices::Service(
                HiveWorldIndices::new(&pre)
                    .map_err(anyhow::Error::from)
                    .map_err(|err| {
                        err.context(format!(
                            "its `{HANDLER_EXPORT}` export does not match the contract"
                        ))
                    })?,
            ),
            World::Proxy => WorldIndices::Proxy(
                ProxyIndices::new(&pre)
                    .map_err(anyhow::Error::from)
                    .map_err(|err| {
                        err.context(
                            "its wasi:http/incoming-handler export does not match wasi:http 0.2",
                        )
                    })?,
            ),
            World::P3 => WorldIndices::P3(
                P3ServiceIndices::new(&pre)
                    .map_err(anyhow::Error::from)
                    .map_err(|err| {
                        err.context("its wasi:http/handler export does not match wasi:http 0.3")
                    })?,
            ),
        };
        Ok(Entry { pre, exports })
    }

    /// The world it targets.
    pub fn world(&self) -> World {
        match self.exports {
            WorldIndices::Service(_) => World::Service,
            WorldIndices::Proxy(_) => World::Proxy,
            WorldIndices::P3(_) => World::P3,
        }
    }

    /// A new instance of a WASI 0.3 component, bound to its exports.
    pub async fn instantiate_p3(
        &self,
        store: &mut Store<InstanceState>,
    ) -> wasmtime::Result<P3Service> {
        let WorldIndices::P3(indices) = &self.exports else {
            wasmtime::bail!("it is not a wasi:http 0.3 component");
        };
        let instance = self.pre.instantiate_async(&mut *store).await?;
        indices.load(&mut *store, &instance)
    }

    /// A new instance in `store`.
    pub async fn instantiate(&self, store: &mut Store<InstanceState>) -> wasmtime::Result<Live> {
        let instance = self.pre.instantiate_async(&mut *store).await?;
        Ok(Live {
            instance,
            bound: None,
        })
    }
}

/// A live instance, with its world's bindings once something used them.
pub struct Live {
    /// The instance, for calls outside its world (typed calls).
    pub instance: Instance,
    bound: Option<Bound>,
}

enum Bound {
    Service(HiveWorld),
    Proxy(Proxy),
    P3(P3Service),
}

impl Live {
    /// The instance as a Hive service. Bound once per instance, so a reused
    /// instance skips the export type checks.
    pub fn hive(
        &mut self,
        store: impl AsContextMut<Data = InstanceState>,
        entry: &Entry,
    ) -> wasmtime::Result<&HiveWorld> {
        if !matches!(self.bound, Some(Bound::Service(_))) {
            let WorldIndices::Service(indices) = &entry.exports else {
                wasmtime::bail!("it is a wasi:http component, not a Hive service");
            };
            self.bound = Some(Bound::Service(indices.load(store, &self.instance)?));
        }
        match &self.bound {
            Some(Bound::Service(bound)) => Ok(bound),
            _ => wasmtime::bail!("the instance lost its bindings"),
        }
    }

    /// The instance as a `wasi:http/proxy` component, bound once likewise.
    pub fn proxy(
        &mut self,
        store: impl AsContextMut<Data = InstanceState>,
        entry: &Entry,
    ) -> wasmtime::Result<&Proxy> {
        if !matches!(self.bound, Some(Bound::Proxy(_))) {
            let WorldIndices::Proxy(indices) = &entry.exports else {
                wasmtime::bail!("it is a Hive service, not a wasi:http component");
            };
            self.bound = Some(Bound::Proxy(indices.load(store, &self.instance)?));
        }
        match &self.bound {
            Some(Bound::Proxy(bound)) => Ok(bound),
            _ => wasmtime::bail!("the instance lost its bindings"),
        }
    }

    /// The instance as a `wasi:http/service` 0.3 component, bound once.
    pub fn p3(
        &mut self,
        store: impl AsContextMut<Data = InstanceState>,
        entry: &Entry,
    ) -> wasmtime::Result<&P3Service> {
        if !matches!(self.bound, Some(Bound::P3(_))) {
            let WorldIndices::P3(indices) = &entry.exports else {
                wasmtime::bail!("it is not a wasi:http 0.3 component");
            };
            self.bound = Some(Bound::P3(indices.load(store, &self.instance)?));
        }
        match &self.bound {
            Some(Bound::P3(bound)) => Ok(bound),
            _ => wasmtime::bail!("the instance lost its bindings"),
        }
    }
}
