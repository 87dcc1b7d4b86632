//! Host-side bindings for the `hive:service` world, generated from the same
//! WIT files the guests use, so both sides always agree on the contract.
//!
//! The generated world struct is re-exported as [`HiveWorld`], so that
//! "service" in the host always means a loaded service, never the world.

#[allow(missing_docs)]
mod generated {
    wasmtime::component::bindgen!({
        world: "service",
        path: "../wit",
        // Exports are called with `call_async` so a guest never blocks a
        // Tokio worker: the epoch ticker makes it yield regularly.
        exports: { default: async },
        // Storage does I/O and `services.call` runs another instance: both
        // are async so they never block a Tokio worker.
        imports: {
            "hive:service/kv": async,
            "hive:service/services": async,
        },
    });
}

pub use generated::hive::service::types::{Request, Response};
pub use generated::hive::service::{config, kv, log, services, types};
pub use generated::{Service as HiveWorld, ServiceIndices as HiveWorldIndices};
