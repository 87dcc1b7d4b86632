//! Host-side bindings for the `hive:service` world, for `hive:events`, for
//! `wasi:messaging` and for the standard interfaces Hive serves so that
//! components written for other hosts run unchanged (`wasi:keyvalue`,
//! `wasi:config`, `wasi:logging`, Spin's key-value and variables),
//! generated from the same WIT files the guests use, so both sides always
//! agree on the contract.
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
            "hive:service/trace": trappable,
        },
        with: {
            "hive:service/trace.span": crate::api::trace::GuestSpan,
        },
    });
}

pub use generated::hive::service::types::{Request, Response};
pub use generated::hive::service::{config, kv, log, services, trace, types};
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

#[allow(missing_docs)]
mod standard_generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        inline: "
            package hive:host-standard;
            world standard {
                import wasi:keyvalue/store@0.2.0-draft;
                import wasi:keyvalue/atomics@0.2.0-draft;
                import wasi:keyvalue/batch@0.2.0-draft;
                import wasi:keyvalue/store@0.2.0-draft2;
                import wasi:keyvalue/atomics@0.2.0-draft2;
                import wasi:keyvalue/batch@0.2.0-draft2;
                import fermyon:spin/key-value@2.0.0;
                import fermyon:spin/variables@2.0.0;
                import wasi:config/store@0.2.0-rc.1;
                import wasi:config/store@0.2.0-draft;
                import wasi:config/runtime@0.2.0-draft;
                import wasi:config/store@0.2.0-draft-2024-09-27;
                import wasi:logging/logging@0.1.0-draft;
                import wasi:logging/logging;
            }
        ",
        world: "standard",
        // One bucket type for every version: a handle is a namespace of
        // the service's, whichever interface opened it.
        with: {
            "wasi:keyvalue/store.bucket": crate::api::keyvalue::Bucket,
            "wasi:keyvalue/atomics.cas": crate::api::keyvalue::Cas,
            "fermyon:spin/key-value.store": crate::api::keyvalue::Bucket,
        },
        // Storage does I/O: async, so no Tokio worker blocks; trappable,
        // so a handle the guest made up is a trap, not a store error.
        imports: {
            "wasi:keyvalue": async | trappable,
            "fermyon:spin/key-value": async | trappable,
        },
    });
}

pub use standard_generated::fermyon::spin::{
    key_value as spin_key_value, variables as spin_variables,
};
pub use standard_generated::wasi::config0_2_0_draft::{
    runtime as config_draft_runtime, store as config_draft,
};
pub use standard_generated::wasi::config0_2_0_draft_2024_09_27::store as config_2024_09_27;
pub use standard_generated::wasi::config0_2_0_rc_1::store as config_rc;
pub use standard_generated::wasi::keyvalue0_2_0_draft::{
    atomics as kv_draft_atomics, batch as kv_draft_batch, store as kv_draft,
};
pub use standard_generated::wasi::keyvalue0_2_0_draft2::{
    atomics as kv_draft2_atomics, batch as kv_draft2_batch, store as kv_draft2,
};
pub use standard_generated::wasi::logging::logging as logging_unversioned;
pub use standard_generated::wasi::logging0_1_0_draft::logging as logging_draft;
