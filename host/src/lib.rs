//! Hive: a host that runs microservices as sandboxed WebAssembly components.
//!
//! Each service is a component targeting the `hive:service` world (see
//! `wit/service.wit`). The host loads every `.wasm` in a folder, routes HTTP
//! requests to them, and runs each request in a fresh, isolated instance.
//!
//! Data flows one way: [`server`] accepts a connection, [`dispatch`] asks the
//! [`router`] (inside the [`registry`]'s live [`registry::Deployment`]) which
//! service answers, instantiates it and calls it; anything the guest asks of
//! the host goes through [`api`].

pub mod admin;
pub mod api;
pub mod bindings;
pub mod builder;
pub mod cache;
pub mod client;
pub mod component;
pub mod config;
pub mod convert;
pub mod dev;
pub mod dispatch;
pub mod engine;
pub mod failure;
pub mod guarded_body;
pub mod host;
pub mod inspect;
pub mod invoke;
pub mod limits;
pub mod link;
pub mod logging;
pub mod manifest;
pub mod metrics;
pub mod outbound;
pub mod problem;
pub mod proxy;
pub mod registry;
pub mod router;
pub mod scaffold;
pub mod server;
pub mod state;
pub mod store;
pub mod watcher;
