//! The host's linker: everything a service may import, in one place, used
//! by the registry to load services and by `hive inspect` to judge them.

use anyhow::{Context, Result};
use wasmtime::Engine;
use wasmtime::component::Linker;

use super::engine::EngineKind;
use super::state::InstanceState;
use crate::api;

/// Links Hive's own interfaces (each to its context in the instance
/// state), the standard ones components for other hosts import
/// (`wasi:keyvalue`, `wasi:config`, `wasi:logging`, Spin's key-value and
/// variables), the WASI interfaces that Rust's standard library pulls in
/// (granting nothing), and `wasi:http` (outgoing requests only to allowed
/// origins); on the concurrent engine also WASI 0.3 (a 0.3 component built
/// with Rust's std imports both). Typed imports from other services are
/// added per service.
pub fn host_linker(engine: &Engine, kind: EngineKind) -> Result<Linker<InstanceState>> {
    let mut linker = Linker::new(engine);
    add_host_interfaces(&mut linker)
        .map_err(anyhow::Error::from)
        .context("linking host interfaces")?;
    if kind == EngineKind::Concurrent {
        wasmtime_wasi::p3::add_to_linker(&mut linker)
            .and_then(|()| wasmtime_wasi_http::p3::add_to_linker(&mut linker))
            .map_err(anyhow::Error::from)
            .context("linking WASI 0.3")?;
    }
    Ok(linker)
}

fn add_host_interfaces(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    api::io_error::add_to_linker(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    api::types::add_to_linker(linker)?;
    api::log::add_to_linker(linker, |state| &mut state.log)?;
    api::config::add_to_linker(linker, |state| &mut state.config)?;
    api::kv::add_to_linker(linker, |state| &mut state.kv)?;
    api::trace::add_to_linker(linker, |state| state.trace_view())?;
    api::services::add_to_linker(linker, |state| &mut state.services)?;
    api::events::add_to_linker(linker, |state| &mut state.events)?;
    api::messaging::add_to_linker(linker, |state| state.messaging())?;
    api::keyvalue::add_to_linker(linker, |state| state.keyvalue())?;
    api::wasi_config::add_to_linker(linker, |state| &mut state.config)?;
    api::spin_variables::add_to_linker(linker, |state| &mut state.config)?;
    api::wasi_logging::add_to_linker(linker, |state| &mut state.log)?;
    Ok(())
}
