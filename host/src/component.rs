//! One loaded service: its compiled component, pre-instantiated against the
//! host's linker, with its manifest, routes and content digest.
//!
//! Everything that can be done once per file is done here, at load time, so a
//! request only has to instantiate from the [`ServicePre`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result, bail};
use arc_swap::ArcSwapOption;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

use crate::bindings::ServicePre;
use crate::cache::{CacheOutcome, CompileCache, compile};
use crate::limits::Limits;
use crate::link::{Interface, define_imports, service_interfaces};
use crate::manifest::Manifest;
use crate::metrics::{Metrics, ServiceMetrics};
use crate::router::RoutePattern;
use crate::state::InstanceState;
use wasmtime::component::InstancePre;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

/// The export that makes a component a Hive service.
pub const HANDLER_EXPORT: &str = "hive:service/handler@0.1.0";

/// The export (any 0.2.x version) of a standard `wasi:http/proxy` component.
pub const WASI_HTTP_EXPORT_PREFIX: &str = "wasi:http/incoming-handler@0.2.";

/// How the host enters a component, which depends on the world it targets.
pub enum Entry {
    /// Hive's own `hive:service/service` world: `handler.handle(request)`.
    Service(ServicePre<InstanceState>),
    /// The standard `wasi:http/proxy` world: `incoming-handler.handle`,
    /// with streaming bodies.
    Proxy(ProxyPre<InstanceState>),
}

impl Entry {
    /// The pre-instantiated component, whatever its world.
    pub fn instance_pre(&self) -> &InstancePre<InstanceState> {
        match self {
            Entry::Service(pre) => pre.instance_pre(),
            Entry::Proxy(pre) => pre.instance_pre(),
        }
    }

    /// The world's name, for logs and status pages.
    pub fn world(&self) -> &'static str {
        match self {
            Entry::Service(_) => "hive:service/service@0.1.0",
            Entry::Proxy(_) => "wasi:http/proxy@0.2",
        }
    }
}

/// What host APIs need to know about a service while it runs.
#[derive(Debug)]
pub struct ServiceInfo {
    /// The service's name: its file name without `.wasm`. Shared, as every
    /// instance's log sinks and outbound policy carry it.
    pub name: Arc<str>,
    /// Values from the manifest's `[config]` table.
    pub config: BTreeMap<String, String>,
    /// Limits for each of its requests.
    pub limits: Limits,
    /// Origins it may send HTTP requests to.
    pub allowed_outbound: Arc<[crate::outbound::Origin]>,
}

/// A service ready to serve requests.
pub struct Service {
    /// Name, config and limits, shared with every instance.
    pub info: Arc<ServiceInfo>,
    /// The `.wasm` file it was loaded from.
    pub wasm_path: PathBuf,
    /// The manifest file, if there was one.
    pub manifest_path: Option<PathBuf>,
    /// SHA-256 of the `.wasm` file, hex-encoded.
    pub digest: String,
    /// Routes it answers.
    pub routes: Vec<RoutePattern>,
    /// Pre-instantiated component; each request instantiates from this.
    pub entry: Entry,
    /// One permit per instance allowed to run at once (`limits.concurrency`).
    pub slots: Arc<Semaphore>,
    /// The manifest's text, to tell a real manifest change from a touch.
    pub manifest_text: Option<String>,
    /// Whether the compiled code came from the cache.
    pub cache: CacheOutcome,
    /// Interfaces it imports from other services.
    pub imports: Vec<Interface>,
    /// Interfaces it exports to other services.
    pub exports: Vec<Interface>,
    /// When this version was loaded.
    pub loaded_at: std::time::SystemTime,
    /// Instances kept for reuse (only with `instance-reuse` above 1).
    pub idle: std::sync::Mutex<Vec<crate::invoke::WarmInstance>>,
    /// Its metric handles, made on first use (see [`Service::metrics`]).
    metrics: OnceLock<ServiceMetrics>,
    /// Why it cannot be served right now (an import has no provider), or
    /// `None` when it can. Updated whenever the set of services changes.
    pub waiting: ArcSwapOption<String>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("name", &self.info.name)
            .field("wasm_path", &self.wasm_path)
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// The service's name.
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// Its metric series in `all`, looked up on the first request only.
    pub fn metrics(&self, all: &Metrics) -> &ServiceMetrics {
        self.metrics.get_or_init(|| all.service(self.name()))
    }

    /// The file name (not the full path) of its `.wasm`, for messages.
    pub fn file_name(&self) -> String {
        display_name(&self.wasm_path)
    }
}

/// The last component of `path`, for log lines and error messages.
pub fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// The service name for `path`: the file stem, which must be a usable URL
/// segment since it becomes the default route.
pub fn service_name(wasm_path: &Path) -> Result<String> {
    let stem = wasm_path
        .file_stem()
        .and_then(|stem| stem.to_str())
        .unwrap_or_default();
    if !is_valid_name(stem) {
        bail!("file name must be letters, digits, '-' or '_' followed by .wasm");
    }
    Ok(stem.to_string())
}

