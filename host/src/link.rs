//! Typed calls between services: a service may export its own WIT interface
//! (say `shop:users/directory@0.1.0`) and another may import it. The host
//! links an import to whichever service exports that interface, by its full
//! name including the version, with no rebuild of either side.
//!
//! The import is satisfied with host functions defined from the caller's own
//! view of the interface. Each call looks up the current provider, runs it in
//! a fresh instance of its own (with its own limits and grants), and copies
//! the values across. Because the provider is looked up per call, deploying,
//! replacing or removing a provider relinks its callers with no work on
//! their side; [`check_imports`] keeps track of whether they can be served.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Result, bail};
use wasmtime::Engine;
use wasmtime::component::types::{ComponentFunc, ComponentItem};
use wasmtime::component::{Component, Linker, Val};

use crate::component::{HANDLER_EXPORT, Service};
use crate::failure::{CalleeError, CalleeErrorKind};
use crate::invoke;
use crate::state::InstanceState;

/// Nested calls allowed below one HTTP request; deeper is treated as a cycle.
pub const MAX_CALL_DEPTH: u32 = 8;

/// One interface a service imports from, or exports to, other services.
#[derive(Debug, Clone)]
pub struct Interface {
    /// Full name with version, e.g. `shop:users/directory@0.1.0`.
    pub name: String,
    /// Its functions and their types.
    pub funcs: Vec<(String, ComponentFunc)>,
}

/// Interfaces the host itself provides; every other import must come from a
/// service.
fn is_host_interface(name: &str) -> bool {
    name.starts_with("hive:service/") || name.starts_with("wasi:")
}

/// The interfaces `component` imports from other services and those it
/// exports to them. Fails for imports that cannot cross stores (resources)
/// or are not interfaces at all.
pub fn service_interfaces(
    engine: &Engine,
    component: &Component,
) -> Result<(Vec<Interface>, Vec<Interface>)> {
    let ty = component.component_type();
    let mut imports = Vec::new();
    for (name, item) in ty.imports(engine) {
        if is_host_interface(name) {
            continue;
        }
        imports.push(interface(engine, name, item.ty, "imports")?);
    }
    let mut exports = Vec::new();
    for (name, item) in ty.exports(engine) {
        if name == HANDLER_EXPORT || is_host_interface(name) {
            continue;
        }
        if let ComponentItem::ComponentInstance(_) = item.ty {
            exports.push(interface(engine, name, item.ty, "exports")?);
        }
    }
    Ok((imports, exports))
}

fn interface(engine: &Engine, name: &str, item: ComponentItem, verb: &str) -> Result<Interface> {
    let ComponentItem::ComponentInstance(instance) = item else {
        bail!("it {verb} `{name}`, which is not an interface; only whole interfaces can be linked");
    };
    let mut funcs = Vec::new();
    for (func_name, item) in instance.exports(engine) {
        match item.ty {
            ComponentItem::ComponentFunc(func) => funcs.push((func_name.to_string(), func)),
            ComponentItem::Type(_) => {}
            ComponentItem::Resource(_) => bail!(
                "it {verb} `{name}`, which defines resource `{func_name}`; resources cannot \
                 cross between services"
            ),
            _ => bail!("it {verb} `{name}` with an unsupported item `{func_name}`"),
        }
    }
    Ok(Interface {
        name: name.to_string(),
        funcs,
    })
}

/// Defines every function of every import in `linker` as a call into the
/// current provider of that interface.
pub fn define_imports(linker: &mut Linker<InstanceState>, imports: &[Interface]) -> Result<()> {
    for import in imports {
        let mut instance = linker.instance(&import.name)?;
        for (func_name, _) in &import.funcs {
            let interface = Arc::<str>::from(import.name.as_str());
            let func = Arc::<str>::from(func_name.as_str());
            instance.func_new_async(func_name, move |store, _ty, params, results| {
                let interface = interface.clone();
                let func = func.clone();
                Box::new(async move {
                    let state = store.data();
                    let (host, request_id) = (state.host.clone(), state.request_id.clone());
                    let depth = state.depth + 1;
                    if depth > MAX_CALL_DEPTH {
                        return Err(CalleeError::new(
                            &interface,
                            CalleeErrorKind::DepthExceeded,
                            format!("call depth {MAX_CALL_DEPTH} exceeded; is there a cycle?"),
                        )
                        .into());
                    }
                    let Some(provider) =
                        host.registry.current().providers.get(&*interface).cloned()
                    else {
                        return Err(CalleeError::new(
                            &interface,
                            CalleeErrorKind::Unavailable,
                            "no service exports it".into(),
                        )
                        .into());
                    };
                    let values = call_export(
                        &host,
                        &provider,
                        &interface,
                        &func,
                        params,
                        results.len(),
                        &request_id,
                        depth,
                    )
                    .await?;
                    results.clone_from_slice(&values);
                    Ok(())
                })
            })?;
        }
    }
    Ok(())
}

