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
use crate::api::bindings::{HiveWorld, HiveWorldIndices, incoming_handler, subscriber};

/// The export that makes a component a Hive service.
pub const HANDLER_EXPORT: &str = "hive:service/handler@0.1.0";

/// The export (any 0.2.x version) of a standard `wasi:http/proxy` component.
pub const WASI_HTTP_EXPORT_PREFIX: &str = "wasi:http/incoming-handler@0.2.";

/// The export (any 0.3.x version) of a `wasi:http/service` 0.3 component.
pub const WASI_HTTP_P3_EXPORT_PREFIX: &str = "wasi:http/handler@0.3.";

/// The export that receives a service's topics and schedule ticks.
pub const SUBSCRIBER_EXPORT: &str = "hive:events/subscriber@0.1.0";

/// The export that receives messages in the `wasi:messaging` proposal.
pub const MESSAGING_EXPORT: &str = "wasi:messaging/incoming-handler@0.2.0-draft";

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
    /// No HTTP handler, only a subscriber (`hive:events/subscriber` or
    /// `wasi:messaging/incoming-handler`): it has no routes and runs only
    /// for deliveries.
    Worker,
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
             `wasi:http/incoming-handler@0.2.x` (the wasi:http/proxy world), of \
             `wasi:http/handler@0.3.x` (the wasi:http/service 0.3 world; release \
             candidates such as 0.3.0-rc-... do not link), or only a subscriber \
             (`{SUBSCRIBER_EXPORT}` or `{MESSAGING_EXPORT}`)",
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
        let mut names = exports.clone();
        // A release candidate (0.3.0-rc-...) would not link: not 0.3.
        if names.any(|name| name.starts_with(WASI_HTTP_P3_EXPORT_PREFIX) && !name.contains('-')) {
            return Some(World::P3);
        }
        let mut names = exports;
        if names.any(|name| name == SUBSCRIBER_EXPORT || name == MESSAGING_EXPORT) {
            return Some(World::Worker);
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
            World::Worker => "hive:events/subscriber (no HTTP)",
        }
    }
}

/// A component linked and ready to instantiate, with the export indices of
/// its world so a live instance is bound without looking names up.
pub struct Entry {
    pre: InstancePre<InstanceState>,
    exports: WorldIndices,
    /// Where deliveries go, if it subscribes.
    receiver: Option<ReceiverIndices>,
}

enum WorldIndices {
    Service(HiveWorldIndices),
    Proxy(ProxyIndices),
    P3(P3ServiceIndices),
    Worker,
}

/// How a component receives deliveries.
enum ReceiverIndices {
    Subscriber(subscriber::GuestIndices),
    Messaging(incoming_handler::GuestIndices),
}

/// Which export receives a component's deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receiver {
    /// `hive:events/subscriber.handle(delivery) -> disposition`.
    Subscriber,
    /// `wasi:messaging/incoming-handler.handle(message) -> result`.
    Messaging,
}

impl Receiver {
    /// The export's name, for messages.
    pub fn export(self) -> &'static str {
        match self {
            Receiver::Subscriber => SUBSCRIBER_EXPORT,
            Receiver::Messaging => MESSAGING_EXPORT,
        }
    }
}

impl Entry {
    /// Checks that `pre`'s exports match `world`'s contract, and those of
    /// the subscriber it exports, if any.
    pub fn new(pre: InstancePre<InstanceState>, world: World) -> Result<Entry> {
        let receiver = receiver_indices(&pre)?;
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
            World::Worker => WorldIndices::Worker,
        };
        Ok(Entry {
            pre,
            exports,
            receiver,
        })
    }

    /// The export that receives its deliveries, if it has one.
    pub fn receiver(&self) -> Option<Receiver> {
        match self.receiver {
            Some(ReceiverIndices::Subscriber(_)) => Some(Receiver::Subscriber),
            Some(ReceiverIndices::Messaging(_)) => Some(Receiver::Messaging),
            None => None,
        }
    }

    /// The world it targets.
    pub fn world(&self) -> World {
        match self.exports {
            WorldIndices::Service(_) => World::Service,
            WorldIndices::Proxy(_) => World::Proxy,
            WorldIndices::P3(_) => World::P3,
            WorldIndices::Worker => World::Worker,
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
            receiver: None,
        })
    }
}

/// The indices of the subscriber `pre` exports, checked against the
/// contract; `None` when it exports none.
fn receiver_indices(pre: &InstancePre<InstanceState>) -> Result<Option<ReceiverIndices>> {
    let component = pre.component();
    let engine = component.engine();
    let exports: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    if exports.iter().any(|name| name == SUBSCRIBER_EXPORT) {
        let indices = subscriber::GuestIndices::new(pre)
            .map_err(anyhow::Error::from)
            .map_err(|err| {
                err.context(format!(
                    "its `{SUBSCRIBER_EXPORT}` export does not match the contract"
                ))
            })?;
        return Ok(Some(ReceiverIndices::Subscriber(indices)));
    }
    if exports.iter().any(|name| name == MESSAGING_EXPORT) {
        let indices = incoming_handler::GuestIndices::new(pre)
            .map_err(anyhow::Error::from)
            .map_err(|err| {
                err.context(format!(
                    "its `{MESSAGING_EXPORT}` export does not match wasi:messaging 0.2.0-draft"
                ))
            })?;
        return Ok(Some(ReceiverIndices::Messaging(indices)));
    }
    Ok(None)
}

/// A live instance, with its world's bindings once something used them.
pub struct Live {
    /// The instance, for calls outside its world (typed calls).
    pub instance: Instance,
    bound: Option<Bound>,
    receiver: Option<BoundReceiver>,
}

enum BoundReceiver {
    Subscriber(subscriber::Guest),
    Messaging(incoming_handler::Guest),
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

    /// The instance's `hive:events/subscriber`, bound once.
    pub fn subscriber(
        &mut self,
        store: impl AsContextMut<Data = InstanceState>,
        entry: &Entry,
    ) -> wasmtime::Result<&subscriber::Guest> {
        if !matches!(self.receiver, Some(BoundReceiver::Subscriber(_))) {
            let Some(ReceiverIndices::Subscriber(indices)) = &entry.receiver else {
                wasmtime::bail!("it does not export {SUBSCRIBER_EXPORT}");
            };
            self.receiver = Some(BoundReceiver::Subscriber(
                indices.load(store, &self.instance)?,
            ));
        }
        match &self.receiver {
            Some(BoundReceiver::Subscriber(bound)) => Ok(bound),
            _ => wasmtime::bail!("the instance lost its bindings"),
        }
    }

    /// The instance's `wasi:messaging/incoming-handler`, bound once.
    pub fn messaging(
        &mut self,
        store: impl AsContextMut<Data = InstanceState>,
        entry: &Entry,
    ) -> wasmtime::Result<&incoming_handler::Guest> {
        if !matches!(self.receiver, Some(BoundReceiver::Messaging(_))) {
            let Some(ReceiverIndices::Messaging(indices)) = &entry.receiver else {
                wasmtime::bail!("it does not export {MESSAGING_EXPORT}");
            };
            self.receiver = Some(BoundReceiver::Messaging(
                indices.load(store, &self.instance)?,
            ));
        }
        match &self.receiver {
            Some(BoundReceiver::Messaging(bound)) => Ok(bound),
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