/// Letters, digits, `-` and `_` only: safe as a URL segment and as a file
/// name that cannot leave its folder.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Loads, validates and compiles `wasm_path` (and its manifest, if any).
///
/// This is CPU-heavy (it compiles the component); call it off the async
/// request path. Every error says what is wrong with the file, not just that
/// something failed.
pub fn load_service(
    engine: &Engine,
    linker: &Linker<InstanceState>,
    wasm_path: &Path,
    host_limits: &Limits,
    cache: Option<&CompileCache>,
) -> Result<Service> {
    let name = service_name(wasm_path)?;
    let bytes = std::fs::read(wasm_path).context("cannot read the file")?;
    check_header(&bytes)?;
    let digest = hex_digest(&bytes);

    let manifest_path = wasm_path.with_extension("toml");
    let manifest_text = read_manifest_text(&manifest_path)?;
    let manifest = match &manifest_text {
        Some(text) => Manifest::parse(text)
            .with_context(|| format!("invalid manifest {}", manifest_path.display()))?,
        None => Manifest::default(),
    };
    let manifest_path = manifest_text.is_some().then_some(manifest_path);
    let routes = manifest.routes_for(&name)?;
    let limits = manifest
        .limits
        .apply(host_limits)
        .with_context(|| format!("invalid [limits] in {}", manifest_path_display(wasm_path)))?;

    let (component, cache) = match cache {
        Some(cache) => cache.load_or_compile(engine, &bytes, &digest)?,
        None => (compile(engine, &bytes)?, CacheOutcome::Miss),
    };
    let world = check_world(engine, &component)?;
    let (imports, exports) = service_interfaces(engine, &component)?;
    let linked;
    let linker = if imports.is_empty() {
        linker
    } else {
        let mut own = linker.clone();
        define_imports(&mut own, &imports)?;
        linked = own;
        &linked
    };
    let pre = linker
        .instantiate_pre(&component)
        .map_err(anyhow::Error::from)
        .context("it imports something this host does not provide")?;
    let entry = match world {
        World::Service => Entry::Service(
            ServicePre::new(pre)
                .map_err(anyhow::Error::from)
                .with_context(|| {
                    format!("its `{HANDLER_EXPORT}` export does not match the contract")
                })?,
        ),
        World::Proxy => Entry::Proxy(
            ProxyPre::new(pre)
                .map_err(anyhow::Error::from)
                .context("its wasi:http/incoming-handler export does not match wasi:http 0.2")?,
        ),
    };

    Ok(Service {
        slots: Arc::new(Semaphore::new(limits.concurrency)),
        manifest_text,
        cache,
        loaded_at: std::time::SystemTime::now(),
        idle: std::sync::Mutex::new(Vec::new()),
        metrics: OnceLock::new(),
        // Linked against providers by the registry once it is placed.
        waiting: ArcSwapOption::new(
            (!imports.is_empty()).then(|| Arc::new("not linked yet".to_string())),
        ),
        imports,
        exports,
        info: Arc::new(ServiceInfo {
            name: name.into(),
            config: manifest.config,
            limits,
            allowed_outbound: manifest.allowed_outbound.into(),
        }),
        wasm_path: wasm_path.to_path_buf(),
        manifest_path,
        digest,
        routes,
        entry,
    })
}

/// The manifest's text, or `None` when there is no manifest.
fn read_manifest_text(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("reading manifest {}", path.display())),
    }
}

/// SHA-256 of a file, hex-encoded, or `None` if it cannot be read.
pub fn file_digest(path: &Path) -> Option<String> {
    std::fs::read(path).ok().map(|bytes| hex_digest(&bytes))
}

fn manifest_path_display(wasm_path: &Path) -> String {
    display_name(&wasm_path.with_extension("toml"))
}

/// Tells garbage and core modules apart from components before compiling, so
/// the error says what the file actually is.
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

/// The worlds a component can target.
enum World {
    Service,
    Proxy,
}

/// Tells which world a component targets from its exports; rejects one that
/// fits neither, listing what it imports and exports.
fn check_world(engine: &Engine, component: &Component) -> Result<World> {
    let ty = component.component_type();
    let exports: Vec<&str> = ty.exports(engine).map(|(name, _)| name).collect();
    if exports.contains(&HANDLER_EXPORT) {
        return Ok(World::Service);
    }
    if exports
        .iter()
        .any(|name| name.starts_with(WASI_HTTP_EXPORT_PREFIX))
    {
        return Ok(World::Proxy);
    }
    let imports: Vec<&str> = ty.imports(engine).map(|(name, _)| name).collect();
    let list = |names: &[&str]| {
        if names.is_empty() {
            "nothing".to_string()
        } else {
            names.join(", ")
        }
    };
    bail!(
        "not a Hive service: it exports {} and imports {}; Hive expects an export of \
         `{HANDLER_EXPORT}` (the hive:service/service world, see wit/) or of \
         `wasi:http/incoming-handler@0.2.x` (the wasi:http/proxy world)",
        list(&exports),
        list(&imports)
    )
}

fn hex_digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
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
    fn service_names_must_be_url_safe() {
        assert_eq!(
            service_name(Path::new("/x/hello-2.wasm")).unwrap(),
            "hello-2"
        );
        assert!(service_name(Path::new("/x/he llo.wasm")).is_err());
        assert!(service_name(Path::new("/x/.wasm")).is_err());
        assert!(service_name(Path::new("/x/caf\u{e9}.wasm")).is_err());
    }
}
