//! The services folder as the registry reads it: which names it holds,
//! which file belongs to which service, and whether a file changed since
//! its service was loaded.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::config::display_name;
use crate::digest::file_digest;
use crate::runtime::service::Service;

/// Names of the `.wasm` files directly inside `dir`.
pub fn service_names_in(dir: &Path) -> Result<BTreeSet<String>> {
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

/// What a service's files held when they were read: the `.wasm`'s digest
/// and the manifest's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    digest: String,
    manifest: Option<String>,
}

impl Fingerprint {
    /// The fingerprint of `wasm` and its manifest, or `None` when the
    /// `.wasm` cannot be read.
    pub fn of(wasm: &Path) -> Option<Fingerprint> {
        Some(Fingerprint {
            digest: file_digest(wasm)?,
            manifest: std::fs::read_to_string(wasm.with_extension("toml")).ok(),
        })
    }
}

/// True when `files` are byte-for-byte what `service` was loaded from,
/// so a touch or a duplicate event does not reload it.
pub fn unchanged(service: Option<&Arc<Service>>, files: Option<&Fingerprint>) -> bool {
    match (service, files) {
        (Some(service), Some(files)) => {
            files.digest == service.digest() && files.manifest == service.source.manifest_text
        }
        _ => false,
    }
}

/// A manifest with no `.wasm` beside it is almost always a misnamed file.
pub fn warn_orphan_manifests(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|ext| ext == "toml")
            && !path.with_extension("wasm").exists()
        {
            tracing::warn!(
                file = %display_name(&path),
                "manifest {} has no {} beside it; it is ignored",
                display_name(&path),
                display_name(&path.with_extension("wasm"))
            );
        }
    }
}
