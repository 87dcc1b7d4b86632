//! The live set of services and the routes that reach them.
//!
//! A [`Deployment`] is an immutable snapshot: the services, their router,
//! the providers of shared interfaces and the files that failed to load.
//! The [`Registry`] holds the current one in an [`ArcSwap`]: a request grabs
//! a snapshot without locking and keeps its service alive until it
//! finishes, so swapping in a new deployment never disturbs requests
//! already running on the old one.
//!
//! Updates ([`Registry::refresh`]) are all-or-nothing per service: a new
//! version replaces the old only if it loads and its routes fit; otherwise
//! the old version keeps serving and the failure is recorded with its
//! reason.

pub mod folder;
pub mod placement;
pub mod providers;
pub mod versions;
pub mod watcher;

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

use anyhow::{Result, anyhow, bail};
use arc_swap::{ArcSwap, Guard};

use crate::config::{HostPolicy, Limits, display_name};
use crate::digest::short;
use crate::metrics::Metrics;
use crate::router::Router;
use crate::runtime::cache::CacheOutcome;
use crate::runtime::loader::load_service;
use crate::runtime::service::Service;
use crate::runtime::target::Targets;

use self::versions::{Stored, Version, Versions};

/// A file that could not be served, and why.
#[derive(Debug, Clone)]
pub struct LoadFailure {
    /// The `.wasm` (or manifest) at fault.
    pub file: PathBuf,
    /// What is wrong with it, as one line.
    pub reason: String,
    /// The files as they were when they failed, so the same files are not
    /// tried (and logged) again until one of them changes.
    pub files: Option<folder::Fingerprint>,
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

/// Owns the targets (engines, linkers, caches) every service is checked
/// against and the live deployment.
pub struct Registry {
    targets: Targets,
    dir: PathBuf,
    limits: Limits,
    /// Secrets, default auth, strict grants: the host's side of access.
    policy: HostPolicy,
    metrics: Arc<Metrics>,
    current: ArcSwap<Deployment>,
    /// Serializes updates; readers never take it.
    updating: Mutex<()>,
    /// The last versions of each component, for rollback.
    versions: Versions,
    /// Told of each version once it serves (the host makes its instances
    /// ahead); set once, by the host.
    on_serving: OnceLock<ServingHook>,
}

/// What the registry tells of a version that started serving.
pub type ServingHook = Box<dyn Fn(&Arc<Service>) + Send + Sync>;

impl Registry {
    /// A registry for the services in `dir`, initially empty, compiling
    /// them for `targets`.
    pub fn new(
        targets: Targets,
        dir: &Path,
        limits: Limits,
        policy: HostPolicy,
        metrics: Arc<Metrics>,
    ) -> Result<Registry> {
        Ok(Registry {
            targets,
            dir: dir.to_path_buf(),
            limits,
            policy,
            metrics,
            current: ArcSwap::from_pointee(Deployment::default()),
            updating: Mutex::new(()),
            versions: Versions::new(dir),
            on_serving: OnceLock::new(),
        })
    }

    /// Sets what is told of each version once it serves; only the first
    /// call counts.
    pub fn on_serving(&self, hook: ServingHook) {
        let _ = self.on_serving.set(hook);
    }

    /// The folder services are loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The metrics the registry counts loads in.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The host's policy: secrets, default auth, strict grants.
    pub fn policy(&self) -> &HostPolicy {
        &self.policy
    }

    /// The host's limits, which each manifest's `[limits]` override.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The live deployment. Cheap; hold it only briefly.
    pub fn current(&self) -> Guard<Arc<Deployment>> {
        self.current.load()
    }

    /// Loads every `.wasm` in the folder. Each bad file is logged and
    /// skipped, so the rest serve; with `strict` any bad file is an error.
    /// Blocking: compiles components.
    pub fn load_all(&self, strict: bool) -> Result<Arc<Deployment>> {
        let names = folder::service_names_in(&self.dir)?;
        folder::warn_orphan_manifests(&self.dir);
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
        self.refresh_locked(names, false)
    }

