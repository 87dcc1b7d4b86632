//! Host side of each interface a service imports, one file per interface.
//! Nothing here knows about HTTP serving.

pub mod config;
pub mod http;
pub mod kv;
pub mod log;
pub mod services;
pub mod stdio;

use wasmtime::component::{HasSelf, Linker};

use crate::bindings::Service;
use crate::state::InstanceState;

/// Links everything a service may import: Hive's own interfaces, the WASI
/// interfaces that Rust's standard library pulls in (granting nothing), and
/// `wasi:http` (outgoing requests only to allowed origins).
pub fn add_to_linker(linker: &mut Linker<InstanceState>) -> anyhow::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    Service::add_to_linker::<InstanceState, HasSelf<InstanceState>>(linker, |state| state)?;
    Ok(())
}

impl crate::bindings::hive::service::types::Host for InstanceState {}
