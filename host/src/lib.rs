//! Hive: a host that runs microservices as sandboxed WebAssembly components.
//!
//! Each service is a component targeting the `hive:service` world (see
//! `wit/service.wit`) or the standard `wasi:http/proxy` world. The host
//! loads every `.wasm` in a folder, routes HTTP requests to them, and runs
//! each request in a fresh, isolated instance (or a kept one, for services
//! that opt into reuse).
//!
//! The modules form layers, each importing only the layers below it:
//!
//! ```text
//! tools/          build, new, dev, inspect, admin client (the CLI's helpers)
//! admin/          the admin listener
//! cluster/        many hosts, one deployment in Redis: publish, check, reconcile the folder
//! http/           the public listener: request -> hive_world | wasi_http
//! events/         subscriptions and schedules run: dispatchers, tickers
//! host            Host: runtime + registry; implements api::services::Calls
//! registry/       the live deployment snapshot, placing, providers, watcher
//! runtime/        engine, cache, loader, instance state, the one call path
//! api/            one file per imported interface: context, Host impl, linking
//! trace/          spans: W3C Trace Context, the recent-span ring, OTLP export
//! config/ kv/ queue/ router metrics digest fswatch logging wit_text   leaves
//! ```
//!
//! A request reads top to bottom: `http` asks the `registry` for the live
//! service, the `runtime` runs it, the guest's imports land in `api`, and
//! everything returns back up. A guest calling another service reaches up
//! only through the [`api::services::Calls`] trait, which `host` implements.
//!
//! This file is the crate's facade: the `hive` binary, the integration tests
//! and the benchmarks use what it re-exports; the modules stay private.

#![warn(missing_docs)]

pub(crate) mod admin;
pub(crate) mod api;
pub(crate) mod cluster;
pub(crate) mod config;
pub(crate) mod digest;
pub(crate) mod events;
pub(crate) mod fswatch;
pub(crate) mod host;
pub(crate) mod http;
pub(crate) mod kv;
pub(crate) mod logging;
pub(crate) mod metrics;
pub(crate) mod queue;
pub(crate) mod registry;
pub(crate) mod router;
pub(crate) mod runtime;
pub(crate) mod tools;
pub(crate) mod trace;
pub(crate) mod wit_text;

// Serving.
pub use admin::{Admin, serve as serve_admin};
pub use cluster::Cluster;
pub use cluster::membership::forget as forget_cluster;
pub use config::auth::AuthConfig;
pub use config::{
    HostConfig, HostPolicy, Limits, LimitsConfig, Secrets, ServerConfig, TraceSettings,
    TracesConfig, service_name,
};
pub use events::spawn as run_events;
pub use events::subscribe_deployed;
pub use fswatch::Watching;
pub use host::{Host, HostSettings, KvBackend};
pub use http::connections::ConnectionCaps;
pub use http::listener::shutdown_signal;
pub use http::serve;
pub use http::tls::acceptor as tls_acceptor;
pub use kv::durability::Durability;
pub use logging::capture::DEFAULT_REQUESTS_PER_SECOND as DEFAULT_CAPTURE_PER_SECOND;
pub use logging::{LogFormat, init as init_logging};
pub use registry::watcher::{spawn as watch_folder, spawn_secrets as watch_secrets};
pub use runtime::engine::EngineSettings;

// The command line's helpers.
pub use tools::build::build_components;
pub use tools::client::{AdminClient, format_events_table, format_table};
pub use tools::dev::spawn as watch_sources;
pub use tools::inspect::{Report, inspect};
pub use tools::new::{Framework, Lang, new_component};
pub use tools::top::run as top;
pub use tools::trace_tree::format_trace;
pub use tools::wit::write_wit;
pub use wit_text::shared_packages_in;

/// In-process entry points, for benchmarks that measure the host's own work
/// without HTTP: the same functions the front door calls.
pub mod bench {
    pub use crate::api::bindings::{Request, Response};
    pub use crate::http::convert::{to_http_response, to_wit_request};
    pub use crate::http::hive_world::invoke as invoke_hive_world;
    pub use crate::http::wasi_http::run as run_wasi_http;
    pub use crate::kv::KvStore;
    pub use crate::kv::redb::RedbStore;
    pub use crate::kv::redis_link::RedisLink;
    pub use crate::queue::embedded::EmbeddedQueue;
    pub use crate::queue::redis::RedisQueue;
    pub use crate::queue::{EventStore, Message, Settle};
    pub use crate::router::Router;
    pub use crate::runtime::failure_mark::FailureMark;
    pub use crate::runtime::floor;
}