    /// Reloads every service that names a secret, although its files did
    /// not change: the host's secrets did. Blocking.
    pub fn reload_secrets(&self) -> Arc<Deployment> {
        let _one_at_a_time = self.updating.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.current.load_full();
        let names: BTreeSet<String> = current
            .services
            .values()
            .chain(current.parked.values())
            .filter(|service| !service.access.secret_names.is_empty())
            .map(|service| service.name().to_string())
            .collect();
        if names.is_empty() {
            return current;
        }
        tracing::info!(
            "secrets changed: reloading {}",
            names.iter().cloned().collect::<Vec<_>>().join(", ")
        );
        self.refresh_locked(&names, true)
    }

    /// [`Registry::refresh`], with the update lock held by the caller;
    /// with `forced`, files that did not change are loaded again too.
    fn refresh_locked(&self, names: &BTreeSet<String>, forced: bool) -> Arc<Deployment> {
        let old = self.current.load_full();
        let mut next = (*old).clone();
        let mut changed = false;
        for name in names {
            changed |= self.reload(name, &old, &mut next, forced);
        }
        if changed {
            placement::place_parked(&mut next);
            let (providers, linking) = providers::link(&next.services, &self.policy.secrets);
            next.providers = providers;
            self.metrics.set_components(next.services.len());
            let next = Arc::new(next);
            // Whether this very version already served before the swap.
            let serving = |service: &Arc<Service>| {
                old.services
                    .get(service.name())
                    .is_some_and(|was| Arc::ptr_eq(was, service))
            };
            let new: Vec<&Arc<Service>> = next
                .services
                .values()
                .filter(|service| !serving(service))
                .collect();
            // Kept before they serve, so whoever sees a version serve
            // finds it among the kept ones.
            for service in &new {
                self.versions.keep(service);
            }
            linking.before_swap(serving);
            self.current.store(next.clone());
            linking.after_swap(&next.providers);
            // Logged only once they serve, so the log never runs ahead.
            for service in new {
                log_serving(service, old.services.contains_key(service.name()));
                if let Some(hook) = self.on_serving.get() {
                    hook(service);
                }
            }
        }
        self.current.load_full()
    }

    /// Brings `name` in `next` up to date with its files; returns whether
    /// anything changed. A new version is parked until placing it.
    fn reload(&self, name: &str, old: &Deployment, next: &mut Deployment, forced: bool) -> bool {
        let wasm = self.dir.join(format!("{name}.wasm"));
        if !wasm.is_file() {
            let mut changed = next.services.remove(name).is_some();
            changed |= next.parked.remove(name).is_some();
            changed |= next.failures.remove(name).is_some();
            if old.services.contains_key(name) {
                tracing::info!(component = %name, "removed {name}.wasm; no longer routed");
            }
            return changed;
        }
        let fingerprint = folder::Fingerprint::of(&wasm);
        let loaded = old.services.get(name).or(old.parked.get(name));
        if !forced && folder::unchanged(loaded, fingerprint.as_ref()) {
            return false;
        }
        if !forced
            && fingerprint.is_some()
            && old
                .failures
                .get(name)
                .is_some_and(|failure| failure.files == fingerprint)
        {
            return false;
        }
        let started = Instant::now();
        // Nothing in the folder may take the host down: a panic while
        // loading one file (a bug, but one a file could trigger) fails that
        // file only.
        let loaded = std::panic::catch_unwind(AssertUnwindSafe(|| {
            load_service(&self.targets, &wasm, &self.limits, &self.policy)
        }))
        .unwrap_or_else(|panic| Err(anyhow!("loading it panicked: {}", panic_message(&panic))));
        match loaded {
            Ok(service) => {
                self.metrics
                    .loaded(started.elapsed(), service.source.cache == CacheOutcome::Hit);
                next.failures.remove(name);
                next.parked.insert(name.to_string(), Arc::new(service));
            }
            Err(err) => {
                let previous = if next.services.contains_key(name) {
                    "the previous version keeps serving"
                } else {
                    "not serving"
                };
                tracing::error!(
                    file = %display_name(&wasm),
                    "skipping {}: {err:#} ({previous})",
                    display_name(&wasm)
                );
                next.failures.insert(
                    name.to_string(),
                    LoadFailure {
                        file: wasm,
                        reason: format!("{err:#}"),
                        files: fingerprint,
                    },
                );
            }
        }
        true
    }
}

/// The text a panic carried, if it was a string.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

impl Registry {
    /// Loads `wasm` as the service `name` would be loaded, with the
    /// manifest text `manifest`, without deploying it: what a host checks
    /// before it publishes a component to its cluster. Its compiled code
    /// stays in the compile cache, so the real load is quick. Blocking.
    pub fn try_load(&self, name: &str, wasm: &[u8], manifest: Option<&str>) -> Result<()> {
        let scratch = tempfile::tempdir().map_err(anyhow::Error::from)?;
        let path = scratch.path().join(format!("{name}.wasm"));
        std::fs::write(&path, wasm)?;
        if let Some(text) = manifest {
            std::fs::write(path.with_extension("toml"), text)?;
        }
        load_service(&self.targets, &path, &self.limits, &self.policy).map(|_| ())
    }
}

impl Registry {
    /// `name`'s kept versions, newest first.
    pub fn versions(&self, name: &str) -> Vec<Version> {
        self.versions.list(name)
    }

