//! Loading one service from its files: read and check the `.wasm`, read its
//! manifest, compile (or take the compile cache's copy), tell its world,
//! find the interfaces it shares with other services, and link it.
//!
//! Everything that can be done once per file is done here, at load time, so
//! a request only has to instantiate. Every error says what is wrong with
//! the file, not just that something failed. CPU-heavy: call it off the
//! async request path.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use wasmtime::component::{Component, Linker};

use super::access;
use super::cache::{CacheOutcome, compile};
use super::service::Events;
use super::service::{Service, ServiceInfo, Source};
use super::spin_sdk::built_for_spin;
use super::state::InstanceState;
use super::target::Targets;
use super::typed::{Interface, define_imports, service_interfaces};
use super::world::{Entry, MESSAGING_EXPORT, SUBSCRIBER_EXPORT, World};
use crate::api::standard;
use crate::config::{HostPolicy, Limits, Manifest, display_name, service_name};
use crate::digest::hex_digest;

/// Loads, validates and compiles `wasm_path` (and its manifest, if any)
/// for the target its world needs, with `host_limits` as the defaults its
/// manifest may override and `policy` for its access rules.
pub fn load_service(
    targets: &Targets,
    wasm_path: &Path,
    host_limits: &Limits,
    policy: &HostPolicy,
) -> Result<Service> {
    let name = service_name(wasm_path)?;
    let bytes = read_component(wasm_path)?;
    let digest = hex_digest(&bytes);
    let manifest = ManifestFile::read(wasm_path)?;
    let mut routes = manifest.parsed.routes_for(&name)?;
    let limits = manifest
        .parsed
        .limits
        .apply(host_limits)
        .with_context(|| format!("invalid [limits] in {}", manifest.display_name()))?;

    check_memory(&bytes, limits.memory_bytes)?;

    // WASI 0.3 components compile for the other engine; anything else is
    // compiled for the classic one, whose checks then say what it is.
    let target = targets.for_world(World::sniff(&bytes).unwrap_or(World::Service));
    let engine = &target.engine;
    let (component, cache) = match &target.cache {
        Some(cache) => cache.load_or_compile(engine, &bytes, &digest)?,
        None => (compile(engine, &bytes)?, CacheOutcome::Miss),
    };
    // A standard interface in a version Hive does not serve is named
    // first: it is why the component cannot run here, whatever its world.
    for (import, _) in component.component_type().imports(engine) {
        if let Some(refusal) = standard::unserved(import) {
            bail!("{refusal}");
        }
    }
    let world = World::of(engine, &component)?;
    if world != World::P3
        && manifest
            .parsed
            .limits
            .instance_concurrency
            .is_some_and(|count| count > 1)
    {
        bail!(
            "`instance-concurrency` in {} applies only to wasi:http 0.3 components, and {} \
             is {}: its instances serve one request at a time (`instance-reuse` keeps them \
             between requests)",
            manifest.display_name(),
            display_name(wasm_path),
            world.name()
        );
    }
    // Shared 0.3 instances are made by wasmtime as requests come, so
    // there is nothing for `prewarm` to make ahead. A host-wide default
    // `prewarm` just does not apply to them.
    let asked = &manifest.parsed.limits;
    if asked.instance_concurrency.is_some_and(|count| count > 1)
        && asked.prewarm.is_some_and(|count| count > 0)
    {
        bail!(
            "{} sets both `prewarm` and `instance-concurrency` above 1 for {}: instances \
             shared by concurrent requests are made as requests come, never ahead; \
             keep one of the two",
            manifest.display_name(),
            display_name(wasm_path)
        );
    }
    let (imports, exports) = service_interfaces(engine, &component)?;
    let entry = link(&target.linker, &component, world, &imports)?;
    if world == World::Worker {
        if manifest
            .parsed
            .routes
            .as_ref()
            .is_some_and(|r| !r.is_empty())
        {
            bail!(
                "{} lists routes, but {} has no HTTP handler (it only receives events)",
                manifest.display_name(),
                display_name(wasm_path)
            );
        }
        routes.clear();
    }
    let events = Events {
        subscriptions: manifest.parsed.subscriptions.clone(),
        schedules: manifest.parsed.schedules.clone(),
    };
    check_events(&events, &entry, world, &manifest, wasm_path)?;

    let (access, config) = access::resolve(&manifest.parsed, &limits, policy)
        .with_context(|| format!("in {}", manifest.display_name()))?;
    let info = ServiceInfo {
        name: name.into(),
        config: Arc::new(config),
        limits,
        allowed_outbound: manifest.parsed.allowed_outbound.into(),
        buckets: manifest.parsed.buckets.into(),
    };
    let source = Source {
        wasm_path: wasm_path.to_path_buf(),
        manifest_path: manifest.text.is_some().then_some(manifest.path),
        manifest_text: manifest.text,
        digest,
        cache,
        loaded_at: SystemTime::now(),
    };
    let mut service = Service::new(
        info,
        source,
        routes,
        entry,
        (imports, exports),
        events,
        access,
    );
    service.built_for_spin = built_for_spin(&bytes);
    Ok(service)
}

