//! Which service provides each interface exported to other services, and
//! whether each service's imports are met: checked again whenever the set
//! of services changes, so a caller waits (503) until a provider with
//! matching function types appears, and relinks when it is replaced.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::Secrets;
use crate::runtime::service::Service;
use crate::runtime::typed::Interface;

/// The services whose state [`link`] changes: to waiting with a reason, or
/// to linked.
pub struct Linking {
    changes: Vec<(Arc<Service>, Option<String>)>,
}

impl Linking {
    /// Puts the callers that lost a provider back to waiting, and marks
    /// linked the services that do not serve yet (`serving` says which do).
    /// Done before the swap, so no caller reaches for an interface that is
    /// gone and a new version serves linked from its first request.
    pub fn before_swap(&self, serving: impl Fn(&Arc<Service>) -> bool) {
        for (service, waiting) in &self.changes {
            match waiting {
                Some(reason) => service.links.waiting.store(Some(Arc::new(reason.clone()))),
                None if !serving(service) => service.links.waiting.store(None),
                None => {}
            }
        }
    }

    /// Marks linked the serving callers whose imports are now met, and logs
    /// every change. Done once the deployment with the providers serves, so
    /// a caller never reaches for a provider not routed yet, and whoever
    /// reads "linked" in the log finds the providers routed.
    pub fn after_swap(&self, providers: &BTreeMap<String, Arc<Service>>) {
        for (service, waiting) in &self.changes {
            match waiting {
                Some(reason) => tracing::warn!(
                    component = %service.name(),
                    "{} is waiting: {reason}; it answers 503 until then",
                    service.file_name()
                ),
                None => {
                    service.links.waiting.store(None);
                    tracing::info!(
                        component = %service.name(),
                        "{} linked: {}",
                        service.file_name(),
                        service
                            .links
                            .imports
                            .iter()
                            .map(|i| format!(
                                "{} from {}",
                                i.name,
                                providers
                                    .get(&i.name)
                                    .map(|p| p.file_name())
                                    .unwrap_or_default()
                            ))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            }
        }
    }
}

/// Checks each service's secrets and imports against this host's secrets,
/// the current providers and the service's grants (`calls`): ready, or
/// waiting with the reason. Returns the providers by interface name; an
/// interface exported by two services goes to the first by name, and the
/// other is reported. No service's state changes until the caller applies
/// the [`Linking`] around its swap.
pub fn link(
    services: &BTreeMap<String, Arc<Service>>,
    secrets: &Secrets,
) -> (BTreeMap<String, Arc<Service>>, Linking) {
    let mut providers: BTreeMap<String, Arc<Service>> = BTreeMap::new();
    for service in services.values() {
        for export in &service.links.exports {
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
    let mut changes = Vec::new();
    for service in services.values() {
        let waiting = service
            .access
            .secrets_reason(|name| secrets.where_to_put(name))
            .or_else(|| {
                service
                    .links
                    .imports
                    .iter()
                    .find_map(|import| unmet(service, import, providers.get(&import.name)))
            });
        let was = service.links.waiting.load_full();
        if was.as_deref() != waiting.as_ref() {
            changes.push((service.clone(), waiting));
        }
    }
    (providers, Linking { changes })
}

/// Why `service`'s `import` cannot be served by `provider`, if it cannot.
fn unmet(service: &Service, import: &Interface, provider: Option<&Arc<Service>>) -> Option<String> {
    let Some(provider) = provider else {
        return Some(format!("no service exports {}", import.name));
    };
    if !service.access.may_call(provider.name()) {
        return Some(format!(
            "it imports {} from {}, which its manifest's `calls` does not grant \
             (add \"{}\" to calls in {}.toml)",
            import.name,
            provider.name(),
            provider.name(),
            service.name()
        ));
    }
    let Some(export) = provider
        .links
        .exports
        .iter()
        .find(|e| e.name == import.name)
    else {
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
