//! Host-side bindings for the `hive:service` world, for `hive:events` and
//! for `wasi:messaging`, generated from the same WIT files the guests use,
//! so both sides always agree on the contract.
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

#[allow(missing_docs)]
mod events_generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        inline: "
            package hive:host-events;
            world events {
                import hive:events/publisher@0.1.0;
                import hive:events/outbox@0.1.0;
                export hive:events/subscriber@0.1.0;
            }
        ",
        world: "events",
        exports: { default: async },
        // A publish waits for the store: async, so no Tokio worker blocks.
        imports: {
            "hive:events/publisher": async,
            "hive:events/outbox": async,
        },
    });
}

pub use events_generated::exports::hive::events::subscriber;
pub use events_generated::hive::events::{outbox, publisher, types as event_types};

#[allow(missing_docs)]
mod messaging_generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        inline: "
            package hive:host-messaging;
            world messaging {
                import wasi:messaging/producer@0.2.0-draft;
                export wasi:messaging/incoming-handler@0.2.0-draft;
            }
        ",
        world: "messaging",
        with: {
            "wasi:messaging/types.client": crate::api::messaging::Client,
            "wasi:messaging/types.message": crate::api::messaging::MessageData,
        },
        exports: { default: async },
        imports: {
            "wasi:messaging/producer": async | trappable,
            "wasi:messaging/types": trappable,
        },
    });
}

pub use messaging_generated::exports::wasi::messaging::incoming_handler;
pub use messaging_generated::wasi::messaging::{producer, types as messaging_types};