/// A manifest that subscribes or schedules needs a component that
/// receives deliveries, on an engine that can call it.
fn check_events(
    events: &Events,
    entry: &Entry,
    world: World,
    manifest: &ManifestFile,
    wasm_path: &Path,
) -> Result<()> {
    if events.subscriptions.is_empty() && events.schedules.is_empty() {
        return Ok(());
    }
    let key = if events.subscriptions.is_empty() {
        "[[schedule]]"
    } else {
        "[[subscribe]]"
    };
    if world == World::P3 {
        bail!(
            "{} has {key} entries, but {} is a wasi:http 0.3 component; events are \
             delivered to Hive-world, wasi:http 0.2 and subscriber-only components",
            manifest.display_name(),
            display_name(wasm_path)
        );
    }
    if entry.receiver().is_none() {
        bail!(
            "{} has {key} entries, but {} exports neither {SUBSCRIBER_EXPORT} nor \
             {MESSAGING_EXPORT} to receive them",
            manifest.display_name(),
            display_name(wasm_path)
        );
    }
    Ok(())
}

/// Reads the file and tells garbage and core modules apart from components
/// before compiling, so the error says what the file actually is.
fn read_component(wasm_path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(wasm_path).context("cannot read the file")?;
    check_header(&bytes)?;
    Ok(bytes)
}

fn check_header(bytes: &[u8]) -> Result<()> {
    const MAGIC: &[u8] = b"\0asm";
    if !bytes.starts_with(MAGIC) || bytes.len() < 8 {
        bail!("not a WebAssembly file (it does not start with the \\0asm magic bytes)");
    }
    // Bytes 4..8 hold the version (core modules: 1) and layer (components: 1).
    let layer = u16::from_le_bytes([bytes[6], bytes[7]]);
    if layer == 0 {
        bail!(
            "this is a core WebAssembly module, not a component; build it for the \
             wasm32-wasip2 target (or wrap it with `wasm-tools component new`)"
        );
    }
    Ok(())
}

/// Refuses a component whose memory starts larger than its limit allows:
/// every instantiation would fail, and every request with it. Told at
/// load, it names the size needed.
fn check_memory(bytes: &[u8], limit_bytes: usize) -> Result<()> {
    let largest = initial_memory_bytes(bytes);
    if largest > limit_bytes as u64 {
        let needed_mib = largest.div_ceil(1 << 20);
        bail!(
            "its memory starts at {:.1} MiB, more than its limit of {} MiB; set \
             `memory-mib = {needed_mib}` (or more) in its manifest's [limits]",
            largest as f64 / f64::from(1 << 20),
            limit_bytes >> 20
        );
    }
    Ok(())
}

/// The largest initial size of any linear memory declared by the core
/// modules inside a component, in bytes (0 if it cannot be read: the
/// compiler then says what is wrong).
fn initial_memory_bytes(bytes: &[u8]) -> u64 {
    let mut largest = 0u64;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let Ok(wasmparser::Payload::MemorySection(memories)) = payload else {
            continue;
        };
        for memory in memories.into_iter().flatten() {
            let page = 1u64 << memory.page_size_log2.unwrap_or(16);
            largest = largest.max(memory.initial.saturating_mul(page));
        }
    }
    largest
}

/// The manifest beside a `.wasm`: its text as read (to tell a real change
/// from a touch) and what it says (the defaults when there is none).
struct ManifestFile {
    path: PathBuf,
    text: Option<String>,
    parsed: Manifest,
}

impl ManifestFile {
    fn read(wasm_path: &Path) -> Result<ManifestFile> {
        let path = wasm_path.with_extension("toml");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => Some(text),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => {
                return Err(err)
                    .with_context(|| format!("reading manifest {}", display_name(&path)));
            }
        };
        let parsed = match &text {
            Some(text) => Manifest::parse(text)
                .with_context(|| format!("invalid manifest {}", display_name(&path)))?,
            None => Manifest::default(),
        };
        Ok(ManifestFile { path, text, parsed })
    }

    fn display_name(&self) -> String {
        display_name(&self.path)
    }
}

/// Links `component` against the host's interfaces plus, for its typed
/// imports, the providers' calls; checks its world's exports.
fn link(
    linker: &Linker<InstanceState>,
    component: &Component,
    world: World,
    imports: &[Interface],
) -> Result<Entry> {
    let pre = if imports.is_empty() {
        linker.instantiate_pre(component)
    } else {
        let mut own = linker.clone();
        define_imports(&mut own, imports)?;
        own.instantiate_pre(component)
    };
    let pre = pre
        .map_err(anyhow::Error::from)
        .context("it imports something this host does not provide")?;
    Entry::new(pre, world)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_check_names_the_kind_of_file() {
        let err = check_header(b"hello world").unwrap_err().to_string();
        assert!(err.contains("not a WebAssembly file"), "{err}");
        let core = b"\0asm\x01\0\0\0";
        let err = check_header(core).unwrap_err().to_string();
        assert!(err.contains("core WebAssembly module"), "{err}");
        let component = b"\0asm\x0d\0\x01\0";
        assert!(check_header(component).is_ok());
    }

    #[test]
    fn missing_file_is_no_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = ManifestFile::read(&dir.path().join("none.wasm")).unwrap();
        assert_eq!(manifest.text, None);
        assert_eq!(manifest.parsed, Manifest::default());
    }

    #[test]
    fn load_error_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("svc.toml");
        std::fs::write(&path, "routes = 5").unwrap();
        let err = ManifestFile::read(&dir.path().join("svc.wasm"))
            .err()
            .unwrap();
        assert!(format!("{err:#}").contains("svc.toml"), "{err:#}");
    }
}
