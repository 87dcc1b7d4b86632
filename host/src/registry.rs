//! The live set of services and the routes that reach them.
//!
//! A [`Deployment`] is an immutable snapshot: the services, their router and
//! the files that failed to load. The [`Registry`] holds the current one in an
//! [`ArcSwap`]: a request grabs a snapshot without locking and keeps its
//! service alive until it finishes, so swapping in a new deployment never
//! disturbs requests already running on the old one.
//!
//! Updates ([`Registry::refresh`]) are all-or-nothing per service: a new
//! version replaces the old only if it loads and its routes fit; otherwise the
//! old version keeps serving and the failure is recorded with its reason.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result, bail};
use arc_swap::{ArcSwap, Guard};
use wasmtime::Engine;
use wasmtime::component::Linker;

use crate::cache::CompileCache;
use crate::component::{Service, display_name, file_digest, load_service};
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::router::Router;
use crate::state::InstanceState;

/// A file that could not be served, and why.
#[derive(Debug, Clone)]
pub struct LoadFailure {
    /// The `.wasm` (or manifest) at fault.
    pub file: PathBuf,
    /// What is wrong with it, as one line.
    pub reason: String,
}

/// One consistent set of services and routes.
#[derive(Debug, Default, Clone)]
pub struct Deployment {
    /// Services being served, by name.
    pub services: BTreeMap<String, Arc<Service>>,
    /// Every route of every served service.
    pub router: Router<Arc<Service>>,
    /// Services that loaded but whose routes are taken; each is retried
    /// whenever the deployment changes, so removing the owner frees them.
    pub parked: BTreeMap<String, Arc<Service>>,
    /// Why each file that is not being served (in its latest version) failed.
    pub failures: BTreeMap<String, LoadFailure>,
    /// Which service provides each interface exported to other services.
    pub providers: BTreeMap<String, Arc<Service>>,
}

/// Owns the linker every service is checked against and the live deployment.
pub struct Registry {
    engine: Engine,
    linker: Linker<InstanceState>,
    dir: PathBuf,
    limits: Limits,
    cache: Option<CompileCache>,
    metrics: Arc<Metrics>,
    current: ArcSwap<Deployment>,
    /// Serializes updates; readers never take it.
    updating: Mutex<()>,
}

impl Registry {
    /// A registry for the services in `dir`, initially empty. With a cache,
    /// compiled code is reused across restarts.
    pub fn new(
        engine: &Engine,
        dir: &Path,
        limits: Limits,
        cache: Option<CompileCache>,
        metrics: Arc<Metrics>,
    ) -> Result<Registry> {
        let mut linker = Linker::new(engine);
        crate::api::add_to_linker(&mut linker).context("linking host interfaces")?;
        Ok(Registry {
            engine: engine.clone(),
            linker,
            dir: dir.to_path_buf(),
            limits,
            cache,
            metrics,
            current: ArcSwap::from_pointee(Deployment::default()),
            updating: Mutex::new(()),
        })
    }

    /// The folder services are loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The live deployment. Cheap; hold it only briefly.
    pub fn current(&self) -> Guard<Arc<Deployment>> {
        self.current.load()
    }

    /// Loads every `.wasm` in the folder. Each bad file is logged and
    /// skipped, so the rest serve; with `strict` any bad file is an error.
    /// Blocking: compiles components.
    pub fn load_all(&self, strict: bool) -> Result<Arc<Deployment>> {
        let names = service_names_in(&self.dir)?;
        warn_orphan_manifests(&self.dir);
        let deployment = self.refresh(&names);
        if strict && !deployment.failures.is_empty() {
            let summary: Vec<String> = deployment
                .failures
                .values()
                .map(|f| format!("{}: {}", display_name(&f.file), f.reason))
                .collect();
            bail!(
                "--strict: {} file(s) in {} could not be loaded: {}",
                summary.len(),
                self.dir.display(),
                summary.join("; ")
            );
        }
        Ok(deployment)
    }