    /// The kept version of `name` that [`Registry::roll_back`] would put
    /// back, read for publishing to a cluster instead. Blocking.
    pub fn kept(&self, name: &str, to: Option<&str>) -> Result<Stored> {
        let current = self.current.load_full();
        let serving = current.services.get(name).or(current.parked.get(name));
        self.versions
            .pick(name, serving.map(|s| versions::identity(s)), to)
    }

    /// Puts a kept version of `name` back into the folder and swaps it in,
    /// as one update: the version whose digest starts with `to`, or the
    /// newest one before the version serving. Returns the digest now
    /// serving. Blocking.
    pub fn roll_back(&self, name: &str, to: Option<&str>) -> Result<String> {
        let _one_at_a_time = self.updating.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.current.load_full();
        let serving = current.services.get(name).or(current.parked.get(name));
        let stored = self
            .versions
            .pick(name, serving.map(|s| versions::identity(s)), to)?;
        let wasm = self.dir.join(format!("{name}.wasm"));
        // The manifest first: the pair is only read under this lock, so no
        // load ever sees the old manifest with the new code or the reverse.
        let manifest = wasm.with_extension("toml");
        match &stored.manifest {
            Some(text) => versions::write_atomically(&manifest, text.as_bytes())?,
            None => versions::remove_if_present(&manifest)?,
        }
        versions::write_atomically(&wasm, &stored.wasm)?;
        let wanted = (stored.version.digest, stored.version.manifest_digest);
        let digest = wanted.0.clone();
        let next = self.refresh_locked(&BTreeSet::from([name.to_string()]), false);
        if next
            .services
            .get(name)
            .is_some_and(|s| versions::identity(s) == wanted)
        {
            tracing::info!(component = %name, digest = %short(&digest), "rolled {name} back");
            return Ok(digest);
        }
        match next.failures.get(name) {
            Some(failure) => bail!(
                "version {} of {name} was restored to the folder but does not serve: {}",
                short(&digest),
                failure.reason
            ),
            None => bail!(
                "version {} of {name} was restored to the folder but is not serving \
                 (its routes are taken, or it waits for an interface)",
                short(&digest)
            ),
        }
    }
}

fn log_serving(service: &Service, replaced: bool) {
    let routes: Vec<&str> = service.routes.iter().map(|r| r.as_str()).collect();
    tracing::info!(
        component = %service.name(),
        digest = %short(service.digest()),
        world = %service.entry.world().name(),
        cache = ?service.source.cache,
        "{} {} serving {}",
        if replaced { "swapped in" } else { "loaded" },
        service.file_name(),
        routes.join(" ")
    );
}
