//! Placing services on routes: which parked services (new versions, and
//! ones waiting for a route) can go into service, and the router for the
//! result.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Deployment, LoadFailure};
use crate::router::Router;
use crate::runtime::service::Service;

/// Moves each parked service into service if all its routes fit, in name
/// order. A new version is tried without its own old version's routes in
/// the way; if it does not fit, the old version stays.
pub fn place_parked(deployment: &mut Deployment) {
    let parked = std::mem::take(&mut deployment.parked);
    for (name, candidate) in parked {
        let old = deployment.services.remove(&name);
        let router = build_router(&deployment.services);
        match fit(&router, &candidate) {
            Ok(()) => {
                deployment.failures.remove(&name);
                deployment.services.insert(name, candidate);
            }
            Err(reason) => {
                let previous = if old.is_some() {
                    "the previous version keeps serving"
                } else {
                    "waiting for the route to be free"
                };
                // Services still waiting for a route are retried on every
                // change; only say so again when the reason changes.
                let already_said = deployment
                    .failures
                    .get(&name)
                    .is_some_and(|failure| failure.reason == reason);
                if !already_said {
                    tracing::error!(
                        file = %candidate.file_name(),
                        "skipping {}: {reason} ({previous})",
                        candidate.file_name()
                    );
                }
                deployment.failures.insert(
                    name.clone(),
                    LoadFailure {
                        file: candidate.source.wasm_path.clone(),
                        reason,
                        // Parked, not failed: retried on every change.
                        files: None,
                    },
                );
                if let Some(old) = old {
                    deployment.services.insert(name.clone(), old);
                }
                deployment.parked.insert(name, candidate);
            }
        }
    }
    deployment.router = build_router(&deployment.services);
}

/// Checks that every route of `service` is free in `router` and not listed
/// twice by the service itself.
fn fit(router: &Router<Arc<Service>>, service: &Service) -> Result<(), String> {
    for (index, route) in service.routes.iter().enumerate() {
        // A private service's routes are its own: no public route conflicts.
        if !service.access.public {
            if service.routes[..index]
                .iter()
                .any(|earlier| earlier.overlaps_exactly(route))
            {
                return Err(format!(
                    "route {route} is listed twice (or with another parameter name)"
                ));
            }
            continue;
        }
        if service.routes[..index]
            .iter()
            .any(|earlier| earlier.overlaps_exactly(route))
        {
            return Err(format!(
                "route {route} is listed twice (or with another parameter name)"
            ));
        }
        if let Some(conflict) = router.conflict(route) {
            return Err(format!(
                "route {route} conflicts with route {} of {}, which keeps it",
                conflict.pattern,
                conflict.owner.file_name()
            ));
        }
    }
    Ok(())
}

/// The public router for a set of services that are known to fit
/// together; private services (`public = false`) are not in it.
fn build_router(services: &BTreeMap<String, Arc<Service>>) -> Router<Arc<Service>> {
    let mut router = Router::new();
    for service in services.values().filter(|s| s.access.public) {
        for route in &service.routes {
            // `place_parked` only admits services whose routes fit.
            let _ = router.insert(route.clone(), service.clone());
        }
    }
    router
}
