//! The live set of services and the routes that reach them.
//!
//! A [`Deployment`] is an immutable snapshot: the services, their router and
//! the files that failed to load. The [`Registry`] holds the current one in an
//! [`ArcSwap`], so a request grabs a snapshot without locking and keeps using
//! it even if a new deployment is swapped in while it runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use arc_swap::{ArcSwap, Guard};
use wasmtime::Engine;
use wasmtime::component::Linker;

use crate::component::{Service, display_name, load_service};
use crate::limits::Limits;
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
#[derive(Debug, Default)]
pub struct Deployment {
    /// Loaded services by name.
    pub services: BTreeMap<String, Arc<Service>>,
    /// Every route of every loaded service.
    pub router: Router<Arc<Service>>,
    /// Files that were skipped.
    pub failures: Vec<LoadFailure>,
}

/// Owns the linker every service is checked against and the live deployment.
pub struct Registry {
    engine: Engine,
    linker: Linker<InstanceState>,
    dir: PathBuf,
    limits: Limits,
    current: ArcSwap<Deployment>,
}

impl Registry {
    /// A registry for the services in `dir`, initially empty.
    pub fn new(engine: &Engine, dir: &Path, limits: Limits) -> Result<Registry> {
        let mut linker = Linker::new(engine);
        crate::api::add_to_linker(&mut linker).context("linking host interfaces")?;
        Ok(Registry {
            engine: engine.clone(),
            linker,
            dir: dir.to_path_buf(),
            limits,
            current: ArcSwap::from_pointee(Deployment::default()),
        })
    }

    /// The folder services are loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The live deployment. Cheap; hold it for the length of one request.
    pub fn current(&self) -> Guard<Arc<Deployment>> {
        self.current.load()
    }

    /// Loads every `.wasm` in the folder and makes the result live.
    ///
    /// Each bad file is logged with its reason and skipped, so the rest keep
    /// serving; with `strict` any bad file is an error instead. Blocking:
    /// compiles components, so run it off the async request path.
    pub fn load_all(&self, strict: bool) -> Result<Arc<Deployment>> {
        let files = wasm_files(&self.dir)?;
        let mut deployment = Deployment::default();
        for file in files {
            match load_service(&self.engine, &self.linker, &file, &self.limits) {
                Ok(service) => add_service(&mut deployment, Arc::new(service)),
                Err(err) => deployment.failures.push(LoadFailure {
                    file: file.clone(),
                    reason: format!("{err:#}"),
                }),
            }
        }
        warn_orphan_manifests(&self.dir);

        for failure in &deployment.failures {
            tracing::error!(
                file = %failure.file.display(),
                "skipping {}: {}",
                display_name(&failure.file),
                failure.reason
            );
        }
        if strict && !deployment.failures.is_empty() {
            let summary: Vec<String> = deployment
                .failures
                .iter()
                .map(|f| format!("{}: {}", display_name(&f.file), f.reason))
                .collect();
            bail!(
                "--strict: {} file(s) in {} could not be loaded: {}",
                summary.len(),
                self.dir.display(),
                summary.join("; ")
            );
        }
        for service in deployment.services.values() {
            let routes: Vec<&str> = service.routes.iter().map(|r| r.as_str()).collect();
            tracing::info!(
                component = %service.name(),
                digest = %&service.digest[..12],
                "loaded {} serving {}",
                service.file_name(),
                routes.join(" ")
            );
        }
        let deployment = Arc::new(deployment);
        self.current.store(deployment.clone());
        Ok(deployment)
    }
}

/// Adds `service` and all its routes, or records a failure naming both files
/// if any of its routes is already taken. All or nothing, so a service never
/// serves half its routes.
fn add_service(deployment: &mut Deployment, service: Arc<Service>) {
    for (index, route) in service.routes.iter().enumerate() {
        let taken_here = service.routes[..index]
            .iter()
            .any(|earlier| earlier.overlaps_exactly(route));
        if taken_here {
            deployment.failures.push(LoadFailure {
                file: service.wasm_path.clone(),
                reason: format!("route {route} is listed twice (or with another parameter name)"),
            });
            return;
        }
        if let Some(conflict) = deployment.router.conflict(route) {
            deployment.failures.push(LoadFailure {
                file: service.wasm_path.clone(),
                reason: format!(
                    "route {route} conflicts with route {} of {}, which keeps it",
                    conflict.pattern,
                    conflict.owner.file_name()
                ),
            });
            return;
        }
    }
    for route in &service.routes {
        // Checked above, so this cannot conflict.
        let _ = deployment.router.insert(route.clone(), service.clone());
    }
    deployment
        .services
        .insert(service.name().to_string(), service);
}

/// The `.wasm` files directly inside `dir`, sorted by name so that which of
/// two conflicting services wins does not depend on directory order.
fn wasm_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).with_context(|| {
        format!(
            "cannot read the services folder {} (build the demo services with `hive build`, \
             or pass --dir)",
            dir.display()
        )
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("listing {}", dir.display()))?
            .path();
        if path.extension().is_some_and(|ext| ext == "wasm") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
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
