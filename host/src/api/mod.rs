//! The host side of each interface a service imports, one file per
//! interface: its context type (holding only what that interface serves),
//! the generated `Host` trait implemented on it, and its `add_to_linker`.
//! Nothing here knows the host, the registry or HTTP serving; a guest that
//! must reach up (calling another service) goes through
//! [`services::Calls`].

pub mod bindings;
pub mod config;
pub mod events;
pub mod http;
pub mod io_error;
pub mod keyvalue;
pub mod kv;
pub mod log;
pub mod messaging;
pub mod request_id;
pub mod services;
pub mod spin_variables;
pub mod standard;
pub mod stdio;
pub mod trace;
pub mod types;
pub mod wasi_config;
pub mod wasi_logging;

/// The trap for a resource handle the guest made up (or used after
/// dropping it): no interface's error can describe it.
pub(crate) fn lost(what: &str) -> wasmtime::Error {
    wasmtime::Error::msg(format!("the guest's {what} handle is not in the table"))
}
