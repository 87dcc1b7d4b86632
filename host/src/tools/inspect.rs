//! `hive inspect <file.wasm>`: what a component is and whether this host can
//! load it, without starting a host. It loads the file exactly as the
//! registry would, with the same linker.

use std::fmt;
use std::path::Path;

use crate::api::standard;
use crate::config::{HostPolicy, Limits};
use crate::digest::hex_digest;
use crate::runtime::access::Access;
use crate::runtime::cache::{CacheOutcome, compile};
use crate::runtime::engine::EngineSettings;
use crate::runtime::loader::load_service;
use crate::runtime::target::Targets;
use crate::runtime::world::World;
use anyhow::{Context, Result};

/// What `inspect` found.
#[derive(Debug)]
pub struct Report {
    /// The file's size in bytes.
    pub size: u64,
    /// SHA-256 of the file.
    pub digest: String,
    /// The world, when the host recognises it.
    pub world: Option<&'static str>,
    /// Everything the component imports (empty if it did not parse).
    pub imports: Vec<String>,
    /// Everything it exports.
    pub exports: Vec<String>,
    /// `Ok` if this host can serve it, else why not.
    pub loadable: std::result::Result<(), String>,
    /// The standard interfaces of other hosts it imports (`wasi:keyvalue`,
    /// `wasi:config`, `wasi:logging`, Spin's), each with whether this host
    /// serves that version.
    pub standard: Vec<(String, bool)>,
    /// Its access rules from its manifest, as lines (public, calls,
    /// secrets by name, auth), when it loads.
    pub access: Vec<String>,
}

/// Inspects the component at `path`. Fails only if the file cannot be read.
pub fn inspect(path: &Path) -> Result<Report> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    // Compiled once: the listing below stores it in a scratch cache, the
    // load takes it from there (a Python component takes seconds to
    // compile).
    let scratch = tempfile::tempdir().context("creating a scratch folder")?;
    let targets = Targets::new(&EngineSettings { max_instances: 1 }, Some(scratch.path()))?;
    let target = targets.for_world(World::sniff(&bytes).unwrap_or(World::Service));
    let engine = &target.engine;
    let compiled = match &target.cache {
        Some(cache) => cache.load_or_compile(engine, &bytes, &hex_digest(&bytes)),
        None => compile(engine, &bytes).map(|component| (component, CacheOutcome::Miss)),
    };
    let (imports, exports) = match compiled.map(|(component, _)| component) {
        Ok(component) => {
            let ty = component.component_type();
            (
                ty.imports(engine).map(|(n, _)| n.to_string()).collect(),
                ty.exports(engine).map(|(n, _)| n.to_string()).collect(),
            )
        }
        Err(_) => (Vec::new(), Vec::new()),
    };
    let loaded = load_service(&targets, path, &Limits::default(), &HostPolicy::default());
    let access = loaded
        .as_ref()
        .map(|s| describe(&s.access))
        .unwrap_or_default();
    let world = loaded
        .as_ref()
        .ok()
        .map(|service| service.entry.world().name());
    let standard = imports
        .iter()
        .filter(|name| standard::is_standard(name))
        .map(|name| (name.clone(), standard::unserved(name).is_none()))
        .collect();
    Ok(Report {
        standard,
        size: bytes.len() as u64,
        digest: hex_digest(&bytes),
        world,
        imports,
        exports,
        loadable: loaded.map(|_| ()).map_err(|err| format!("{err:#}")),
        access,
    })
}

/// `access` as the lines `inspect` prints.
fn describe(access: &Access) -> Vec<String> {
    let mut lines = vec![format!(
        "public:   {}",
        if access.public {
            "yes"
        } else {
            "no (reached only by calls)"
        }
    )];
    lines.push(match &access.grants {
        None => "calls:    any service (no `calls` in its manifest)".to_string(),
        Some(grants) if grants.is_empty() => "calls:    none".to_string(),
        Some(grants) => format!("calls:    {}", grants.join(", ")),
    });
    if !access.secret_names.is_empty() {
        lines.push(format!("secrets:  {}", access.secret_names.join(", ")));
    }
    if let Some(auth) = &access.auth {
        lines.push(format!("auth:     {auth:?}"));
    }
    if let Some(rate) = &access.rate {
        lines.push(format!("rate:     limited, per {:?}", rate.key));
    }
    lines
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "size:     {} bytes", self.size)?;
        writeln!(f, "sha256:   {}", self.digest)?;
        writeln!(
            f,
            "world:    {}",
            self.world.unwrap_or("(not one Hive serves)")
        )?;
        writeln!(f, "imports:")?;
        for name in &self.imports {
            writeln!(f, "  {name}")?;
        }
        writeln!(f, "exports:")?;
        for name in &self.exports {
            writeln!(f, "  {name}")?;
        }
        if !self.standard.is_empty() {
            writeln!(f, "standard interfaces:")?;
            for (name, served) in &self.standard {
                let verdict = if *served { "served" } else { "NOT served" };
                writeln!(f, "  {name}: {verdict}")?;
            }
        }
        for line in &self.access {
            writeln!(f, "{line}")?;
        }
        match &self.loadable {
            Ok(()) => write!(f, "loadable: yes"),
            Err(reason) => write!(f, "loadable: no: {reason}"),
        }
    }
}
