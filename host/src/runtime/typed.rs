//! Typed calls between services: a service may export its own WIT interface
//! (say `shop:users/directory@0.1.0`) and another may import it. The host
//! links an import to whichever service exports that interface, by its full
//! name including the version, with no rebuild of either side.
//!
//! The import is satisfied with host functions defined from the caller's own
//! view of the interface. Each call goes up to the host (through
//! [`Calls`](crate::api::services::Calls)), which looks up the current
//! provider and runs [`call_export`] on an instance of it, with its own
//! limits and grants; the values are copied across. Because the provider is
//! looked up per call, deploying, replacing or removing a provider relinks
//! its callers with no work on their side.

use std::sync::Arc;

use anyhow::{Result, bail};
use wasmtime::component::types::{ComponentFunc, ComponentItem};
use wasmtime::component::{Component, Linker, Val};
use wasmtime::{Engine, Store};

use super::state::InstanceState;
use super::world::{HANDLER_EXPORT, Live};
use crate::api::standard;

/// One interface a service imports from, or exports to, other services.
#[derive(Debug, Clone)]
pub struct Interface {
    /// Full name with version, e.g. `shop:users/directory@0.1.0`.
    pub name: String,
    /// Its functions and their types.
    pub funcs: Vec<(String, ComponentFunc)>,
}

/// Interfaces the host itself provides (its own `hive:` packages, WASI
/// with `wasi:messaging`, and the standard ones of other hosts it serves);
/// every other import must come from a service.
fn is_host_interface(name: &str) -> bool {
    name.starts_with("hive:") || name.starts_with("wasi:") || standard::is_standard(name)
}

/// Whether `name` is a package-qualified interface (`ns:pkg/iface`, with or
/// without `@version`): only those are APIs between services. Toolchains
/// leave plain-named exports of their own in components (componentize-py's
/// `exports`, with an `init` only it may call), which must never be linked.
fn is_qualified(name: &str) -> bool {
    let Some((package, interface)) = name.split_once('/') else {
        return false;
    };
    package.contains(':') && !interface.is_empty()
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
        if !is_qualified(name) {
            bail!(
                "it imports `{name}`, which is neither one of Hive's interfaces nor a \
                 package-qualified interface (`ns:pkg/name@version`) another service could export"
            );
        }
        imports.push(interface(engine, name, item.ty, "imports")?);
    }
    let mut exports = Vec::new();
    for (name, item) in ty.exports(engine) {
        if name == HANDLER_EXPORT || is_host_interface(name) || !is_qualified(name) {
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

/// Defines every function of every import in `linker` as a call, through
/// the instance's services context, into the current provider of that
/// interface.
pub fn define_imports(linker: &mut Linker<InstanceState>, imports: &[Interface]) -> Result<()> {
    for import in imports {
        let mut instance = linker.instance(&import.name)?;
        let interface = Arc::<str>::from(import.name.as_str());
        for (func_name, _) in &import.funcs {
            let interface = interface.clone();
            let func = Arc::<str>::from(func_name.as_str());
            instance.func_new_async(func_name, move |store, _ty, params, results| {
                let call = store.data().services.call_interface(
                    interface.clone(),
                    func.clone(),
                    params,
                    results,
                );
                Box::new(call)
            })?;
        }
    }
    Ok(())
}

/// Runs `interface.func(params)` on `live`, an instance of the provider,
/// writing its results into `results`.
pub async fn call_export(
    store: &mut Store<InstanceState>,
    live: &Live,
    interface: &str,
    func: &str,
    params: &[Val],
    results: &mut [Val],
) -> wasmtime::Result<()> {
    let missing = || wasmtime::format_err!("the provider no longer exports {interface}.{func}");
    let interface_index = live
        .instance
        .get_export_index(&mut *store, None, interface)
        .ok_or_else(missing)?;
    let func_index = live
        .instance
        .get_export_index(&mut *store, Some(&interface_index), func)
        .ok_or_else(missing)?;
    let callee = live
        .instance
        .get_func(&mut *store, func_index)
        .ok_or_else(missing)?;
    callee.call_async(&mut *store, params, results).await
}

#[cfg(test)]
mod tests {
    use super::is_qualified;

    #[test]
    fn only_package_qualified_names_are_service_apis() {
        for name in ["shop:users/directory@0.1.0", "a:b/c", "my-ns:my-pkg/iface"] {
            assert!(is_qualified(name), "{name}");
        }
        for name in ["exports", "directory", "a/b", "a:b", "a:b/"] {
            assert!(!is_qualified(name), "{name}");
        }
    }
}