/// Runs `interface.func(params)` on a fresh instance of `provider`.
#[allow(clippy::too_many_arguments)]
async fn call_export(
    host: &Arc<crate::host::Host>,
    provider: &Arc<Service>,
    interface: &str,
    func: &str,
    params: &[Val],
    result_count: usize,
    request_id: &Arc<str>,
    depth: u32,
) -> wasmtime::Result<Vec<Val>> {
    let outcome = invoke::run(host, provider, request_id, depth, async |store, entry| {
        let instance = entry.instance_pre().instantiate_async(&mut *store).await?;
        let missing =
            || wasmtime::format_err!("`{}` no longer exports {interface}.{func}", provider.name());
        let interface_index = instance
            .get_export_index(&mut *store, None, interface)
            .ok_or_else(missing)?;
        let func_index = instance
            .get_export_index(&mut *store, Some(&interface_index), func)
            .ok_or_else(missing)?;
        let callee = instance
            .get_func(&mut *store, func_index)
            .ok_or_else(missing)?;
        let mut results = vec![Val::Bool(false); result_count];
        callee.call_async(&mut *store, params, &mut results).await?;
        Ok(results)
    })
    .await;
    outcome.map_err(|failure| CalleeError::from_failure(provider.name(), &failure).into())
}

/// Checks each service's imports against the current providers and records
/// the result in the service: ready, or waiting with the reason. Returns the
/// providers by interface name; an interface exported by two services goes
/// to the first by name, and the other is reported.
pub fn check_imports(services: &BTreeMap<String, Arc<Service>>) -> BTreeMap<String, Arc<Service>> {
    let mut providers: BTreeMap<String, Arc<Service>> = BTreeMap::new();
    for service in services.values() {
        for export in &service.exports {
            if let Some(first) = providers.get(&export.name) {
                tracing::error!(
                    interface = %export.name,
                    "{} and {} both export {}; {} provides it, {}'s export is ignored",
                    first.file_name(),
                    service.file_name(),
                    export.name,
                    first.file_name(),
                    service.file_name()
                );
                continue;
            }
            providers.insert(export.name.clone(), service.clone());
        }
    }
    for service in services.values() {
        let waiting = service
            .imports
            .iter()
            .find_map(|import| unmet(import, providers.get(&import.name)));
        let was = service.waiting.load_full();
        if was.as_deref() != waiting.as_ref() {
            match &waiting {
                Some(reason) => tracing::warn!(
                    component = %service.name(),
                    "{} is waiting: {reason}; it answers 503 until then",
                    service.file_name()
                ),
                None => tracing::info!(
                    component = %service.name(),
                    "{} linked: {}",
                    service.file_name(),
                    service
                        .imports
                        .iter()
                        .map(|i| format!(
                            "{} from {}",
                            i.name,
                            providers.get(&i.name).map(|p| p.file_name()).unwrap_or_default()
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
            service.waiting.store(waiting.map(Arc::new));
        }
    }
    providers
}

/// Why `import` cannot be served by `provider`, if it cannot.
fn unmet(import: &Interface, provider: Option<&Arc<Service>>) -> Option<String> {
    let Some(provider) = provider else {
        return Some(format!("no service exports {}", import.name));
    };
    let Some(export) = provider.exports.iter().find(|e| e.name == import.name) else {
        return Some(format!("no service exports {}", import.name));
    };
    for (name, wanted) in &import.funcs {
        let Some((_, offered)) = export.funcs.iter().find(|(n, _)| n == name) else {
            return Some(format!(
                "{} exports {} without function `{name}`",
                provider.file_name(),
                import.name
            ));
        };
        let same_params = wanted
            .params()
            .map(|(_, ty)| ty)
            .eq(offered.params().map(|(_, ty)| ty));
        let same_results = wanted.results().eq(offered.results());
        if !same_params || !same_results {
            return Some(format!(
                "{} exports {} with a different type for `{name}`",
                provider.file_name(),
                import.name
            ));
        }
    }
    None
}