    /// Re-reads the named services from the folder (a name whose `.wasm` is
    /// gone is removed) and swaps in the result. Blocking: compiles.
    pub fn refresh(&self, names: &BTreeSet<String>) -> Arc<Deployment> {
        let _one_at_a_time = self.updating.lock().unwrap_or_else(PoisonError::into_inner);
        let old = self.current.load_full();
        let mut next = (*old).clone();
        let mut changed = false;

        for name in names {
            let wasm = self.dir.join(format!("{name}.wasm"));
            if !wasm.is_file() {
                changed |= next.services.remove(name).is_some();
                changed |= next.parked.remove(name).is_some();
                changed |= next.failures.remove(name).is_some();
                if old.services.contains_key(name) {
                    tracing::info!(component = %name, "removed {name}.wasm; no longer routed");
                }
                continue;
            }
            if unchanged(old.services.get(name).or(old.parked.get(name)), &wasm) {
                continue;
            }
            changed = true;
            let started = std::time::Instant::now();
            let loaded = load_service(
                &self.engine,
                &self.linker,
                &wasm,
                &self.limits,
                self.cache.as_ref(),
            );
            match loaded {
                Ok(service) => {
                    self.metrics.loaded(
                        started.elapsed(),
                        service.cache == crate::cache::CacheOutcome::Hit,
                    );
                    next.failures.remove(name);
                    next.parked.remove(name);
                    next.parked.insert(name.clone(), Arc::new(service));
                }
                Err(err) => {
                    let previous = if next.services.contains_key(name) {
                        "the previous version keeps serving"
                    } else {
                        "not serving"
                    };
                    tracing::error!(
                        file = %wasm.display(),
                        "skipping {}: {err:#} ({previous})",
                        display_name(&wasm)
                    );
                    next.failures.insert(
                        name.clone(),
                        LoadFailure {
                            file: wasm,
                            reason: format!("{err:#}"),
                        },
                    );
                }
            }
        }

        if changed {
            place_parked(&mut next);
            next.providers = crate::link::check_imports(&next.services);
            self.metrics.set_components(next.services.len());
            let next = Arc::new(next);
            self.current.store(next.clone());
            // Logged only once they serve, so the log never runs ahead.
            for service in next.services.values() {
                let was = old.services.get(service.name());
                if was.is_none_or(|was| !Arc::ptr_eq(was, service)) {
                    log_serving(service, was.is_some());
                }
            }
        }
        self.current.load_full()
    }
}

/// True when `wasm` and its manifest are byte-for-byte what `service` was
/// loaded from, so a touch or a duplicate event does not reload it.
fn unchanged(service: Option<&Arc<Service>>, wasm: &Path) -> bool {
    let Some(service) = service else {
        return false;
    };
    let manifest = std::fs::read_to_string(wasm.with_extension("toml")).ok();
    file_digest(wasm).as_deref() == Some(service.digest.as_str())
        && manifest == service.manifest_text
}

/// Moves each parked service (new versions and ones waiting for a route)
/// into service if all its routes fit, in name order. A new version is
/// tried without its own old version's routes in the way; if it does not
/// fit, the old version stays.
fn place_parked(deployment: &mut Deployment) {
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
                        file = %candidate.wasm_path.display(),
                        "skipping {}: {reason} ({previous})",
                        candidate.file_name()
                    );
                }
                deployment.failures.insert(
                    name.clone(),
                    LoadFailure {
                        file: candidate.wasm_path.clone(),
                        reason,
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

/// The router for a set of services that are known to fit together.
fn build_router(services: &BTreeMap<String, Arc<Service>>) -> Router<Arc<Service>> {
    let mut router = Router::new();
    for service in services.values() {
        for route in &service.routes {
            // `place_parked` only admits services whose routes fit.
            let _ = router.insert(route.clone(), service.clone());
        }
    }
    router
}

fn log_serving(service: &Service, replaced: bool) {
    let routes: Vec<&str> = service.routes.iter().map(|r| r.as_str()).collect();
    tracing::info!(
        component = %service.name(),
        digest = %&service.digest[..12],
        world = %service.entry.world(),
        cache = ?service.cache,
        "{} {} serving {}",
        if replaced { "swapped in" } else { "loaded" },
        service.file_name(),
        routes.join(" ")
    );
}

/// Names of the `.wasm` files directly inside `dir`.
fn service_names_in(dir: &Path) -> Result<BTreeSet<String>> {
    let entries = std::fs::read_dir(dir).with_context(|| {
        format!(
            "cannot read the services folder {} (build the demo services with `hive build`, \
             or pass --dir)",
            dir.display()
        )
    })?;
    let mut names = BTreeSet::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("listing {}", dir.display()))?
            .path();
        let is_wasm = path.extension().is_some_and(|ext| ext == "wasm");
        if let Some(name) = watched_name(&path).filter(|_| is_wasm && path.is_file()) {
            names.insert(name);
        }
    }
    Ok(names)
}

/// The service name a `.wasm` or `.toml` path in the folder belongs to.
/// Hidden files (such as `.name.wasm.tmp` during an atomic copy) belong to
/// none.
pub fn watched_name(path: &Path) -> Option<String> {
    let extension = path.extension()?;
    if extension != "wasm" && extension != "toml" {
        return None;
    }
    let stem = path.file_stem()?.to_str()?;
    if stem.is_empty() || stem.starts_with('.') {
        return None;
    }
    Some(stem.to_string())
}

/// A manifest with no `.wasm` beside it is almost always a misnamed file.
fn warn_orphan_manifests(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|ext| ext == "toml")
            && !path.with_extension("wasm").exists()
        {
            tracing::warn!(
                file = %path.display(),
                "manifest {} has no {} beside it; it is ignored",
                display_name(&path),
                display_name(&path.with_extension("wasm"))
            );
        }
    }
}
